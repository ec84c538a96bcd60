"""Staging of raw COPY chunks: files on local (ideally RAM-backed) disk between reader and decoder.

Readers write each page range's COPY stream into chunk files; the decoder consumes them in range
order and deletes them. Three properties matter:

* **Bounded space.** ``ChunkBoard`` keeps a byte budget: bytes reserved by open chunks plus bytes of
  finished chunks not yet consumed. A reader reserves the full chunk size before opening a chunk and
  waits (backpressure) while the budget is spent.
* **No deadlock with ordered consumption.** Output must not depend on timing, so the consumer takes
  chunks in task order. The task the consumer waits on (the *head*) may use the whole budget; every
  other task must leave one chunk size free for it. The head therefore always gets room, and its
  finished chunks are exactly what the consumer takes next. A single row larger than a chunk is the
  one exception: the head may then exceed the budget by that row.
* **Chunk files are mapped once and recycled.** Each chunk file is a :class:`MappedFile`: readers
  write into its shared map and the CPU decoder reads the same pages (``StagedChunk.data``), so no
  ``write()``, ``mmap`` or ``munmap`` happens per chunk. A consumed chunk's file is kept, under a spare
  name, for the next chunk to overwrite (its bytes stay counted in the budget until it is reused):
  its pages stay allocated and mapped. Writing a new file on tmpfs makes the kernel allocate and
  account every page, and deleting it frees them again: measured on the lineitem-like table of
  ``benchmarks/pg_to_parquet.py`` (2 cores), that was about a tenth of the whole run's client CPU.
* **Every chunk is a complete binary COPY stream.** A chunk starts with the 19-byte header and ends
  with the trailer, and chunk boundaries fall between rows, so each file decodes on its own (and
  ``COPY ... FROM ... (FORMAT binary)`` accepts it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parquetry.extract.errors import ExtractCancelled, ExtractError
from parquetry.extract.mapped import MappedFile

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER = COPY_SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags 0, no header extension
COPY_TRAILER = b"\xff\xff"
CHUNK_OVERHEAD = len(COPY_HEADER) + len(COPY_TRAILER)
DEFAULT_SHM = Path("/dev/shm")


def default_staging_root(min_free_bytes: int = 1 << 30) -> Path:
    """``$PARQUETRY_STAGING_DIR``, else ``/dev/shm/parquetry-<uid>`` when it has ``min_free_bytes`` free,
    else a temp dir. The default is per user: chunks hold table data, and one user's staging directory
    must neither block nor be readable by another's runs on a shared machine."""
    env = os.environ.get("PARQUETRY_STAGING_DIR")
    if env:
        return Path(env)
    with contextlib.suppress(OSError):
        if DEFAULT_SHM.is_dir() and shutil.disk_usage(DEFAULT_SHM).free >= min_free_bytes:
            return DEFAULT_SHM / f"parquetry-{os.getuid()}"
    return Path(tempfile.gettempdir()) / f"parquetry-staging-{os.getuid()}"


def make_run_dir(root: str | os.PathLike[str] | None = None, min_free_bytes: int = 1 << 30) -> Path:
    """A fresh directory for one run's chunks below ``root`` (default: :func:`default_staging_root`)."""
    base = Path(root) if root is not None else default_staging_root(min_free_bytes)
    run = base / f"run-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        run.mkdir(mode=0o700)
    except OSError as exc:
        raise ExtractError(
            f"cannot create a staging directory under {base}: {exc.strerror}; "
            "set PARQUETRY_STAGING_DIR (or the resource's staging_dir) to a directory this user can write"
        ) from exc
    return run


@dataclass(frozen=True)
class StagedChunk:
    """One chunk file: a complete binary COPY stream holding whole rows of one task (page range).

    ``task`` and ``seq`` give its place in the output order; ``source`` names the table and range.
    The file is deleted (or recycled) once the consumer moves past it. ``data`` is a read-only view of
    the file's bytes in the staging map, valid until then (None when the chunk does not fit the map).
    """

    path: Path
    task: int
    seq: int
    bytes: int
    rows: int
    source: str
    data: np.ndarray | None = field(default=None, compare=False, repr=False)
    file: MappedFile | None = field(default=None, compare=False, repr=False)


@dataclass
class _TaskState:
    chunks: list[StagedChunk] = field(default_factory=list)
    done: bool = False


class ChunkBoard:
    """Shared state between reader threads and the consumer: budget, ordered chunks, first error."""

    def __init__(self, directory: Path, tasks: int, budget_bytes: int, chunk_bytes: int):
        if budget_bytes < 2 * chunk_bytes:
            raise ValueError(
                f"staging budget {budget_bytes} must hold at least two chunks of {chunk_bytes} bytes"
            )
        self.directory = directory
        self.budget = budget_bytes
        self.chunk_bytes = chunk_bytes
        self.staged = 0
        self.peak = 0
        self.head = 0
        self._tasks = [_TaskState() for _ in range(tasks)]
        self._next_task = 0
        self._cond = threading.Condition()
        self.error: BaseException | None = None
        self.stop = threading.Event()
        # Spare files stay counted in ``staged``; keep the budget's two chunks free of them.
        self.max_spares = max(0, budget_bytes // chunk_bytes - 2)
        self._spares: list[MappedFile] = []  # consumed files kept for reuse, ``size`` bytes each
        self._spare_seq = 0
        self.recycled = 0  # chunks written into a spare file (statistics, tests)

    # -- tasks ----------------------------------------------------------------------------------

    def take_task(self) -> int | None:
        """The next task index to read (in order), or None when all are taken or the run stopped."""
        with self._cond:
            if self.stop.is_set() or self._next_task >= len(self._tasks):
                return None
            index = self._next_task
            self._next_task += 1
            return index

    def task_done(self, task: int) -> None:
        with self._cond:
            self._tasks[task].done = True
            self._cond.notify_all()

    # -- budget ---------------------------------------------------------------------------------

    def reserve(
        self, task: int, nbytes: int, oversize: bool = False, reuse: bool = False
    ) -> MappedFile | None:
        """Wait until ``nbytes`` fit the budget for ``task``; see the module docstring for the rule.

        ``oversize`` is for a single row larger than a chunk: it waits until ``task`` is the head,
        then takes the bytes even past the budget (the head's chunks are consumed next, so this
        cannot deadlock). With ``reuse``, a spare file's bytes count as free and the spare is
        returned, for the caller to rename and overwrite (its bytes are then part of ``nbytes``).
        """
        with self._cond:
            while True:
                self._check()
                spare = self._spares[-1].size if reuse and self._spares else 0
                if oversize:
                    ok = task == self.head
                else:
                    limit = self.budget if task == self.head else self.budget - self.chunk_bytes
                    used = self.staged - spare
                    ok = used + nbytes <= limit or used == 0
                if ok:
                    self.staged += nbytes - spare
                    self.peak = max(self.peak, self.staged)
                    if reuse and self._spares:
                        self.recycled += 1
                        return self._spares.pop()
                    return None
                self._cond.wait(0.5)

    def release(self, nbytes: int) -> None:
        with self._cond:
            self.staged -= nbytes
            self._cond.notify_all()

    # -- chunks ---------------------------------------------------------------------------------

    def publish(self, chunk: StagedChunk) -> None:
        with self._cond:
            self._tasks[chunk.task].chunks.append(chunk)
            self._cond.notify_all()

    def consume(self) -> Iterator[StagedChunk]:
        """Chunks in (task, seq) order; each file is deleted and its bytes released when the caller
        asks for the next one (or stops iterating)."""
        for task in range(len(self._tasks)):
            seq = 0
            while True:
                with self._cond:
                    while True:
                        self._check()
                        state = self._tasks[task]
                        if seq < len(state.chunks):
                            chunk = state.chunks[seq]
                            break
                        if state.done:
                            chunk = None
                            break
                        self._cond.wait(0.5)
                if chunk is None:
                    break
                try:
                    yield chunk
                finally:
                    self.discard(chunk)
                seq += 1
            with self._cond:
                self.head = task + 1
                self._cond.notify_all()

    def discard(self, chunk: StagedChunk) -> None:
        """The consumer is done with ``chunk``: keep its file as a spare, or delete it."""
        file = chunk.file
        with self._cond:
            if file is not None and len(self._spares) < self.max_spares and chunk.bytes <= self.chunk_bytes:
                spare = self.directory / f"spare-{self._spare_seq:06d}.pgcopy"
                self._spare_seq += 1
                try:
                    file.rename(spare)
                except FileNotFoundError:
                    pass
                else:
                    self._spares.append(file)  # its bytes stay staged
                    self._cond.notify_all()  # a waiting writer may take it
                    return
        if file is not None:
            file.close()
        else:
            with contextlib.suppress(FileNotFoundError):
                chunk.path.unlink()
        self.release(chunk.bytes)

    def close(self) -> None:
        """Unmap and delete the spare files and any chunk left unconsumed (at the end of a run, once
        readers and consumer are done)."""
        with self._cond:
            files = list(self._spares)
            self._spares = []
            for state in self._tasks:
                files += [c.file for c in state.chunks if c.file is not None]
                state.chunks = []
        for file in files:
            file.close()

    # -- errors ---------------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """Record the first error of any stage and stop all of them."""
        with self._cond:
            if self.error is None and not isinstance(exc, ExtractCancelled):
                self.error = exc
            self.stop.set()
            self._cond.notify_all()

    def _check(self) -> None:
        if self.stop.is_set():
            raise ExtractCancelled("extraction stopped") from self.error


class ChunkWriter:
    """Writes the rows of one task into chunk files of at most ``board.chunk_bytes`` bytes.

    Callers hand over whole rows only (``write_rows``, or ``window`` then ``commit``) and cut chunks
    with ``cut`` when the next row would not fit in ``room``; the writer adds header and trailer and
    publishes finished chunks.
    """

    def __init__(self, board: ChunkBoard, task: int, source: str):
        self.board = board
        self.task = task
        self.source = source
        self.seq = 0
        self.rows_total = 0
        self.bytes_total = 0
        self._file: MappedFile | None = None
        self._size = 0
        self._rows = 0
        self._reserved = 0

    @property
    def room(self) -> int:
        """Bytes of row data the open (or next) chunk can still take."""
        if self._file is None:
            return self.board.chunk_bytes - CHUNK_OVERHEAD
        return self._reserved - self._size - len(COPY_TRAILER)

    @property
    def chunk_rows(self) -> int:
        return self._rows if self._file is not None else 0

    def _open(self) -> None:
        spare = self.board.reserve(self.task, self.board.chunk_bytes, reuse=True)
        self._reserved = self.board.chunk_bytes
        path = self.board.directory / f"{self.task:06d}-{self.seq:05d}.pgcopy"
        try:
            if spare is not None:
                spare.rename(path)  # overwritten in place, cut to size at the end
                self._file = spare
            else:
                self._file = MappedFile(path, self.board.chunk_bytes)
            self._file.write(0, COPY_HEADER)
        except BaseException:  # e.g. no space: delete the file, give the reservation back
            file, self._file = self._file or spare, None
            if file is not None:
                file.close()
            self.board.release(self._reserved)
            self._reserved = 0
            raise
        self._size = len(COPY_HEADER)
        self._rows = 0

    def window(self, nbytes: int) -> np.ndarray:
        """A writable view where the next row bytes go: up to ``nbytes`` (and ``room``), space allocated.
        Fill a prefix of it with whole rows, then ``commit`` them."""
        if self._file is None:
            self._open()
        assert self._file is not None
        return self._file.window(self._size, max(0, min(nbytes, self.room)))

    def commit(self, nbytes: int, rows: int) -> None:
        """``rows`` whole rows (``nbytes`` bytes) were written at the start of the last ``window``."""
        self._size += nbytes
        self._rows += rows

    def write_rows(self, data: memoryview | bytes, rows: int) -> None:
        """Append ``rows`` whole rows (their bytes in ``data``) to the open chunk, opening one if needed."""
        if self._file is None:
            self._open()
        assert self._file is not None
        need = len(data) - self.room
        if need > 0:
            if self._rows:
                raise ExtractError(f"{self.source}: internal error: rows overflow chunk {self._file.path}")
            # one row larger than a chunk: take extra budget (waits until this task is the head)
            self.board.reserve(self.task, need, oversize=True)
            self._reserved += need
        self._file.write(self._size, data)
        self._size += len(data)
        self._rows += rows

    def cut(self) -> None:
        """Finish the open chunk (trailer, cut to size, publish); no-op when none is open."""
        file = self._file
        if file is None:
            return
        file.write(self._size, COPY_TRAILER)
        self._size += len(COPY_TRAILER)
        file.cut(self._size)  # a recycled file may be longer, and space is allocated ahead
        self._file = None
        chunk = StagedChunk(
            file.path, self.task, self.seq, self._size, self._rows, self.source,
            data=file.view(self._size), file=file,
        )  # fmt: skip
        self.board.release(self._reserved - self._size)
        self._reserved = 0
        self.seq += 1
        self.rows_total += self._rows
        self.bytes_total += self._size
        self.board.publish(chunk)

    def abort(self) -> None:
        """Drop the open chunk (on error): unmap, delete, give its reservation back."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
        if self._reserved:
            self.board.release(self._reserved)
        self._reserved = 0
