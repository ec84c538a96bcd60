"""Compaction in Dagster: one partition per catalogued dataset, a sensor, a nightly sweep, a pool.

``compacted_dataset`` compacts one dataset (its partition key) with :class:`parquetry.compact.Compactor`
and records before/after file and row-group counts, bytes, the ratio, the duration and the verification
result. Runs come from ``compaction_sensor`` (a dataset flagged at a new generation) and from
``compaction_sweep``, a schedule at 02:00 UTC that requests every flagged dataset. The ``compaction`` pool
caps how many compactions run at once (set its limit on the instance: ``concurrency.pools``). Retired
files are deleted by ``compaction_cleanup`` once their grace period has passed.
"""

import dagster as dg
from pydantic import Field

from resources.catalog import CatalogResource
from sensors.compaction import COMPACTION_JOB, DATASETS, compaction_sensor

POOL = "compaction"


class CompactionConfig(dg.Config):
    row_group_rows: int = Field(default=1_000_000, description="rows per re-chunked output row group")
    target_file_rows: int = Field(default=8_000_000, description="rows per output file (at most)")
    lease_ttl_s: float = Field(
        default=900.0, description="a crashed run blocks the dataset this long at most"
    )
    force: bool = Field(default=False, description="rewrite files the policy calls healthy too")
    encode_threads: int | None = Field(
        default=None,
        description="row groups re-encoded at once, each holding a row group in memory"
        " (default: half the cores, at most four)",
    )


class CleanupConfig(dg.Config):
    grace_s: float = Field(default=3600.0, description="keep retired files this long for running readers")


@dg.asset(
    partitions_def=DATASETS,
    pool=POOL,
    group_name="compaction",
    kinds={"parquet", "postgres"},
    description="A catalogued dataset, compacted: few target-sized files, verified, committed atomically.",
)
def compacted_dataset(
    context: dg.AssetExecutionContext, config: CompactionConfig, catalog: CatalogResource
) -> dg.MaterializeResult:
    from parquetry.compact import CompactionError, CompactionSettings, Compactor

    cat = catalog.get_catalog()
    cat.migrate()
    settings = CompactionSettings(
        row_group_rows=config.row_group_rows,
        target_file_rows=config.target_file_rows,
        lease_ttl_s=config.lease_ttl_s,
        force=config.force,
        encode_threads=config.encode_threads,
    )
    compactor = Compactor(
        cat, settings, storage_factory=catalog.storage_for, owner=f"dagster:{context.run.run_id}"
    )
    try:
        result = compactor.run(context.partition_key)
    except CompactionError as exc:  # bad input or failed verification: retrying cannot help
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    context.log.info(
        f"{result.dataset}: {result.status}, files {result.files_before} -> {result.files_after}, "
        f"row groups {result.row_groups_before} -> {result.row_groups_after} in {result.duration_s:.2f}s"
    )
    verification = result.verification
    return dg.MaterializeResult(
        metadata={
            "status": result.status,
            "generation": result.generation_after,
            "files_before": result.files_before,
            "files_after": result.files_after,
            "row_groups_before": result.row_groups_before,
            "row_groups_after": result.row_groups_after,
            "bytes_before": result.bytes_before,
            "bytes_after": result.bytes_after,
            "ratio": float(round(result.ratio, 3)),
            "duration_s": float(round(result.duration_s, 3)),
            "rows_rewritten": result.rows_rewritten,
            "verified": bool(verification.get("verified", result.status == "nothing_to_do")),
            "verification": dg.MetadataValue.json(verification or {"verified": "nothing rewritten"}),
            "plan_hash": result.plan_hash,
            "dagster/row_count": result.rows_rewritten,
        }
    )


compaction_job = dg.define_asset_job(
    COMPACTION_JOB,
    selection=[compacted_dataset],
    description="Compact one dataset (one partition of 'datasets').",
)


@dg.schedule(
    name="compaction_sweep",
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    job=compaction_job,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Nightly: one compaction run for every dataset the catalog flags.",
)
def compaction_sweep(context: dg.ScheduleEvaluationContext, catalog: CatalogResource):
    import psycopg

    try:
        flagged = catalog.get_catalog().flagged_datasets(limit=10_000)
    except psycopg.errors.UndefinedTable:
        return dg.SkipReason("the catalog has not been created yet")
    if not flagged:
        return dg.SkipReason("no dataset is flagged for compaction")
    # Schedules cannot return partition requests: add the missing partitions before requesting runs.
    known = set(context.instance.get_dynamic_partitions(DATASETS.name))
    missing = sorted({d.name for d in flagged} - known)
    if missing:
        context.instance.add_dynamic_partitions(DATASETS.name, missing)
    return [
        dg.RunRequest(
            run_key=f"{d.name}:{d.generation}",
            partition_key=d.name,
            tags={"parquetry/generation": str(d.generation)},
        )
        for d in flagged
    ]


@dg.op(description="Delete files compaction retired more than grace_s ago, and uncommitted outputs.")
def cleanup_retired_files(
    context: dg.OpExecutionContext, config: CleanupConfig, catalog: CatalogResource
) -> None:
    from parquetry.compact import cleanup

    cat = catalog.get_catalog()
    cat.migrate()
    result = cleanup(cat, config.grace_s, storage_factory=catalog.storage_for)
    context.log.info(f"deleted {len(result.deleted)} retired files, {len(result.orphans)} orphans")
    context.add_output_metadata({"deleted": len(result.deleted), "orphans": len(result.orphans)})


@dg.job(name="compaction_cleanup", description="Delete retired files after their grace period.")
def compaction_cleanup() -> None:
    cleanup_retired_files()


compaction_cleanup_schedule = dg.ScheduleDefinition(
    name="compaction_cleanup_hourly",
    cron_schedule="30 * * * *",
    execution_timezone="UTC",
    job=compaction_cleanup,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

defs = dg.Definitions(
    assets=[compacted_dataset],
    jobs=[compaction_job, compaction_cleanup],
    schedules=[compaction_sweep, compaction_cleanup_schedule],
    sensors=[compaction_sensor],
)
