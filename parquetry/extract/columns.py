"""Describing the output columns of a table spec, on the coordinator connection."""

from __future__ import annotations

import psycopg

from parquetry.extract.errors import ExtractError
from parquetry.extract.spec import TableSpec, split_relation
from parquetry.pgcopy.types import PgColumn


def select_columns(described: list[PgColumn], wanted: tuple[str, ...] | None, source: str) -> list[PgColumn]:
    """Keep ``wanted`` columns in the order given; unknown names are an error naming them."""
    if wanted is None:
        return described
    by_name = {c.name: c for c in described}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise ExtractError(f"{source}: no column(s) {missing}; it has {sorted(by_name)}")
    return [by_name[name] for name in wanted]


def describe_spec(conn: psycopg.Connection, spec: TableSpec) -> list[PgColumn]:
    """The ``PgColumn`` list of a spec's output, in output order."""
    try:
        from parquetry.pgcopy import describe
    except ImportError:  # TEMPORARY until parquetry.pgcopy.describe lands
        return _describe_builtin(conn, spec)

    if spec.query is not None:
        described = list(describe.describe_query(conn, spec.query.strip().rstrip(";")))
        return select_columns(described, spec.columns, spec.source)
    assert spec.relation is not None
    schema, name = split_relation(spec.relation)
    relation = f"{schema}.{name}" if schema is not None else name
    return list(describe.describe_relation(conn, relation, list(spec.columns) if spec.columns else None))


def _describe_builtin(conn: psycopg.Connection, spec: TableSpec) -> list[PgColumn]:
    from parquetry.extract.plan import resolve_relation

    if spec.query is not None:
        cur = conn.execute(f"SELECT * FROM ({spec.query.strip().rstrip(';')}) AS q LIMIT 0")  # type: ignore[arg-type]
        described = [PgColumn(d.name, d.type_code, str(d.type_code), -1) for d in cur.description or []]
        return select_columns(described, spec.columns, spec.source)
    assert spec.relation is not None
    oid, _, schema, name = resolve_relation(conn, spec.relation)
    rows = conn.execute(
        "SELECT attname, atttypid, format_type(atttypid, atttypmod), atttypmod FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (oid,),
    ).fetchall()
    described = [PgColumn(r[0], int(r[1]), r[2], int(r[3]), relation=f"{schema}.{name}") for r in rows]
    return select_columns(described, spec.columns, spec.source)
