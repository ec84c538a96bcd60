"""Chunks -> Arrow -> Parquet partition files, on the CPU; and the one-call API.

The consumer decodes staged chunks in order with :class:`parquetry.pgcopy.decode.CopyDecoder`,
regroups the batches into row groups of ``ParquetOptions.row_group_rows`` rows and files of
``target_file_rows`` rows, and writes them through :meth:`Storage.write_parquet` (temporary name,
verify, atomic publish). Row groups and files are cut by row count alone, so the bytes written
depend only on the rows and their order, never on chunk sizes, decoder batch sizes or the number
of workers: re-runs are byte-identical.

Layout: ``<root>/<dataset>/[date=YYYY-MM-DD/]part-NNNNN.parquet``. A run writes and verifies all
its files under hidden temporary names first, then moves them into place and deletes parts the run
did not write (e.g. a part-00003 left by an earlier, larger run): a partition holds exactly one
run's output, and a failed run leaves the previous one untouched.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import mmap
import os
import posixpath
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from parquetry.extract.errors import ExtractError
from parquetry.extract.pipeline import ExtractHooks, ExtractOptions, ReadStats, run_extraction
from parquetry.extract.plan import ExtractPlan, day_window
from parquetry.extract.spec import TableSpec
from parquetry.extract.staging import StagedChunk
from parquetry.pgcopy.pool import BufferPool
from parquetry.pgcopy.types import PgColumn, arrow_schema
from parquetry.storable import storable_schema
from parquetry.storage import TEMP_PREFIX, ParquetOptions, Storage, WrittenFile

ChunkDecoder = Callable[[StagedChunk, list[PgColumn], int], Iterable[pa.RecordBatch]]

EXTRACT_PARQUET_OPTIONS = ParquetOptions(
    compression="zstd",
    compression_level=1,
    use_dictionary=False,
    delta_integers=True,
    write_batch_rows=16_384,
    row_group_rows=131_072,
)
"""Extraction's default encoding, chosen by its write cost: no dictionaries, DELTA_BINARY_PACKED for
integer-like columns (keys, dates, timestamps, decimals up to 18 digits), zstd level 1, statistics on.

Measured on the lineitem-like table of ``benchmarks/pg_to_parquet.py`` (300k rows, 78 MB of COPY
stream, 2 cores), ``Storage.write_parquet`` CPU and file size against the previous default (zstd 2,
dictionaries on string columns, 1M-row groups): 0.21 s -> 0.14 s and 12.8 MB -> 9.9 MB. By step:
dropping the string dictionaries -20% CPU and -5% bytes (zstd packs repeated short strings as well as
a dictionary, and distinct strings make pyarrow build a dictionary it then abandons); delta integers
-12% CPU and -25% bytes; zstd 1 instead of 2 -16% CPU for +3% bytes (the deltas are packed already,
zstd mostly sees text); 16k-value write steps -5% CPU. Compaction re-encodes with its own settings.

Row groups of 131,072 rows (two decoder batches; DuckDB writes 122,880): pyarrow encodes a row group
in one call once all its rows are decoded, so smaller groups let encoding overlap reading and leave a
short tail after the last chunk arrives. Their encoding cost and file size are within 1% of 1M-row
groups on the table above.
"""


def decode_chunk_cpu(
    chunk: StagedChunk,
    columns: list[PgColumn],
    batch_rows: int,
    pool: BufferPool | None = None,
    kernels: collections.Counter[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Decode one chunk file with the numba decoder, straight from the staging map's pages
    (``chunk.data``) or else from a read-only memory map of the file.

    The staged file usually sits in RAM (``/dev/shm``): mapping it hands the decoder the page cache's
    own pages, where reading it would allocate a chunk-sized buffer and copy the whole file into it
    (measured: a fifth of the decoding CPU on a lineitem-like table). The decoded arrays never point
    into the map; the decoder's own buffers hold them. Batches are yielded one by one as they are
    decoded, so a chunk's decoded rows are never all in memory at once. ``pool`` (shared by the
    chunks of a run) supplies the batch buffers; ``kernels``, when given, counts the batches by the row
    kernel that decoded them (``"specialized"`` or ``"generic"``, see ``pgcopy.rowspec``).
    """
    from parquetry.pgcopy.decode import DEFAULT_BATCH_BYTES, CopyDecoder

    # Batch buffers sized for what a batch of this chunk holds: a chunk of fewer rows than a batch gets
    # buffers for its rows, and a batch's input bytes (which size its first string buffers) are bound
    # by its share of the chunk, with room for rows longer than the average. Buffers sized for the
    # largest possible batch would be touched only in part, and with transparent huge pages every
    # touched 2 MiB is zeroed by the kernel. Batch sizes never change the output (row groups are cut
    # by row count).
    rows = max(1, min(batch_rows, chunk.rows))
    share = int(rows * chunk.bytes / max(1, chunk.rows) * 1.5) + (64 << 10)
    decoder = CopyDecoder(
        columns, str(chunk.path), rows, batch_bytes=min(DEFAULT_BATCH_BYTES, share), pool=pool
    )
    if chunk.data is not None:  # the staging map's own pages: nothing to map or copy
        yield from _decode_view(decoder, memoryview(chunk.data), kernels)
        return
    with open(chunk.path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            yield from decoder.finish() or ()
            return
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        mapped = mmap.mmap(fh.fileno(), size, flags=flags, prot=mmap.PROT_READ)
    try:
        with memoryview(mapped) as view:
            yield from _decode_view(decoder, view, kernels)
    finally:
        mapped.close()


def _decode_view(
    decoder: Any, view: memoryview, kernels: collections.Counter[str] | None
) -> Iterator[pa.RecordBatch]:
    """Every batch of ``view``, then the decoder's last one."""
    batches = decoder.feed_iter(view)
    try:
        yield from _counted(decoder, batches, kernels)
    finally:
        batches.close()  # releases its hold on the view when the caller stops early
    yield from _counted(decoder, decoder.finish() or (), kernels)


def _counted(
    decoder: Any, batches: Iterable[pa.RecordBatch], kernels: collections.Counter[str] | None
) -> Iterator[pa.RecordBatch]:
    """``batches``, counted in ``kernels`` by the row kernel that decoded each."""
    for batch in batches:
        if kernels is not None:
            kernels["specialized" if decoder.specialized_kernel else "generic"] += 1
        yield batch


@dataclass
class ConsumeResult:
    """What a consumer produced: published files, rows, engine name and its stage timings."""

    files: list[WrittenFile]
    rows: int
    schema: pa.Schema
    engine: str
    timings: dict[str, float] = field(default_factory=dict)
    batches: int = 0


def partition_dir(storage: Storage, dataset: str, partition: str | None) -> str:
    """``<root>/<dataset>`` or ``<root>/<dataset>/date=<partition>``."""
    return storage.path(dataset, f"date={partition}") if partition else storage.path(dataset)


def part_path(directory: str, index: int) -> str:
    return posixpath.join(directory, f"part-{index:05d}.parquet")


class _Rows:
    """Pulls record batches and hands them out re-cut to exact row counts: one batch, or a table of
    several (its chunks are the decoder's buffers: a row group is not copied into one batch first)."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self._batches = batches
        self._pending: pa.RecordBatch | None = None

    def take(self, limit: int) -> pa.RecordBatch | pa.Table | None:
        parts: list[pa.RecordBatch] = []
        count = 0
        while count < limit:
            batch = self._pending if self._pending is not None else next(self._batches, None)
            self._pending = None
            if batch is None:
                break
            if batch.num_rows == 0:
                continue
            if count + batch.num_rows > limit:
                keep = limit - count
                parts.append(batch.slice(0, keep))
                self._pending = batch.slice(keep)
                count = limit
                break
            parts.append(batch)
            count += batch.num_rows
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else pa.Table.from_batches(parts)


def write_partition(
    storage: Storage,
    directory: str,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    options: ParquetOptions,
) -> list[WrittenFile]:
    """Write ``batches`` as the ``part-NNNNN.parquet`` files of ``directory``, replacing the old ones.

    Files are first written (and verified) in a hidden ``.tmp-run-*`` folder under names no Parquet
    glob matches; only when every file is written are they moved to their final names and the old
    partition's other Parquet files deleted (earlier parts, or what a compaction made of them).
    A failed run therefore leaves the partition as it was. An empty input
    still writes one (empty) file, so a materialized partition always has a schema.
    """
    pending_dir = posixpath.join(directory, f"{TEMP_PREFIX}run-{uuid.uuid4().hex[:12]}")
    options = options.resolved(schema)
    rows = _Rows(batches)
    group = max(1, min(options.row_group_rows, options.target_file_rows))
    pending: list[WrittenFile] = []
    try:
        while True:
            head = [rows.take(group)]
            if head[0] is None and pending:
                break
            empty = head[0] is None

            def file_batches(
                head: list[pa.RecordBatch | pa.Table | None] = head,
            ) -> Iterator[pa.RecordBatch | pa.Table]:
                # Row groups are handed on without keeping a reference: once written, their buffers
                # go back to the decoder's pool (memory stays at the groups in flight, not a file's).
                if head[0] is None:
                    return
                count = head[0].num_rows
                yield head.pop()
                while count < options.target_file_rows:
                    group_rows = rows.take(min(group, options.target_file_rows - count))
                    if group_rows is None:
                        return
                    count += group_rows.num_rows
                    yield group_rows
                    group_rows = None

            path = posixpath.join(pending_dir, f"{TEMP_PREFIX}part-{len(pending):05d}.pending")
            pending.append(storage.write_parquet(path, file_batches(), schema, options))
            if empty:
                break
        written = []
        for index, file in enumerate(pending):
            final = part_path(directory, index)
            storage.fs.move(file.path, final)  # a rename on local disks: atomic, replaces the old part
            written.append(dataclasses.replace(file, path=final))
        keep = {f.path for f in written}
        for path in storage.list_files(directory):
            # Every other published file of this partition goes: earlier parts, and files a compaction
            # wrote from them (the catalog retires those when the new parts are registered).
            if posixpath.dirname(path) == directory and path not in keep:
                storage.delete(path)
    finally:
        if storage.exists(pending_dir):
            storage.delete(pending_dir)
    return written


class ParquetConsumer:
    """The CPU consumer: ordered chunks -> ``decode`` -> row groups -> Parquet files in ``directory``.

    Decoding runs in its own thread, ``prefetch`` batches ahead of Parquet encoding (0: same thread).
    ``decode=None`` is :func:`decode_chunk_cpu` with one :class:`BufferPool` per run: a batch's buffers
    are reused once the Parquet writer has let go of it.
    """

    def __init__(
        self,
        storage: Storage,
        directory: str,
        options: ParquetOptions | None = None,
        *,
        decode: ChunkDecoder | None = None,
        batch_rows: int = 65_536,
        engine: str = "cpu",
        prefetch: int = 4,
    ):
        self.storage = storage
        self.directory = directory
        self.options = options or EXTRACT_PARQUET_OPTIONS
        self.decode = decode
        self.batch_rows = batch_rows
        self.engine = engine
        self.prefetch = prefetch

    def __call__(self, plan: ExtractPlan, chunks: Iterator[StagedChunk]) -> ConsumeResult:
        schema = arrow_schema(plan.columns)
        timings = {"wait_s": 0.0, "decode_s": 0.0}
        kernels: collections.Counter[str] = collections.Counter()
        decode = self.decode or functools.partial(decode_chunk_cpu, pool=BufferPool(), kernels=kernels)
        counts = {"rows": 0, "batches": 0}

        def decoded() -> Iterator[pa.RecordBatch]:
            while True:
                t0 = time.perf_counter()
                chunk = next(chunks, None)
                timings["wait_s"] += time.perf_counter() - t0
                if chunk is None:
                    return
                chunk_rows = 0
                batches = iter(decode(chunk, plan.columns, self.batch_rows))
                while True:
                    t0 = time.perf_counter()
                    batch = next(batches, None)
                    timings["decode_s"] += time.perf_counter() - t0
                    if batch is None:
                        break
                    if not batch.schema.equals(schema):
                        batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                    chunk_rows += batch.num_rows
                    counts["batches"] += 1
                    yield batch
                    batch = None  # not held while the next batch is decoded
                if chunk_rows != chunk.rows:
                    raise ExtractError(
                        f"{chunk.source}: chunk {chunk.path.name} holds {chunk.rows} rows, "
                        f"{chunk_rows} were decoded"
                    )
                counts["rows"] += chunk_rows

        t0, cpu0 = time.perf_counter(), time.thread_time()
        self.storage.remove_temporaries(self.directory)
        if self.decode is None:
            from parquetry.pgcopy.decode import load_kernels

            load_kernels()  # here, not first in the decoding thread (see load_kernels)
        if self.options.encoder == "parquetry":
            from parquetry.encoder import load_encoder

            load_encoder()
        if self.prefetch > 0:
            stream = _prefetch(decoded(), self.prefetch, timings)
            files = write_partition(self.storage, self.directory, stream, schema, self.options)
            starved = timings.pop("starved_s")
        else:
            files = write_partition(self.storage, self.directory, decoded(), schema, self.options)
            starved = timings["wait_s"] + timings["decode_s"]
        total = time.perf_counter() - t0
        timings["write_s"] = max(0.0, total - starved)
        if self.prefetch > 0:  # CPU seconds of this (the encoding) thread
            timings["write_cpu_s"] = time.thread_time() - cpu0
        engine = self.engine
        if kernels["specialized"]:  # says so when the layout's compiled kernel ran (pgcopy.rowspec)
            total_batches = kernels["specialized"] + kernels["generic"]
            engine += f" (specialized row kernel: {kernels['specialized']} of {total_batches} batches)"
        return ConsumeResult(files, counts["rows"], schema, engine, timings, counts["batches"])


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def _prefetch(
    items: Iterator[pa.RecordBatch], depth: int, timings: dict[str, float]
) -> Iterator[pa.RecordBatch]:
    """Run ``items`` (decoding) in a thread, ``depth`` batches ahead of the caller (Parquet encoding),
    so both overlap; the decoder's first error is raised here, and a caller that stops early stops
    the thread. ``timings["starved_s"]`` gets the time the caller waited for batches."""
    out: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        cpu0 = time.thread_time()
        try:
            for item in items:
                if not put(item):
                    return
                del item  # the queue holds it; the next is decoded without this reference
            put(_DONE)
        except BaseException as exc:
            put(_Failed(exc))
        finally:
            timings["decode_cpu_s"] = time.thread_time() - cpu0

    thread = threading.Thread(target=run, name="parquetry-decode", daemon=True)
    thread.start()
    timings["starved_s"] = 0.0
    try:
        while True:
            t0 = time.perf_counter()
            item = out.get()
            timings["starved_s"] += time.perf_counter() - t0
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


@dataclass
class ExtractResult:
    """One table (or one daily partition of it) extracted to Parquet."""

    dataset: str
    partition: str | None
    rows: int
    stream_bytes: int
    chunks: int
    tasks: int
    workers: int
    reader: str
    engine: str
    snapshot: str
    files: list[WrittenFile]
    schema: pa.Schema
    relations: list[str]
    timings: dict[str, float]
    peak_staged_bytes: int
    client_cpu_s: float
    batches: int = 0

    @property
    def parquet_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def throughput_mb_s(self) -> float:
        wall = self.timings.get("wall_s") or 0.0
        return self.stream_bytes / wall / 1e6 if wall > 0 else 0.0

    def metadata(self) -> dict[str, Any]:
        """Plain values for logs and asset metadata."""
        return {
            "rows": self.rows,
            "stream_bytes": self.stream_bytes,
            "parquet_bytes": self.parquet_bytes,
            "files": len(self.files),
            "chunks": self.chunks,
            "tasks": self.tasks,
            "workers": self.workers,
            "reader": self.reader,
            "engine": self.engine,
            "throughput_mb_s": round(self.throughput_mb_s, 1),
            "client_cpu_s": round(self.client_cpu_s, 3),
            **{k: round(v, 3) for k, v in self.timings.items()},
        }


def extract_table_to_parquet(
    dsn: str,
    spec: TableSpec,
    storage: Storage,
    *,
    partition: str | dt.date | None = None,
    options: ExtractOptions | None = None,
    parquet_options: ParquetOptions | None = None,
    consumer_factory: Callable[
        [Storage, str, ParquetOptions], Callable[[ExtractPlan, Iterator[StagedChunk]], ConsumeResult]
    ]
    | None = None,
    hooks: ExtractHooks | None = None,
) -> ExtractResult:
    """Extract one dataset (or one daily ``partition`` of it) to Parquet under ``storage``.

    ``partition`` (``YYYY-MM-DD``) is required exactly when the spec has a ``time_column``. The
    default consumer decodes on the CPU; ``consumer_factory(storage, directory, parquet_options)``
    plugs in another engine.
    """
    options = options or ExtractOptions()
    parquet_options = parquet_options or EXTRACT_PARQUET_OPTIONS
    if spec.is_partitioned and partition is None:
        raise ExtractError(
            f"{spec.source}: dataset {spec.name!r} is daily-partitioned; give a partition date"
        )
    if not spec.is_partitioned and partition is not None:
        raise ExtractError(f"{spec.source}: dataset {spec.name!r} has no time_column; it takes no partition")
    key = partition.isoformat() if isinstance(partition, dt.date) else partition
    window = day_window(key) if key is not None else None
    directory = partition_dir(storage, spec.name, key)
    if consumer_factory is None:
        consumer: Callable[[ExtractPlan, Iterator[StagedChunk]], ConsumeResult] = ParquetConsumer(
            storage, directory, parquet_options, batch_rows=options.batch_rows
        )
    else:
        consumer = consumer_factory(storage, directory, parquet_options)
    run = run_extraction(dsn, spec, consumer, window=window, options=options, hooks=hooks)
    stats: ReadStats = run.stats
    consumed = run.result
    if consumed.rows != stats.rows:
        raise ExtractError(f"{spec.source}: read {stats.rows} rows but wrote {consumed.rows}")
    return ExtractResult(
        dataset=spec.name,
        partition=key,
        rows=stats.rows,
        stream_bytes=stats.stream_bytes,
        chunks=stats.chunks,
        tasks=stats.tasks,
        workers=stats.workers,
        reader=stats.reader,
        engine=consumed.engine,
        snapshot=stats.snapshot,
        files=consumed.files,
        schema=storable_schema(consumed.schema),  # what the files hold (intervals as structs)
        relations=run.plan.relations,
        timings={**stats.timings, **consumed.timings},
        peak_staged_bytes=stats.peak_staged_bytes,
        client_cpu_s=stats.client_cpu_s,
        batches=consumed.batches,
    )
