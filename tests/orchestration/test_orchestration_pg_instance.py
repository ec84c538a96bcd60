"""deploy/dagster.yaml: a multiprocess run whose runs and events live in PostgreSQL."""

import os
import shutil
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]


@dg.asset
def numbers() -> list[int]:
    return list(range(10))


@dg.asset
def total(numbers: list[int]) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"total": sum(numbers), "pid": os.getpid()})


def two_asset_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[numbers, total],
        jobs=[dg.define_asset_job("two_assets", executor_def=dg.multiprocess_executor)],
    )
    return defs.resolve_job_def("two_assets")


@pytest.mark.slow
@pytest.mark.postgres
def test_multiprocess_run_with_postgres_instance_storage(
    pg_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"dagster_{os.getpid()}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for key, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(pg_cluster.port),
        "DAGSTER_PG_DB": db,
        "DAGSTER_PG_USER": pg_cluster.superuser,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_COMPUTE_LOG_DIR": str(tmp_path / "logs"),
    }.items():
        monkeypatch.setenv(key, value)
    try:
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            job = dg.build_reconstructable_job(
                Path(__file__).stem,
                "two_asset_job",
                reconstructor_working_directory=str(Path(__file__).parent),
            )
            result = dg.execute_job(job, instance=instance)
            assert result.success
            mat = instance.get_latest_materialization_event(dg.AssetKey("total")).asset_materialization
            assert mat.metadata["total"].value == 45
            assert mat.metadata["pid"].value != os.getpid(), "the step ran in a child process"
            run_id = result.run_id
        with psycopg.connect(pg_cluster.dsn(db)) as conn:
            status = conn.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
            events = conn.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,)).fetchone()
        assert status == ("SUCCESS",)
        assert events[0] > 10
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
