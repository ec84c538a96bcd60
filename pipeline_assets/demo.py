"""The demo: ``python -m pipeline_assets.demo`` (``make demo``) runs every asset end to end.

1. starts a throwaway PostgreSQL server (``.parquetry/demo/pg``) and loads the sample database
   (customers, orders, order_items) into database ``demo``, plus an empty ``catalog`` database;
2. sets ``PARQUETRY_PG_DSN``, ``PARQUETRY_CATALOG_DSN``, ``PARQUETRY_DATA_ROOT``
   (``./demo_output/parquet``) and ``PARQUETRY_LANDING_URI`` (a landing folder filled with the STDF
   samples from ``../shared/stdf_samples`` when present, else with generated lots);
3. with a fresh ``DAGSTER_HOME`` (``.parquetry/demo/dagster_home``) materializes: every daily partition
   the sample data covers, the STDF files through one tick of the landing sensor, every unpartitioned
   asset (``demo_job``), then compacts what the catalog flags;
4. prints where the Parquet is and a table of datasets (files, rows, bytes), and stops the server.

Nothing here is needed in production; it shows the pieces working together on one machine and is
what the backfill and UI tests build on. It runs as root (the server then runs as ``postgres``) and as
an ordinary user.
"""

import argparse
import contextlib
import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
SHARED_SAMPLES = REPO.parent / "shared" / "stdf_samples"
STDF_SUFFIXES = (".stdf", ".std", ".stdf.gz", ".std.gz", ".stdf.bz2", ".std.bz2")
SOURCE_DB = "demo"
CATALOG_DB = "catalog"


@dataclass
class DemoReport:
    """What a demo run did: where things are, the runs it made, and the datasets it left."""

    data_root: Path
    dagster_home: Path
    runs: dict[str, int] = field(default_factory=dict)  # kind -> number of runs
    failed_runs: list[tuple[str, str]] = field(default_factory=list)  # (kind, run name)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


# -- environment ---------------------------------------------------------------------------------


@contextlib.contextmanager
def demo_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def create_databases(cluster_dsn: str, names: Sequence[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _create_catalog(dsn: str) -> None:
    """Create the catalog's tables up front, as a deployment does once (``Catalog.migrate``)."""
    from parquetry.catalog import Catalog

    Catalog(dsn).migrate()


def fill_landing(
    landing: Path, samples: Path | None = SHARED_SAMPLES, generated_lots: int = 3, split_lot_files: int = 8
) -> list[Path]:
    """Copy the STDF samples into ``landing`` (or write ``generated_lots`` lots when there are none), then
    add one lot tested in ``split_lot_files`` separate files, as testers write a lot wafer by wafer.

    That lot lands as many small files in one ``product/stage/lot`` directory of every STDF table: the
    fragmentation the catalog flags, so the demo shows a compaction too.
    """
    from parquetry.testing.stdf_writer import write_lot

    landing.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    if samples is not None and samples.is_dir():
        for src in sorted(samples.iterdir()):
            if src.is_file() and src.name.lower().endswith(STDF_SUFFIXES):
                dst = landing / src.name
                shutil.copyfile(src, dst)
                copied.append(dst)
    if not copied:
        for n in range(generated_lots):
            path = landing / f"demo_lot{n + 1}.stdf"
            write_lot(path, parts=40, tests=20, sites=4, seed=n, lot_id=f"DEMO{n + 1:03d}", test_cod="FT1")
            copied.append(path)
    for n in range(split_lot_files):
        path = landing / f"demo_split_lot_file{n + 1:02d}.stdf"
        write_lot(path, parts=10, tests=20, sites=4, seed=100 + n, lot_id="SPLIT01", test_cod="FT1")
        copied.append(path)
    return copied


# -- definitions ---------------------------------------------------------------------------------


def demo_resources() -> dict[str, Any]:
    """Resources for the demo, read from the environment the demo sets (the same keys as production)."""
    from resources.catalog import CatalogResource
    from resources.postgres import PostgresResource
    from resources.storage import StorageResource

    resources: dict[str, Any] = {
        "postgres": PostgresResource(dsn=os.environ["PARQUETRY_PG_DSN"], workers=2),
        "storage": StorageResource(root=os.environ["PARQUETRY_DATA_ROOT"]),
        "catalog": CatalogResource(dsn=os.environ["PARQUETRY_CATALOG_DSN"]),
    }
    with contextlib.suppress(ImportError):
        from resources.duckdb import DuckDBResource

        resources["duckdb"] = DuckDBResource(
            data_root=os.environ["PARQUETRY_DATA_ROOT"], catalog_dsn=os.environ["PARQUETRY_CATALOG_DSN"]
        )
    with contextlib.suppress(ImportError):
        from resources.gpu import GpuResource  # type: ignore[import-not-found]

        resources["gpu"] = GpuResource()
    return resources


def demo_definitions() -> tuple[dg.Definitions, dict[str, Any]]:
    """The code location's definitions, with the demo's resources for any key left unbound, and the
    demo's resources themselves."""
    from pipeline_assets.definitions import defs

    resources = demo_resources()
    bound = set((defs.resources or {}).keys())
    missing = {k: v for k, v in resources.items() if k not in bound}
    merged = dg.Definitions.merge(defs, dg.Definitions(resources=missing)) if missing else defs
    # The returned resources are resolved from the environment now (the definitions' own read
    # dg.EnvVar at run time), so the demo can also use them outside runs.
    return merged, resources


def sample_days(pdef: dg.TimeWindowPartitionsDefinition, max_days: int | None) -> list[str]:
    """The partitions of ``pdef`` that the sample data covers (the last ``max_days`` of them)."""
    try:
        from parquetry.sample_db import ORDERS_END, ORDERS_START

        start, end = ORDERS_START, ORDERS_END
    except ImportError:
        end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - dt.timedelta(days=3)
    keys = [
        key
        for key in pdef.get_partition_keys(current_time=end + dt.timedelta(days=1))
        if start.date() <= dt.date.fromisoformat(key) < end.date()
    ]
    return keys[-max_days:] if max_days else keys


# -- the run ---------------------------------------------------------------------------------------


def _record(report: DemoReport, kind: str, name: str, result: Any) -> None:
    report.runs[kind] = report.runs.get(kind, 0) + 1
    if not result.success:
        report.failed_runs.append((kind, name))


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DEFAULT_DAYS_PER_PARTITION_RUN = 7


def _single_run_backfill(job: Any) -> bool:
    """True when every asset of ``job`` takes a partition range in one run (``BackfillPolicy.single_run``)."""
    layer = job.asset_layer
    keys = list(layer.executable_asset_keys)
    return bool(keys) and all(
        (policy := layer.get(key).backfill_policy) is not None and policy.policy_type.name == "SINGLE_RUN"
        for key in keys
    )


def materialize_everything(
    defs: dg.Definitions,
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    report: DemoReport,
    *,
    max_days: int | None = None,
    verbose: bool = False,
    log: Any = print,
) -> None:
    """Run every job the demo covers, in dependency order, recording successes and failures.

    Daily partitions go in one run per job when its assets have a single-run backfill policy, else one
    run per day (the last ``DEFAULT_DAYS_PER_PARTITION_RUN`` days unless ``max_days`` says otherwise).
    """
    repo = defs.get_repository_def()
    job_names = set(repo.job_names)
    run_config: dict[str, Any] = {} if verbose else QUIET

    # 1. daily partitions of the PostgreSQL tables
    for name in sorted(n for n in job_names if n.startswith("postgres_daily_job")):
        job = repo.get_job(name)
        single_run = _single_run_backfill(job)
        days = sample_days(
            job.partitions_def, max_days or (None if single_run else DEFAULT_DAYS_PER_PARTITION_RUN)
        )
        if not days:
            continue
        if single_run:
            log(f"extracting {len(days)} daily partitions in one run of {name}: {days[0]} .. {days[-1]}")
            tags = {
                "dagster/asset_partition_range_start": days[0],
                "dagster/asset_partition_range_end": days[-1],
            }
            result = job.execute_in_process(
                instance=instance, tags=tags, run_config=run_config, raise_on_error=False
            )
            _record(report, "daily partition runs", f"{name}[{days[0]}...{days[-1]}]", result)
            continue
        log(f"extracting {len(days)} daily partitions, one run each, with {name}: {days[0]} .. {days[-1]}")
        for day in days:
            result = job.execute_in_process(
                instance=instance, partition_key=day, run_config=run_config, raise_on_error=False
            )
            _record(report, "daily partition runs", f"{name}[{day}]", result)

    # 2. STDF: one tick of the landing sensor, then one run per new file, as the daemon would
    if "stdf_ingest_job" in job_names:
        ingest_landing(repo, instance, run_config, report, log)

    # 3. every unpartitioned asset (whole-table snapshots, reports)
    if "demo_job" in job_names:
        log("materializing the unpartitioned assets (demo_job)")
        result = repo.get_job("demo_job").execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
        _record(report, "demo_job", "demo_job", result)

    # 4. compaction of what the catalog flags
    if "compaction_job" in job_names:
        flagged = _flagged_datasets(resources)
        log(f"compacting {len(flagged)} flagged dataset(s)" + (f": {', '.join(flagged)}" if flagged else ""))
        if flagged:
            instance.add_dynamic_partitions("datasets", flagged)
        for name in flagged:
            result = repo.get_job("compaction_job").execute_in_process(
                instance=instance, partition_key=name, run_config=run_config, raise_on_error=False
            )
            _record(report, "compactions", f"compaction_job[{name}]", result)
        if flagged:
            # Nobody else reads the demo's files: delete what the compactions retired without waiting for
            # the grace period, so the folders show the compacted state.
            from parquetry.compact.cleanup import cleanup

            done = cleanup(
                resources["catalog"].get_catalog(),
                grace_s=0,
                storage_factory=resources["catalog"].storage_for,
            )
            log(f"deleted {len(done.deleted)} retired file(s) after compaction")


def ingest_landing(
    repo: Any, instance: dg.DagsterInstance, run_config: dict[str, Any], report: DemoReport, log: Any
) -> None:
    """Evaluate the landing sensor once and execute the runs it requests, in this process."""
    sensor = repo.get_sensor_def("stdf_landing_sensor")
    with dg.build_sensor_context(instance=instance, repository_def=repo) as context:
        # The raw result: resolving it would validate partitions the tick itself is about to add.
        result = sensor(context)
    if isinstance(result, dg.SkipReason):
        log(f"the landing sensor skipped: {result.skip_message}")
        return
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys or []))
    requests = list(result.run_requests or [])
    log(f"the landing sensor requested {len(requests)} STDF ingestion run(s)")
    job = repo.get_job("stdf_ingest_job")
    for request in requests:
        run = job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            tags=request.tags,
            run_config=run_config,
            raise_on_error=False,
        )
        _record(report, "stdf files", request.tags.get("parquetry/stdf_name", request.partition_key), run)


def _flagged_datasets(resources: dict[str, Any]) -> list[str]:
    catalog_resource = resources.get("catalog")
    if catalog_resource is None:
        return []
    catalog = catalog_resource.get_catalog()
    catalog.migrate()
    return [f.name for f in catalog.flagged_datasets(limit=10_000)]


def summarize(root: Path) -> list[dict[str, Any]]:
    """One row per dataset directory under ``root`` (``stdf/<table>`` counts as one): files, rows, bytes.

    Rows come from the Parquet footers; staging, failed-file and temporary files are not counted.
    """
    import pyarrow.parquet as pq

    datasets: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.parquet")):
        rel = path.relative_to(root).parts
        if path.name.startswith(".tmp-") or any(p.startswith("_") for p in rel[:-1]):
            continue
        name = "/".join(rel[:2]) if rel[0] == "stdf" and len(rel) > 2 else rel[0]
        entry = datasets.setdefault(name, {"dataset": name, "files": 0, "rows": 0, "bytes": 0})
        entry["files"] += 1
        entry["rows"] += pq.ParquetFile(path).metadata.num_rows
        entry["bytes"] += path.stat().st_size
    return [datasets[k] for k in sorted(datasets)]


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    from parquetry.progress import format_bytes

    header = f"{'dataset':<28} {'files':>6} {'rows':>12} {'bytes':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['dataset']:<28} {r['files']:>6} {r['rows']:>12,} {format_bytes(r['bytes']):>10}")
    total_rows = sum(r["rows"] for r in rows)
    total_bytes = sum(r["bytes"] for r in rows)
    lines.append("-" * len(header))
    files = sum(r["files"] for r in rows)
    lines.append(f"{'total':<28} {files:>6} {total_rows:>12,} {format_bytes(total_bytes):>10}")
    return "\n".join(lines)


@contextlib.contextmanager
def demo_stack(workdir: Path, output: Path, scale: float, seed: int = 0, log: Any = print) -> Iterator[dict]:
    """A running server with the sample data and the environment set; yields the settings.

    The server, and the environment, are gone after the block.
    """
    from parquetry.pg.cluster import PostgresCluster
    from parquetry.sample_db import load_sample_database

    workdir = workdir.absolute()
    output = output.absolute()
    for stale in (workdir / "pg", workdir / "dagster_home", workdir / "landing", output / "parquet"):
        shutil.rmtree(stale, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    dagster_home = workdir / "dagster_home"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    log(f"starting a throwaway PostgreSQL server in {workdir / 'pg'}")
    with PostgresCluster(base_dir=workdir / "pg") as cluster:
        create_databases(cluster.dsn(), [SOURCE_DB, CATALOG_DB])
        _create_catalog(cluster.dsn(CATALOG_DB))
        counts = load_sample_database(cluster.dsn(SOURCE_DB), scale=scale, seed=seed)
        log("loaded the sample database: " + ", ".join(f"{k} {v:,} rows" for k, v in counts.items()))
        landing = workdir / "landing"
        files = fill_landing(landing)
        log(f"{len(files)} STDF file(s) in the landing folder {landing}")
        env = {
            "PARQUETRY_PG_DSN": cluster.dsn(SOURCE_DB),
            "PARQUETRY_CATALOG_DSN": cluster.dsn(CATALOG_DB),
            "PARQUETRY_DATA_ROOT": str(output / "parquet"),
            "PARQUETRY_LANDING_URI": str(landing),
            "DAGSTER_HOME": str(dagster_home),
        }
        with demo_environment(env):
            yield {**env, "cluster": cluster, "sample_rows": counts}


def run_demo(
    workdir: Path,
    output: Path,
    *,
    scale: float = 0.02,
    max_days: int | None = None,
    verbose: bool = False,
    log: Any = print,
) -> DemoReport:
    started = time.perf_counter()
    with demo_stack(workdir, output, scale, log=log) as settings:
        defs, resources = demo_definitions()
        report = DemoReport(
            data_root=Path(settings["PARQUETRY_DATA_ROOT"]), dagster_home=Path(settings["DAGSTER_HOME"])
        )
        with dg.DagsterInstance.get() as instance:
            materialize_everything(
                defs, resources, instance, report, max_days=max_days, verbose=verbose, log=log
            )
        report.datasets = summarize(report.data_root)
    report.seconds = time.perf_counter() - started
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_assets.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--workdir", default=".parquetry/demo", help="server, DAGSTER_HOME and landing folder"
    )
    parser.add_argument("--output", default="demo_output", help="the Parquet goes to OUTPUT/parquet")
    parser.add_argument("--scale", type=float, default=0.02, help="sample database scale (1.0: 100k orders)")
    parser.add_argument(
        "--days",
        type=int,
        default=None,
        help="extract the last DAYS daily partitions (default: all the sample covers in one run when the "
        f"assets allow partition ranges, else the last {DEFAULT_DAYS_PER_PARTITION_RUN})",
    )
    parser.add_argument("--verbose", action="store_true", help="show Dagster's event log on the console")
    args = parser.parse_args(argv)
    report = run_demo(
        Path(args.workdir), Path(args.output), scale=args.scale, max_days=args.days, verbose=args.verbose
    )
    print()
    print(f"Parquet written under {report.data_root}")
    print(
        f"Dagster runs recorded in DAGSTER_HOME={report.dagster_home} "
        f"(browse them: DAGSTER_HOME={report.dagster_home} dagster dev -w workspace.yaml)"
    )
    print("runs: " + ", ".join(f"{v} {k}" for k, v in report.runs.items()) + f" in {report.seconds:.0f} s")
    print()
    print(format_table(report.datasets))
    stdf_failed = [n for kind, n in report.failed_runs if kind == "stdf files"]
    other_failed = [n for kind, n in report.failed_runs if kind != "stdf files"]
    if stdf_failed:
        print(
            f"\n{len(stdf_failed)} STDF file(s) could not be parsed (the samples include malformed files "
            "on purpose): see the stdf_failures asset and <root>/stdf/_failed/"
        )
    if other_failed:
        print(f"\n{len(other_failed)} run(s) failed: {', '.join(other_failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
