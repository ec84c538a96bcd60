"""Parquetry's pytest plugin: a throwaway PostgreSQL cluster per session and a fresh database per test.

Registered through the ``pytest11`` entry point, so any project that installs Parquetry can use the
fixtures. Tests that need PostgreSQL skip with the install hint when no server binaries exist.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from parquetry.pg.cluster import ClusterError, PostgresCluster, find_bindir

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole test session (``PARQUETRY_TEST_DSN`` is not used here)."""
    try:
        find_bindir()
    except ClusterError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    base = tmp_path_factory.mktemp("pgcluster")
    cluster = PostgresCluster(base_dir=base)
    cluster.start()
    try:
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
