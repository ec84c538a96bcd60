"""Fixtures the compactor's tests share: a migrated catalog with a test-sized policy, a local store."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A bucket ``lake`` on moto's S3 server on loopback (skips where moto, boto3 or s3fs is missing)."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).create_bucket(Bucket="lake")
        yield url
    finally:
        server.stop()
