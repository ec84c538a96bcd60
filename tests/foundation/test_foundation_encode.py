"""The binary COPY encoder, checked against PostgreSQL itself.

The oracle: the same Python values go into one table through the encoder (binary COPY) and into a
twin table through ordinary parameterised INSERTs (psycopg's adaptation and the server's text input
functions). Both are then read back as ``::text``; every cell must agree.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Context, Decimal

import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from parquetry.pgcopy.encode import (
    COPY_HEADER,
    COPY_TRAILER,
    CopyEncodeError,
    encode_copy_binary,
    iter_copy_binary,
    wire_kind,
)

UTC = dt.UTC


def _pad(values: list[object], n: int) -> list[object]:
    return values + [None] * (n - len(values))


# column name -> (PostgreSQL type, Arrow type, values)
EDGE_COLUMNS: dict[str, tuple[str, pa.DataType, list[object]]] = {
    "b": ("bool", pa.bool_(), [True, False, None]),
    "i2": ("int2", pa.int16(), [-32768, 32767, 0, -1, None]),
    "i4": ("integer", pa.int32(), [-(2**31), 2**31 - 1, 0, 7, None]),
    "i8": ("bigint", pa.int64(), [-(2**63), 2**63 - 1, 0, -42, None]),
    "f4": ("real", pa.float32(), [1.5, -0.0, float("inf"), float("-inf"), float("nan"), 3.4028235e38, 1e-45]),
    "f8": ("double precision", pa.float64(), [1e308, 5e-324, float("nan"), float("-inf"), -2.5, 0.1, None]),
    "t": (
        "text",
        pa.string(),
        ["", "héllo wörld ✓", "a\tb\nc\\d'e\"", "😀" * 3, "x" * 10_000, None, "NULL"],
    ),
    "vc": ("varchar(12)", pa.large_string(), ["short", "", None, "twelve chars"]),
    "bc": ("char(3)", pa.string(), ["ab", "abc", None, ""]),
    "js": ("jsonb", pa.string(), ['{"b": [1, 2.5, null], "a": "é"}', "[]", None, '"x"']),
    "jt": ("json", pa.string(), ['{"kept":  "as written"}', None]),
    "by": ("bytea", pa.binary(), [b"", b"\x00\xff\x10", None, bytes(range(256)) * 4]),
    "d": (
        "date",
        pa.date32(),
        [
            dt.date(1999, 12, 31),
            dt.date(2000, 1, 1),
            dt.date(1, 1, 1),
            dt.date(9999, 12, 31),
            dt.date(1970, 1, 1),
            dt.date(1900, 2, 28),
            None,
        ],
    ),
    "ts": (
        "timestamp",
        pa.timestamp("us"),
        [
            dt.datetime(1, 1, 1),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(2000, 1, 1),
            dt.datetime(1969, 12, 31, 23, 59, 59, 500000),
            None,
        ],
    ),
    "tz": (
        "timestamptz",
        pa.timestamp("us", tz="UTC"),
        [
            dt.datetime(1, 1, 1, tzinfo=UTC),
            dt.datetime(2024, 5, 31, 23, 59, 59, 123456, tzinfo=UTC),
            dt.datetime(1960, 6, 1, 12, 0, tzinfo=UTC),
            None,
        ],
    ),
    "tz_ms": (
        "timestamp with time zone",
        pa.timestamp("ms", tz="UTC"),
        [dt.datetime(1950, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)],
    ),
    "u": (
        "uuid",
        pa.binary(16),
        [
            uuid.UUID(int=0).bytes,
            uuid.UUID(int=2**128 - 1).bytes,
            uuid.UUID("12345678-1234-5678-1234-567812345678").bytes,
            None,
        ],
    ),
    "n38": (
        "numeric(38,10)",
        pa.decimal128(38, 10),
        [
            Decimal("0"),
            Decimal("-0.0000000001"),
            Decimal("9999999999999999999999999999.9999999999"),
            Decimal("-9999999999999999999999999999.9999999999"),
            Decimal("1.5"),
            Decimal("-12345.67"),
            Decimal("10000"),
            None,
        ],
    ),
    "n0": (
        "numeric",
        pa.decimal128(38, 0),
        [Decimal(10**37), Decimal(-1), Decimal(0), Decimal(10**4), Decimal(-(10**16))],
    ),
    "n3": (
        "numeric(12,3)",
        pa.decimal128(12, 3),
        [Decimal("0.001"), Decimal("123.456"), Decimal("-0.5"), Decimal("-999999999.999")],
    ),
    "n5": (
        "numeric",
        pa.decimal128(18, 5),
        [Decimal("0.00001"), Decimal("-1.10000"), Decimal("99999.99999"), Decimal("100000")],
    ),
    "n_neg_scale": (
        "numeric",
        pa.decimal128(5, -3),
        [Decimal("1.2345E+7"), Decimal("-9.9999E+7"), Decimal("0E+3")],
    ),
    "n256": (
        "numeric",
        pa.decimal256(76, 20),
        [
            Decimal("-" + "9" * 56 + "." + "9" * 20),
            Decimal("12345678901234567890.00000000000000000001"),
            None,
        ],
    ),
    "iv": (
        "interval",
        pa.month_day_nano_interval(),
        [
            pa.MonthDayNano([0, 0, 0]),
            pa.MonthDayNano([14, 3, 4 * 3_600_000_000_000 + 5_000]),
            pa.MonthDayNano([-1, 3, -1_000]),
            pa.MonthDayNano([178_000_000 * 12, -(2**31), 0]),
            pa.MonthDayNano([0, 0, 2562047 * 3_600_000_000_000 + 2_854_775_000]),
            None,
        ],
    ),
}

ROWS = max(len(values) for _, _, values in EDGE_COLUMNS.values())


def _arrow_table(columns: dict[str, tuple[str, pa.DataType, list[object]]], rows: int) -> pa.Table:
    return pa.table({name: pa.array(_pad(values, rows), type=t) for name, (_, t, values) in columns.items()})


def _python_value(value: object, arrow_type: pa.DataType) -> object:
    if value is not None and arrow_type == pa.month_day_nano_interval():
        months, days, nanos = value  # type: ignore[misc]
        return f"{months} mons {days} days {nanos // 1000} microseconds"  # interval_in's text
    if value is not None and arrow_type == pa.binary(16):
        return uuid.UUID(bytes=value)  # type: ignore[arg-type]
    if isinstance(value, Decimal) and pa.types.is_decimal(arrow_type) and arrow_type.scale >= 0:
        # An Arrow decimal always carries its type's scale: 100000 in decimal(18,5) is 100000.00000.
        return value.quantize(Decimal(1).scaleb(-arrow_type.scale), context=Context(prec=100))
    return value


def _compare_with_server(
    dsn: str, columns: dict[str, tuple[str, pa.DataType, list[object]]], table: pa.Table, blocks: list[bytes]
) -> None:
    """COPY ``blocks`` into one table, INSERT the Python values into a twin, compare ``::text``."""
    rows = table.num_rows
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))
        for name, (pg_type, _, _) in columns.items()
    )
    names = list(columns)
    with psycopg.connect(dsn) as conn:
        for target in ("via_copy", "via_insert"):
            conn.execute(
                sql.SQL("CREATE TABLE {} (row_no int, {})").format(sql.Identifier(target), definition)
            )
        conn.execute("ALTER TABLE via_copy DROP COLUMN row_no")
        conn.execute("ALTER TABLE via_copy ADD COLUMN row_no serial")  # rows numbered in COPY order
        with conn.cursor().copy(
            sql.SQL("COPY via_copy ({}) FROM STDIN (FORMAT binary)").format(
                sql.SQL(", ").join(map(sql.Identifier, names))
            )
        ) as copy:
            for block in blocks:
                copy.write(block)
        insert = sql.SQL("INSERT INTO via_insert (row_no, {}) VALUES (%s, {})").format(
            sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names))
        )
        with conn.cursor() as cur:
            cur.executemany(
                insert,
                [
                    [r + 1] + [_python_value(_pad(values, rows)[r], t) for _, t, values in columns.values()]
                    for r in range(rows)
                ],
            )
        select = sql.SQL("SELECT row_no, {} FROM {} ORDER BY row_no")
        as_text = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(n)) for n in names)
        got = conn.execute(select.format(as_text, sql.Identifier("via_copy"))).fetchall()
        expected = conn.execute(select.format(as_text, sql.Identifier("via_insert"))).fetchall()
    assert len(got) == rows
    for got_row, want_row in zip(got, expected, strict=True):
        for name, got_cell, want_cell in zip(["row_no", *names], got_row, want_row, strict=True):
            assert got_cell == want_cell, f"row {want_row[0]}, column {name}: {got_cell!r} != {want_cell!r}"


@pytest.mark.postgres
def test_every_type_and_edge_value_reads_back_as_postgresql_parses_it(pg_dsn: str) -> None:
    table = _arrow_table(EDGE_COLUMNS, ROWS)
    pg_types = [pg_type for pg_type, _, _ in EDGE_COLUMNS.values()]
    _compare_with_server(pg_dsn, EDGE_COLUMNS, table, [encode_copy_binary(table, pg_types)])


@pytest.mark.postgres
def test_streamed_blocks_of_a_chunked_table_load_the_same_rows(pg_dsn: str) -> None:
    whole = _arrow_table(EDGE_COLUMNS, ROWS)
    chunked = pa.concat_tables([whole.slice(0, 3), whole.slice(3, 1), whole.slice(4)])
    pg_types = [pg_type for pg_type, _, _ in EDGE_COLUMNS.values()]
    blocks = list(iter_copy_binary(chunked, pg_types, rows_per_block=2))
    assert len(blocks) == (ROWS + 1) // 2
    assert blocks[0].startswith(COPY_HEADER) and blocks[-1].endswith(COPY_TRAILER)
    assert b"".join(blocks) == encode_copy_binary(whole, pg_types)
    _compare_with_server(pg_dsn, EDGE_COLUMNS, chunked, blocks)


def test_stream_framing_follows_the_documented_layout() -> None:
    # PostgreSQL docs, "COPY ... Binary Format": 11-byte signature, int32 flags, int32 extension length.
    assert COPY_HEADER == b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    empty = pa.table({"a": pa.array([], pa.int32())})
    assert encode_copy_binary(empty, ["int4"]) == COPY_HEADER + b"\xff\xff"
    assert list(iter_copy_binary(empty, ["int4"])) == [COPY_HEADER + b"\xff\xff"]
    one = pa.table({"a": pa.array([1, None], pa.int32()), "s": pa.array(["hi", ""])})
    body = encode_copy_binary(one, ["int4", "text"])[len(COPY_HEADER) : -2]
    assert body == (
        b"\x00\x02" + b"\x00\x00\x00\x04" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x02hi"
        b"\x00\x02" + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x00"
    )


def test_type_names_with_modifiers_and_synonyms_are_understood() -> None:
    assert wire_kind("numeric(12, 2)") == "numeric"
    assert wire_kind("timestamp(3) with time zone") == "timestamp"
    assert wire_kind("character varying(20)") == "text"
    assert wire_kind("enum:order_status") == "text"
    assert wire_kind("DOUBLE PRECISION") == "float8"
    assert wire_kind("interval") == "interval"
    with pytest.raises(CopyEncodeError, match="not supported"):
        wire_kind("tsvector")
    with pytest.raises(CopyEncodeError, match="array type"):
        wire_kind("int4[]")


@pytest.mark.parametrize(
    ("array", "pg_type", "message"),
    [
        (pa.array([1, 40_000]), "int2", r"column 'c': value does not fit int2"),
        (pa.array(["1"]), "int8", r"column 'c': int8 needs an Arrow integer column, got string"),
        (pa.array([1.5]), "numeric", r"column 'c': numeric needs an Arrow decimal128"),
        (pa.array([dt.date(2000, 1, 1)]), "uuid", r"column 'c': uuid needs"),
        (
            pa.array([0, 1_000_001], pa.timestamp("ns")),
            "timestamp",
            r"column 'c': nanoseconds at row 1 do not fit PostgreSQL's microsecond timestamps",
        ),
        (
            pa.array([0, -(2**31)], pa.int32()).cast(pa.date32()),
            "date",
            r"column 'c': date out of PostgreSQL's range at row 1",
        ),
        (
            pa.array([None, -(2**62)], pa.timestamp("us")),
            "timestamptz",
            r"column 'c': timestamp out of PostgreSQL's range at row 1",
        ),
        (pa.array([1]), "tsvector", r"column 'c': PostgreSQL type 'tsvector' is not supported"),
        (
            pa.array([None, pa.MonthDayNano([0, 0, 1_500])], pa.month_day_nano_interval()),
            "interval",
            r"column 'c': nanoseconds at row 1 do not fit PostgreSQL's microsecond intervals",
        ),
        (pa.array([1]), "interval", r"column 'c': interval needs an Arrow month_day_nano_interval column"),
    ],
)
def test_values_postgresql_would_refuse_are_refused_with_the_column_name(
    array: pa.Array, pg_type: str, message: str
) -> None:
    with pytest.raises(CopyEncodeError, match=message):
        encode_copy_binary(pa.table({"c": array}), [pg_type])


def test_row_numbers_in_errors_count_from_the_start_of_the_table() -> None:
    table = pa.table({"d": pa.array([0, 1, 2, -(2**31)], pa.int32()).cast(pa.date32())})
    with pytest.raises(CopyEncodeError, match="at row 3"):
        list(iter_copy_binary(table, ["date"], rows_per_block=2))


def test_type_count_must_match_the_columns() -> None:
    with pytest.raises(CopyEncodeError, match=r"2 columns \(a, b\) but 1 PostgreSQL types"):
        encode_copy_binary(pa.table({"a": [1], "b": [2]}), ["int8"])


# -- property test: random tables, same oracle -------------------------------------------------------------

_decimals = st.decimals(
    min_value=Decimal("-99999999999999.9999"),
    max_value=Decimal("99999999999999.9999"),
    places=4,
    allow_nan=False,
)
_timestamps = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@pytest.mark.postgres
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.none() | st.integers(-(2**63), 2**63 - 1),
            st.none() | _text,
            st.none() | _decimals,
            st.none() | _timestamps,
            st.none() | st.dates(),
            st.none() | st.booleans(),
        ),
        max_size=30,
    )
)
def test_random_tables_match_the_server(pg_dsn: str, rows: list[tuple[object, ...]]) -> None:
    columns = {
        "i": ("int8", pa.int64(), [r[0] for r in rows]),
        "s": ("text", pa.string(), [r[1] for r in rows]),
        "n": ("numeric(18,4)", pa.decimal128(18, 4), [r[2] for r in rows]),
        "ts": ("timestamp", pa.timestamp("us"), [r[3] for r in rows]),
        "d": ("date", pa.date32(), [r[4] for r in rows]),
        "b": ("bool", pa.bool_(), [r[5] for r in rows]),
    }
    table = _arrow_table(columns, len(rows))
    pg_types = [pg_type for pg_type, _, _ in columns.values()]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS via_copy, via_insert")
    _compare_with_server(pg_dsn, columns, table, list(iter_copy_binary(table, pg_types, rows_per_block=7)))
