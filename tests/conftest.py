"""Shared test configuration. The PostgreSQL fixtures come from ``parquetry.testing.plugin``."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (real STDF samples); tests skip cleanly without it."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a fresh clone has none)")
    return SHARED
