"""Snapshots: built once, reused by version, cloned per test, clones isolated from one another."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from parquetry.pg.cluster import PostgresCluster
from parquetry.testing import plugin
from parquetry.testing.snapshots import SnapshotError, SnapshotSpec, SnapshotStore, snapshot

pytestmark = pytest.mark.postgres

BUILDER_CALLS: Counter[str] = Counter()


def _small_builder(dsn: str) -> None:
    BUILDER_CALLS["small"] += 1
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")


@snapshot("foundation_small", version=1)
def small_db(dsn: str) -> None:
    _small_builder(dsn)


def _counting_builder(name: str, calls: Counter[str]):
    def build(dsn: str) -> None:
        calls[name] += 1
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE marker (built_by text)")
            conn.execute("INSERT INTO marker VALUES (%s)", (name,))

    return build


def _label(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT built_by FROM marker").fetchone()[0]


@pytest.mark.parametrize("step", ["first", "second"])
def test_each_test_gets_a_private_clone_of_a_template_built_once(small_db: str, step: str) -> None:
    with psycopg.connect(small_db) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (100,)
        assert conn.execute("SELECT count(*) FROM items WHERE label = 'changed'").fetchone() == (0,)
        conn.execute("UPDATE items SET label = 'changed' WHERE id <= 10")
        conn.execute("DELETE FROM items WHERE id > 50")
    # Built by this session at most once (zero times when a kept cluster already holds it).
    assert BUILDER_CALLS["small"] <= 1


def test_clones_do_not_see_each_others_changes(pg_snapshots: SnapshotStore) -> None:
    spec = SnapshotSpec(f"iso_{uuid.uuid4().hex[:8]}", _counting_builder("iso", Counter()))
    one, two = pg_snapshots.clone(spec), pg_snapshots.clone(spec)
    try:
        with psycopg.connect(one) as conn:
            conn.execute("INSERT INTO marker VALUES ('only in one')")
            conn.execute("CREATE TABLE extra ()")
        with psycopg.connect(two) as conn:
            assert conn.execute("SELECT count(*) FROM marker").fetchone() == (1,)
            assert conn.execute("SELECT to_regclass('extra')").fetchone() == (None,)
        three = pg_snapshots.clone(spec)
        with psycopg.connect(three) as conn:
            assert conn.execute("SELECT count(*) FROM marker").fetchone() == (1,)
        pg_snapshots.drop(three)
    finally:
        pg_snapshots.drop(one)
        pg_snapshots.drop(two)


def test_a_second_request_reuses_the_template_and_a_new_version_rebuilds(pg_cluster: PostgresCluster) -> None:
    calls: Counter[str] = Counter()
    name = f"reuse_{uuid.uuid4().hex[:8]}"
    v1 = SnapshotSpec(name, _counting_builder("v1", calls), version=1)
    store = SnapshotStore(pg_cluster)
    first = store.template(v1)
    assert store.template(v1) == first
    assert _label(store.clone(v1, f"{name}_a")) == "v1"
    # Another store (another session on the same cluster) finds the template and does not rebuild.
    other = SnapshotStore(pg_cluster)
    assert other.template(v1) == first
    assert (calls["v1"], store.builds[name], other.builds[name]) == (1, 1, 0)

    v2 = SnapshotSpec(name, _counting_builder("v2", calls), version=2)
    second = other.template(v2)
    assert second != first
    assert calls == Counter({"v1": 1, "v2": 1})
    assert _label(other.clone(v2, f"{name}_b")) == "v2"
    templates = other.templates()
    assert second in templates and first not in templates  # the older build of this snapshot is gone
    assert templates[second]["snapshot"] == name and templates[second]["version"] == "2"
    for clone in (f"{name}_a", f"{name}_b"):
        other.drop(clone)


def test_templates_accept_no_connections_and_are_marked_as_templates(pg_cluster: PostgresCluster) -> None:
    store = SnapshotStore(pg_cluster)
    spec = SnapshotSpec(f"flags_{uuid.uuid4().hex[:8]}", _counting_builder("f", Counter()))
    name = store.template(spec)
    with psycopg.connect(pg_cluster.dsn()) as conn:
        assert conn.execute(
            "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = %s", (name,)
        ).fetchone() == (True, False)
    with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
        psycopg.connect(store.dsn(name))


def test_a_builder_that_leaves_a_session_open_still_gives_a_usable_template(
    pg_cluster: PostgresCluster,
) -> None:
    left_open: list[psycopg.Connection] = []

    def builder(dsn: str) -> None:
        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute("CREATE TABLE t (v int)")
        left_open.append(conn)

    store = SnapshotStore(pg_cluster)
    spec = SnapshotSpec(f"open_{uuid.uuid4().hex[:8]}", builder)
    clone = store.clone(spec)
    try:
        with psycopg.connect(clone) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        store.drop(clone)
        for conn in left_open:
            conn.close()


def test_a_failing_builder_leaves_no_template_behind(pg_cluster: PostgresCluster) -> None:
    def builder(dsn: str) -> None:
        raise RuntimeError("generator broke")

    store = SnapshotStore(pg_cluster)
    spec = SnapshotSpec(f"broken_{uuid.uuid4().hex[:8]}", builder)
    with pytest.raises(SnapshotError, match=r"building snapshot 'broken_\w+' \(version 1\) failed"):
        store.template(spec)
    with psycopg.connect(pg_cluster.dsn()) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (spec.template_name + "%",)
        ).fetchall()
    assert left == []
    assert store.builds[spec.name] == 0


def test_pg_snapshot_fixture_hands_out_clones(pg_snapshot) -> None:
    calls: Counter[str] = Counter()
    build = _counting_builder("factory", calls)
    name = f"factory_{uuid.uuid4().hex[:8]}"
    first = pg_snapshot(name, build, version=3)
    second = pg_snapshot(name, build, version=3)
    assert first != second and _label(first) == _label(second) == "factory"
    assert calls["factory"] == 1


def test_template_names_fit_postgresql_identifiers_and_follow_the_version() -> None:
    long = SnapshotSpec("A very long snapshot name, with punctuation!" * 3, _small_builder, version="2024.1")
    assert len(long.template_name) <= 63
    assert long.template_name.startswith("snap_a_very_long_snapshot_name_w")
    bumped = SnapshotSpec(long.name, _small_builder, version="2024.2")
    assert bumped.template_name != long.template_name
    assert SnapshotSpec(long.name, _small_builder, version="2024.1").template_name == long.template_name


def test_kept_cluster_directory_is_used_per_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(plugin.CLUSTER_DIR_ENV, str(tmp_path / "kept"))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert plugin._session_cluster_dir() == (tmp_path / "kept", True)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert plugin._session_cluster_dir() == (tmp_path / "kept" / "gw1", True)
    monkeypatch.delenv(plugin.CLUSTER_DIR_ENV)
    assert plugin._session_cluster_dir() == (None, False)  # a temporary directory, removed at the end


@pytest.mark.slow
def test_snapshot_survives_a_cluster_restart_in_a_kept_directory() -> None:
    base = Path(tempfile.mkdtemp(prefix="parquetry-test-pg-kept-"))
    calls: Counter[str] = Counter()
    spec = SnapshotSpec("kept", _counting_builder("kept", calls), version=1)
    try:
        with PostgresCluster(base_dir=base, keep_data=True) as pg:
            assert SnapshotStore(pg).template(spec) == spec.template_name
        with PostgresCluster(base_dir=base, keep_data=True) as pg:
            store = SnapshotStore(pg)
            clone = store.clone(spec)
            assert _label(clone) == "kept"
            assert store.builds["kept"] == 0
        assert calls["kept"] == 1
        assert os.path.exists(base / "data" / "PG_VERSION")
    finally:
        shutil.rmtree(base, ignore_errors=True)
