"""The compaction sensor in a running ``dagster dev``: flagged datasets get compacted, once per generation.

The server runs the repository's own ``workspace.yaml`` (``pipeline_assets.definitions`` with the
production resources, read from ``PARQUETRY_*`` variables) on a throwaway catalog database and data
root, with pools enforced per step as in ``deploy/dagster.yaml``. Everything is driven and observed from
the outside, as an operator would: the sensor is turned on and the ``compaction`` pool is sized through
GraphQL; the daemon's own ticks launch the runs; the result is read from the catalog and with pyarrow.

1. two datasets of ten small files are flagged; the pool has 0 slots; the sensor is turned on;
2. one tick requests one run per dataset (run keys ``events:1`` and ``readings:1``), both in the pool;
3. later ticks see the same flagged generations and request nothing, while the runs stay queued;
4. with one slot both runs succeed, their compaction steps one after the other;
5. a tick after that finds nothing flagged; there are still exactly two runs, tagged with their run
   key, partition and generation; each dataset's catalog entry lists fewer files with the same rows,
   committed by its run, and the rows read back equal the original ones.

The sensor's production interval is 60 s; the test sets ``PARQUETRY_COMPACTION_SENSOR_INTERVAL_S=1``
so that the daemon (which evaluates sensors at most every 5 s) ticks several times within the test
instead of once a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import Catalog
from parquetry.storage import Storage
from parquetry.testing.compaction import register, write_files
from parquetry.testing.dagster_dev import REPO, DagsterDev, dagster_dev
from sensors.compaction import DEFAULT_INTERVAL_S, INTERVAL_ENV, sensor_interval_s

SENSOR = "compaction_sensor"
POOL = "compaction"
DATASETS = {"events": 0, "readings": 1_000_000}  # name -> first id (every row of the test is unique)
FILES, ROWS_PER_FILE = 10, 200  # ten small files: the default policy flags eight or more
DEADLINE_S = 150  # from turning the sensor on to the last assertion on a shared 2-core machine
DONE = ("SUCCESS", "FAILURE", "CANCELED")

T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], deadline: float, server: DagsterDev) -> T:
    """Poll ``probe`` until it returns something truthy; past ``deadline``, fail with the server log."""
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n--- server log ---\n{server.log_tail(80)}")
        time.sleep(1)


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by("id").combine_chunks()


def live_table(catalog: Catalog, dataset: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(f.path) for f in catalog.live_files(dataset)])


def finished_ticks(server: DagsterDev) -> list[dict[str, Any]]:
    return [t for t in server.sensor_ticks(SENSOR) if t["status"] != "STARTED"]


def test_sensor_interval_comes_from_the_environment_and_a_bad_value_is_refused() -> None:
    assert sensor_interval_s({}) == DEFAULT_INTERVAL_S == 60
    assert sensor_interval_s({INTERVAL_ENV: " 7 "}) == 7
    for bad in ("soon", "0", "-5", "1.5"):
        with pytest.raises(ValueError, match=INTERVAL_ENV):
            sensor_interval_s({INTERVAL_ENV: bad})


@pytest.mark.slow
@pytest.mark.postgres
def test_running_dagster_dev_compacts_each_flagged_dataset_once_within_the_pool_limit(
    pg_dsn: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    catalog = Catalog(pg_dsn)
    catalog.migrate()
    before: dict[str, pa.Table] = {}
    for name, start in DATASETS.items():
        storage = Storage(str(data / name))
        files = write_files(storage, "", files=FILES, rows_per_file=ROWS_PER_FILE, start=start)
        assert register(catalog, name, storage, files) == 1
        before[name] = sorted_rows(live_table(catalog, name))
    assert sorted((d.name, d.generation) for d in catalog.flagged_datasets()) == [
        ("events", 1),
        ("readings", 1),
    ]

    home = tmp_path / "dagster_home"
    home.mkdir()
    # As deploy/dagster.yaml: pools enforced per step.
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    granularity: op\n"
    )
    env = {
        "PARQUETRY_PG_DSN": pg_dsn,
        "PARQUETRY_CATALOG_DSN": pg_dsn,
        "PARQUETRY_DATA_ROOT": str(data),
        "PARQUETRY_LANDING_URI": str(tmp_path / "landing"),
        "PARQUETRY_COMPACTION_SENSOR_INTERVAL_S": "1",
    }
    with dagster_dev(home, env, workspace=REPO / "workspace.yaml") as server:
        assert server.sensor_status(SENSOR) == "STOPPED", "the sensor must not start by itself"
        server.set_pool_limit(POOL, 0)  # no compaction may start until the pool has a slot
        assert server.start_sensor(SENSOR) == "RUNNING"
        deadline = time.monotonic() + DEADLINE_S

        # 1. One tick requests one run per flagged dataset; the runs wait for the pool.
        launching = wait_until(
            "the tick that launches the runs",
            lambda: [t for t in finished_ticks(server) if t["runIds"]],
            deadline,
            server,
        )
        assert len(launching) == 1 and launching[0]["status"] == "SUCCESS", launching
        assert sorted(launching[0]["runKeys"]) == ["events:1", "readings:1"]

        # 2. Later ticks see the same flagged generations and launch nothing more.
        def two_later_ticks() -> list[dict[str, Any]] | None:
            ticks = [t for t in finished_ticks(server) if t["timestamp"] > launching[0]["timestamp"]]
            return ticks if len(ticks) >= 2 else None

        later = wait_until(
            "two more ticks while the runs wait for the pool", two_later_ticks, deadline, server
        )
        assert all(t["status"] == "SKIPPED" and not t["runIds"] for t in later), later
        assert all("2 flagged dataset(s) already requested" in t["skipReason"] for t in later), later
        runs = server.runs()
        assert sorted(r["runId"] for r in runs) == sorted(launching[0]["runIds"])
        assert all(r["pools"] == [POOL] for r in runs), runs
        assert all(r["status"] == "QUEUED" for r in runs), f"a run started without a pool slot: {runs}"
        assert sorted((d.name, d.generation) for d in catalog.flagged_datasets()) == [
            ("events", 1),
            ("readings", 1),
        ]

        # 3. One slot: both runs finish, one compaction at a time.
        server.set_pool_limit(POOL, 1)

        def final_statuses() -> dict[str, str] | None:
            current = {r["runId"]: server.run_status(r["runId"]) for r in runs}
            return current if all(status in DONE for status in current.values()) else None

        statuses = wait_until("both compaction runs to finish", final_statuses, deadline, server)
        assert set(statuses.values()) == {"SUCCESS"}, f"{statuses}\n{server.log_tail(80)}"
        windows = sorted(
            (s["startTime"], s["endTime"])
            for r in runs
            for s in server.step_stats(r["runId"])
            if s["stepKey"] == "compacted_dataset"
        )
        assert len(windows) == 2 and windows[0][1] <= windows[1][0], f"compactions overlapped: {windows}"

        # 4. A tick after the compactions finds nothing flagged and launches nothing.
        after = wait_until(
            "a tick after the compactions",
            lambda: [t for t in finished_ticks(server) if t["timestamp"] > windows[1][1]],
            deadline,
            server,
        )
        assert all(t["status"] == "SKIPPED" and not t["runIds"] for t in after), after
        assert all(t["skipReason"] == "no dataset is flagged for compaction" for t in after), after
        final_runs = server.runs()

    assert len(final_runs) == 2, "no duplicate run for a dataset generation"
    run_of = {r["tags"]["dagster/partition"]: r for r in final_runs}
    assert sorted(run_of) == sorted(DATASETS)
    for name, run in run_of.items():
        assert run["tags"]["dagster/run_key"] == f"{name}:1"
        assert run["tags"]["dagster/sensor_name"] == SENSOR
        assert run["tags"]["parquetry/generation"] == "1"

    assert catalog.flagged_datasets() == []
    for name in DATASETS:
        info = catalog.dataset(name)
        live = catalog.live_files(name)
        assert not info.compaction_needed and info.generation == 2
        assert len(live) < FILES and sum(f.rows for f in live) == FILES * ROWS_PER_FILE == info.total_rows
        assert all(Path(f.path).is_relative_to(data / name) for f in live)
        assert sorted_rows(live_table(catalog, name)).equals(before[name]), f"{name}: rows changed"
        (log,) = catalog.compaction_log(name)  # committed by the run the sensor launched for it
        assert log["lease_owner"] == f"dagster:{run_of[name]['runId']}"
        assert (log["planned_generation"], log["committed_generation"]) == (1, 2)
        assert (log["input_files"], log["output_files"]) == (FILES, len(live))
