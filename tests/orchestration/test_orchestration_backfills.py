"""Backfills of the daily-partitioned orders dataset through Dagster, on the demo database.

* a partition re-run replaces its output, and the bytes do not depend on the reader count;
* ``dg launch --assets ... --partition-range START...END`` runs a range in one run;
* ``dagster job backfill`` submits a range that a running daemon (``dagster dev``) executes.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow.parquet as pq
import pytest

from parquetry.testing.dagster_dev import dagster_dev, write_workspace

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAYS = ["2024-05-20", "2024-05-21"]


@pytest.fixture
def demo_db(pg_dsn: str) -> str:
    from parquetry.sample_db import load_sample_database

    load_sample_database(pg_dsn, scale=0.02, seed=0)
    return pg_dsn


def source_rows(dsn: str, day: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM orders WHERE ordered_at >= %s::date AND ordered_at < %s::date + 1",
            (day, day),
        ).fetchone()
    return int(row[0])


def digests(root: Path, day: str) -> dict[str, str]:
    folder = root / "orders" / f"date={day}"
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*")) if p.is_file()
    }


def parquet_rows(root: Path, day: str) -> int:
    return sum(
        pq.ParquetFile(p).metadata.num_rows for p in (root / "orders" / f"date={day}").glob("*.parquet")
    )


def orders_assets() -> dg.AssetsDefinition:
    from pipeline_assets import postgres_tables

    (spec,) = [s for s in postgres_tables.TABLE_SPECS if s.name == "orders"]
    return postgres_tables.build_table_assets(spec)


def optional_resources() -> dict[str, object]:
    """The GPU resource where the code location has one (it picks the CPU engine without a GPU)."""
    try:
        from resources.gpu import GpuResource
    except ImportError:
        return {}
    return {"gpu": GpuResource()}


def materialize_day(dsn: str, root: Path, day: str, workers: int, instance: dg.DagsterInstance) -> None:
    from resources.catalog import CatalogResource
    from resources.postgres import PostgresResource
    from resources.storage import StorageResource

    result = dg.materialize(
        [orders_assets()],
        partition_key=day,
        instance=instance,
        resources={
            # small page ranges, so that several readers really split the table
            "postgres": PostgresResource(
                dsn=dsn, workers=workers, range_bytes=16384, chunk_bytes=8192, staging_budget_bytes=1 << 20
            ),
            "storage": StorageResource(root=str(root)),
            "catalog": CatalogResource(dsn=dsn, schema_name=f"catalog_{root.name}"),  # one per root
            **optional_resources(),
        },
    )
    assert result.success


@pytest.mark.slow
@pytest.mark.postgres
def test_rerun_replaces_a_partition_and_reader_count_does_not_change_bytes(
    demo_db: str, tmp_path: Path
) -> None:
    day = DAYS[0]
    instance = dg.DagsterInstance.ephemeral()
    materialize_day(demo_db, tmp_path / "one", day, workers=1, instance=instance)
    first = digests(tmp_path / "one", day)
    assert first and parquet_rows(tmp_path / "one", day) == source_rows(demo_db, day)

    materialize_day(demo_db, tmp_path / "one", day, workers=1, instance=instance)
    assert digests(tmp_path / "one", day) == first, "a re-run replaces the partition with the same files"

    materialize_day(demo_db, tmp_path / "three", day, workers=3, instance=instance)
    assert digests(tmp_path / "three", day) == first, "three readers write the same bytes as one"
    mats = instance.fetch_materializations(dg.AssetKey(["postgres", "parquet", "orders"]), limit=10).records
    assert len(mats) == 3 and {m.partition_key for m in mats} == {day}


def single_run_backfill(key: dg.AssetKey) -> bool:
    policy = orders_assets().backfill_policy
    return policy is not None and policy.policy_type.name == "SINGLE_RUN"


def env_for(dsn: str, root: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PARQUETRY_PG_DSN": dsn,
        "PARQUETRY_CATALOG_DSN": dsn,
        "PARQUETRY_DATA_ROOT": str(root),
        "PARQUETRY_LANDING_URI": str(root.parent / "landing"),
        "DAGSTER_HOME": str(home),
    }


@pytest.mark.slow
@pytest.mark.postgres
def test_dg_launch_runs_a_partition_range_in_one_run(demo_db: str, tmp_path: Path) -> None:
    if not single_run_backfill(dg.AssetKey(["postgres", "parquet", "orders"])):
        pytest.skip(
            "the orders assets have no BackfillPolicy.single_run(), which `dg launch --partition-range` needs"
        )
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    workspace = write_workspace(tmp_path / "workspace")
    location = workspace.parent / "parquetry_location.py"
    command = [
        str(BIN / "dg"), "launch",
        "--assets", "postgres/raw_chunks/orders,postgres/arrow/orders,postgres/parquet/orders",
        "--partition-range", f"{DAYS[0]}...{DAYS[-1]}",
        "-f", str(location), "-d", str(ROOT),
    ]  # fmt: skip
    out = subprocess.run(
        command, cwd=ROOT, env=env_for(demo_db, tmp_path / "data", home), capture_output=True, text=True,
        timeout=400, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for day in DAYS:
        assert parquet_rows(tmp_path / "data", day) == source_rows(demo_db, day)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
    assert len(runs) == 1, "the whole range ran in one run"


@pytest.mark.slow
@pytest.mark.postgres
def test_daemon_executes_a_backfill_submitted_from_the_cli(demo_db: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "landing").mkdir()
    home = tmp_path / "home"
    env = env_for(demo_db, data, home)
    server_env = {k: env[k] for k in env if k.startswith("PARQUETRY_")}
    with dagster_dev(home, server_env) as server:
        command = [
            str(BIN / "dagster"), "job", "backfill", "-w", str(server.workspace),
            "-j", "postgres_daily_job", "--from", DAYS[0], "--to", DAYS[-1], "--noprompt",
        ]  # fmt: skip
        out = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        (backfill,) = server.backfills()
        assert server.wait_for_backfill(backfill["id"]) in ("COMPLETED_SUCCESS", "COMPLETED"), (
            server.log_tail()
        )
        # A job backfill is complete once its runs are submitted; the runs then go on by themselves.
        runs = [r for r in server.runs() if r["tags"].get("dagster/backfill") == backfill["id"]]
        assert sorted(r["tags"]["dagster/partition"] for r in runs) == DAYS
        statuses = [server.wait_for_run(r["runId"]) for r in runs]
    assert statuses == ["SUCCESS"] * len(DAYS)
    for day in DAYS:
        assert parquet_rows(data, day) == source_rows(demo_db, day)
