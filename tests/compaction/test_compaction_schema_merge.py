"""The explicit schema merge: what compaction accepts from files written at different times."""

from __future__ import annotations

import pyarrow as pa
import pytest

from parquetry.compact.schema_merge import SchemaMergeError, conform, merge_schemas


def test_columns_missing_from_some_files_become_nullable_and_read_as_nulls() -> None:
    old = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    new = pa.schema(
        [pa.field("id", pa.int64(), nullable=False), pa.field("note", pa.string(), nullable=False)]
    )

    merged = merge_schemas([("old.parquet", old), ("new.parquet", new)])

    assert merged == pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("note", pa.string())])
    rows = conform(pa.table({"id": [1, 2]}, schema=old), merged)
    assert rows.to_pylist() == [{"id": 1, "note": None}, {"id": 2, "note": None}]


def test_a_null_typed_column_takes_the_other_files_type() -> None:
    merged = merge_schemas([("a", pa.schema([("x", pa.null())])), ("b", pa.schema([("x", pa.int32())]))])
    assert merged.field("x").type == pa.int32()
    assert conform(pa.table({"x": pa.nulls(2)}), merged).column("x").type == pa.int32()


def test_incompatible_types_name_the_column_and_both_files() -> None:
    with pytest.raises(SchemaMergeError, match=r"'x' is int32 in a.parquet but string in b.parquet"):
        merge_schemas(
            [("a.parquet", pa.schema([("x", pa.int32())])), ("b.parquet", pa.schema([("x", pa.string())]))]
        )


def test_a_column_outside_the_merged_schema_is_refused_never_dropped() -> None:
    target = pa.schema([("id", pa.int64())])
    with pytest.raises(SchemaMergeError, match=r"\['extra'\] are not in the merged schema"):
        conform(pa.table({"id": [1], "extra": ["kept?"]}), target)


def test_a_type_that_changed_since_planning_is_refused() -> None:
    with pytest.raises(SchemaMergeError, match="'id' is string, expected int64"):
        conform(pa.table({"id": ["1"]}), pa.schema([("id", pa.int64())]))


def test_runs_of_identical_schemas_merge_as_if_each_were_read() -> None:
    a = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("x", pa.string(), nullable=False)])
    b = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    files = [("1", a), ("2", a), ("3", b), ("4", b), ("5", a)]

    merged = merge_schemas(files)

    assert merged == pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("x", pa.string())])
    assert merge_schemas([("1", a), ("2", a)]) == a


def test_a_table_already_in_the_target_schema_keeps_its_rows_and_takes_the_targets_metadata() -> None:
    target = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("x", pa.string())])
    written = pa.schema(
        [target.field("id").with_metadata({"PARQUET:field_id": "1"}), target.field("x")], {"writer": "pandas"}
    )
    table = pa.table({"id": [1, 2], "x": ["a", None]}, schema=written)
    rows = conform(table, target)
    assert rows.schema.equals(target, check_metadata=True)
    assert rows.equals(table)
    assert conform(rows, target) is rows  # already the target, metadata and all: nothing rebuilt
