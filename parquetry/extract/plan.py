"""Planning an extraction: which relations, which ctid page ranges, which COPY statements.

Everything here runs on the coordinator connection inside the exported snapshot's transaction, so
the plan (leaf partitions, columns) matches the data the workers will read.

The plan depends on the table's size and ``range_bytes`` only, never on the number of workers, so
the chunk sequence (and with it the Parquet output) is the same whatever the parallelism.

* A table or materialized view is split into ranges of ``range_bytes`` worth of pages, or into
  ``min_ranges`` ranges of at least 1 MiB when that gives smaller ones (so that a table of a few
  dozen megabytes still keeps every worker busy); each range
  is read with ``ctid >= '(a,0)' AND ctid < '(b,0)'`` (a TID range scan, PostgreSQL 14+). The last
  range has no upper bound so that nothing past the size measured at planning time is lost.
* A partitioned table (or a table with inheritance children) is expanded to every member of its
  inheritance tree that holds storage, each read with ``FROM ONLY`` and ranged on its own.
* Views, foreign tables and queries are one stream without ctid.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from parquetry.extract.errors import ExtractError
from parquetry.extract.spec import TableSpec, split_relation
from parquetry.pgcopy.types import PgColumn

RANGED_KINDS = ("r", "m")  # heap relations: ctid ranges make sense
STREAM_KINDS = ("v", "f")  # no ctid (or no cheap one): one stream
MIN_TID_RANGE_VERSION = 140000


@dataclass(frozen=True)
class CopyTask:
    """One COPY statement; ``index`` is its place in the output order, ``source`` names it in messages."""

    index: int
    source: str
    statement: str


@dataclass(frozen=True)
class ExtractPlan:
    spec: TableSpec
    columns: list[PgColumn]
    tasks: list[CopyTask]
    relations: list[str]  # the relations read, "schema.name"
    pages: int  # heap pages planned over (0 for views and queries)


def day_window(day: str | dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[day 00:00 UTC, next day 00:00 UTC)`` for a ``YYYY-MM-DD`` partition key."""
    date = dt.date.fromisoformat(day) if isinstance(day, str) else day
    start = dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _bound(value: dt.datetime) -> sql.Composable:
    # An untyped literal takes the column's type: '... +00' means UTC midnight for timestamptz and
    # plain midnight for timestamp; a date column reads the date part.
    return sql.Literal(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00"))


def filters(spec: TableSpec, window: tuple[dt.datetime, dt.datetime] | None) -> list[sql.Composable]:
    """The spec's row filter and the time window, as SQL conditions."""
    conditions: list[sql.Composable] = []
    if spec.where is not None:
        conditions.append(sql.SQL("({})").format(sql.SQL(spec.where)))  # trusted config text
    if window is not None:
        if spec.time_column is None:
            raise ExtractError(f"{spec.source}: a time window needs a time_column in the table spec")
        column = sql.Identifier(spec.time_column)
        conditions.append(
            sql.SQL("{} >= {} AND {} < {}").format(column, _bound(window[0]), column, _bound(window[1]))
        )
    return conditions


def _where(conditions: Sequence[sql.Composable]) -> sql.Composable:
    if not conditions:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)


def _copy(select: sql.Composable) -> sql.Composable:
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(select)


def _select_list(columns: Sequence[PgColumn]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)


def resolve_relation(conn: psycopg.Connection, relation: str) -> tuple[int, str, str, str]:
    """``(oid, relkind, schema, name)`` of a spec's relation; raises naming it when absent."""
    schema, name = split_relation(relation)
    ident = sql.Identifier(schema, name) if schema is not None else sql.Identifier(name)
    row = conn.execute(
        "SELECT c.oid, c.relkind, n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (ident.as_string(conn),),
    ).fetchone()
    if row is None:
        raise ExtractError(f"relation {relation!r} does not exist (or is not visible on the search_path)")
    return int(row[0]), str(row[1]), str(row[2]), str(row[3])


def storage_members(conn: psycopg.Connection, oid: int) -> list[tuple[str, str, str, int]]:
    """Members of ``oid``'s inheritance tree that hold rows: ``(schema, name, relkind, pages)``, by name."""
    rows = conn.execute(
        """
        WITH RECURSIVE tree(relid) AS (
            SELECT %s::oid
            UNION
            SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid
        )
        SELECT n.nspname, c.relname, c.relkind,
               CASE WHEN c.relkind IN ('r', 'm')
                    THEN pg_relation_size(c.oid) / current_setting('block_size')::bigint ELSE 0 END
        FROM tree JOIN pg_class c ON c.oid = tree.relid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'f')
        ORDER BY n.nspname, c.relname
        """,
        (oid,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def page_ranges(pages: int, pages_per_range: int) -> list[tuple[int, int | None]]:
    """Cover pages ``[0, pages)`` with ranges of ``pages_per_range``; the last is open-ended."""
    if pages_per_range < 1:
        raise ValueError("pages_per_range must be at least 1")
    count = max(1, -(-pages // pages_per_range))
    return [(i * pages_per_range, (i + 1) * pages_per_range if i < count - 1 else None) for i in range(count)]


def range_pages(pages: int, block_size: int, range_bytes: int, min_ranges: int = 16) -> int:
    """Pages per range: ``range_bytes`` worth, or less so that a relation has ``min_ranges`` ranges,
    but never below 1 MiB (or ``range_bytes`` when that is smaller)."""
    largest = max(1, range_bytes // block_size)
    smallest = min(largest, max(1, (1 << 20) // block_size))
    return min(largest, max(smallest, -(-pages // max(1, min_ranges))))


def _tid(page: int) -> sql.Composable:
    return sql.SQL("{}::tid").format(sql.Literal(f"({page},0)"))


def plan_extraction(
    conn: psycopg.Connection,
    spec: TableSpec,
    columns: list[PgColumn],
    *,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    range_bytes: int = 16 << 20,
    min_ranges: int = 16,
) -> ExtractPlan:
    """Build the COPY tasks of ``spec`` (described ``columns``) on the coordinator connection."""
    conditions = filters(spec, window)
    select_list = _select_list(columns)
    if spec.query is not None:
        inner = sql.SQL(spec.query.strip().rstrip(";"))  # trusted config text
        select = sql.SQL("SELECT {} FROM ({}) AS parquetry_query{}").format(
            select_list, inner, _where(conditions)
        )
        statement = _copy(select).as_string(conn)
        return ExtractPlan(spec, columns, [CopyTask(0, spec.source, statement)], [], 0)

    assert spec.relation is not None
    oid, relkind, schema, name = resolve_relation(conn, spec.relation)
    label = f"{schema}.{name}"
    if relkind in STREAM_KINDS:
        select = sql.SQL("SELECT {} FROM {}{}").format(
            select_list, sql.Identifier(schema, name), _where(conditions)
        )
        task = CopyTask(0, label, _copy(select).as_string(conn))
        return ExtractPlan(spec, columns, [task], [label], 0)
    if relkind not in (*RANGED_KINDS, "p"):
        raise ExtractError(f"{spec.relation}: relation kind {relkind!r} cannot be extracted")

    block_size = int(conn.execute("SELECT current_setting('block_size')::int").fetchone()[0])  # type: ignore[index]
    ranged = conn.info.server_version >= MIN_TID_RANGE_VERSION
    tasks: list[CopyTask] = []
    relations: list[str] = []
    total_pages = 0
    for member_schema, member, kind, pages in storage_members(conn, oid):
        member_label = f"{member_schema}.{member}"
        relations.append(member_label)
        table = sql.SQL("ONLY {}").format(sql.Identifier(member_schema, member))
        if kind not in RANGED_KINDS or not ranged:
            select = sql.SQL("SELECT {} FROM {}{}").format(select_list, table, _where(conditions))
            tasks.append(CopyTask(len(tasks), member_label, _copy(select).as_string(conn)))
            continue
        total_pages += pages
        ranges = page_ranges(pages, range_pages(pages, block_size, range_bytes, min_ranges))
        for first, stop in ranges:
            tid: list[sql.Composable] = []
            if first > 0:
                tid.append(sql.SQL("ctid >= {}").format(_tid(first)))
            if stop is not None:
                tid.append(sql.SQL("ctid < {}").format(_tid(stop)))
            select = sql.SQL("SELECT {} FROM {}{}").format(select_list, table, _where([*tid, *conditions]))
            where = f"pages [{first}, {'end' if stop is None else stop})" if len(ranges) > 1 else "all pages"
            source = f"{member_label} {where}"
            if label != member_label:
                source = f"{label} (partition {source})"
            tasks.append(CopyTask(len(tasks), source, _copy(select).as_string(conn)))
    return ExtractPlan(spec, columns, tasks, relations, total_pages)
