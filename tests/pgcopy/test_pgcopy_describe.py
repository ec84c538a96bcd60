"""Describing relations and queries from the catalog: dropped columns, domains, arrays, unknown types."""

from __future__ import annotations

import psycopg
import pytest

from parquetry.pgcopy.describe import describe_query, describe_relation
from parquetry.pgcopy.errors import UnsupportedTypeError
from parquetry.pgcopy.types import arrow_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def conn(pg_dsn: str):
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        c.execute('CREATE SCHEMA "Sales"')
        c.execute("CREATE DOMAIN money_amount AS numeric(14,4)")
        c.execute(
            'CREATE TABLE "Sales"."Order Lines" (id bigint, dropped_one int, amount money_amount,'
            " tags varchar(10)[][], note text)"
        )
        c.execute('ALTER TABLE "Sales"."Order Lines" DROP COLUMN dropped_one')
        c.execute("CREATE TABLE shops (id int, location point)")
        yield c


def test_relation_skips_dropped_columns_and_resolves_domains_and_arrays(conn) -> None:
    cols = describe_relation(conn, ("Sales", "Order Lines"))
    assert [c.name for c in cols] == ["id", "amount", "tags", "note"]
    amount = cols[1]
    assert amount.type_name == "money_amount"
    assert (amount.type.codec, amount.type.typmod) == ("numeric", (14 << 16 | 4) + 4)
    tags = cols[2]
    assert tags.type_name == "character varying(10)[]"
    assert (tags.type.kind, tags.type.ndims, tags.type.element.codec) == ("array", 2, "varchar")
    assert cols[0].relation == '"Sales"."Order Lines"'


def test_relation_name_string_follows_sql_quoting(conn) -> None:
    assert [c.name for c in describe_relation(conn, '"Sales"."Order Lines"')] == [
        "id",
        "amount",
        "tags",
        "note",
    ]
    with pytest.raises(LookupError, match="not valid SQL"):
        describe_relation(conn, "Sales.Order Lines")
    with pytest.raises(LookupError, match="does not exist"):
        describe_relation(conn, "sales.order_lines")


def test_relation_column_subset_keeps_the_requested_order(conn) -> None:
    cols = describe_relation(conn, ("Sales", "Order Lines"), ["note", "id"])
    assert [c.name for c in cols] == ["note", "id"]
    with pytest.raises(LookupError, match="dropped_one"):
        describe_relation(conn, ("Sales", "Order Lines"), ["dropped_one"])


def test_unsupported_column_type_names_table_column_and_type(conn) -> None:
    with pytest.raises(UnsupportedTypeError, match=r"'point' for column 'location' of shops"):
        describe_relation(conn, "shops")
    assert [c.name for c in describe_relation(conn, "shops", ["id"])] == ["id"]


def test_query_description_runs_nothing_and_names_expressions(conn) -> None:
    cols = describe_query(
        conn, 'SELECT id, amount, amount * 2 AS doubled, now() AS at FROM "Sales"."Order Lines"'
    )
    assert [(c.name, c.type_name) for c in cols] == [
        ("id", "bigint"),
        ("amount", "money_amount"),
        ("doubled", "numeric"),
        ("at", "timestamp with time zone"),
    ]
    with pytest.raises(UnsupportedTypeError, match="cast the expression"):
        describe_query(conn, "SELECT 'untyped' AS x, ROW(1, 2) AS r")


def test_query_description_inside_a_transaction_keeps_it_usable(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as c:
        c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cols = describe_query(c, "SELECT 1::int2 AS a, 'x'::text AS b")
        assert [c_.type.codec for c_ in cols] == ["int2", "text"]
        assert c.execute("SELECT 42").fetchone() == (42,)


def test_not_null_is_kept_for_table_columns_only(conn) -> None:
    conn.execute("CREATE TYPE pair AS (a int, b text)")
    conn.execute("CREATE TABLE strict (id bigint NOT NULL, p pair NOT NULL, note text)")
    conn.execute("CREATE TABLE parted (id int NOT NULL, day date) PARTITION BY RANGE (day)")
    conn.execute("CREATE VIEW strict_view AS SELECT id, note FROM strict")

    table = describe_relation(conn, "strict")
    assert [(c.name, c.not_null) for c in table] == [("id", True), ("p", True), ("note", False)]
    assert [f.nullable for f in arrow_schema(table)] == [False, False, True]
    # A composite value's own attributes may be NULL even where the column is NOT NULL.
    assert arrow_schema(table).field("p").type.field("a").nullable

    assert [c.not_null for c in describe_relation(conn, "parted")] == [True, False]
    assert [c.not_null for c in describe_relation(conn, "strict_view")] == [False, False]
    # An outer join can null any column of a query.
    query = "SELECT s.id FROM (VALUES (1)) v(x) LEFT JOIN strict s ON s.id = v.x"
    assert [c.not_null for c in describe_query(conn, query)] == [False]
