"""Every type the decoder supports reaches the Parquet files with the decoder's exact values.

The decoder's own oracle test holds it to PostgreSQL's renderings; here the files an extraction writes
(tiny row groups and files, so values cross both) must read back, in pyarrow, as the decoder's table
with intervals stored as their three parts, and DuckDB must read every column of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.extract import TableSpec
from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS, extract_table_to_parquet
from parquetry.pg.cluster import PostgresCluster
from parquetry.pgcopy.decode import decode_copy_binary
from parquetry.pgcopy.describe import describe_relation
from parquetry.storable import INTERVAL_PARTS, storable, storable_schema
from parquetry.storage import Storage
from parquetry.testing.arrow_compare import assert_same_table
from parquetry.testing.every_type import every_type_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def every_type_dsn(pg_cluster: PostgresCluster) -> Iterator[str]:
    with every_type_database(pg_cluster, "extract_every_type") as dsn:
        yield dsn


def test_extracted_files_hold_the_decoders_values_for_every_type(every_type_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(every_type_dsn) as conn:
        columns = describe_relation(conn, "every_type")
        with conn.cursor() as cur, cur.copy("COPY every_type TO STDOUT (FORMAT binary)") as copy:
            decoded = decode_copy_binary(b"".join(bytes(block) for block in copy), columns)
    storage = Storage(str(tmp_path))
    tiny = dataclasses.replace(EXTRACT_PARQUET_OPTIONS, row_group_rows=3, target_file_rows=7)

    result = extract_table_to_parquet(
        every_type_dsn, TableSpec(name="every_type", relation="every_type"), storage, parquet_options=tiny
    )

    stored = storable_schema(decoded.schema)
    assert result.schema == stored
    assert stored.field("c_interval").type == INTERVAL_PARTS
    assert stored.field("c_interval").metadata[b"pg_type"] == b"interval"
    paths = [f.path for f in result.files]
    back = pa.concat_tables([pq.read_table(p) for p in paths])
    assert [(f.name, f.metadata) for f in back.schema] == [(f.name, f.metadata) for f in stored]
    # Lists come back with Parquet's item name ("element"); the cast renames nothing else.
    assert_same_table(back.cast(stored), storable(decoded, stored))
    names = ", ".join(f'"{f.name}"' for f in stored)
    assert len(duckdb.sql(f"SELECT {names} FROM read_parquet({paths})").fetchall()) == decoded.num_rows
    spans = duckdb.sql(
        f"SELECT c_interval.months, c_interval.days, c_interval.nanoseconds FROM read_parquet({paths})"
        " WHERE c_interval IS NOT NULL"
    ).fetchall()
    assert spans == [tuple(v) for v in decoded.column("c_interval").to_pylist() if v is not None]
