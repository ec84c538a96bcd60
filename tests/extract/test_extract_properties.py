"""Property: an extraction writes exactly the table's rows, in physical order, whatever the table's
columns, NULLs, dead tuples and TOASTed values, and whatever the workers, ranges, chunks and files.

Hypothesis draws a table (columns from a list of PostgreSQL types, each with a NULL rate), fills it on
the server, deletes and updates some rows (dead tuples and moved rows inside the page ranges), and
extracts it with drawn options. The oracle is one plain ``COPY`` of the same table decoded in one go
(the decoder is held to PostgreSQL's own output by the oracle test): the files must hold that table.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from parquetry.extract import TableSpec
from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS, extract_table_to_parquet
from parquetry.extract.pipeline import ExtractOptions
from parquetry.pgcopy.decode import decode_copy_binary
from parquetry.pgcopy.describe import describe_relation
from parquetry.storable import storable
from parquetry.storage import Storage
from parquetry.testing.arrow_compare import assert_same_table

pytestmark = pytest.mark.postgres

# (SQL type, value expression of the row number g)
COLUMN_KINDS = {
    "int2": ("int2", "(g % 30000 - 15000)::int2"),
    "int8": ("int8", "g::int8 * 7919 - 4000000"),
    "float8": ("float8", "CASE WHEN g % 97 = 0 THEN 'NaN'::float8 ELSE g / 7.0 END"),
    "numeric": ("numeric(14,3)", "(g * 1.001)::numeric(14,3)"),
    "numeric_free": ("numeric", "(g / 7.0)::numeric"),
    "wide_numeric": ("numeric(50,10)", "(g::numeric * 1e30 / 7)::numeric(50,10)"),
    "text": ("text", "repeat(md5(g::text), g % 4)"),
    "toasted": ("text", "CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 400) ELSE 'short' END"),
    "bytea": ("bytea", "decode(md5(g::text), 'hex')"),
    "bool": ("bool", "g % 3 = 0"),
    "date": ("date", "date '2000-01-01' + g"),
    "timestamptz": ("timestamptz", "timestamptz '2024-01-01 00:00:00+00' + g * interval '1.5 seconds'"),
    "interval": ("interval", "make_interval(months => g % 13 - 6, days => g % 40, secs => g * 0.25)"),
    "uuid": ("uuid", "md5(g::text)::uuid"),
    "int_array": ("int4[]", "ARRAY[g, NULL, -g]"),
    "interval_array": ("interval[]", "ARRAY[make_interval(days => g % 5, secs => -g), NULL]"),
    "jsonb": ("jsonb", "jsonb_build_object('g', g, 'half', g / 2.0)"),
}


@st.composite
def tables(draw: st.DrawFn) -> dict:
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMN_KINDS)), min_size=1, max_size=6))
    return {
        "kinds": kinds,
        "null_rates": [draw(st.sampled_from([0.0, 0.2, 1.0])) for _ in kinds],
        "rows": draw(st.integers(0, 3000)),
        "delete_every": draw(st.sampled_from([0, 3, 7])),
        "update_every": draw(st.sampled_from([0, 5, 11])),
        "workers": draw(st.integers(1, 3)),
        "range_bytes": draw(st.sampled_from([8 << 10, 64 << 10, 16 << 20])),
        "chunk_bytes": draw(st.sampled_from([16 << 10, 256 << 10, 32 << 20])),
        "batch_rows": draw(st.sampled_from([100, 65_536])),
        "row_group_rows": draw(st.sampled_from([77, 1000, 131_072])),
        "target_file_rows": draw(st.sampled_from([500, 8_000_000])),
    }


def fill(conn: psycopg.Connection, name: str, spec: dict) -> None:
    columns = [sql.SQL("id int8")]
    values = [sql.SQL("g")]
    for n, (kind, rate) in enumerate(zip(spec["kinds"], spec["null_rates"], strict=True)):
        sql_type, expr = COLUMN_KINDS[kind]
        columns.append(sql.SQL("{} {}").format(sql.Identifier(f"c{n}_{kind}"), sql.SQL(sql_type)))
        # NULLs from a hash of g and the column: the same rows on every run of an example
        null = sql.SQL("(hashint8(g * 31 + {}) & 1023) < {}").format(
            sql.Literal(n), sql.Literal(int(rate * 1024))
        )
        values.append(sql.SQL("CASE WHEN {} THEN NULL ELSE {} END").format(null, sql.SQL(expr)))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), sql.SQL(", ").join(columns)))
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT {} FROM generate_series(1, {}) AS g").format(
            sql.Identifier(name), sql.SQL(", ").join(values), sql.Literal(spec["rows"])
        )
    )
    if spec["delete_every"]:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE id % {} = 0").format(
                sql.Identifier(name), sql.Literal(spec["delete_every"])
            )
        )
    if spec["update_every"]:  # a new row version elsewhere in the heap, the old one dead
        conn.execute(
            sql.SQL("UPDATE {} SET id = -id WHERE id % {} = 1").format(
                sql.Identifier(name), sql.Literal(spec["update_every"])
            )
        )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=tables())
def test_extraction_writes_exactly_the_tables_rows_in_physical_order(
    pg_dsn: str, tmp_path: Path, spec: dict
) -> None:
    name = f"prop_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        fill(conn, name, spec)
        columns = describe_relation(conn, name)
        query = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.Identifier(name))
        with conn.cursor() as cur, cur.copy(query) as copy:
            expected = decode_copy_binary(b"".join(bytes(block) for block in copy), columns)
    storage = Storage(str(tmp_path / name))
    options = ExtractOptions(
        workers=spec["workers"],
        range_bytes=spec["range_bytes"],
        min_ranges=1,
        chunk_bytes=spec["chunk_bytes"],
        staging_budget_bytes=max(4 * spec["chunk_bytes"], 1 << 20),
        batch_rows=spec["batch_rows"],
        staging_dir=str(tmp_path / "staging"),
    )
    parquet = dataclasses.replace(
        EXTRACT_PARQUET_OPTIONS,
        row_group_rows=spec["row_group_rows"],
        target_file_rows=spec["target_file_rows"],
    )

    result = extract_table_to_parquet(
        pg_dsn, TableSpec(name="t", relation=name), storage, options=options, parquet_options=parquet
    )

    assert result.rows == expected.num_rows
    back = pa.concat_tables([pq.read_table(f.path) for f in result.files])
    stored = storable(expected, result.schema)
    assert_same_table(back.cast(result.schema), stored)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
