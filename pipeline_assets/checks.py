"""Generic asset checks for any Parquet-producing asset: counts, schema stability, readability.

Each factory returns an ``AssetChecksDefinition`` to put in ``dg.Definitions(asset_checks=[...])``.
They rely on the standard metadata from ``pipeline_assets.metadata``: the materialization says where
its Parquet lives (``parquetry/location``), how many rows it wrote (``dagster/row_count``) and its Arrow
schema (``parquetry/arrow_schema``). A check never trusts the asset's own numbers alone: row counts are
re-read from the Parquet footers, and readability is tested with an engine other than the writer
(DuckDB).

Partitioned assets: pass the asset's ``partitions_def``; the check then looks at the materialization
of each partition the run covered.
"""

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline_assets import metadata as md

__all__ = [
    "duckdb_readable_check",
    "latest_materialization",
    "list_parquet_files",
    "parquet_row_count",
    "row_count_matches_source_check",
    "schema_diff",
    "schema_unchanged_check",
    "standard_checks",
]

AssetKeyLike = dg.AssetKey | str | Sequence[str]
# (context, partition_key or None) -> number of rows the source holds for that partition.
SourceCount = Callable[[dg.AssetCheckExecutionContext, str | None], int]
# (context, partition_key or None) -> the Parquet files to inspect.
FileLocator = Callable[[dg.AssetCheckExecutionContext, str | None], Sequence[str]]


# -- event log helpers -------------------------------------------------------------------------


def latest_materialization(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partition_key: str | None = None,
    before_storage_id: int | None = None,
) -> Any | None:
    """The newest materialization record (``EventLogRecord``), optionally for one partition or older
    than ``before_storage_id``; None when there is none."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=asset_key,
            asset_partitions=[partition_key] if partition_key is not None else None,
            before_storage_id=before_storage_id,
        ),
        limit=1,
    ).records
    return records[0] if records else None


def _metadata_of(record: Any) -> dict[str, Any]:
    mat = record.asset_materialization
    return {k: getattr(v, "value", v) for k, v in (mat.metadata if mat is not None else {}).items()}


def _partition_keys(context: dg.AssetCheckExecutionContext) -> list[str | None]:
    """The partitions the current run covers, or ``[None]`` for an unpartitioned check."""
    try:
        keys = list(context.partition_keys)
    except Exception:  # unpartitioned run: Dagster raises rather than returning []
        return [None]
    return list(keys) or [None]


# -- file helpers --------------------------------------------------------------------------------


def list_parquet_files(location: str) -> list[str]:
    """Every ``*.parquet`` file under ``location`` (a file, a local directory or an fsspec URL),
    sorted; temporary ``.tmp-`` files are not part of a dataset and are left out."""
    if "://" in location and not location.startswith("file://"):
        import fsspec

        fs, root = fsspec.core.url_to_fs(location)
        protocol = location.split("://", 1)[0]
        found = [root] if fs.isfile(root) else fs.find(root)
        return sorted(
            f"{protocol}://{p}"
            for p in found
            if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith(".tmp-")
        )
    path = Path(location.removeprefix("file://"))
    if path.is_file():
        return [str(path)]
    return sorted(str(p) for p in path.rglob("*.parquet") if not p.name.startswith(".tmp-"))


def parquet_row_count(files: Sequence[str]) -> int:
    """Rows in the given Parquet files, from their footers only (no data pages are read)."""
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        if "://" in f and not f.startswith("file://"):
            import fsspec

            with fsspec.open(f, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        else:
            total += pq.ParquetFile(f.removeprefix("file://")).metadata.num_rows
    return total


def _files_from_metadata(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partition: str | None
):
    record = latest_materialization(context.instance, asset_key, partition)
    if record is None:
        raise LookupError(f"{asset_key.to_user_string()} has no materialization for partition {partition}")
    location = _metadata_of(record).get(md.LOCATION)
    if not location:
        raise LookupError(
            f"the materialization of {asset_key.to_user_string()} carries no {md.LOCATION!r} metadata"
        )
    return list_parquet_files(str(location))


# -- row count -------------------------------------------------------------------------------------


def row_count_matches_source_check(
    asset_key: AssetKeyLike,
    source_count: SourceCount,
    *,
    name: str = "row_count_matches_source",
    files: FileLocator | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    required_resource_keys: set[str] | None = None,
    blocking: bool = True,
) -> dg.AssetChecksDefinition:
    """Rows in the Parquet (read from the footers) equal ``source_count`` for each partition.

    ``source_count`` is called with the check context (its ``resources`` hold
    ``required_resource_keys``) and the partition key, or None when unpartitioned.
    """
    key = dg.AssetKey.from_coercible(asset_key)
    locate = files or (lambda ctx, part: _files_from_metadata(ctx, key, part))

    @dg.asset_check(
        asset=key,
        name=name,
        blocking=blocking,
        partitions_def=partitions_def,
        required_resource_keys=required_resource_keys,
        description="Rows in the Parquet files equal the rows in the source.",
    )
    def _check(context) -> dg.AssetCheckResult:
        per_partition: dict[str, dict[str, int]] = {}
        mismatched: list[str] = []
        for part in _partition_keys(context):
            paths = locate(context, part)
            parquet_rows = parquet_row_count(paths)
            source_rows = int(source_count(context, part))
            label = part or "all"
            per_partition[label] = {"parquet": parquet_rows, "source": source_rows, "files": len(paths)}
            if parquet_rows != source_rows:
                mismatched.append(label)
        parquet_total = sum(p["parquet"] for p in per_partition.values())
        source_total = sum(p["source"] for p in per_partition.values())
        return dg.AssetCheckResult(
            passed=not mismatched,
            description=(
                f"{parquet_total} rows in Parquet, {source_total} in the source"
                + (f"; mismatched partitions: {', '.join(mismatched)}" if mismatched else "")
            ),
            metadata={
                "parquet_rows": parquet_total,
                "source_rows": source_total,
                "by_partition": dg.MetadataValue.json(per_partition),
            },
        )

    return _check


# -- schema ----------------------------------------------------------------------------------------


def _shape(field: dict[str, Any]) -> tuple[str, bool]:
    return field["type"], field["nullable"]


def schema_diff(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Columns added, removed, changed (type or nullability) or moved between two schema field lists."""
    before = {f["name"]: f for f in old}
    after = {f["name"]: f for f in new}
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    changed = [
        f"{n}: {before[n]['type']}{'' if before[n]['nullable'] else ' not null'} -> "
        f"{after[n]['type']}{'' if after[n]['nullable'] else ' not null'}"
        for n in after
        if n in before and _shape(before[n]) != _shape(after[n])
    ]
    common_old = [n for n in before if n in after]
    common_new = [n for n in after if n in before]
    moved = [] if common_old == common_new else [f"order: {common_old} -> {common_new}"]
    return {"added": added, "removed": removed, "changed": changed, "moved": moved}


def schema_unchanged_check(
    asset_key: AssetKeyLike,
    *,
    name: str = "schema_unchanged",
    partitions_def: dg.PartitionsDefinition | None = None,
    blocking: bool = False,
) -> dg.AssetChecksDefinition:
    """The schema equals the previous materialization's, unless the new one declares the change.

    The baseline is the previous materialization whatever its checks said: its files were published.

    A declared evolution is the ``parquetry/schema_evolution`` metadata on the new materialization
    (``standard_metadata(schema_evolution="...")``): the check then passes and records the difference.
    """
    key = dg.AssetKey.from_coercible(asset_key)

    @dg.asset_check(
        asset=key,
        name=name,
        blocking=blocking,
        partitions_def=partitions_def,
        description="The Arrow schema is unchanged since the previous materialization, or the change "
        "is declared.",
    )
    def _check(context) -> dg.AssetCheckResult:
        results = []
        for part in _partition_keys(context):
            current = latest_materialization(context.instance, key, part)
            if current is None:
                return dg.AssetCheckResult(
                    passed=False, description=f"no materialization found for partition {part}"
                )
            current_md = _metadata_of(current)
            new = current_md.get(md.ARROW_SCHEMA)
            if new is None:
                return dg.AssetCheckResult(
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=f"the materialization carries no {md.ARROW_SCHEMA!r} metadata to compare",
                )
            previous = latest_materialization(
                context.instance, key, None, before_storage_id=current.storage_id
            )
            while previous is not None and md.ARROW_SCHEMA not in _metadata_of(previous):
                previous = latest_materialization(
                    context.instance, key, None, before_storage_id=previous.storage_id
                )
            if previous is None:
                results.append((part, None, current_md.get(md.SCHEMA_EVOLUTION)))
                continue
            diff = schema_diff(_metadata_of(previous)[md.ARROW_SCHEMA], new)
            results.append((part, diff, current_md.get(md.SCHEMA_EVOLUTION)))

        undeclared = [
            (part, diff) for part, diff, declared in results if diff and any(diff.values()) and not declared
        ]
        changes = {str(part or "all"): diff for part, diff, _ in results if diff and any(diff.values())}
        if undeclared:
            part, diff = undeclared[0]
            return dg.AssetCheckResult(
                passed=False,
                description=f"undeclared schema change (partition {part or 'all'}): "
                + "; ".join(f"{k}: {', '.join(v)}" for k, v in diff.items() if v),
                metadata={"changes": dg.MetadataValue.json(changes)},
            )
        if changes:
            declared = next(d for _, diff, d in results if diff and any(diff.values()))
            return dg.AssetCheckResult(
                passed=True,
                description=f"declared schema evolution: {declared}",
                metadata={"changes": dg.MetadataValue.json(changes)},
            )
        first = all(diff is None for _, diff, _ in results)
        return dg.AssetCheckResult(
            passed=True,
            description="first materialization with a schema" if first else "schema unchanged",
        )

    return _check


# -- readability -------------------------------------------------------------------------------


def duckdb_count(files: Sequence[str]) -> int:
    """``SELECT count(*) FROM read_parquet([...])`` in a fresh in-memory DuckDB."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        if any(f.startswith(("s3://", "gs://", "gcs://", "http://", "https://", "az://")) for f in files):
            with contextlib.suppress(duckdb.Error):
                con.execute("LOAD httpfs")
        row = con.execute("SELECT count(*) FROM read_parquet($files)", {"files": list(files)}).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def duckdb_readable_check(
    asset_key: AssetKeyLike,
    *,
    name: str = "readable_by_duckdb",
    files: FileLocator | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    required_resource_keys: set[str] | None = None,
    blocking: bool = True,
) -> dg.AssetChecksDefinition:
    """DuckDB reads every file and counts the rows the materialization reported (``dagster/row_count``).

    A run over a partition range may report one total for the whole range (the same metadata on every
    partition's event): reported counts are therefore summed once per run, and compared with the rows
    DuckDB reads over all the partitions the check covers.
    """
    key = dg.AssetKey.from_coercible(asset_key)
    locate = files or (lambda ctx, part: _files_from_metadata(ctx, key, part))

    @dg.asset_check(
        asset=key,
        name=name,
        blocking=blocking,
        partitions_def=partitions_def,
        required_resource_keys=required_resource_keys,
        description="DuckDB reads the Parquet files and counts the rows the materialization reported.",
    )
    def _check(context) -> dg.AssetCheckResult:
        counted = n_files = 0
        reported_by_run: dict[str, int] = {}
        for part in _partition_keys(context):
            paths = locate(context, part)
            if not paths:
                return dg.AssetCheckResult(
                    passed=False, description=f"no Parquet files found for partition {part or 'all'}"
                )
            try:
                rows = duckdb_count(paths)
            except Exception as exc:  # DuckDB's own errors name the unreadable file
                return dg.AssetCheckResult(
                    passed=False, description=f"DuckDB cannot read the Parquet: {type(exc).__name__}: {exc}"
                )
            n_files += len(paths)
            counted += rows
            record = latest_materialization(context.instance, key, part)
            expected = _metadata_of(record).get(md.ROW_COUNT) if record is not None else None
            if expected is not None:
                reported_by_run[record.run_id] = int(expected)
        reported = sum(reported_by_run.values())
        passed = not reported_by_run or reported == counted
        return dg.AssetCheckResult(
            passed=passed,
            description=f"DuckDB read {counted} rows in {n_files} files"
            + ("" if passed else f", but the materialization reported {reported}"),
            metadata={"duckdb_rows": counted, "files": n_files, "reported_rows": reported},
        )

    return _check


def standard_checks(
    asset_key: AssetKeyLike,
    *,
    source_count: SourceCount | None = None,
    files: FileLocator | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    required_resource_keys: set[str] | None = None,
) -> list[dg.AssetChecksDefinition]:
    """The schema and DuckDB checks, plus the source row count when ``source_count`` is given.

    ``files`` locates a partition's Parquet (default: below the materialization's ``parquetry/location``);
    ``required_resource_keys`` are the resources ``source_count`` and ``files`` use.
    """
    checks = [
        schema_unchanged_check(asset_key, partitions_def=partitions_def),
        duckdb_readable_check(
            asset_key,
            files=files,
            partitions_def=partitions_def,
            required_resource_keys=required_resource_keys,
        ),
    ]
    if source_count is not None:
        checks.append(
            row_count_matches_source_check(
                asset_key,
                source_count,
                files=files,
                partitions_def=partitions_def,
                required_resource_keys=required_resource_keys,
            )
        )
    return checks
