"""Compaction's stages one by one, beside polars' read and write of the same fragmented inputs.

``benchmarks/compaction.py`` times whole compactions. This script times the parts a compaction of the
fragmented case is made of, each alone, to show where a verified compaction's CPU goes and what the
cheapest possible one would cost with the codec Parquetry uses:

* ``polars-compaction``: ``scan_parquet(...).sink_parquet(...)``, the best peer in ``compaction.py``;
* ``polars-read`` / ``polars-write``: its two halves, collecting the inputs into memory, then writing them;
* ``footers``: Parquetry's planning step, every input's footer parsed (one thread, as the compactor does);
* ``read-1-thread`` / ``read-2-threads``: decoding every input row group with pyarrow, as the
  compactor's reader opens them (from the footers parsed at planning), in one thread and in the
  reader's two;
* ``encode``: the decoded rows written as 1 M-row row groups by ``compact.writer.write_row_groups``
  with the compactor's settings (one encoding thread, the default on two cores);
* ``input-hash``: the input rows' digest (``compact.verify.RowDigest``), one table per input row group;
* ``read-back``: the written file decoded and hashed by DuckDB, as verification reads an output back.

Every stage runs in its own subprocess pinned to ``--cores`` cores, with its inputs prepared before the
clock starts, interleaved for ``--rounds`` rounds; medians are reported. The last table row adds up the
stages a verified compaction cannot skip (footers, a two-thread read, encode, input hash, read-back) and
compares that sum with polars' whole compaction, in CPU seconds: on two busy cores wall time follows CPU.
Prints a table, then one JSON line.

    .venv/bin/python benchmarks/compaction_stages.py --work /tmp/compaction-bench --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import compaction as bench

STAGES = (
    "polars-compaction",
    "polars-read",
    "polars-write",
    "footers",
    "read-1-thread",
    "read-2-threads",
    "encode",
    "input-hash",
    "read-back",
)
# What a verified compaction of the fragmented case does at the least, with pyarrow as its codec.
FLOOR = ("footers", "read-2-threads", "encode", "input-hash", "read-back")


def _read_all(files: list[str], footers: list[Any], threads: int) -> list[Any]:
    """Every row group of ``files``, decoded the way the compactor's reader opens an input: from the
    footer parsed at planning (``footers``, in ``files`` order)."""
    from parquetry.compact.reader import open_parquet
    from parquetry.storage import Storage

    storage = Storage("/")
    metadata = {path: footer for path, (footer, _) in zip(files, footers, strict=True)}

    def one(path: str) -> list[Any]:
        pf = open_parquet(storage, path, metadata[path])
        try:
            return [pf.read_row_group(r, use_threads=False) for r in range(pf.metadata.num_row_groups)]
        finally:
            pf.close()

    if threads == 1:
        return [t for f in files for t in one(f)]
    with ThreadPoolExecutor(threads) as pool:
        return [t for tables in pool.map(one, files) for t in tables]


def _encoded_path(work: Path) -> Path:
    return work / "stages" / "encoded.parquet"


def _encode(work: Path, tables: list[Any]) -> None:
    import pyarrow as pa

    from parquetry.compact import CompactionSettings
    from parquetry.compact.writer import write_row_groups
    from parquetry.storage import Storage

    settings = CompactionSettings(compression_level=bench.ZSTD_LEVEL)
    table = pa.concat_tables(tables)
    rows = bench.ROW_GROUP_ROWS
    groups = [table.slice(i, rows) for i in range(0, table.num_rows, rows)]
    options = settings.parquet_options(rows, table.num_rows)
    storage = Storage(str(_encoded_path(work).parent))
    write_row_groups(
        storage,
        storage.path(_encoded_path(work).name),
        groups,
        table.schema,
        options,
        settings.delta_integers,
        threads=settings.resolved_encode_threads(),
    )


def stage(name: str, work: Path, cores: int) -> dict[str, Any]:
    """Run one stage in this process; returns its wall and CPU seconds (setup excluded)."""
    bench._pin(cores)
    files = bench._inputs(work / "fragmented")
    import importlib.util

    import polars as pl

    from parquetry.compact.reader import read_footers
    from parquetry.compact.verify import RowDigest, warm_up
    from parquetry.storage import Storage

    warm_up()  # DuckDB's database is created off the critical path in a compaction too
    if importlib.util.find_spec("pandas") is not None:
        __import__("pandas")  # DuckDB imports it on its first Arrow table (see compaction.py's worker)
    ready: Any = None
    decodes = name in ("read-1-thread", "read-2-threads", "encode", "input-hash")
    footers = read_footers(Storage("/"), files, threads=cores) if decodes else []
    if name == "polars-write":
        ready = pl.scan_parquet(files).collect()
    elif name in ("encode", "input-hash"):
        ready = _read_all(files, footers, cores)
    out = tempfile.mkdtemp(dir=work)

    started, cpu = time.perf_counter(), bench._cpu_s()
    if name == "polars-compaction":
        pl.scan_parquet(files).sink_parquet(
            os.path.join(out, "part-0.parquet"),
            compression="zstd",
            compression_level=bench.ZSTD_LEVEL,
            row_group_size=bench.ROW_GROUP_ROWS,
        )
    elif name == "polars-read":
        pl.scan_parquet(files).collect()
    elif name == "polars-write":
        ready.write_parquet(
            os.path.join(out, "part-0.parquet"),
            compression="zstd",
            compression_level=bench.ZSTD_LEVEL,
            row_group_size=bench.ROW_GROUP_ROWS,
        )
    elif name == "footers":
        read_footers(Storage("/"), files, threads=1)
    elif name == "read-1-thread":
        _read_all(files, footers, 1)
    elif name == "read-2-threads":
        _read_all(files, footers, 2)
    elif name == "encode":
        _encode(work, ready)
    elif name == "input-hash":
        digest = RowDigest()
        for table in ready:
            digest.update(table)
        digest.flush()
    elif name == "read-back":
        RowDigest(threads=cores).add_parquet(str(_encoded_path(work)))
    else:
        raise SystemExit(f"unknown stage {name}")
    result = {"seconds": time.perf_counter() - started, "cpu_s": bench._cpu_s() - cpu}
    for path in Path(out).glob("*"):
        path.unlink()
    os.rmdir(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_work = Path(tempfile.gettempdir()) / "parquetry-compaction-bench"
    parser.add_argument("--work", type=Path, default=default_work)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)  # one stage, in a subprocess
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.work, args.cores)))
        return

    bench.build(args.work, 1.0, 1_000_000, args.cores, {"fragmented"})
    _encoded_path(args.work).parent.mkdir(parents=True, exist_ok=True)
    if not _encoded_path(args.work).exists():  # read-back's input, before the first round
        _run("encode", args)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in STAGES}
    for _ in range(args.rounds):
        for name in STAGES:
            runs[name].append(_run(name, args))
    load_after = os.getloadavg()[0]

    medians = {
        name: {
            "seconds": round(statistics.median(r["seconds"] for r in rs), 3),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in rs), 3),
        }
        for name, rs in runs.items()
    }
    floor_cpu = round(sum(medians[name]["cpu_s"] for name in FLOOR), 3)
    polars_cpu = medians["polars-compaction"]["cpu_s"]
    print(f"fragmented inputs, 2,000 files x 5,000 rows; {args.cores} cores; median of {args.rounds} rounds")
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after")
    print(f"{'stage':<34}{'wall s':>8}{'CPU s':>8}")
    for name in STAGES:
        print(f"{name:<34}{medians[name]['seconds']:>8.2f}{medians[name]['cpu_s']:>8.2f}")
    print(f"{'verified floor (' + ' + '.join(FLOOR) + ')':<34}{'':>8}{floor_cpu:>8.2f}")
    print(f"{'  against polars-compaction':<34}{'':>8}{floor_cpu / polars_cpu:>7.2f}x")
    print(
        json.dumps(
            {
                "cores": args.cores,
                "rounds": args.rounds,
                "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
                "stages": medians,
                "verified_floor_cpu_s": floor_cpu,
                "polars_compaction_cpu_s": polars_cpu,
                "floor_to_polars": round(floor_cpu / polars_cpu, 3),
            }
        )
    )


def _run(name: str, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--stage", name, "--work", str(args.work), "--cores", str(args.cores)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"stage {name} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
