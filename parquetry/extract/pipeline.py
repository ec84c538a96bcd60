"""The extraction pipeline: snapshot, plan, reader threads, staged chunks, one ordered consumer.

``run_extraction`` owns the moving parts and their failure behaviour:

1. A coordinator connection opens a REPEATABLE READ READ ONLY transaction and exports its snapshot
   (``pg_export_snapshot()``); the plan (columns, leaf partitions, page ranges) is made inside it.
2. ``workers`` reader threads take COPY tasks in order. Each opens one connection, imports the
   snapshot (``SET TRANSACTION SNAPSHOT``) and runs its tasks, so all of them see exactly the data
   the coordinator saw, whatever is committed meanwhile.
3. Chunks land in a staging directory under a byte budget; the consumer (the calling thread) takes
   them in task order, so the result does not depend on timing or on the number of workers.

The first error in any stage stops all others and is raised itself (reader errors name the table
and range); the staging directory is removed whatever happens. The consumer is pluggable: any
callable ``(plan, chunks) -> result`` (``parquetry.extract.parquet`` holds the CPU one).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import psycopg
from psycopg import sql

from parquetry.extract.columns import describe_spec
from parquetry.extract.errors import ExtractCancelled, ExtractError
from parquetry.extract.plan import CopyTask, ExtractPlan, plan_extraction
from parquetry.extract.reader import READERS, CopyReader, open_reader
from parquetry.extract.spec import TableSpec
from parquetry.extract.staging import ChunkBoard, ChunkWriter, StagedChunk, make_run_dir

T = TypeVar("T")


@dataclass(frozen=True)
class ExtractOptions:
    """How to read. ``workers=None`` means one per CPU core; ``staging_dir=None`` means
    ``$PARQUETRY_STAGING_DIR``, else ``/dev/shm/parquetry-<uid>`` when it has room, else a temp dir.
    ``reader`` is ``auto``, ``socket`` or ``psycopg``.

    ``range_bytes`` and ``min_ranges`` set the ctid range size (heap bytes) and with it the plan,
    which never depends on ``workers``. ``chunk_bytes`` bounds one chunk file and
    ``staging_budget_bytes`` all staged chunks together (at least two chunks).

    The default ranges are half a chunk of heap, because a range's binary COPY stream is usually
    0.6-1.5 times its heap bytes: each range then fits one chunk, chunks have similar sizes, and a
    recycled chunk file is overwritten in place instead of being cut short and grown again (measured
    on the lineitem-like table of ``benchmarks/pg_to_parquet.py``, 2 cores: ranges as large as the
    64 MiB chunks made chunks of 63 and 15 MiB by turns and cost 0.3-0.5 client CPU-s more for 1.57 GB).

    Staged chunks are mapped into this process (see :mod:`parquetry.extract.mapped`), so they count in
    its RSS, and the budget bounds them: 32 MiB chunks and a 384 MiB budget leave room for 10 readers at
    once and add at most 384 MiB to the RSS whatever the table's size (64 MiB chunks measured the same
    CPU and 110 MB more RSS on two cores, where the decoder keeps up and little is staged). The rest of
    an extraction's RSS, decoder and writer, measured 550-600 MB on the benchmark's table, the same at 6
    and 24 M rows (the decoder's pool drops idle blocks, :mod:`parquetry.pgcopy.pool`), so the two stay
    under 1 GB together even where readers outpace the consumer and fill the budget (many cores, a fast
    server): 760 MB measured with the consumer held back and staging full.
    """

    workers: int | None = None
    staging_dir: str | None = None
    staging_budget_bytes: int = 384 << 20
    chunk_bytes: int = 32 << 20
    range_bytes: int = 16 << 20
    min_ranges: int = 16
    reader: str = "auto"
    batch_rows: int = 65_536
    connect_timeout_s: int = 30
    application_name: str = "parquetry-extract"

    def __post_init__(self) -> None:
        if self.reader not in READERS:
            raise ValueError(f"reader must be one of {READERS}, not {self.reader!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.chunk_bytes < 4096:
            raise ValueError("chunk_bytes must be at least 4096")
        if self.staging_budget_bytes < 2 * self.chunk_bytes:
            raise ValueError("staging_budget_bytes must hold at least two chunks (2 * chunk_bytes)")

    def worker_count(self, tasks: int) -> int:
        wanted = self.workers if self.workers is not None else available_cores()
        return max(1, min(wanted, tasks)) if tasks else 0


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask in containers), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class ExtractHooks:
    """Callbacks for observing (and, in tests, pausing) a run; they run in the reader threads."""

    before_task: Callable[[CopyTask], None] | None = None
    on_plan: Callable[[ExtractPlan], None] | None = None  # once, before any range is read
    after_task: Callable[[CopyTask, int, int], None] | None = None  # (task, rows, stream bytes) read


@dataclass
class ReadStats:
    """What the readers did: rows and bytes streamed, chunks staged, reader kind, timings."""

    snapshot: str = ""
    tasks: int = 0
    workers: int = 0
    reader: str = ""
    rows: int = 0
    stream_bytes: int = 0
    chunks: int = 0
    peak_staged_bytes: int = 0
    recycled_chunks: int = 0  # chunks written into a consumed chunk's file (see staging)
    staging_dir: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, writer: ChunkWriter) -> None:
        with self._lock:
            self.rows += writer.rows_total
            self.stream_bytes += writer.bytes_total
            self.chunks += writer.seq


@dataclass
class ExtractRun(Generic[T]):
    plan: ExtractPlan
    stats: ReadStats
    result: T


def _connect(dsn: str, options: ExtractOptions) -> psycopg.Connection:
    return psycopg.connect(
        dsn,
        autocommit=True,
        application_name=options.application_name,
        connect_timeout=options.connect_timeout_s,
    )


def run_extraction(
    dsn: str,
    spec: TableSpec,
    consumer: Callable[[ExtractPlan, Iterator[StagedChunk]], T],
    *,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    options: ExtractOptions | None = None,
    hooks: ExtractHooks | None = None,
) -> ExtractRun[T]:
    """Extract ``spec`` (optionally the rows of ``window`` on its time column) and feed the chunks,
    in order, to ``consumer`` running in this thread. Returns the plan, read statistics and the
    consumer's result."""
    options = options or ExtractOptions()
    hooks = hooks or ExtractHooks()
    stats = ReadStats()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    coordinator = _connect(dsn, options)
    run_dir = None
    board: ChunkBoard | None = None
    threads: list[threading.Thread] = []
    try:
        coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = str(coordinator.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
        try:
            columns = describe_spec(coordinator, spec)
            plan = plan_extraction(
                coordinator,
                spec,
                columns,
                window=window,
                range_bytes=options.range_bytes,
                min_ranges=options.min_ranges,
            )
        except psycopg.Error as exc:
            raise ExtractError(f"{spec.source}: {exc}") from exc
        prelude = sql.SQL(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}"
        ).format(sql.Literal(snapshot))
        prelude_text = prelude.as_string(coordinator)
        stats.snapshot = snapshot
        stats.tasks = len(plan.tasks)
        stats.workers = options.worker_count(len(plan.tasks))
        t_plan = time.perf_counter()
        stats.timings["plan_s"] = t_plan - wall0
        if hooks.on_plan is not None:
            hooks.on_plan(plan)

        run_dir = make_run_dir(options.staging_dir, min_free_bytes=options.staging_budget_bytes)
        stats.staging_dir = str(run_dir)
        board = ChunkBoard(run_dir, len(plan.tasks), options.staging_budget_bytes, options.chunk_bytes)
        readers: list[str] = []
        read_end: list[float] = []
        read_cpu: list[float] = []  # CPU seconds of each reader thread

        def produce() -> None:
            reader: CopyReader | None = None
            cpu_start = time.thread_time()
            try:
                while (index := board.take_task()) is not None:
                    task = plan.tasks[index]
                    if hooks.before_task is not None:
                        hooks.before_task(task)
                    if reader is None:
                        conn = _connect(dsn, options)
                        try:
                            reader = open_reader(conn, options.reader, board.stop)
                        except BaseException:
                            conn.close()
                            raise
                        readers.append(reader.name)
                        reader.begin(prelude_text, task.source)
                    writer = ChunkWriter(board, index, task.source)
                    reader.copy(task.statement, writer)
                    stats.add(writer)
                    board.task_done(index)
                    if hooks.after_task is not None:
                        hooks.after_task(task, writer.rows_total, writer.bytes_total)
            except BaseException as exc:
                if not isinstance(exc, ExtractCancelled | ExtractError):
                    exc = _name_table(exc, spec)
                board.fail(exc)
            finally:
                if reader is not None:
                    reader.close()
                read_end.append(time.perf_counter())
                read_cpu.append(time.thread_time() - cpu_start)

        for worker in range(stats.workers):
            thread = threading.Thread(
                target=produce, name=f"parquetry-read-{spec.name}-{worker}", daemon=True
            )
            thread.start()
            threads.append(thread)

        try:
            result = consumer(plan, board.consume())
            if board.head < len(plan.tasks) and board.error is None:
                raise ExtractError(f"{spec.source}: the consumer stopped before the last chunk")
        except BaseException as exc:
            board.fail(exc)
        finally:
            board.stop.set()
            for thread in threads:
                thread.join()
            threads.clear()
        if board.error is not None:
            raise board.error
        stats.reader = "+".join(sorted(set(readers))) if readers else "none"
        stats.peak_staged_bytes = board.peak
        stats.recycled_chunks = board.recycled
        stats.timings["read_s"] = (max(read_end) if read_end else t_plan) - t_plan
        stats.timings["read_cpu_s"] = sum(read_cpu)
        stats.timings["wall_s"] = time.perf_counter() - wall0
        stats.client_cpu_s = time.process_time() - cpu0
        return ExtractRun(plan, stats, result)
    finally:
        for thread in threads:  # only when setup failed after threads started
            thread.join()
        with contextlib.suppress(Exception):
            coordinator.close()
        if board is not None:
            board.close()
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)


def _name_table(exc: BaseException, spec: TableSpec) -> BaseException:
    """Errors from below (sockets, psycopg) get the table's name in front."""
    if isinstance(exc, psycopg.Error | OSError):
        wrapped = ExtractError(f"{spec.source}: {exc}")
        wrapped.__cause__ = exc
        return wrapped
    return exc
