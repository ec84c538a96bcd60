"""The catalog: migrations, registration, the fragmentation policy, leases with fencing, the commit."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from parquetry.catalog import (
    LATEST_VERSION,
    Catalog,
    FragmentationPolicy,
    LeaseHeld,
    LeaseLost,
    StaleInputs,
    migrate,
)
from parquetry.storage import WrittenFile
from parquetry.testing.compaction import mixed_table

pytestmark = pytest.mark.postgres

SCHEMA = mixed_table(0).schema


def wf(
    path: str, rows: int = 100, nbytes: int = 1000, row_groups: int = 1, etag: str | None = None
) -> WrittenFile:
    return WrittenFile(path=path, bytes=nbytes, rows=rows, row_groups=row_groups, etag=etag or f"etag-{path}")


@pytest.fixture
def catalog(pg_dsn: str) -> Catalog:
    cat = Catalog(pg_dsn, policy=FragmentationPolicy(small_file_bytes=10_000, min_small_files=3))
    cat.migrate()
    return cat


def test_migrate_is_idempotent_and_safe_to_run_concurrently(pg_dsn: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                migrate(conn, "cat_x")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(pg_dsn) as conn:
        versions = conn.execute("SELECT version FROM cat_x.schema_version ORDER BY version").fetchall()
    assert [v[0] for v in versions] == list(range(1, LATEST_VERSION + 1))


def test_register_is_idempotent_and_bumps_generation_only_on_change(catalog: Catalog) -> None:
    files = [wf("/d/a.parquet"), wf("/d/b.parquet")]
    assert catalog.register_files("ds", "/d", files, SCHEMA) == 1
    assert catalog.register_files("ds", "/d", files, SCHEMA) == 1
    assert [f.path for f in catalog.live_files("ds")] == ["/d/a.parquet", "/d/b.parquet"]
    info = catalog.dataset("ds")
    assert (info.live_files, info.total_rows, info.total_bytes) == (2, 200, 2000)


def test_replace_paths_retires_what_a_rerun_overwrote(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf("/d/p=1/a.parquet"), wf("/d/p=2/b.parquet")], SCHEMA)
    generation = catalog.register_files(
        "ds", "/d", [wf("/d/p=1/a2.parquet")], SCHEMA, replace_paths=["/d/p=1/a.parquet"]
    )
    assert generation == 2
    assert sorted(f.path for f in catalog.live_files("ds")) == ["/d/p=1/a2.parquet", "/d/p=2/b.parquet"]


def test_overwritten_path_with_new_etag_replaces_the_old_row(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf("/d/a.parquet", etag="one")], SCHEMA)
    catalog.register_files("ds", "/d", [wf("/d/a.parquet", etag="two", rows=7)], SCHEMA)
    live = catalog.live_files("ds")
    assert [(f.path, f.etag, f.rows) for f in live] == [("/d/a.parquet", "two", 7)]


def test_dataset_etag_is_a_content_hash_of_the_live_file_set(catalog: Catalog) -> None:
    catalog.register_files("a", "/a", [wf("/a/x.parquet", etag="e1")], SCHEMA)
    catalog.register_files("b", "/a2", [wf("/a/x.parquet", etag="e1")], SCHEMA)
    catalog.register_files("c", "/a3", [wf("/a/x.parquet", etag="e2")], SCHEMA)
    assert catalog.dataset("a").etag == catalog.dataset("b").etag != catalog.dataset("c").etag


def test_policy_flags_a_directory_with_many_small_files_but_not_many_partitions(catalog: Catalog) -> None:
    catalog.register_files("spread", "/s", [wf(f"/s/p={i}/f.parquet") for i in range(5)], SCHEMA)
    assert not catalog.dataset("spread").compaction_needed
    catalog.register_files("packed", "/k", [wf(f"/k/p=1/f{i}.parquet") for i in range(3)], SCHEMA)
    assert catalog.dataset("packed").compaction_needed
    assert [d.name for d in catalog.flagged_datasets(10)] == ["packed"]


def test_policy_flags_many_tiny_row_groups_in_few_big_files(pg_dsn: str) -> None:
    cat = Catalog(
        pg_dsn,
        policy=FragmentationPolicy(small_file_bytes=10, min_row_groups=8, min_mean_row_group_rows=1000),
    )
    cat.migrate()
    cat.register_files("rg", "/r", [wf("/r/a.parquet", rows=800, row_groups=8, nbytes=10**6)], SCHEMA)
    assert cat.dataset("rg").compaction_needed
    cat.register_files("ok", "/o", [wf("/o/a.parquet", rows=8000, row_groups=8, nbytes=10**6)], SCHEMA)
    assert not cat.dataset("ok").compaction_needed


def test_a_held_lease_blocks_others_until_it_expires(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf("/d/a.parquet")], SCHEMA)
    first = catalog.acquire_lease("ds", "one", ttl_s=0.5)
    assert catalog.dataset("ds").compaction_in_progress
    with pytest.raises(LeaseHeld, match="one"):
        catalog.acquire_lease("ds", "two", ttl_s=10)
    time.sleep(0.6)
    assert not catalog.dataset("ds").compaction_in_progress
    second = catalog.acquire_lease("ds", "two", ttl_s=10)
    assert second.token > first.token
    with pytest.raises(LeaseLost):
        catalog.renew_lease("ds", first.token, 10)
    assert not catalog.release_lease("ds", first.token)
    assert catalog.release_lease("ds", second.token)


def test_commit_with_a_stale_fencing_token_is_refused(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf("/d/a.parquet"), wf("/d/b.parquet")], SCHEMA)
    inputs = catalog.live_files("ds")
    late = catalog.acquire_lease("ds", "late", ttl_s=0.3)
    time.sleep(0.4)
    winner = catalog.acquire_lease("ds", "winner", ttl_s=10)
    with pytest.raises(LeaseLost):
        catalog.commit_compaction("ds", late.token, late.generation, inputs, [wf("/d/c1.parquet", rows=200)])
    generation = catalog.commit_compaction(
        "ds", winner.token, winner.generation, inputs, [wf("/d/c2.parquet", rows=200)]
    )
    assert generation == winner.generation + 1
    assert [f.path for f in catalog.live_files("ds")] == ["/d/c2.parquet"]
    assert len(catalog.compaction_log("ds")) == 1


def test_commit_keeps_files_appended_after_planning_and_is_idempotent(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf("/d/a.parquet"), wf("/d/b.parquet")], SCHEMA)
    lease = catalog.acquire_lease("ds", "c", ttl_s=10)
    inputs = catalog.live_files("ds")
    catalog.register_files("ds", "/d", [wf("/d/late.parquet")], SCHEMA)
    outputs = [wf("/d/compacted.parquet", rows=200)]
    generation = catalog.commit_compaction("ds", lease.token, lease.generation, inputs, outputs)
    assert catalog.commit_compaction("ds", lease.token, lease.generation, inputs, outputs) == generation
    assert sorted(f.path for f in catalog.live_files("ds")) == ["/d/compacted.parquet", "/d/late.parquet"]
    assert catalog.dataset("ds").total_rows == 300


def test_commit_refuses_inputs_that_are_no_longer_live(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf("/d/a.parquet"), wf("/d/b.parquet")], SCHEMA)
    inputs = catalog.live_files("ds")
    catalog.register_files("ds", "/d", [wf("/d/a.parquet", etag="rewritten")], SCHEMA)
    lease = catalog.acquire_lease("ds", "c", ttl_s=10)
    with pytest.raises(StaleInputs, match=r"a\.parquet"):
        catalog.commit_compaction("ds", lease.token, lease.generation, inputs, [wf("/d/c.parquet", rows=200)])
    assert sorted(f.etag for f in catalog.live_files("ds")) == ["etag-/d/b.parquet", "rewritten"]


def test_snapshot_reads_one_generation(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf("/d/a.parquet")], SCHEMA)
    snap = catalog.snapshot("ds")
    assert (snap.generation, [f.path for f in snap.files]) == (1, ["/d/a.parquet"])


def test_outputs_committed_at_positions_take_the_place_of_their_inputs(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf(f"/d/{n}.parquet") for n in "abcd"], SCHEMA)
    lease = catalog.acquire_lease("ds", "c", ttl_s=10)
    live = catalog.live_files("ds")
    inputs = [live[0], live[2]]  # a and c; b stays between them
    catalog.register_files("ds", "/d", [wf("/d/late.parquet")], SCHEMA)
    outputs = [wf("/d/out-a.parquet"), wf("/d/out-c.parquet")]
    positions = [live[0].position, live[2].position]
    catalog.commit_compaction("ds", lease.token, lease.generation, inputs, outputs, positions=positions)
    order = [f.path.removeprefix("/d/") for f in catalog.live_files("ds")]
    assert order == ["out-a.parquet", "b.parquet", "out-c.parquet", "d.parquet", "late.parquet"]


def test_commit_without_positions_puts_outputs_last(catalog: Catalog) -> None:
    catalog.register_files("ds", "/d", [wf(f"/d/{n}.parquet") for n in "ab"], SCHEMA)
    lease = catalog.acquire_lease("ds", "c", ttl_s=10)
    inputs = catalog.live_files("ds")[:1]
    catalog.commit_compaction("ds", lease.token, lease.generation, inputs, [wf("/d/out.parquet")])
    assert [f.path for f in catalog.live_files("ds")] == ["/d/b.parquet", "/d/out.parquet"]


def test_a_catalog_migrated_from_version_1_keeps_its_file_order(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parquetry.catalog import migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        migrate(conn, "cat_v1")
    with psycopg.connect(pg_dsn) as conn:  # rows as version 1 wrote them: order by generation, then id
        (dataset_id,) = conn.execute(
            "INSERT INTO cat_v1.datasets (name, storage_uri) VALUES ('ds', '/d') RETURNING id"
        ).fetchone()
        for path, generation in [("/d/b.parquet", 1), ("/d/a.parquet", 1), ("/d/c.parquet", 2)]:
            conn.execute(
                "INSERT INTO cat_v1.files (dataset_id, path, bytes, rows, row_groups, etag, generation_added)"
                " VALUES (%s, %s, 1, 1, 1, 'e', %s)",
                [dataset_id, path, generation],
            )
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'cat_v1'"
            " AND table_name = 'files'"
        ).fetchall()
    assert ("position",) not in columns, "the catalog really is at version 1"
    monkeypatch.undo()

    assert Catalog(pg_dsn, schema="cat_v1").migrate() == LATEST_VERSION
    files = Catalog(pg_dsn, schema="cat_v1").live_files("ds")
    assert [f.path for f in files] == ["/d/b.parquet", "/d/a.parquet", "/d/c.parquet"]
    assert [f.position for f in files] == [f.id for f in files]
