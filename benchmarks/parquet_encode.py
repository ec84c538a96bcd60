"""Parquet encoding CPU: Parquetry's own encoder against pyarrow's, on extraction's table and options.

Builds the lineitem-shaped table of ``benchmarks/pg_to_parquet.py`` as Arrow arrays (the same column
types and value formulas, ~5% NULLs, in 65,536-row batches as the decoder hands them on), then writes it
with ``Storage.write_parquet`` under extraction's options (``EXTRACT_PARQUET_OPTIONS``: zstd 1, delta
integers, plain strings, statistics) twice per round, ``encoder="parquetry"`` and ``encoder="pyarrow"``
interleaved, and reports the median and least CPU-seconds of each (one thread: the writer runs in the
caller), the file sizes, and that both files read back as the same table. Prints a table, then one JSON
line.

    .venv/bin/python benchmarks/parquet_encode.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def lineitem(rows: int) -> pa.Table:
    """The benchmark table's rows 1..rows, computed as PostgreSQL's ``FILL`` does."""
    g = np.arange(1, rows + 1, dtype=np.int64)

    def nulls(k: int) -> np.ndarray:
        return g % 20 == k

    def decimal(cents: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
        words = np.zeros((rows, 2), dtype=np.int64)
        words[:, 0] = cents
        words[:, 1] = np.where(cents < 0, -1, 0)
        array = pa.Array.from_buffers(pa.decimal128(15, 2), rows, [None, pa.py_buffer(words)])
        return array if mask is None else pc.if_else(pa.array(mask), pa.scalar(None, array.type), array)

    def choose(options: list[str], index: np.ndarray, width: int | None = None) -> pa.Array:
        padded = [o.ljust(width) if width else o for o in options]
        return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(padded)).cast(
            pa.string()
        )

    def days(step: int) -> np.ndarray:
        return (np.datetime64("1992-01-01") - np.datetime64("1970-01-01")).astype(np.int64) + (
            g * step
        ) % 2500

    rng = np.random.default_rng(0)
    comment_len = 10 + g % 34
    hexes = rng.integers(0, 16, (rows, 64)).astype(np.uint8)
    letters = np.frombuffer(b"0123456789abcdef", np.uint8)[hexes]
    data = (
        np.concatenate([letters[i, : comment_len[i]] for i in range(rows)]) if rows else np.zeros(0, np.uint8)
    )
    offsets = np.concatenate([[0], np.cumsum(comment_len)]).astype(np.int32)
    comment = pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    uids = rng.integers(0, 256, (rows, 16), dtype=np.uint8)
    notes = [("note " * (i % 7)) + str(i) for i in range(1, rows + 1)]
    return pa.table(
        {
            "l_orderkey": g // 4 + 1,
            "l_partkey": pa.array((g * 2654435761) % 200000 + 1, mask=nulls(1)),
            "l_suppkey": ((g * 7919) % 10000 + 1).astype(np.int32),
            "l_linenumber": (g % 4 + 1).astype(np.int32),
            "l_quantity": decimal(((g * 31) % 50 + 1) * 100),
            "l_extendedprice": decimal((g * 104729) % 10000000, nulls(2)),
            "l_discount": decimal(g % 11),
            "l_tax": decimal(g % 9),
            "l_returnflag": choose(["A", "N", "R"], g % 3),
            "l_linestatus": choose(["F", "O"], g % 2),
            "l_shipdate": pa.array(days(13).astype(np.int32), pa.date32()),
            "l_commitdate": pa.array(days(17).astype(np.int32), pa.date32(), mask=nulls(3)),
            "l_receiptdate": pa.array(days(19).astype(np.int32), pa.date32()),
            "l_shipinstruct": choose(
                ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"], g % 4, 25
            ),
            "l_shipmode": choose(["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"], g % 7, 10),
            "l_comment": pc.if_else(pa.array(nulls(4)), pa.scalar(None, pa.string()), comment),
            "l_updated_at": pa.array(1_577_836_800_000_000 + g * 7_777_000, pa.timestamp("us", tz="UTC")),
            "l_uid": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(16), rows, [pa.array(~nulls(5)).buffers()[1], pa.py_buffer(uids)]
            ),
            "l_note": pa.array(notes, mask=nulls(6)),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS
    from parquetry.storage import Storage

    table = lineitem(args.rows)
    batches = table.to_batches(max_chunksize=65_536)
    root = tempfile.mkdtemp(prefix="parquetry-encode-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    storage = Storage(root)
    encoders = ["parquetry", "pyarrow"]
    cpu: dict[str, list[float]] = {e: [] for e in encoders}
    size: dict[str, int] = {}
    paths: dict[str, str] = {}
    for round_ in range(args.repeat + 1):  # round 0 warms up (numba's cache, pyarrow's allocator)
        for encoder in encoders if round_ % 2 else reversed(encoders):
            options = dataclasses.replace(EXTRACT_PARQUET_OPTIONS, encoder=encoder)
            path = storage.path(f"{encoder}-{uuid.uuid4().hex[:6]}.parquet")
            started = time.thread_time()
            written = storage.write_parquet(path, iter(batches), table.schema, options)
            spent = time.thread_time() - started
            if round_:
                cpu[encoder].append(spent)
            size[encoder] = written.bytes
            if encoder in paths:
                storage.delete(paths[encoder])
            paths[encoder] = path
    same = pq.read_table(paths["parquetry"]).equals(pq.read_table(paths["pyarrow"]))
    for path in paths.values():
        storage.delete(path)
    os.rmdir(root)

    arrow_mb = table.nbytes / 1e6
    print(
        f"# {args.rows:,} rows, {arrow_mb:.0f} MB of Arrow data, {args.repeat} interleaved rounds, one thread"
    )
    print(f"{'encoder':<10} {'median CPU-s':>13} {'least CPU-s':>12} {'MB/CPU-s':>9} {'file MB':>8}")
    for encoder in encoders:
        median = statistics.median(cpu[encoder])
        print(
            f"{encoder:<10} {median:>13.3f} {min(cpu[encoder]):>12.3f} {arrow_mb / median:>9.0f}"
            f" {size[encoder] / 1e6:>8.2f}"
        )
    ratio = statistics.median(cpu["parquetry"]) / statistics.median(cpu["pyarrow"])
    print(f"# Parquetry / pyarrow CPU: {ratio:.2f}; both files read back as the same table: {same}")
    print(
        json.dumps(
            {
                "benchmark": "parquet_encode",
                "rows": args.rows,
                "arrow_bytes": table.nbytes,
                "cpu_s": {e: round(statistics.median(cpu[e]), 4) for e in encoders},
                "least_cpu_s": {e: round(min(cpu[e]), 4) for e in encoders},
                "file_bytes": size,
                "cpu_ratio": round(ratio, 3),
                "same_table": same,
            }
        )
    )
    if not same:
        raise SystemExit("the two encoders' files do not read back as the same table")


if __name__ == "__main__":
    main()
