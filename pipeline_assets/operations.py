"""Jobs and schedules for batch operation: the daily PostgreSQL extraction and the demo.

The jobs are derived from the assets the area modules define, not written by hand, so that adding a
table spec to ``config/tables.yaml`` adds it to the schedule without touching this file:

- ``postgres_daily_job``: every daily-partitioned asset of group ``postgres``, scheduled by
  ``postgres_daily_schedule`` at ``$PARQUETRY_EXTRACT_CRON`` (default ``0 1 * * *``, UTC) for the day
  that just ended. Assets with different partition definitions (different ``start_date``s) get a job
  and schedule each, suffixed with their start date, because one job can only have one partitioning.
- ``postgres_snapshot_job``: the unpartitioned ``postgres`` assets (whole-table snapshots), on the
  same cron.
- ``demo_job``: every unpartitioned asset; ``python -m pipeline_assets.demo`` materializes the
  partitioned ones partition by partition.

Every ``postgres/parquet/<name>`` asset also gets the generic checks of ``pipeline_assets.checks``:
its row count against the source (per daily partition), an unchanged schema, and DuckDB readability.

The compaction sweep (02:00 UTC) is defined with the compaction assets.
"""

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from pipeline_assets import compaction, postgres_tables, stdf_files
from pipeline_assets.checks import standard_checks

POSTGRES_GROUP = "postgres"
DEFAULT_EXTRACT_CRON = "0 1 * * *"
EXTRACT_TIMEZONE = "UTC"


def extract_cron() -> str:
    """The extraction schedule's cron string: ``$PARQUETRY_EXTRACT_CRON`` or 01:00 every day."""
    cron = os.environ.get("PARQUETRY_EXTRACT_CRON", "").strip() or DEFAULT_EXTRACT_CRON
    if len(cron.split()) != 5:
        raise ValueError(f"PARQUETRY_EXTRACT_CRON must be a 5-field cron string, got {cron!r}")
    return cron


def asset_entries(defs_list: Iterable[dg.Definitions]) -> list[tuple[dg.AssetKey, str | None, Any]]:
    """(key, group, partitions_def) for every asset in the given Definitions."""
    out: list[tuple[dg.AssetKey, str | None, Any]] = []
    for defs in defs_list:
        for item in defs.assets or []:
            if isinstance(item, dg.AssetsDefinition):
                for key in item.keys:
                    out.append((key, item.group_names_by_key.get(key), item.partitions_def))
            elif isinstance(item, dg.AssetSpec):
                out.append((item.key, item.group_name, item.partitions_def))
    return out


def _group_by_partitions(
    entries: Sequence[tuple[dg.AssetKey, str | None, Any]],
) -> list[tuple[Any, list[dg.AssetKey]]]:
    groups: list[tuple[Any, list[dg.AssetKey]]] = []
    for key, _, pdef in entries:
        for existing, keys in groups:
            if existing == pdef:
                keys.append(key)
                break
        else:
            groups.append((pdef, [key]))
    return groups


def _suffix(pdef: Any) -> str:
    start = getattr(pdef, "start", None)
    text = start.strftime("%Y%m%d") if start is not None else type(pdef).__name__
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _daily_schedule(job: Any, pdef: Any, name: str, cron: str) -> Any:
    """A schedule that runs ``job`` for the last complete day at ``cron``.

    A daily cron (``M H * * *``) goes through ``build_schedule_from_partitioned_job`` (which fires in the
    partitions' timezone); any other cron gets a schedule of its own that asks for the last complete
    partition at each tick, so ``PARQUETRY_EXTRACT_CRON`` can be any 5-field cron.
    """
    description = f"Extracts the day that just ended, at {cron} ({EXTRACT_TIMEZONE})."
    fields = cron.split()
    if fields[0].isdigit() and fields[1].isdigit() and fields[2:] == ["*", "*", "*"]:
        return dg.build_schedule_from_partitioned_job(
            job,
            name=name,
            minute_of_hour=int(fields[0]),
            hour_of_day=int(fields[1]),
            description=description,
        )

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=EXTRACT_TIMEZONE,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> Any:
        keys = pdef.get_partition_keys(current_time=context.scheduled_execution_time)
        if not keys:
            return dg.SkipReason("no complete partition yet")
        return dg.RunRequest(run_key=keys[-1], partition_key=keys[-1])

    return _schedule


def build_operations(
    area_defs: Sequence[dg.Definitions], cron: str | None = None
) -> tuple[list[Any], list[Any]]:
    """The jobs and schedules for the assets in ``area_defs``."""
    cron = cron or extract_cron()
    entries = asset_entries(area_defs)
    jobs: list[Any] = []
    schedules: list[Any] = []

    postgres = [e for e in entries if e[1] == POSTGRES_GROUP]
    daily = [e for e in postgres if isinstance(e[2], dg.TimeWindowPartitionsDefinition)]
    snapshot = [e for e in postgres if e[2] is None]
    by_partitions = _group_by_partitions(daily)
    for pdef, keys in by_partitions:
        suffix = "" if len(by_partitions) == 1 else f"_{_suffix(pdef)}"
        job = dg.define_asset_job(
            f"postgres_daily_job{suffix}",
            selection=dg.AssetSelection.assets(*keys),
            description="Daily extraction of time-partitioned PostgreSQL tables into Parquet.",
        )
        jobs.append(job)
        schedules.append(_daily_schedule(job, pdef, f"postgres_daily_schedule{suffix}", cron))
    if snapshot:
        job = dg.define_asset_job(
            "postgres_snapshot_job",
            selection=dg.AssetSelection.assets(*(k for k, _, _ in snapshot)),
            description="Whole-table snapshots of the unpartitioned PostgreSQL tables.",
        )
        jobs.append(job)
        schedules.append(
            dg.ScheduleDefinition(
                name="postgres_snapshot_schedule",
                job=job,
                cron_schedule=cron,
                execution_timezone=EXTRACT_TIMEZONE,
            )
        )

    unpartitioned = [k for k, _, pdef in entries if pdef is None]
    if unpartitioned:
        jobs.append(
            dg.define_asset_job(
                "demo_job",
                selection=dg.AssetSelection.assets(*unpartitioned),
                description="Every unpartitioned asset; the demo materializes partitioned ones by partition.",
            )
        )
    return jobs, schedules


def source_row_count(spec: Any) -> Any:
    """A ``(context, partition_key) -> rows`` counter of the source rows a table spec extracts.

    It counts with the same filters as the extraction (``where`` and the day's window), at check time:
    on a table that is still written to, compare closed days only.
    """

    def count(context: dg.AssetCheckExecutionContext, partition: str | None) -> int:
        import psycopg
        from psycopg import sql

        from parquetry.extract.plan import day_window, filters
        from parquetry.extract.spec import split_relation

        if spec.relation is not None:
            schema, table = split_relation(spec.relation)
            source = sql.Identifier(schema, table) if schema else sql.Identifier(table)
        else:
            source = sql.SQL("({}) AS q").format(sql.SQL(spec.query))  # trusted config text
        conditions = filters(spec, day_window(partition) if partition else None)
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
        query = sql.SQL("SELECT count(*) FROM {}{}").format(source, where)
        with psycopg.connect(context.resources.postgres.dsn, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    return count


def partition_files(spec: Any) -> Any:
    """A ``(context, partition_key) -> files`` locator: the Parquet of one day (or of the whole table).

    Computed from the storage resource rather than read from the materialization, because a run over a
    range of days records one materialization (with the dataset's root as its location) for all of them.
    """

    def locate(context: dg.AssetCheckExecutionContext, partition: str | None) -> list[str]:
        from parquetry.extract.parquet import partition_dir
        from pipeline_assets.checks import list_parquet_files

        store = context.resources.storage.get_storage()
        return list_parquet_files(store.uri(partition_dir(store, spec.name, partition)))

    return locate


def build_postgres_checks(specs: Sequence[Any]) -> list[dg.AssetChecksDefinition]:
    """Row count, schema and DuckDB checks for each table spec's Parquet asset."""
    made: list[dg.AssetChecksDefinition] = []
    with warnings.catch_warnings():
        # Partitioned asset checks are a Dagster preview feature; the warning says nothing actionable.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        for spec in specs:
            made.extend(
                standard_checks(
                    postgres_tables.parquet_key(spec.name),
                    source_count=source_row_count(spec),
                    files=partition_files(spec),
                    partitions_def=postgres_tables.partitions_for(spec),
                    required_resource_keys={"postgres", "storage"},
                )
            )
    return made


_jobs, _schedules = build_operations([postgres_tables.defs, stdf_files.defs, compaction.defs])

defs = dg.Definitions(
    jobs=_jobs,
    schedules=_schedules,
    asset_checks=build_postgres_checks(getattr(postgres_tables, "TABLE_SPECS", [])),
)
