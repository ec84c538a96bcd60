"""PostgreSQL table -> Parquet: Parquetry against the raw COPY floor and the peers that install here.

Creates a table shaped like TPC-H ``lineitem`` plus ``timestamptz``, ``uuid`` and ``text`` columns
with about 5% NULLs (``--rows``, default 6,000,000), generated server-side, on a throwaway cluster
unless ``--dsn`` is given. Then, interleaved over ``--repeat`` rounds, it times:

* ``floor``: ``psql`` running ``COPY ... TO STDOUT (FORMAT binary)`` over 4 ctid ranges to /dev/null,
  4 processes at once: reading the bytes and nothing else;
* ``parquetry``: ``extract_table_to_parquet`` with its default Parquet options (``EXTRACT_PARQUET_OPTIONS``:
  zstd level 1, delta-encoded integers, no dictionaries; ``PARQUETRY_BENCH_ZSTD_LEVEL`` sets another
  level), the CPU engine,
  default workers;
* with ``--pyarrow-encoder``, ``parquetry_pyarrow``: the same with pyarrow encoding every column;
* with ``--slow-consumer``, ``parquetry_slow``: the same with its consumer held back 0.25 s a chunk, so
  the readers fill the staging budget; its peak RSS and staged bytes are the bound where readers outpace
  decoding (its time means nothing);
* peers, each writing one zstd Parquet file: DuckDB's postgres scanner (needs a Python whose DuckDB
  matches an installed ``duckdb-extension-postgres``: ``--duckdb-python``), ConnectorX (4 partitions
  on ``l_orderkey``) and ADBC (``adbc-driver-postgresql``) + pyarrow. A peer that cannot run is
  skipped with the reason.

Every contender runs in its own process after a small warm-up in that process (imports, JIT
caches), and reports its own wall time and client CPU (its process and children). It prints a table,
then one JSON line with rows, stream_bytes, floor_s, parquetry_s, peers, ratio_to_floor,
speedup_vs_best_peer and client_cpu_s_per_gb (Parquetry's client CPU seconds per GB of COPY stream).
"""

from __future__ import annotations

import argparse
import dataclasses
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

TABLE = "bench_lineitem"
DDL = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (
    l_orderkey bigint NOT NULL, l_partkey bigint, l_suppkey integer, l_linenumber integer,
    l_quantity numeric(15,2), l_extendedprice numeric(15,2), l_discount numeric(15,2), l_tax numeric(15,2),
    l_returnflag char(1), l_linestatus char(1), l_shipdate date, l_commitdate date, l_receiptdate date,
    l_shipinstruct char(25), l_shipmode char(10), l_comment varchar(44),
    l_updated_at timestamptz, l_uid uuid, l_note text
);
"""
FILL = """
INSERT INTO {table}
SELECT g / 4 + 1,
       CASE WHEN g %% 20 = 1 THEN NULL ELSE (g::bigint * 2654435761) %% 200000 + 1 END,
       (g::bigint * 7919) %% 10000 + 1,
       g %% 4 + 1,
       ((g * 31) %% 50 + 1)::numeric(15,2),
       CASE WHEN g %% 20 = 2 THEN NULL ELSE ((g::bigint * 104729) %% 10000000 / 100.0)::numeric(15,2) END,
       ((g %% 11) / 100.0)::numeric(15,2),
       ((g %% 9) / 100.0)::numeric(15,2),
       (ARRAY['A','N','R'])[g %% 3 + 1], (ARRAY['F','O'])[g %% 2 + 1],
       date '1992-01-01' + (g * 13) %% 2500,
       CASE WHEN g %% 20 = 3 THEN NULL ELSE date '1992-01-01' + (g * 17) %% 2500 END,
       date '1992-01-01' + (g * 19) %% 2500,
       (ARRAY['DELIVER IN PERSON','COLLECT COD','NONE','TAKE BACK RETURN'])[g %% 4 + 1],
       (ARRAY['REG AIR','AIR','RAIL','SHIP','TRUCK','MAIL','FOB'])[g %% 7 + 1],
       CASE WHEN g %% 20 = 4 THEN NULL ELSE substr(md5(g::text) || md5((g + 1)::text), 1, 10 + g %% 34) END,
       timestamptz '2020-01-01 00:00:00+00' + (g::bigint * 7777) * interval '1 millisecond',
       CASE WHEN g %% 20 = 5 THEN NULL ELSE md5(g::text)::uuid END,
       CASE WHEN g %% 20 = 6 THEN NULL ELSE repeat('note ', g %% 7) || g END
FROM generate_series(%(start)s::int, %(stop)s::int) g
"""


# -- contenders (each runs in its own process: ``--contender NAME``) ----------------------------


def _cpu() -> float:
    self_ = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def _ctid_ranges(dsn: str, parts: int) -> list[str]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        pages = conn.execute(
            "SELECT pg_relation_size(%s) / current_setting('block_size')::int", (TABLE,)
        ).fetchone()[0]
    step = -(-max(pages, 1) // parts)
    conds = []
    for i in range(parts):
        lo, hi = i * step, (i + 1) * step
        cond = f"ctid >= '({lo},0)'::tid" + (f" AND ctid < '({hi},0)'::tid" if i < parts - 1 else "")
        conds.append(cond)
    return conds


def run_floor(dsn: str, out_dir: Path, limit: int | None) -> dict:
    where = _ctid_ranges(dsn, 4)
    suffix = f" LIMIT {limit}" if limit else ""
    t0, c0 = time.perf_counter(), _cpu()
    procs = []
    sizes = []
    for cond in where:
        sql = f"COPY (SELECT * FROM {TABLE} WHERE {cond}{suffix}) TO STDOUT (FORMAT binary)"
        procs.append(subprocess.Popen(["psql", "-X", "-q", "-d", dsn, "-c", sql], stdout=subprocess.PIPE))
    # count bytes as they stream, as /dev/null would swallow them
    import threading

    def drain(p, i):
        n = 0
        while block := p.stdout.read(1 << 20):
            n += len(block)
        sizes.append(n)

    threads = [threading.Thread(target=drain, args=(p, i)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("psql failed")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "stream_bytes": sum(sizes)}


def run_parquetry(
    dsn: str,
    out_dir: Path,
    limit: int | None,
    workers: int | None,
    where: str | None = None,
    encoder: str = "parquetry",
    chunk_delay_s: float = 0.0,
) -> dict:
    from parquetry.extract.parquet import ParquetConsumer, decode_chunk_cpu, extract_table_to_parquet
    from parquetry.extract.pipeline import ExtractOptions
    from parquetry.extract.spec import TableSpec
    from parquetry.storage import Storage

    spec = (
        TableSpec("bench", query=f"SELECT * FROM {TABLE} LIMIT {limit}")
        if limit
        else TableSpec("bench", relation=TABLE, where=where)
    )
    factory = None
    if chunk_delay_s:
        from parquetry.pgcopy.pool import BufferPool

        pool = BufferPool()

        def slow(chunk, columns, batch_rows):
            time.sleep(chunk_delay_s)  # a consumer slower than the readers: staging fills to its budget
            yield from decode_chunk_cpu(chunk, columns, batch_rows, pool=pool)

        def factory(storage, directory, options):
            return ParquetConsumer(storage, directory, options, decode=slow)

    t0, c0 = time.perf_counter(), _cpu()
    result = extract_table_to_parquet(
        dsn,
        spec,
        Storage(str(out_dir)),
        options=ExtractOptions(workers=workers),
        parquet_options=dataclasses.replace(_parquet_options(), encoder=encoder),
        consumer_factory=factory,
    )
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": _cpu() - c0,
        "stream_bytes": result.stream_bytes,
        "rows": result.rows,
        "reader": result.reader,
        "workers": result.workers,
        "engine": result.engine,
        "parquet_bytes": result.parquet_bytes,
        "timings": result.timings,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_staged_mb": result.peak_staged_bytes / (1 << 20),
    }


def run_parquetry_pyarrow(
    dsn: str, out_dir: Path, limit: int | None, workers: int | None, where: str | None = None
) -> dict:
    """Parquetry with pyarrow encoding every column (``encoder="pyarrow"``): what its own encoder saves."""
    return run_parquetry(dsn, out_dir, limit, workers, where, encoder="pyarrow")


def run_parquetry_slow(
    dsn: str, out_dir: Path, limit: int | None, workers: int | None, where: str | None = None
) -> dict:
    """Parquetry with its consumer held back 0.25 s a chunk, so the readers fill the staging budget: the
    peak RSS where readers outpace decoding (many cores, a fast server), not a timing."""
    return run_parquetry(dsn, out_dir, limit, workers, where, chunk_delay_s=0.25)


def _parquet_options():
    """Extraction's defaults (``EXTRACT_PARQUET_OPTIONS``), or the zstd level in
    ``$PARQUETRY_BENCH_ZSTD_LEVEL`` (e.g. 3, DuckDB's default, for a like-for-like comparison)."""
    import dataclasses

    from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS

    level = os.environ.get("PARQUETRY_BENCH_ZSTD_LEVEL")
    if not level:
        return EXTRACT_PARQUET_OPTIONS
    return dataclasses.replace(EXTRACT_PARQUET_OPTIONS, compression_level=int(level))


def run_parquetry_read(dsn: str, out_dir: Path, limit: int | None, workers: int | None) -> dict:
    """Parquetry's readers alone: chunks are staged and dropped, not decoded (its client CPU per GB)."""
    from parquetry.extract.pipeline import ExtractOptions, run_extraction
    from parquetry.extract.spec import TableSpec

    spec = (
        TableSpec("bench", query=f"SELECT * FROM {TABLE} LIMIT {limit}")
        if limit
        else TableSpec("bench", relation=TABLE)
    )

    def drop(plan, chunks):
        return sum(1 for _ in chunks)

    t0, c0 = time.perf_counter(), _cpu()
    run = run_extraction(dsn, spec, drop, options=ExtractOptions(workers=workers))
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": _cpu() - c0,
        "stream_bytes": run.stats.stream_bytes,
        "reader": run.stats.reader,
        "workers": run.stats.workers,
    }


def run_connectorx(dsn: str, out_dir: Path, limit: int | None) -> dict:
    import connectorx as cx
    import pyarrow.parquet as pq

    url = _url(dsn)
    query = f"SELECT * FROM {TABLE}" + (f" LIMIT {limit}" if limit else "")
    t0, c0 = time.perf_counter(), _cpu()
    kwargs = {} if limit else {"partition_on": "l_orderkey", "partition_num": 4}
    table = cx.read_sql(url, query, return_type="arrow", **kwargs)
    pq.write_table(table, out_dir / "connectorx.parquet", compression="zstd")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "rows": table.num_rows}


def run_adbc(dsn: str, out_dir: Path, limit: int | None) -> dict:
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow.parquet as pq

    query = f"SELECT * FROM {TABLE}" + (f" LIMIT {limit}" if limit else "")
    t0, c0 = time.perf_counter(), _cpu()
    rows = 0
    with adbc.connect(_url(dsn)) as conn, conn.cursor() as cur:
        cur.execute(query)
        reader = cur.fetch_record_batch()
        with pq.ParquetWriter(out_dir / "adbc.parquet", reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "rows": rows}


def run_duckdb(dsn: str, out_dir: Path, limit: int | None) -> dict:
    import duckdb

    ext = _duckdb_extension(duckdb.__version__)
    conn = duckdb.connect()
    conn.execute(f"SET threads = {os.cpu_count() or 1}")
    conn.execute(f"LOAD '{ext}'")
    conn.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    query = f"SELECT * FROM pg.public.{TABLE}" + (f" LIMIT {limit}" if limit else "")
    target = out_dir / "duckdb.parquet"
    t0, c0 = time.perf_counter(), _cpu()
    conn.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    rows = conn.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0]
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "rows": rows}


def _duckdb_extension(version: str) -> str:
    """The postgres scanner from a ``duckdb-extension-postgres`` wheel, under the name DuckDB expects."""
    import duckdb_extension_postgres  # type: ignore[import-not-found]

    src = (
        Path(duckdb_extension_postgres.__file__).parent
        / "extensions"
        / f"v{version}"
        / "postgres.duckdb_extension"
    )
    if not src.exists():
        raise RuntimeError(f"duckdb-extension-postgres has no build for DuckDB v{version}")
    dst = Path(tempfile.gettempdir()) / f"duckdb-v{version}" / "postgres_scanner.duckdb_extension"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        shutil.copyfile(src, dst)
    return str(dst)


def _url(dsn: str) -> str:
    if "://" in dsn:
        return dsn
    parts = dict(p.split("=", 1) for p in dsn.split())
    user = parts.get("user", "postgres")
    auth = user + (f":{parts['password']}" if "password" in parts else "")
    host, port = parts.get("host", "127.0.0.1"), parts.get("port", "5432")
    return f"postgresql://{auth}@{host}:{port}/{parts.get('dbname', user)}"


CONTENDERS = {
    "floor": run_floor,
    "parquetry": run_parquetry,
    "parquetry_read": run_parquetry_read,
    "parquetry_pyarrow": run_parquetry_pyarrow,
    "parquetry_slow": run_parquetry_slow,
    "duckdb": run_duckdb,
    "connectorx": run_connectorx,
    "adbc": run_adbc,
}


def contender_main(name: str, dsn: str, workers: int | None) -> None:
    """Warm up once on a few rows, then time the whole table; print one JSON line."""
    fn = CONTENDERS[name]
    extra = {"workers": workers} if name.startswith("parquetry") else {}
    if (
        name in ("parquetry", "parquetry_pyarrow", "parquetry_slow")
        and "PARQUETRY_ROW_KERNELS" not in os.environ
    ):
        # Parquetry's row kernel specialized to the table's layout is compiled once per machine
        # (``parquetry.pgcopy.rowspec``; in the background on a real first run): the warm-up compiles it
        # or loads it from the cache, on the table itself, whose NOT NULL columns are part of the layout.
        # PARQUETRY_ROW_KERNELS=generic times the generic kernel instead.
        os.environ["PARQUETRY_ROW_KERNELS"] = "sync"
        with tempfile.TemporaryDirectory() as warm:
            fn(dsn, Path(warm), None, workers, where="l_orderkey <= 500")
        os.environ.pop("PARQUETRY_ROW_KERNELS")
    with tempfile.TemporaryDirectory() as warm:
        fn(dsn, Path(warm), 2000, **extra)
    with tempfile.TemporaryDirectory() as out:
        result = fn(dsn, Path(out), None, **extra)
    print(json.dumps(result))


# -- driver -----------------------------------------------------------------------------------


def spawn(name: str, dsn: str, python: str, workers: int | None) -> dict:
    cmd = [python, os.path.abspath(__file__), "--contender", name, "--dsn", dsn]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": tail[-1] if tail else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def create_table(dsn: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DDL)
        step = 1_000_000
        for start in range(1, rows + 1, step):
            conn.execute(FILL.format(table=TABLE), {"start": start, "stop": min(rows, start + step - 1)})
        conn.execute(f"VACUUM (FREEZE, ANALYZE) {TABLE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--dsn", help="use this database instead of a throwaway cluster")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="Parquetry workers (default: cores)")
    parser.add_argument(
        "--duckdb-python",
        default=os.environ.get("PARQUETRY_BENCH_DUCKDB_PYTHON", sys.executable),
        help="a Python with duckdb and a matching duckdb-extension-postgres",
    )
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument(
        "--pyarrow-encoder",
        action="store_true",
        help="also time Parquetry with pyarrow encoding every column",
    )
    parser.add_argument(
        "--slow-consumer",
        action="store_true",
        help="also run Parquetry with its consumer held back, staging full: the peak RSS bound",
    )
    parser.add_argument("--keep-table", action="store_true", help="with --dsn: reuse an existing table")
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        contender_main(args.contender, args.dsn, args.workers)
        return

    cluster = None
    dsn = args.dsn
    if dsn is None:
        from parquetry.pg.cluster import PostgresCluster

        cluster = PostgresCluster(settings={"shared_buffers": "512MB", "max_connections": "50"}).start()
        dsn = cluster.dsn()
    try:
        if not (args.dsn and args.keep_table):
            t0 = time.perf_counter()
            create_table(dsn, args.rows)
            print(f"# created {TABLE} with {args.rows} rows in {time.perf_counter() - t0:.1f} s", flush=True)
        names = (
            ["floor", "parquetry_read", "parquetry"]
            + (["parquetry_pyarrow"] if args.pyarrow_encoder else [])
            + (["parquetry_slow"] if args.slow_consumer else [])
            + ([] if args.skip_peers else ["duckdb", "connectorx", "adbc"])
        )
        results: dict[str, list[dict]] = {n: [] for n in names}
        for _ in range(args.repeat):
            for name in names:
                python = args.duckdb_python if name == "duckdb" else sys.executable
                results[name].append(spawn(name, dsn, python, args.workers))
        report(args, results)
    finally:
        if cluster is not None:
            cluster.stop()


def report(args: argparse.Namespace, results: dict[str, list[dict]]) -> None:
    def med(name: str, key: str) -> float | None:
        values = [r[key] for r in results.get(name, []) if key in r]
        return statistics.median(values) if values else None

    floor_s = med("floor", "wall_s")
    parquetry_s = med("parquetry", "wall_s")
    stream_bytes = next((r["stream_bytes"] for r in results["parquetry"] if "stream_bytes" in r), 0)
    gb = stream_bytes / 1e9 if stream_bytes else float("nan")
    print(f"{'contender':<12} {'median s':>9} {'client CPU s':>13} {'CPU s/GB':>9}  note")
    peers: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name, runs in results.items():
        wall, cpu = med(name, "wall_s"), med(name, "cpu_s")
        if wall is None:
            skipped[name] = runs[0].get("error", "failed") if runs else "not run"
            print(f"{name:<12} {'-':>9} {'-':>13} {'-':>9}  skipped: {skipped[name][:90]}")
            continue
        note = ""
        if name == "parquetry":
            stages = runs[0].get("timings", {})
            note = (
                f"workers={runs[0].get('workers')} rss={med(name, 'peak_rss_mb') or 0:.0f}MB"
                f" staged={med(name, 'peak_staged_mb') or 0:.0f}MB "
            ) + " ".join(f"{k[:-2]}={v:.2f}" for k, v in stages.items() if k != "wall_s")
        elif name == "parquetry_read":
            note = f"read only: reader={runs[0].get('reader')} workers={runs[0].get('workers')}"
        elif name == "parquetry_pyarrow":
            note = f"Parquetry, every column encoded by pyarrow; rss={med(name, 'peak_rss_mb') or 0:.0f}MB"
        elif name == "parquetry_slow":
            note = (
                f"consumer held back 0.25 s a chunk (not a timing): rss={med(name, 'peak_rss_mb') or 0:.0f}MB"
                f" staged={med(name, 'peak_staged_mb') or 0:.0f}MB"
            )
        elif name == "floor":
            note = "psql COPY BINARY, 4 ctid ranges"
        else:
            peers[name] = round(wall, 3)
        print(f"{name:<12} {wall:>9.3f} {cpu:>13.3f} {cpu / gb:>9.2f}  {note}")
    best_peer = min(peers.values()) if peers else None
    parquetry_cpu = med("parquetry", "cpu_s")
    summary = {
        "rows": args.rows,
        "stream_bytes": stream_bytes,
        "floor_s": round(floor_s, 3) if floor_s else None,
        "parquetry_s": round(parquetry_s, 3) if parquetry_s else None,
        "peers": peers,
        "ratio_to_floor": round(parquetry_s / floor_s, 3) if floor_s and parquetry_s else None,
        "speedup_vs_best_peer": round(best_peer / parquetry_s, 3) if best_peer and parquetry_s else None,
        "client_cpu_s_per_gb": round(parquetry_cpu / gb, 3) if parquetry_cpu and stream_bytes else None,
        "peak_rss_mb": round(med("parquetry", "peak_rss_mb") or 0),
        "peak_staged_mb": round(med("parquetry", "peak_staged_mb") or 0),
        "parquet_bytes": med("parquetry", "parquet_bytes"),
        "read_client_cpu_s_per_gb": round(med("parquetry_read", "cpu_s") / gb, 3)
        if med("parquetry_read", "cpu_s") and stream_bytes
        else None,
        "floor_client_cpu_s_per_gb": round(med("floor", "cpu_s") / gb, 3)
        if floor_s and stream_bytes
        else None,
        "pyarrow_encoder": {
            "parquetry_s": round(med("parquetry_pyarrow", "wall_s"), 3),
            "client_cpu_s_per_gb": round(med("parquetry_pyarrow", "cpu_s") / gb, 3),
            "parquet_bytes": med("parquetry_pyarrow", "parquet_bytes"),
        }
        if med("parquetry_pyarrow", "wall_s") and stream_bytes
        else None,
        "slow_consumer": {
            "peak_rss_mb": round(med("parquetry_slow", "peak_rss_mb") or 0),
            "peak_staged_mb": round(med("parquetry_slow", "peak_staged_mb") or 0),
        }
        if med("parquetry_slow", "wall_s")
        else None,
        "skipped": skipped,
        "parquetry_engine": (results.get("parquetry") or [{}])[0].get("engine"),
        "hardware": f"{os.cpu_count()} cores",
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
