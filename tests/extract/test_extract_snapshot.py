"""All readers share the coordinator's exported snapshot: writes committed mid-run are invisible."""

import threading

import psycopg
import pytest

from parquetry.extract.pipeline import ExtractHooks, ExtractOptions, run_extraction
from parquetry.extract.spec import TableSpec
from parquetry.testing.extract_support import LoadBackConsumer, clone_empty

pytestmark = pytest.mark.postgres


def test_rows_written_during_extraction_are_not_seen(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE acct (id int, balance int, note text)")
        conn.execute("INSERT INTO acct SELECT g, 100, repeat('n', 40) FROM generate_series(1, 20000) g")
        conn.execute("CREATE TABLE expected AS SELECT * FROM acct")
    clone_empty(pg_dsn, "SELECT * FROM acct", "got")
    writes_done: list[int] = []
    lock = threading.Lock()

    def write_meanwhile(task):
        # Task 0: its worker has not connected yet, so it imports the snapshot after this commit.
        # Task 6: the other workers are mid-transaction, reading ranges this write touches.
        if task.index not in (0, 6):
            return
        with lock:
            with psycopg.connect(pg_dsn, autocommit=True) as other:
                other.execute("UPDATE acct SET balance = balance + 1, note = 'changed'")
                other.execute("DELETE FROM acct WHERE id % 10 = 0")
                other.execute("INSERT INTO acct SELECT g, -1, 'new' FROM generate_series(20001, 23000) g")
            writes_done.append(task.index)

    run = run_extraction(
        pg_dsn,
        TableSpec("acct", relation="acct"),
        LoadBackConsumer(pg_dsn, "got"),
        options=ExtractOptions(
            workers=2, range_bytes=4 * 8192, chunk_bytes=16 * 1024, staging_budget_bytes=128 * 1024
        ),
        hooks=ExtractHooks(before_task=write_meanwhile),
    )
    assert sorted(writes_done) == [0, 6] and len(run.plan.tasks) > 6
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        # the table really changed...
        assert conn.execute("SELECT count(*), sum(balance) FROM acct").fetchone() != (20000, 2_000_000)
        # ...but the extract is the table as it was when the run started
        assert conn.execute("SELECT count(*), sum(balance) FROM got").fetchone() == (20000, 2_000_000)
        diff = conn.execute(
            "SELECT count(*) FROM ((SELECT * FROM got EXCEPT ALL SELECT * FROM expected)"
            " UNION ALL (SELECT * FROM expected EXCEPT ALL SELECT * FROM got)) d"
        ).fetchone()[0]
        assert diff == 0
