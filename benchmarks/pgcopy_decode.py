"""Throughput of the CPU COPY BINARY decoder on a TPC-H lineitem-like row mix.

Builds a stream with the reference encoder (a few thousand distinct rows, repeated to the target size),
then times ``decode_copy_binary`` and a split-fed ``CopyDecoder`` (the one-pass decoder, generic row
kernel), the same whole-stream decode with the row kernel specialized to the layout (``pgcopy.rowspec``,
compiled or loaded from the kernel cache during the warm-up), and the two-pass reference decoder
(``one_pass=False``), after one warm-up run (JIT compile and cache load excluded). Prints a table, then
one JSON line.

    .venv/bin/python benchmarks/pgcopy_decode.py [--mb 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import random
import time

from parquetry.pgcopy.decode import CopyDecoder, decode_copy_binary
from parquetry.pgcopy.types import PgColumn
from parquetry.testing.copy_reference import TRAILER, encode_row, header


def _num(p: int, s: int) -> int:
    return (p << 16 | s) + 4


LINEITEM = [
    PgColumn("l_orderkey", 20, "bigint"),
    PgColumn("l_partkey", 23, "integer"),
    PgColumn("l_suppkey", 23, "integer"),
    PgColumn("l_linenumber", 23, "integer"),
    PgColumn("l_quantity", 1700, "numeric(15,2)", _num(15, 2)),
    PgColumn("l_extendedprice", 1700, "numeric(15,2)", _num(15, 2)),
    PgColumn("l_discount", 1700, "numeric(15,2)", _num(15, 2)),
    PgColumn("l_tax", 1700, "numeric(15,2)", _num(15, 2)),
    PgColumn("l_returnflag", 1042, "character(1)", 5),
    PgColumn("l_linestatus", 1042, "character(1)", 5),
    PgColumn("l_shipdate", 1082, "date"),
    PgColumn("l_commitdate", 1082, "date"),
    PgColumn("l_receiptdate", 1082, "date"),
    PgColumn("l_shipinstruct", 1042, "character(25)", 29),
    PgColumn("l_shipmode", 1042, "character(10)", 14),
    PgColumn("l_comment", 1043, "character varying(44)", 48),
]


def lineitem_rows(n: int, seed: int = 1) -> list[tuple]:
    rng = random.Random(seed)
    words = [
        "furiously",
        "quickly",
        "carefully",
        "final",
        "ironic",
        "regular",
        "pending",
        "express",
        "blithely",
        "bold",
    ]
    base = dt.date(1992, 1, 1)
    rows = []
    for i in range(n):
        ship = base + dt.timedelta(days=rng.randrange(2500))
        rows.append(
            (
                i // 4 + 1, rng.randrange(200000), rng.randrange(10000), i % 7 + 1,
                decimal.Decimal(rng.randrange(100, 5100)).scaleb(-2),
                decimal.Decimal(rng.randrange(90000, 10500000)).scaleb(-2),
                decimal.Decimal(rng.randrange(11)).scaleb(-2), decimal.Decimal(rng.randrange(9)).scaleb(-2),
                rng.choice("RAN"), rng.choice("OF"), ship, ship + dt.timedelta(days=30),
                ship + dt.timedelta(days=rng.randrange(1, 31)),
                rng.choice(["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]).ljust(25),
                rng.choice(["AIR", "MAIL", "SHIP", "TRUCK", "RAIL", "FOB", "REG AIR"]).ljust(10),
                " ".join(rng.choice(words) for _ in range(rng.randrange(2, 6)))[:44],
            )
        )  # fmt: skip
    return rows


def build_stream(target_mb: float) -> tuple[bytes, int]:
    block_rows = lineitem_rows(4096)
    block = b"".join(encode_row(LINEITEM, r) for r in block_rows)
    reps = max(1, int(target_mb * 1e6 / len(block)))
    return header() + block * reps + TRAILER, len(block_rows) * reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=64.0, help="stream size in MB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-kb", type=int, default=1024, help="feed size for the streaming run")
    args = parser.parse_args()

    data, nrows = build_stream(args.mb)
    warm = build_stream(0.1)[0]
    os.environ["PARQUETRY_ROW_KERNELS"] = "sync"
    decode_copy_binary(warm, LINEITEM)  # warm-up: JIT compile or cache load (specialized kernel too)
    os.environ["PARQUETRY_ROW_KERNELS"] = "generic"
    decode_copy_binary(warm, LINEITEM)
    decode_copy_binary(warm, LINEITEM, one_pass=False)
    results = []
    for mode in ("whole", "specialized", "streamed", "two-pass"):
        os.environ["PARQUETRY_ROW_KERNELS"] = "sync" if mode == "specialized" else "generic"
        best = best_cpu = float("inf")
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            if mode in ("whole", "specialized", "two-pass"):
                table = decode_copy_binary(data, LINEITEM, one_pass=mode != "two-pass")
            else:
                decoder = CopyDecoder(LINEITEM, batch_rows=65536)
                step = args.chunk_kb * 1024
                mv = memoryview(data)
                batches = []
                for off in range(0, len(data), step):
                    batches += decoder.feed(mv[off : off + step])
                batches += decoder.finish()
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        rows_out = sum(b.num_rows for b in batches) if mode == "streamed" else table.num_rows
        assert rows_out == nrows
        results.append({"mode": mode, "seconds": best, "cpu_seconds": best_cpu,
                        "mb_per_s": len(data) / best / 1e6, "mb_per_cpu_s": len(data) / best_cpu / 1e6,
                        "rows_per_s": nrows / best})  # fmt: skip

    cores = os.cpu_count()
    print(
        f"lineitem-like COPY BINARY decode, {len(data) / 1e6:.1f} MB, {nrows} rows, 1 thread, {cores} cores"
    )
    print("(MB/cpu-s: bytes per second of this process's CPU time, robust to other load on the machine)")
    print(f"{'mode':<11} {'wall s':>8} {'cpu s':>8} {'MB/s':>8} {'MB/cpu-s':>9} {'Mrows/s':>8}")
    for r in results:
        print(
            f"{r['mode']:<11} {r['seconds']:>8.3f} {r['cpu_seconds']:>8.3f} {r['mb_per_s']:>8.0f}"
            f" {r['mb_per_cpu_s']:>9.0f} {r['rows_per_s'] / 1e6:>8.2f}"
        )
    print(json.dumps({"benchmark": "pgcopy_decode", "bytes": len(data), "rows": nrows, "cores": cores,
                      "results": results}))  # fmt: skip


if __name__ == "__main__":
    main()
