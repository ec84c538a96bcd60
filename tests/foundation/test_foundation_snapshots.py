"""Snapshots: built once, reused by version, cloned per test, clones isolated from one another."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import psycopg.conninfo
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
    # The first store's cached template is gone; asking it again rebuilds rather than failing.
    assert _label(store.clone(v1, f"{name}_c")) == "v1"
    assert calls == Counter({"v1": 2, "v2": 1})
    for clone in (f"{name}_a", f"{name}_b", f"{name}_c"):
        other.drop(clone)


def test_clones_of_a_process_that_is_gone_are_dropped(pg_snapshots: SnapshotStore) -> None:
    spec = SnapshotSpec(f"orphan_{uuid.uuid4().hex[:8]}", _counting_builder("o", Counter()))
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = f"{spec.template_name[:40]}_c{gone.pid}_0"
    mine = pg_snapshots.clone(spec)
    pg_snapshots.clone(spec, orphan)
    try:
        assert orphan in pg_snapshots.drop_orphaned_clones()
        with psycopg.connect(pg_snapshots.admin_dsn) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        assert orphan not in names
        assert psycopg.conninfo.conninfo_to_dict(mine)["dbname"] in names
    finally:
        pg_snapshots.drop(mine)
        pg_snapshots.drop(orphan)


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


def test_pg_sample_db_clones_the_sample_database_per_scale(pg_sample_db, pg_snapshots: SnapshotStore) -> None:
    first = pg_sample_db(scale=0.003, seed=1)
    second = pg_sample_db(scale=0.003, seed=1)
    with psycopg.connect(first) as conn:
        conn.execute("DELETE FROM order_items")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)"
        ).fetchone()
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT count(*) > 0 FROM order_items").fetchone() == (True,)
    assert counts == (30, 300)
    assert pg_snapshots.builds["sample_db_0.003_1"] <= 1


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


_SESSION_TEST = """
import os
from pathlib import Path

import psycopg

from parquetry.testing.snapshots import snapshot


@snapshot("across_sessions", version=1)
def kept_db(dsn):
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write("built\\n")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE t AS SELECT 7 AS v")


def test_sees_the_snapshot(kept_db):
    with psycopg.connect(kept_db) as conn:
        assert conn.execute("SELECT v FROM t").fetchone() == (7,)
"""


@pytest.mark.slow
def test_sessions_sharing_a_kept_cluster_directory_reuse_an_unchanged_snapshot(tmp_path: Path) -> None:
    kept = Path(tempfile.mkdtemp(prefix="parquetry-test-pg-kept-"))
    (tmp_path / "test_inner_session.py").write_text(_SESSION_TEST)
    log = tmp_path / "builds.log"
    # Only Parquetry's plugin, loaded as the entry point would: the inner sessions stay quick.
    env = {
        **os.environ,
        plugin.CLUSTER_DIR_ENV: str(kept),
        "BUILD_LOG": str(log),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    env.pop("PYTEST_XDIST_WORKER", None)
    plugin_only = ["-p", "no:cacheprovider", "-p", "parquetry.testing.plugin"]
    command = [sys.executable, "-m", "pytest", "-q", *plugin_only, "test_inner_session.py"]
    try:
        for _ in range(2):
            result = subprocess.run(
                command,
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert (kept / "data" / "PG_VERSION").exists()  # the kept directory stays
            assert not (kept / "data" / "postmaster.pid").exists()  # and its server is stopped
        assert log.read_text() == "built\n"  # the second session reused the template
    finally:
        shutil.rmtree(kept, ignore_errors=True)
