"""Intervals reach Parquet as their three exact parts, wherever they sit in a column's type."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.storable import INTERVAL_PARTS, UnstorableType, storable, storable_schema
from parquetry.storage import Storage, StorageError

MDN = pa.MonthDayNano
EDGES = [
    MDN([0, 0, 0]),
    MDN([14, 3, 4 * 3_600_000_000_000 + 5_000]),
    MDN([-1, 3, -1_000]),
    MDN([2**31 - 1, -(2**31), 2**63 - 1]),  # what PostgreSQL's +infinity decodes to, and its opposite
    MDN([-(2**31), 2**31 - 1, -(2**63)]),
]


def parts(value: pa.MonthDayNano | None) -> dict[str, int] | None:
    return None if value is None else {"months": value[0], "days": value[1], "nanoseconds": value[2]}


def test_an_interval_column_is_stored_as_months_days_nanoseconds_exactly(tmp_path: Path) -> None:
    values = [*EDGES, None, EDGES[1]]
    table = pa.table(
        {"id": range(len(values)), "span": pa.array(values, pa.month_day_nano_interval())},
        schema=pa.schema(
            [
                pa.field("id", pa.int64()),
                pa.field("span", pa.month_day_nano_interval(), metadata={"pg_type": "interval"}),
            ]
        ),
    )
    storage = Storage(str(tmp_path))

    written = storage.write_parquet(storage.path("t.parquet"), table)

    back = pq.read_table(written.path)
    assert back.schema.field("span").type == INTERVAL_PARTS
    assert back.schema.field("span").metadata == {b"pg_type": b"interval"}
    assert back.column("span").to_pylist() == [parts(v) for v in values]
    got = duckdb.sql(f"SELECT span.months, span.days, span.nanoseconds FROM '{written.path}' ORDER BY id")
    assert got.fetchall() == [(None, None, None) if v is None else tuple(v) for v in values]


def test_sliced_batches_and_nested_intervals_keep_their_values() -> None:
    spans = pa.array([*EDGES, None], pa.month_day_nano_interval())
    lists = pa.array(
        [[EDGES[1], None], None, [], [EDGES[2]], [EDGES[3], EDGES[4]], [None]], pa.list_(spans.type)
    )
    records = pa.StructArray.from_arrays([spans, pa.array(list("abcdef"))], names=["span", "label"])
    fixed = pa.FixedSizeListArray.from_arrays(pa.array([*EDGES, None] * 2, spans.type), 2)
    batch = pa.RecordBatch.from_arrays([spans, lists, records, fixed], names=["s", "l", "r", "f"]).slice(1, 4)
    schema = storable_schema(batch.schema)

    stored = storable(batch, schema)

    assert stored.schema == schema
    assert schema.field("l").type == pa.list_(INTERVAL_PARTS)
    assert stored.column(0).to_pylist() == [parts(v) for v in batch.column(0).to_pylist()]
    assert stored.column(1).to_pylist() == [
        None if v is None else [parts(x) for x in v] for v in batch.column(1).to_pylist()
    ]
    assert stored.column(2).to_pylist() == [
        None if v is None else {"span": parts(v["span"]), "label": v["label"]}
        for v in batch.column(2).to_pylist()
    ]
    assert stored.column(3).to_pylist() == [
        None if v is None else [parts(x) for x in v] for v in batch.column(3).to_pylist()
    ]
    table = pa.Table.from_batches([batch, batch])
    assert storable(table, schema).to_pylist() == pa.Table.from_batches([stored, stored]).to_pylist()


def test_tables_without_intervals_are_passed_through_untouched() -> None:
    table = pa.table({"a": [1, 2], "b": [[1.5], None]})
    schema = table.schema
    assert storable_schema(schema) is schema
    assert storable(table, schema) is table


def test_intervals_inside_a_map_are_refused_with_the_file_named(tmp_path: Path) -> None:
    kind = pa.map_(pa.string(), pa.month_day_nano_interval())
    with pytest.raises(UnstorableType, match="map"):
        storable_schema(pa.schema([("m", kind)]))
    storage = Storage(str(tmp_path))
    table = pa.table({"m": pa.array([[("k", EDGES[1])]], kind)})
    with pytest.raises(StorageError, match=r"m\.parquet: intervals inside map"):
        storage.write_parquet(storage.path("m.parquet"), table)


@pytest.mark.parametrize(
    "array",
    [
        pa.array([], pa.month_day_nano_interval()),
        pa.nulls(3, pa.month_day_nano_interval()),
        pa.array([[]], pa.list_(pa.month_day_nano_interval())),
        pa.nulls(2, pa.list_(pa.month_day_nano_interval())),
    ],
    ids=["empty", "all-null", "empty-list", "null-lists"],
)
def test_empty_and_all_null_interval_columns_store_as_such(array: pa.Array) -> None:
    batch = pa.record_batch([array], names=["x"])
    stored = storable(batch, storable_schema(batch.schema))
    assert stored.column(0).to_pylist() == array.to_pylist()
    assert stored.column(0).null_count == array.null_count
