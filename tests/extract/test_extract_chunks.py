"""Raw chunks: every row exactly once, in whole-row chunk files PostgreSQL itself accepts back.

The oracle is the server: each staged chunk is loaded into an empty copy of the source with
``COPY ... FROM STDIN (FORMAT binary)`` and compared with the source in SQL (EXCEPT ALL both ways,
counts, sums and the sorted key list), so no decoder of ours is involved.
"""

import hashlib

import psycopg
import pytest

from parquetry.extract import reader as reader_module
from parquetry.extract.errors import ExtractError, ServerError
from parquetry.extract.pipeline import ExtractOptions, run_extraction
from parquetry.extract.spec import TableSpec
from parquetry.testing.extract_support import ChunkLog, LoadBackConsumer, clone_empty

pytestmark = pytest.mark.postgres

SMALL = dict(range_bytes=8 * 8192, chunk_bytes=16 * 1024, staging_budget_bytes=256 * 1024)


def execute(dsn, *statements):
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def scalar(dsn, query):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchone()[0]


def make_items(dsn, rows=20_000):
    execute(
        dsn,
        "CREATE TABLE items (id bigint, label text, price numeric(12,2), seen timestamptz, tag uuid,"
        " flags int[], ok boolean)",
        f"""INSERT INTO items SELECT g, CASE WHEN g % 17 = 0 THEN NULL ELSE repeat('x', g % 50) || g END,
            (g * 1.25)::numeric(12,2), timestamptz '2024-01-01' + g * interval '1 minute',
            md5(g::text)::uuid, ARRAY[g, g + 1], g % 2 = 0
            FROM generate_series(1, {rows}) g""",
    )


def assert_same_rows(dsn, source_sql, copy_table, key="id"):
    """The copy holds exactly the source's rows: multiset equality plus count, sum and key order."""
    assert scalar(dsn, f"SELECT count(*) FROM (({source_sql}) EXCEPT ALL SELECT * FROM {copy_table}) d") == 0
    assert scalar(dsn, f"SELECT count(*) FROM (SELECT * FROM {copy_table} EXCEPT ALL ({source_sql})) d") == 0
    src = scalar(dsn, f"SELECT array_agg({key} ORDER BY {key}) FROM ({source_sql}) s")
    got = scalar(dsn, f"SELECT array_agg({key} ORDER BY {key}) FROM {copy_table}")
    assert got == src


def extract_and_load(dsn, spec, source_sql, *, copy="copy_out", **options):
    clone_empty(dsn, source_sql, copy)
    log = ChunkLog()
    run = run_extraction(dsn, spec, LoadBackConsumer(dsn, copy, log), options=ExtractOptions(**options))
    return run, log


def test_page_ranges_cover_every_row_exactly_once(pg_dsn, tmp_path):
    make_items(pg_dsn)
    run, log = extract_and_load(
        pg_dsn,
        TableSpec("items", relation="items"),
        "SELECT * FROM items",
        workers=3,
        staging_dir=str(tmp_path),
        **SMALL,
    )
    assert len(run.plan.tasks) > 5  # many ctid ranges, the last one open-ended
    assert "ctid >=" not in run.plan.tasks[0].statement and "ctid <" not in run.plan.tasks[-1].statement
    assert max(seq for _, seq, _, _ in log.chunks) >= 1  # ranges larger than a chunk were cut
    assert all(nbytes <= SMALL["chunk_bytes"] for _, _, nbytes, _ in log.chunks)
    assert [(t, s) for t, s, _, _ in log.chunks] == sorted((t, s) for t, s, _, _ in log.chunks)
    assert run.stats.rows == log.rows == 20_000
    assert run.stats.reader == "socket"
    assert run.stats.recycled_chunks > 0  # later chunks overwrote consumed chunks' files
    assert_same_rows(pg_dsn, "SELECT * FROM items", "copy_out")
    assert list(tmp_path.iterdir()) == []  # the run's staging directory is gone


def test_socket_and_psycopg_readers_stage_identical_chunks(pg_dsn):
    make_items(pg_dsn, rows=5_000)
    digests = {}
    for kind in ("socket", "psycopg"):
        seen: list[str] = []

        def digest(chunk, seen=seen):
            seen.append(hashlib.sha256(chunk.path.read_bytes()).hexdigest())

        clone_empty(pg_dsn, "SELECT * FROM items", f"copy_{kind}")
        consumer = LoadBackConsumer(pg_dsn, f"copy_{kind}", on_chunk=digest)
        run = run_extraction(
            pg_dsn,
            TableSpec("items", relation="items"),
            consumer,
            options=ExtractOptions(workers=2, reader=kind, **SMALL),
        )
        assert run.stats.reader == kind
        digests[kind] = seen
    assert digests["socket"] == digests["psycopg"] and len(digests["socket"]) > 3


def test_auto_reader_uses_psycopg_on_encrypted_connections(pg_dsn, monkeypatch):
    make_items(pg_dsn, rows=500)
    monkeypatch.setattr(reader_module, "socket_reader_possible", lambda conn: False)
    run, _ = extract_and_load(pg_dsn, TableSpec("items", relation="items"), "SELECT * FROM items", workers=1)
    assert run.stats.reader == "psycopg"
    assert_same_rows(pg_dsn, "SELECT * FROM items", "copy_out")
    with pytest.raises(ExtractError, match="unencrypted"):
        run_extraction(
            pg_dsn,
            TableSpec("items", relation="items"),
            LoadBackConsumer(pg_dsn, "copy_out"),
            options=ExtractOptions(workers=1, reader="socket"),
        )


def test_partitioned_table_reads_every_leaf_with_its_own_column_order(pg_dsn):
    execute(
        pg_dsn,
        "CREATE TABLE events (id int, day date, payload text) PARTITION BY RANGE (day)",
        "CREATE TABLE events_jan PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')",
        "CREATE TABLE events_feb PARTITION OF events FOR VALUES FROM ('2024-02-01') TO ('2024-03-01')"
        " PARTITION BY HASH (id)",
        "CREATE TABLE events_feb_0 PARTITION OF events_feb FOR VALUES WITH (MODULUS 2, REMAINDER 0)",
        "CREATE TABLE events_feb_1 PARTITION OF events_feb FOR VALUES WITH (MODULUS 2, REMAINDER 1)",
        # a leaf with another physical column order and a dropped column
        "CREATE TABLE events_mar (junk int, payload text, day date, id int)",
        "ALTER TABLE events_mar DROP COLUMN junk",
        "ALTER TABLE events ATTACH PARTITION events_mar FOR VALUES FROM ('2024-03-01') TO ('2024-04-01')",
        "CREATE TABLE events_other PARTITION OF events DEFAULT",
        "INSERT INTO events SELECT g, date '2024-01-01' + (g % 120), 'p' || g"
        " FROM generate_series(1, 12000) g",
    )
    run, _ = extract_and_load(
        pg_dsn, TableSpec("events", relation="public.events"), "SELECT * FROM events", workers=2, **SMALL
    )
    assert run.plan.relations == [
        "public.events_feb_0",
        "public.events_feb_1",
        "public.events_jan",
        "public.events_mar",
        "public.events_other",
    ]
    assert any("partition public.events_mar" in t.source for t in run.plan.tasks)
    assert_same_rows(pg_dsn, "SELECT * FROM events", "copy_out")


def test_view_and_query_are_read_as_one_stream(pg_dsn):
    make_items(pg_dsn, rows=3_000)
    execute(pg_dsn, "CREATE VIEW cheap AS SELECT id, label, price FROM items WHERE price < 1000")
    run, _ = extract_and_load(
        pg_dsn, TableSpec("cheap", relation="cheap"), "SELECT * FROM cheap", copy="copy_view", **SMALL
    )
    assert len(run.plan.tasks) == 1 and "ctid" not in run.plan.tasks[0].statement
    assert_same_rows(pg_dsn, "SELECT * FROM cheap", "copy_view")

    query = "SELECT id, id * 2 AS twice, label FROM items WHERE id % 3 = 0;"
    spec = TableSpec("thirds", query=query, where="id > 100", columns=("twice", "id"))
    run, _ = extract_and_load(
        pg_dsn,
        spec,
        "SELECT id * 2 AS twice, id FROM items WHERE id % 3 = 0 AND id > 100",
        copy="copy_query",
        **SMALL,
    )
    assert [c.name for c in run.plan.columns] == ["twice", "id"]
    assert_same_rows(
        pg_dsn, "SELECT id * 2 AS twice, id FROM items WHERE id % 3 = 0 AND id > 100", "copy_query"
    )


def test_dropped_columns_are_skipped(pg_dsn):
    execute(
        pg_dsn,
        "CREATE TABLE gappy (a int, gone text, b text, also_gone int, c float8)",
        "INSERT INTO gappy SELECT g, 'x', 'b' || g, g, g / 3.0 FROM generate_series(1, 4000) g",
        "ALTER TABLE gappy DROP COLUMN gone",
        "ALTER TABLE gappy DROP COLUMN also_gone",
        "INSERT INTO gappy SELECT g, 'late' || g, g FROM generate_series(4001, 5000) g",
    )
    run, _ = extract_and_load(pg_dsn, TableSpec("gappy", relation="gappy"), "SELECT * FROM gappy", **SMALL)
    assert [c.name for c in run.plan.columns] == ["a", "b", "c"]
    assert_same_rows(pg_dsn, "SELECT * FROM gappy", "copy_out", key="a")


def test_quoted_unicode_identifiers(pg_dsn):
    execute(
        pg_dsn,
        'CREATE SCHEMA "Sälës Ü"',
        'CREATE TABLE "Sälës Ü"."Ünïcode Table" ("select" int, "Mixed Case" text, "a""quote" bool)',
        """INSERT INTO "Sälës Ü"."Ünïcode Table" SELECT g, 'ü' || g, g % 2 = 0
           FROM generate_series(1, 3000) g""",
    )
    spec = TableSpec(
        "unicode",
        relation='"Sälës Ü"."Ünïcode Table"',
        columns=("Mixed Case", "select"),
        where='"select" % 2 = 1',
    )
    source = 'SELECT "Mixed Case", "select" FROM "Sälës Ü"."Ünïcode Table" WHERE "select" % 2 = 1'
    run, _ = extract_and_load(pg_dsn, spec, source, **SMALL)
    assert run.plan.relations == ["Sälës Ü.Ünïcode Table"]
    assert_same_rows(pg_dsn, source, "copy_out", key='"select"')


def test_time_window_is_a_utc_day_whatever_the_session_time_zone(pg_dsn):
    dbname = scalar(pg_dsn, "SELECT current_database()")
    execute(
        pg_dsn,
        f"ALTER DATABASE {dbname} SET timezone = 'Asia/Tokyo'",
        "CREATE TABLE ticks (id int, at timestamptz, local_at timestamp, on_day date)",
        """INSERT INTO ticks SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '7 minutes',
           timestamp '2024-01-01 00:00:00' + g * interval '7 minutes',
           date '2024-01-01' + (g / 200) FROM generate_series(0, 1200) g""",
    )
    for column, oracle in [
        ("at", "(at AT TIME ZONE 'UTC')::date = date '2024-01-02'"),
        ("local_at", "local_at::date = date '2024-01-02'"),
        ("on_day", "on_day = date '2024-01-02'"),
    ]:
        from parquetry.extract.plan import day_window

        spec = TableSpec("ticks", relation="ticks", time_column=column, start_date="2024-01-01")
        clone_empty(pg_dsn, "SELECT * FROM ticks", f"copy_{column}")
        run = run_extraction(
            pg_dsn,
            spec,
            LoadBackConsumer(pg_dsn, f"copy_{column}"),
            window=day_window("2024-01-02"),
            options=ExtractOptions(**SMALL),
        )
        expected = scalar(pg_dsn, f"SELECT count(*) FROM ticks WHERE {oracle}")
        assert 0 < run.stats.rows == expected < 1201
        assert_same_rows(pg_dsn, f"SELECT * FROM ticks WHERE {oracle}", f"copy_{column}")


def test_server_error_mid_stream_names_the_table_and_leaves_no_chunk(pg_dsn, tmp_path):
    make_items(pg_dsn, rows=20_000)
    spec = TableSpec("items", relation="items", where="CASE WHEN id = 19000 THEN 1 / 0 ELSE 1 END = 1")
    clone_empty(pg_dsn, "SELECT * FROM items", "copy_out")
    for kind in ("socket", "psycopg"):
        with pytest.raises(ServerError) as info:
            run_extraction(
                pg_dsn,
                spec,
                LoadBackConsumer(pg_dsn, "copy_out"),
                options=ExtractOptions(workers=2, reader=kind, staging_dir=str(tmp_path), **SMALL),
            )
        assert "public.items" in str(info.value) and "division by zero" in str(info.value)
        assert info.value.sqlstate == "22012"
        assert list(tmp_path.iterdir()) == []


def test_missing_relation_or_column_is_named(pg_dsn):
    make_items(pg_dsn, rows=10)
    with pytest.raises(ExtractError, match="'nowhere'"):
        run_extraction(pg_dsn, TableSpec("x", relation="nowhere"), LoadBackConsumer(pg_dsn, "items"))
    with pytest.raises(Exception, match="nope"):
        run_extraction(
            pg_dsn,
            TableSpec("x", relation="items", columns=("id", "nope")),
            LoadBackConsumer(pg_dsn, "items"),
        )
