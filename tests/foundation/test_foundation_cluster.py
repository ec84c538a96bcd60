"""The throwaway cluster's failure paths: each one ends in a clear error and leaves no server behind."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from parquetry.pg import cluster as cluster_mod
from parquetry.pg.cluster import ClusterError, PostgresCluster, find_bindir

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


def _servers_in(data_dir: Path) -> list[int]:
    """Live (non-zombie) servers started with ``-D data_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if b"-D" in args and str(data_dir).encode() in args and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_gone(data_dir: Path, timeout_s: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = _servers_in(data_dir)
        if not left:
            return []
        time.sleep(0.1)
    return _servers_in(data_dir)


@pytest.fixture(autouse=True)
def _need_server_binaries() -> None:
    try:
        find_bindir()
    except ClusterError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """An empty cluster directory the server account can reach (pytest's tmp dirs are private)."""
    base = Path(tempfile.mkdtemp(prefix="parquetry-test-pg-"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def _initialised_cluster() -> Iterator[Path]:
    """One initdb for the module, shared by the tests that are not about initdb."""
    base = Path(tempfile.mkdtemp(prefix="parquetry-test-pg-seed-"))
    PostgresCluster(base_dir=base).start().stop()
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def seeded_dir(_initialised_cluster: Path) -> Path:
    """A directory holding a ready, stopped cluster; every test leaves it stopped again."""
    assert not (_initialised_cluster / "data" / "postmaster.pid").exists(), "a previous test left a server"
    return _initialised_cluster


def test_explicit_bindir_without_server_programs_gives_the_install_hint(tmp_path: Path) -> None:
    (tmp_path / "pg_ctl").write_text("")
    with pytest.raises(
        ClusterError, match=r"does not hold initdb, pg_ctl, postgres.*apt-get install postgresql"
    ):
        PostgresCluster(bindir=tmp_path)


def test_no_server_programs_anywhere_gives_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PARQUETRY_PG_BINDIR", raising=False)
    monkeypatch.setattr(cluster_mod, "SEARCH_GLOBS", ())
    with pytest.raises(ClusterError, match=r"were not found on PATH.*PARQUETRY_PG_BINDIR") as info:
        PostgresCluster()
    assert "apt-get install postgresql" in str(info.value)


def test_port_held_by_another_process_is_refused_before_starting(base_dir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ClusterError, match=rf"port {port} on 127.0.0.1 is already in use"):
            PostgresCluster(base_dir=base_dir, port=port).start()
    assert _servers_in(base_dir / "data") == []


def test_port_taken_between_check_and_bind_reports_the_server_log(
    seeded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_mod, "port_in_use", lambda port, host="127.0.0.1": False)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ClusterError, match=r"did not start") as info:
            PostgresCluster(base_dir=seeded_dir, port=port).start()
    assert "server log" in str(info.value)
    assert "could not bind" in str(info.value) or "Address already in use" in str(info.value)
    assert _wait_gone(seeded_dir / "data") == []


def test_server_exiting_during_start_reports_log_tail_and_leaves_no_process(seeded_dir: Path) -> None:
    pg = PostgresCluster(base_dir=seeded_dir, settings={"shared_buffers": "lots"})
    with pytest.raises(ClusterError, match=r"did not start") as info:
        pg.start()
    message = str(info.value)
    assert "--- server log (last lines) ---" in message
    assert 'invalid value for parameter "shared_buffers"' in message
    assert not pg.running
    assert _wait_gone(seeded_dir / "data") == []
    assert not (seeded_dir / "data" / "postmaster.pid").exists()


def test_directory_with_files_but_no_cluster_is_refused(base_dir: Path) -> None:
    (base_dir / "data").mkdir()
    (base_dir / "data" / "notes.txt").write_text("not a database")
    with pytest.raises(ClusterError, match=r"holds no PostgreSQL cluster \(no PG_VERSION\)"):
        PostgresCluster(base_dir=base_dir).start()


def test_temporary_directory_is_removed_when_start_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: PostgresCluster) -> None:
        raise ClusterError("initdb failed")

    monkeypatch.setattr(PostgresCluster, "_initdb", fail)
    pg = PostgresCluster()
    with pytest.raises(ClusterError, match="initdb failed"):
        pg.start()
    assert pg.base_dir is not None and not pg.base_dir.exists()


@pytest.mark.slow
def test_restart_recovers_from_a_stale_pid_file_and_applies_new_settings(seeded_dir: Path) -> None:
    with PostgresCluster(base_dir=seeded_dir) as pg, psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kept")
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    # A server killed hard leaves postmaster.pid naming a process that is gone (or reused).
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file = seeded_dir / "data" / "postmaster.pid"
    pid_file.write_text(f"{dead.pid}\n{seeded_dir / 'data'}\n")
    with (
        PostgresCluster(base_dir=seeded_dir, settings={"work_mem": "7MB"}) as pg,
        psycopg.connect(pg.dsn()) as conn,
    ):
        assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)
    # An unrelated live process reusing the pid is not mistaken for a server either.
    pid_file.write_text(f"{os.getpid()}\n{seeded_dir / 'data'}\n")
    with PostgresCluster(base_dir=seeded_dir) as pg:
        assert pg.running
    assert _wait_gone(seeded_dir / "data") == []


def test_second_server_in_the_same_directory_is_refused(seeded_dir: Path) -> None:
    with PostgresCluster(base_dir=seeded_dir) as first:
        with pytest.raises(ClusterError, match=rf"already runs in {seeded_dir / 'data'}"):
            PostgresCluster(base_dir=seeded_dir).start()
        assert first.running
    assert _wait_gone(seeded_dir / "data") == []


def test_detached_server_outlives_its_cluster_object_and_attach_stops_it(seeded_dir: Path) -> None:
    started = PostgresCluster(base_dir=seeded_dir).start()
    started.detach()
    started.stop()  # a detached cluster no longer owns the server: stop() leaves it running
    pid = started.server_pid
    assert pid is not None
    with psycopg.connect(started.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    attached = PostgresCluster.attach(seeded_dir)
    assert attached.server_pid == pid
    attached.stop()
    assert _wait_gone(seeded_dir / "data") == []
    assert (seeded_dir / "data" / "PG_VERSION").exists()  # the data survives


def test_attach_without_a_running_server_is_refused(seeded_dir: Path, base_dir: Path) -> None:
    with pytest.raises(ClusterError, match=f"no server is running in {seeded_dir}"):
        PostgresCluster.attach(seeded_dir)
    with pytest.raises(ClusterError, match=f"{base_dir} holds no PostgreSQL cluster"):
        PostgresCluster.attach(base_dir)


def test_only_a_started_cluster_with_lasting_data_can_be_detached(seeded_dir: Path) -> None:
    with pytest.raises(ClusterError, match="only a started cluster can be detached"):
        PostgresCluster(base_dir=seeded_dir).detach()


@pytest.mark.slow
def test_a_temporary_cluster_cannot_be_detached() -> None:
    with PostgresCluster() as temporary:
        with pytest.raises(ClusterError, match="temporary cluster cannot be detached"):
            temporary.detach()
        assert temporary.running


_OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from parquetry.pg.cluster import PostgresCluster
    pg = PostgresCluster(base_dir=Path(sys.argv[1])).start()
    print(pg.server_pid, flush=True)
    while True:
        time.sleep(0.05)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_server_stops_when_the_owning_process_is_signalled(seeded_dir: Path, signum: signal.Signals) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, str(seeded_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        line = owner.stdout.readline()  # type: ignore[union-attr]
        assert line.strip().isdigit(), owner.stderr.read()  # type: ignore[union-attr]
        server_pid = int(line)
        assert _servers_in(seeded_dir / "data") == [server_pid]
        owner.send_signal(signum)
        returncode = owner.wait(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    if signum == signal.SIGTERM:
        assert returncode == -signal.SIGTERM  # the default action still ends the process
    assert _wait_gone(seeded_dir / "data") == []
    assert not (seeded_dir / "data" / "postmaster.pid").exists()


_TEMPORARY_OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from parquetry.pg.cluster import PostgresCluster
    pg = PostgresCluster(tmp_root=sys.argv[1]).start()
    print(pg.base_dir, flush=True)
    while True:
        time.sleep(0.05)
    """
)


@pytest.mark.slow
def test_killed_owner_leaves_neither_server_nor_temporary_directory(base_dir: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _TEMPORARY_OWNER_SCRIPT, str(base_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        line = owner.stdout.readline().strip()  # type: ignore[union-attr]
        assert line, owner.stderr.read()  # type: ignore[union-attr]
        cluster_dir = Path(line)
        assert cluster_dir.parent == base_dir and (cluster_dir / "data" / "PG_VERSION").exists()
        owner.kill()
        owner.wait(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert _wait_gone(cluster_dir / "data") == []
    deadline = time.monotonic() + 20
    while cluster_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not cluster_dir.exists()


def test_as_root_the_server_runs_as_the_postgres_account(pg_cluster: PostgresCluster) -> None:
    if os.geteuid() != 0:
        pytest.skip("only meaningful when the tests run as root")
    assert pg_cluster.run_as == "postgres"
    pid = pg_cluster.server_pid
    assert pid is not None
    uid_line = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")
    )
    assert int(uid_line.split()[1]) == pwd.getpwnam("postgres").pw_uid


_UNPRIVILEGED_SCRIPT = textwrap.dedent(
    """
    import os, pwd, sys
    from pathlib import Path
    import psycopg
    import psycopg.pq
    from parquetry.pg.cluster import PostgresCluster
    # The interpreter may live under a directory only root can enter: import first, then drop root.
    account = pwd.getpwnam("postgres")
    os.setgid(account.pw_gid)
    os.setgroups([])
    os.setuid(account.pw_uid)
    with PostgresCluster(base_dir=Path(sys.argv[1])) as pg:
        assert pg.run_as is None, pg.run_as
        with psycopg.connect(pg.dsn()) as conn:
            print(conn.execute("SELECT current_user, 6 * 7").fetchone(), os.geteuid(), flush=True)
    """
)


@pytest.mark.slow
def test_ordinary_user_runs_the_server_directly(base_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an ordinary account")
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres account")
    os.chown(base_dir, account.pw_uid, account.pw_gid)
    result = subprocess.run(
        [sys.executable, "-c", _UNPRIVILEGED_SCRIPT, str(base_dir / "c")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "HOME": str(base_dir)},
        cwd=base_dir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"('parquetry', 42) {account.pw_uid}"
    assert _wait_gone(base_dir / "c" / "data") == []
