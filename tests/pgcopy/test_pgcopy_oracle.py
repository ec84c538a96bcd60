"""The decoder against PostgreSQL itself: every supported type, edge values, compared value by value.

For each column the oracle is PostgreSQL's own rendering of the same rows (the output function read as
raw text, or an exact SQL expression such as ``extract(epoch ...)`` where the text form depends on
session settings); the test formats the decoded Arrow values the PostgreSQL way and compares strings.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from parquetry.pgcopy.decode import CopyDecoder, decode_copy_binary
from parquetry.pgcopy.describe import describe_query, describe_relation
from parquetry.pgcopy.errors import CopyFormatError
from parquetry.pgcopy.types import PgType, arrow_schema
from parquetry.testing.arrow_compare import assert_same_table
from parquetry.testing.every_type import every_type_database

pytestmark = pytest.mark.postgres

# Per-column oracle expressions where the text output depends on settings or has no Python equivalent.
TS_ORACLE = (
    "CASE WHEN isfinite({c}) THEN (extract(epoch from {c}) * 1000000)::numeric(40,0)::text ELSE {c}::text END"
)
INTERVAL_ORACLE = (
    "(extract(year from {c}) * 12 + extract(month from {c}))::text || ' ' || extract(day from {c})::text"
    " || ' ' || (extract(epoch from ({c} - make_interval(months => (extract(year from {c}) * 12"
    " + extract(month from {c}))::int, days => extract(day from {c})::int))) * 1000000)::numeric(40,0)::text"
)
ORACLE_EXPR = {
    "c_money": "{c}::numeric::text",
    "c_date": "CASE WHEN isfinite({c}) THEN ({c} - date '1970-01-01')::text ELSE {c}::text END",
    "c_ts": TS_ORACLE,
    "c_tstz": TS_ORACLE,
    "c_time": "(extract(epoch from {c}) * 1000000)::numeric(40,0)::text",
    "c_timetz": "(extract(epoch from {c}::time) * 1000000)::numeric(40,0)::text || ' '"
    " || extract(timezone from {c})::text",
    "c_interval": INTERVAL_ORACLE,
}


def copy_bytes(conn: psycopg.Connection, query: sql.Composable | str) -> bytes:
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(query)) as cp:
        return b"".join(bytes(chunk) for chunk in cp)


def raw_text(conn: psycopg.Connection, query: sql.Composable) -> list[list[str | None]]:
    """Rows exactly as PostgreSQL's output functions render them (text protocol, no parsing)."""
    cur = conn.execute(query, binary=False)
    res = cur.pgresult
    assert res is not None
    return [
        [None if (v := res.get_value(r, c)) is None else v.decode() for c in range(res.nfields)]
        for r in range(res.ntuples)
    ]


@pytest.fixture(scope="module")
def every_type(pg_cluster) -> Any:
    """(table, PostgreSQL renderings, described columns), built once for the module."""
    with (
        every_type_database(pg_cluster, "pgcopy_oracle") as dsn,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        conn.execute("SET client_encoding = 'UTF8'")
        columns = describe_relation(conn, "every_type")
        data = copy_bytes(conn, sql.SQL("SELECT * FROM every_type ORDER BY id"))
        exprs = [sql.Identifier("id")]
        for col in columns[1:]:
            template = ORACLE_EXPR.get(col.name, "{c}")
            exprs.append(sql.SQL(template.replace("{c}", "{0}")).format(sql.Identifier(col.name)))
        rendered = raw_text(
            conn, sql.SQL("SELECT {} FROM every_type ORDER BY id").format(sql.SQL(", ").join(exprs))
        )
        query_columns = describe_query(conn, "SELECT * FROM every_type")
        yield data, rendered, columns, query_columns


# --- formatting decoded Arrow values the PostgreSQL way -----------------------------------------------


def _needs_quotes(s: str, specials: str) -> bool:
    return s == "" or any(ch in specials or ch.isspace() for ch in s)


def _array_elem(s: str | None) -> str:
    if s is None:
        return "NULL"
    if _needs_quotes(s, '{},"\\') or s.upper() == "NULL":
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def _range_bound(s: str) -> str:
    if _needs_quotes(s, '"\\()[],'):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def _record_field(s: str | None) -> str:
    if s is None:
        return ""
    if _needs_quotes(s, '"\\(),'):
        return '"' + s.replace('"', '""').replace("\\", "\\\\") + '"'
    return s


def _pg_float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def _pg_timestamp(v: dt.datetime) -> str:
    text = v.strftime("%Y-%m-%d %H:%M:%S")
    if v.microsecond:
        text += f".{v.microsecond:06d}".rstrip("0")
    return text


def pg_text(value: Any, t: PgType) -> str | None:
    """PostgreSQL's text output of a decoded (Python) value of type ``t``, for the types used here."""
    if value is None:
        return None
    if t.kind == "array":
        assert t.element is not None

        def render(v: Any, depth: int) -> str:
            if depth == t.ndims:
                return _array_elem(pg_text(v, t.element))
            return "{" + ",".join(render(x, depth + 1) for x in v) + "}"

        return "{}" if value == [] else render(value, 0)
    if t.kind == "range":
        assert t.element is not None
        if value["empty"]:
            return "empty"
        lo, hi = (pg_text(value[k], t.element) for k in ("lower", "upper"))
        return (
            ("[" if value["lower_inc"] else "(")
            + ("" if lo is None else _range_bound(lo))
            + ","
            + ("" if hi is None else _range_bound(hi))
            + ("]" if value["upper_inc"] else ")")
        )
    if t.kind == "multirange":
        return "{" + ",".join(pg_text(r, t.element) or "" for r in value) + "}"  # type: ignore[arg-type]
    if t.kind == "composite":
        return "(" + ",".join(_record_field(pg_text(value[f.name], f.type)) for f in t.fields) + ")"
    c = t.codec
    if c == "bool":
        return "t" if value else "f"
    if c in ("float4", "float8"):
        return _pg_float(value)
    if c == "numeric":
        return value if isinstance(value, str) else format(value, "f")
    if c == "bytea":
        return "\\x" + value.hex()
    if c == "uuid":
        return str(uuid.UUID(bytes=value))
    if c == "date":
        return value.isoformat()
    if c == "timestamp":
        return _pg_timestamp(value)
    if isinstance(value, int | str):
        return str(value)
    raise AssertionError(f"no PostgreSQL formatting for {t.name} in this test")


# Columns whose oracle is an SQL expression: compare via these converters on the raw Arrow value.
def _epoch_or_infinity(arr: pa.Array, unit_max: int, unit_min: int) -> list[str | None]:
    out: list[str | None] = []
    for v in arr.view(pa.int32() if arr.type == pa.date32() else pa.int64()).to_pylist():
        out.append(
            None if v is None else "infinity" if v == unit_max else "-infinity" if v == unit_min else str(v)
        )
    return out


def _expected_special(name: str, arr: pa.Array) -> list[str | None] | None:
    if name == "c_money":
        return [None if v is None else format(v, "f") for v in arr.to_pylist()]
    if name == "c_date":
        return _epoch_or_infinity(arr, 2**31 - 1, -(2**31))
    if name in ("c_ts", "c_tstz"):
        return _epoch_or_infinity(arr, 2**63 - 1, -(2**63))
    if name == "c_time":
        return [None if v is None else str(v) for v in arr.view(pa.int64()).to_pylist()]
    if name == "c_timetz":
        times = arr.field("time").view(pa.int64()).to_pylist()
        offsets = arr.field("offset_s").to_pylist()
        valid = arr.is_valid().to_pylist()
        return [f"{t} {o}" if ok else None for ok, t, o in zip(valid, times, offsets, strict=True)]
    if name == "c_interval":
        out: list[str | None] = []
        for v in arr.to_pylist():
            out.append(None if v is None else f"{v.months} {v.days} {v.nanoseconds // 1000}")
            assert v is None or v.nanoseconds % 1000 == 0
        return out
    if name == "c_float4":
        return None
    return None


def _compare_floats(decoded: list[Any], rendered: list[str | None], as_type: Callable[[str], Any]) -> None:
    for got, want in zip(decoded, rendered, strict=True):
        if want is None:
            assert got is None
        elif want == "NaN":
            assert math.isnan(got)
        elif want in ("Infinity", "-Infinity"):
            assert got == (math.inf if want == "Infinity" else -math.inf)
        else:
            assert as_type(got) == as_type(want), (got, want)
            assert math.copysign(1, float(got)) == math.copysign(1, float(want))


def test_every_type_decodes_to_what_postgresql_renders(every_type) -> None:
    data, rendered, columns, _ = every_type
    table = decode_copy_binary(data, columns, source="every_type")
    assert table.num_rows == len(rendered)
    table.validate()
    by_column = list(zip(*rendered, strict=True))
    for j, col in enumerate(columns):
        want = list(by_column[j])
        arr = table.column(j).combine_chunks()
        if col.name == "c_float4":
            _compare_floats(arr.to_pylist(), want, lambda v: np.float32(v))
            continue
        if col.name == "c_float8":
            _compare_floats(arr.to_pylist(), want, float)
            continue
        special = _expected_special(col.name, arr)
        got = special if special is not None else [pg_text(v, col.type) for v in arr.to_pylist()]
        assert got == want, f"column {col.name} ({col.type_name})"


def test_every_type_schema_carries_postgresql_type_names(every_type) -> None:
    _, _, columns, query_columns = every_type
    names = {c.name: c.type_name for c in columns}
    assert names["c_num"] == "numeric(12,2)"
    assert names["c_enum"] == "order_status"
    assert names["c_int4a"] == "integer[]"
    assert [c.name for c in columns][-1] == "tail"
    assert "gone" not in names
    schema = arrow_schema(columns)
    assert schema.field("c_num").metadata == {b"pg_type": b"numeric(12,2)"}
    assert schema.field("c_num").type == pa.decimal128(12, 2)
    assert schema.field("c_num76").type == pa.decimal256(76, 20)
    assert schema.field("c_numfree").type == pa.string()
    assert schema.field("c_domain").type == pa.decimal128(10, 2)
    assert schema.field("c_int8a2").type == pa.list_(pa.list_(pa.int64()))
    # A query over the table sees the same types (array dimensions come from the table column).
    assert [(c.name, c.type_name, c.pg_type) for c in query_columns] == [
        (c.name, c.type_name, c.pg_type) for c in columns
    ]


def test_every_type_decodes_identically_in_random_splits(every_type) -> None:
    data, _, columns, _ = every_type
    whole = decode_copy_binary(data, columns, source="every_type")
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.choice(np.arange(1, len(data)), size=40, replace=False))
    decoder = CopyDecoder(columns, source="every_type", batch_rows=3)
    batches = []
    prev = 0
    for cut in [*cuts.tolist(), len(data)]:
        batches += decoder.feed(memoryview(data)[prev:cut])
        prev = cut
    batches += decoder.finish()
    assert all(b.num_rows <= 3 for b in batches)
    assert_same_table(pa.Table.from_batches(batches, schema=decoder.schema), whole)


def test_numeric_decodes_as_postgresql_prints_it(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE n (x numeric, y numeric(20,6))")
        conn.execute(
            "INSERT INTO n SELECT"
            " (random() * 10 ^ (random() * 40 - 20))::numeric * sign(random() - 0.5)::numeric,"
            " round((random() * 10 ^ (random() * 14))::numeric * sign(random() - 0.5)::numeric, 6)"
            " FROM generate_series(1, 3000)"
        )
        conn.execute("UPDATE n SET x = round(x, (random() * 30)::int) WHERE random() < 0.5")
        columns = describe_relation(conn, "n")
        table = decode_copy_binary(copy_bytes(conn, sql.SQL("SELECT * FROM n")), columns)
        rendered = raw_text(conn, sql.SQL("SELECT x, y FROM n"))
    assert table.column("x").to_pylist() == [r[0] for r in rendered]
    assert [format(v, "f") for v in table.column("y").to_pylist()] == [r[1] for r in rendered]


def test_wide_table_of_1600_columns(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        cols = sql.SQL(", ").join(sql.SQL("{} int4").format(sql.Identifier(f"c{i}")) for i in range(1600))
        conn.execute(sql.SQL("CREATE TABLE wide ({})").format(cols))
        values = sql.SQL(", ").join(sql.SQL("g * {}").format(sql.Literal(i)) for i in range(1600))
        conn.execute(sql.SQL("INSERT INTO wide SELECT {} FROM generate_series(1, 5) g").format(values))
        conn.execute("UPDATE wide SET c1599 = NULL WHERE c1 = 2")
        columns = describe_relation(conn, "wide")
        table = decode_copy_binary(copy_bytes(conn, sql.SQL("SELECT * FROM wide ORDER BY c1")), columns)
        rendered = raw_text(conn, sql.SQL("SELECT * FROM wide ORDER BY c1"))
    assert table.num_columns == 1600
    got = [[None if v is None else str(v) for v in row.values()] for row in table.to_pylist()]
    assert got == rendered


def test_zero_row_table_gives_empty_table_with_schema(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE empty_t (a int, b text, c numeric(5,1)[])")
        columns = describe_relation(conn, "empty_t")
        data = copy_bytes(conn, sql.SQL("SELECT * FROM empty_t"))
    table = decode_copy_binary(data, columns, source="empty_t")
    assert table.num_rows == 0
    assert table.schema.names == ["a", "b", "c"]
    assert table.schema.field("c").type == pa.list_(pa.decimal128(5, 1))


def test_numeric_nan_in_constrained_column_is_refused_with_column_name(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nn (id int, price numeric(8,2))")
        conn.execute("INSERT INTO nn VALUES (1, 1.5), (2, 'NaN')")
        columns = describe_relation(conn, "nn")
        data = copy_bytes(conn, sql.SQL("SELECT * FROM nn ORDER BY id"))
    with pytest.raises(CopyFormatError, match=r"NaN.*row 2, column 'price'"):
        decode_copy_binary(data, columns, source="public.nn")


def test_random_temporal_values_match_postgresql(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            "CREATE TABLE c_temporal AS SELECT"
            " date '0001-01-01' + (random() * 3650000)::int AS c_date,"
            " timestamp '1000-01-01' + random() * interval '3000000 days' AS c_ts,"
            " timestamptz '1800-01-01 00:00+00' + random() * interval '200000 days' AS c_tstz,"
            " time '00:00' + random() * interval '24 hours' AS c_time,"
            " (time '00:00' + random() * interval '24 hours')::timetz AS c_timetz,"
            " make_interval(months => (random() * 2000 - 1000)::int, days => (random() * 2000 - 1000)::int,"
            "   secs => random() * 1e9 - 5e8) AS c_interval"
            " FROM generate_series(1, 2000)"
        )
        conn.execute("UPDATE c_temporal SET c_date = NULL, c_interval = NULL WHERE random() < 0.1")
        columns = describe_relation(conn, "c_temporal")
        table = decode_copy_binary(copy_bytes(conn, sql.SQL("SELECT * FROM c_temporal")), columns)
        exprs = [
            sql.SQL(ORACLE_EXPR[c.name].replace("{c}", "{0}")).format(sql.Identifier(c.name)) for c in columns
        ]
        rendered = raw_text(conn, sql.SQL("SELECT {} FROM c_temporal").format(sql.SQL(", ").join(exprs)))
    by_column = list(zip(*rendered, strict=True))
    for j, col in enumerate(columns):
        assert _expected_special(col.name, table.column(j).combine_chunks()) == list(by_column[j]), col.name
