"""The Dagster assets: one step per table materializes raw chunks, Arrow and Parquet metadata."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow.parquet as pq
import pytest

from parquetry.extract.spec import load_table_specs
from pipeline_assets.postgres_tables import (
    DEFAULT_TABLES,
    arrow_key,
    build_postgres_defs,
    parquet_key,
    raw_chunks_key,
)
from resources.catalog import CatalogResource
from resources.gpu import GpuResource
from resources.postgres import PostgresResource
from resources.storage import StorageResource

REPO = Path(__file__).resolve().parents[2]


def materializations(result, key):
    return [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.is_step_materialization and e.event_specific_data.materialization.asset_key == key
    ]


@pytest.mark.postgres
@pytest.mark.slow
def test_sample_database_tables_materialize_end_to_end(pg_dsn, tmp_path):
    from parquetry.sample_db import load_sample_database

    counts = load_sample_database(pg_dsn, scale=0.02, seed=3)
    specs = {s.name: s for s in load_table_specs(DEFAULT_TABLES)}
    defs = build_postgres_defs(list(specs.values()))
    resources = {
        "postgres": PostgresResource(
            dsn=pg_dsn, workers=2, range_bytes=64 * 1024, chunk_bytes=64 * 1024, staging_budget_bytes=1 << 20
        ),
        "storage": StorageResource(root=str(tmp_path)),
        "gpu": GpuResource(engine="cpu"),
        "catalog": CatalogResource(dsn=pg_dsn),
    }
    assets = list(defs.assets)
    by_name = {next(iter(a.keys)).path[-1]: a for a in assets}

    result = dg.materialize([by_name["customers"], by_name["order_items"]], resources=resources)
    assert result.success
    for name in ("customers", "order_items"):
        for key in (raw_chunks_key(name), arrow_key(name), parquet_key(name)):
            (mat,) = materializations(result, key)
            assert mat.metadata["dagster/row_count"].value == counts[name]
        (mat,) = materializations(result, parquet_key(name))
        files = sorted((tmp_path / name).glob("part-*.parquet"))
        assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == counts[name]
        assert mat.metadata["parquetry/files"].value == len(files)
        assert mat.metadata["parquetry/engine"].value == "cpu"
        assert set(mat.metadata["parquetry/stage_seconds"].value) >= {"read_s", "decode_s", "write_s"}
        # the storage resource leaves extraction's measured encoding in place: delta integers, zstd 1
        column = pq.ParquetFile(files[0]).metadata.row_group(0).column(0)
        assert (column.compression, "DELTA_BINARY_PACKED" in column.encodings) == ("ZSTD", True)
        assert mat.metadata["compression"].value == "zstd level 1"

    day = "2024-05-10"
    result = dg.materialize([by_name["orders"]], resources=resources, partition_key=day)
    assert result.success
    with psycopg.connect(pg_dsn) as conn:
        expected = conn.execute(
            "SELECT count(*) FROM orders"
            " WHERE ordered_at >= %s::timestamptz AND ordered_at < %s::timestamptz",
            (f"{day} 00:00+00", "2024-05-11 00:00+00"),
        ).fetchone()[0]
    assert expected > 0
    (mat,) = materializations(result, parquet_key("orders"))
    assert mat.metadata["dagster/row_count"].value == expected
    orders = pq.read_table(tmp_path / "orders" / f"date={day}" / "part-00000.parquet")
    assert orders.num_rows == expected
    with psycopg.connect(pg_dsn) as conn:  # intervals are stored as their three parts (see docs/types.md)
        promised = conn.execute(
            "SELECT extract(month from promised_within)::int, extract(day from promised_within)::int,"
            " (extract(epoch from promised_within) * 1000000000 - extract(day from promised_within)"
            " * 86400000000000)::int8 FROM orders WHERE ordered_at >= %s::timestamptz"
            " AND ordered_at < %s::timestamptz ORDER BY ctid",
            (f"{day} 00:00+00", "2024-05-11 00:00+00"),
        ).fetchall()
    assert orders.column("promised_within").to_pylist() == [
        {"months": m, "days": d, "nanoseconds": n} for m, d, n in promised
    ]

    # Every published file is in the catalog; a re-run of the day replaces (retires) what it wrote.
    catalog = CatalogResource(dsn=pg_dsn).get_catalog()
    live = {f.path: f.rows for f in catalog.live_files("postgres_customers")}
    assert live == {
        str(f): pq.ParquetFile(f).metadata.num_rows for f in (tmp_path / "customers").glob("*.parquet")
    }
    before = catalog.live_files("postgres_orders")
    assert dg.materialize([by_name["orders"]], resources=resources, partition_key=day).success
    after = catalog.live_files("postgres_orders")
    assert [f.path for f in after] == [f.path for f in before]
    assert sum(f.rows for f in after) == expected


def test_import_is_side_effect_free_and_reads_the_tables_file_from_env(tmp_path):
    tables = tmp_path / "tables.yaml"
    tables.write_text("tables:\n  - name: widgets\n    relation: inventory.widgets\n", encoding="utf-8")
    code = (
        "import sys, pipeline_assets.postgres_tables as m; "
        "print(sorted(k.to_user_string() for a in m.defs.assets for k in a.keys)); "
        "print(sorted(x for x in ('psycopg', 'pyarrow', 'numba') if x in sys.modules))"
    )
    env = {**os.environ, "PARQUETRY_TABLES": str(tables), "PARQUETRY_PG_DSN": "host=/nonexistent"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == str(
        ["postgres/arrow/widgets", "postgres/parquet/widgets", "postgres/raw_chunks/widgets"]
    )
    assert out[1] == "[]"


def test_daily_partitions_only_for_specs_with_a_time_column():
    defs = build_postgres_defs(load_table_specs(DEFAULT_TABLES))
    partitioned = {next(iter(a.keys)).path[-1]: a.partitions_def is not None for a in defs.assets}
    assert partitioned == {"customers": False, "orders": True, "order_items": False}
    orders = next(a for a in defs.assets if parquet_key("orders") in a.keys)
    assert orders.partitions_def.get_first_partition_key() == "2024-05-02"
    assert {orders.group_names_by_key[k] for k in orders.keys} == {"postgres"}


@pytest.mark.postgres
def test_progress_lines_report_percent_rows_rate_and_end(pg_dsn, tmp_path):
    from parquetry.extract.parquet import extract_table_to_parquet
    from parquetry.extract.pipeline import ExtractOptions
    from parquetry.sample_db import load_sample_database
    from parquetry.storage import Storage
    from pipeline_assets.postgres_tables import RangeProgress

    counts = load_sample_database(pg_dsn, scale=0.02, seed=5)
    spec = next(s for s in load_table_specs(DEFAULT_TABLES) if s.name == "order_items")
    lines: list[str] = []
    progress = RangeProgress(lines.append)
    extract_table_to_parquet(
        pg_dsn,
        spec,
        Storage(str(tmp_path)),
        options=ExtractOptions(workers=2, range_bytes=16 * 1024),
        hooks=progress.hooks("order_items"),
    )
    progress.close()
    assert lines, "at least the final line"
    final = lines[-1]
    assert final.startswith("order_items: ") and "%" in final and "MB/s" in final and " in " in final
    assert f"{counts['order_items']:,} rows" in final
