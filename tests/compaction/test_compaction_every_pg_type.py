"""What Parquetry extracts from PostgreSQL, it can compact: every supported type, edge values included.

The extraction writes the every-type table as many tiny files (the shape that fragments), the files are
registered as the extraction asset registers them, and the compactor, re-encoding and byte-copying,
must leave the same rows: wide numerics (decimal256), dates and timestamps beyond Python's years,
intervals, ranges, composites and N-D arrays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import Catalog, FragmentationPolicy
from parquetry.compact import CompactionSettings, Compactor
from parquetry.extract import TableSpec
from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS, extract_table_to_parquet
from parquetry.pg.cluster import PostgresCluster
from parquetry.storage import Storage
from parquetry.testing.arrow_compare import assert_same_table
from parquetry.testing.every_type import every_type_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def every_type_dsn(pg_cluster: PostgresCluster) -> Iterator[str]:
    with every_type_database(pg_cluster, "compaction_every_type", copies=2) as dsn:  # more files
        yield dsn


def read(paths: list[str]) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in paths])


@pytest.mark.parametrize("copy_row_groups", [True, False])
def test_every_extracted_postgresql_type_compacts_to_the_same_rows(
    every_type_dsn: str, pg_dsn: str, tmp_path: Path, copy_row_groups: bool
) -> None:
    storage = Storage(str(tmp_path / "lake"))
    tiny = dataclasses.replace(EXTRACT_PARQUET_OPTIONS, row_group_rows=2, target_file_rows=4)
    extracted = extract_table_to_parquet(
        every_type_dsn, TableSpec(name="every_type", relation="every_type"), storage, parquet_options=tiny
    )
    assert len(extracted.files) >= 6
    # Every file is small; row groups of 2 rows count as healthy, so they are copied when allowed.
    policy = FragmentationPolicy(small_file_bytes=1 << 30, min_small_files=2, min_mean_row_group_rows=2)
    catalog = Catalog(pg_dsn, policy=policy)
    catalog.migrate()
    uri = storage.uri(storage.path("every_type"))
    catalog.register_files("every_type", uri, extracted.files, extracted.schema)
    before = read([f.path for f in extracted.files])
    # Outputs of up to 6 rows in row groups of 3 (re-encoded: some 2-row input groups are split).
    settings = CompactionSettings(
        row_group_rows=3, target_file_rows=6, copy_row_groups=copy_row_groups, lease_ttl_s=60
    )

    result = Compactor(catalog, settings).run("every_type")

    assert result.status == "compacted"
    copied = result.verification["byte_copied"]["row_groups"]
    assert (copied > 0) == copy_row_groups
    assert result.verification["input"] == result.verification["output"]
    live = [f.path for f in catalog.live_files("every_type")]
    assert len(live) == result.files_after < result.files_before == len(extracted.files)
    after = read(live)
    assert after.schema.equals(before.schema, check_metadata=False)
    # A file the plan leaves alone keeps its place in the catalog, ahead of the outputs: compare the
    # rows by id (its two copies of each row are equal, so their order does not matter).
    assert_same_table(after.sort_by("id"), before.sort_by("id"))
