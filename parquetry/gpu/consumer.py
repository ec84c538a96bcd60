"""The GPU consumer of the extraction pipeline: staged chunk files -> GPU decode -> Parquet files.

Plugs into ``parquetry.extract.parquet.extract_table_to_parquet(consumer_factory=...)`` (see
:func:`gpu_consumer_factory`). Two writers:

* ``pyarrow`` (default): chunks are decoded on the GPU, copied to the host as Arrow batches and written
  by the CPU path's own writer (``ParquetConsumer`` / ``write_partition``), so the files are
  byte-identical to the CPU engine's: same row groups, same files, same bytes.
* ``cudf``: decoded device buffers become a cuDF DataFrame and cuDF's GPU Parquet writer encodes them
  (same codec and row-group size; the file is verified, then published atomically). Used only when
  every column has a device-side cuDF mapping and the storage is local; otherwise the consumer writes
  with pyarrow and its ``engine`` string says why.

The ``engine`` string of the result always names what ran, e.g. ``gpu`` or
``gpu (cpu-decoded: tags, ranges; parquet: pyarrow)``.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from parquetry.gpu.decode import GpuDecodeOptions, decode_device, simulator_enabled, to_arrow
from parquetry.gpu.plan import plan_columns

WRITERS = ("pyarrow", "cudf")


def read_chunk(path: str | os.PathLike[str]) -> Any:
    """A staged chunk as a device buffer (kvikio) when kvikio is installed, else its bytes."""
    if not simulator_enabled():
        try:
            from parquetry.gpu.cudf_io import read_chunk_to_device

            return read_chunk_to_device(path)
        except ImportError:
            pass
    with open(path, "rb") as fh:
        return fh.read()


def gpu_chunk_decoder(
    chunk: Any, columns: list, batch_rows: int, options: GpuDecodeOptions | None = None
) -> Iterator[pa.RecordBatch]:
    """A ``ChunkDecoder`` for ``ParquetConsumer``: one staged chunk decoded on the GPU, as batches."""
    table = to_arrow(decode_device(read_chunk(chunk.path), columns, str(chunk.path), options))
    yield from table.to_batches(max_chunksize=batch_rows)


class GpuConsumer:
    """``(plan, chunks) -> ConsumeResult`` on the GPU; see the module docstring for the writers."""

    def __init__(
        self,
        storage: Any,
        directory: str,
        options: Any = None,
        *,
        writer: str = "pyarrow",
        decode_options: GpuDecodeOptions | None = None,
        batch_rows: int = 65_536,
    ):
        if writer not in WRITERS:
            raise ValueError(f"writer must be one of {WRITERS}, got {writer!r}")
        from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS

        self.storage = storage
        self.directory = directory
        self.options = options or EXTRACT_PARQUET_OPTIONS
        self.writer = writer
        self.decode_options = decode_options
        self.batch_rows = batch_rows

    def _decode(self, chunk: Any, columns: list, batch_rows: int) -> Iterator[pa.RecordBatch]:
        return gpu_chunk_decoder(chunk, columns, batch_rows, self.decode_options)

    def __call__(self, plan: Any, chunks: Iterator[Any]) -> Any:
        from parquetry.extract.parquet import ParquetConsumer
        from parquetry.pgcopy.types import arrow_schema

        schema = arrow_schema(plan.columns)
        cpu_columns = [p.name for p in plan_columns(plan.columns, schema) if not p.on_gpu]
        notes = [f"cpu-decoded: {', '.join(cpu_columns)}"] if cpu_columns else []
        writer = self.writer
        if writer == "cudf":
            why = self._cudf_refusal(schema, cpu_columns)
            if why:
                writer = "pyarrow"
                notes.append(f"parquet: pyarrow ({why})")
            else:
                notes.append("parquet: cudf")
        engine = "gpu" + (f" ({'; '.join(notes)})" if notes else "")
        if writer == "pyarrow":
            consumer = ParquetConsumer(
                self.storage,
                self.directory,
                self.options,
                decode=self._decode,
                batch_rows=self.batch_rows,
                engine=engine,
            )
            return consumer(plan, chunks)
        return self._consume_with_cudf(plan, chunks, schema, engine)

    def _cudf_refusal(self, schema: pa.Schema, cpu_columns: list[str]) -> str:
        from parquetry.gpu.cudf_io import cudf_unsupported_columns
        from parquetry.gpu.engine import probe_cudf

        cudf = probe_cudf()
        if not cudf:
            return cudf.reason
        if not self.storage.is_local:
            return "cuDF writes local files only; the storage is remote"
        bad = cudf_unsupported_columns(schema, cpu_columns)
        return f"no cuDF mapping for {', '.join(bad)}" if bad else ""

    def _consume_with_cudf(self, plan: Any, chunks: Iterator[Any], schema: pa.Schema, engine: str) -> Any:
        """GPU end to end: decode each chunk into a DataFrame, cut files by row count, write with cuDF."""
        import cudf

        from parquetry.extract.errors import ExtractError
        from parquetry.extract.parquet import PART_RE, ConsumeResult, part_path
        from parquetry.gpu.cudf_io import decode_chunk_to_cudf, temp_sibling, write_cudf_parquet
        from parquetry.storage import WrittenFile

        opts = self.options
        timings = {"wait_s": 0.0, "decode_s": 0.0, "write_s": 0.0}
        self.storage.remove_temporaries(self.directory)
        self.storage.makedirs(self.directory)
        written: list[WrittenFile] = []
        pending: list[Any] = []
        pending_rows = 0
        total = 0

        def write(df: Any) -> None:
            t0 = time.perf_counter()
            path = part_path(self.directory, len(written))
            tmp = temp_sibling(path)
            try:
                rows, groups = write_cudf_parquet(df, tmp, schema, opts)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            digest, size = self.storage.file_digest(path)
            written.append(WrittenFile(path=path, bytes=size, rows=rows, row_groups=groups, etag=digest))
            timings["write_s"] += time.perf_counter() - t0

        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            timings["wait_s"] += time.perf_counter() - t0
            if chunk is None:
                break
            t0 = time.perf_counter()
            df = decode_chunk_to_cudf(
                read_chunk(chunk.path), plan.columns, str(chunk.path), self.decode_options
            )
            timings["decode_s"] += time.perf_counter() - t0
            if len(df) != chunk.rows:
                raise ExtractError(
                    f"{chunk.source}: chunk {chunk.path.name} holds {chunk.rows} rows, {len(df)} decoded"
                )
            total += len(df)
            pending.append(df)
            pending_rows += len(df)
            while pending_rows >= opts.target_file_rows:
                merged = cudf.concat(pending, ignore_index=True)
                write(merged.iloc[: opts.target_file_rows])
                rest = merged.iloc[opts.target_file_rows :]
                pending, pending_rows = ([rest], len(rest)) if len(rest) else ([], 0)
        if pending_rows:
            write(cudf.concat(pending, ignore_index=True))
        elif not written:  # no rows at all: one empty file with the schema, as the CPU path writes
            written.append(
                self.storage.write_parquet(part_path(self.directory, 0), schema.empty_table(), schema, opts)
            )
        keep = {f.path for f in written}
        for path in self.storage.list_files(self.directory):
            if (
                posixpath.dirname(path) == self.directory
                and PART_RE.match(posixpath.basename(path))
                and path not in keep
            ):
                self.storage.delete(path)
        return ConsumeResult(written, total, schema, engine, timings, len(written))


def gpu_chunk_consumer(storage: Any, directory: str, options: Any = None, **kwargs: Any) -> GpuConsumer:
    """The GPU consumer for ``directory`` (same signature as the pipeline's ``consumer_factory``)."""
    return GpuConsumer(storage, directory, options, **kwargs)


def gpu_consumer_factory(
    writer: str = "pyarrow", decode_options: GpuDecodeOptions | None = None, batch_rows: int = 65_536
):
    """A ``consumer_factory`` for ``extract_table_to_parquet``: (storage, directory, options) -> consumer."""

    def factory(storage: Any, directory: str, options: Any) -> GpuConsumer:
        return GpuConsumer(
            storage, directory, options, writer=writer, decode_options=decode_options, batch_rows=batch_rows
        )

    return factory
