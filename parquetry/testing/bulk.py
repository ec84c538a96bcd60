"""Bulk test data: deterministic Arrow columns and a binary-COPY loader.

Tests and benchmarks need tables with hundreds of thousands of realistic rows in a second or two.
Generators here are vectorised (numpy + Arrow compute, no per-row Python) and deterministic: the
same seed and column name give the same values on every machine, so snapshots built from them can
be cached by version. :func:`load_table` streams a table into PostgreSQL with
``COPY ... FROM STDIN (FORMAT binary)`` in large blocks written from a background thread, so
encoding the next block overlaps sending the previous one.

This module does not import pytest: the demo's sample database and the benchmarks use it too.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parquetry.pgcopy.encode import DEFAULT_ROWS_PER_BLOCK, iter_copy_binary

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = [
    "booleans",
    "choices",
    "create_and_load",
    "dates",
    "decimal_from_units",
    "decimals",
    "emails",
    "floats",
    "integers",
    "load_table",
    "person_names",
    "pg_type_for_arrow",
    "rng_for",
    "sentences",
    "sequence",
    "skus",
    "table_wire_types",
    "timestamps",
    "uuids",
    "with_nulls",
]


# -- deterministic generators ------------------------------------------------------------------------


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """An independent random stream per (seed, names): adding a column does not shift the others."""
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF]
    words.extend(zlib.crc32(name.encode()) for name in names)
    return np.random.default_rng(np.random.SeedSequence(words))


def sequence(n: int, start: int = 1) -> pa.Array:
    """``start, start + 1, ...`` as int64 (surrogate keys)."""
    return pa.array(np.arange(start, start + n, dtype=np.int64))


def integers(rng: np.random.Generator, n: int, low: int, high: int, dtype: str = "int64") -> pa.Array:
    """Uniform integers in ``[low, high]`` (both ends included)."""
    return pa.array(rng.integers(low, high, size=n, endpoint=True, dtype=np.int64).astype(dtype))


def floats(rng: np.random.Generator, n: int, low: float = 0.0, high: float = 1.0) -> pa.Array:
    return pa.array(rng.uniform(low, high, size=n))


def booleans(rng: np.random.Generator, n: int, p_true: float = 0.5) -> pa.Array:
    return pa.array(rng.random(n) < p_true)


def choices(
    rng: np.random.Generator, n: int, values: Sequence[str], p: Sequence[float] | None = None
) -> pa.Array:
    """Strings drawn from ``values`` (with probabilities ``p``)."""
    index = rng.choice(len(values), size=n, p=None if p is None else np.asarray(p, dtype=np.float64))
    return pa.array(list(values), type=pa.string()).take(pa.array(index))


_FIRST = [
    "Ada",
    "Alan",
    "Amara",
    "Anil",
    "Ben",
    "Carla",
    "Chen",
    "Dana",
    "Diego",
    "Elif",
    "Emma",
    "Farah",
    "Femi",
    "Grace",
    "Hana",
    "Ivan",
    "Jana",
    "Jonas",
    "Kai",
    "Lena",
    "Liam",
    "Lucia",
    "Mara",
    "Mei",
    "Mohamed",
    "Nia",
    "Noah",
    "Olga",
    "Omar",
    "Priya",
    "Rafael",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Uma",
    "Vera",
    "Yuki",
    "Zoe",
]
_LAST = [
    "Abe",
    "Berg",
    "Costa",
    "Dahl",
    "Dubois",
    "Eze",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kaur",
    "Kim",
    "Kowalski",
    "Lee",
    "Lopez",
    "Mensah",
    "Moreau",
    "Mueller",
    "Nagy",
    "Novak",
    "Okafor",
    "Park",
    "Perez",
    "Popescu",
    "Rossi",
    "Sato",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Tanaka",
    "Wang",
]
_WORDS = [
    "please",
    "deliver",
    "before",
    "noon",
    "leave",
    "at",
    "the",
    "door",
    "call",
    "on",
    "arrival",
    "gift",
    "wrap",
    "fragile",
    "handle",
    "with",
    "care",
    "second",
    "floor",
    "back",
    "entrance",
    "ring",
    "twice",
    "no",
    "signature",
    "needed",
    "reuse",
    "the",
    "box",
    "weekend",
    "delivery",
    "only",
]
_DOMAINS = ("example.com", "example.org", "mail.test", "corp.test")


def person_names(rng: np.random.Generator, n: int) -> pa.Array:
    """``"First Last"`` from small fixed vocabularies."""
    first = pa.array(_FIRST).take(pa.array(rng.integers(0, len(_FIRST), n)))
    last = pa.array(_LAST).take(pa.array(rng.integers(0, len(_LAST), n)))
    return pc.binary_join_element_wise(first, last, " ")


def emails(rng: np.random.Generator, names: pa.Array, ids: pa.Array) -> pa.Array:
    """``first.last.<id>@domain``, unique per id."""
    local = pc.replace_substring(pc.utf8_lower(names), " ", ".")
    domain = pa.array(_DOMAINS).take(pa.array(rng.integers(0, len(_DOMAINS), len(names))))
    return pc.binary_join_element_wise(local, ".", pc.cast(ids, pa.string()), "@", domain, "")


def skus(rng: np.random.Generator, n: int, catalogue_size: int = 5000) -> pa.Array:
    """``SKU-000123`` product codes."""
    numbers = pc.cast(pa.array(rng.integers(1, catalogue_size, n, endpoint=True)), pa.string())
    return pc.binary_join_element_wise("SKU-", pc.utf8_lpad(numbers, 6, "0"), "")


def sentences(rng: np.random.Generator, n: int, min_words: int = 2, max_words: int = 8) -> pa.Array:
    """Short free-text notes built from a fixed vocabulary."""
    counts = rng.integers(min_words, max_words, n, endpoint=True)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    words = pa.array(_WORDS).take(pa.array(rng.integers(0, len(_WORDS), int(offsets[-1]))))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), words), " ")


def timestamps(
    rng: np.random.Generator, n: int, start: dt.datetime, end: dt.datetime, tz: str | None = "UTC"
) -> pa.Array:
    """Uniform microsecond timestamps in ``[start, end)``; naive datetimes are read as UTC."""
    lo = _epoch_us(start)
    hi = _epoch_us(end)
    values = rng.integers(lo, hi, size=n, dtype=np.int64)
    return pa.array(values, type=pa.int64()).cast(pa.timestamp("us", tz=tz))


def _epoch_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def dates(rng: np.random.Generator, n: int, start: dt.date, end: dt.date) -> pa.Array:
    """Uniform dates in ``[start, end]``."""
    epoch = dt.date(1970, 1, 1)
    days = rng.integers((start - epoch).days, (end - epoch).days, size=n, endpoint=True).astype(np.int32)
    return pa.array(days, type=pa.int32()).cast(pa.date32())


def decimal_from_units(units: np.ndarray, precision: int, scale: int) -> pa.Array:
    """A decimal128 array whose values are ``units * 10**-scale`` (exact; no float on the way)."""
    units = np.ascontiguousarray(units, dtype=np.int64)
    words = np.empty((len(units), 2), dtype="<i8")
    words[:, 0] = units
    words[:, 1] = units >> 63  # sign extension into the high word
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(units), [None, pa.py_buffer(words)])


def decimals(
    rng: np.random.Generator, n: int, low: float, high: float, precision: int, scale: int
) -> pa.Array:
    """Uniform decimals in ``[low, high]`` with ``scale`` fractional digits."""
    factor = 10**scale
    units = rng.integers(round(low * factor), round(high * factor), size=n, endpoint=True, dtype=np.int64)
    return decimal_from_units(units, precision, scale)


def uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """Random (version 4) UUIDs as Arrow's uuid extension type."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    storage = pa.Array.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw)])
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def with_nulls(rng: np.random.Generator, values: pa.Array, fraction: float) -> pa.Array:
    """``values`` with about ``fraction`` of the entries set to NULL."""
    mask = pa.array(rng.random(len(values)) < fraction)
    if isinstance(values.type, pa.BaseExtensionType):
        storage = pc.if_else(mask, pa.scalar(None, values.type.storage_type), values.storage)
        return pa.ExtensionArray.from_storage(values.type, storage)
    return pc.if_else(mask, pa.scalar(None, values.type), values)


# -- loading -------------------------------------------------------------------------------------------


def pg_type_for_arrow(arrow_type: pa.DataType) -> str:
    """The PostgreSQL column type :func:`create_and_load` uses for an Arrow type."""
    t = arrow_type
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return "uuid"
        t = t.storage_type
    simple = {
        pa.bool_(): "bool",
        pa.int8(): "int2",
        pa.int16(): "int2",
        pa.int32(): "int4",
        pa.int64(): "int8",
        pa.uint8(): "int2",
        pa.uint16(): "int4",
        pa.uint32(): "int8",
        pa.float32(): "float4",
        pa.float64(): "float8",
        pa.string(): "text",
        pa.large_string(): "text",
        pa.binary(): "bytea",
        pa.large_binary(): "bytea",
        pa.date32(): "date",
        pa.month_day_nano_interval(): "interval",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_string_view(t):
        return "text"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz is not None else "timestamp"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
        return "text"
    raise TypeError(f"no PostgreSQL column type for Arrow type {arrow_type}; pass pg_types")


def _table_sql(table: str | tuple[str, str] | sql.Composable) -> sql.Composable:
    from psycopg import sql

    if isinstance(table, str):
        return sql.Identifier(table)
    if isinstance(table, tuple):
        return sql.Identifier(*table)
    return table


def table_wire_types(
    conn: psycopg.Connection, table: str | tuple[str, str] | sql.Composable, columns: Sequence[str]
) -> list[str]:
    """The binary-COPY type of each named column of ``table``, read from the catalog.

    Enums travel as text, domains as their base type; binary COPY must match the column type exactly,
    so the catalog is the one source that cannot drift from the table.
    """
    query = """
        SELECT a.attname,
               CASE WHEN t.typtype = 'e' THEN 'enum'
                    WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
                    ELSE format_type(a.atttypid, a.atttypmod) END
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
    """
    name = _table_sql(table).as_string(conn)
    found = dict(conn.execute(query, (name,)).fetchall())
    missing = [c for c in columns if c not in found]
    if missing:
        raise ValueError(f"table {name} has no column(s) {', '.join(missing)}")
    return [found[c] for c in columns]


def load_table(
    conn: psycopg.Connection,
    table: str | tuple[str, str] | sql.Composable,
    data: pa.Table,
    pg_types: Sequence[str] | None = None,
    *,
    rows_per_block: int = DEFAULT_ROWS_PER_BLOCK,
    freeze: bool = False,
) -> int:
    """COPY ``data`` into the existing ``table`` (columns matched by name); returns rows loaded.

    ``pg_types`` (one per column of ``data``) default to the table's column types from the catalog.
    ``freeze=True`` loads the rows already frozen (``COPY ... FREEZE``), sparing every later reader
    (and every clone of a snapshot) the hint-bit writes; PostgreSQL allows it only when the table was
    created or truncated in the current transaction. The caller owns the transaction: commit
    afterwards unless ``conn`` is in autocommit.
    """
    from psycopg import sql
    from psycopg.copy import QueuedLibpqWriter

    target = _table_sql(table)
    if pg_types is None:
        pg_types = table_wire_types(conn, table, data.column_names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary{})").format(
        target,
        sql.SQL(", ").join(sql.Identifier(c) for c in data.column_names),
        sql.SQL(", FREEZE" if freeze else ""),
    )
    with conn.cursor() as cur:
        with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
            for block in iter_copy_binary(data, pg_types, rows_per_block=rows_per_block):
                copy.write(memoryview(block))  # the writer slices it into 128 KiB views, no copies
        return cur.rowcount


_TYPE_TEXT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ,()\[\].\"]*$")


def create_and_load(
    conn: psycopg.Connection,
    table: str | tuple[str, str] | sql.Composable,
    data: pa.Table,
    pg_types: Sequence[str] | None = None,
    *,
    primary_key: Sequence[str] = (),
    unlogged: bool = False,
    replace: bool = False,
) -> int:
    """CREATE TABLE with one column per column of ``data`` (types ``pg_types`` or derived from Arrow),
    load it with :func:`load_table`, add the primary key after the load (faster), return rows loaded.
    """
    from psycopg import sql

    target = _table_sql(table)
    types = list(pg_types) if pg_types is not None else [pg_type_for_arrow(f.type) for f in data.schema]
    if len(types) != data.num_columns:
        raise ValueError(f"{data.num_columns} columns but {len(types)} PostgreSQL types")
    for pg_type in types:
        if not _TYPE_TEXT.match(pg_type):
            raise ValueError(f"{pg_type!r} does not look like a PostgreSQL type name")
    if replace:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))  # type text checked above
        for name, pg_type in zip(data.column_names, types, strict=True)
    )
    conn.execute(
        sql.SQL("CREATE {}TABLE {} ({})").format(sql.SQL("UNLOGGED " if unlogged else ""), target, columns)
    )
    rows = load_table(conn, target, data, freeze=not conn.autocommit)
    if primary_key:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                target, sql.SQL(", ").join(sql.Identifier(c) for c in primary_key)
            )
        )
    return rows
