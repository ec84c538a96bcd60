"""Compaction benchmark: Parquetry against polars, DuckDB, pyarrow datasets, delta-rs and a byte copy.

Builds its own inputs under a work directory:

* fragmented: 2,000 files x 5,000 rows of mixed types (``--scale`` multiplies the file count);
* healthy: 30 files of one 1,000,000-row row group each (``--scale`` multiplies the file count,
  ``--healthy-rows`` sets the rows per file).

Each engine runs in its own subprocess pinned to ``--cores`` cores, so its peak RSS is its own, and is
timed the same way: the wall and CPU seconds of the whole operation inside that process, imports
excluded. Every engine writes zstd level 3 with 1,000,000-row row groups. Parquetry's time covers
planning from the catalog, writing, full verification (every re-encoded output row read back and hashed)
and the catalog commit, but not the benchmark's registration of the dataset (setup, like delta-rs's
conversion); the peers only read and write.

The machine may be shared, so the engines run interleaved for ``--rounds`` rounds (each round runs every
engine once, in turn) and the table reports each engine's median, with the load average before and after.
Prints a table, then one JSON line.

The ``encode`` case (``--cases encode``, in the default set) times Parquetry's re-encoding stage alone:
the fragmented inputs' first 4 M rows, decoded into memory as 1 M-row row groups, written by
``compact.writer.write_row_groups`` with one encoding thread and with ``--cores`` threads, interleaved.
It shows how the stage scales with cores when reading and verification have cores of their own (on two
cores the whole compaction is CPU-bound, so the end-to-end time does not show it).

``--baseline DIR`` adds ``parquetry-baseline``: the same runs with the ``parquetry`` package found in DIR
(another version, e.g. ``git archive HEAD parquetry | tar -x -C DIR``), interleaved with the others, for
before/after comparisons on a shared machine.

    .venv/bin/python benchmarks/compaction.py --scale 0.05
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROW_GROUP_ROWS = 1_000_000
TARGET_FILE_ROWS = 8_000_000
ZSTD_LEVEL = 3


def _pin(cores: int) -> None:
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(available[:cores]))
    os.environ["POLARS_MAX_THREADS"] = str(cores)
    import pyarrow as pa

    pa.set_cpu_count(cores)
    pa.set_io_thread_count(max(cores, 2))


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss it does not inherit the parent's peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process, all threads: steadier than wall time on a busy machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _inputs(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.glob("*.parquet"))


def worker(
    engine: str, case: str, work: Path, out: Path, dsn: str | None, cores: int, dataset: str | None = None
) -> dict[str, Any]:
    """Run one engine once; returns its seconds and peak RSS."""
    _pin(cores)
    src = work / case
    files = _inputs(src)
    out.mkdir(parents=True, exist_ok=True)
    for module in {
        "polars": ["polars"],
        "duckdb": ["duckdb"],
        "pyarrow": ["pyarrow.dataset"],
        "deltalake": ["deltalake"],
    }.get(engine, ["parquetry.compact", "duckdb", "psycopg"]):
        __import__(module)  # import time is not compaction time, for any engine
    if engine.startswith("parquetry") and importlib.util.find_spec("pandas") is not None:
        # pyarrow and DuckDB import pandas, where it is installed, the first time they are handed Python
        # objects (DuckDB's register, pyarrow's array): half a CPU-second of import inside the timing,
        # paid once per process. Parquetry does not use pandas; it is imported here with the rest.
        __import__("pandas")
    started = time.perf_counter()
    cpu_started = _cpu_s()
    extra: dict[str, Any] = {}
    if engine.startswith("parquetry"):
        import parquetry

        extra["package"] = str(Path(parquetry.__file__).parent.parent)
        from parquetry.catalog import Catalog, FragmentationPolicy
        from parquetry.compact import CompactionSettings, Compactor

        catalog = Catalog(dsn or "", policy=FragmentationPolicy())
        settings = CompactionSettings(
            row_group_rows=ROW_GROUP_ROWS,
            target_file_rows=TARGET_FILE_ROWS,
            force=engine == "parquetry-forced",
        )
        result = Compactor(catalog, settings).run(dataset or f"{case}-{engine}")
        extra = {
            **extra,
            "status": result.status,
            "files_after": result.files_after,
            "verified": result.verification.get("verified", False),
        }
    elif engine == "polars":
        import polars as pl

        pl.scan_parquet(files).sink_parquet(
            out / "part-0.parquet",
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            row_group_size=ROW_GROUP_ROWS,
        )
    elif engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {cores}")
        con.execute(
            "COPY (SELECT * FROM read_parquet($files)) TO '"
            + str(out / "part-0.parquet").replace("'", "''")
            + f"' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL},"
            + f" ROW_GROUP_SIZE {ROW_GROUP_ROWS})",
            {"files": files},
        )
    elif engine == "pyarrow":
        import pyarrow.dataset as ds

        ds.write_dataset(
            ds.dataset(files, format="parquet"),
            out,
            format="parquet",
            min_rows_per_group=ROW_GROUP_ROWS,
            max_rows_per_group=ROW_GROUP_ROWS,
            max_rows_per_file=TARGET_FILE_ROWS,
            existing_data_behavior="overwrite_or_ignore",
            file_options=ds.ParquetFileFormat().make_write_options(
                compression="zstd", compression_level=ZSTD_LEVEL
            ),
        )
    elif engine == "deltalake":
        from deltalake import DeltaTable, WriterProperties

        metrics = DeltaTable(str(work / f"{case}-delta")).optimize.compact(
            target_size=256 << 20,
            max_concurrent_tasks=cores,
            writer_properties=WriterProperties(
                compression="ZSTD", compression_level=ZSTD_LEVEL, max_row_group_size=ROW_GROUP_ROWS
            ),
        )
        extra = {"files_after": metrics.get("numFilesAdded")}
    elif engine == "byte-copy":
        for f in files:
            shutil.copyfile(f, out / Path(f).name)
    else:
        raise SystemExit(f"unknown engine {engine}")
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": round(_cpu_s() - cpu_started, 2),
        "peak_rss_mb": _peak_rss_mb(),
        **extra,
    }


def build(work: Path, scale: float, healthy_rows: int, cores: int, cases: set[str]) -> dict[str, int]:
    """Write the two input datasets (and a delta-rs copy of each) unless they are there already."""
    from parquetry.storage import ParquetOptions, Storage
    from parquetry.testing.compaction import write_files

    _pin(cores)
    frag_files = max(4, round(2000 * scale))
    healthy_files = max(2, round(30 * scale))
    plan = {"fragmented": (frag_files, 5000), "healthy": (healthy_files, healthy_rows)}
    for case, (count, rows) in plan.items():
        if case not in cases and not (case == "fragmented" and "encode" in cases):
            continue
        target = work / case
        marker = target / f".built-{count}-{rows}"
        if not marker.exists():
            shutil.rmtree(target, ignore_errors=True)
            write_files(
                Storage(str(target)),
                "",
                files=count,
                rows_per_file=rows,
                options=ParquetOptions(row_group_rows=rows),
            )
            marker.touch()
    return {case: count for case, (count, _) in plan.items()}


def register(work: Path, dsn: str, case: str, engine: str, round_: int = 0) -> str:
    """A fresh copy of the case's files, registered as a new dataset (one per round); returns its name."""
    from parquetry.catalog import Catalog
    from parquetry.storage import Storage

    storage = Storage(str(work / f"{case}-{engine}"))
    shutil.rmtree(storage.base, ignore_errors=True)
    shutil.copytree(work / case, storage.base, ignore=shutil.ignore_patterns(".built-*"))
    written = []
    import pyarrow.parquet as pq

    from parquetry.storage import WrittenFile

    for path in storage.list_files(storage.base):
        meta = pq.read_metadata(path)
        digest, size = storage.file_digest(path)
        written.append(WrittenFile(path, size, meta.num_rows, meta.num_row_groups, digest))
    catalog = Catalog(dsn)
    catalog.migrate()
    dataset = f"{case}-{engine}-{round_}"
    catalog.register_files(dataset, storage.root, written, pq.read_schema(written[0].path))
    return dataset


def encode_stage(work: Path, cores: int, rounds: int) -> dict[str, Any]:
    """Median wall seconds of re-encoding the same row groups with 1 and ``cores`` encoding threads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from parquetry.compact import CompactionSettings
    from parquetry.compact.writer import write_row_groups
    from parquetry.storage import Storage

    _pin(cores)
    files = _inputs(work / "fragmented")[:800]
    table = pa.concat_tables([pq.read_table(f) for f in files])
    groups = [table.slice(i, ROW_GROUP_ROWS) for i in range(0, table.num_rows, ROW_GROUP_ROWS)]
    options = CompactionSettings(compression_level=ZSTD_LEVEL).parquet_options(ROW_GROUP_ROWS, table.num_rows)
    walls: dict[int, list[float]] = {1: [], cores: []}
    cpus: dict[int, list[float]] = {1: [], cores: []}
    with tempfile.TemporaryDirectory(dir=work) as out:
        storage = Storage(out)
        for _ in range(rounds):
            for threads in walls:
                started, cpu = time.perf_counter(), _cpu_s()
                path = storage.path(f"encode-{threads}.parquet")
                write_row_groups(storage, path, groups, table.schema, options, True, threads=threads)
                walls[threads].append(time.perf_counter() - started)
                cpus[threads].append(_cpu_s() - cpu)
    serial, parallel = statistics.median(walls[1]), statistics.median(walls[cores])
    return {
        "rows": table.num_rows,
        "row_groups": len(groups),
        "threads": cores,
        "serial_s": round(serial, 3),
        "parallel_s": round(parallel, 3),
        "serial_cpu_s": round(statistics.median(cpus[1]), 3),
        "parallel_cpu_s": round(statistics.median(cpus[cores]), 3),
        "speedup": round(serial / parallel, 2),
    }


def prepare_delta(work: Path, case: str) -> bool:
    try:
        from deltalake import convert_to_deltalake
    except ImportError:
        return False
    target = work / f"{case}-delta"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work / case, target, ignore=shutil.ignore_patterns(".built-*"))
    convert_to_deltalake(str(target))
    return True


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_engine(
    engine: str,
    case: str,
    work: Path,
    dsn: str,
    cores: int,
    dataset: str | None = None,
    baseline: Path | None = None,
) -> dict[str, Any]:
    out = work / "out" / f"{case}-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        engine,
        "--case",
        case,
        "--work",
        str(work),
        "--out",
        str(out),
        "--dsn",
        dsn,
        "--cores",
        str(cores),
        *(["--dataset", dataset] if dataset else []),
    ]
    env = dict(os.environ)
    if engine == "parquetry-baseline" and baseline is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(baseline), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One engine's rounds: median wall and CPU seconds, the largest peak RSS, every wall time."""
    errors = [r for r in runs if "error" in r]
    if errors:
        return errors[0]
    out = dict(runs[-1])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["cpu_s"] = round(statistics.median(r["cpu_s"] for r in runs), 2)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    if len(runs) > 1:
        out["walls"] = "/".join(f"{r['seconds']:.2f}" for r in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--healthy-rows", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="where inputs are built (kept for re-runs)")
    parser.add_argument("--dsn", default=None, help="catalog database (default: a throwaway PostgreSQL)")
    parser.add_argument(
        "--cases", default="fragmented,healthy,encode", help="which cases to run (comma-separated)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--baseline", type=Path, default=None, help="a tree holding another parquetry")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(
            json.dumps(
                worker(args.worker, args.case, args.work, args.out, args.dsn, args.cores, args.dataset)
            )
        )
        return

    work = args.work or Path(tempfile.gettempdir()) / "parquetry-bench-compaction"
    work.mkdir(parents=True, exist_ok=True)
    cases = set(args.cases.split(","))
    counts = build(work, args.scale, args.healthy_rows, args.cores, cases)
    cluster = None
    dsn = args.dsn
    if dsn is None:
        from parquetry.pg.cluster import PostgresCluster

        cluster = PostgresCluster().start()
        dsn = cluster.dsn()
    try:
        runs: dict[str, list[dict[str, Any]]] = {}
        plans = {
            "fragmented": ["parquetry", "polars", "duckdb", "pyarrow", "deltalake", "byte-copy"],
            "healthy": ["parquetry", "parquetry-forced", "byte-copy"],
        }
        if args.baseline is not None:
            if not (args.baseline / "parquetry" / "__init__.py").exists():
                raise SystemExit(f"{args.baseline}: no parquetry package there")
            for engines in plans.values():
                engines.insert(1, "parquetry-baseline")
        load_before = os.getloadavg()
        for case, engines in plans.items():
            if case not in cases:
                continue
            for round_ in range(max(1, args.rounds)):
                for engine in engines:
                    key = f"{case}/{engine}"
                    module = {"polars": "polars", "deltalake": "deltalake"}.get(engine)
                    if module and not installed(module):
                        runs[key] = [{"error": "not installed"}]
                        continue
                    dataset = None
                    if engine.startswith("parquetry"):
                        dataset = register(work, dsn, case, engine, round_)
                    if engine == "deltalake":
                        prepare_delta(work, case)
                    result = run_engine(engine, case, work, dsn, args.cores, dataset, args.baseline)
                    runs.setdefault(key, []).append(result)
    finally:
        if cluster is not None:
            cluster.stop()
    encode = encode_stage(work, args.cores, max(1, args.rounds)) if "encode" in cases else None
    load_after = os.getloadavg()
    results = {key: summarize(r) for key, r in runs.items()}

    rows_per_file = {"fragmented": 5000, "healthy": args.healthy_rows}
    built = [f"{case} {counts[case]} files x {rows_per_file[case]} rows" for case in counts if case in cases]
    if encode:
        built.append(f"encode {encode['rows']} rows in {encode['row_groups']} row groups")
    rounds = max(1, args.rounds)
    print("inputs: " + "; ".join(built) + f"; {args.cores} cores; median of {rounds} interleaved rounds")
    load = f"load average (1/5/15 min) {'/'.join(f'{x:.2f}' for x in load_before)} before,"
    print(f"{load} {'/'.join(f'{x:.2f}' for x in load_after)} after")
    print(f"{'case/engine':<28} {'wall s':>8} {'CPU s':>7} {'peak RSS MB':>12}  notes")
    for key, r in results.items():
        if "error" in r:
            print(f"{key:<28} {'-':>8} {'-':>7} {'-':>12}  {r['error']}")
            continue
        hidden = ("seconds", "cpu_s", "peak_rss_mb", "package")
        notes = ", ".join(f"{k}={v}" for k, v in r.items() if k not in hidden)
        print(f"{key:<28} {r['seconds']:>8.2f} {r['cpu_s']:>7.2f} {r['peak_rss_mb']:>12.0f}  {notes}")
    if encode:
        for label, wall, cpu in (
            ("encode/1 thread", encode["serial_s"], encode["serial_cpu_s"]),
            (f"encode/{encode['threads']} threads", encode["parallel_s"], encode["parallel_cpu_s"]),
        ):
            print(f"{label:<28} {wall:>8.2f} {cpu:>7.2f} {'-':>12}  re-encoding stage alone")

    def seconds(key: str) -> float | None:
        r = results.get(key, {})
        return r.get("seconds")

    peers = [s for k in ("polars", "duckdb", "pyarrow", "deltalake") if (s := seconds(f"fragmented/{k}"))]
    frag = seconds("fragmented/parquetry")
    best = min(peers) if peers else None
    healthy = seconds("healthy/parquetry")
    forced = seconds("healthy/parquetry-forced")
    copy = seconds("healthy/byte-copy")
    summary = {
        "cores": args.cores,
        "scale": args.scale,
        "rounds": rounds,
        "load_avg_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "fragmented": {
            "parquetry_s": frag,
            "best_peer_s": best,
            "speedup": round(best / frag, 3) if frag and best else None,
            "parquetry_cpu_s": results.get("fragmented/parquetry", {}).get("cpu_s"),
            "best_peer_cpu_s": min(
                (
                    c
                    for k in ("polars", "duckdb", "pyarrow", "deltalake")
                    if (c := results.get(f"fragmented/{k}", {}).get("cpu_s"))
                ),
                default=None,
            ),
            "peak_rss_mb": results.get("fragmented/parquetry", {}).get("peak_rss_mb"),
        },
        "healthy": {
            "parquetry_s": healthy,
            "byte_copy_s": copy,
            "ratio_to_copy": round(healthy / copy, 3) if healthy and copy else None,
            "parquetry_forced_s": forced,
            "forced_ratio_to_copy": round(forced / copy, 3) if forced and copy else None,
        },
    }
    if encode:
        summary["encode_stage"] = encode
    if args.baseline is not None:
        base_frag = seconds("fragmented/parquetry-baseline")
        base_healthy = seconds("healthy/parquetry-baseline")
        summary["baseline"] = {
            "fragmented_s": base_frag,
            "fragmented_cpu_s": results.get("fragmented/parquetry-baseline", {}).get("cpu_s"),
            "fragmented_speedup_vs_baseline": round(base_frag / frag, 3) if frag and base_frag else None,
            "healthy_s": base_healthy,
            "healthy_ratio_to_copy": round(base_healthy / copy, 3) if base_healthy and copy else None,
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
