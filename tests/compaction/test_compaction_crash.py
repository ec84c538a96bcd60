"""A compactor SIGKILLed at its worst moments loses and duplicates nothing, and the next run converges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import Catalog, FragmentationPolicy, LeaseHeld
from parquetry.compact import CompactionSettings, Compactor, cleanup
from parquetry.compact.faults import FAULT_ENV
from parquetry.storage import Storage
from parquetry.testing.compaction import register, write_files

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POLICY = FragmentationPolicy(small_file_bytes=1 << 20, min_small_files=4)
TTL_S = 1.5
CHILD = """
import sys
from parquetry.catalog import Catalog, FragmentationPolicy
from parquetry.compact import CompactionSettings, Compactor
catalog = Catalog(sys.argv[1], policy=FragmentationPolicy(small_file_bytes=1 << 20, min_small_files=4))
settings = CompactionSettings(row_group_rows=1000, target_file_rows=3000, lease_ttl_s=float(sys.argv[3]))
Compactor(catalog, settings).run(sys.argv[2])
"""
SETTINGS = CompactionSettings(row_group_rows=1000, target_file_rows=3000, lease_ttl_s=TTL_S)


def run_child(dsn: str, dataset: str, fault: str) -> int:
    env = {**os.environ, FAULT_ENV: fault}
    return subprocess.run(
        [sys.executable, "-c", CHILD, dsn, dataset, str(TTL_S)], env=env, timeout=120
    ).returncode


def ids(catalog: Catalog, dataset: str) -> list[int]:
    tables = [pq.read_table(f.path, columns=["id"]) for f in catalog.live_files(dataset)]
    return sorted(pa.concat_tables(tables).column("id").to_pylist())


def compacted_on_disk(storage: Storage) -> list[str]:
    return sorted(p for p in os.listdir(storage.base) if p.startswith("compacted-"))


@pytest.fixture
def setup(pg_dsn: str, tmp_path: Path) -> tuple[Catalog, Storage, list[str]]:
    catalog = Catalog(pg_dsn, policy=POLICY)
    catalog.migrate()
    storage = Storage(str(tmp_path / "data"))
    files = write_files(storage, "", files=6, rows_per_file=800)
    register(catalog, "ds", storage, files)
    return catalog, storage, [f.path for f in files]


def test_killed_after_writing_outputs_before_commit(setup: tuple[Catalog, Storage, list[str]]) -> None:
    catalog, storage, _ = setup
    before = catalog.snapshot("ds")
    assert run_child(catalog.dsn, "ds", "after_outputs") == -signal.SIGKILL
    orphans = compacted_on_disk(storage)
    assert orphans, "the child wrote its outputs before dying"
    assert catalog.snapshot("ds") == before, "nothing was committed"
    assert ids(catalog, "ds") == list(range(4800))
    with pytest.raises(LeaseHeld):
        Compactor(catalog, SETTINGS).run("ds")
    time.sleep(TTL_S + 0.2)

    result = Compactor(catalog, SETTINGS).run("ds")

    assert result.status == "compacted"
    assert compacted_on_disk(storage) == orphans, "the re-run rewrote the same names, not a second copy"
    assert ids(catalog, "ds") == list(range(4800))
    assert len(catalog.compaction_log("ds")) == 1


def test_killed_after_commit_before_cleanup(setup: tuple[Catalog, Storage, list[str]]) -> None:
    catalog, _, inputs = setup
    generation = catalog.dataset("ds").generation
    assert run_child(catalog.dsn, "ds", "after_commit") == -signal.SIGKILL
    info = catalog.dataset("ds")
    assert info.generation == generation + 1 and info.compaction_in_progress
    assert ids(catalog, "ds") == list(range(4800))
    assert all(os.path.exists(p) for p in inputs), "retired inputs wait for the grace period"
    time.sleep(TTL_S + 0.2)

    assert Compactor(catalog, SETTINGS).run("ds").status == "nothing_to_do"
    assert not catalog.dataset("ds").compaction_needed
    assert sorted(cleanup(catalog, grace_s=0).deleted) == sorted(inputs)
    assert ids(catalog, "ds") == list(range(4800))
    assert len(catalog.compaction_log("ds")) == 1
