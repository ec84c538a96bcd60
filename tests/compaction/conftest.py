"""Fixtures the compactor's tests share: a migrated catalog with a test-sized policy, a local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from parquetry.catalog import Catalog
from parquetry.storage import Storage
from parquetry.testing.compaction import SMALL_POLICY


@pytest.fixture
def catalog(pg_dsn: str) -> Catalog:
    cat = Catalog(pg_dsn, policy=SMALL_POLICY)
    cat.migrate()
    return cat


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(str(tmp_path / "data"))
