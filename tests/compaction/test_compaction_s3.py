"""End to end on a real S3 HTTP endpoint (moto's server on loopback) through s3fs."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import Catalog, FragmentationPolicy
from parquetry.compact import CompactionSettings, Compactor, cleanup
from parquetry.storage import Storage
from parquetry.testing.compaction import register, write_files

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_compaction_on_s3_swaps_files_and_cleanup_deletes_the_old_objects(
    pg_dsn: str, s3_endpoint: str
) -> None:
    options = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": s3_endpoint}}

    def storage_for(uri: str) -> Storage:
        return Storage(uri, storage_options=options)

    storage = storage_for("s3://lake/events")
    catalog = Catalog(pg_dsn, policy=FragmentationPolicy(small_file_bytes=1 << 20, min_small_files=4))
    catalog.migrate()
    files = write_files(storage, "day=1", files=5, rows_per_file=400)
    register(catalog, "events", storage, files)

    result = Compactor(
        catalog, CompactionSettings(row_group_rows=1000, target_file_rows=10_000), storage_factory=storage_for
    ).run("events")

    assert (result.status, result.files_after) == ("compacted", 1)
    assert result.verification["read_back_by"] == {"duckdb": 0, "pyarrow": 1}  # DuckDB reads local files
    (live,) = catalog.live_files("events")
    assert live.path.startswith("lake/events/day=1/compacted-")
    with storage.fs.open_input_file(live.path) as fh:
        table = pq.read_table(fh)
    expected = pa.concat_tables([pq.read_table(storage.fs.open_input_file(f.path)) for f in files])
    assert table.equals(expected)
    assert storage.file_digest(live.path) == (live.etag, live.bytes)

    deleted = cleanup(catalog, grace_s=0, storage_factory=storage_for).deleted
    assert sorted(deleted) == sorted(f.path for f in files)
    assert storage.list_files(storage.path("day=1")) == [live.path]
