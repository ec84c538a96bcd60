"""``dagster dev`` as a test fixture: a webserver and daemon on loopback, driven through GraphQL.

Used by the UI screenshot test, the daemon backfill test and the compaction sensor test. It talks to
the server over HTTP only (no Dagster import here: the ``parquetry`` package never imports Dagster).
The server runs in its own process group with its own ``DAGSTER_HOME`` and is stopped, group and all
(run workers included), on exit.

The default code location is ``pipeline_assets.definitions`` with the demo's resources for any resource key
the definitions leave unbound (``pipeline_assets.demo.demo_definitions``), so it loads wherever the
environment names a source database, a catalog and a data root.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LOCATION_NAME = "parquetry"

LOCATION_FILE = '''"""The Parquetry code location with the demo's resources for unbound keys (tests only)."""

from pipeline_assets.demo import demo_definitions

defs, _ = demo_definitions()
'''


class DagsterDevError(RuntimeError):
    """The server did not come up, or a GraphQL call failed; the message holds the server log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_workspace(directory: Path) -> Path:
    """A workspace file (and its location file) in ``directory``; returns the workspace path."""
    directory.mkdir(parents=True, exist_ok=True)
    location = directory / "parquetry_location.py"
    location.write_text(LOCATION_FILE)
    workspace = directory / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - python_file:\n"
        f"      relative_path: {location}\n"
        f"      working_directory: {REPO}\n"
        f"      location_name: {LOCATION_NAME}\n"
    )
    return workspace


class DagsterDev:
    """A running ``dagster dev``; ``graphql()`` posts queries to it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path, workspace: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.workspace = workspace

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.loads(response.read())
        except (urllib.error.URLError, OSError) as exc:
            raise DagsterDevError(
                f"GraphQL request failed: {exc}\n--- server log ---\n{self.log_tail()}"
            ) from exc
        if payload.get("errors"):
            raise DagsterDevError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def wait_for_location(self, timeout: float = 240) -> None:
        """Until the code location is loaded (or failed to load, which raises with its error)."""
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name
            locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        deadline = time.monotonic() + timeout
        last = "server not answering"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DagsterDevError(f"dagster dev exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                data = self.graphql(query, timeout=10)
            except DagsterDevError as exc:
                last = str(exc).splitlines()[0]
                time.sleep(1)
                continue
            for entry in data["workspaceOrError"].get("locationEntries", []):
                state = entry["locationOrLoadError"]
                if state and state["__typename"] == "RepositoryLocation":
                    return
                if state and state["__typename"] == "PythonError":
                    raise DagsterDevError(f"code location {entry['name']} failed to load: {state['message']}")
            last = "code location still loading"
            time.sleep(1)
        raise DagsterDevError(f"timed out waiting for the code location ({last})\n{self.log_tail()}")

    def backfills(self) -> list[dict[str, Any]]:
        """Every backfill on the instance: ``[{"id", "status"}]``, newest first."""
        query = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status } } } }"
        return list(self.graphql(query)["partitionBackfillsOrError"]["results"])

    def wait_for_backfill(self, backfill_id: str, timeout: float = 600) -> str:
        """Until the daemon has finished the backfill; returns its final status."""
        done = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
        query = (
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) "
            "{ ... on PartitionBackfill { status } } }"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = str(self.graphql(query, {"id": backfill_id})["partitionBackfillOrError"]["status"])
            if status in done:
                return status
            time.sleep(2)
        raise DagsterDevError(f"backfill {backfill_id} did not finish in {timeout} s\n{self.log_tail()}")

    def runs(self) -> list[dict[str, Any]]:
        """Every run: ``[{"runId", "status", "tags": {...}, "pools": [...]}]`` (the pools its steps use)."""
        query = "{ runsOrError { ... on Runs { results { runId status allPools tags { key value } } } } }"
        results = self.graphql(query)["runsOrError"]["results"]
        return [
            {
                "runId": r["runId"],
                "status": r["status"],
                "tags": {t["key"]: t["value"] for t in r["tags"]},
                "pools": sorted(r["allPools"] or []),
            }
            for r in results
        ]

    def sensor_selector(self, name: str) -> dict[str, str]:
        return {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": "__repository__",
            "sensorName": name,
        }

    def start_sensor(self, name: str) -> str:
        """Turn a sensor on, as the UI's toggle does; returns its new status (``RUNNING``)."""
        query = """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
            __typename ... on Sensor { sensorState { status } }
            ... on SensorNotFoundError { message } ... on PythonError { message }
            ... on UnauthorizedError { message } } }"""
        result = self.graphql(query, {"s": self.sensor_selector(name)})["startSensor"]
        if result["__typename"] != "Sensor":
            raise DagsterDevError(f"startSensor {name} failed: {result}")
        return str(result["sensorState"]["status"])

    def sensor_status(self, name: str) -> str:
        """``RUNNING`` or ``STOPPED`` (a sensor's default status until someone turns it on or off)."""
        query = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
            __typename ... on Sensor { sensorState { status } }
            ... on SensorNotFoundError { message } ... on PythonError { message } } }"""
        result = self.graphql(query, {"s": self.sensor_selector(name)})["sensorOrError"]
        if result["__typename"] != "Sensor":
            raise DagsterDevError(f"sensor {name}: {result}")
        return str(result["sensorState"]["status"])

    def set_pool_limit(self, pool: str, limit: int) -> None:
        """Set a pool's slot count, as ``dagster instance concurrency set POOL LIMIT`` does."""
        query = (
            "mutation($pool: String!, $limit: Int!) "
            "{ setConcurrencyLimit(concurrencyKey: $pool, limit: $limit) }"
        )
        if self.graphql(query, {"pool": pool, "limit": limit})["setConcurrencyLimit"] is not True:
            raise DagsterDevError(f"setConcurrencyLimit {pool}={limit} was refused")

    def sensor_ticks(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """A sensor's ticks, newest first: ``[{"tickId", "status", "timestamp", "runIds", "runKeys",
        "skipReason", "cursor", "error"}]`` (``error`` is the message or None)."""
        query = """query($s: SensorSelector!, $limit: Int) { sensorOrError(sensorSelector: $s) {
            __typename ... on Sensor { sensorState { ticks(limit: $limit) {
                tickId status timestamp runIds runKeys skipReason cursor error { message } } } }
            ... on SensorNotFoundError { message } ... on PythonError { message } } }"""
        result = self.graphql(query, {"s": self.sensor_selector(name), "limit": limit})["sensorOrError"]
        if result["__typename"] != "Sensor":
            raise DagsterDevError(f"sensor {name}: {result}")
        ticks = result["sensorState"]["ticks"]
        return [{**t, "error": (t["error"] or {}).get("message")} for t in ticks]

    def step_stats(self, run_id: str) -> list[dict[str, Any]]:
        """``[{"stepKey", "status", "startTime", "endTime"}]`` of one run (epoch seconds)."""
        query = """query($id: ID!) { runOrError(runId: $id) { __typename
            ... on Run { stepStats { stepKey status startTime endTime } } } }"""
        result = self.graphql(query, {"id": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise DagsterDevError(f"run {run_id}: {result}")
        return list(result["stepStats"])

    def set_nux_seen(self) -> None:
        """Dismiss the first-visit dialog so screenshots show the page itself."""
        self.graphql("mutation { setNuxSeen }")

    def launch_run(self, job_name: str, tags: Mapping[str, str] | None = None, **selector: Any) -> str:
        query = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
            __typename ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } }
            ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": "__repository__",
                "jobName": job_name,
                **selector,
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        result = self.graphql(query, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterDevError(f"launchRun failed: {result}")
        return str(result["run"]["runId"])

    def run_status(self, run_id: str) -> str:
        query = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
        result = self.graphql(query, {"id": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise DagsterDevError(f"run {run_id}: {result}")
        return str(result["status"])

    def wait_for_run(self, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(1)
        raise DagsterDevError(f"run {run_id} did not finish in {timeout} s\n{self.log_tail()}")


@contextlib.contextmanager
def dagster_dev(
    home: Path, env: Mapping[str, str], workspace: Path | None = None, port: int | None = None
) -> Iterator[DagsterDev]:
    """Start ``dagster dev`` (webserver + daemon) with ``DAGSTER_HOME=home`` and ``env``; stop it after."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    workspace = workspace or write_workspace(home / "workspace")
    port = port or free_port()
    log_path = home / "dagster_dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = DagsterDev(process, port, log_path, workspace)
    try:
        server.wait_for_location()
        yield server
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float = 20) -> None:
    """SIGTERM the process group (webserver, daemon, code servers, run workers), then SIGKILL."""
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers of an exited leader
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
