"""Outputs are read back while later ones are written; the files and the proof stay the same."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import Catalog
from parquetry.compact import CompactionError, Compactor, VerificationError, rowgroup_copy
from parquetry.compact import compactor as compactor_module
from parquetry.compact.rowgroup_copy import RowGroupCopyError, copy_row_groups, read_source_footer
from parquetry.compact.verify import RowDigest
from parquetry.storage import Storage, WrittenFile
from parquetry.testing.compaction import SMALL_SETTINGS, mixed_table, register, write_files


def _dataset(catalog: Catalog, root: Path, name: str) -> Storage:
    """24 files of 500 rows: with ``SMALL_SETTINGS`` (5,000-row outputs), three re-encoded outputs."""
    storage = Storage(str(root))
    register(catalog, name, storage, write_files(storage, "", files=24, rows_per_file=500))
    return storage


def _leftovers(storage: Storage) -> list[str]:
    return [p for p in os.listdir(storage.base) if p.startswith(("compacted-", ".tmp-"))]


def test_row_digests_of_disjoint_parts_merge_into_the_digest_of_the_whole() -> None:
    table = mixed_table(5000)
    whole, first, second = RowDigest(), RowDigest(), RowDigest()
    whole.update(table)
    first.update(table.slice(3000))  # order does not matter either
    second.update(table.slice(0, 3000))
    first.merge(second)
    assert first.as_dict() == whole.as_dict()
    assert first.differences(whole) == []

    changed = RowDigest()
    changed.update(table.slice(0, 3000))
    altered = table.slice(3000).set_column(2, "price", pa.array([0.5] * 2000))
    other = RowDigest()
    other.update(altered)
    changed.merge(other)
    assert changed.differences(whole) == ["row hashes differ"]
    for digest in (whole, first, second, changed, other):
        digest.close()


@pytest.mark.postgres
def test_an_output_is_read_back_while_the_next_one_is_written(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dataset(catalog, tmp_path / "data", "overlap")
    second_write_started = threading.Event()
    overlapped: list[bool] = []
    real_write, real_read_back = Compactor._write, compactor_module.read_back
    writes = 0

    def write(self: Compactor, *args: Any) -> Any:
        nonlocal writes
        writes += 1
        if writes == 2:
            second_write_started.set()
        return real_write(self, *args)

    def read_back(storage: Storage, path: str, *args: Any) -> Any:
        if not overlapped:  # the first output waits until the second is being written
            overlapped.append(second_write_started.wait(timeout=20))
        return real_read_back(storage, path, *args)

    monkeypatch.setattr(Compactor, "_write", write)
    monkeypatch.setattr(compactor_module, "read_back", read_back)
    result = Compactor(catalog, SMALL_SETTINGS).run("overlap")

    assert overlapped == [True]
    assert result.output_files == 3
    assert result.verification["read_back_by"] == {"duckdb": 3, "pyarrow": 0}
    assert result.verification["input"] == result.verification["output"]


@pytest.mark.postgres
def test_overlapped_read_back_writes_the_same_files_as_one_output_at_a_time(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _dataset(catalog, tmp_path / "a", "overlapped")
    second = _dataset(catalog, tmp_path / "b", "sequential")
    expected = pa.concat_tables([pq.read_table(p) for p in sorted(first.list_files(first.base))])
    overlapped = Compactor(catalog, SMALL_SETTINGS).run("overlapped")

    real_submit = compactor_module._OutputVerifier.submit

    def submit_and_wait(self: Any, *args: Any) -> None:
        real_submit(self, *args)
        self._jobs[-1][1].result()  # each output verified before the next is written

    monkeypatch.setattr(compactor_module._OutputVerifier, "submit", submit_and_wait)
    sequential = Compactor(catalog, SMALL_SETTINGS).run("sequential")

    def etags(name: str) -> list[str]:
        return [f.etag for f in sorted(catalog.live_files(name), key=lambda f: f.path)]

    assert overlapped.output_files == sequential.output_files == 3
    assert etags("overlapped") == etags("sequential")
    assert overlapped.verification["output"] == sequential.verification["output"]
    got = pa.concat_tables([pq.read_table(p) for p in overlapped.outputs])
    assert got.sort_by("id").equals(expected.sort_by("id"))
    assert sorted(_leftovers(second)) == sorted(os.path.basename(p) for p in sequential.outputs)


@pytest.mark.postgres
def test_outputs_do_not_depend_on_how_many_row_groups_are_encoded_at_once(
    catalog: Catalog, tmp_path: Path
) -> None:
    results = {}
    for threads in (1, 3):
        _dataset(catalog, tmp_path / f"t{threads}", f"threads-{threads}")
        settings = dataclasses.replace(SMALL_SETTINGS, encode_threads=threads)
        results[threads] = Compactor(catalog, settings).run(f"threads-{threads}")

    def etags(name: str) -> list[str]:
        return [f.etag for f in sorted(catalog.live_files(name), key=lambda f: f.path)]

    assert results[1].output_files == results[3].output_files == 3
    assert results[1].row_groups_after == results[3].row_groups_after > results[1].output_files
    assert etags("threads-1") == etags("threads-3")
    assert results[3].verification["verified"] is True


@pytest.mark.postgres
def test_a_damaged_early_output_stops_the_run_and_publishes_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _dataset(catalog, tmp_path / "data", "damaged")
    before = catalog.snapshot("damaged")
    real_read_back = compactor_module.read_back
    damaged: list[str] = []

    def damage_first_then_read_back(storage: Storage, path: str, *args: Any) -> Any:
        if not damaged:
            damaged.append(path)
            with open(path, "r+b") as fh:  # the first page header no longer decodes
                fh.seek(4)
                fh.write(b"\xff" * 64)
        return real_read_back(storage, path, *args)

    monkeypatch.setattr(compactor_module, "read_back", damage_first_then_read_back)
    with pytest.raises(VerificationError, match=r"compacted-.*does not read back"):
        Compactor(catalog, SMALL_SETTINGS).run("damaged")
    assert len(damaged) == 1
    assert catalog.snapshot("damaged") == before
    assert _leftovers(storage) == []
    assert not catalog.dataset("damaged").compaction_in_progress


def _two_sources(root: Path) -> tuple[Storage, list[WrittenFile]]:
    """Two 20,000-row files of distinct rows, each one row group: inputs for a byte-for-byte copy."""
    storage = Storage(str(root))
    sources = [
        storage.write_parquet(storage.path(f"{n}.parquet"), mixed_table(20_000, start=n * 20_000))
        for n in range(2)
    ]
    return storage, sources


def test_copies_compared_in_small_blocks_record_the_stored_files_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks much smaller than a column chunk: the etag is hashed in a second thread, still in order."""
    monkeypatch.setattr(rowgroup_copy, "_COMPARE_BLOCK", 4096)
    storage, sources = _two_sources(tmp_path)
    parts = [(read_source_footer(storage, s.path), 0) for s in sources]
    written, info = copy_row_groups(storage, storage.path("out.parquet"), parts)
    assert (written.etag, written.bytes) == storage.file_digest(written.path)
    assert info["row_groups"] == 2
    assert pq.read_table(written.path).equals(pa.concat_tables([pq.read_table(s.path) for s in sources]))


def test_a_byte_changed_deep_inside_the_second_source_copy_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rowgroup_copy, "_COMPARE_BLOCK", 4096)
    storage, sources = _two_sources(tmp_path)
    parts = [(read_source_footer(storage, s.path), 0) for s in sources]
    at = sources[0].bytes + 5000  # past the first source's chunks, many blocks into the second's
    real_verify = rowgroup_copy._verify

    def damage_then_verify(storage: Storage, tmp: str, *args: Any) -> Any:
        with open(tmp, "r+b") as fh:
            fh.seek(at)
            (byte,) = fh.read(1)
            fh.seek(at)
            fh.write(bytes([byte ^ 0xFF]))
        return real_verify(storage, tmp, *args)

    monkeypatch.setattr(rowgroup_copy, "_verify", damage_then_verify)
    with pytest.raises(RowGroupCopyError, match=r"read back differ from .*1\.parquet bytes"):
        copy_row_groups(storage, storage.path("out.parquet"), parts)
    assert sorted(os.listdir(storage.base)) == ["0.parquet", "1.parquet"]


def _copyable(catalog: Catalog, root: Path, name: str) -> list[WrittenFile]:
    """Six small files of one healthy 1,500-row group each: with 3,000-row outputs, three byte copies."""
    storage = Storage(str(root))
    files = write_files(storage, "", files=6, rows_per_file=1500)
    register(catalog, name, storage, files)
    return files


COPY_SETTINGS = dataclasses.replace(SMALL_SETTINGS, row_group_rows=1500, target_file_rows=3000)


@pytest.mark.postgres
def test_byte_copied_outputs_are_made_two_at_a_time(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _copyable(catalog, tmp_path, "copies")
    both_started = threading.Barrier(2, timeout=10)
    real = compactor_module.copy_row_groups
    calls: list[str] = []

    def copy_when_both_run(storage: Storage, path: str, parts: Any) -> Any:
        calls.append(path)
        if len(calls) <= 2:
            both_started.wait()  # breaks (and fails the run) unless the first two copies run at once
        return real(storage, path, parts)

    monkeypatch.setattr(compactor_module, "copy_row_groups", copy_when_both_run)
    monkeypatch.setattr(compactor_module, "COPY_THREADS", 2)
    result = Compactor(catalog, COPY_SETTINGS).run("copies")

    assert result.verification["byte_copied"] == {
        "files": 3,
        "row_groups": 6,
        "chunk_bytes": result.verification["byte_copied"]["chunk_bytes"],
    }
    expected = pa.concat_tables([pq.read_table(f.path) for f in files])
    got = pa.concat_tables([pq.read_table(p) for p in result.outputs])
    assert got.equals(expected)  # outputs in plan order, rows in input order


@pytest.mark.postgres
def test_a_failed_copy_among_several_publishes_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copyable(catalog, tmp_path, "copy-fails")
    before = sorted(f.path for f in catalog.live_files("copy-fails"))
    real = compactor_module.copy_row_groups
    calls: list[str] = []

    def fail_the_second(storage: Storage, path: str, parts: Any) -> Any:
        calls.append(path)
        if len(calls) == 2:
            raise RowGroupCopyError(f"{path}: the bytes read back differ from the source")
        return real(storage, path, parts)

    monkeypatch.setattr(compactor_module, "copy_row_groups", fail_the_second)
    with pytest.raises(CompactionError, match="the bytes read back differ"):
        Compactor(catalog, COPY_SETTINGS).run("copy-fails")

    assert sorted(f.path for f in catalog.live_files("copy-fails")) == before
    assert _leftovers(Storage(str(tmp_path))) == []
