"""The compactor on local storage: results checked against pyarrow and DuckDB reading the files directly."""

from __future__ import annotations

import dataclasses
import os
import threading

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import Catalog, FragmentationPolicy, LeaseHeld, StaleInputs
from parquetry.compact import CompactionError, CompactionSettings, Compactor, cleanup
from parquetry.compact import compactor as compactor_module
from parquetry.storage import ParquetOptions, Storage, WrittenFile
from parquetry.testing.compaction import SMALL_SETTINGS, mixed_table, register, write_files

pytestmark = pytest.mark.postgres


def read_live(catalog: Catalog, dataset: str) -> pa.Table:
    """The dataset as a reader sees it: the catalog's live files, read by pyarrow, sorted by id."""
    paths = [f.path for f in catalog.live_files(dataset)]
    tables = [pq.read_table(p, coerce_int96_timestamp_unit="us") for p in paths]
    return pa.concat_tables(tables, promote_options="default").sort_by("id")


@pytest.mark.parametrize("encoder", ["pyarrow", "parquetry"])
def test_fragmented_dataset_becomes_few_target_sized_files_with_identical_rows(
    catalog: Catalog, storage: Storage, encoder: str
) -> None:
    files = write_files(storage, "", files=12, rows_per_file=700, row_group_rows=300)
    register(catalog, "frag", storage, files)
    assert catalog.dataset("frag").compaction_needed
    before = read_live(catalog, "frag")

    result = Compactor(catalog, dataclasses.replace(SMALL_SETTINGS, encoder=encoder)).run("frag")

    assert result.status == "compacted"
    assert (result.files_before, result.files_after) == (12, 2)
    live = catalog.live_files("frag")
    assert [f.rows for f in live] == [4000, 4400]
    for f in live:
        meta = pq.read_metadata(f.path)
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] in (
            [2000, 2000],
            [2000, 2000, 400],
        )
        assert all(
            meta.row_group(r).column(c).is_stats_set
            for r in range(meta.num_row_groups)
            for c in range(meta.num_columns)
        )
    assert read_live(catalog, "frag").equals(before)
    ids = pa.concat_tables([pq.read_table(f.path, columns=["id"]) for f in live]).column("id")
    assert ids.to_pylist() == list(range(8400)), "input order is kept"
    duck = duckdb.sql(
        f"SELECT count(*), count(DISTINCT id), sum(qty) FROM read_parquet({[f.path for f in live]})"
    )
    assert duck.fetchall()[0] == (8400, 8400, pc.sum(before.column("qty")).as_py())
    info = catalog.dataset("frag")
    assert not info.compaction_needed and not info.compaction_in_progress
    assert result.verification["input"] == result.verification["output"]


def test_second_run_has_nothing_to_do_and_clears_the_flag(catalog: Catalog, storage: Storage) -> None:
    register(catalog, "d", storage, write_files(storage, "", files=5, rows_per_file=100))
    Compactor(catalog, SMALL_SETTINGS).run("d")
    generation = catalog.dataset("d").generation
    again = Compactor(catalog, SMALL_SETTINGS).run("d")
    assert again.status == "nothing_to_do"
    assert catalog.dataset("d").generation == generation


def healthy_file(storage: Storage, start: int) -> WrittenFile:
    """One 3,000-row file of one row group: healthy under :func:`healthy_policy`."""
    (written,) = write_files(
        storage,
        "",
        files=1,
        rows_per_file=3000,
        start=start,
        options=ParquetOptions(row_group_rows=3000, compression="none"),
    )
    return written


def healthy_policy(catalog: Catalog, healthy: WrittenFile) -> Catalog:
    policy = FragmentationPolicy(
        small_file_bytes=healthy.bytes, min_small_files=4, min_mean_row_group_rows=1000
    )
    return Catalog(catalog.dsn, policy=policy)


def test_healthy_files_are_left_in_place(catalog: Catalog, storage: Storage) -> None:
    healthy = healthy_file(storage, start=0)
    small = write_files(storage, "", files=4, rows_per_file=50, start=3000)
    cat = healthy_policy(catalog, healthy)
    register(cat, "mix", storage, [healthy, *small])
    result = Compactor(cat, SMALL_SETTINGS).run("mix")
    live = sorted(f.path for f in cat.live_files("mix"))
    assert healthy.path in live and result.input_files == 4 and len(live) == 2


def test_rows_keep_their_order_around_a_file_left_in_place(catalog: Catalog, storage: Storage) -> None:
    before = write_files(storage, "", files=5, rows_per_file=50)
    healthy = healthy_file(storage, start=250)
    after = write_files(storage, "", files=5, rows_per_file=50, start=3250)
    cat = healthy_policy(catalog, healthy)
    register(cat, "around", storage, [*before, healthy, *after])

    result = Compactor(cat, SMALL_SETTINGS).run("around")

    assert (result.input_files, result.output_files) == (10, 2)
    live = [f.path for f in cat.live_files("around")]
    assert live[1] == healthy.path, "the outputs sit on either side of the file left in place"
    ids = pa.concat_tables([pq.read_table(p, columns=["id"]) for p in live]).column("id")
    assert ids.to_pylist() == list(range(3500)), "a reader of the live files sees the rows in order"


def test_partitions_are_compacted_within_their_own_directory(catalog: Catalog, storage: Storage) -> None:
    files = write_files(storage, "day=1", files=4, rows_per_file=100) + write_files(
        storage, "day=2", files=4, rows_per_file=100, start=400
    )
    register(catalog, "hive", storage, files)
    Compactor(catalog, SMALL_SETTINGS).run("hive")
    live = catalog.live_files("hive")
    assert sorted(os.path.basename(os.path.dirname(f.path)) for f in live) == ["day=1", "day=2"]
    day2 = pq.read_table(next(f.path for f in live if "/day=2/" in f.path))
    assert sorted(day2.column("id").to_pylist()) == list(range(400, 800))


def test_added_columns_read_as_nulls_in_older_rows(catalog: Catalog, storage: Storage) -> None:
    old = write_files(storage, "", files=3, rows_per_file=100)
    newer_table = mixed_table(100, start=300).append_column("note", pa.array(["n"] * 100))
    newer = storage.write_parquet(storage.path("part-new.parquet"), newer_table)
    register(catalog, "evolve", storage, [*old, newer])
    catalog.register_files("evolve", storage.root, [newer], newer_table.schema)
    Compactor(catalog, SMALL_SETTINGS).run("evolve")
    out = read_live(catalog, "evolve")
    assert out.schema.names[-1] == "note"
    assert out.column("note").null_count == 300
    assert out.filter(pc.field("id") >= 300).column("note").to_pylist() == ["n"] * 100


def test_incompatible_column_types_are_refused_naming_both_files(catalog: Catalog, storage: Storage) -> None:
    good = write_files(storage, "", files=3, rows_per_file=100)
    bad_table = mixed_table(100, start=300).set_column(1, "qty", pa.array(["x"] * 100))
    bad = storage.write_parquet(storage.path("part-bad.parquet"), bad_table)
    register(catalog, "clash", storage, [*good, bad])
    generation = catalog.dataset("clash").generation
    with pytest.raises(CompactionError, match=r"'qty'.*part-000000000000\.parquet.*part-bad\.parquet"):
        Compactor(catalog, SMALL_SETTINGS).run("clash")
    assert catalog.dataset("clash").generation == generation
    assert not catalog.dataset("clash").compaction_in_progress


def test_int96_timestamps_are_read_as_microseconds(catalog: Catalog, storage: Storage) -> None:
    table = pa.table(
        {
            "id": pa.array(range(4), pa.int64()),
            "at": pa.array([0, 1_500_000, 10**15, None], pa.timestamp("us")),
        }
    )
    files = []
    storage.makedirs(storage.base)
    for n in range(4):
        path = storage.path(f"legacy-{n}.parquet")
        pq.write_table(table, path, use_deprecated_int96_timestamps=True)
        assert pq.read_metadata(path).row_group(0).column(1).physical_type == "INT96"
        digest, size = storage.file_digest(path)
        files.append(WrittenFile(path, size, 4, 1, digest))
    catalog.register_files("legacy", storage.root, files, table.schema)
    Compactor(catalog, SMALL_SETTINGS).run("legacy")
    (out,) = catalog.live_files("legacy")
    got = pq.read_table(out.path)
    assert got.schema.field("at").type == pa.timestamp("us")
    assert got.column("at").to_pylist() == table.column("at").to_pylist() * 4


def test_a_corrupt_input_is_named_and_the_dataset_is_untouched(catalog: Catalog, storage: Storage) -> None:
    files = write_files(storage, "", files=4, rows_per_file=100)
    register(catalog, "broken", storage, files)
    with open(files[2].path, "r+b") as fh:
        fh.seek(-12, os.SEEK_END)
        fh.write(b"\xff" * 8)
    before = catalog.snapshot("broken")
    with pytest.raises(CompactionError, match=os.path.basename(files[2].path)):
        Compactor(catalog, SMALL_SETTINGS).run("broken")
    assert catalog.snapshot("broken") == before
    assert not catalog.dataset("broken").compaction_in_progress
    assert not [p for p in os.listdir(storage.base) if p.startswith(("compacted-", ".tmp-"))]


def test_a_corrupt_data_page_is_named_and_nothing_is_published(catalog: Catalog, storage: Storage) -> None:
    files = write_files(storage, "", files=4, rows_per_file=2000, row_group_rows=500)  # re-encoded
    register(catalog, "pages", storage, files)
    with open(files[1].path, "r+b") as fh:  # zstd pages: damage makes decompression fail
        fh.seek(8)
        fh.write(b"\x00\xff" * 400)
    before = catalog.snapshot("pages")
    with pytest.raises(CompactionError, match=os.path.basename(files[1].path)):
        Compactor(catalog, SMALL_SETTINGS).run("pages")
    assert catalog.snapshot("pages") == before
    assert not [p for p in os.listdir(storage.base) if p.startswith(("compacted-", ".tmp-"))]


def test_cleanup_deletes_retired_files_only_after_the_grace_period(
    catalog: Catalog, storage: Storage
) -> None:
    files = write_files(storage, "", files=4, rows_per_file=100)
    register(catalog, "g", storage, files)
    Compactor(catalog, SMALL_SETTINGS).run("g")
    assert cleanup(catalog, grace_s=3600).deleted == []
    assert all(os.path.exists(f.path) for f in files)
    result = cleanup(catalog, grace_s=0)
    assert sorted(result.deleted) == sorted(f.path for f in files)
    assert not any(os.path.exists(f.path) for f in files)
    assert all(os.path.exists(f.path) for f in catalog.live_files("g"))
    assert cleanup(catalog, grace_s=0).deleted == []


def test_cleanup_removes_uncommitted_outputs_but_not_catalogued_files(
    catalog: Catalog, storage: Storage
) -> None:
    register(catalog, "o", storage, write_files(storage, "", files=4, rows_per_file=100))
    orphan = storage.write_parquet(storage.path("compacted-deadbeef-00000.parquet"), mixed_table(5))
    result = cleanup(catalog, grace_s=0)
    assert result.orphans == [orphan.path]
    assert all(os.path.exists(f.path) for f in catalog.live_files("o"))


def test_two_compactions_at_once_exactly_one_commits(catalog: Catalog, storage: Storage) -> None:
    register(catalog, "race", storage, write_files(storage, "", files=8, rows_per_file=500))
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(Compactor(catalog, SMALL_SETTINGS).run("race").status)
        except LeaseHeld:
            outcomes.append("lease_held")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) in (["compacted", "lease_held"], ["compacted", "nothing_to_do"])
    assert len(catalog.compaction_log("race")) == 1
    assert read_live(catalog, "race").column("id").to_pylist() == list(range(4000))


def test_a_reader_sees_the_old_or_the_new_file_set_never_a_mix(catalog: Catalog, storage: Storage) -> None:
    register(catalog, "read", storage, write_files(storage, "", files=10, rows_per_file=300))
    expected = list(range(3000))
    seen: list[tuple[int, bool]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            snap = catalog.snapshot("read")
            ids = pa.concat_tables([pq.read_table(f.path, columns=["id"]) for f in snap.files]).column("id")
            seen.append((snap.generation, sorted(ids.to_pylist()) == expected))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        Compactor(catalog, SMALL_SETTINGS).run("read")
    finally:
        stop.set()
        thread.join()
    assert all(ok for _, ok in seen)
    assert catalog.dataset("read").generation == 2


def test_outputs_of_healthy_row_groups_are_byte_copies_that_pyarrow_and_duckdb_read_back(
    catalog: Catalog, storage: Storage
) -> None:
    files = write_files(storage, "", files=5, rows_per_file=1500)  # one 1,500-row group each: healthy
    register(catalog, "copy", storage, files)
    expected = pa.concat_tables([pq.read_table(f.path) for f in files])

    result = Compactor(catalog, CompactionSettings(row_group_rows=2000, target_file_rows=100_000)).run("copy")

    assert result.verification["byte_copied"]["files"] == 1
    (live,) = catalog.live_files("copy")
    assert pq.read_table(live.path).equals(expected)
    columns = ", ".join(f'"{n}"' for n in expected.column_names)
    duck = duckdb.sql(f"SELECT {columns} FROM read_parquet('{live.path}')").to_arrow_table()
    assert duck.sort_by("id").equals(expected.cast(duck.schema))
    out_meta, src_meta = pq.read_metadata(live.path), pq.read_metadata(files[0].path)
    assert out_meta.num_row_groups == 5
    assert out_meta.row_group(0).column(2).statistics == src_meta.row_group(0).column(2).statistics
    assert storage.file_digest(live.path) == (live.etag, live.bytes)


def test_healthy_row_groups_are_re_encoded_when_byte_copy_is_off(catalog: Catalog, storage: Storage) -> None:
    register(catalog, "nocopy", storage, write_files(storage, "", files=5, rows_per_file=1500))
    settings = CompactionSettings(row_group_rows=2000, target_file_rows=100_000, copy_row_groups=False)
    result = Compactor(catalog, settings).run("nocopy")
    assert result.verification["byte_copied"]["files"] == 0
    assert result.verification["output"]["rows"] == 7500


def test_a_refused_commit_removes_the_outputs_and_keeps_the_rewritten_file(
    catalog: Catalog, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_files(storage, "", files=4, rows_per_file=100)
    register(catalog, "stale", storage, files)

    def rewrite_an_input(point: str) -> None:
        if point == "after_outputs":  # a writer re-runs its partition while the compactor verifies
            again = storage.write_parquet(files[0].path, mixed_table(100, start=10_000))
            register(catalog, "stale", storage, [again])

    monkeypatch.setattr(compactor_module, "fault_point", rewrite_an_input)
    with pytest.raises(StaleInputs):
        Compactor(catalog, SMALL_SETTINGS).run("stale")
    assert not [p for p in os.listdir(storage.base) if p.startswith("compacted-")]
    ids = read_live(catalog, "stale").column("id").to_pylist()
    assert ids == list(range(100, 400)) + list(range(10_000, 10_100))
    assert not catalog.dataset("stale").compaction_in_progress


def test_outputs_stay_when_the_commit_outcome_is_unknown(
    catalog: Catalog, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(catalog, "lost", storage, write_files(storage, "", files=4, rows_per_file=100))
    real_commit = catalog.commit_compaction

    def commit_then_lose_the_reply(*args: object, **kwargs: object) -> int:
        real_commit(*args, **kwargs)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(catalog, "commit_compaction", commit_then_lose_the_reply)
    with pytest.raises(psycopg.OperationalError):
        Compactor(catalog, SMALL_SETTINGS).run("lost")
    assert read_live(catalog, "lost").column("id").to_pylist() == list(range(400))
    assert all(os.path.exists(f.path) for f in catalog.live_files("lost"))


def test_orphan_sweep_leaves_a_dataset_under_compaction_alone(catalog: Catalog, storage: Storage) -> None:
    register(catalog, "busy", storage, write_files(storage, "", files=4, rows_per_file=100))
    pending = storage.write_parquet(storage.path("compacted-0123456789-00000.parquet"), mixed_table(5))
    lease = catalog.acquire_lease("busy", "long-run", ttl_s=60)
    assert cleanup(catalog, grace_s=0).orphans == []
    assert os.path.exists(pending.path)
    catalog.release_lease("busy", lease.token)
    assert cleanup(catalog, grace_s=0).orphans == [pending.path]


def test_empty_files_and_awkward_column_names_compact_cleanly(catalog: Catalog, storage: Storage) -> None:
    def table(start: int, rows: int) -> pa.Table:
        ids = list(range(start, start + rows))
        return pa.table({'we"ird name': pa.array(ids, pa.int64()), "select": [str(i) for i in ids]})

    written = [storage.write_parquet(storage.path(f"f{n}.parquet"), table(n * 10, 10)) for n in range(4)]
    written.append(storage.write_parquet(storage.path("empty.parquet"), table(0, 0)))
    catalog.register_files("odd", storage.root, written, table(0, 0).schema)

    result = Compactor(catalog, SMALL_SETTINGS).run("odd")

    assert (result.status, result.input_files, result.output_files) == ("compacted", 5, 1)
    (live,) = catalog.live_files("odd")
    assert pq.read_table(live.path).column('we"ird name').to_pylist() == list(range(40))
