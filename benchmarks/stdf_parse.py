"""STDF -> Parquet throughput: Parquetry against stdf-convert and pystdf, on one realistic lot.

The lot is generated with ``parquetry.testing.stdf_writer.write_bulk_lot`` (4 sites interleaved,
200 PTR per part, the first PTR of each test with limits and units and later ones truncated after
TEST_TXT, MPR and FTR every few tests, WIR/WRR per 2000 parts) and cached under ``--dir``.

Each engine runs in a fresh process, so its peak RSS is its own:

* ``parquetry``: ``ingest_stdf_file`` (parse, Hive-partitioned Parquet tables, atomic publish);
* ``stdf-convert``: ``stdf_convert.batches`` -> one Parquet file per record type (zstd), if installed;
* ``pystdf``: parse only (no Parquet), on the first ``--pystdf-mb`` MB (it is slow);
* ``parquetry x N``: ``--files`` copies ingested by a process pool over all cores (scaling).

MB/s per core divides the STDF megabytes by the process CPU time (user + system, all threads); the
JSON line's ``stdf_convert_mb_s`` and ``speedup_vs_stdf_convert`` are per core too (the issue's target:
three times stdf-convert per core), ``*_wall`` the same from wall-clock time. Prints a table, then one
JSON line. ``--mb 30`` for a quick run on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def make_lot(directory: Path, mb: float) -> Path:
    from parquetry.testing.stdf_writer import write_bulk_lot

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench_{mb:g}mb_4site_200ptr.stdf"
    done = path.with_suffix(".ok")
    if not (path.exists() and done.exists()):
        started = time.perf_counter()
        lot = write_bulk_lot(path, target_mb=mb, sites=4, tests=200, touchdowns_per_wafer=500)
        done.write_text(json.dumps({"bytes": lot.bytes, "parts": lot.parts, "ptr": lot.ptr_records}))
        print(f"generated {path.name}: {lot.bytes / 1e6:.1f} MB, {lot.parts} parts, {lot.ptr_records} PTR "
              f"in {time.perf_counter() - started:.1f}s", file=sys.stderr)  # fmt: skip
    return path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _warm_parquetry(out: Path) -> None:
    """Load (or compile) the numba kernels outside the timed region."""
    from parquetry.stdf.ingest import ingest_stdf_file
    from parquetry.storage import Storage
    from parquetry.testing.stdf_writer import write_lot

    out.mkdir(parents=True, exist_ok=True)
    tiny = out / "warm.stdf"
    write_lot(tiny, parts=4, tests=3, sites=2)
    ingest_stdf_file(tiny, Storage(str(out / "warm_root")), "warm")


def run_parquetry(path: str, out: str, file_id: str = "bench") -> dict:
    from parquetry.stdf.ingest import ingest_stdf_file
    from parquetry.storage import Storage

    cpu0, t0 = _cpu(), time.perf_counter()
    result = ingest_stdf_file(path, Storage(out), file_id)
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    if not result.ok:
        raise RuntimeError(result.error)
    rows = sum(result.rows.values())
    return {"wall_s": wall, "cpu_s": cpu, "rows": rows, "parquet_bytes": result.parquet_bytes}


def run_stdf_convert(path: str, out: str) -> dict:
    import pyarrow.parquet as pq
    import stdf_convert

    cpu0, t0 = _cpu(), time.perf_counter()
    writers: dict[str, pq.ParquetWriter] = {}
    rows = 0
    for record_type, batch in stdf_convert.batches(path):
        writer = writers.get(record_type)
        if writer is None:
            target = os.path.join(out, f"{record_type}.parquet")
            writer = pq.ParquetWriter(target, batch.schema, compression="zstd", compression_level=3)
            writers[record_type] = writer
        writer.write_batch(batch)
        rows += batch.num_rows
    for writer in writers.values():
        writer.close()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    size = sum(f.stat().st_size for f in Path(out).glob("*.parquet"))
    return {"wall_s": wall, "cpu_s": cpu, "rows": rows, "parquet_bytes": size}


def run_pystdf(path: str, mb: float) -> dict:
    import io

    from pystdf.IO import Parser

    with open(path, "rb") as fh:
        data = fh.read(int(mb * 1e6))
    count = 0

    class Sink:
        def after_send(self, _source: object, _data: object) -> None:
            nonlocal count
            count += 1

    cpu0, t0 = _cpu(), time.perf_counter()
    parser = Parser(inp=io.BytesIO(data))
    parser.addSink(Sink())
    parser.parse()
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - cpu0, "rows": count, "bytes": len(data)}


def _worker(engine: str, path: str, extra: str) -> None:
    """Entry point of the measuring subprocess: prints one JSON line."""
    with tempfile.TemporaryDirectory(prefix=f"stdfbench-{engine}-") as out:
        if engine == "parquetry":
            _warm_parquetry(Path(out))
            baseline = _peak_rss_mb()
            stats = run_parquetry(path, os.path.join(out, "root"))
        elif engine == "stdf-convert":
            baseline = _peak_rss_mb()
            stats = run_stdf_convert(path, out)
        else:
            baseline = _peak_rss_mb()
            stats = run_pystdf(path, float(extra))
        stats["peak_rss_mb"] = _peak_rss_mb()
        stats["baseline_rss_mb"] = baseline
    print(json.dumps(stats))


def measure(engine: str, path: Path, extra: str = "") -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--_worker", engine, str(path), extra or "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pool_job(args: tuple[str, str, str]) -> float:
    path, out, file_id = args
    return run_parquetry(path, out, file_id)["cpu_s"]


def scaling(path: Path, files: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="stdfbench-scale-") as out, ProcessPoolExecutor(workers) as pool:
        list(pool.map(_warm_parquetry, [Path(out) / f"w{i}" for i in range(workers)]))
        t0 = time.perf_counter()
        jobs = [(str(path), os.path.join(out, "root"), f"copy{i:02d}") for i in range(files)]
        cpu = sum(pool.map(_pool_job, jobs))
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_s": cpu, "mb": files * path.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=300.0, help="size of the generated lot in MB")
    parser.add_argument("--files", type=int, default=8, help="copies for the scaling run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pystdf-mb", type=float, default=2.0, help="pystdf parses only this many MB")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "parquetry_bench_stdf"))
    parser.add_argument("--_worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._worker:
        _worker(*args._worker)
        return

    path = make_lot(Path(args.dir), args.mb)
    load_before = os.getloadavg()[0]  # others' work on a shared machine (ours has not started)
    mb = path.stat().st_size / 1e6
    rows = []
    ours = measure("parquetry", path)
    rows.append(("parquetry", mb, ours))
    try:
        import stdf_convert  # noqa: F401

        theirs: dict | None = measure("stdf-convert", path)
        rows.append(("stdf-convert", mb, theirs))
    except ImportError:
        theirs = None
        print("stdf-convert: not installed (pip install stdf-convert)", file=sys.stderr)
    try:
        import pystdf  # noqa: F401

        slow = measure("pystdf", path, str(args.pystdf_mb))
        rows.append(("pystdf (parse only)", slow["bytes"] / 1e6, slow))
    except ImportError:
        print("pystdf: not installed", file=sys.stderr)
    scale = scaling(path, args.files, args.workers)

    print(f"STDF -> Parquet, {mb:.1f} MB lot (4 sites, 200 PTR/part), {args.workers} cores")
    print(f"{'engine':<22}{'MB':>8}{'wall s':>9}{'cpu s':>9}{'MB/s':>9}{'MB/s/core':>11}{'peak RSS MB':>13}")
    for name, size, r in rows:
        print(f"{name:<22}{size:>8.1f}{r['wall_s']:>9.2f}{r['cpu_s']:>9.2f}{size / r['wall_s']:>9.1f}"
              f"{size / r['cpu_s']:>11.1f}{r['peak_rss_mb']:>13.0f}")  # fmt: skip
    single = mb / ours["wall_s"]
    aggregate = scale["mb"] / scale["wall_s"]
    # One ingestion already runs its table writers beside the parser: ``single_cores`` is how many
    # cores it keeps busy, so ``scaling_factor`` (aggregate over one file's wall speed) tops out near
    # cores / single_cores; ``scaling_efficiency`` (aggregate over cores x the per-core speed of one
    # file) is 1.0 for perfectly linear scaling, whatever one file's own parallelism.
    single_cores = ours["cpu_s"] / ours["wall_s"]
    efficiency = aggregate / (args.workers * mb / ours["cpu_s"])
    # CPU time per MB with every core busy over that of one file alone: above 1.0 the files slow each
    # other down (memory bandwidth, caches); near 1.0 any shortfall of ``efficiency`` is waiting for
    # a core, i.e. other work on the machine
    cpu_ratio = (scale["cpu_s"] / scale["mb"]) / (ours["cpu_s"] / mb)
    label = f"parquetry x{args.files}"
    print(f"{label:<22}{scale['mb']:>8.1f}{scale['wall_s']:>9.2f}{'':>9}{aggregate:>9.1f}"
          f"{aggregate / args.workers:>11.1f}{'':>13}  scaling {aggregate / single:.2f}x, "
          f"efficiency {efficiency:.2f} (one file keeps {single_cores:.2f} cores busy; "
          f"CPU per MB x{cpu_ratio:.2f} of one file alone)")  # fmt: skip
    mb_s_per_core = mb / ours["cpu_s"]
    their_per_core = mb / theirs["cpu_s"] if theirs else None
    their_wall = mb / theirs["wall_s"] if theirs else None
    print(json.dumps({
        "mb": round(mb, 1),
        "mb_s_per_core": round(mb_s_per_core, 1),
        "mb_s_wall": round(single, 1),
        "stdf_convert_mb_s": round(their_per_core, 1) if their_per_core else None,
        "stdf_convert_mb_s_wall": round(their_wall, 1) if their_wall else None,
        "speedup_vs_stdf_convert": round(mb_s_per_core / their_per_core, 2) if their_per_core else None,
        "speedup_wall": round(single / their_wall, 2) if their_wall else None,
        "peak_rss_mb": round(ours["peak_rss_mb"], 0),
        "scaling_mb_s": round(aggregate, 1),
        "scaling_factor": round(aggregate / single, 2),
        "scaling_efficiency": round(efficiency, 2),
        "single_file_cores": round(single_cores, 2),
        "scaling_cpu_per_mb_ratio": round(cpu_ratio, 2),
        "load_avg_before": round(load_before, 2),
        "cores": args.workers,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
