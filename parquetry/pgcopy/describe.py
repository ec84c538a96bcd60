"""Describe the columns of a query or relation from PostgreSQL itself: names, types, typmods.

The decoder needs more than a type OID: a domain decodes as its base type (with the domain's typmod), an
array needs its element type and declared dimensions, a range its subtype, a composite its live
attributes in order. ``describe_query`` prepares the statement (nothing runs) and reads the result
description; ``describe_relation`` reads ``pg_attribute``. Both resolve every type through
``pg_catalog`` recursively and fail early, naming table, column and type, when a type has no exact
Arrow mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from parquetry.pgcopy.errors import UnsupportedTypeError
from parquetry.pgcopy.types import (
    BUILTIN_SCALARS,
    PgColumn,
    PgField,
    PgType,
    column_arrow_field,
    name_with_typmod,
)

__all__ = ["describe_query", "describe_relation"]

_TYPE_SQL = """
SELECT t.typtype, t.typname, n.nspname, t.typbasetype, t.typtypmod, t.typndims, t.typelem,
       t.typcategory, t.typrelid, t.typlen, format_type(t.oid, NULL),
       (SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid),
       {multirange}
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.oid = %s
"""
_MULTIRANGE_SQL = "(SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = t.oid)"

_ATTRS_SQL = """
SELECT a.attname, a.atttypid, a.atttypmod, a.attndims, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_attribute a
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


@dataclass
class _Resolver:
    conn: psycopg.Connection
    relation: str
    column_name: str = ""

    def __post_init__(self) -> None:
        self._rows: dict[int, tuple] = {}
        self._money_scale: int | None = None
        multirange = _MULTIRANGE_SQL if self.conn.info.server_version >= 140000 else "NULL::oid"
        self._type_sql = _TYPE_SQL.format(multirange=multirange)

    def unsupported(self, reason: str, type_name: str) -> UnsupportedTypeError:
        return UnsupportedTypeError(reason, table=self.relation, column=self.column_name, type_name=type_name)

    def _type_row(self, oid: int) -> tuple:
        if oid not in self._rows:
            row = self.conn.execute(self._type_sql, (oid,)).fetchone()
            if row is None:
                raise self.unsupported(f"type OID {oid} not found in pg_type", str(oid))
            self._rows[oid] = row
        return self._rows[oid]

    def money_scale(self) -> int:
        if self._money_scale is None:
            row = self.conn.execute("SELECT scale('1'::money::numeric)").fetchone()
            self._money_scale = int(row[0]) if row else 2
        return self._money_scale

    def resolve(self, oid: int, typmod: int, ndims: int, depth: int = 0) -> PgType:
        if depth > 32:
            raise self.unsupported("type nesting deeper than 32 levels", str(oid))
        (typtype, _typname, nspname, basetype, typtypmod, typndims, typelem, category, typrelid, typlen,
         name, rngsubtype, multi_of) = self._type_row(oid)  # fmt: skip
        if typtype == "d":
            return self.resolve(
                basetype, typtypmod if typtypmod >= 0 else typmod, typndims or ndims, depth + 1
            )
        if typtype == "b" and category == "A" and typelem and typlen == -1:
            element = self.resolve(typelem, typmod, 1, depth + 1)
            return PgType(
                oid=oid, name=element.name + "[]", kind="array", element=element, ndims=max(1, ndims)
            )
        if typtype == "b":
            if oid in BUILTIN_SCALARS and nspname == "pg_catalog":
                codec, _ = BUILTIN_SCALARS[oid]
                scale = self.money_scale() if codec == "money" else 2
                return PgType(
                    oid=oid,
                    name=name_with_typmod(name, codec, typmod),
                    codec=codec,
                    typmod=typmod,
                    money_scale=scale,
                )
            raise self.unsupported("no exact Arrow mapping for this base type; cast it in a query", name)
        if typtype == "e":
            return PgType(oid=oid, name=name, kind="enum", codec="enum")
        if typtype == "r":
            return PgType(
                oid=oid, name=name, kind="range", element=self.resolve(rngsubtype, -1, 1, depth + 1)
            )
        if typtype == "m":
            return PgType(
                oid=oid, name=name, kind="multirange", element=self.resolve(multi_of, -1, 1, depth + 1)
            )
        if typtype == "c":
            fields = []
            # A composite value's attributes may be NULL whatever the table behind the type declares.
            for attname, atttypid, atttypmod, attndims, _, _ in self.conn.execute(_ATTRS_SQL, (typrelid,)):
                fields.append(PgField(attname, self.resolve(atttypid, atttypmod, attndims, depth + 1)))
            if not fields:
                raise self.unsupported("composite type without attributes", name)
            return PgType(oid=oid, name=name, kind="composite", fields=tuple(fields))
        if typtype == "p":
            raise self.unsupported(
                "pseudo-type (e.g. an untyped literal or anonymous record); cast the expression", name
            )
        raise self.unsupported(f"type kind {typtype!r}", name)

    def column(
        self, name: str, oid: int, typmod: int, ndims: int, type_name: str, not_null: bool = False
    ) -> PgColumn:
        self.column_name = name
        pg_type = self.resolve(oid, typmod, ndims)
        col = PgColumn(name, oid, type_name, typmod, pg_type, self.relation, not_null)
        column_arrow_field(col)  # refuse unmapped types now, not mid-extraction
        return col


def describe_query(conn: psycopg.Connection, query: sql.Composable | str) -> list[PgColumn]:
    """The output columns of ``query``, from a prepared statement's description (the query is not run).

    Array columns that come straight from a table column take that column's declared dimensions; other
    arrays are one-dimensional. Uses the unnamed prepared statement of ``conn``.
    """
    text = query.as_string(conn) if isinstance(query, sql.Composable) else query
    encoding = conn.info.encoding
    pgconn = conn.pgconn
    res = pgconn.prepare(b"", text.encode(encoding))
    if res.status != psycopg.pq.ExecStatus.COMMAND_OK:
        raise psycopg.ProgrammingError(
            f"cannot prepare query to describe it: {(res.error_message or b'').decode(encoding, 'replace')}"
        )
    desc = pgconn.describe_prepared(b"")
    if desc.status != psycopg.pq.ExecStatus.COMMAND_OK:
        raise psycopg.ProgrammingError(
            f"cannot describe query: {(desc.error_message or b'').decode(encoding, 'replace')}"
        )
    fields = [
        (
            (desc.fname(i) or b"").decode(encoding),
            desc.ftype(i),
            desc.fmod(i),
            desc.ftable(i),
            desc.ftablecol(i),
        )
        for i in range(desc.nfields)
    ]
    if not fields:
        return []
    # RowDescription reports a domain column as its base type; a column taken straight from a table
    # gets the table column's domain back (and its declared array dimensions).
    info = conn.execute(
        """
        SELECT dom.oid, a.atttypmod, a.attndims, format_type(
                   coalesce(dom.oid, u.typ), CASE WHEN dom.oid IS NULL THEN u.mod ELSE a.atttypmod END)
        FROM unnest(%s::oid[], %s::int[], %s::oid[], %s::int[]) WITH ORDINALITY AS u(typ, mod, tab, col, i)
        LEFT JOIN pg_attribute a ON a.attrelid = u.tab AND a.attnum = u.col AND u.col > 0
        LEFT JOIN pg_type dom ON dom.oid = a.atttypid AND dom.typtype = 'd' AND a.atttypid <> u.typ
        ORDER BY u.i
        """,
        ([f[1] for f in fields], [f[2] for f in fields], [f[3] for f in fields], [f[4] for f in fields]),
    ).fetchall()
    resolver = _Resolver(conn, "")
    columns = []
    for (name, oid, typmod, _, _), (domain, domain_typmod, attndims, type_name) in zip(
        fields, info, strict=True
    ):
        if domain is not None:
            oid, typmod = domain, domain_typmod
        columns.append(resolver.column(name, oid, typmod, max(1, attndims or 0), type_name))
    return columns


def describe_relation(
    conn: psycopg.Connection, relation: str | tuple[str, str], columns: Sequence[str] | None = None
) -> list[PgColumn]:
    """The live columns of a table, view or materialized view, skipping dropped columns.

    Columns of a table (plain or partitioned) declared ``NOT NULL`` come back ``not_null``: PostgreSQL
    enforces it on every row. Views, materialized views and foreign tables never promise it (a foreign
    table's constraint is not checked), and neither does a query: an outer join can null any column.

    ``relation`` is ``'table'``, ``'schema.table'`` (SQL quoting allowed, as ``to_regclass`` reads it) or a
    ``(schema, table)`` tuple taken literally. Columns come in ``attnum`` order, or in the order of
    ``columns`` when given (the order ``COPY t (cols) TO`` emits them in); an unknown name is an error.
    """
    regclass_text = sql.Identifier(*relation).as_string(conn) if isinstance(relation, tuple) else relation
    try:
        row = conn.execute(
            "SELECT c.oid, c.oid::regclass::text, c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (regclass_text,),
        ).fetchone()
    except psycopg.errors.InvalidName as exc:
        raise LookupError(f"relation name {regclass_text!r} is not valid SQL: {exc}") from None
    if row is None:
        raise LookupError(f"relation {regclass_text!r} does not exist")
    rel_oid, rel_name, relkind = row
    enforces_not_null = relkind in ("r", "p")
    attrs = conn.execute(_ATTRS_SQL, (rel_oid,)).fetchall()
    if columns is not None:
        by_name = {a[0]: a for a in attrs}
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise LookupError(f"relation {rel_name} has no column(s) {missing}")
        attrs = [by_name[c] for c in columns]
    resolver = _Resolver(conn, rel_name)
    return [
        resolver.column(
            attname, atttypid, atttypmod, max(1, attndims), type_name, enforces_not_null and attnotnull
        )
        for attname, atttypid, atttypmod, attndims, type_name, attnotnull in attrs
    ]
