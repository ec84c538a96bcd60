"""A small, realistic operational database for the demo, the tests and the benchmarks.

Three related tables, the shape Parquetry meets in practice: ``customers`` 1-n ``orders`` 1-n
``order_items``, with an enum, nullable columns, numerics of several scales, timestamps with time
zone, dates, UUIDs and free text. Everything is generated from a seed (same seed and scale, same
bytes), ``orders`` span the 30 days before a fixed date so partitioned extracts have a known range,
and order totals are the sum of their items so checks can reconcile the two.

Rows are generated vectorised and loaded with binary COPY; keys and foreign keys are added after
the load, which is several times faster than loading into indexed tables.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from parquetry.storable import MONTH_DAY_NANO
from parquetry.testing import bulk

__all__ = ["ORDERS_END", "ORDERS_START", "ORDER_STATUSES", "TABLES", "load_sample_database"]

#: Orders fall in [ORDERS_START, ORDERS_END): the 30 days before a fixed instant.
ORDERS_END = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
ORDERS_START = ORDERS_END - dt.timedelta(days=30)
ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
TABLES = ("customers", "orders", "order_items")

_COUNTRIES = ("US", "DE", "FR", "GB", "JP", "BR", "IN", "NG", "CA", "ES", "IT", "KR")
_COUNTRY_WEIGHTS = (0.3, 0.12, 0.09, 0.1, 0.07, 0.06, 0.08, 0.03, 0.05, 0.04, 0.04, 0.02)
_STATUS_WEIGHTS = (0.05, 0.1, 0.15, 0.6, 0.07, 0.03)
_NOT_SHIPPED = ("pending", "paid", "cancelled")

_TYPE_DDL = "CREATE TYPE {status} AS ENUM ({labels})"
_TABLE_DDL = {
    "customers": """
        CREATE TABLE {customers} (
            id int8 NOT NULL,
            name text NOT NULL,
            email text,
            country char(2) NOT NULL,
            created_at timestamptz NOT NULL,
            balance numeric(12,2) NOT NULL,
            active bool NOT NULL
        )""",
    "orders": """
        CREATE TABLE {orders} (
            id int8 NOT NULL,
            customer_id int8 NOT NULL,
            ordered_at timestamptz NOT NULL,
            status {status} NOT NULL,
            total numeric(14,2) NOT NULL,
            note text,
            external_id uuid NOT NULL,
            promised_within interval NOT NULL
        )""",
    "order_items": """
        CREATE TABLE {order_items} (
            order_id int8 NOT NULL,
            line_no int2 NOT NULL,
            sku text NOT NULL,
            quantity int4 NOT NULL,
            unit_price numeric(10,2) NOT NULL,
            discount float8 NOT NULL,
            shipped_on date
        )""",
}
# Keys and indexes are built after the load (far faster than maintaining them row by row).
_TABLE_INDEXES = {
    "customers": ["ALTER TABLE {customers} ADD PRIMARY KEY (id)"],
    "orders": [
        "ALTER TABLE {orders} ADD PRIMARY KEY (id)",
        "ALTER TABLE {orders} ADD CONSTRAINT orders_external_id_key UNIQUE (external_id)",
        "CREATE INDEX orders_ordered_at_idx ON {orders} (ordered_at)",
    ],
    "order_items": ["ALTER TABLE {order_items} ADD PRIMARY KEY (order_id, line_no)"],
}
_FOREIGN_KEYS = [
    "ALTER TABLE {orders} ADD CONSTRAINT orders_customer_fk"
    " FOREIGN KEY (customer_id) REFERENCES {customers} (id)",
    "ALTER TABLE {order_items} ADD CONSTRAINT order_items_order_fk"
    " FOREIGN KEY (order_id) REFERENCES {orders} (id)",
]


def _names(schema: str) -> dict[str, sql.Composable]:
    names: dict[str, sql.Composable] = {t: sql.Identifier(schema, t) for t in TABLES}
    names["status"] = sql.Identifier(schema, "order_status")
    names["labels"] = sql.SQL(", ").join(sql.Literal(s) for s in ORDER_STATUSES)
    return names


def _customers(n: int, seed: int) -> pa.Table:
    def rng(column: str) -> np.random.Generator:
        return bulk.rng_for(seed, "customers", column)

    ids = bulk.sequence(n)
    names = bulk.person_names(rng("name"), n)
    return pa.table(
        {
            "id": ids,
            "name": names,
            "email": bulk.with_nulls(rng("email_null"), bulk.emails(rng("email"), names, ids), 0.15),
            "country": bulk.choices(rng("country"), n, _COUNTRIES, _COUNTRY_WEIGHTS),
            "created_at": bulk.timestamps(rng("created_at"), n, dt.datetime(2019, 1, 1), ORDERS_START),
            "balance": bulk.decimals(rng("balance"), n, -500, 5000, 12, 2),
            "active": bulk.booleans(rng("active"), n, 0.85),
        }
    )


def _delivery_promises(rng: np.random.Generator, n: int) -> pa.Array:
    """How long delivery was promised to take: 1 to 14 days and a few hours, as PostgreSQL intervals."""
    parts = np.zeros(n, dtype=MONTH_DAY_NANO)
    parts["days"] = rng.integers(1, 14, n, endpoint=True)
    parts["nanoseconds"] = rng.choice(np.array([0, 4, 12]), n) * 3_600_000_000_000
    return pa.Array.from_buffers(pa.month_day_nano_interval(), n, [None, pa.py_buffer(parts.tobytes())])


def _orders_and_items(n_orders: int, n_customers: int, seed: int) -> tuple[pa.Table, pa.Table]:
    def rng(table: str, column: str) -> np.random.Generator:
        return bulk.rng_for(seed, table, column)

    # Orders are numbered in time order, as a serial key would be; a few customers order a lot.
    ordered_at = np.sort(
        bulk.timestamps(rng("orders", "ordered_at"), n_orders, ORDERS_START, ORDERS_END)
        .cast(pa.int64())
        .to_numpy()
    )
    skew = rng("orders", "customer_id").random(n_orders) ** 2
    customer_id = np.minimum((skew * n_customers).astype(np.int64) + 1, n_customers)
    status = bulk.choices(rng("orders", "status"), n_orders, ORDER_STATUSES, _STATUS_WEIGHTS)

    per_order = rng("order_items", "count").integers(1, 5, n_orders, endpoint=True)
    n_items = int(per_order.sum())
    order_index = np.repeat(np.arange(n_orders), per_order)
    starts = np.cumsum(per_order) - per_order
    line_no = (np.arange(n_items) - np.repeat(starts, per_order) + 1).astype(np.int16)
    quantity = np.minimum(rng("order_items", "quantity").geometric(0.45, n_items), 50).astype(np.int32)
    price_cents = rng("order_items", "unit_price").integers(50, 50_000, n_items, endpoint=True)
    discount_pct = rng("order_items", "discount").choice(
        np.array([0, 5, 10, 15, 20]), n_items, p=[0.7, 0.1, 0.1, 0.05, 0.05]
    )
    discount = discount_pct / 100.0
    # Exact cents, rounded half up as PostgreSQL's round(numeric, 2) does for positive amounts.
    line_cents = (price_cents * quantity * (100 - discount_pct) + 50) // 100
    total_cents = np.bincount(order_index, weights=line_cents, minlength=n_orders).astype(np.int64)

    item_status = pc.take(status, pa.array(order_index))
    not_shipped = pc.is_in(item_status, value_set=pa.array(_NOT_SHIPPED))
    ship_days = ordered_at[order_index] // 86_400_000_000 + rng("order_items", "shipped_on").integers(
        0, 3, n_items, endpoint=True
    )
    shipped_on = pa.array(ship_days.astype(np.int32), type=pa.int32()).cast(pa.date32())
    shipped_on = pc.if_else(not_shipped, pa.scalar(None, pa.date32()), shipped_on)

    order_ids = np.arange(1, n_orders + 1, dtype=np.int64)
    orders = pa.table(
        {
            "id": pa.array(order_ids),
            "customer_id": pa.array(customer_id),
            "ordered_at": pa.array(ordered_at, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "status": status,
            "total": bulk.decimal_from_units(total_cents, 14, 2),
            "note": bulk.with_nulls(
                rng("orders", "note_null"), bulk.sentences(rng("orders", "note"), n_orders), 0.1
            ),
            "external_id": bulk.uuids(rng("orders", "external_id"), n_orders),
            "promised_within": _delivery_promises(rng("orders", "promised_within"), n_orders),
        }
    )
    items = pa.table(
        {
            "order_id": pa.array(order_ids[order_index]),
            "line_no": pa.array(line_no),
            "sku": bulk.skus(rng("order_items", "sku"), n_items),
            "quantity": pa.array(quantity),
            "unit_price": bulk.decimal_from_units(price_cents, 10, 2),
            "discount": pa.array(discount),
            "shipped_on": shipped_on,
        }
    )
    return orders, items


def load_sample_database(
    dsn: str, scale: float = 1.0, seed: int = 0, *, schema: str = "public", replace: bool = False
) -> dict[str, int]:
    """Create and fill ``customers``, ``orders`` and ``order_items`` in ``schema``; rows per table.

    ``scale=1.0`` is about 10k customers, 100k orders and 300k order items. ``replace=True`` drops
    existing tables and the ``order_status`` type first; otherwise existing ones are an error.

    The three tables load in parallel, one connection each; every table is created, loaded
    (``COPY ... FREEZE``, which needs the table to be new in that transaction), indexed and analysed
    in one transaction. Foreign keys are added once all three are in.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    n_customers = max(1, round(10_000 * scale))
    n_orders = max(1, round(100_000 * scale))
    names = _names(schema)
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        if replace:
            for table in reversed(TABLES):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(names[table]))
            conn.execute(sql.SQL("DROP TYPE IF EXISTS {}").format(names["status"]))
        for table in TABLES:
            if conn.execute("SELECT to_regclass(%s)", (names[table].as_string(conn),)).fetchone()[0]:
                raise psycopg.errors.DuplicateTable(
                    f"{names[table].as_string(conn)} already exists; pass replace=True to rebuild it"
                )
        conn.execute(sql.SQL(_TYPE_DDL).format(**names))
        conn.commit()

    data = {"customers": _customers(n_customers, seed)}
    data["orders"], data["order_items"] = _orders_and_items(n_orders, n_customers, seed)

    def load(table: str) -> int:
        with psycopg.connect(dsn) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(sql.SQL(_TABLE_DDL[table]).format(**names))
            rows = bulk.load_table(conn, names[table], data.pop(table), freeze=True)
            for statement in _TABLE_INDEXES[table]:
                conn.execute(sql.SQL(statement).format(**names))
            conn.execute(sql.SQL("ANALYZE {}").format(names[table]))
            conn.commit()
        return rows

    with ThreadPoolExecutor(max_workers=len(TABLES), thread_name_prefix="sample-db") as pool:
        futures = {table: pool.submit(load, table) for table in TABLES}
        counts = {table: future.result() for table, future in futures.items()}
    with psycopg.connect(dsn) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        for statement in _FOREIGN_KEYS:
            conn.execute(sql.SQL(statement).format(**names))
        conn.commit()
    return counts
