"""Narrow decimals handed to pyarrow as integers: the very file bytes pyarrow writes for the decimals.

``parquetry.parquet_writer.ParquetWriter`` narrows ``decimal128`` columns of precision <= 18 to the
INT32/INT64 Parquet stores them as, and gives the file pyarrow's footer for the real schema. The oracle
is pyarrow's own writer: every file must be byte for byte the same, and read back as the input.
"""

from __future__ import annotations

import dataclasses
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS
from parquetry.parquet_writer import ParquetWriter, narrow_columns
from parquetry.storage import Storage

OPTIONS = EXTRACT_PARQUET_OPTIONS  # extraction's encoding: delta integers store narrow decimals as integers


@st.composite
def decimal_columns(draw: st.DrawFn, rows: int) -> tuple[pa.Field, pa.Array]:
    precision = draw(st.sampled_from([1, 2, 5, 9, 10, 12, 15, 17, 18, 19, 30]))
    scale = draw(st.integers(0, min(precision, 6)))
    bound = 10**precision - 1
    values = draw(
        st.lists(
            st.one_of(st.none(), st.integers(-bound, bound), st.sampled_from([-bound, bound, 0])),
            min_size=rows,
            max_size=rows,
        )
    )
    t = pa.decimal128(precision, scale)
    exact = decimal.Context(prec=60)  # the default context rounds to 28 digits
    array = pa.array([None if v is None else decimal.Decimal(v).scaleb(-scale, exact) for v in values], t)
    nullable = draw(st.booleans()) or array.null_count > 0
    return pa.field(f"d{precision}_{scale}", t, nullable=nullable), array


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 300))
    columns = draw(st.lists(decimal_columns(rows + 7), min_size=1, max_size=4))
    fields, arrays = [], []
    for n, (f, a) in enumerate(columns):
        fields.append(f.with_name(f"{f.name}_{n}"))
        arrays.append(a)
    fields.append(pa.field("n", pa.int64()))
    arrays.append(pa.array(range(rows + 7)))
    fields.append(pa.field("s", pa.string()))
    arrays.append(pa.array([f"v{i % 13}" for i in range(rows + 7)]))
    schema = pa.schema(fields, metadata={b"written_by": b"test"})
    table = pa.Table.from_arrays(arrays, schema=schema)
    start = draw(st.integers(0, 7))  # a sliced table: arrays with an offset
    return table.slice(start, rows)


def _write(writer_class: type, table: pa.Table, batch_rows: int, row_group_rows: int) -> bytes:
    sink = pa.BufferOutputStream()
    kwargs = OPTIONS.writer_kwargs(table.schema)
    writer = writer_class(sink, table.schema, **kwargs)
    for batch in table.to_batches(max_chunksize=batch_rows):
        writer.write_batch(batch, row_group_size=row_group_rows)
    writer.close()
    return sink.getvalue().to_pybytes()


@settings(max_examples=120, deadline=None)
@given(table=tables(), batch_rows=st.integers(1, 200), row_group_rows=st.integers(1, 400))
def test_files_are_byte_for_byte_what_pyarrow_writes_for_the_decimals(
    table: pa.Table, batch_rows: int, row_group_rows: int
) -> None:
    ours = _write(ParquetWriter, table, batch_rows, row_group_rows)
    theirs = _write(pq.ParquetWriter, table, batch_rows, row_group_rows)
    assert ours == theirs
    assert pq.read_table(pa.BufferReader(ours)).equals(table)


@settings(max_examples=25, deadline=None)
@given(table=tables(), threads=st.sampled_from([1, 2]))
def test_storage_writes_the_same_bytes_with_one_or_more_encoding_threads(
    tmp_path_factory: pytest.TempPathFactory, table: pa.Table, threads: int
) -> None:
    storage = Storage(str(tmp_path_factory.mktemp("dec")))
    # pyarrow's encoder: the file is compared with pyarrow's bytes (Parquetry's own encoder has its
    # own tests, tests/encoder).
    options = dataclasses.replace(OPTIONS, row_group_rows=64, encode_threads=threads, encoder="pyarrow")
    written = storage.write_parquet(storage.path("f.parquet"), table, options=options)
    expected = pa.BufferOutputStream()
    with pq.ParquetWriter(expected, table.schema, **options.writer_kwargs(table.schema)) as writer:
        for batch in table.to_batches(max_chunksize=64):
            writer.write_batch(batch, row_group_size=64)
    assert Path(written.path).read_bytes() == expected.getvalue().to_pybytes()


def test_only_narrow_top_level_decimals_are_narrowed_and_only_when_stored_as_integers() -> None:
    schema = pa.schema(
        [
            ("a", pa.decimal128(9, 2)),
            ("b", pa.decimal128(18, 0)),
            ("c", pa.decimal128(19, 0)),
            ("d", pa.list_(pa.decimal128(9, 2))),
            ("e", pa.int64()),
        ]
    )
    assert narrow_columns(schema, {"store_decimal_as_integer": True}) == {0: pa.int32(), 1: pa.int64()}
    assert narrow_columns(schema, {}) == {}
