"""The pipeline's GPU consumer writes the very same Parquet bytes as the CPU consumer, and says how it ran.

Runs the kernels under numba's CUDA simulator on staged chunk files made with the reference encoder.
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from parquetry.testing import cudasim

ACTIVE = cudasim.activate()

pytestmark = pytest.mark.cudasim
simulator_or_subprocess = cudasim.simulator_or_subprocess  # autouse: skip here when the subprocess runs them

from parquetry.extract.parquet import ParquetConsumer  # noqa: E402
from parquetry.extract.staging import StagedChunk  # noqa: E402
from parquetry.gpu.consumer import GpuConsumer, gpu_consumer_factory  # noqa: E402
from parquetry.gpu.decode import GpuDecodeOptions  # noqa: E402
from parquetry.pgcopy.types import PgColumn  # noqa: E402
from parquetry.storage import ParquetOptions, Storage  # noqa: E402
from parquetry.testing.copy_reference import encode_copy_binary  # noqa: E402

OPTS = GpuDecodeOptions(block_size=128, confirm=2, threads=16, chain_tile=8, scan_chunk=8)
COLUMNS = [
    PgColumn("id", 20, "bigint"),
    PgColumn("name", 25, "text"),
    PgColumn("price", 1700, "numeric(12,2)", ((12 << 16) | 2) + 4),
    PgColumn("day", 1082, "date"),
    PgColumn("tags", 1009, "text[]"),
]


def staged_chunks(directory: Path, sizes: list[int]) -> list[StagedChunk]:
    chunks, start = [], 0
    for seq, n in enumerate(sizes):
        rows = [
            [
                i,
                f"item {i}" if i % 4 else None,
                decimal.Decimal(i) / 4,
                dt.date(2024, 1, 1 + i % 28),
                [f"t{i}"] if i % 3 else None,
            ]
            for i in range(start, start + n)
        ]
        path = directory / f"chunk-{seq:03d}.copy"
        path.write_bytes(encode_copy_binary(COLUMNS, rows))
        chunks.append(
            StagedChunk(path=path, task=seq, seq=0, bytes=path.stat().st_size, rows=n, source=f"t#{seq}")
        )
        start += n
    return chunks


@pytest.mark.skipif(ACTIVE, reason="this process runs the simulator itself")
def test_module_runs_in_simulator_subprocess():
    cudasim.run_module_in_subprocess(__file__)


@pytest.mark.slow
def test_gpu_consumer_writes_byte_identical_parquet_and_names_cpu_columns(tmp_path):
    chunks = staged_chunks(tmp_path, [9, 0, 14, 5])
    plan = SimpleNamespace(columns=COLUMNS)
    options = ParquetOptions(row_group_rows=6, target_file_rows=13)
    storage = Storage(str(tmp_path / "out"))
    cpu = ParquetConsumer(storage, storage.path("cpu"), options)(plan, iter(chunks))
    gpu = GpuConsumer(storage, storage.path("gpu"), options, decode_options=OPTS)(plan, iter(chunks))
    assert cpu.rows == gpu.rows == 28
    assert len(gpu.files) == len(cpu.files) == 3
    for c, g in zip(cpu.files, gpu.files, strict=True):
        assert Path(c.path).read_bytes() == Path(g.path).read_bytes()
        assert (c.rows, c.row_groups, c.etag) == (g.rows, g.row_groups, g.etag)
    assert cpu.engine == "cpu"
    assert gpu.engine == "gpu (cpu-decoded: tags)"


def test_cudf_writer_request_without_cudf_writes_with_pyarrow_and_says_why(tmp_path):
    chunks = staged_chunks(tmp_path, [4])
    storage = Storage(str(tmp_path / "out"))
    consumer = gpu_consumer_factory(writer="cudf", decode_options=OPTS)(
        storage, storage.path("d"), ParquetOptions()
    )
    result = consumer(SimpleNamespace(columns=COLUMNS[:2]), iter(chunks[:0]))
    assert result.rows == 0 and len(result.files) == 1  # an empty dataset still gets a file with the schema
    assert result.engine.startswith("gpu (parquet: pyarrow (cuDF")
