"""Test-fixture speed: build a 1 M-row, three-table snapshot and restore it.

Targets (2 cores): build < 10 s (generate + binary COPY + keys + ANALYZE + template), restore < 1 s
(``CREATE DATABASE ... TEMPLATE``). Also reports the binary COPY encoder's throughput on its own.
The cluster lives where the test plugin puts it (``/dev/shm`` when roomy); ``--base-dir`` moves it.

    .venv/bin/python benchmarks/fixtures.py [--rows 1000000] [--repeat 3]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from parquetry.pg.cluster import PostgresCluster, fast_tmp_root
from parquetry.pgcopy.encode import encode_copy_binary
from parquetry.sample_db import _customers, _orders_and_items, load_sample_database
from parquetry.testing.snapshots import SnapshotSpec, SnapshotStore

ROWS_AT_SCALE_1 = 10_000 + 100_000 + 300_000  # customers + orders + ~3 items per order
BUILD_TARGET_S = 10.0
RESTORE_TARGET_S = 1.0


def _encode_throughput(rows: int) -> tuple[int, float]:
    """Seconds to encode ``rows`` order items (7 mixed columns), best of three."""
    n_orders = max(1, rows // 3)
    _, items = _orders_and_items(n_orders, max(1, n_orders // 10), seed=0)
    types = ["int8", "int2", "text", "int4", "numeric(10,2)", "float8", "date"]
    encode_copy_binary(items.slice(0, 10), types)  # load the compiled kernels
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        encode_copy_binary(items, types)
        best = min(best, time.perf_counter() - started)
    return items.num_rows, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows across the three tables")
    parser.add_argument("--repeat", type=int, default=3, help="restores per strategy")
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=fast_tmp_root(),
        help="where the cluster's temporary directory goes (default: as the test plugin, /dev/shm if roomy)",
    )
    args = parser.parse_args()
    scale = args.rows / ROWS_AT_SCALE_1
    # Per-process costs (imports, loading the compiled encoder kernels) stay out of the timed build.
    encode_copy_binary(_customers(10, 0), ["int8", "text", "text", "text", "timestamptz", "numeric", "bool"])

    counts: dict[str, int] = {}

    def build(dsn: str) -> None:
        counts.update(load_sample_database(dsn, scale=scale, seed=0))

    results: dict[str, float] = {}
    with PostgresCluster(tmp_root=args.base_dir) as pg:
        store = SnapshotStore(pg)
        spec = SnapshotSpec(f"bench_{args.rows}_{os.getpid()}", build)
        started = time.perf_counter()
        store.template(spec)
        results["build_s"] = time.perf_counter() - started
        for strategy in ("file_copy", "wal_log"):
            store.strategy = strategy
            times = []
            for i in range(args.repeat):
                started = time.perf_counter()
                dsn = store.clone(spec, f"restore_{strategy}_{i}")
                times.append(time.perf_counter() - started)
                with psycopg.connect(dsn) as conn:
                    restored = conn.execute("SELECT count(*) FROM order_items").fetchone()[0]
                if restored != counts["order_items"]:
                    raise SystemExit(
                        f"restored clone holds {restored} order items, expected {counts['order_items']}"
                    )
                store.drop(dsn)
            results[f"restore_{strategy}_s"] = statistics.median(times)
        with psycopg.connect(pg.dsn()) as conn:
            size_mb = conn.execute(
                "SELECT pg_database_size(%s) / 1048576.0", (spec.template_name,)
            ).fetchone()[0]
    encode_rows, encode_s = _encode_throughput(min(args.rows, 1_000_000))

    rows = sum(counts.values())
    restore_s = min(results["restore_file_copy_s"], results["restore_wal_log_s"])
    targets_met = results["build_s"] < BUILD_TARGET_S and restore_s < RESTORE_TARGET_S
    lines = [
        ("rows (customers/orders/items)", f"{rows:,}", str(counts)),
        ("build snapshot (s)", f"{results['build_s']:.2f}", f"< {BUILD_TARGET_S}"),
        ("restore, STRATEGY file_copy (s)", f"{results['restore_file_copy_s']:.3f}", f"< {RESTORE_TARGET_S}"),
        ("restore, STRATEGY wal_log (s)", f"{results['restore_wal_log_s']:.3f}", f"< {RESTORE_TARGET_S}"),
        (f"encode {encode_rows:,} item rows (s)", f"{encode_s:.3f}", ""),
        ("snapshot size (MiB)", f"{size_mb:.0f}", ""),
    ]
    print(f"{'measure':<34}{'value':>12}  target")
    for label, value, target in lines:
        print(f"{label:<34}{value:>12}  {target}")
    print(f"hardware: 2 cores (shared); cluster under {args.base_dir or tempfile.gettempdir()}")
    print(
        json.dumps(
            {
                "rows": rows,
                "build_s": round(results["build_s"], 3),
                "restore_s": round(restore_s, 3),
                "restore_file_copy_s": round(results["restore_file_copy_s"], 3),
                "restore_wal_log_s": round(results["restore_wal_log_s"], 3),
                "encode_rows": encode_rows,
                "encode_s": round(encode_s, 3),
                "snapshot_mib": round(float(size_mb)),
                "targets_met": targets_met,
                "hardware": "2 cores",
            }
        )
    )


if __name__ == "__main__":
    main()
