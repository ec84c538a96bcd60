"""The ``parquetry`` command: the engine without Dagster, for scripts, one-off loads and debugging.

Every subcommand imports its area lazily, so ``parquetry --help`` is instant and one subcommand keeps
working while another area's dependencies are missing. Progress goes to stderr (a bar on a terminal,
nothing otherwise); the result goes to stdout as one JSON object, so it can be piped into ``jq``.

    parquetry extract --dsn DSN --table public.orders --out ./data [--partition 2024-01-31]
    parquetry stdf ingest lot1.stdf landing/ --out ./data
    parquetry compact --catalog-dsn DSN --dataset orders
    parquetry pg start ./.parquetry/pg        # prints the DSN of a throwaway server
    parquetry pg stop ./.parquetry/pg

Exit status: 0 on success, 1 when the work failed (bad input: the message says which), 2 on usage
errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]


class CliError(Exception):
    """A failure to report in one line, without a traceback."""


def _emit(result: Any) -> None:
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _log_to_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")


def _progress(total: int | None, unit: str, label: str, quiet: bool) -> Any:
    """A bar on a terminal; a line every few seconds when stderr is redirected; nothing with -q."""
    from parquetry.progress import Progress

    if quiet:
        return Progress(total, unit=unit, label=label)
    if sys.stderr.isatty():
        return Progress(total, unit=unit, label=label, bar=True, every_s=0.2)
    return Progress(total, unit=unit, label=label, log=_log_to_stderr, every_s=10.0)


def _env_default(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


# -- extract ---------------------------------------------------------------------------------------


def _spec_for(args: argparse.Namespace) -> Any:
    from parquetry.extract.spec import TableSpec, load_table_specs, split_relation

    if args.specs:
        specs = {s.name: s for s in load_table_specs(args.specs)}
        if args.table in specs:
            return specs[args.table]
        if args.name in specs:
            return specs[args.name]
    _, table = split_relation(args.table)
    name = args.name or "".join(c if c.isalnum() or c == "_" else "_" for c in table)
    if name and name[0].isdigit():
        name = f"t_{name}"
    return TableSpec(
        name=name,
        relation=args.table,
        columns=tuple(args.columns.split(",")) if args.columns else None,
        where=args.where,
        time_column=args.time_column,
        start_date=args.start_date or ("1970-01-01" if args.time_column else None),
    )


def cmd_extract(args: argparse.Namespace) -> int:
    from parquetry.extract import ExtractOptions, extract_table_to_parquet
    from parquetry.extract.pipeline import ExtractHooks
    from parquetry.storage import Storage

    dsn = args.dsn or _env_default("PARQUETRY_PG_DSN")
    if not dsn:
        raise CliError("give --dsn or set PARQUETRY_PG_DSN")
    spec = _spec_for(args)
    options = ExtractOptions(workers=args.workers, staging_dir=args.staging_dir)
    label = spec.name + (f"[{args.partition}]" if args.partition else "")
    progress = _progress(None, "ranges", label, args.quiet)
    hooks = ExtractHooks(before_task=lambda task: progress.advance(1))
    with progress:
        result = extract_table_to_parquet(
            dsn, spec, Storage(args.out), partition=args.partition, options=options, hooks=hooks
        )
    seconds = result.timings.get("wall_s", progress.summary()["elapsed_s"])
    _emit(
        {
            "dataset": result.dataset,
            "partition": result.partition,
            "rows": result.rows,
            "files": [f.path for f in result.files],
            "parquet_bytes": result.parquet_bytes,
            "stream_bytes": result.stream_bytes,
            "workers": result.workers,
            "engine": result.engine,
            "seconds": round(seconds, 3),
            "mb_per_s": round(result.stream_bytes / seconds / 1e6, 2) if seconds > 0 else None,
        }
    )
    return 0


# -- stdf ------------------------------------------------------------------------------------------


def _stdf_inputs(paths: Sequence[str]) -> list[str]:
    from parquetry.stdf.landing import is_stdf_name

    found: list[str] = []
    for raw in paths:
        if "://" in raw:
            found.append(raw)
            continue
        path = Path(raw)
        if path.is_dir():
            found.extend(str(p) for p in sorted(path.rglob("*")) if p.is_file() and is_stdf_name(p.name))
        elif path.is_file():
            found.append(str(path))
        else:
            raise CliError(f"{raw}: no such file or directory")
    if not found:
        raise CliError(f"no STDF files under {', '.join(paths)}")
    return found


def cmd_stdf_ingest(args: argparse.Namespace) -> int:
    from parquetry.stdf.ingest import catalog_registrar, ingest_stdf_file
    from parquetry.storage import Storage

    sources = _stdf_inputs(args.paths)
    storage = Storage(args.out)
    register = None
    catalog_dsn = args.catalog_dsn or _env_default("PARQUETRY_CATALOG_DSN")
    if catalog_dsn:
        from parquetry.catalog import Catalog

        catalog = Catalog(catalog_dsn)
        catalog.migrate()
        register = catalog_registrar(catalog, storage)
    local_sizes = [os.path.getsize(s) if "://" not in s else 0 for s in sources]
    total = sum(local_sizes) if all("://" not in s for s in sources) else None
    results = []
    with _progress(total, "B", "stdf", args.quiet) as progress:
        for source, size in zip(sources, local_sizes, strict=True):
            result = ingest_stdf_file(source, storage, register=register)
            results.append(result)
            progress.advance(size or result.source_bytes, rows=sum(result.rows.values()))
            if not result.ok:
                _log_to_stderr(f"FAILED {source}: {result.error}")
    failed = [r for r in results if not r.ok]
    _emit(
        {
            "ingested": len(results) - len(failed),
            "failed": len(failed),
            "files": [r.to_dict() for r in results],
            **{k: round(v, 3) for k, v in progress.summary().items() if k in ("elapsed_s", "mb_per_s")},
        }
    )
    return 1 if failed else 0


# -- compact ---------------------------------------------------------------------------------------


def cmd_compact(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from parquetry.compact import CompactionSettings, Compactor

    catalog = _catalog(args)
    datasets = list(args.dataset or [])
    if args.flagged:
        datasets.extend(f.name for f in catalog.flagged_datasets() if f.name not in datasets)
    if not datasets:
        raise CliError("give --dataset NAME (repeatable) or --flagged")
    compactor = Compactor(catalog, CompactionSettings(force=args.force))
    results = []
    with _progress(len(datasets), "datasets", "compact", args.quiet) as progress:
        for name in datasets:
            results.append(asdict(compactor.run(name)))
            progress.advance(1)
    _emit({"results": results})
    return 0


def _catalog(args: argparse.Namespace) -> Any:
    """The catalog of ``--catalog-dsn``, migrated to this version's schema (idempotent, concurrent-safe:
    the first command after an upgrade brings an older catalog up to date)."""
    from parquetry.catalog import Catalog

    dsn = args.catalog_dsn or _env_default("PARQUETRY_CATALOG_DSN")
    if not dsn:
        raise CliError("give --catalog-dsn or set PARQUETRY_CATALOG_DSN")
    catalog = Catalog(dsn)
    catalog.migrate()
    return catalog


# -- catalog ---------------------------------------------------------------------------------------


def cmd_catalog_datasets(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    catalog = _catalog(args)
    _emit({"datasets": [asdict(catalog.dataset(name)) for name in catalog.datasets()]})
    return 0


def cmd_catalog_files(args: argparse.Namespace) -> int:
    """A dataset's live files in its row order (the order readers take them in)."""
    from parquetry.catalog import UnknownDataset

    try:
        snapshot = _catalog(args).snapshot(args.dataset)
    except UnknownDataset as exc:
        raise CliError(str(exc)) from exc
    files = [
        {"path": f.path, "rows": f.rows, "row_groups": f.row_groups, "bytes": f.bytes, "etag": f.etag}
        for f in snapshot.files
    ]
    _emit({"dataset": args.dataset, "generation": snapshot.generation, "etag": snapshot.etag, "files": files})
    return 0


def cmd_catalog_cleanup(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from parquetry.compact import cleanup

    if args.grace_s < 0:
        raise CliError("--grace-s must not be negative")
    result = cleanup(_catalog(args), args.grace_s, sweep_orphans=not args.keep_orphans)
    _emit(asdict(result))
    return 0


# -- pg --------------------------------------------------------------------------------------------


def _running_port(base: Path) -> int | None:
    """The port of the server running in ``base`` (from ``postmaster.pid``), or None."""
    pid_file = base / "data" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return port


def cmd_pg_start(args: argparse.Namespace) -> int:
    from parquetry.pg.cluster import PostgresCluster

    base = Path(args.dir).absolute()
    port = _running_port(base)
    if port is None:
        cluster = PostgresCluster(base_dir=base, port=args.port, keep_data=True)
        cluster.start()
        cluster.detach()
        port = cluster.port
        status = "started"
    else:
        status = "already running"
    dsn = f"host=127.0.0.1 port={port} user=parquetry dbname=postgres"
    if args.load_sample:
        _load_sample(dsn, args.scale)
    _emit({"status": status, "dir": str(base), "port": port, "dsn": dsn})
    return 0


def _load_sample(dsn: str, scale: float) -> None:
    try:
        from parquetry.sample_db import load_sample_database
    except ImportError as exc:
        raise CliError(f"the sample database loader is not available: {exc}") from exc
    load_sample_database(dsn, scale=scale, seed=42)


def cmd_pg_stop(args: argparse.Namespace) -> int:
    from parquetry.pg.cluster import PostgresCluster

    base = Path(args.dir).absolute()
    if not (base / "data" / "PG_VERSION").exists():
        raise CliError(f"{base} holds no PostgreSQL cluster")
    if _running_port(base) is None:
        _emit({"status": "not running", "dir": str(base)})
        return 0
    PostgresCluster.attach(base).stop()
    if _running_port(base) is not None:
        raise CliError(f"the server in {base} did not stop; see {base / 'server.log'}")
    _emit({"status": "stopped", "dir": str(base)})
    return 0


def cmd_pg_status(args: argparse.Namespace) -> int:
    base = Path(args.dir).absolute()
    port = _running_port(base)
    if port is None:
        _emit({"status": "not running", "dir": str(base)})
        return 1
    _emit(
        {
            "status": "running",
            "dir": str(base),
            "port": port,
            "dsn": f"host=127.0.0.1 port={port} user=parquetry dbname=postgres",
        }
    )
    return 0


def cmd_kernels_list(args: argparse.Namespace) -> int:
    from parquetry.pgcopy import rowspec

    _emit({"cache": str(rowspec.cache_dir(create=False)), "kernels": rowspec.cached_kernels()})
    return 0


def cmd_kernels_clear(args: argparse.Namespace) -> int:
    from parquetry.pgcopy import rowspec

    removed = rowspec.clear_cache(failed_only=args.failed)
    _emit({"cache": str(rowspec.cache_dir(create=False)), "removed_files": removed})
    return 0


# -- parser ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parquetry",
        description="Lay PostgreSQL tables and STDF tester logs into clean, compacted Parquet.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ex = sub.add_parser(
        "extract", parents=[common], help="extract one PostgreSQL table (or one daily partition) to Parquet"
    )
    ex.add_argument("--dsn", help="libpq connection string of the source (default: $PARQUETRY_PG_DSN)")
    ex.add_argument("--table", required=True, help="a relation (schema.table) or a spec name from --specs")
    ex.add_argument("--out", required=True, help="Parquet root: a directory or an fsspec URL")
    ex.add_argument("--specs", help="a tables.yaml holding table specs (e.g. config/tables.yaml)")
    ex.add_argument("--name", help="dataset name (default: the table name)")
    ex.add_argument("--columns", help="comma-separated columns to keep")
    ex.add_argument("--where", help="SQL filter on the source rows (trusted text)")
    ex.add_argument("--time-column", help="column that splits the dataset into daily partitions")
    ex.add_argument("--start-date", help="first day of the daily partitions (YYYY-MM-DD)")
    ex.add_argument("--partition", help="the day to extract (YYYY-MM-DD), for partitioned datasets")
    ex.add_argument("--workers", type=int, help="parallel COPY streams (default: one per core)")
    ex.add_argument("--staging-dir", help="where raw chunks are staged (default: $PARQUETRY_STAGING_DIR)")
    ex.set_defaults(func=cmd_extract)

    stdf = sub.add_parser("stdf", help="STDF tester logs").add_subparsers(dest="stdf_command", required=True)
    ing = stdf.add_parser(
        "ingest", parents=[common], help="ingest STDF files (or folders of them) into Parquet"
    )
    ing.add_argument("paths", nargs="+", metavar="PATH", help="STDF files, folders, or fsspec URLs")
    ing.add_argument("--out", required=True, help="Parquet root: a directory or an fsspec URL")
    ing.add_argument("--catalog-dsn", help="register the files in this catalog ($PARQUETRY_CATALOG_DSN)")
    ing.set_defaults(func=cmd_stdf_ingest)

    co = sub.add_parser("compact", parents=[common], help="compact catalogued datasets (verified, atomic)")
    co.add_argument("--catalog-dsn", help="the catalog database (default: $PARQUETRY_CATALOG_DSN)")
    co.add_argument("--dataset", action="append", help="dataset to compact (repeatable)")
    co.add_argument("--flagged", action="store_true", help="also every dataset the catalog flags")
    co.add_argument("--force", action="store_true", help="rewrite files the policy calls healthy too")
    co.set_defaults(func=cmd_compact)

    catalog_dsn = argparse.ArgumentParser(add_help=False)
    catalog_dsn.add_argument("--catalog-dsn", help="the catalog database (default: $PARQUETRY_CATALOG_DSN)")
    cat = sub.add_parser("catalog", help="the catalog of datasets and their files").add_subparsers(
        dest="catalog_command", required=True
    )
    ds = cat.add_parser(
        "datasets", parents=[common, catalog_dsn], help="every dataset: files, rows, flag, lease"
    )
    ds.set_defaults(func=cmd_catalog_datasets)
    fs = cat.add_parser(
        "files", parents=[common, catalog_dsn], help="a dataset's live files, in the order readers take them"
    )
    fs.add_argument("dataset", metavar="DATASET")
    fs.set_defaults(func=cmd_catalog_files)
    cl = cat.add_parser(
        "cleanup",
        parents=[common, catalog_dsn],
        help="delete files compaction retired more than --grace-s ago, and uncommitted outputs",
    )
    cl.add_argument(
        "--grace-s", type=float, default=3600.0, help="keep retired files this long (default 3600)"
    )
    cl.add_argument("--keep-orphans", action="store_true", help="do not sweep uncommitted outputs")
    cl.set_defaults(func=cmd_catalog_cleanup)

    pg = sub.add_parser("pg", help="a throwaway PostgreSQL server").add_subparsers(
        dest="pg_command", required=True
    )
    start = pg.add_parser(
        "start", parents=[common], help="create (if needed) and start a server in DIR; prints its DSN"
    )
    start.add_argument("dir", metavar="DIR")
    start.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    start.add_argument("--load-sample", action="store_true", help="load the sample database")
    start.add_argument("--scale", type=float, default=0.01, help="sample database scale (default 0.01)")
    start.set_defaults(func=cmd_pg_start)
    stop = pg.add_parser("stop", parents=[common], help="stop the server in DIR (its data stays)")
    stop.add_argument("dir", metavar="DIR")
    stop.set_defaults(func=cmd_pg_stop)
    status = pg.add_parser(
        "status", parents=[common], help="print the DSN of the server in DIR (exit 1 if not running)"
    )
    status.add_argument("dir", metavar="DIR")
    status.set_defaults(func=cmd_pg_status)

    kernels = sub.add_parser(
        "kernels", help="row kernels specialized to table layouts ($PARQUETRY_KERNEL_CACHE)"
    ).add_subparsers(dest="kernels_command", required=True)
    listing = kernels.add_parser("list", parents=[common], help="cached kernels: ready, failed, compiling")
    listing.set_defaults(func=cmd_kernels_list)
    clear = kernels.add_parser("clear", parents=[common], help="remove cached kernels (they compile again)")
    clear.add_argument("--failed", action="store_true", help="only forget failed compiles, to retry them")
    clear.set_defaults(func=cmd_kernels_clear)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _log_to_stderr("interrupted")
        return 130
    except CliError as exc:
        _log_to_stderr(f"parquetry: {exc}")
        return 1
    except Exception as exc:
        # Engine errors name the table, file and byte offset; a traceback adds nothing for an operator.
        if os.environ.get("PARQUETRY_DEBUG"):
            raise
        _log_to_stderr(f"parquetry {args.command}: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
