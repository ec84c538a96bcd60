"""Bulk data: deterministic generators, the COPY loader, and the sample database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from parquetry.pg.cluster import PostgresCluster
from parquetry.sample_db import ORDERS_END, ORDERS_START, load_sample_database
from parquetry.testing import bulk


def _orders_like(n: int, seed: int) -> pa.Table:
    def rng(column: str) -> np.random.Generator:
        return bulk.rng_for(seed, "t", column)

    return pa.table(
        {
            "id": bulk.sequence(n),
            "qty": bulk.integers(rng("qty"), n, -5, 5, dtype="int32"),
            "price": bulk.with_nulls(
                rng("price_null"), bulk.decimals(rng("price"), n, -100, 100, 10, 2), 0.2
            ),
            "label": bulk.with_nulls(rng("label_null"), bulk.person_names(rng("label"), n), 0.1),
            "state": bulk.choices(rng("state"), n, ["new", "done"]),
            "at": bulk.timestamps(rng("at"), n, dt.datetime(1990, 1, 1), dt.datetime(2030, 1, 1)),
            "ref": bulk.uuids(rng("ref"), n),
        }
    )


def test_generators_are_deterministic_per_seed_and_column() -> None:
    assert _orders_like(500, 7).equals(_orders_like(500, 7))
    assert not _orders_like(500, 7).equals(_orders_like(500, 8))
    a = bulk.integers(bulk.rng_for(1, "t", "a"), 100, 0, 10**9)
    b = bulk.integers(bulk.rng_for(1, "t", "b"), 100, 0, 10**9)
    assert not a.equals(b)


def test_decimal_from_units_is_exact_for_negative_and_large_values() -> None:
    units = np.array([-1, 0, 123456789012345678, -(2**63)], dtype=np.int64)
    got = bulk.decimal_from_units(units, 38, 4).to_pylist()
    assert got == [
        Decimal("-0.0001"),
        Decimal("0.0000"),
        Decimal("12345678901234.5678"),
        Decimal(-(2**63)) / 10**4,
    ]


def test_generated_values_respect_their_ranges() -> None:
    rng = bulk.rng_for(3, "x")
    ts = bulk.timestamps(rng, 1000, dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2))
    assert pc.min(ts).as_py() >= dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert pc.max(ts).as_py() < dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
    nulls = bulk.with_nulls(rng, bulk.sequence(10_000), 0.25).null_count
    assert 2000 < nulls < 3000
    refs = bulk.uuids(rng, 1000)
    assert all(u.version == 4 for u in refs.to_pylist())


@pytest.mark.postgres
def test_load_table_takes_column_types_from_the_catalog_including_enums(pg_dsn: str) -> None:
    data = _orders_like(20_000, 1)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TYPE state AS ENUM ('new', 'done')")
        conn.execute("CREATE DOMAIN qty_t AS int4")
        conn.execute(
            "CREATE TABLE t (id int8, qty qty_t, price numeric(10,2), label text, state state,"
            " at timestamptz, ref uuid, extra text DEFAULT 'x')"
        )
        assert bulk.load_table(conn, "t", data, rows_per_block=3000) == 20_000
        conn.commit()
        row = conn.execute(
            "SELECT count(*), sum(qty), sum(price)::text, count(price), count(label),"
            " count(*) FILTER (WHERE state = 'done'), min(at), max(at), count(DISTINCT ref), min(extra)"
            " FROM t"
        ).fetchone()
    assert row == (
        20_000,
        pc.sum(data["qty"]).as_py(),
        str(pc.sum(data["price"]).as_py()),
        20_000 - data["price"].null_count,
        20_000 - data["label"].null_count,
        pc.sum(pc.equal(data["state"], "done").cast(pa.int64())).as_py(),
        pc.min(data["at"]).as_py(),
        pc.max(data["at"]).as_py(),
        20_000,
        "x",
    )


@pytest.mark.postgres
def test_create_and_load_derives_column_types_from_arrow(pg_dsn: str) -> None:
    data = _orders_like(1000, 2).drop_columns(["state"])
    with psycopg.connect(pg_dsn) as conn:
        assert bulk.create_and_load(conn, ("public", "made"), data, primary_key=["id"]) == 1000
        types = dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = 'made'::regclass AND attnum > 0"
            ).fetchall()
        )
        pk = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'made'::regclass"
        ).fetchone()
        first = conn.execute("SELECT label, ref::text FROM made WHERE id = 1").fetchone()
    assert types == {
        "id": "bigint",
        "qty": "integer",
        "price": "numeric(10,2)",
        "label": "text",
        "at": "timestamp with time zone",
        "ref": "uuid",
    }
    assert pk == ("PRIMARY KEY (id)",)
    assert first == (data["label"][0].as_py(), str(data["ref"][0].as_py()))


def test_create_and_load_refuses_type_text_that_is_not_a_type() -> None:
    with pytest.raises(ValueError, match="does not look like a PostgreSQL type"):
        bulk.create_and_load(None, "x", pa.table({"a": [1]}), ["int8); DROP TABLE y; --"])  # type: ignore[arg-type]


@pytest.mark.postgres
def test_sample_database_is_consistent_and_deterministic(pg_cluster: PostgresCluster, pg_dsn: str) -> None:
    counts = load_sample_database(pg_dsn, scale=0.02, seed=5)
    assert counts == {"customers": 200, "orders": 2000, "order_items": counts["order_items"]}
    assert 2000 <= counts["order_items"] <= 10_000
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders),
                   (SELECT count(*) FROM order_items),
                   (SELECT min(ordered_at) FROM orders), (SELECT max(ordered_at) FROM orders),
                   (SELECT count(*) FROM orders o
                     WHERE total <> (SELECT sum(round(quantity * unit_price * (1 - discount::numeric), 2))
                                     FROM order_items i WHERE i.order_id = o.id)),
                   (SELECT count(*) FILTER (WHERE note IS NULL)::float / count(*) FROM orders),
                   (SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id
                     WHERE (o.status IN ('pending', 'paid', 'cancelled')) <> (i.shipped_on IS NULL)),
                   (SELECT count(*) FROM pg_constraint WHERE contype = 'f')
            """
        ).fetchone()
        digest = conn.execute("SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o").fetchone()
    n_c, n_o, n_i, first, last, mismatched_totals, null_notes, bad_shipping, fks = row
    assert (n_c, n_o, n_i) == (200, 2000, counts["order_items"])
    assert first >= ORDERS_START and last < ORDERS_END
    assert last - first > dt.timedelta(days=29)
    assert mismatched_totals == 0
    assert 0.05 < null_notes < 0.15
    assert bad_shipping == 0
    assert fks == 2
    # The same seed gives the same rows in another database.
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE sample_again")
    try:
        load_sample_database(pg_cluster.dsn("sample_again"), scale=0.02, seed=5)
        with psycopg.connect(pg_cluster.dsn("sample_again")) as conn:
            again = conn.execute("SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o").fetchone()
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
            admin.execute("DROP DATABASE sample_again WITH (FORCE)")
    assert again == digest


@pytest.mark.postgres
def test_sample_database_refuses_to_overwrite_unless_asked(pg_dsn: str) -> None:
    load_sample_database(pg_dsn, scale=0.001)
    with pytest.raises(psycopg.errors.DuplicateTable, match="already exists; pass replace=True"):
        load_sample_database(pg_dsn, scale=0.001)
    assert load_sample_database(pg_dsn, scale=0.002, replace=True)["orders"] == 200
