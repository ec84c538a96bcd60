"""A throwaway PostgreSQL cluster: the embedded default for the demo and the test suite.

Parquetry needs a real PostgreSQL server for its demo and tests, but a user should not have to set one
up. ``PostgresCluster`` runs ``initdb`` and ``pg_ctl`` in a directory of its own, listens on 127.0.0.1
and a free port only, and stops the server on exit (and on Ctrl-C, through ``atexit``).

``initdb`` refuses to run as root. When this process is root (containers, CI) the server runs as an
unprivileged account (``postgres`` by default) and the cluster directory is handed to that account.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH, through "
    "`pg_config --bindir`, or under /usr/lib/postgresql/*/bin. Install them, e.g. "
    "`apt-get install postgresql` (Debian/Ubuntu), `brew install postgresql@16` (macOS), "
    "`dnf install postgresql-server` (Fedora), or `pip install pgserver` for a bundled server."
)


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


def find_bindir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory holding initdb, pg_ctl and postgres.

    Looks, in order, at ``explicit``, ``$PARQUETRY_PG_BINDIR``, PATH, ``pg_config --bindir``,
    ``/usr/lib/postgresql/*/bin`` (newest first) and the optional ``pgserver`` wheel.
    """
    candidates: list[Path] = []
    for value in (explicit, os.environ.get("PARQUETRY_PG_BINDIR")):
        if value:
            candidates.append(Path(value))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda p: _version_key(Path(p).parent.name), reverse=True)
    candidates.extend(Path(p) for p in versioned)
    with contextlib.suppress(ImportError):
        import pgserver  # type: ignore[import-not-found]

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    for bindir in candidates:
        if all((bindir / name).is_file() and os.access(bindir / name, os.X_OK) for name in SERVER_PROGRAMS):
            return bindir
    if explicit:
        raise ClusterError(f"{explicit} does not hold initdb, pg_ctl and postgres. {INSTALL_HINT}")
    raise ClusterError(INSTALL_HINT)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit()) or (0,)


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class PostgresCluster:
    """A PostgreSQL server in ``base_dir`` on 127.0.0.1, owned by this process.

    ``base_dir=None`` makes a temporary directory that is removed on stop. Settings in ``settings``
    go to ``postgresql.conf``; the defaults favour throughput of a disposable server (no fsync).
    """

    base_dir: Path | None = None
    port: int | None = None
    bindir: Path | None = None
    superuser: str = "parquetry"
    run_as: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 60.0
    keep_data: bool = False

    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.bindir = find_bindir(self.bindir)
        if self.run_as is None and os.geteuid() == 0:
            self.run_as = os.environ.get("PARQUETRY_PG_OS_USER", "postgres")

    # -- paths -------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "run"

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string for ``dbname`` (TCP on loopback, trust auth)."""
        if self.port is None:
            raise ClusterError("the cluster has not been started")
        return f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """The same as :meth:`dsn`, as a ``postgresql://`` URL."""
        if self.port is None:
            raise ClusterError("the cluster has not been started")
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        """Create the cluster if needed and start the server; returns self."""
        if self._started:
            return self
        if self.base_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="parquetry-pg-")
            self.base_dir = Path(self._tmp.name)
        self.base_dir = Path(self.base_dir).absolute()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over(self.base_dir)
        self._hand_over(self.socket_dir)
        self._clear_stale_pid()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
            raise ClusterError(
                f"port {self.port} on 127.0.0.1 is already in use; pick another port or leave it unset "
                "to get a free one"
            )
        self._pg_ctl_start()
        self._started = True
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove a temporary directory."""
        if self._started and self.data_dir.exists():
            result = self._run(
                [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"],
                check=False,
            )
            if result.returncode != 0 and self._server_pid() is not None:
                self._kill_server()
        self._started = False
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        if self._tmp is not None and not self.keep_data:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._started and self._server_pid() is not None

    # -- internals ---------------------------------------------------------------------------

    def _initdb(self) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise ClusterError(
                f"{self.data_dir} exists but holds no PostgreSQL cluster (no PG_VERSION); remove it or "
                "choose another directory"
            )
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"initdb failed in {self.data_dir}:\n{result.stdout}{result.stderr}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "256MB",
            "max_wal_size": "4GB",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
        }
        conf.update({k: str(v) for k, v in self.settings.items()})
        with open(self.data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as fh:
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")

    def _pg_ctl_start(self) -> None:
        cmd = [
            str(self.bindir / "pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(self.start_timeout_s)),
            "-o",
            f"-p {self.port} -k {self.socket_dir}",
        ]
        result = self._run(cmd, check=False)
        if result.returncode != 0:
            log_tail = self._log_tail()
            if self._server_pid() is not None:
                self._kill_server()
            raise ClusterError(
                f"PostgreSQL did not start in {self.data_dir} on port {self.port}:\n"
                f"{result.stdout}{result.stderr}\n--- server log (last lines) ---\n{log_tail}"
            )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _server_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def _clear_stale_pid(self) -> None:
        """A crashed server leaves postmaster.pid behind; remove it only when that process is gone."""
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists() and self._server_pid() is None:
            pid_file.unlink()

    def _kill_server(self) -> None:
        pid = self._server_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._server_pid() is not None:
            time.sleep(0.05)
        if self._server_pid() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _hand_over(self, path: Path) -> None:
        """Make ``path`` usable by the server account when we run as root."""
        if self.run_as is None:
            return
        try:
            account = pwd.getpwnam(self.run_as)
        except KeyError as exc:
            raise ClusterError(
                f"running as root, the server needs an unprivileged account, but {self.run_as!r} does not "
                "exist; create it (`useradd postgres`) or set PARQUETRY_PG_OS_USER"
            ) from exc
        os.chown(path, account.pw_uid, account.pw_gid)
        # Every parent must be traversable by the server account.
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                with contextlib.suppress(PermissionError):
                    os.chmod(parent, mode | 0o001)

    def _run(self, cmd: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        preexec = None
        env = dict(os.environ)
        env.pop("PGDATA", None)
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)

            def preexec() -> None:  # runs in the child before exec
                os.setgid(account.pw_gid)
                os.setgroups([])
                os.setuid(account.pw_uid)

            env["HOME"] = account.pw_dir
            env["USER"] = env["LOGNAME"] = self.run_as
        try:
            return subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                check=check,
                preexec_fn=preexec,
                env=env,
                cwd=str(self.base_dir),
                start_new_session=True,
                timeout=self.start_timeout_s + 30,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{Path(cmd[0]).name} timed out after {exc.timeout}s") from exc


@contextlib.contextmanager
def throwaway_cluster(**kwargs: object) -> Iterator[PostgresCluster]:
    """``with throwaway_cluster() as pg: psycopg.connect(pg.dsn())``."""
    cluster = PostgresCluster(**kwargs)  # type: ignore[arg-type]
    try:
        yield cluster.start()
    finally:
        cluster.stop()
