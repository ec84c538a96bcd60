"""Fragmented and healthy Parquet datasets for compaction tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from parquetry.catalog import Catalog, FragmentationPolicy
from parquetry.compact import CompactionSettings
from parquetry.storage import ParquetOptions, Storage, WrittenFile

# Test-sized policy and settings: a handful of 1 MiB files is fragmented, outputs hold 5,000 rows.
SMALL_POLICY = FragmentationPolicy(
    small_file_bytes=1 << 20, min_small_files=4, min_row_groups=8, min_mean_row_group_rows=1000
)
SMALL_SETTINGS = CompactionSettings(row_group_rows=2000, target_file_rows=5000, lease_ttl_s=30)


def mixed_table(rows: int, start: int = 0, seed: int = 0) -> pa.Table:
    """``rows`` rows of mixed types; ``id`` runs from ``start`` so every row of a dataset is unique."""
    rng = np.random.default_rng(seed + start)
    ids = np.arange(start, start + rows, dtype=np.int64)
    nulls = rng.random(rows) < 0.1
    return pa.table(
        {
            "id": ids,
            "qty": pa.array(rng.integers(-1000, 1000, rows, dtype=np.int32), mask=nulls),
            "price": rng.normal(100.0, 15.0, rows),
            "label": pa.array([f"item-{x % 997}" for x in ids.tolist()], pa.string()),
            "ok": rng.random(rows) < 0.5,
            "at": pa.array(ids * 1_000_003, type=pa.timestamp("us")),
            "day": pa.array((ids % 20000).astype(np.int32), type=pa.date32()),
        }
    )


def write_files(
    storage: Storage,
    directory: str,
    files: int,
    rows_per_file: int,
    row_group_rows: int | None = None,
    start: int = 0,
    options: ParquetOptions | None = None,
) -> list[WrittenFile]:
    """``files`` Parquet files of consecutive ``id`` ranges below ``directory``, via the atomic writer."""
    opts = options or ParquetOptions(row_group_rows=row_group_rows or rows_per_file)
    written = []
    for n in range(files):
        first = start + n * rows_per_file
        table = mixed_table(rows_per_file, start=first)
        written.append(
            storage.write_parquet(storage.path(directory, f"part-{first:012d}.parquet"), table, options=opts)
        )
    return written


def register(
    catalog: Catalog,
    dataset: str,
    storage: Storage,
    files: Sequence[WrittenFile],
    schema: pa.Schema | None = None,
) -> int:
    return catalog.register_files(dataset, storage.root, files, schema or mixed_table(0).schema)
