"""Property tests: random values -> reference encoder -> decoder must give back exactly those values.

The expected Arrow columns are built from the Python values by pyarrow itself (``pa.array``), the bytes by
``parquetry.testing.copy_reference`` (one ``struct.pack`` per value): neither shares code with the decoder.
Every stream is also fed to ``CopyDecoder`` in random splits, which must not change the result.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry.pgcopy.decode import CopyDecoder, decode_copy_binary
from parquetry.pgcopy.types import PgColumn, arrow_schema
from parquetry.testing.arrow_compare import assert_same_table
from parquetry.testing.copy_reference import TRAILER, decode_in_pieces, encode_copy_binary, encode_row, header

UNIX_DATE = dt.date(1970, 1, 1)
UNIX = dt.datetime(1970, 1, 1)
UNIX_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Strings and bytes that imitate the framing: a field count of 3, a field length, the trailer, NUL bytes.
ADVERSARIAL_BYTES = [
    b"\x00\x03",
    b"\x00\x03\x00\x00\x00\x04abcd",
    b"\xff\xff",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"PGCOPY\n\xff\r\n\x00",
    struct.pack(">hi", 3, 2**31 - 1),
]
ADVERSARIAL_TEXT = [b.decode("latin-1") for b in ADVERSARIAL_BYTES] + ["", "\x00\x03\x00\x00\x00\x04", "𝄞é"]


def _days(d: Any) -> int:
    if d == "infinity":
        return 2**31 - 1
    if d == "-infinity":
        return -(2**31)
    return (d - UNIX_DATE).days


def _micros(v: Any) -> int:
    if v == "infinity":
        return 2**63 - 1
    if v == "-infinity":
        return -(2**63)
    delta = v - (UNIX_UTC if v.tzinfo else UNIX)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time_us(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _numeric_text(d: decimal.Decimal) -> str:
    if d.is_nan():
        return "NaN"
    if d.is_infinite():
        return "Infinity" if d > 0 else "-Infinity"
    return format(d, "f")


def _no_negative_zero(d: decimal.Decimal) -> decimal.Decimal:
    return d.copy_abs() if d.is_zero() else d


@dataclass(frozen=True)
class Case:
    column: PgColumn
    values: st.SearchStrategy
    expected: Callable[[list[Any]], pa.Array]


def _plain(typ: pa.DataType) -> Callable[[list[Any]], pa.Array]:
    return lambda vs: pa.array(vs, typ)


def _nullable(values: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    return [None if v is None else fn(v) for v in values]


NUMERIC_12_2 = (12 << 16 | 2) + 4
NUMERIC_50_10 = (50 << 16 | 10) + 4

CASES: dict[str, Case] = {
    "bool": Case(PgColumn("b", 16, "boolean"), st.booleans(), _plain(pa.bool_())),
    "int2": Case(PgColumn("s", 21, "smallint"), st.integers(-(2**15), 2**15 - 1), _plain(pa.int16())),
    "int4": Case(PgColumn("i", 23, "integer"), st.integers(-(2**31), 2**31 - 1), _plain(pa.int32())),
    "int8": Case(PgColumn("l", 20, "bigint"), st.integers(-(2**63), 2**63 - 1), _plain(pa.int64())),
    "oid": Case(PgColumn("o", 26, "oid"), st.integers(0, 2**32 - 1), _plain(pa.uint32())),
    "float4": Case(
        PgColumn("f", 700, "real"),
        st.floats(width=32, allow_nan=False) | st.just(math.nan),
        _plain(pa.float32()),
    ),
    "float8": Case(
        PgColumn("d", 701, "double precision"),
        st.floats(allow_nan=False) | st.just(math.nan),
        _plain(pa.float64()),
    ),
    "numeric12_2": Case(
        PgColumn("n", 1700, "numeric(12,2)", NUMERIC_12_2),
        st.decimals(min_value=-(10**10) + 1, max_value=10**10 - 1, places=2).map(_no_negative_zero),
        _plain(pa.decimal128(12, 2)),
    ),
    "numeric50_10": Case(
        PgColumn("w", 1700, "numeric(50,10)", NUMERIC_50_10),
        st.decimals(min_value=-(10**40) + 1, max_value=10**40 - 1, places=10).map(_no_negative_zero),
        _plain(pa.decimal256(50, 10)),
    ),
    "numeric": Case(
        PgColumn("u", 1700, "numeric"),
        st.decimals(allow_nan=True, allow_infinity=True)
        .filter(lambda d: not d.is_snan() and (not d.is_finite() or abs(d.adjusted()) < 300))
        .map(_no_negative_zero),
        lambda vs: pa.array(_nullable(vs, _numeric_text), pa.string()),
    ),
    "money": Case(
        PgColumn("m", 790, "money"),
        st.integers(-(2**63), 2**63 - 1),
        lambda vs: pa.array(_nullable(vs, lambda v: decimal.Decimal(v).scaleb(-2)), pa.decimal128(19, 2)),
    ),
    "text": Case(
        PgColumn("t", 25, "text"), st.text() | st.sampled_from(ADVERSARIAL_TEXT), _plain(pa.string())
    ),
    "varchar": Case(PgColumn("v", 1043, "character varying"), st.text(max_size=5), _plain(pa.string())),
    "bpchar": Case(PgColumn("c", 1042, "character"), st.text(max_size=5), _plain(pa.string())),
    "jsonb": Case(PgColumn("j", 3802, "jsonb"), st.text(), _plain(pa.string())),
    "bytea": Case(
        PgColumn("y", 17, "bytea"), st.binary() | st.sampled_from(ADVERSARIAL_BYTES), _plain(pa.binary())
    ),
    "uuid": Case(
        PgColumn("g", 2950, "uuid"),
        st.uuids(),
        lambda vs: pa.array(_nullable(vs, uuid.UUID.bytes.fget), pa.binary(16)),
    ),
    "date": Case(
        PgColumn("dt", 1082, "date"),
        st.dates() | st.sampled_from(["infinity", "-infinity"]),
        lambda vs: pa.array(_nullable(vs, _days), pa.int32()).cast(pa.date32()),
    ),
    "timestamp": Case(
        PgColumn("ts", 1114, "timestamp without time zone"),
        st.datetimes() | st.sampled_from(["infinity", "-infinity"]),
        lambda vs: pa.array(_nullable(vs, _micros), pa.int64()).cast(pa.timestamp("us")),
    ),
    "timestamptz": Case(
        PgColumn("tz", 1184, "timestamp with time zone"),
        st.datetimes(
            min_value=dt.datetime(1, 1, 2),
            max_value=dt.datetime(9999, 12, 30),
            timezones=st.integers(-14 * 3600, 14 * 3600).map(lambda s: dt.timezone(dt.timedelta(seconds=s))),
        ),
        lambda vs: pa.array(_nullable(vs, _micros), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    ),
    "time": Case(
        PgColumn("tm", 1083, "time without time zone"),
        st.times(),
        lambda vs: pa.array(_nullable(vs, _time_us), pa.int64()).cast(pa.time64("us")),
    ),
    "timetz": Case(
        PgColumn("ttz", 1266, "time with time zone"),
        st.tuples(st.times(), st.integers(-15 * 3600 - 59 * 60, 15 * 3600 + 59 * 60)),
        lambda vs: pa.array(
            _nullable(vs, lambda v: {"time": _time_us(v[0]), "offset_s": v[1]}),
            pa.struct([("time", pa.int64()), ("offset_s", pa.int32())]),
        ).cast(pa.struct([("time", pa.time64("us")), ("offset_s", pa.int32())])),
    ),
    "interval": Case(
        PgColumn("iv", 1186, "interval"),
        st.tuples(
            st.integers(-(2**31), 2**31 - 1),
            st.integers(-(2**31), 2**31 - 1),
            st.integers(-((2**63 - 1) // 1000), (2**63 - 1) // 1000),
        ),
        lambda vs: pa.array(
            _nullable(vs, lambda v: pa.MonthDayNano([v[0], v[1], v[2] * 1000])), pa.month_day_nano_interval()
        ),
    ),
    "int4[]": Case(
        PgColumn("ia", 1007, "integer[]"),
        st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=6),
        _plain(pa.list_(pa.int32())),
    ),
    "text[]": Case(
        PgColumn("ta", 1009, "text[]"),
        st.lists(st.none() | st.text(max_size=8) | st.sampled_from(ADVERSARIAL_TEXT), max_size=6),
        _plain(pa.list_(pa.string())),
    ),
}

COMMON = sorted(CASES)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[PgColumn], list[tuple], pa.Table]:
    names = draw(st.lists(st.sampled_from(COMMON), min_size=1, max_size=5))
    columns = [
        PgColumn(f"{CASES[n].column.name}_{k}", CASES[n].column.type_oid, CASES[n].column.type_name,
                 CASES[n].column.typmod)
        for k, n in enumerate(names)
    ]  # fmt: skip
    nrows = draw(st.integers(0, 12))
    rows = [tuple(draw(st.none() | CASES[n].values) for n in names) for _ in range(nrows)]
    expected = pa.Table.from_arrays(
        [CASES[n].expected([r[k] for r in rows]) for k, n in enumerate(names)], schema=arrow_schema(columns)
    )
    return columns, rows, expected


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(tables(), st.lists(st.integers(0, 4000), max_size=8), st.integers(1, 5))
def test_random_values_roundtrip_through_reference_encoder(table, cuts, batch_rows) -> None:
    columns, rows, expected = table
    data = encode_copy_binary(columns, rows)
    decoded = decode_copy_binary(data, columns, source="property")
    decoded.validate(full=True)
    assert_same_table(decoded, expected)
    assert_same_table(decode_in_pieces(data, columns, cuts, batch_rows), expected)


@PROPERTY_SETTINGS
@given(st.lists(st.binary(max_size=40) | st.sampled_from(ADVERSARIAL_BYTES), max_size=20), st.data())
def test_bytes_that_look_like_framing_never_shift_fields(values, data) -> None:
    columns = [PgColumn("a", 17, "bytea"), PgColumn("n", 23, "integer"), PgColumn("b", 17, "bytea")]
    rows = [(v, i, v[::-1]) for i, v in enumerate(values)]
    stream = encode_copy_binary(columns, rows)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    for table in (decode_copy_binary(stream, columns), decode_in_pieces(stream, columns, cuts, 3)):
        assert table.column("a").to_pylist() == values
        assert table.column("n").to_pylist() == list(range(len(values)))
        assert table.column("b").to_pylist() == [v[::-1] for v in values]


@pytest.mark.parametrize("split", [1, 7, 64])
def test_byte_by_byte_feeding_matches_whole_stream(split: int) -> None:
    columns = [CASES[n].column for n in ("int4", "text", "numeric12_2", "timestamp", "int4[]")]
    rows = [
        (
            i,
            "x" * (i % 5) if i % 3 else None,
            decimal.Decimal(i).scaleb(-2),
            dt.datetime(2000 + i, 1, 1),
            [i, None],
        )
        for i in range(40)
    ]
    data = encode_copy_binary(columns, rows)
    whole = decode_copy_binary(data, columns)
    assert_same_table(decode_in_pieces(data, columns, list(range(0, len(data), split)), 4), whole)
    assert whole.column("i").to_pylist() == list(range(40))


def test_wide_tables_get_smaller_batches_and_the_same_values() -> None:
    columns = [PgColumn(f"c{i}", 23, "integer") for i in range(1600)]
    pair = encode_row(columns, tuple(range(1600))) + encode_row(columns, tuple(range(-1, -1601, -1)))
    data = header() + pair * 1500 + TRAILER
    decoder = CopyDecoder(columns, source="wide")
    batches = decoder.feed(bytearray(data)) + decoder.finish()
    assert decoder.batch_rows * 1600 <= 1 << 21
    assert len(batches) > 1 and all(b.num_rows <= decoder.batch_rows for b in batches)
    table = pa.Table.from_batches(batches)
    assert table.column("c0").to_pylist() == [0, -1] * 1500
    assert table.column("c1599").to_pylist() == [1599, -1600] * 1500
