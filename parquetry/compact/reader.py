"""The compactor's input side: the plan's row groups, read ahead by a small thread pool, in plan order.

Fragmented datasets are many small files, and decoding one is mostly zstd and dictionary work inside
pyarrow, which releases the GIL. So a pool of ``READ_THREADS`` threads (``REMOTE_READ_THREADS`` on an
object store, to overlap round trips) decodes the next files while the caller assembles and hashes the
previous ones and the writer encodes (on two cores, reading one file at a time left a core idle).
Read-ahead is bounded by rows (``READ_AHEAD_ROWS``), so memory holds a few output row groups whatever
the input sizes, and it runs across outputs: the next output's first inputs are decoded while the
writer encodes the current output's last row groups.

Every row group read goes into the input digest whole (not the slices the plan takes of it), each exactly
once, so a planning error that drops or repeats rows shows up as a digest mismatch.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.compact.errors import CompactionError
from parquetry.compact.plan import Plan, PlannedFile, PlannedRowGroup
from parquetry.compact.schema_merge import SchemaMergeError, conform
from parquetry.compact.verify import RowDigest
from parquetry.storage import Storage

PREFETCH = 2  # assembled row groups waiting for the writer
READ_THREADS = 2  # input files decoded at once on a local disk (two cores: CPU-bound)
REMOTE_READ_THREADS = 8  # on an object store, where each read waits on round trips
READ_AHEAD_ROWS = 1 << 20  # decoded input rows waiting to be assembled (one read always goes ahead)
TASK_ROWS = 1 << 16  # consecutive row groups up to this many rows make one read task (fewer hand-offs)
THREADED_READ_ROWS = 1 << 17  # row groups at least this big decode their columns in parallel

Key = tuple[int, int]  # (input index, row group)


class ReadError(CompactionError):
    """An input could not be read or does not fit the merged schema; the message names the file."""


def open_parquet(storage: Storage, path: str, metadata: pq.FileMetaData | None = None) -> pq.ParquetFile:
    """Open ``path`` the way the compactor reads it: INT96 as microseconds, page checksums checked.

    ``metadata`` (a footer already parsed at planning) saves parsing it again.
    """
    try:
        return pq.ParquetFile(
            storage.fs.open_input_file(path),
            metadata=metadata,
            coerce_int96_timestamp_unit="us",
            page_checksum_verification=True,
        )
    except (OSError, pa.ArrowException) as exc:
        raise ReadError(f"{storage.uri(path)}: not a readable Parquet file: {exc}") from exc


def read_footers(
    storage: Storage, paths: Sequence[str], threads: int = 4
) -> list[tuple[pq.FileMetaData, pa.Schema]]:
    """The footers (metadata and Arrow schema) of ``paths``, in order, read by a few threads at once.

    On an object store each footer costs round trips, so ``threads`` overlap them; the first failure in
    ``paths`` order is raised.
    """

    def one(path: str) -> tuple[pq.FileMetaData, pa.Schema]:
        pf = open_parquet(storage, path)
        try:
            return pf.metadata, pf.schema_arrow
        finally:
            pf.close()

    if len(paths) <= 1 or threads <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(min(threads, len(paths)), thread_name_prefix="parquetry-compact-footer") as pool:
        return list(pool.map(one, paths))


def _tasks(keys: Sequence[Key], rows_of: Mapping[Key, int], across_files: bool) -> list[list[Key]]:
    """Group consecutive row groups into one read task, up to ``TASK_ROWS`` rows.

    On a local disk a task may span many small files (a thread hand-off per 5,000-row file costs more
    than it saves); on an object store a task holds one file, so that the threads overlap round trips.
    """
    tasks: list[list[Key]] = []
    rows = 0
    for key in keys:
        n = rows_of[key]
        same_file = bool(tasks) and tasks[-1][-1][0] == key[0]
        if tasks and (same_file or across_files) and rows + n <= TASK_ROWS:
            tasks[-1].append(key)
            rows += n
        else:
            tasks.append([key])
            rows = n
    return tasks


class _ReadAhead:
    """Submits the reads of ``tasks`` in order, keeping at most ``READ_AHEAD_ROWS`` rows in flight."""

    def __init__(self, pool: ThreadPoolExecutor, reader: RowGroupReader, tasks: list[list[Key]]) -> None:
        self.pool = pool
        self.reader = reader
        self.tasks = collections.deque(tasks)
        self.pending: collections.deque[tuple[int, Future[list[tuple[Key, pa.Table]]]]] = collections.deque()
        self.ready: collections.deque[tuple[Key, pa.Table]] = collections.deque()
        self.in_flight = 0

    def _fill(self) -> None:
        while self.tasks and (not self.pending or self.in_flight < READ_AHEAD_ROWS):
            task = self.tasks.popleft()
            rows = sum(self.reader.rows_of[k] for k in task)
            self.pending.append((rows, self.pool.submit(self.reader.read_task, task)))
            self.in_flight += rows

    def next(self, key: Key) -> pa.Table:
        if not self.ready:
            self._fill()
            if not self.pending:
                raise ReadError(f"read-ahead ran out before row group {key}")  # a planner bug
            rows, future = self.pending.popleft()
            self.in_flight -= rows
            self.ready.extend(future.result())
            self._fill()
        got, table = self.ready.popleft()
        if got != key:
            raise ReadError(f"read-ahead returned row group {got} where {key} was due")  # a planner bug
        return table

    def cancel(self) -> None:
        for _, future in self.pending:
            future.cancel()
        self.pending.clear()
        self.ready.clear()


class RowGroupReader:
    """Reads the plan's input row groups in order, each exactly once, conformed to the merged schema."""

    def __init__(
        self,
        storage: Storage,
        plan: Plan,
        target: pa.Schema,
        digest: RowDigest,
        skip: set[Key],
        metadata: Mapping[str, pq.FileMetaData] | None = None,
        threads: int | None = None,
    ) -> None:
        self.storage = storage
        self.plan = plan
        self.target = target
        self.digest = digest
        self.skip = skip  # row groups byte-copied instead
        self.metadata = dict(metadata or {})
        self.read: set[Key] = set()
        self.rows_of: dict[Key, int] = {
            (i, r): n for i, f in enumerate(plan.inputs) for r, n in enumerate(f.row_group_rows)
        }
        if threads is None:
            threads = READ_THREADS if storage.is_local else REMOTE_READ_THREADS
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="parquetry-compact-read")
        self._cached: tuple[Key, pa.Table] | None = None
        self._ahead: _ReadAhead | None = None

    # ---------------------------------------------------------------- worker side

    def read_task(self, task: Sequence[Key]) -> list[tuple[Key, pa.Table]]:
        """Decode one task's row groups (each file opened once); runs in a pool thread."""
        out: list[tuple[Key, pa.Table]] = []
        start = 0
        while start < len(task):
            end = start + 1
            while end < len(task) and task[end][0] == task[start][0]:
                end += 1
            out.extend(self._read_file(task[start:end]))
            start = end
        return out

    def _read_file(self, keys: Sequence[Key]) -> list[tuple[Key, pa.Table]]:
        index = keys[0][0]
        path = self.plan.inputs[index].path
        pf = open_parquet(self.storage, path, self.metadata.get(path))
        out = []
        try:
            for key in keys:
                row_group = key[1]
                try:
                    # Column-parallel decoding pays off only for big row groups; for small ones the thread
                    # hand-offs cost more than the decoding (other files are decoded meanwhile anyway).
                    table = pf.read_row_group(row_group, use_threads=self.rows_of[key] >= THREADED_READ_ROWS)
                except (OSError, pa.ArrowException) as exc:
                    raise ReadError(
                        f"{self.storage.uri(path)}: row group {row_group} is unreadable: {exc}"
                    ) from exc
                try:
                    table = conform(table, self.target)
                except SchemaMergeError as exc:
                    raise ReadError(f"{self.storage.uri(path)}: {exc}") from exc
                out.append((key, table))
        finally:
            pf.close()
        return out

    # ---------------------------------------------------------------- consumer side

    def _keys(self, planned: PlannedFile) -> list[Key]:
        keys: list[Key] = []
        for rg in planned.row_groups:
            for s in rg.slices:
                key = (s.input_index, s.row_group)
                if not keys or keys[-1] != key:
                    keys.append(key)
        return keys

    def _row_group(self, key: Key, ahead: _ReadAhead) -> pa.Table:
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        if key in self.read:
            raise ReadError(f"plan reads row group {key[1]} of {self.plan.inputs[key[0]].path} twice")
        table = ahead.next(key)
        self.digest.update(table)
        self.read.add(key)
        self._cached = (key, table)
        return table

    def _assemble(self, rg: PlannedRowGroup, ahead: _ReadAhead) -> pa.Table:
        """The planned row group as a table of the input slices (chunks, not copied together)."""
        pieces = [
            self._row_group((s.input_index, s.row_group), ahead).slice(s.offset, s.length) for s in rg.slices
        ]
        return pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)

    def _read_ahead(self) -> _ReadAhead:
        """One read-ahead over the row groups of every re-encoded output, in plan order.

        It runs across outputs: while the writer encodes an output's last row groups, the pool already
        decodes the next output's first ones (a read-ahead per output left a core idle there).
        """
        if self._ahead is None:
            keys: list[Key] = []
            for planned in self.plan.outputs:
                for key in self._keys(planned):
                    if key in self.skip:
                        continue  # a byte-copied output's row group
                    if not keys or keys[-1] != key:  # a row group split between two outputs: read once
                        keys.append(key)
            self._ahead = _ReadAhead(self._pool, self, _tasks(keys, self.rows_of, self.storage.is_local))
        return self._ahead

    def row_groups(self, planned: PlannedFile) -> Iterator[pa.Table]:
        """One table per planned row group (the writer makes each table one row group).

        Row groups are assembled and hashed in a background thread (from the pool's reads) while the
        caller encodes the previous one, with at most ``PREFETCH`` assembled row groups waiting. The
        caller asks for the re-encoded outputs in plan order.
        """
        ahead = self._read_ahead()
        ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()

        def produce() -> None:
            try:
                for rg in planned.row_groups:
                    if stop.is_set():
                        return
                    ready.put(("batch", self._assemble(rg, ahead)))
                ready.put(("done", None))
            except BaseException as exc:  # handed to the consumer, which raises it
                ready.put(("error", exc))

        worker = threading.Thread(target=produce, name="parquetry-compact-assemble", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = ready.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            stop.set()
            while worker.is_alive():
                with contextlib.suppress(queue.Empty):
                    ready.get(timeout=0.05)
            worker.join()

    def finish(self) -> None:
        """Every non-empty row group of every input was read (and so hashed) exactly once."""
        for index, f in enumerate(self.plan.inputs):
            for r, n in enumerate(f.row_group_rows):
                if n and (index, r) not in self.read and (index, r) not in self.skip:
                    raise ReadError(f"plan left row group {r} of {f.path} unread")

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
