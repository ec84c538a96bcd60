"""A throwaway PostgreSQL cluster: the embedded default for the demo and the test suite.

Parquetry needs a real PostgreSQL server for its demo and tests, but a user should not have to set one
up. ``PostgresCluster`` runs ``initdb`` and ``pg_ctl`` in a directory of its own, listens on 127.0.0.1
and a free port only, and stops the server when the owning Python process ends, however it ends:

* normal exit and Ctrl-C (``KeyboardInterrupt`` unwinds into ``atexit``);
* SIGTERM / SIGHUP, whose default action would kill Python without running ``atexit``: a handler stops
  the servers, then hands the signal on to the previous handler (or re-raises it with the default
  action, so the exit status stays "killed by SIGTERM");
* SIGKILL, ``os._exit`` or a crash: a tiny watchdog process holds the read end of a pipe whose write end
  only the owner holds. When the pipe closes without the owner saying "stopped", the watchdog stops
  the server (fast shutdown, then SIGQUIT).

``initdb`` refuses to run as root. When this process is root (containers, CI) the server runs as an
unprivileged account (``postgres`` by default) and the cluster directory is handed to that account.

A directory can be reused across processes (``keep_data=True`` or an explicit ``base_dir``): a
``postmaster.pid`` left behind by a server that no longer runs is removed, while a server that still
runs there is reported instead of being started twice.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
#: Where distributions put versioned server binaries, searched after PATH and ``pg_config``.
SEARCH_GLOBS: tuple[str, ...] = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH, through "
    "`pg_config --bindir`, or under /usr/lib/postgresql/*/bin. Install them, e.g. "
    "`apt-get install postgresql` (Debian/Ubuntu), `brew install postgresql@16` (macOS), "
    "`dnf install postgresql-server` (Fedora), or `pip install pgserver` for a bundled server; "
    "or point PARQUETRY_PG_BINDIR at the directory holding them."
)
#: Settings for a disposable server: throughput over durability. ``settings`` override them.
DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
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
MANAGED_CONF = "parquetry.conf"
_BIND_FAILURE = re.compile(r"could not bind|Address already in use|could not create any TCP/IP sockets")

# The watchdog: reads one line from the pipe; anything but "stopped" (EOF included) means the owner
# died without stopping its server. It checks that postmaster.pid still names this data directory,
# stops that server, and removes the cluster's directory when it was a temporary one ($2).
_WATCHDOG = r"""
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  case "$(cat "/proc/$1/stat" 2>/dev/null)" in *") Z "*) return 1 ;; esac
  return 0
}
IFS= read -r line || line=""
[ "$line" = "stopped" ] && exit 0
pidfile="$1/postmaster.pid"
pid=$(head -n 1 "$pidfile" 2>/dev/null)
if [ -n "$pid" ] && [ "$(sed -n 2p "$pidfile" 2>/dev/null)" = "$1" ] && kill -INT "$pid" 2>/dev/null; then
  i=0
  while alive "$pid"; do
    i=$((i + 1))
    [ "$i" -eq 150 ] && kill -QUIT "$pid" 2>/dev/null
    [ "$i" -ge 300 ] && { kill -KILL "$pid" 2>/dev/null; break; }
    sleep 0.1
  done
fi
case "$2" in */parquetry-pg-*) rm -rf -- "$2" ;; esac
"""


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


def find_bindir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory holding initdb, pg_ctl and postgres.

    Looks, in order, at ``explicit``, ``$PARQUETRY_PG_BINDIR``, PATH, ``pg_config --bindir``,
    :data:`SEARCH_GLOBS` (newest version first) and the optional ``pgserver`` wheel. An explicit
    directory that lacks the programs is an error even when others exist: the caller asked for it.
    """
    if explicit:
        bindir = Path(explicit)
        missing = [name for name in SERVER_PROGRAMS if not _is_program(bindir / name)]
        if missing:
            raise ClusterError(f"{bindir} does not hold {', '.join(missing)}. {INSTALL_HINT}")
        return bindir
    candidates: list[Path] = []
    env_dir = os.environ.get("PARQUETRY_PG_BINDIR")
    if env_dir:
        candidates.append(Path(env_dir))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    for pattern in SEARCH_GLOBS:
        found = glob.glob(pattern)
        found.sort(key=_version_key, reverse=True)
        candidates.extend(Path(p) for p in found)
    with contextlib.suppress(ImportError):
        import pgserver  # type: ignore[import-not-found]

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    for bindir in candidates:
        if all(_is_program(bindir / name) for name in SERVER_PROGRAMS):
            return bindir
    raise ClusterError(INSTALL_HINT)


def _is_program(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _version_key(path: str) -> tuple[int, ...]:
    digits = re.findall(r"\d+", path)
    return tuple(int(d) for d in digits) or (0,)


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when PostgreSQL could not bind ``port``: something listens there or holds it bound.

    Binds with SO_REUSEADDR as the server does, so sockets in TIME_WAIT do not count.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _conf_value(value: object) -> str:
    """A postgresql.conf value: kept as given when already quoted or a plain word, else quoted."""
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(value)
    if (len(text) >= 2 and text[0] == text[-1] == "'") or re.fullmatch(r"[A-Za-z0-9._+-]+", text):
        return text
    return "'" + text.replace("'", "''") + "'"


def fast_tmp_root(min_free_bytes: int = 2 << 30) -> str | None:
    """``/dev/shm`` when it is a writable directory with room, else None (the system temp dir).

    Clones of template databases are file copies; in memory they take a fraction of the time.
    """
    shm = "/dev/shm"
    try:
        stat = os.statvfs(shm)
    except OSError:
        return None
    if stat.f_bavail * stat.f_frsize < min_free_bytes or not os.access(shm, os.W_OK | os.X_OK):
        return None
    return shm


def _process_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


# -- clusters owned by this process, stopped on signals --------------------------------------------------

_live: dict[int, PostgresCluster] = {}
_live_lock = threading.Lock()
_previous_handlers: dict[int, Any] = {}
_handlers_pid: int | None = None
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)
)


def _stop_all() -> None:
    with _live_lock:
        clusters = list(_live.values())
    for cluster in clusters:
        with contextlib.suppress(Exception):
            cluster.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Chain to the previous handler; where that would kill Python outright, stop the servers first."""
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)  # e.g. KeyboardInterrupt: unwinding reaches atexit and stop()
        return
    if previous == signal.SIG_IGN:
        return
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    global _handlers_pid
    if _handlers_pid == os.getpid() or threading.current_thread() is not threading.main_thread():
        return
    for signum in _STOP_SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            current = signal.getsignal(signum)
            if current is _on_signal:
                continue
            _previous_handlers[signum] = current
            signal.signal(signum, _on_signal)
    _handlers_pid = os.getpid()


@dataclass
class PostgresCluster:
    """A PostgreSQL server in ``base_dir`` on 127.0.0.1, owned by this process.

    ``base_dir=None`` makes a temporary directory (under ``tmp_root``, default the system temp dir)
    that is removed on stop (unless ``keep_data``), even when the owning process is killed.
    ``settings`` go to a managed ``parquetry.conf`` rewritten on every start, on top of
    :data:`DEFAULT_SETTINGS`; values are postgresql.conf values (``"64MB"``, ``"'UTC'"``).
    """

    base_dir: Path | None = None
    port: int | None = None
    bindir: Path | None = None
    superuser: str = "parquetry"
    run_as: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 60.0
    keep_data: bool = False
    tmp_root: str | os.PathLike[str] | None = None

    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False, repr=False)
    _owner_pid: int | None = field(default=None, init=False, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _watchdog_fd: int | None = field(default=None, init=False, repr=False)
    _port_explicit: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._port_explicit = self.port is not None
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
        """Create the cluster if needed and start the server; returns self.

        Raises :class:`ClusterError` with the server log's last lines when the server does not come
        up; no server process is left behind then.
        """
        if self._started:
            return self
        if self._port_explicit and port_in_use(self.port):  # type: ignore[arg-type]
            raise ClusterError(
                f"port {self.port} on 127.0.0.1 is already in use; pick another port or leave it unset "
                "to get a free one"
            )
        if self.base_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="parquetry-pg-", dir=self.tmp_root)
            self.base_dir = Path(self._tmp.name)
        try:
            self._prepare_directory()
            self._start_watchdog()  # before the server: no window in which a kill would leak it
            self._start_server()
        except BaseException:
            self._stop_watchdog()
            self._cleanup_tmp()
            raise
        self._started = True
        self._owner_pid = os.getpid()
        with _live_lock:
            _live[id(self)] = self
        atexit.register(self.stop)
        _install_signal_handlers()
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove a temporary directory. Idempotent.

        A forked child that inherited this object does nothing: the server belongs to the parent.
        """
        if self._owner_pid is not None and self._owner_pid != os.getpid():
            self._started = False
            return
        with _live_lock:
            _live.pop(id(self), None)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        if self._started and self.data_dir.exists() and self._live_server_pid() is not None:
            pg_ctl = str(self.bindir / "pg_ctl")
            result = self._run(
                [pg_ctl, "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"], check=False
            )
            if result.returncode != 0:
                self._kill_server()
        self._started = False
        self._stop_watchdog()
        self._cleanup_tmp()

    def detach(self) -> None:
        """Let the running server outlive this process; stop it later through :meth:`attach`.

        A started cluster normally stops with its owner (atexit, signals, a watchdog process); a
        command that starts a long-lived server for the user (``parquetry pg start``) hands it over.
        """
        if not self._started:
            raise ClusterError("only a started cluster can be detached")
        if self._tmp is not None and not self.keep_data:
            raise ClusterError("a temporary cluster cannot be detached: give base_dir or keep_data=True")
        with _live_lock:
            _live.pop(id(self), None)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        self._stop_watchdog()  # tells the watchdog the owner let go on purpose
        self._started = False

    @classmethod
    def attach(cls, base_dir: str | os.PathLike[str], **options: Any) -> PostgresCluster:
        """Take ownership of a server already running in ``base_dir`` (one a detached cluster left).

        Raises :class:`ClusterError` when no server runs there. :meth:`stop` then stops it; the
        data directory is kept.
        """
        cluster = cls(base_dir=Path(base_dir), keep_data=True, **options)
        if not (cluster.data_dir / "PG_VERSION").exists():
            raise ClusterError(f"{cluster.base_dir} holds no PostgreSQL cluster")
        if cluster._live_server_pid() is None:
            raise ClusterError(f"no server is running in {cluster.base_dir}")
        cluster._started = True
        cluster._owner_pid = os.getpid()
        return cluster

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._started and self._live_server_pid() is not None

    @property
    def server_pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return self._live_server_pid() if self.base_dir is not None else None

    # -- internals ---------------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        assert self.base_dir is not None
        self.base_dir = Path(self.base_dir).absolute()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over(self.base_dir)
        self._hand_over(self.socket_dir)
        running = self._live_server_pid()
        if running is not None:
            raise ClusterError(
                f"a PostgreSQL server (pid {running}) already runs in {self.data_dir}; stop it "
                f"(`pg_ctl stop -D {self.data_dir}`) or use another directory"
            )
        self._clear_stale_pid()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._write_settings()

    def _start_server(self) -> None:
        explicit_port = self._port_explicit
        for attempt in range(4):
            if not explicit_port:
                self.port = free_port()
            elif port_in_use(self.port):  # type: ignore[arg-type]
                raise ClusterError(
                    f"port {self.port} on 127.0.0.1 is already in use; pick another port or leave it unset "
                    "to get a free one"
                )
            try:
                self._pg_ctl_start()
                return
            except ClusterError as exc:
                # Another process may grab a free port between our check and the server's bind.
                if explicit_port or attempt == 3 or not _BIND_FAILURE.search(str(exc)):
                    raise
        raise AssertionError("unreachable")

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
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write(f"\ninclude_if_exists = '{MANAGED_CONF}'\n")

    def _write_settings(self) -> None:
        conf = dict(DEFAULT_SETTINGS)
        conf["unix_socket_directories"] = f"'{self.socket_dir}'"
        conf.update(self.settings)
        path = self.data_dir / MANAGED_CONF
        lines = [f"{key} = {_conf_value(value)}\n" for key, value in conf.items()]
        header = "# Written by Parquetry on every start; change PostgresCluster.settings instead.\n"
        path.write_text(header + "".join(lines))
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            os.chown(path, account.pw_uid, account.pw_gid)

    def _pg_ctl_start(self) -> None:
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
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
            f"-p {self.port}",
        ]
        try:
            result = self._run(cmd, check=False)
        except ClusterError:
            self._kill_server()
            raise
        if result.returncode != 0:
            self._kill_server()
            tail = self._log_tail(log_offset)
            raise ClusterError(
                f"PostgreSQL did not start in {self.data_dir} on port {self.port}:\n"
                f"{result.stdout}{result.stderr}\n--- server log (last lines) ---\n{tail}"
            )

    def _log_tail(self, offset: int = 0, lines: int = 30) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"

    def _live_server_pid(self) -> int | None:
        """The pid in postmaster.pid when that process is alive and is a server for this directory."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _alive(pid):
            return None
        # A server runs in its data directory; a reused pid (after a crash or reboot) does not.
        try:
            return pid if os.path.samefile(os.readlink(f"/proc/{pid}/cwd"), self.data_dir) else None
        except OSError:
            pass  # no /proc, or not allowed to look: judge by the command line
        cmdline = _process_cmdline(pid)
        if cmdline and not Path(cmdline[0].split(":")[0]).name.startswith(("postgres", "postmaster")):
            return None
        return pid

    def _clear_stale_pid(self) -> None:
        """A crashed server leaves postmaster.pid behind; remove it when no server runs there."""
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists() and self._live_server_pid() is None:
            pid_file.unlink()

    def _kill_server(self) -> None:
        """Stop a server that did not stop or start cleanly: SIGQUIT, then SIGKILL."""
        pid = self._live_server_pid()
        if pid is None:
            return
        for sig, wait_s in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if not _alive(pid):
                return
        raise ClusterError(f"PostgreSQL server pid {pid} in {self.data_dir} would not stop")

    def _start_watchdog(self) -> None:
        temporary = str(self.base_dir) if self._tmp is not None and not self.keep_data else ""
        read_fd, write_fd = os.pipe()
        try:
            self._watchdog = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "parquetry-pg-watchdog", str(self.data_dir), temporary],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            os.close(write_fd)
            self._watchdog = None
            return
        finally:
            os.close(read_fd)
        self._watchdog_fd = write_fd

    def _stop_watchdog(self) -> None:
        if self._watchdog_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._watchdog_fd, b"stopped\n")
            with contextlib.suppress(OSError):
                os.close(self._watchdog_fd)
            self._watchdog_fd = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None and not self.keep_data:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited process that nobody has reaped yet (a zombie) still answers kill(0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


@contextlib.contextmanager
def throwaway_cluster(**kwargs: object) -> Iterator[PostgresCluster]:
    """``with throwaway_cluster() as pg: psycopg.connect(pg.dsn())``."""
    cluster = PostgresCluster(**kwargs)  # type: ignore[arg-type]
    try:
        yield cluster.start()
    finally:
        cluster.stop()
