"""Parquetry's own Parquet encoder writes files that read back as the table written, by pyarrow and by
DuckDB (two independent readers), with the footer pyarrow itself writes for the same data: the same
schema, encodings, statistics and size statistics; only sizes, offsets and page counts may differ.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import io
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry.encoder import open_writer
from parquetry.encoder.headers import page_header, statistics_bytes
from parquetry.encoder.selection import BYTE_ARRAY, INT64, PLAIN, OwnColumn, own_columns
from parquetry.encoder.writer import ColumnWriter
from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS
from parquetry.parquet_writer import ParquetWriter, empty_footer
from parquetry.storage import ParquetOptions, Storage
from parquetry.thrift import TStruct, _Reader, decode, encode

OPTIONS = EXTRACT_PARQUET_OPTIONS  # extraction's encoding: delta integers, plain strings, zstd 1


def _integers(bits: int) -> st.SearchStrategy[int]:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, -1, 1]))


def _column(draw: st.DrawFn, kind: str, rows: int) -> tuple[pa.DataType, list[Any]]:
    """(type, values) of one column; values may be None (null)."""

    def values(strategy: st.SearchStrategy[Any]) -> list[Any]:
        nulls = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
        out = draw(st.lists(strategy, min_size=rows, max_size=rows))
        flags = draw(st.lists(st.floats(0, 1), min_size=rows, max_size=rows))
        return [None if f < nulls else v for v, f in zip(out, flags, strict=True)]

    if kind in ("int8", "int16", "int32", "int64"):
        bits = int(kind[3:])
        if draw(st.booleans()):  # sorted keys: small deltas
            start = draw(_integers(bits))
            step = draw(st.integers(0, 3))
            lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
            return getattr(pa, kind)(), [min(hi, max(lo, start + i * step)) for i in range(rows)]
        return getattr(pa, kind)(), values(_integers(bits))
    if kind == "date32":
        return pa.date32(), values(st.integers(-(2**31), 2**31 - 1))
    if kind.startswith("timestamp"):
        unit = kind.split("_")[1]
        # DuckDB reads timestamps as microseconds: milliseconds beyond +-2^53 would overflow there.
        bound = 2**53 if unit == "ms" else 2**63 - 1
        extremes = st.sampled_from([-bound, bound, 0, -1])
        return pa.timestamp(unit, tz="UTC" if draw(st.booleans()) else None), values(
            st.one_of(st.integers(-bound, bound), extremes)
        )
    if kind == "time64":
        return pa.time64("us"), values(st.integers(0, 86_400_000_000 - 1))
    if kind == "time32":
        return pa.time32("ms"), values(st.integers(0, 86_400_000 - 1))
    if kind == "decimal":
        precision = draw(st.sampled_from([1, 5, 9, 10, 15, 18]))
        scale = draw(st.integers(0, min(precision, 4)))
        bound = 10**precision - 1
        exact = decimal.Context(prec=60)
        ints = values(st.one_of(st.integers(-bound, bound), st.sampled_from([-bound, bound, 0])))
        return pa.decimal128(precision, scale), [
            None if v is None else decimal.Decimal(v).scaleb(-scale, exact) for v in ints
        ]
    if kind in ("string", "large_string"):
        alphabet = st.sampled_from(["", "a", "ab", "b", "\x00", "é", "zz", "PAR1", "a\x00"])
        text = st.one_of(
            st.lists(alphabet, max_size=4).map("".join), st.text(max_size=12), st.sampled_from(["x" * 40])
        )
        return getattr(pa, kind)(), values(text)
    if kind in ("binary", "large_binary"):
        return getattr(pa, kind)(), values(st.binary(max_size=20))
    if kind == "fixed":
        width = draw(st.sampled_from([1, 3, 16]))
        return pa.binary(width), values(st.binary(min_size=width, max_size=width))
    if kind == "float64":  # left to pyarrow: the files mix both encoders
        return pa.float64(), values(st.floats(allow_nan=False))
    if kind == "bool":
        return pa.bool_(), values(st.booleans())
    if kind == "list":
        return pa.list_(pa.int32()), values(st.lists(st.one_of(st.none(), _integers(32)), max_size=3))
    if kind == "struct":
        t = pa.struct([("a", pa.int64()), ("b", pa.string())])
        return t, values(st.fixed_dictionaries({"a": _integers(64), "b": st.text(max_size=3)}))
    raise AssertionError(kind)


KINDS = [
    "int8",
    "int16",
    "int32",
    "int64",
    "date32",
    "timestamp_ms",
    "timestamp_us",
    "timestamp_ns",
    "time32",
    "time64",
    "decimal",
    "string",
    "large_string",
    "binary",
    "large_binary",
    "fixed",
    "float64",
    "bool",
    "list",
    "struct",
]


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 300))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    extra = draw(st.integers(0, 9))  # the table is sliced: arrays with an offset (bits too)
    fields, arrays = [], []
    for n, kind in enumerate(kinds):
        t, values = _column(draw, kind, rows + extra)
        array = pa.array(values, t)
        nullable = array.null_count > 0 or draw(st.booleans())
        fields.append(pa.field(f"{kind}_{n}", t, nullable=nullable))
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata={b"origin": b"test"}))
    start = draw(st.integers(0, extra))
    return table.slice(start, rows)


def write(table: pa.Table, writer_class: type, batch_rows: int, row_group_rows: int, **over: Any) -> bytes:
    kwargs = {**OPTIONS.writer_kwargs(table.schema), **over}
    sink = io.BytesIO()
    with writer_class(sink, table.schema, "test.parquet", **kwargs) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch, row_group_size=row_group_rows)
    return sink.getvalue()


def footer(data: bytes) -> TStruct:
    length = int.from_bytes(data[-8:-4], "little")
    return decode(data[-8 - length : -8])


# ColumnMetaData fields that depend on where and how finely the pages were cut, not on the values:
# sizes (6, 7), offsets (9, 10, 11), and the page counts inside the encoding stats (13).
_LAYOUT = {6, 7, 9, 10, 11, 13}


def comparable(meta: TStruct) -> dict[str, Any]:
    chunks = []
    for group in meta.get(4).items:
        for cc in group.get(1).items:
            cmd = cc.get(3)
            stats = [(p.get(1), p.get(2)) for p in cmd.get(13).items]
            chunks.append(([f for f in cmd.fields if f[0] not in _LAYOUT], stats))
    return {
        "file": [f for f in meta.fields if f[0] != 4],
        "rows per group": [g.get(3) for g in meta.get(4).items],
        "chunks": chunks,
    }


def duckdb_rows(data: bytes, tmp: Path, name: str) -> list[tuple[Any, ...]]:
    path = tmp / name
    path.write_bytes(data)
    return duckdb.connect().execute("SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=tables(),
    batch_rows=st.integers(1, 300),
    row_group_rows=st.integers(1, 400),
    page_bytes=st.sampled_from([1, 64, 1000, 1 << 20]),
    codec=st.sampled_from([("zstd", 1), ("zstd", 5), ("none", None)]),
)
def test_files_read_back_as_written_with_pyarrows_footer(
    tmp_path: Path,
    table: pa.Table,
    batch_rows: int,
    row_group_rows: int,
    page_bytes: int,
    codec: tuple[str, int | None],
) -> None:
    compression, level = codec
    over = {"data_page_size": page_bytes, "compression": compression, "compression_level": level}
    ours = write(table, ColumnWriter, batch_rows, row_group_rows, **over)
    theirs = write(table, ParquetWriter, batch_rows, row_group_rows, **over)

    back = pq.read_table(io.BytesIO(ours))
    assert back.equals(table)
    assert back.equals(pq.read_table(io.BytesIO(theirs)))
    assert back.schema.equals(pq.read_schema(io.BytesIO(theirs)), check_metadata=True)
    assert comparable(footer(ours)) == comparable(footer(theirs))
    assert duckdb_rows(ours, tmp_path, "ours.parquet") == duckdb_rows(theirs, tmp_path, "theirs.parquet")


def test_delta_blocks_hold_every_64_and_32_bit_extreme(tmp_path: Path) -> None:
    """Deltas between the extremes overflow the column's width; readers add them back modulo 2^w."""
    lo64, hi64 = -(2**63), 2**63 - 1
    lo32, hi32 = -(2**31), 2**31 - 1
    for n in (0, 1, 2, 31, 32, 33, 127, 128, 129, 130, 257, 1000):
        pattern = [lo64, hi64, 0, -1, 1, hi64, hi64, lo64]
        big = pa.array([pattern[i % len(pattern)] for i in range(n)], pa.int64())
        small = pa.array([[lo32, hi32, 0, lo32, 5][i % 5] for i in range(n)], pa.int32())
        table = pa.table({"big": big, "small": small})
        data = write(table, ColumnWriter, 10_000, 10_000)
        assert pq.read_table(io.BytesIO(data)).equals(table), n
        assert duckdb_rows(data, tmp_path, f"{n}.parquet") == list(
            zip(big.to_pylist(), small.to_pylist(), strict=True)
        )


def test_every_bit_width_packs_and_reads_back() -> None:
    """A miniblock of deltas in [0, 2^w) for each w in 0..64 (w = 64: deltas from min to max)."""
    rng = np.random.default_rng(7)
    for w in range(65):
        top = 2**w - 1
        deltas = [int(x) for x in rng.integers(0, 2 ** min(w, 62), 200, dtype=np.uint64)] + [top]
        values, v = [], -(2**63)
        for d in deltas:
            v = (v + d + 2**63) % 2**64 - 2**63
            values.append(v)
        table = pa.table({"v": pa.array(values, pa.int64())})
        assert pq.read_table(io.BytesIO(write(table, ColumnWriter, 1000, 1000))).equals(table), w


def test_min_and_max_longer_than_4096_bytes_are_left_out_as_pyarrow_does() -> None:
    for values in (["a" * 5000, "b"], ["a", "b" * 4097], ["x" * 4096, "y" * 4096], [None, "z" * 9000]):
        table = pa.table({"s": pa.array(values, pa.string())})
        ours = write(table, ColumnWriter, 10, 10)
        theirs = write(table, ParquetWriter, 10, 10)
        assert comparable(footer(ours)) == comparable(footer(theirs)), values


def test_a_column_declared_not_null_that_holds_nulls_is_an_error_naming_file_and_column() -> None:
    schema = pa.schema([pa.field("k", pa.int64(), nullable=False)])
    table = pa.Table.from_arrays([pa.array([1, None, 3])], schema=schema)
    with pytest.raises(ValueError, match=r"test\.parquet: column 'k' is not nullable but holds 1 null"):
        write(table, ColumnWriter, 10, 10)


def test_no_rows_is_a_file_with_the_schema_only() -> None:
    table = pa.table({"k": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    ours = write(table, ColumnWriter, 10, 10)
    theirs = write(table, ParquetWriter, 10, 10)
    assert ours == theirs


def test_many_small_chunks_make_pages_of_many_rows_not_a_page_per_chunk() -> None:
    """A compaction hands row groups made of its inputs' small slices; pages span them."""
    chunks = [pa.array(range(i * 100, (i + 1) * 100), pa.int64()) for i in range(1000)]
    table = pa.Table.from_arrays([pa.chunked_array(chunks)], names=["k"])
    data = io.BytesIO()
    with ColumnWriter(data, table.schema, "t", **OPTIONS.writer_kwargs(table.schema)) as writer:
        writer.write_table(table, row_group_size=table.num_rows)
    meta = footer(data.getvalue())
    pages = meta.get(4).items[0].get(1).items[0].get(3).get(13).items[0].get(3)
    assert pages <= 2
    assert pq.read_table(io.BytesIO(data.getvalue())).equals(table.combine_chunks())


@pytest.mark.parametrize(
    "over",
    [
        {"compression": "snappy"},
        {"compression": "lz4"},
        {"use_dictionary": True},
        {"write_page_index": True},
        {"data_page_version": "2.0"},
        {"column_encoding": "PLAIN"},
        {"write_statistics": False},
    ],
)
def test_options_the_encoder_does_not_implement_leave_every_column_to_pyarrow(over: dict[str, Any]) -> None:
    table = pa.table({"k": pa.array([1, 2], pa.int64()), "s": pa.array(["a", "b"])})
    kwargs = {**OPTIONS.writer_kwargs(table.schema), **over}
    if over.get("column_encoding") == "PLAIN":
        kwargs["use_dictionary"] = False
    if over.get("use_dictionary") is True:
        kwargs.pop("column_encoding")  # pyarrow takes no column encodings beside dictionaries
    assert own_columns(table.schema, kwargs, empty_footer(table.schema, kwargs).get(2).items) == {}
    writer = open_writer(io.BytesIO(), table.schema, "t", None, "parquetry", **kwargs)
    assert isinstance(writer, ParquetWriter)


def test_columns_it_encodes_under_extractions_options() -> None:
    schema = pa.schema(
        [
            ("k", pa.int64()),
            ("d", pa.decimal128(12, 2)),
            ("wide", pa.decimal128(30, 2)),
            ("s", pa.string()),
            ("u", pa.binary(16)),
            ("f", pa.float64()),
            ("t", pa.timestamp("s")),  # pyarrow stores seconds as milliseconds: left to it
            ("u32", pa.uint32()),  # unsigned order in statistics: left to pyarrow
            ("l", pa.list_(pa.int64())),
        ]
    )
    kwargs = OPTIONS.writer_kwargs(schema)
    chosen = own_columns(schema, kwargs, empty_footer(schema, kwargs).get(2).items)
    assert [schema.field(i).name for i in chosen] == ["k", "d", "s", "u"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(), threads=st.integers(2, 3))
def test_storage_writes_the_same_bytes_with_one_or_more_encoding_threads(
    tmp_path_factory: pytest.TempPathFactory, table: pa.Table, threads: int
) -> None:
    storage = Storage(str(tmp_path_factory.mktemp("enc")))
    options = dataclasses.replace(OPTIONS, row_group_rows=50)
    one = storage.write_parquet(storage.path("one.parquet"), table, options=options)
    many = storage.write_parquet(
        storage.path("many.parquet"), table, options=dataclasses.replace(options, encode_threads=threads)
    )
    assert Path(one.path).read_bytes() == Path(many.path).read_bytes()
    assert pq.read_table(one.path).equals(table)


def test_storage_chooses_the_encoder_by_its_option(tmp_path: Path) -> None:
    table = pa.table(
        {"k": pa.array(range(100), pa.int64()), "at": pa.array([datetime.date(2026, 1, 1)] * 100)}
    )
    storage = Storage(str(tmp_path))
    ours = storage.write_parquet(storage.path("a.parquet"), table, options=OPTIONS)
    theirs = storage.write_parquet(
        storage.path("b.parquet"), table, options=dataclasses.replace(OPTIONS, encoder="pyarrow")
    )
    assert Path(ours.path).read_bytes() != Path(theirs.path).read_bytes()
    assert pq.read_table(ours.path).equals(pq.read_table(theirs.path))
    with pytest.raises(ValueError, match="encoder must be"):
        ParquetOptions(encoder="fast")


def pages(data: bytes, cmd: TStruct) -> list[TStruct]:
    """The page headers of a column chunk, read one after another from its first page."""
    pos, end = cmd.get(9), cmd.get(9) + cmd.get(7)
    out = []
    while pos < end:
        reader = _Reader(data[pos:end])
        header = reader.struct()
        out.append(header)
        pos += reader.pos + header.get(3)
    assert pos == end
    return out


@settings(max_examples=40, deadline=None)
@given(table=tables(), row_group_rows=st.integers(1, 400), page_bytes=st.sampled_from([1, 100, 1 << 20]))
def test_page_headers_add_up_to_their_column_chunk(
    table: pa.Table, row_group_rows: int, page_bytes: int
) -> None:
    """Values, nulls and min / max of the pages make their chunk's (checked against pyarrow above)."""
    data = write(table, ColumnWriter, 1000, row_group_rows, data_page_size=page_bytes)
    meta = footer(data)
    own = own_columns(table.schema, OPTIONS.writer_kwargs(table.schema), meta.get(2).items)
    names = {table.schema.field(i).name.encode() for i in own}
    for group in meta.get(4).items:
        for cc in group.get(1).items:
            cmd = cc.get(3)
            if cmd.get(3).items[0] not in names:
                continue
            headers = pages(data, cmd)
            assert sum(h.get(5).get(1) for h in headers) == cmd.get(5)
            assert len(headers) == cmd.get(13).items[0].get(3)
            assert sum(h.get(2) for h in headers) + (cmd.get(7) - sum(h.get(3) for h in headers)) == cmd.get(
                6
            )
            stats = [h.get(5).get(5) for h in headers]
            assert sum(s.get(3) for s in stats) == cmd.get(12).get(3)
            chunk = cmd.get(12)
            if chunk.has(5):  # the chunk's max is the largest page max (as Parquet orders them)
                assert chunk.get(5) in [s.get(5) for s in stats]
                assert chunk.get(6) in [s.get(6) for s in stats]


@given(
    size=st.integers(0, 2**31 - 1),
    compressed=st.integers(0, 2**31 - 1),
    values=st.integers(0, 2**31 - 1),
    nulls=st.integers(0, 2**62),
    lo=st.one_of(st.none(), st.binary(max_size=5000)),
    hi=st.one_of(st.none(), st.binary(max_size=5000)),
    signed=st.booleans(),
)
def test_page_headers_are_the_thrift_structs_they_stand_for(
    size: int, compressed: int, values: int, nulls: int, lo: bytes | None, hi: bytes | None, signed: bool
) -> None:
    column = OwnColumn(INT64 if signed else BYTE_ARRAY, PLAIN, True)
    if signed and (lo is None) != (hi is None):
        lo = hi = None  # integers have both or neither
    header = page_header(size, compressed, values, PLAIN, statistics_bytes(column, nulls, lo, hi))
    decoded = decode(header)
    assert encode(decoded) == header
    assert [(f[0], f[2]) for f in decoded.fields[:3]] == [(1, 0), (2, size), (3, compressed)]
    body = decoded.get(5)
    assert [body.get(k) for k in (1, 2, 3, 4)] == [values, PLAIN, 3, 3]
    stats = body.get(5)
    assert stats.get(3) == nulls
    keep_hi = hi is not None and len(hi) <= 4096
    keep_lo = lo is not None and len(lo) <= 4096
    assert (stats.get(5), stats.get(7)) == ((hi, True) if keep_hi else (None, None))
    assert (stats.get(6), stats.get(8)) == ((lo, True) if keep_lo else (None, None))
    assert (stats.get(1), stats.get(2)) == ((hi, lo) if signed and keep_hi and keep_lo else (None, None))
