"""GPU COPY BINARY decode and staged-chunk -> Parquet throughput, against the CPU path on all cores.

Needs no PostgreSQL: the chunks are generated here with Parquetry's COPY BINARY encoder and staged as
files (``--staging``, default ``$PARQUETRY_STAGING_DIR`` or /dev/shm). Every chunk decoded on the GPU is
first checked against the CPU decoder (schema and values). Measured:

* ``gpu_decode_gb_s``: COPY stream bytes per second decoded from device memory into Arrow buffers
  (kernels only: the stream is already on the device, nothing is copied back);
* ``gpu_parquet_gb_s``: staged files -> Parquet files (read with kvikio when installed, decode, write
  with cuDF when installed, else copy to host and write with pyarrow);
* ``cpu_decode_gb_s`` / ``cpu_parquet_gb_s``: the CPU decoder / CPU decode + pyarrow writer, one chunk per
  thread on every core.

Targets on one H100: decode >= 25 GB/s, staged -> Parquet >= 4 GB/s, >= 10x the CPU path on 16 cores.
Exits with status 2 and a message when no GPU is usable (after the CPU part, so that part can be
checked anywhere). Prints a table, then one JSON line.

    python benchmarks/gpu_decode.py --chunks 16 --rows-per-chunk 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parquetry.gpu.engine import probe_cudf, probe_gpu
from parquetry.pgcopy.decode import decode_copy_binary
from parquetry.pgcopy.encode import encode_copy_binary
from parquetry.pgcopy.types import PgColumn, arrow_schema
from parquetry.storage import ParquetOptions

COLUMNS = [
    PgColumn("id", 20, "bigint"),
    PgColumn("qty", 23, "integer"),
    PgColumn("price", 1700, "numeric(12,2)", ((12 << 16) | 2) + 4),
    PgColumn("ratio", 701, "double precision"),
    PgColumn("sku", 25, "text"),
    PgColumn("placed_at", 1114, "timestamp without time zone"),
    PgColumn("ship_day", 1082, "date"),
    PgColumn("paid", 16, "boolean"),
]
PG_TYPES = ["bigint", "integer", "numeric(12,2)", "double precision", "text", "timestamp", "date", "boolean"]


def make_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(rows, dtype=np.int64) + seed * rows
    nulls = rng.random(rows) < 0.05
    names = np.array(["alpha", "bravo", "charlie-delta", "echo", "foxtrot-golf-hotel", "india"], dtype=object)
    sku = [f"{w}-{i % 9973}" for w, i in zip(names[rng.integers(0, len(names), rows)], ids, strict=True)]
    cents = rng.integers(-(10**9), 10**9, rows)
    words = np.empty((rows, 2), np.int64)
    words[:, 0], words[:, 1] = cents, cents >> 63  # decimal128 = little-endian two's complement
    price = pa.Array.from_buffers(pa.decimal128(12, 2), rows, [None, pa.py_buffer(words)])
    return pa.table(
        {
            "id": ids,
            "qty": pa.array(rng.integers(0, 10_000, rows, dtype=np.int32), mask=nulls),
            "price": price,
            "ratio": rng.random(rows),
            "sku": pa.array(sku, pa.string(), mask=nulls),
            "placed_at": pa.array(rng.integers(0, 2**40, rows), pa.timestamp("us")),
            "ship_day": pa.array(rng.integers(0, 20_000, rows, dtype=np.int32), pa.date32()),
            "paid": pa.array(rng.random(rows) < 0.5),
        }
    )


def stage_chunks(directory: Path, chunks: int, rows: int) -> list[Path]:
    paths = []
    for i in range(chunks):
        path = directory / f"chunk-{i:04d}.copy"
        path.write_bytes(encode_copy_binary(make_table(rows, i), PG_TYPES))
        paths.append(path)
    return paths


def cpu_decode_all(paths: list[Path], workers: int) -> float:
    def one(path: Path) -> int:
        return decode_copy_binary(path.read_bytes(), COLUMNS, str(path)).num_rows

    decode_copy_binary(paths[0].read_bytes(), COLUMNS, "warm-up")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - t0


def cpu_parquet_all(paths: list[Path], out: Path, workers: int, options: ParquetOptions) -> float:
    schema = arrow_schema(COLUMNS)

    def one(path: Path) -> None:
        table = decode_copy_binary(path.read_bytes(), COLUMNS, str(path))
        pq.write_table(
            table.cast(schema),
            out / f"{path.stem}.parquet",
            row_group_size=options.row_group_rows,
            **options.writer_kwargs(),
        )

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - t0


def gpu_part(paths: list[Path], out: Path, repeats: int, options: ParquetOptions) -> dict[str, float | str]:
    from numba import cuda

    from parquetry.gpu.consumer import read_chunk
    from parquetry.gpu.decode import decode_device, to_arrow

    pool = "none"
    try:  # before the first kernel, so numba allocates from the pool too
        from parquetry.gpu.pool import RmmPool

        stats = RmmPool(0, 0.5, 0.9).start()
        pool = "rmm" + ("" if stats.get("numba_on_rmm") else " (numba on its own allocator)")
    except ImportError:
        pass

    for path in paths:  # correctness first: every chunk equals the CPU decoder's table
        data = path.read_bytes()
        gpu, cpu = (
            to_arrow(decode_device(data, COLUMNS, str(path))),
            decode_copy_binary(data, COLUMNS, str(path)),
        )
        if not (gpu.schema == cpu.schema and gpu.equals(cpu)):
            raise SystemExit(f"GPU and CPU tables differ for {path}")
    device = [cuda.to_device(np.frombuffer(p.read_bytes(), np.uint8)) for p in paths]
    total = sum(p.stat().st_size for p in paths)
    cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for buf, path in zip(device, paths, strict=True):
            decode_device(buf, COLUMNS, str(path))
        cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    del device
    cudf_ok = bool(probe_cudf())
    writer = "cudf" if cudf_ok else "pyarrow"
    t0 = time.perf_counter()
    for path in paths:
        target = out / f"{path.stem}.parquet"
        if cudf_ok:
            from parquetry.gpu.cudf_io import decode_chunk_to_cudf, write_cudf_parquet

            df = decode_chunk_to_cudf(read_chunk(path), COLUMNS, str(path))
            write_cudf_parquet(df, str(target), arrow_schema(COLUMNS), options)
        else:
            table = to_arrow(decode_device(read_chunk(path), COLUMNS, str(path)))
            pq.write_table(table, target, row_group_size=options.row_group_rows, **options.writer_kwargs())
    cuda.synchronize()
    parquet_s = time.perf_counter() - t0
    return {"decode_s": best, "parquet_s": parquet_s, "writer": writer, "bytes": total, "pool": pool}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("--rows-per-chunk", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--staging",
        default=os.environ.get("PARQUETRY_STAGING_DIR")
        or ("/dev/shm" if os.path.isdir("/dev/shm") else None),
    )
    args = ap.parse_args(argv)
    options = ParquetOptions()
    work = Path(tempfile.mkdtemp(prefix="parquetry-gpu-bench-", dir=args.staging))
    try:
        paths = stage_chunks(work, args.chunks, args.rows_per_chunk)
        total = sum(p.stat().st_size for p in paths)
        (work / "cpu").mkdir()
        (work / "gpu").mkdir()
        cpu_decode_s = cpu_decode_all(paths, args.workers)
        cpu_parquet_s = cpu_parquet_all(paths, work / "cpu", args.workers, options)
        result: dict[str, object] = {
            "benchmark": "gpu_decode",
            "chunks": args.chunks,
            "rows": args.chunks * args.rows_per_chunk,
            "stream_bytes": total,
            "cpu_cores": args.workers,
            "cpu": platform.processor() or platform.machine(),
            "cpu_decode_gb_s": round(total / cpu_decode_s / 1e9, 3),
            "cpu_parquet_gb_s": round(total / cpu_parquet_s / 1e9, 3),
        }
        gpu = probe_gpu()
        rows = [
            ("CPU decode (all cores)", cpu_decode_s, result["cpu_decode_gb_s"]),
            ("CPU staged -> Parquet (pyarrow)", cpu_parquet_s, result["cpu_parquet_gb_s"]),
        ]
        if gpu:
            g = gpu_part(paths, work / "gpu", args.repeats, options)
            result.update(
                {
                    "gpu": gpu.details.get("gpu_name"),
                    "gpu_decode_gb_s": round(total / g["decode_s"] / 1e9, 3),
                    "gpu_parquet_gb_s": round(total / g["parquet_s"] / 1e9, 3),
                    "gpu_parquet_writer": g["writer"],
                    "gpu_memory_pool": g["pool"],
                }
            )
            result["speedup_parquet_vs_cpu"] = round(cpu_parquet_s / g["parquet_s"], 2)
            result["speedup_decode_vs_cpu"] = round(cpu_decode_s / g["decode_s"], 2)
            rows += [
                ("GPU decode from device memory", g["decode_s"], result["gpu_decode_gb_s"]),
                (f"GPU staged -> Parquet ({g['writer']})", g["parquet_s"], result["gpu_parquet_gb_s"]),
            ]
        print(f"{total / 1e6:.1f} MB of COPY BINARY in {args.chunks} chunks, {args.workers} CPU cores")
        print(f"{'stage':<36} {'seconds':>9} {'GB/s':>8}")
        for name, seconds, rate in rows:
            print(f"{name:<36} {seconds:>9.3f} {rate:>8.3f}")
        if not gpu:
            result["error"] = f"no GPU: {gpu.reason}"
            print(json.dumps(result))
            print(f"gpu_decode: no usable GPU ({gpu.reason}); only the CPU part ran", file=sys.stderr)
            return 2
        print(json.dumps(result))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
