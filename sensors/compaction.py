"""Request a compaction run for every dataset the catalog flags, once per dataset generation.

The sensor reads flagged datasets with one cheap indexed query. Each request's run key is
``"<dataset>:<generation>"``, so the daemon never launches two runs for the same state of a dataset, and
the cursor remembers the generation last requested per dataset so that a tick that finds nothing new
returns nothing. A dataset that changes again (a new generation) is requested again. Each dataset is a
partition of the dynamic partitions definition ``datasets``, added here on first sight.
"""

import json

import dagster as dg

from resources.catalog import CatalogResource

MAX_DATASETS_PER_TICK = 100
COMPACTION_JOB = "compaction_job"

# One partition per catalogued dataset; the compaction asset is partitioned by it.
DATASETS = dg.DynamicPartitionsDefinition(name="datasets")


@dg.sensor(
    name="compaction_sensor",
    job_name=COMPACTION_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="One compaction run per flagged dataset and generation.",
)
def compaction_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource) -> dg.SensorResult:
    import psycopg

    requested: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    try:
        flagged = catalog.get_catalog().flagged_datasets(MAX_DATASETS_PER_TICK)
    except psycopg.errors.UndefinedTable:
        return dg.SensorResult(skip_reason="the catalog has not been created yet (no compaction run so far)")
    fresh = [d for d in flagged if requested.get(d.name) != d.generation]
    if not fresh:
        return dg.SensorResult(skip_reason="no newly flagged dataset", cursor=context.cursor)
    known = set(context.instance.get_dynamic_partitions(DATASETS.name))
    new_partitions = sorted({d.name for d in fresh} - known)
    for d in fresh:
        requested[d.name] = d.generation
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{d.name}:{d.generation}",
                partition_key=d.name,
                tags={"parquetry/generation": str(d.generation)},
            )
            for d in fresh
        ],
        dynamic_partitions_requests=[DATASETS.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(requested, sort_keys=True),
    )
