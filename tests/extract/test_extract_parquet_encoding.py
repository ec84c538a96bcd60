"""Extraction's Parquet encoding: delta-packed integers, no dictionaries, statistics, exact round trips.

The files are read back by pyarrow and by DuckDB (an independent Parquet reader), and their metadata is
checked for what ``EXTRACT_PARQUET_OPTIONS`` promises.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS
from parquetry.storage import ParquetOptions, Storage, delta_columns

ROWS = 5000


def _table() -> pa.Table:
    n = ROWS
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "small": pa.array([i % 7 if i % 11 else None for i in range(n)], pa.int16()),
            "qty": pa.array([i * 37 % 1000 for i in range(n)], pa.int32()),
            "day": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i % 900) for i in range(n)]),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=7 * i) for i in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "price": pa.array(
                [decimal.Decimal(i * 7919 % 10**9).scaleb(-2) * (-1 if i % 3 else 1) for i in range(n)],
                pa.decimal128(15, 2),
            ),
            "wide": pa.array(
                [decimal.Decimal(10**25 + i).scaleb(-3) for i in range(n)], pa.decimal128(30, 3)
            ),
            "ratio": pa.array([i / 7 for i in range(n)], pa.float64()),
            "flag": pa.array(["AN"[i % 2] for i in range(n)], pa.string()),
            "note": pa.array([f"note {i * 2654435761 % 10**9}" if i % 5 else None for i in range(n)]),
            "uid": pa.array([i.to_bytes(16, "big") for i in range(n)], pa.binary(16)),
        }
    )


def test_extraction_files_delta_pack_integer_columns_without_dictionaries(tmp_path) -> None:
    storage = Storage(str(tmp_path))
    table = _table()
    options = dataclasses.replace(EXTRACT_PARQUET_OPTIONS, row_group_rows=2000)
    written = storage.write_parquet(storage.path("t.parquet"), table, options=options)
    assert written.rows == ROWS and written.row_groups == 3

    meta = pq.ParquetFile(written.path).metadata
    delta = set(delta_columns(table.schema))
    assert delta == {"id", "small", "qty", "day", "at", "price"}
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(g).column(c)
            assert not any("DICTIONARY" in e for e in col.encodings), col.path_in_schema
            assert col.statistics is not None and col.statistics.has_min_max, col.path_in_schema
            if col.path_in_schema in delta:
                assert "DELTA_BINARY_PACKED" in col.encodings, col.path_in_schema
    physical = {
        meta.schema.column(c).name: meta.schema.column(c).physical_type for c in range(meta.num_columns)
    }
    assert physical["price"] == "INT64"  # decimal(15, 2) as an integer: what DELTA_BINARY_PACKED takes
    assert physical["wide"] == "FIXED_LEN_BYTE_ARRAY"  # precision 30 does not fit 64 bits

    back = pq.read_table(written.path)
    assert back.equals(table)
    duck = duckdb.sql(f"SELECT * FROM read_parquet('{written.path}') ORDER BY id").arrow()
    duck = duck.read_all() if isinstance(duck, pa.RecordBatchReader) else duck
    for name in ("id", "small", "qty", "day", "price", "wide", "ratio", "flag", "note", "uid"):
        assert duck.column(name).to_pylist() == table.column(name).to_pylist(), name
    assert duck.column("at").cast(pa.int64()).to_pylist() == table.column("at").cast(pa.int64()).to_pylist()


def test_delta_columns_get_no_dictionary_when_the_others_do() -> None:
    schema = _table().schema
    kwargs = ParquetOptions(use_dictionary=True, delta_integers=True).writer_kwargs(schema)
    assert set(kwargs["column_encoding"]) == set(delta_columns(schema))
    assert set(kwargs["use_dictionary"]) == set(schema.names) - set(delta_columns(schema))
    assert kwargs["store_decimal_as_integer"] is True


def test_default_parquet_options_keep_plain_encodings() -> None:
    kwargs = ParquetOptions().writer_kwargs(_table().schema)
    assert "column_encoding" not in kwargs and "store_decimal_as_integer" not in kwargs
    assert "write_batch_size" not in kwargs and kwargs["use_dictionary"] is True


def test_tables_in_the_stream_become_row_groups_without_losing_rows(tmp_path) -> None:
    storage = Storage(str(tmp_path))
    table = _table()
    batches = table.to_batches(max_chunksize=700)
    chunked = pa.Table.from_batches(batches[:4])  # 2800 rows in 4 chunks
    rest = batches[4:]
    options = ParquetOptions(row_group_rows=1000)

    def stream():
        yield chunked
        yield from rest

    written = storage.write_parquet(storage.path("s.parquet"), stream(), table.schema, options)
    meta = pq.ParquetFile(written.path).metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert sum(sizes) == written.rows == ROWS and max(sizes) <= 1000
    assert sizes[:3] == [1000, 1000, 800]  # the table alone makes the first three groups
    assert pq.read_table(written.path).equals(table)
