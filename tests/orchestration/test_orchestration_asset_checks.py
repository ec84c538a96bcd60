"""Generic asset checks on real Parquet: source row counts, schema stability, DuckDB readability."""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_assets import checks
from pipeline_assets.metadata import standard_metadata


def parquet_asset(out: Path, table_for, evolution=None, partitions_def=None):
    """An asset writing ``table_for(partition_key)`` as two Parquet files under ``out/<partition>``."""

    @dg.asset(name="orders", partitions_def=partitions_def)
    def orders(context) -> dg.MaterializeResult:
        part = context.partition_key if context.has_partition_key else "all"
        table = table_for(part)
        folder = out / part
        folder.mkdir(parents=True, exist_ok=True)
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), folder / "part-0.parquet")
        pq.write_table(table.slice(half), folder / "part-1.parquet")
        return dg.MaterializeResult(
            metadata=standard_metadata(
                rows=table.num_rows, schema=table.schema, location=str(folder), schema_evolution=evolution
            )
        )

    return orders


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def ids(n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(n), pa.int64()), "note": pa.array([f"n{i}" for i in range(n)])})


def test_row_count_check_compares_parquet_footers_with_the_source(tmp_path: Path) -> None:
    asset = parquet_asset(tmp_path, lambda _: ids(10))
    for source_rows, passed in ((10, True), (11, False)):
        check = checks.row_count_matches_source_check("orders", lambda ctx, part, n=source_rows: n)
        result = dg.materialize([asset, check], raise_on_error=False)
        evaluation = check_results(result)["row_count_matches_source"]
        assert evaluation.passed is passed
        assert evaluation.metadata["parquet_rows"].value == 10
        assert evaluation.metadata["source_rows"].value == source_rows


def test_row_count_check_counts_per_partition(tmp_path: Path) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    asset = parquet_asset(tmp_path, lambda part: ids(int(part[-2:])), partitions_def=daily)
    seen: list[str | None] = []

    def source(ctx, part):
        seen.append(part)
        return int(part[-2:])

    check = checks.row_count_matches_source_check("orders", source, partitions_def=daily)
    result = dg.materialize([asset, check], partition_key="2024-01-03")
    evaluation = check_results(result)["row_count_matches_source"]
    assert evaluation.passed
    assert seen == ["2024-01-03"]
    assert evaluation.metadata["by_partition"].value == {
        "2024-01-03": {"parquet": 3, "source": 3, "files": 2}
    }


def test_schema_check_passes_unchanged_and_declared_changes_only(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    check = checks.schema_unchanged_check("orders")
    widened = lambda _: ids(4).append_column("qty", pa.array([1, 2, 3, 4], pa.int32()))  # noqa: E731

    def run(table_for, evolution=None) -> dg.AssetCheckEvaluation:
        asset = parquet_asset(tmp_path, table_for, evolution=evolution)
        result = dg.materialize([asset, check], instance=instance, raise_on_error=False)
        return check_results(result)["schema_unchanged"]

    first = run(lambda _: ids(4))
    assert first.passed and first.description == "first materialization with a schema"
    same = run(lambda _: ids(5))
    assert same.passed and same.description == "schema unchanged"
    declared = run(widened, evolution="qty column added for the new order form")
    assert declared.passed and "qty column added" in declared.description
    assert declared.metadata["changes"].value == {
        "all": {"added": ["qty"], "removed": [], "changed": [], "moved": []}
    }
    # The baseline is now the widened schema: narrowing it again without a declaration fails.
    narrowed = run(lambda _: ids(4))
    assert not narrowed.passed
    assert "removed: qty" in narrowed.description
    retyped = run(lambda _: ids(4).set_column(0, "id", pa.array(range(4), pa.int32())))
    assert not retyped.passed
    assert "changed: id: int64 -> int32" in retyped.description


def test_schema_diff_reports_removed_nullability_and_order() -> None:
    old = [
        {"name": "a", "type": "int64", "nullable": True},
        {"name": "b", "type": "string", "nullable": True},
    ]
    new = [
        {"name": "b", "type": "string", "nullable": False},
        {"name": "a", "type": "int64", "nullable": True},
    ]
    diff = checks.schema_diff(old, new)
    assert diff["changed"] == ["b: string -> string not null"]
    assert diff["moved"] == ["order: ['a', 'b'] -> ['b', 'a']"]
    assert checks.schema_diff(old, old[:1])["removed"] == ["b"]


def test_duckdb_check_reads_files_and_matches_reported_rows(tmp_path: Path) -> None:
    asset = parquet_asset(tmp_path, lambda _: ids(7))
    result = dg.materialize([asset, checks.duckdb_readable_check("orders")])
    evaluation = check_results(result)["readable_by_duckdb"]
    assert evaluation.passed
    assert evaluation.metadata["duckdb_rows"].value == 7
    assert evaluation.metadata["files"].value == 2


def test_duckdb_check_fails_on_a_corrupt_file(tmp_path: Path) -> None:
    asset = parquet_asset(tmp_path, lambda _: ids(7))

    def corrupt_locator(ctx, part):
        bad = tmp_path / "all" / "part-1.parquet"
        bad.write_bytes(bad.read_bytes()[:-20])  # cut the footer
        return checks.list_parquet_files(str(tmp_path / "all"))

    check = checks.duckdb_readable_check("orders", files=corrupt_locator)
    result = dg.materialize([asset, check], raise_on_error=False)
    evaluation = check_results(result)["readable_by_duckdb"]
    assert not evaluation.passed
    assert "DuckDB cannot read" in evaluation.description


def test_list_parquet_files_skips_temporaries(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    pq.write_table(ids(1), tmp_path / "x" / "a.parquet")
    (tmp_path / "x" / ".tmp-b.parquet").write_bytes(b"partial")
    (tmp_path / "x" / "notes.txt").write_text("-")
    assert checks.list_parquet_files(str(tmp_path)) == [str(tmp_path / "x" / "a.parquet")]
    assert checks.parquet_row_count(checks.list_parquet_files(str(tmp_path))) == 1


def test_standard_checks_bundle() -> None:
    made = checks.standard_checks("orders", source_count=lambda ctx, part: 0)
    names = sorted(spec.name for c in made for spec in c.check_specs)
    assert names == ["readable_by_duckdb", "row_count_matches_source", "schema_unchanged"]


def test_missing_location_metadata_is_reported_not_ignored(tmp_path: Path) -> None:
    @dg.asset(name="orders")
    def orders() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"dagster/row_count": 1})

    result = dg.materialize([orders, checks.duckdb_readable_check("orders")], raise_on_error=False)
    assert not result.success
    with pytest.raises(Exception, match="parquetry/location"):
        dg.materialize([orders, checks.duckdb_readable_check("orders")])
