"""The one-pass decoder (``rowkernel.decode_rows``) against the two-pass decoder it replaced.

Random streams from the reference encoder, cut at random places and decoded in random batch sizes, must
give bit-identical tables from both; malformed streams must give the same error at the same offset, row
and column. The pieces only the one-pass decoder has (its UTF-8 check, the short-numeric fast path, string
buffers that grow mid-batch) get tests of their own against independent oracles (Python's codec,
``decimal``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry.pgcopy.decode import CopyDecoder, decode_copy_binary
from parquetry.pgcopy.errors import CopyFormatError
from parquetry.pgcopy.rowkernel import utf8_invalid_at
from parquetry.pgcopy.types import PgColumn
from parquetry.testing.arrow_compare import assert_same_table
from parquetry.testing.copy_reference import TRAILER, decode_in_pieces, encode_copy_binary, encode_row, header


def _num(p: int, s: int) -> int:
    return (p << 16 | s) + 4


def _decimals(p: int, s: int) -> st.SearchStrategy:
    top = 10 ** (p - s)
    return st.decimals(min_value=-top + 1, max_value=top - 1, places=s).map(
        lambda d: d.copy_abs() if d.is_zero() else d
    ) | st.sampled_from([decimal.Decimal(top - 1), decimal.Decimal(1 - top), decimal.Decimal(0)])


TEXT = st.text() | st.sampled_from(["", "é", "𝄞", "\x00\x03", "ab\udfff".encode("utf-8", "replace").decode()])
# (column, values): every kind of the one-pass kernel, and slice columns beside them.
MIX: dict[str, tuple[PgColumn, st.SearchStrategy]] = {
    "bool": (PgColumn("b", 16, "boolean"), st.booleans()),
    "int2": (PgColumn("s", 21, "smallint"), st.integers(-(2**15), 2**15 - 1)),
    "int4": (PgColumn("i", 23, "integer"), st.integers(-(2**31), 2**31 - 1)),
    "int8": (PgColumn("l", 20, "bigint"), st.integers(-(2**63), 2**63 - 1)),
    "oid": (PgColumn("o", 26, "oid"), st.integers(0, 2**32 - 1)),
    "float8": (PgColumn("d", 701, "double precision"), st.floats()),
    "float4": (PgColumn("f", 700, "real"), st.floats(width=32)),
    "numeric18_4": (PgColumn("n", 1700, "numeric(18,4)", _num(18, 4)), _decimals(18, 4)),
    "numeric12_2": (PgColumn("m", 1700, "numeric(12,2)", _num(12, 2)), _decimals(12, 2)),
    "numeric5_5": (PgColumn("q", 1700, "numeric(5,5)", _num(5, 5)), _decimals(5, 5)),
    "numeric30_3": (PgColumn("w", 1700, "numeric(30,3)", _num(30, 3)), _decimals(30, 3)),
    "numeric50_10": (PgColumn("x", 1700, "numeric(50,10)", _num(50, 10)), _decimals(50, 10)),
    "numeric": (PgColumn("u", 1700, "numeric"), st.decimals(allow_nan=False, allow_infinity=False, places=3)),
    "text": (PgColumn("t", 25, "text"), TEXT),
    "varchar": (PgColumn("v", 1043, "character varying"), st.text(max_size=30)),
    "jsonb": (PgColumn("j", 3802, "jsonb"), st.text(max_size=12)),
    "bytea": (PgColumn("y", 17, "bytea"), st.binary(max_size=40)),
    "uuid": (PgColumn("g", 2950, "uuid"), st.uuids()),
    "date": (PgColumn("dt", 1082, "date"), st.dates() | st.sampled_from(["infinity", "-infinity"])),
    "timestamp": (
        PgColumn("ts", 1114, "timestamp without time zone"),
        st.datetimes() | st.sampled_from(["infinity", "-infinity"]),
    ),
    "timestamptz": (
        PgColumn("tz", 1184, "timestamp with time zone"),
        st.datetimes(
            min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
        ),
    ),
    "time": (PgColumn("tm", 1083, "time without time zone"), st.times()),
    "interval": (
        PgColumn("iv", 1186, "interval"),
        st.tuples(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-(10**12), 10**12)),
    ),
    "int4[]": (PgColumn("ia", 1007, "integer[]"), st.lists(st.none() | st.integers(-5, 5), max_size=4)),
}
NAMES = sorted(MIX)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[PgColumn], list[tuple], bytes]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=7))
    columns = [
        PgColumn(f"{MIX[n][0].name}_{k}", MIX[n][0].type_oid, MIX[n][0].type_name, MIX[n][0].typmod)
        for k, n in enumerate(names)
    ]
    nrows = draw(st.integers(0, 30))
    rows = [tuple(draw(st.none() | MIX[n][1]) for n in names) for _ in range(nrows)]
    return columns, rows, encode_copy_binary(columns, rows)


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(streams(), st.lists(st.integers(0, 3000), max_size=8), st.integers(1, 9))
def test_one_pass_and_two_pass_decoders_give_identical_tables(stream, cuts, batch_rows) -> None:
    columns, _, data = stream
    reference = decode_copy_binary(data, columns, one_pass=False)
    whole = decode_copy_binary(data, columns)
    whole.validate(full=True)
    assert_same_table(whole, reference)
    assert_same_table(decode_in_pieces(data, columns, cuts, batch_rows, one_pass=True), reference)


def test_string_buffers_grow_when_a_later_batch_has_longer_values() -> None:
    columns = [PgColumn("id", 23, "integer"), PgColumn("t", 25, "text"), PgColumn("b", 17, "bytea")]
    short = [(i, "a", b"x") for i in range(40)]
    long = [(i, "é" * (3000 + i), bytes(range(256)) * 20) for i in range(40, 60)]
    rows = short + long + [(99, None, None)]
    data = encode_copy_binary(columns, rows)
    for one_pass in (True, False):
        table = decode_in_pieces(data, columns, [], 8, one_pass=one_pass)
        assert table.column("t").to_pylist() == [r[1] for r in rows]
        assert table.column("b").to_pylist() == [r[2] for r in rows]
    # fed in pieces, the first batch's guess comes from a few bytes and must grow as well
    table = decode_in_pieces(data, columns, list(range(0, len(data), 997)), 64, one_pass=True)
    assert table.column("t").to_pylist() == [r[1] for r in rows]


def test_one_pass_decoder_keeps_only_the_partial_row_between_feeds() -> None:
    columns = [PgColumn("i", 20, "bigint"), PgColumn("t", 25, "text")]
    data = encode_copy_binary(columns, [(i, f"row {i}") for i in range(5000)])
    decoder = CopyDecoder(columns, batch_rows=100_000)
    batches = []
    for start in range(0, len(data), 4096):
        batches += decoder.feed(data[start : start + 4096])
        assert len(decoder._buf) < 64  # at most one row (about 30 bytes) waits for its rest
    batches += decoder.finish()
    assert pa.Table.from_batches(batches).column("i").to_pylist() == list(range(5000))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=24) | st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_utf8_check_agrees_with_pythons_codec(raw: bytes) -> None:
    buf = np.frombuffer(b"\xff" + raw + b"\xff", dtype=np.uint8)
    try:
        raw.decode("utf-8")
        expected = -1
    except UnicodeDecodeError as exc:
        expected = exc.start
    assert utf8_invalid_at(buf, 1, len(raw)) == expected


@pytest.mark.parametrize("at_end", [False, True], ids=["mid-stream", "last-value"])
def test_invalid_utf8_is_refused_with_row_column_and_offset(at_end: bool) -> None:
    columns = [PgColumn("t", 25, "text"), PgColumn("n", 23, "integer")]
    good = encode_row(columns, ("fine", 1))
    bad_value = b"abcdefghij" + b"\xc3\x28"  # a lead byte without its continuation
    bad = struct.pack(">hi", 2, len(bad_value)) + bad_value + struct.pack(">ii", 4, 7)
    if at_end:  # the last value of the stream goes through the byte-at-a-time copy
        columns = columns[:1]
        good = encode_row(columns, ("fine",))
        bad = struct.pack(">hi", 1, len(bad_value)) + bad_value
    data = header() + good + bad + TRAILER
    for one_pass in (True, False):
        with pytest.raises(CopyFormatError, match=r"not valid UTF-8.*row 2, column 't'") as err:
            decode_copy_binary(data, columns, source="utf8", one_pass=one_pass)
        assert err.value.offset == len(header()) + len(good) + 6


def _corrupt_cases() -> dict[str, tuple[list[PgColumn], bytes]]:
    h = header()

    def stream(columns: list[PgColumn], rows: list[bytes]) -> tuple[list[PgColumn], bytes]:
        return columns, h + b"".join(rows) + TRAILER

    i4 = PgColumn("id", 23, "integer")
    ok = encode_row([i4], (1,))
    field = lambda payload: struct.pack(">hi", 1, len(payload)) + payload  # noqa: E731
    n52 = PgColumn("price", 1700, "numeric(5,2)", _num(5, 2))
    n182 = PgColumn("big", 1700, "numeric(18,2)", _num(18, 2))
    return {
        "short int4": stream([i4], [ok, field(b"\x00\x00\x01")]),
        "bool of 2": stream([PgColumn("b", 16, "boolean")], [field(b"\x01"), field(b"\x02")]),
        "jsonb version 2": stream([PgColumn("j", 3802, "jsonb")], [field(b"\x01{}"), field(b"\x02{}")]),
        "jsonb empty": stream([PgColumn("j", 3802, "jsonb")], [field(b"\x01{}"), field(b"")]),
        "numeric NaN": stream([n52], [field(struct.pack(">hhHh", 0, 0, 0xC000, 0))]),
        "numeric too long": stream([n52], [encode_row([n52], (decimal.Decimal("1000.00"),))]),
        "numeric18 too long": stream([n182], [encode_row([n182], (decimal.Decimal("1" + "0" * 16),))]),
        "numeric18 too fine": stream([n182], [encode_row([n182], (decimal.Decimal("1.125"),))]),
        "numeric bad digit": stream([n52], [field(struct.pack(">hhHhh", 1, 0, 0, 0, 10000))]),
        "timestamp too late": stream(
            [PgColumn("ts", 1114, "timestamp without time zone")], [field(struct.pack(">q", 2**63 - 2))]
        ),
        "date of 3 bytes": stream([PgColumn("d", 1082, "date")], [field(b"\x00\x00\x01")]),
        "uuid of 15 bytes": stream([PgColumn("g", 2950, "uuid")], [field(uuid.uuid4().bytes[:15])]),
        "length -2": stream([i4], [ok, struct.pack(">hi", 1, -2)]),
        "three fields": stream([i4], [ok, struct.pack(">hii", 3, 4, 1)]),
        "interval of 8 bytes": stream([PgColumn("iv", 1186, "interval")], [field(b"\x00" * 8)]),
    }


@pytest.mark.parametrize("case", sorted(_corrupt_cases()))
def test_both_decoders_refuse_bad_input_with_the_same_error(case: str) -> None:
    columns, data = _corrupt_cases()[case]
    errors = []
    for one_pass in (True, False):
        with pytest.raises(CopyFormatError) as err:
            decode_copy_binary(data, columns, source="bad.copy", one_pass=one_pass)
        errors.append(err.value)
    one, two = errors
    assert (one.offset, one.row, one.column, one.reason) == (two.offset, two.row, two.column, two.reason)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 18).flatmap(lambda p: st.tuples(st.just(p), st.integers(0, p))), st.data())
def test_short_numerics_decode_exactly_or_are_refused_as_decimal_says(ps, data) -> None:
    p, s = ps
    column = PgColumn("n", 1700, f"numeric({p},{s})", _num(p, s))
    value = data.draw(
        st.decimals(
            allow_nan=False,
            allow_infinity=False,
            places=min(s + 2, 20),
            min_value=-(10**20),
            max_value=10**20,
        )
    )
    stream = encode_copy_binary([column], [(value,)])
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        exact = value == value.quantize(decimal.Decimal(1).scaleb(-s))
        fits = exact and abs(value) < decimal.Decimal(10) ** (p - s)
    if fits:
        got = decode_copy_binary(stream, [column]).column("n").to_pylist()[0]
        assert got == value
    else:
        with pytest.raises(CopyFormatError, match="numeric value has more"):
            decode_copy_binary(stream, [column])


def test_earlier_batches_keep_their_values_while_later_ones_are_decoded() -> None:
    columns = [PgColumn("i", 20, "bigint"), PgColumn("t", 25, "text"), PgColumn("d", 1082, "date")]

    def rows(k: int) -> list[tuple]:
        return [(k * 1000 + i, f"{k}-{i}" * (i % 4), dt.date(2000 + k, 1, 1 + i % 28)) for i in range(300)]

    kept = [
        decode_copy_binary(encode_copy_binary(columns, rows(k)), columns, batch_rows=64) for k in range(3)
    ]
    for _ in range(3):  # more batches, decoded while the kept tables are alive
        decode_copy_binary(encode_copy_binary(columns, rows(9)), columns, batch_rows=64)
    for k, table in enumerate(kept):
        assert table.to_pylist() == [dict(zip(("i", "t", "d"), r, strict=True)) for r in rows(k)]
