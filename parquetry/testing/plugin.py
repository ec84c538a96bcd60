"""Parquetry's pytest plugin: a throwaway PostgreSQL cluster per session, a fresh database per test,
and named snapshots (template databases) cloned per test.

Registered through the ``pytest11`` entry point, so any project that installs Parquetry can use the
fixtures. Tests that need PostgreSQL skip with the install hint when no server binaries exist (and
fail under ``CI``, where a missing server is a broken setup, not a choice).

Fixtures:

* ``pg_cluster`` (session): the :class:`~parquetry.pg.cluster.PostgresCluster`.
* ``pg_dsn``: a DSN to a new, empty database, dropped after the test.
* ``pg_snapshots`` (session): the :class:`~parquetry.testing.snapshots.SnapshotStore`.
* ``pg_snapshot``: a factory ``pg_snapshot(name, builder, version=1) -> dsn`` of a fresh clone.
* ``pg_sample_db``: a factory ``pg_sample_db(scale=0.02, seed=0) -> dsn``: a private clone of
  :func:`parquetry.sample_db.load_sample_database` at that scale (built once per scale and seed).
* ``@snapshot(name, version=...)`` from :mod:`parquetry.testing.snapshots` makes a builder a fixture.

``PARQUETRY_TEST_CLUSTER_DIR`` keeps the session cluster in that directory and does not delete it,
so snapshot templates survive to the next session (one subdirectory per pytest-xdist worker). Without
it the cluster lives in a fresh temporary directory, in ``/dev/shm`` when that has room (restoring a
snapshot is a file copy, much faster in memory), removed at the end even if the session is killed.
Not under pytest's own temp dir: pytest makes that private to its user, which the server account
(``postgres`` when the tests run as root) could then not enter.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from parquetry.pg.cluster import ClusterError, PostgresCluster, fast_tmp_root, find_bindir

if TYPE_CHECKING:
    from parquetry.testing.snapshots import SnapshotStore

_db_counter = itertools.count()

CLUSTER_DIR_ENV = "PARQUETRY_TEST_CLUSTER_DIR"


def _session_cluster_dir() -> tuple[Path | None, bool]:
    """(directory, persistent?) for the session cluster; None: a temporary one the cluster makes."""
    configured = os.environ.get(CLUSTER_DIR_ENV)
    if configured:
        base = Path(configured).expanduser().absolute()
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        return (base / worker if worker else base), True
    return None, False


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole test session."""
    try:
        find_bindir()
    except ClusterError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    base, persistent = _session_cluster_dir()
    cluster = PostgresCluster(base_dir=base, keep_data=persistent, tmp_root=fast_tmp_root())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_dsn(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A DSN to a new, empty database that is dropped after the test."""
    import psycopg
    from psycopg import sql

    name = f"t_{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_cluster.dsn(name)
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_snapshots(pg_cluster: PostgresCluster) -> SnapshotStore:
    """The session's snapshot store: builds each template once, clones it per request."""
    from parquetry.testing.snapshots import SnapshotStore

    store = SnapshotStore(pg_cluster)
    if os.environ.get(CLUSTER_DIR_ENV):
        store.drop_orphaned_clones()  # left by an earlier session that was killed
    return store


@pytest.fixture
def pg_snapshot(pg_snapshots: SnapshotStore) -> Iterator[Callable[..., str]]:
    """``pg_snapshot(name, builder, version=1) -> dsn``: a private clone, dropped after the test."""
    from parquetry.testing.snapshots import SnapshotSpec

    made: list[str] = []

    def clone(name: str, builder: Callable[[str], Any], version: str | int = 1) -> str:
        dsn = pg_snapshots.clone(SnapshotSpec(name, builder, version))
        made.append(dsn)
        return dsn

    yield clone
    for dsn in made:
        pg_snapshots.drop(dsn)


SAMPLE_DB_VERSION = 2  # raise with every change to the sample database's tables or data (2: promised_within)


@pytest.fixture
def pg_sample_db(pg_snapshots: SnapshotStore) -> Iterator[Callable[..., str]]:
    """``pg_sample_db(scale=0.02, seed=0) -> dsn``: a private copy of the sample database."""
    from parquetry.sample_db import load_sample_database
    from parquetry.testing.snapshots import SnapshotSpec

    made: list[str] = []

    def clone(scale: float = 0.02, seed: int = 0) -> str:
        def build(dsn: str) -> None:
            load_sample_database(dsn, scale=scale, seed=seed)

        spec = SnapshotSpec(f"sample_db_{scale:g}_{seed}", build, SAMPLE_DB_VERSION)
        dsn = pg_snapshots.clone(spec)
        made.append(dsn)
        return dsn

    yield clone
    for dsn in made:
        pg_snapshots.drop(dsn)
