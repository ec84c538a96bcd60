"""Staging: the byte budget holds (backpressure), chunks end on row boundaries, nothing is left behind."""

import os
import threading
import time

import psycopg
import pytest

from parquetry.extract.errors import ExtractError
from parquetry.extract.pipeline import ExtractHooks, ExtractOptions, run_extraction
from parquetry.extract.spec import TableSpec
from parquetry.testing.extract_support import ChunkLog, LoadBackConsumer, clone_empty

pytestmark = pytest.mark.postgres

CHUNK = 16 * 1024


@pytest.fixture
def table(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id int, body text)")
        conn.execute("INSERT INTO wide SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 20000) g")
    clone_empty(pg_dsn, "SELECT * FROM wide", "wide_copy")
    return pg_dsn


def reader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("parquetry-read-")]


def test_staged_bytes_never_exceed_the_budget(table, tmp_path):
    budget = 4 * CHUNK
    log = ChunkLog()

    def slow(chunk):
        time.sleep(0.002)  # a consumer slower than the readers makes them wait

    run = run_extraction(
        table,
        TableSpec("wide", relation="wide"),
        LoadBackConsumer(table, "wide_copy", log, on_chunk=slow),
        options=ExtractOptions(
            workers=4,
            range_bytes=2 * 8192,
            chunk_bytes=CHUNK,
            staging_budget_bytes=budget,
            staging_dir=str(tmp_path),
        ),
    )
    assert run.stats.stream_bytes > 20 * budget  # without backpressure far more would pile up
    assert 2 * CHUNK <= run.stats.peak_staged_bytes <= budget
    assert 0 < log.max_staged_on_disk <= budget
    assert log.rows == 20000
    assert list(tmp_path.iterdir()) == []


def test_a_row_larger_than_a_chunk_gets_a_chunk_of_its_own(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id int, body text)")
        conn.execute("ALTER TABLE big ALTER body SET STORAGE EXTERNAL")  # no compression: a really big row
        conn.execute(
            "INSERT INTO big SELECT g, repeat('a', CASE WHEN g = 50 THEN 100000 ELSE 100 END)"
            " FROM generate_series(1, 400) g"
        )
    for reader in ("socket", "psycopg"):
        clone_empty(pg_dsn, "SELECT * FROM big", f"big_{reader}")
        log = ChunkLog()
        run_extraction(
            pg_dsn,
            TableSpec("big", relation="big"),
            LoadBackConsumer(pg_dsn, f"big_{reader}", log),
            options=ExtractOptions(
                workers=1, reader=reader, chunk_bytes=CHUNK, staging_budget_bytes=4 * CHUNK
            ),
        )
        oversize = [c for c in log.chunks if c[2] > CHUNK]
        assert len(oversize) == 1 and oversize[0][3] == 1
        with psycopg.connect(pg_dsn) as conn:
            assert (
                conn.execute(f"SELECT sum(length(body)) FROM big_{reader}").fetchone()[0]
                == 399 * 100 + 100000
            )


def test_consumer_failure_stops_readers_and_removes_every_chunk(table, tmp_path):
    seen = []

    def explode(chunk):
        seen.append(chunk)
        if len(seen) == 3:
            raise RuntimeError("consumer broke on purpose")

    with pytest.raises(RuntimeError, match="consumer broke on purpose"):
        run_extraction(
            table,
            TableSpec("wide", relation="wide"),
            LoadBackConsumer(table, "wide_copy", on_chunk=explode),
            options=ExtractOptions(
                workers=2,
                range_bytes=2 * 8192,
                chunk_bytes=CHUNK,
                staging_budget_bytes=8 * CHUNK,
                staging_dir=str(tmp_path),
            ),
        )
    assert list(tmp_path.iterdir()) == []
    assert reader_threads() == []


def test_reader_failure_is_raised_and_leaves_nothing_behind(table, tmp_path):
    def fail_on_task_four(task):
        if task.index == 4:
            raise OSError(f"injected failure reading {task.source}")

    with pytest.raises(
        ExtractError, match=r"^wide: injected failure reading public\.wide pages \[8, 10\)"
    ) as info:
        run_extraction(
            table,
            TableSpec("wide", relation="wide"),
            LoadBackConsumer(table, "wide_copy"),
            options=ExtractOptions(
                workers=2,
                range_bytes=2 * 8192,
                chunk_bytes=CHUNK,
                staging_budget_bytes=8 * CHUNK,
                staging_dir=str(tmp_path),
            ),
            hooks=ExtractHooks(before_task=fail_on_task_four),
        )
    assert list(tmp_path.iterdir()) == []
    assert reader_threads() == []
    assert isinstance(info.value.__cause__, OSError)


def test_a_row_larger_than_the_receive_buffer_is_read_whole(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE huge (id int, body text)")
        conn.execute("ALTER TABLE huge ALTER body SET STORAGE EXTERNAL")
        conn.execute("INSERT INTO huge VALUES (1, 'a'), (2, repeat('b', 9000000)), (3, 'c')")
    clone_empty(pg_dsn, "SELECT * FROM huge", "huge_copy")
    log = ChunkLog()
    run = run_extraction(
        pg_dsn,
        TableSpec("huge", relation="huge"),
        LoadBackConsumer(pg_dsn, "huge_copy", log),
        options=ExtractOptions(workers=1, reader="socket", chunk_bytes=1 << 20, staging_budget_bytes=4 << 20),
    )
    assert run.stats.rows == 3 and [c[3] for c in log.chunks] == [1, 1, 1]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT id, length(body) FROM huge_copy ORDER BY id").fetchall() == [
            (1, 1),
            (2, 9000000),
            (3, 1),
        ]


def test_default_staging_is_per_user_and_private(monkeypatch, tmp_path):
    from parquetry.extract.staging import default_staging_root, make_run_dir

    monkeypatch.delenv("PARQUETRY_STAGING_DIR", raising=False)
    assert default_staging_root().name.endswith(f"-{os.getuid()}")
    run = make_run_dir(tmp_path / "stage")
    assert run.parent == tmp_path / "stage" and (run.stat().st_mode & 0o777) == 0o700


def test_an_unwritable_staging_root_is_a_clear_error(tmp_path):
    from parquetry.extract.errors import ExtractError
    from parquetry.extract.staging import make_run_dir

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(ExtractError, match="PARQUETRY_STAGING_DIR"):
        make_run_dir(blocker / "stage")
