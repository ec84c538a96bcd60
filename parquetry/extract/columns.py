"""Describing the output columns of a table spec, on the coordinator connection."""

from __future__ import annotations

import psycopg

from parquetry.extract.errors import ExtractError
from parquetry.extract.plan import resolve_relation
from parquetry.extract.spec import TableSpec
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
    """The ``PgColumn`` list of a spec's output, in output order (dropped columns never appear)."""
    from parquetry.pgcopy import describe

    try:
        if spec.query is not None:
            described = list(describe.describe_query(conn, spec.query.strip().rstrip(";")))
            return select_columns(described, spec.columns, spec.source)
        assert spec.relation is not None
        _, _, schema, name = resolve_relation(conn, spec.relation)
        described = list(describe.describe_relation(conn, (schema, name)))
        return select_columns(described, spec.columns, spec.source)
    except LookupError as exc:
        raise ExtractError(f"{spec.source}: {exc}") from exc
