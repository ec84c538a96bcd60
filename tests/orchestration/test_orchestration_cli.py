"""The `parquetry` console script as a subprocess: help, pg lifecycle, extract, stdf, compact, catalog."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "parquetry.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PARQUETRY_DEBUG", None)
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=full_env, timeout=timeout, check=False
    )


def test_help_is_fast_and_lists_every_command() -> None:
    started = time.perf_counter()
    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    assert time.perf_counter() - started < 10
    for command in ("extract", "stdf", "compact", "catalog", "pg"):
        assert command in out.stdout
    # the area packages are not imported just to print help
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, parquetry.cli as c; c.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('parquetry.', 'pyarrow', 'numba'))))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert probe.stdout.strip() == "['parquetry.cli']"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "parquetry"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (no console script)")
    out = subprocess.run(
        [str(script), "stdf", "ingest", "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and "--out" in out.stdout


def test_usage_errors_exit_2_and_missing_dsn_is_named(tmp_path: Path) -> None:
    assert run_cli("extract").returncode == 2
    out = run_cli("extract", "--table", "t", "--out", str(tmp_path), env={"PARQUETRY_PG_DSN": ""})
    assert out.returncode == 1
    assert "PARQUETRY_PG_DSN" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_pg_start_status_stop_round_trip(tmp_path: Path) -> None:
    from parquetry.pg.cluster import ClusterError, find_bindir

    try:
        find_bindir()
    except ClusterError as exc:
        pytest.skip(str(exc))
    base = tmp_path / "pg"
    started = run_cli("pg", "start", str(base))
    try:
        assert started.returncode == 0, started.stderr
        info = json.loads(started.stdout)
        assert info["status"] == "started"
        # the server outlives the command that started it
        with psycopg.connect(info["dsn"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        status = run_cli("pg", "status", str(base))
        assert status.returncode == 0 and json.loads(status.stdout)["port"] == info["port"]
        again = run_cli("pg", "start", str(base))
        assert json.loads(again.stdout)["status"] == "already running"
    finally:
        stopped = run_cli("pg", "stop", str(base))
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["status"] == "stopped"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(info["dsn"], connect_timeout=2)
    assert run_cli("pg", "status", str(base)).returncode == 1


@pytest.mark.postgres
def test_extract_writes_the_table_as_parquet(pg_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2))")
        conn.execute(
            "INSERT INTO items SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'item ' || g END, g * 1.25 "
            "FROM generate_series(1, 5000) g"
        )
        expected = conn.execute("SELECT count(*), count(name), sum(id) FROM items").fetchone()
    out = run_cli(
        "extract", "--dsn", pg_dsn, "--table", "public.items", "--out", str(tmp_path), "--workers", "2"
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["dataset"] == "items" and result["rows"] == 5000
    table = pq.ParquetDataset([str(p) for p in result["files"]]).read()
    assert (table.num_rows, table["name"].null_count, sum(table["id"].to_pylist())) == (
        expected[0],
        expected[0] - expected[1],
        expected[2],
    )


@pytest.mark.postgres
def test_extract_of_a_missing_table_fails_with_its_name(pg_dsn: str, tmp_path: Path) -> None:
    out = run_cli("extract", "--dsn", pg_dsn, "--table", "public.nope", "--out", str(tmp_path))
    assert out.returncode == 1
    assert "nope" in out.stderr and "Traceback" not in out.stderr


def test_stdf_ingest_publishes_good_files_and_reports_bad_ones(tmp_path: Path) -> None:
    from parquetry.testing.stdf_writer import write_lot

    landing = tmp_path / "landing"
    landing.mkdir()
    write_lot(landing / "lot1.stdf", parts=8, tests=5, sites=2, lot_id="L1")
    good = (landing / "lot1.stdf").read_bytes()
    (landing / "broken.stdf").write_bytes(good[: len(good) // 2] + b"\xff\x00\x17")
    out = run_cli("stdf", "ingest", str(landing), "--out", str(tmp_path / "out"))
    assert out.returncode == 1, "a failed file makes the command fail"
    report = json.loads(out.stdout)
    assert (report["ingested"], report["failed"]) == (1, 1)
    by_name = {Path(f["source"]).name: f for f in report["files"]}
    assert by_name["lot1.stdf"]["status"] == "ingested"
    assert by_name["broken.stdf"]["error_offset"] is not None
    assert "FAILED" in out.stderr and "broken.stdf" in out.stderr
    written = [Path(p) for p in by_name["lot1.stdf"]["files"].values()]
    assert written and all(p.exists() for p in written)
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in written) == sum(
        by_name["lot1.stdf"]["rows"].values()
    )


@pytest.mark.postgres
def test_compact_merges_a_fragmented_dataset(pg_dsn: str, tmp_path: Path) -> None:
    from parquetry.catalog import Catalog
    from parquetry.storage import Storage
    from parquetry.testing.compaction import register, write_files

    catalog = Catalog(pg_dsn)
    catalog.migrate()
    storage = Storage(str(tmp_path / "data"))
    register(catalog, "frag", storage, write_files(storage, "frag", files=6, rows_per_file=200))
    out = run_cli("compact", "--catalog-dsn", pg_dsn, "--dataset", "frag", "--force")
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)["results"]
    assert result["status"] == "compacted"
    assert (result["files_before"], result["files_after"]) == (6, 1)
    live = catalog.live_files("frag")
    assert len(live) == 1 and live[0].rows == 1200


@pytest.mark.postgres
def test_catalog_lists_datasets_and_files_in_order_and_cleans_up_what_compaction_retired(
    pg_dsn: str, tmp_path: Path
) -> None:
    from parquetry.catalog import Catalog
    from parquetry.storage import Storage
    from parquetry.testing.compaction import register, write_files

    catalog = Catalog(pg_dsn)
    catalog.migrate()
    storage = Storage(str(tmp_path / "data"))
    inputs = write_files(storage, "frag", files=6, rows_per_file=200)
    register(catalog, "frag", storage, inputs)
    dsn = ["--catalog-dsn", pg_dsn]

    listed = run_cli("catalog", "datasets", *dsn)
    assert listed.returncode == 0, listed.stderr
    (info,) = json.loads(listed.stdout)["datasets"]
    assert (info["name"], info["live_files"], info["total_rows"]) == ("frag", 6, 1200)

    files = run_cli("catalog", "files", "frag", *dsn)
    assert files.returncode == 0, files.stderr
    assert [f["path"] for f in json.loads(files.stdout)["files"]] == [f.path for f in inputs]

    assert run_cli("compact", "--dataset", "frag", "--force", "-q", *dsn).returncode == 0
    assert all(os.path.exists(f.path) for f in inputs), "retired inputs stay for the grace period"
    kept = run_cli("catalog", "cleanup", *dsn)  # default grace: an hour
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["deleted"] == []
    cleaned = run_cli("catalog", "cleanup", "--grace-s", "0", *dsn)
    assert cleaned.returncode == 0, cleaned.stderr
    assert sorted(json.loads(cleaned.stdout)["deleted"]) == sorted(f.path for f in inputs)
    assert not any(os.path.exists(f.path) for f in inputs)
    (live,) = json.loads(run_cli("catalog", "files", "frag", *dsn).stdout)["files"]
    assert os.path.exists(live["path"]) and live["rows"] == 1200

    missing = run_cli("catalog", "files", "nope", *dsn)
    assert missing.returncode == 1 and "'nope'" in missing.stderr
