"""The CPU consumer reuses decoder buffers within a run: a row group's batches go back to the pool once
written, so a run holds the row groups in flight, not the whole file, and the files stay byte-identical."""

import functools

import psycopg
import pyarrow.parquet as pq
import pytest

from parquetry.extract.parquet import ParquetConsumer, decode_chunk_cpu, extract_table_to_parquet
from parquetry.extract.pipeline import ExtractOptions
from parquetry.extract.spec import TableSpec
from parquetry.pgcopy.pool import BufferPool
from parquetry.storage import ParquetOptions, Storage

pytestmark = pytest.mark.postgres

SMALL = dict(range_bytes=8 * 8192, chunk_bytes=16 * 1024, staging_budget_bytes=256 * 1024)
GROUP_ROWS = 3000
FILES = ParquetOptions(row_group_rows=GROUP_ROWS, target_file_rows=12_000)


@pytest.fixture
def readings(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (id bigint, tag text, value numeric(12,2), ok boolean)")
        conn.execute(
            """INSERT INTO readings SELECT g, CASE WHEN g % 13 = 0 THEN NULL ELSE 'tag ' || (g % 97) END,
               CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 0.25)::numeric(12,2) END, g % 3 = 0
               FROM generate_series(1, 20000) g"""
        )
    return pg_dsn


def test_a_run_reuses_batch_buffers_and_writes_the_same_bytes(readings, tmp_path):
    spec = TableSpec("readings", relation="readings")
    options = ExtractOptions(workers=2, staging_dir=str(tmp_path / "staging"), **SMALL)
    plain = extract_table_to_parquet(
        readings, spec, Storage(str(tmp_path / "plain")), options=options, parquet_options=FILES
    )

    pool = BufferPool()

    def factory(storage, directory, parquet_options):
        decode = functools.partial(decode_chunk_cpu, pool=pool)
        return ParquetConsumer(storage, directory, parquet_options, decode=decode, prefetch=2)

    pooled = extract_table_to_parquet(
        readings,
        spec,
        Storage(str(tmp_path / "pooled")),
        options=options,
        parquet_options=FILES,
        consumer_factory=factory,
    )
    assert [f.etag for f in pooled.files] == [f.etag for f in plain.files]
    assert sum(pq.ParquetFile(f.path).metadata.num_rows for f in pooled.files) == 20000

    blocks_per_batch = 4  # fixed-width arena, validity bitmaps, string offsets, string data
    batch_rows = max(1, 20000 // pooled.batches)
    in_flight = GROUP_ROWS // batch_rows + 2 + 4  # a row group, the prefetch queue, decoding, slack
    assert pooled.batches > 3 * in_flight  # the run is long enough for holding everything to show
    assert pool.reused > 0
    assert pool.allocated <= blocks_per_batch * in_flight
