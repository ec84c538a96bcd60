"""Named database snapshots: build a test database once, hand every test its own copy in milliseconds.

A snapshot is a template database made by a builder function (``builder(dsn)`` fills an empty
database). Tests get clones made with ``CREATE DATABASE clone TEMPLATE snapshot``, a file-level copy
that costs far less than loading data again, and each clone is private to its test.

The template's name carries a hash of the snapshot name, its version and the version of the data
generator code (:func:`generator_code_version`). When the cluster directory outlives the test session
(``PARQUETRY_TEST_CLUSTER_DIR``), an unchanged snapshot is found by name and reused; changing the
version or the generators gives a new name, hence a rebuild, and older builds of that snapshot are
dropped.

Templates are built under a temporary name and renamed when complete, so a failed or interrupted
build is never mistaken for a snapshot. They are then marked ``datistemplate`` and closed to
connections: ``CREATE DATABASE ... TEMPLATE`` refuses a template that has other sessions connected.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.util
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

if TYPE_CHECKING:
    from parquetry.pg.cluster import PostgresCluster

__all__ = ["SnapshotSpec", "SnapshotStore", "generator_code_version", "snapshot"]

#: Modules whose code decides what a builder produces; their source is part of every snapshot's hash.
GENERATOR_MODULES = ("parquetry.testing.bulk", "parquetry.sample_db", "parquetry.pgcopy.encode")

_clone_counter = itertools.count()


@functools.cache
def generator_code_version() -> str:
    """A digest of the data generators' source code."""
    digest = hashlib.sha256()
    for module in GENERATOR_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"cannot find the source of {module}")
        digest.update(module.encode() + b"\0")
        with open(spec.origin, "rb") as fh:
            digest.update(fh.read())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class SnapshotSpec:
    """What to build: ``builder(dsn)`` fills the empty database at ``dsn``.

    Bump ``version`` whenever the builder's output changes; the generator modules are hashed for you.
    """

    name: str
    builder: Callable[[str], Any]
    version: str | int = 1

    @property
    def key(self) -> str:
        text = json.dumps([self.name, str(self.version), generator_code_version()])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def template_name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")[:32] or "db"
        return f"snap_{slug}_{self.key}"


class SnapshotError(RuntimeError):
    """A snapshot could not be built or cloned."""


class SnapshotStore:
    """Builds templates on demand and clones them, through a superuser connection string.

    ``builds`` counts the builds this store ran per snapshot name (a reused template counts none).
    """

    def __init__(self, target: str | PostgresCluster, *, strategy: str = "file_copy") -> None:
        self.admin_dsn = target if isinstance(target, str) else target.dsn()
        if strategy.lower() not in ("file_copy", "wal_log"):
            raise ValueError("strategy must be 'file_copy' or 'wal_log'")
        self.strategy = strategy.lower()
        self.builds: collections.Counter[str] = collections.Counter()
        self.build_seconds: dict[str, float] = {}
        self._ready: set[str] = set()

    def dsn(self, dbname: str) -> str:
        """The admin DSN pointed at ``dbname``."""
        return make_conninfo(self.admin_dsn, dbname=dbname)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_dsn, autocommit=True)

    def template(self, spec: SnapshotSpec) -> str:
        """The template database for ``spec``, built now unless it exists already."""
        name = spec.template_name
        if name in self._ready:
            return name
        with self._admin() as conn:
            if not _exists(conn, name):
                # Concurrent sessions on one cluster: the first builds, the others wait and reuse.
                conn.execute("SELECT pg_advisory_lock(%s)", (_lock_id(name),))
                try:
                    if not _exists(conn, name):
                        self._build(conn, spec)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_id(name),))
        self._ready.add(name)
        return name

    def _build(self, conn: psycopg.Connection, spec: SnapshotSpec) -> None:
        name = spec.template_name
        building = f"{name}_building"
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
        started = time.perf_counter()
        try:
            spec.builder(self.dsn(building))
        except BaseException as exc:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
            if isinstance(exc, Exception):
                raise SnapshotError(
                    f"building snapshot {spec.name!r} (version {spec.version}) failed"
                ) from exc
            raise
        seconds = time.perf_counter() - started
        # A builder may leave sessions open; a database with sessions cannot be renamed or copied.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (building,),
        )
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            )
        )
        label = json.dumps(
            {"snapshot": spec.name, "version": str(spec.version), "build_s": round(seconds, 3)}
        )
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(label)))
        self.builds[spec.name] += 1
        self.build_seconds[spec.name] = seconds
        self._drop_older_builds(conn, spec)

    def _drop_older_builds(self, conn: psycopg.Connection, spec: SnapshotSpec) -> None:
        rows = conn.execute(
            """
            SELECT d.datname, shobj_description(d.oid, 'pg_database')
            FROM pg_database d WHERE d.datistemplate AND d.datname LIKE 'snap\\_%%' AND d.datname <> %s
            """,
            (spec.template_name,),
        ).fetchall()
        for datname, comment in rows:
            try:
                label = json.loads(comment or "{}")
            except json.JSONDecodeError:
                continue
            if label.get("snapshot") == spec.name:
                drop_template(conn, datname)

    def clone(self, spec: SnapshotSpec, dbname: str | None = None) -> str:
        """A new database copied from ``spec``'s template (built first if needed); returns its DSN."""
        for attempt in range(2):
            template = self.template(spec)
            if dbname is None:
                dbname = f"{template[:40]}_c{os.getpid()}_{next(_clone_counter)}"
            try:
                with self._admin() as conn:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
                            sql.Identifier(dbname), sql.Identifier(template), sql.SQL(self.strategy)
                        )
                    )
            except psycopg.errors.InvalidCatalogName:
                # Another store replaced this template with a newer build of the same snapshot.
                self._ready.discard(template)
                if attempt == 1:
                    raise
                continue
            return self.dsn(dbname)
        raise AssertionError("unreachable")

    def drop(self, dsn_or_dbname: str) -> None:
        """Drop a clone (by DSN or name), closing any sessions still connected to it."""
        dbname = conninfo_to_dict(dsn_or_dbname).get("dbname") if "=" in dsn_or_dbname else dsn_or_dbname
        if not dbname:
            raise ValueError(f"no database name in {dsn_or_dbname!r}")
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(dbname)))
            )

    def drop_orphaned_clones(self) -> list[str]:
        """Drop clones whose creating process is gone (a killed session on a kept cluster)."""
        with self._admin() as conn:
            names = [
                row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
            ]
            dropped = []
            for name in names:
                match = _CLONE_NAME.match(name)
                if match and not _process_alive(int(match.group(1))):
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    )
                    dropped.append(name)
        return dropped

    def templates(self) -> dict[str, dict[str, Any]]:
        """Snapshot templates in the cluster: template name -> its label (snapshot, version, build_s)."""
        with self._admin() as conn:
            rows = conn.execute(
                """
                SELECT d.datname, shobj_description(d.oid, 'pg_database')
                FROM pg_database d WHERE d.datistemplate AND d.datname LIKE 'snap\\_%%'
                """
            ).fetchall()
        found = {}
        for datname, comment in rows:
            try:
                found[datname] = json.loads(comment or "{}")
            except json.JSONDecodeError:
                found[datname] = {}
        return found


def drop_template(conn: psycopg.Connection, name: str) -> None:
    """Drop a template database (it must first stop being a template)."""
    ident = sql.Identifier(name)
    conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


_CLONE_NAME = re.compile(r"^snap_\w*_c(\d+)_\d+$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def snapshot(
    name: str, version: str | int = 1, *, fixture_name: str | None = None
) -> Callable[[Callable[[str], Any]], Any]:
    """Turn a builder into a pytest fixture that yields the DSN of a fresh clone per test.

    ::

        @snapshot("orders_small", version=2)
        def orders_db(dsn: str) -> None:
            load_sample_database(dsn, scale=0.01)

        def test_something(orders_db: str) -> None:  # a private copy; dropped afterwards
            ...

    The fixture is named after the builder (or ``fixture_name``) and uses the session-wide
    ``pg_snapshots`` store, so the template is built at most once per session (and reused across
    sessions when the cluster directory persists).
    """
    import pytest

    def decorate(builder: Callable[[str], Any]) -> Any:
        spec = SnapshotSpec(name, builder, version)

        def clone_fixture(pg_snapshots: SnapshotStore) -> Iterator[str]:
            dsn = pg_snapshots.clone(spec)
            try:
                yield dsn
            finally:
                pg_snapshots.drop(dsn)

        clone_fixture.__doc__ = f"A private clone of snapshot {name!r} (version {version}); yields its DSN."
        return pytest.fixture(name=fixture_name or builder.__name__)(clone_fixture)

    return decorate
