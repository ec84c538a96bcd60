"""Shared test configuration. The PostgreSQL fixtures come from ``parquetry.testing.plugin``."""

import os
import tempfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# Specialized row kernels (parquetry.pgcopy.rowspec): the suite decodes with the generic kernel, the
# reference, and tests/pgcopy/test_pgcopy_rowspec.py holds the specialized ones to it. A test process
# that decoded a lot of one layout would otherwise compile its kernel into the user's cache when it exits.
os.environ.setdefault("PARQUETRY_ROW_KERNELS", "generic")
os.environ.setdefault("PARQUETRY_KERNEL_CACHE", tempfile.mkdtemp(prefix="parquetry-test-kernels-"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (real STDF samples); tests skip cleanly without it."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a fresh clone has none)")
    return SHARED


@pytest.fixture(autouse=True)
def _forget_disposed_dagster_instances():
    """Dagster 1.13's ``DagsterInstance.__exit__`` disposes the instance but leaves it installed as the
    current definitions-state storage (a context variable holding a weak reference). The next test that
    builds a repository then fails with "Attempted to resolve undefined DagsterInstance weakref".
    Clearing the variable after each test keeps tests independent of each other's instances."""
    yield
    import sys

    if "dagster" in sys.modules:
        from dagster._core.storage.defs_state.base import _current_storage

        _current_storage.set(None)
