"""Parquet partitions: content matches PostgreSQL, layout is fixed, re-runs are byte-identical."""

import datetime as dt
import decimal

import psycopg
import pyarrow.parquet as pq
import pytest

from parquetry.extract.errors import ExtractError
from parquetry.extract.parquet import extract_table_to_parquet
from parquetry.extract.pipeline import ExtractOptions
from parquetry.extract.spec import TableSpec
from parquetry.storage import ParquetOptions, Storage

pytestmark = pytest.mark.postgres

SMALL = dict(range_bytes=8 * 8192, chunk_bytes=16 * 1024, staging_budget_bytes=256 * 1024)
SMALL_FILES = ParquetOptions(row_group_rows=3000, target_file_rows=7000)


@pytest.fixture
def items(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint, label text, price numeric(12,2), seen timestamptz)")
        conn.execute(
            """INSERT INTO items SELECT g, CASE WHEN g % 17 = 0 THEN NULL ELSE 'item ' || g END,
               (g * 1.25)::numeric(12,2), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
               FROM generate_series(1, 20000) g"""
        )
    return pg_dsn


def read_rows(path_list):
    tables = [pq.read_table(p) for p in path_list]
    return [row for t in tables for row in t.to_pylist()]


def test_parquet_rows_equal_the_source_in_physical_order(items, tmp_path):
    storage = Storage(str(tmp_path / "data"))
    result = extract_table_to_parquet(
        items,
        TableSpec("items", relation="items"),
        storage,
        options=ExtractOptions(workers=2, **SMALL),
        parquet_options=SMALL_FILES,
    )
    assert [f.path for f in result.files] == [
        str(tmp_path / "data" / "items" / f"part-{i:05d}.parquet") for i in range(3)
    ]
    assert [f.rows for f in result.files] == [7000, 7000, 6000]
    assert [f.row_groups for f in result.files] == [3, 3, 2]
    with psycopg.connect(items) as conn:
        expected = conn.execute("SELECT id, label, price, seen FROM items ORDER BY ctid").fetchall()
    got = read_rows([f.path for f in result.files])
    assert [(r["id"], r["label"], r["price"], r["seen"]) for r in got] == expected
    assert isinstance(got[0]["price"], decimal.Decimal)
    assert result.rows == 20000 and result.engine == "cpu" and result.reader == "socket"
    assert pq.ParquetFile(result.files[0].path).metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.slow
def test_a_run_with_the_tables_specialized_row_kernel_writes_the_same_bytes_and_says_so(
    items, tmp_path, monkeypatch
):
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path / "kernels"))
    results = {}
    for mode in ("generic", "sync"):
        monkeypatch.setenv("PARQUETRY_ROW_KERNELS", mode)
        storage = Storage(str(tmp_path / mode))
        options = ExtractOptions(workers=2, **SMALL)
        results[mode] = extract_table_to_parquet(
            items, TableSpec("items", relation="items"), storage, options=options, parquet_options=SMALL_FILES
        )
    generic, specialized = results["generic"], results["sync"]
    assert generic.engine == "cpu"
    n = specialized.batches
    assert n > 1 and specialized.engine == f"cpu (specialized row kernel: {n} of {n} batches)"
    assert [f.etag for f in specialized.files] == [f.etag for f in generic.files]


def test_output_is_byte_identical_whatever_the_worker_count_and_on_rerun(items, tmp_path):
    spec = TableSpec("items", relation="items")
    runs = {}
    for workers in (1, 4):
        storage = Storage(str(tmp_path / f"w{workers}"))
        result = extract_table_to_parquet(
            items,
            spec,
            storage,
            options=ExtractOptions(workers=workers, **SMALL),
            parquet_options=SMALL_FILES,
        )
        assert result.workers == workers and result.tasks > 4
        runs[workers] = [(f.path.rsplit("/", 1)[1], f.etag) for f in result.files]
    assert runs[1] == runs[4]

    storage = Storage(str(tmp_path / "w4"))
    again = extract_table_to_parquet(
        items, spec, storage, options=ExtractOptions(workers=3, **SMALL), parquet_options=SMALL_FILES
    )
    assert [(f.path.rsplit("/", 1)[1], f.etag) for f in again.files] == runs[4]
    # fewer, larger files on a re-run: the partition holds exactly the new run's files
    bigger = extract_table_to_parquet(
        items,
        spec,
        storage,
        options=ExtractOptions(**SMALL),
        parquet_options=ParquetOptions(row_group_rows=5000),
    )
    assert len(bigger.files) == 1
    assert storage.list_files(storage.path("items")) == [bigger.files[0].path]


def test_daily_partitions_land_in_date_folders(items, tmp_path):
    storage = Storage(str(tmp_path))
    spec = TableSpec("items", relation="items", time_column="seen", start_date="2024-01-01")
    result = extract_table_to_parquet(
        items, spec, storage, partition="2024-01-05", options=ExtractOptions(**SMALL)
    )
    assert [f.path for f in result.files] == [
        str(tmp_path / "items" / "date=2024-01-05" / "part-00000.parquet")
    ]
    with psycopg.connect(items) as conn:
        expected = conn.execute(
            "SELECT id FROM items WHERE seen >= '2024-01-05 00:00+00' AND seen < '2024-01-06 00:00+00'"
            " ORDER BY id"
        ).fetchall()
    assert [(r["id"],) for r in read_rows([result.files[0].path])] == expected
    assert result.rows == len(expected) == 1440

    empty = extract_table_to_parquet(items, spec, storage, partition=dt.date(2023, 12, 1))
    assert empty.rows == 0 and len(empty.files) == 1
    assert pq.read_table(empty.files[0].path).schema.names == ["id", "label", "price", "seen"]


def test_partition_argument_must_match_the_spec(items, tmp_path):
    storage = Storage(str(tmp_path))
    with pytest.raises(ExtractError, match="daily-partitioned"):
        extract_table_to_parquet(
            items, TableSpec("i", relation="items", time_column="seen", start_date="2024-01-01"), storage
        )
    with pytest.raises(ExtractError, match="takes no partition"):
        extract_table_to_parquet(items, TableSpec("i", relation="items"), storage, partition="2024-01-01")


def test_a_failed_rerun_leaves_the_previous_files_untouched(items, tmp_path):
    from parquetry.extract.parquet import ParquetConsumer, decode_chunk_cpu
    from parquetry.pgcopy.errors import CopyFormatError

    storage = Storage(str(tmp_path / "data"))
    spec = TableSpec("items", relation="items")
    options = ExtractOptions(workers=2, staging_dir=str(tmp_path / "staging"), **SMALL)
    first = extract_table_to_parquet(items, spec, storage, options=options, parquet_options=SMALL_FILES)
    before = {f.path: f.etag for f in first.files}

    def decode_then_fail(chunk, columns, batch_rows):
        if chunk.task == 7:
            raise CopyFormatError("injected", source=str(chunk.path))
        yield from decode_chunk_cpu(chunk, columns, batch_rows)

    def factory(storage, directory, parquet_options):
        return ParquetConsumer(storage, directory, parquet_options, decode=decode_then_fail, prefetch=0)

    with pytest.raises(CopyFormatError, match="injected"):
        extract_table_to_parquet(
            items,
            spec,
            storage,
            options=options,
            parquet_options=ParquetOptions(row_group_rows=1000, target_file_rows=2000),
            consumer_factory=factory,
        )
    assert sorted(p.name for p in (tmp_path / "data" / "items").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert {p: storage.file_digest(p)[0] for p in before} == before
    assert list((tmp_path / "staging").iterdir()) == []


def test_not_null_columns_are_required_in_parquet_and_views_stay_optional(pg_dsn, tmp_path):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE strict_items (id bigint NOT NULL, code text NOT NULL, note text)")
        conn.execute(
            "INSERT INTO strict_items SELECT g, 'c' || g, NULLIF(g % 3, 0)::text"
            " FROM generate_series(1, 500) g"
        )
        conn.execute("CREATE VIEW strict_items_view AS SELECT * FROM strict_items")
    storage = Storage(str(tmp_path / "data"))
    repetition = {}
    for name in ("strict_items", "strict_items_view"):
        result = extract_table_to_parquet(
            pg_dsn, TableSpec(name, relation=name), storage, options=ExtractOptions(workers=1, **SMALL)
        )
        (written,) = result.files
        parquet_schema = pq.ParquetFile(written.path).schema
        repetition[name] = [parquet_schema.column(i).max_definition_level for i in range(3)]
        table = pq.read_table(written.path)
        assert table.column("id").to_pylist() == list(range(1, 501))
        assert table.column("note").null_count == 500 // 3
    assert repetition == {"strict_items": [0, 0, 1], "strict_items_view": [1, 1, 1]}
    assert [f.nullable for f in pq.read_schema(storage.path("strict_items", "part-00000.parquet"))] == [
        False,
        False,
        True,
    ]
