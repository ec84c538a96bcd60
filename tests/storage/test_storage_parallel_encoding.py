"""Row groups encoded in parallel make the same file, byte for byte, as one writer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS
from parquetry.storage import ParquetOptions, Storage
from parquetry.testing.compaction import mixed_table


@pytest.mark.parametrize(
    "options",
    [
        ParquetOptions(row_group_rows=1000),
        dataclasses.replace(EXTRACT_PARQUET_OPTIONS, row_group_rows=1000),
        ParquetOptions(row_group_rows=1000, use_dictionary="auto", delta_integers=True, compression="snappy"),
    ],
    ids=["defaults", "extraction", "snappy"],
)
def test_parallel_encoding_writes_the_bytes_of_one_writer(tmp_path: Path, options: ParquetOptions) -> None:
    storage = Storage(str(tmp_path))
    # Batches smaller than a row group, one larger (cut into row groups), a table, an empty batch.
    table = mixed_table(4321)
    pieces = [*table.slice(0, 1500).to_batches(max_chunksize=700), table.slice(1500, 2500), table.slice(4000)]
    pieces.insert(1, pa.record_batch([pa.array([], f.type) for f in table.schema], schema=table.schema))

    serial = storage.write_parquet(storage.path("serial.parquet"), pieces, table.schema, options)
    threaded = dataclasses.replace(options, encode_threads=3)
    parallel = storage.write_parquet(storage.path("parallel.parquet"), pieces, table.schema, threaded)

    assert Path(parallel.path).read_bytes() == Path(serial.path).read_bytes()
    assert (parallel.etag, parallel.rows, parallel.row_groups) == (serial.etag, 4321, serial.row_groups)
    assert pq.read_table(parallel.path).equals(table)


def test_a_whole_table_and_no_rows_at_all(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    options = ParquetOptions(row_group_rows=500, encode_threads=2)
    table = mixed_table(1200)

    whole = storage.write_parquet(storage.path("whole.parquet"), table, options=options)
    assert (whole.rows, whole.row_groups) == (1200, 3)
    assert pq.read_table(whole.path).equals(table)

    empty = storage.write_parquet(storage.path("empty.parquet"), [], table.schema, options)
    assert (empty.rows, empty.row_groups) == (0, 0)
    assert pq.read_schema(empty.path).remove_metadata().equals(table.schema)
    assert pa.types.is_string(pq.read_schema(empty.path).field("label").type)
