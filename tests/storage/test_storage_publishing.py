"""Files are published whole or not at all: a failed write leaves the previous file and no temporary."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.storage import TEMP_PREFIX, Storage


def test_a_failed_write_keeps_the_published_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    path = storage.path("ds", "part-00000.parquet")
    storage.write_parquet(path, pa.table({"x": [1, 2, 3]}))

    def failing_batches():
        yield pa.record_batch({"x": [7]})
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        storage.write_parquet(path, failing_batches(), schema=pa.schema([("x", pa.int64())]))
    assert pq.read_table(path)["x"].to_pylist() == [1, 2, 3]
    assert not [p for p in (tmp_path / "ds").iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_a_rewrite_replaces_the_file_and_reports_its_digest(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    path = storage.path("ds", "a.parquet")
    storage.write_parquet(path, pa.table({"x": [1]}))
    written = storage.write_parquet(path, pa.table({"x": [4, 5]}))
    assert (written.rows, written.row_groups) == (2, 1)
    assert written.etag == storage.file_digest(path)[0] and written.bytes == Path(path).stat().st_size
    assert pq.read_table(path)["x"].to_pylist() == [4, 5]


def test_publishing_is_atomic_on_an_fsspec_filesystem_too() -> None:
    storage = Storage("memory://parquetry-publishing-test")
    path = storage.path("t.parquet")
    with pytest.raises(RuntimeError), storage.publishing(path) as tmp:
        with storage.fs.open_output_stream(tmp) as out:
            out.write(b"partial")
        raise RuntimeError("verification failed")
    assert not storage.exists(path)
    assert storage.list_files(storage.base, suffix="") == []
