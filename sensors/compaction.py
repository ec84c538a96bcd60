"""Request a compaction run for every dataset the catalog flags, once per dataset generation.

The sensor reads flagged datasets with one cheap indexed query. Each request's run key is
``"<dataset>:<generation>"``, so the daemon never launches two runs for the same state of a dataset, and
the cursor remembers the generation last requested per dataset so that a tick that finds nothing new
returns nothing. A dataset that changes again (a new generation) is requested again. Each dataset is a
partition of the dynamic partitions definition ``datasets``, added here on first sight.

The sensor is created STOPPED: a deployment turns it on once (the UI's toggle, ``dagster sensor start
compaction_sensor -w workspace.yaml``, or the GraphQL ``startSensor`` mutation) and the daemon then
evaluates it every ``minimum_interval_seconds``: 60, or ``$PARQUETRY_COMPACTION_SENSOR_INTERVAL_S`` where
the code location loads (a deployment that wants faster reaction, or a test that must not wait a minute
between ticks).
"""

import json
import os
from collections.abc import Mapping

import dagster as dg

from resources.catalog import CatalogResource

MAX_DATASETS_PER_TICK = 100
COMPACTION_JOB = "compaction_job"
INTERVAL_ENV = "PARQUETRY_COMPACTION_SENSOR_INTERVAL_S"
DEFAULT_INTERVAL_S = 60


def sensor_interval_s(environ: Mapping[str, str] | None = None) -> int:
    """Seconds between ticks: ``$PARQUETRY_COMPACTION_SENSOR_INTERVAL_S`` or 60; a bad value is refused."""
    raw = (os.environ if environ is None else environ).get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV}={raw!r} is not a whole number of seconds") from None
    if value < 1:
        raise ValueError(f"{INTERVAL_ENV}={raw!r}: the interval must be at least 1 second")
    return value


# One partition per catalogued dataset; the compaction asset is partitioned by it.
DATASETS = dg.DynamicPartitionsDefinition(name="datasets")


@dg.sensor(
    name="compaction_sensor",
    job_name=COMPACTION_JOB,
    minimum_interval_seconds=sensor_interval_s(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="One compaction run per flagged dataset and generation.",
)
def compaction_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource) -> dg.SensorResult:
    import psycopg

    requested: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    try:
        flagged = catalog.get_catalog().flagged_datasets(MAX_DATASETS_PER_TICK, requested=requested)
    except psycopg.errors.UndefinedTable:
        return dg.SensorResult(skip_reason="the catalog has not been created yet (no compaction run so far)")
    fresh = [d for d in flagged if requested.get(d.name) != d.generation]
    if len(flagged) < MAX_DATASETS_PER_TICK:
        # Every flagged dataset was seen: forget requests whose dataset moved on, was compacted or is
        # leased right now, so the cursor stays small. Should a leased one come back at the same
        # generation (its run failed), the daemon's run-key check still refuses a second run.
        still = {d.name for d in flagged if requested.get(d.name) == d.generation}
        requested = {name: gen for name, gen in requested.items() if name in still}
    if not fresh:
        reason = (
            f"{len(flagged)} flagged dataset(s) already requested at their current generation"
            if flagged
            else "no dataset is flagged for compaction"
        )
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(requested, sort_keys=True))
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
