"""The STDF landing sensor: one dynamic partition, and one ingestion run, per new file content.

Each tick lists the landing folder (``$PARQUETRY_LANDING_URI``: a local path or an fsspec URL such as
``ftp://host/landing`` or ``s3://bucket/landing``; fsspec options as JSON in
``$PARQUETRY_LANDING_OPTIONS``), hashes files it has not seen with the same size and mtime (the
hashes live in the sensor cursor), and for every sha256 that is not yet a partition of
``stdf_files`` adds the partition and requests a run with ``run_key`` = the hash. A re-upload of the
same bytes (same name or another) is therefore never ingested twice. The file's URI travels in the
run's tags, so the asset knows where to read it. Each file is its own run: a failed file does not
hold back the others.
"""

from __future__ import annotations

import json
import os
from typing import Any

import dagster as dg

STDF_PARTITIONS_NAME = "stdf_files"
STDF_PARTITIONS = dg.DynamicPartitionsDefinition(name=STDF_PARTITIONS_NAME)
INGEST_JOB_NAME = "stdf_ingest_job"
SOURCE_TAG = "parquetry/stdf_source"
NAME_TAG = "parquetry/stdf_name"
LANDING_URI_ENV = "PARQUETRY_LANDING_URI"
LANDING_OPTIONS_ENV = "PARQUETRY_LANDING_OPTIONS"


def landing_config(
    landing_uri: str | None = None, storage_options: dict[str, Any] | None = None
) -> tuple[str | None, dict[str, Any]]:
    """The landing URI and fsspec options: those given, else from the environment (read at call time)."""
    uri = landing_uri or os.environ.get(LANDING_URI_ENV) or None
    if storage_options is None:
        raw = os.environ.get(LANDING_OPTIONS_ENV)
        storage_options = json.loads(raw) if raw else {}
    return uri, dict(storage_options)


def landing_run_requests(
    context: dg.SensorEvaluationContext, landing_uri: str, storage_options: dict[str, Any]
) -> dg.SensorResult:
    """One tick: scan, compare with the existing partitions, request runs for new contents."""
    from parquetry.stdf.landing import HashCache, scan_landing

    cache = HashCache.from_json(context.cursor)
    files = scan_landing(landing_uri, storage_options, cache)
    known = set(context.instance.get_dynamic_partitions(STDF_PARTITIONS_NAME))
    new: dict[str, Any] = {}
    for f in files:
        if f.sha256 not in known and f.sha256 not in new:
            new[f.sha256] = f
    requests = [
        dg.RunRequest(
            run_key=sha,
            partition_key=sha,
            tags={SOURCE_TAG: f.uri, NAME_TAG: f.name},
        )
        for sha, f in new.items()
    ]
    context.log.info(f"{len(files)} STDF file(s) in the landing folder, {len(new)} new content(s)")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[STDF_PARTITIONS.build_add_request(list(new))] if new else [],
        cursor=cache.to_json(),
    )


def build_landing_sensor(
    *,
    name: str = "stdf_landing_sensor",
    landing_uri: str | None = None,
    storage_options: dict[str, Any] | None = None,
    job_name: str = INGEST_JOB_NAME,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """A landing sensor; without ``landing_uri`` it reads ``$PARQUETRY_LANDING_URI`` at each tick."""

    @dg.sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Adds a stdf_files partition per new STDF file content and requests its ingestion.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        uri, options = landing_config(landing_uri, storage_options)
        if not uri:
            return dg.SkipReason(f"no landing folder: set {LANDING_URI_ENV}")
        return landing_run_requests(context, uri, options)

    return _sensor


stdf_landing_sensor = build_landing_sensor()
