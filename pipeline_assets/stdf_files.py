"""STDF files -> Hive-partitioned Parquet: the landing sensor, the per-file asset, the failure report.

* ``stdf_tables`` (partitioned by ``stdf_files``, one dynamic partition per file content hash):
  parses one STDF file and publishes its tables under ``<root>/stdf/<table>/product=/stage=/lot=``,
  registering each table in the catalog as dataset ``stdf_<table>`` when a catalog is bound. A file
  that cannot be parsed fails its run (nothing published; the partial read is kept under
  ``<root>/stdf/_failed/<file_id>/``), other files go on.
* ``stdf_failures``: the files that could not be ingested, with their error and byte offset, plus
  the check ``no_failed_stdf_files``.
* ``stdf_landing_sensor`` (in ``sensors/landing.py``) feeds ``stdf_ingest_job``.

Resources (bound in definitions.py): ``storage`` (StorageResource) and ``catalog`` (CatalogResource,
or None to skip registration).
"""

from typing import Any

import dagster as dg

from sensors.landing import (
    INGEST_JOB_NAME,
    NAME_TAG,
    SOURCE_TAG,
    STDF_PARTITIONS,
    build_landing_sensor,
    landing_config,
    stdf_landing_sensor,
)

ENGINE = "parquetry-stdf (numba, CPU)"


def _registrar(catalog_resource: Any, storage: Any) -> Any:
    """The ingest ``register`` callback for the bound catalog resource (None: no registration)."""
    if catalog_resource is None:
        return None
    from parquetry.stdf.ingest import catalog_registrar

    getter = getattr(catalog_resource, "get_catalog", None)
    catalog = getter() if callable(getter) else catalog_resource
    catalog.migrate()  # idempotent and concurrent-safe; the first ingestion may precede any compaction
    return catalog_registrar(catalog, storage)


def _refuse_if_compacted(catalog_resource: Any, file_id: str, source: str) -> None:
    """A file whose rows a compaction merged cannot be ingested again without doubling them."""
    if catalog_resource is None:
        return
    from parquetry.stdf.ingest import merged_by_compaction

    getter = getattr(catalog_resource, "get_catalog", None)
    catalog = getter() if callable(getter) else catalog_resource
    catalog.migrate()
    if merged_by_compaction(catalog, file_id):
        raise dg.Failure(
            description=(
                f"{source}: this content ({file_id[:16]}...) was ingested and its rows have since been "
                "compacted into other files; ingesting it again would publish every row twice"
            ),
            allow_retries=False,
        )


def _locate(file_id: str, context: dg.AssetExecutionContext) -> str:
    """Where the file of partition ``file_id`` is: the run tag the sensor set, else a landing scan."""
    source = context.run.tags.get(SOURCE_TAG)
    if source:
        return source
    uri, options = landing_config()
    if uri:
        from parquetry.stdf.landing import scan_landing

        for f in scan_landing(uri, options):
            if f.sha256 == file_id:
                return f.uri
    raise dg.Failure(
        description=f"STDF file {file_id} is not in the landing folder "
        f"({uri or 'PARQUETRY_LANDING_URI unset'}) and the run has no {SOURCE_TAG} tag",
        allow_retries=False,
    )


@dg.asset(
    name="stdf_tables",
    group_name="stdf",
    partitions_def=STDF_PARTITIONS,
    required_resource_keys={"storage", "catalog"},
    kinds={"parquet"},
    description="One STDF file (partition: sha256 of its bytes) parsed into Hive-partitioned Parquet tables.",
    check_specs=[
        dg.AssetCheckSpec(
            "record_counts_match",
            asset="stdf_tables",
            blocking=True,
            description="Published rows agree with a header walk of the file "
            "(TSR, PCR, HBR/SBR, PTR, FTR, MPR).",
        )
    ],
)
def stdf_tables(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from parquetry.stdf.ingest import ingest_stdf_file

    file_id = context.partition_key
    source = _locate(file_id, context)
    storage_resource = context.resources.storage
    storage = storage_resource.get_storage()
    _refuse_if_compacted(context.resources.catalog, file_id, source)
    _, landing_options = landing_config()
    result = ingest_stdf_file(
        source,
        storage,
        file_id,
        source_options=landing_options if "://" in source else None,
        register=_registrar(context.resources.catalog, storage),
        options=storage_resource.parquet_options(),
    )
    name = context.run.tags.get(NAME_TAG) or source.rsplit("/", 1)[-1]
    if not result.ok:
        raise dg.Failure(
            description=f"{name}: {result.error}",
            metadata={
                "file": name,
                "source": source,
                "error_type": result.error_type or "",
                "error_offset": result.error_offset if result.error_offset is not None else -1,
                "records_read": result.records_read if result.records_read is not None else -1,
                "kept_at": result.failed_dir or "",
            },
            allow_retries=False,
        )
    metadata: dict[str, Any] = {
        "file": name,
        "source": source,
        "product": result.partition["product"],
        "stage": result.partition["stage"],
        "lot": result.partition["lot"],
        "source_bytes": result.source_bytes,
        "parquet_bytes": result.parquet_bytes,
        "seconds": round(result.seconds, 3),
        "mb_per_s": round(result.mb_per_s, 1),
        "engine": ENGINE,
        "catalog": "registered" if context.resources.catalog is not None else "not bound",
    }
    for table, rows in sorted(result.rows.items()):
        metadata[f"rows_{table}"] = rows
    return dg.MaterializeResult(
        metadata=metadata, check_results=[_record_count_check(source, result, storage)]
    )


def _record_count_check(source: str, result: Any, storage: Any) -> dg.AssetCheckResult:
    """Reconcile the published tables with the file's own record counts (an independent header walk)."""
    from parquetry.stdf import record_counts
    from parquetry.stdf.reconcile import reconcile_record_counts

    _, landing_options = landing_config()
    if "://" in source:
        import fsspec

        with fsspec.open(source, "rb", **(landing_options or {})) as fh:
            counts = record_counts(fh)
    else:
        counts = record_counts(source)
    checks = reconcile_record_counts(counts, result.files, storage)
    return dg.AssetCheckResult(
        check_name="record_counts_match",
        passed=all(c.ok for c in checks),
        metadata={c.what: f"{c.found} of {c.expected}" for c in checks},
    )


def _failure_table(failures: list[dict[str, Any]]) -> str:
    lines = ["| file_id | source | error type | offset | error |", "|---|---|---|---|---|"]
    for f in failures:
        error = str(f.get("error", "")).replace("|", "\\|").replace("\n", " ")[:300]
        lines.append(
            f"| {f.get('file_id', '')[:16]} | {f.get('source', '')} | {f.get('error_type', '')} "
            f"| {f.get('offset', '')} | {error} |"
        )
    return "\n".join(lines)


@dg.asset(
    name="stdf_failures",
    group_name="stdf",
    required_resource_keys={"storage"},
    kinds={"json"},
    automation_condition=dg.AutomationCondition.on_cron("*/15 * * * *"),
    description="STDF files that could not be ingested, with the error and byte offset (from _failed/).",
)
def stdf_failures(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from parquetry.stdf.ingest import list_failures

    failures = list_failures(context.resources.storage.get_storage())
    return dg.MaterializeResult(
        metadata={
            "failed_files": len(failures),
            "failures": dg.MetadataValue.md(_failure_table(failures)),
        }
    )


@dg.asset_check(asset=stdf_failures, required_resource_keys={"storage"}, description="No STDF file failed.")
def no_failed_stdf_files(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    from parquetry.stdf.ingest import list_failures

    failures = list_failures(context.resources.storage.get_storage())
    return dg.AssetCheckResult(
        passed=not failures,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failed_files": len(failures), "failures": dg.MetadataValue.md(_failure_table(failures))},
    )


stdf_ingest_job = dg.define_asset_job(INGEST_JOB_NAME, selection=[stdf_tables])


def ingest_landing_once(
    instance: dg.DagsterInstance,
    resources: dict[str, Any],
    landing_uri: str | None = None,
    storage_options: dict[str, Any] | None = None,
    cursor: str | None = None,
) -> tuple[list[dg.ExecuteInProcessResult], str | None]:
    """Run one landing-sensor tick and its ingestion runs in this process (no daemon needed).

    Adds the new partitions to ``instance`` as the daemon would, executes one run per new file and
    returns the results and the new cursor (pass it back on the next call). Demos and tests use it.
    """
    sensor = build_landing_sensor(landing_uri=landing_uri, storage_options=storage_options)
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys or []))
    job = dg.Definitions(assets=[stdf_tables], jobs=[stdf_ingest_job], resources=resources).resolve_job_def(
        INGEST_JOB_NAME
    )
    runs = [
        job.execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
        )
        for request in result.run_requests or []
    ]
    return runs, result.cursor


defs = dg.Definitions(
    assets=[stdf_tables, stdf_failures],
    asset_checks=[no_failed_stdf_files],
    jobs=[stdf_ingest_job],
    sensors=[stdf_landing_sensor],
)
