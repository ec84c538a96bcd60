"""The compactor: plan from the catalog, write new immutable files, verify, commit once, never overwrite.

One run over one dataset:

1. take the dataset's lease (a crashed run blocks it for at most the lease's time to live);
2. read the live file set from the catalog (never by listing a prefix) and the footers of the files that
   are not healthy; plan (:mod:`parquetry.compact.plan`);
3. merge the inputs' schemas (:mod:`parquetry.compact.schema_merge`) and stream row groups into outputs
   named after the plan's hash, each published atomically by :meth:`Storage.write_parquet`; memory holds
   about one output row group;
4. verify: read every output back and compare row count, per-column null counts and an order-independent
   row hash with those of every input row group (each read exactly once), and check every column chunk
   has statistics;
5. commit the swap in one catalog transaction, fenced by the lease token. Inputs are deleted later, after
   a grace period, by :func:`parquetry.compact.cleanup.cleanup`.

Files the policy calls healthy are not touched at all. An output made only of healthy row groups (at
least ``min_row_group_rows``, statistics present, same Parquet layout as the merged schema) is copied byte
for byte (:mod:`parquetry.compact.rowgroup_copy`); other outputs are decoded and re-encoded, with healthy
row groups kept whole (one input row group, one output row group) and small ones re-chunked.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.catalog import Catalog, CatalogError, LiveFile
from parquetry.compact.faults import fault_point
from parquetry.compact.plan import (
    Plan,
    PlanConfig,
    PlanInput,
    PlannedFile,
    PlannedRowGroup,
    Slice,
    plan_compaction,
)
from parquetry.compact.rowgroup_copy import (
    RowGroupCopyError,
    SourceFooter,
    copy_row_groups,
    read_source_footer,
)
from parquetry.compact.schema_merge import SchemaMergeError, conform, merge_schemas
from parquetry.compact.verify import RowDigest
from parquetry.storage import ParquetOptions, Storage, WrittenFile

StorageFactory = Callable[[str], Storage]
PREFETCH = 2  # assembled row groups waiting for the writer
THREADED_READ_ROWS = 1 << 17


class CompactionError(RuntimeError):
    """A compaction stopped before committing; the dataset is unchanged."""


class VerificationError(CompactionError):
    """The outputs do not hold exactly the inputs' rows."""


@dataclass(frozen=True)
class CompactionSettings:
    row_group_rows: int = 1_000_000
    target_file_rows: int = 8_000_000
    min_row_group_rows: int | None = None  # default: the policy's min_mean_row_group_rows
    compression: str = "zstd"
    compression_level: int | None = 3
    lease_ttl_s: float = 900.0
    force: bool = False  # rewrite files the policy calls healthy too
    copy_row_groups: bool = True  # outputs made only of healthy row groups are copied byte for byte


@dataclass
class CompactionResult:
    dataset: str
    status: str  # "compacted" or "nothing_to_do"
    plan_hash: str
    generation_before: int
    generation_after: int
    files_before: int
    files_after: int
    row_groups_before: int
    row_groups_after: int
    bytes_before: int
    bytes_after: int
    input_files: int
    output_files: int
    rows_rewritten: int
    duration_s: float
    verification: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Live files before per live file after (how much the dataset was defragmented)."""
        return self.files_before / self.files_after if self.files_after else 1.0


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Compactor:
    def __init__(
        self,
        catalog: Catalog,
        settings: CompactionSettings | None = None,
        storage_factory: StorageFactory | None = None,
        owner: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings or CompactionSettings()
        self.storage_factory = storage_factory or Storage
        self.owner = owner or default_owner()

    def plan_config(self) -> PlanConfig:
        s = self.settings
        min_rg = s.min_row_group_rows or self.catalog.policy.min_mean_row_group_rows
        return PlanConfig(
            row_group_rows=s.row_group_rows, target_file_rows=s.target_file_rows, min_row_group_rows=min_rg
        )

    def run(self, dataset: str) -> CompactionResult:
        started = time.perf_counter()
        lease = self.catalog.acquire_lease(dataset, self.owner, self.settings.lease_ttl_s)
        published: list[WrittenFile] = []
        commit_sent = False
        storage: Storage | None = None
        try:
            snapshot = self.catalog.snapshot(dataset)
            storage = self.storage_factory(snapshot.storage_uri)
            by_path = {f.path: f for f in snapshot.files}
            schemas: dict[str, pa.Schema] = {}
            plan_inputs = self._plan_inputs(storage, snapshot.files, schemas)
            plan = plan_compaction(plan_inputs, self.plan_config(), self._healthy_predicate(by_path))
            before = _totals(snapshot.files)
            if plan.empty:
                self.catalog.clear_flag(dataset, snapshot.generation)
                return CompactionResult(
                    dataset,
                    "nothing_to_do",
                    plan.hash,
                    snapshot.generation,
                    snapshot.generation,
                    *_pair(before, before),
                    input_files=0,
                    output_files=0,
                    rows_rewritten=0,
                    duration_s=time.perf_counter() - started,
                )
            target = self._merged_schema(storage, plan, schemas)
            copies = self._copyable_outputs(storage, plan, target, schemas)
            skip = {
                (s.input_index, s.row_group)
                for n in copies
                for rg in plan.outputs[n].row_groups
                for s in rg.slices
            }
            input_digest = RowDigest()
            reader = _RowGroupReader(storage, plan, target, input_digest, skip)
            copied = {"files": 0, "row_groups": 0, "chunk_bytes": 0}
            try:
                for n, planned in enumerate(plan.outputs):
                    if n in copies:
                        try:
                            written, info = copy_row_groups(storage, planned.path, copies[n])
                        except RowGroupCopyError as exc:
                            raise CompactionError(str(exc)) from exc
                        copied["files"] += 1
                        copied["row_groups"] += info["row_groups"]
                        copied["chunk_bytes"] += info["chunk_bytes"]
                        published.append(written)
                    else:
                        published.append(self._write(storage, planned, reader, target))
                    self.catalog.renew_lease(dataset, lease.token, self.settings.lease_ttl_s)
                reader.finish()
                input_digest.flush()
            finally:
                reader.close()
            try:
                reencoded = [w for n, w in enumerate(published) if n not in copies]
                verification = self._verify(storage, plan, published, reencoded, input_digest, by_path)
                verification["byte_copied"] = copied
            finally:
                input_digest.close()
            fault_point("after_outputs")
            inputs = [by_path[f.path] for f in plan.inputs]
            commit_sent = True
            generation = self.catalog.commit_compaction(
                dataset,
                lease.token,
                snapshot.generation,
                inputs,
                published,
                plan_hash=plan.hash,
                schema=target,
                verification=verification,
            )
            fault_point("after_commit")
            after_files = [f for f in snapshot.files if f.path not in {i.path for i in inputs}]
            after = _totals(after_files)
            after = (
                after[0] + len(published),
                after[1] + sum(w.row_groups for w in published),
                after[2] + sum(w.bytes for w in published),
            )
            return CompactionResult(
                dataset,
                "compacted",
                plan.hash,
                snapshot.generation,
                generation,
                *_pair(before, after),
                input_files=len(inputs),
                output_files=len(published),
                rows_rewritten=sum(w.rows for w in published),
                duration_s=time.perf_counter() - started,
                verification=verification,
                outputs=[w.path for w in published],
            )
        except BaseException as exc:
            # Outputs are removed only when the catalog surely does not reference them: the commit was
            # never sent, or the catalog refused it. If its outcome is unknown (a connection lost after
            # COMMIT), they stay; the cleanup's orphan sweep removes them if the commit did not happen.
            refused = isinstance(exc, CatalogError)
            if storage is not None and (not commit_sent or refused):
                _discard(storage, published)
            raise
        finally:
            # If the catalog is unreachable the lease simply expires; do not mask the run's own error.
            with contextlib.suppress(psycopg.OperationalError):
                self.catalog.release_lease(dataset, lease.token)

    # ------------------------------------------------------------------ steps

    def _healthy_predicate(self, by_path: dict[str, LiveFile]) -> Callable[[PlanInput], bool]:
        if self.settings.force:
            return lambda f: False
        policy = self.catalog.policy

        def healthy(f: PlanInput) -> bool:
            live = by_path[f.path]
            return policy.file_is_healthy(live.bytes, live.rows, live.row_groups)

        return healthy

    def _plan_inputs(
        self, storage: Storage, files: Sequence[LiveFile], schemas: dict[str, pa.Schema]
    ) -> list[PlanInput]:
        """Footers of the files that may be rewritten (healthy ones need only the catalog's numbers)."""
        policy = self.catalog.policy
        out = []
        for f in files:
            if not self.settings.force and policy.file_is_healthy(f.bytes, f.rows, f.row_groups):
                out.append(PlanInput(f.path, f.etag, f.bytes, (f.rows,)))
                continue
            with _read_footer(storage, f.path) as pf:
                metadata = pf.metadata
                schemas[f.path] = pf.schema_arrow
            sizes = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
            if sum(sizes) != f.rows:
                raise CompactionError(
                    f"{storage.uri(f.path)}: footer has {sum(sizes)} rows but the catalog registered {f.rows}"
                )
            out.append(PlanInput(f.path, f.etag, f.bytes, sizes))
        return out

    def _merged_schema(self, storage: Storage, plan: Plan, schemas: dict[str, pa.Schema]) -> pa.Schema:
        try:
            return merge_schemas([(storage.uri(f.path), schemas[f.path]) for f in plan.inputs])
        except SchemaMergeError as exc:
            raise CompactionError(str(exc)) from exc

    def _copyable_outputs(
        self, storage: Storage, plan: Plan, target: pa.Schema, schemas: dict[str, pa.Schema]
    ) -> dict[int, list[tuple[SourceFooter, int]]]:
        """Outputs made only of whole healthy row groups from files laid out exactly like the target."""
        if not self.settings.copy_row_groups:
            return {}
        footers: dict[str, SourceFooter] = {}
        copies: dict[int, list[tuple[SourceFooter, int]]] = {}
        for n, planned in enumerate(plan.outputs):
            parts: list[tuple[SourceFooter, int]] = []
            for rg in planned.row_groups:
                if not rg.passthrough:
                    break
                (piece,) = rg.slices
                path = plan.inputs[piece.input_index].path
                if not schemas[path].remove_metadata().equals(target):
                    break
                if path not in footers:
                    try:
                        footers[path] = read_source_footer(storage, path)
                    except RowGroupCopyError as exc:
                        raise CompactionError(str(exc)) from exc
                source = footers[path]
                if not source.copyable or (parts and source.layout_key != parts[0][0].layout_key):
                    break
                parts.append((source, piece.row_group))
            else:
                copies[n] = parts
        return copies

    def _write(
        self, storage: Storage, planned: PlannedFile, reader: _RowGroupReader, schema: pa.Schema
    ) -> WrittenFile:
        s = self.settings
        options = ParquetOptions(
            compression=s.compression,
            compression_level=s.compression_level,
            row_group_rows=max(rg.rows for rg in planned.row_groups),
            target_file_rows=max(s.target_file_rows, planned.rows),
            write_statistics=True,
        )
        return storage.write_parquet(planned.path, reader.batches(planned), schema=schema, options=options)

    def _verify(
        self,
        storage: Storage,
        plan: Plan,
        published: Sequence[WrittenFile],
        reencoded: Sequence[WrittenFile],
        input_digest: RowDigest,
        by_path: dict[str, LiveFile],
    ) -> dict[str, Any]:
        """Re-encoded outputs: rows re-read and hashed against the inputs' row groups. Byte-copied
        outputs were verified structurally by the copier. Together they must hold the registered rows."""
        output_digest = RowDigest()
        try:
            for written in reencoded:
                pf = _read_footer(storage, written.path)
                try:
                    _check_statistics(storage.uri(written.path), pf.metadata)
                    for r in range(pf.metadata.num_row_groups):
                        output_digest.update(pf.read_row_group(r))
                finally:
                    pf.close()
            output_digest.flush()
        finally:
            output_digest.close()
        problems = input_digest.differences(output_digest)
        registered_rows = sum(by_path[f.path].rows for f in plan.inputs)
        output_rows = sum(w.rows for w in published)
        if output_rows != registered_rows:
            problems.append(f"outputs hold {output_rows} rows, the catalog registered {registered_rows}")
        if problems:
            raise VerificationError(f"compaction of plan {plan.hash[:20]} failed verification: {problems}")
        return {"verified": True, "input": input_digest.as_dict(), "output": output_digest.as_dict()}


class _RowGroupReader:
    """Reads the plan's input row groups in order, each exactly once, conformed to the merged schema.

    Every row group read goes into the input digest whole (not the slices the plan takes of it), so a
    planning error that drops or repeats rows shows up as a digest mismatch.
    """

    def __init__(
        self, storage: Storage, plan: Plan, target: pa.Schema, digest: RowDigest, skip: set[tuple[int, int]]
    ) -> None:
        self.skip = skip  # row groups byte-copied instead
        self.storage = storage
        self.plan = plan
        self.target = target
        self.digest = digest
        self.read: set[tuple[int, int]] = set()
        self._file: tuple[int, pq.ParquetFile] | None = None
        self._cached: tuple[tuple[int, int], pa.Table] | None = None

    def _open(self, index: int) -> pq.ParquetFile:
        if self._file is None or self._file[0] != index:
            self.close()
            self._file = (index, _read_footer(self.storage, self.plan.inputs[index].path))
        return self._file[1]

    def _row_group(self, index: int, row_group: int) -> pa.Table:
        key = (index, row_group)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        if key in self.read:
            raise CompactionError(f"plan reads row group {row_group} of {self.plan.inputs[index].path} twice")
        path = self.plan.inputs[index].path
        try:
            # Column-parallel decoding pays off only for big row groups; for small ones the thread
            # hand-offs cost more than the decoding (and the writer runs on the other core).
            rows = self.plan.inputs[index].row_group_rows[row_group]
            table = self._open(index).read_row_group(row_group, use_threads=rows >= THREADED_READ_ROWS)
        except (OSError, pa.ArrowException) as exc:
            raise CompactionError(
                f"{self.storage.uri(path)}: row group {row_group} is unreadable: {exc}"
            ) from exc
        try:
            table = conform(table, self.target)
        except SchemaMergeError as exc:
            raise CompactionError(f"{self.storage.uri(path)}: {exc}") from exc
        self.digest.update(table)
        self.read.add(key)
        self._cached = (key, table)
        return table

    def _slice(self, s: Slice) -> pa.Table:
        return self._row_group(s.input_index, s.row_group).slice(s.offset, s.length)

    def _assemble(self, rg: PlannedRowGroup) -> pa.RecordBatch:
        pieces = [self._slice(s) for s in rg.slices]
        table = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)
        columns = [pa.concat_arrays(c.chunks) if c.num_chunks != 1 else c.chunk(0) for c in table.columns]
        return pa.RecordBatch.from_arrays(columns, schema=self.target)

    def batches(self, planned: PlannedFile) -> Iterator[pa.RecordBatch]:
        """One record batch per planned row group (the writer makes each batch one row group).

        Row groups are read, conformed and hashed in a background thread while the caller encodes the
        previous one (both release the GIL), with at most ``PREFETCH`` assembled row groups waiting, so
        memory stays bounded by a few output row groups.
        """
        ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()

        def produce() -> None:
            try:
                for rg in planned.row_groups:
                    if stop.is_set():
                        return
                    ready.put(("batch", self._assemble(rg)))
                ready.put(("done", None))
            except BaseException as exc:  # handed to the consumer, which raises it
                ready.put(("error", exc))

        worker = threading.Thread(target=produce, name="parquetry-compact-read", daemon=True)
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
                    raise CompactionError(f"plan left row group {r} of {f.path} unread")

    def close(self) -> None:
        if self._file is not None:
            self._file[1].close()
            self._file = None


def _read_footer(storage: Storage, path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(
            storage.fs.open_input_file(path),
            coerce_int96_timestamp_unit="us",
            page_checksum_verification=True,
        )
    except (OSError, pa.ArrowException) as exc:
        raise CompactionError(f"{storage.uri(path)}: not a readable Parquet file: {exc}") from exc


def _check_statistics(uri: str, metadata: pq.FileMetaData) -> None:
    for r in range(metadata.num_row_groups):
        group = metadata.row_group(r)
        for c in range(group.num_columns):
            column = group.column(c)
            if group.num_rows and not column.is_stats_set:
                raise VerificationError(
                    f"{uri}: row group {r} column {column.path_in_schema} has no statistics"
                )


def _totals(files: Sequence[LiveFile]) -> tuple[int, int, int]:
    return len(files), sum(f.row_groups for f in files), sum(f.bytes for f in files)


def _pair(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[int, ...]:
    return before[0], after[0], before[1], after[1], before[2], after[2]


def _discard(storage: Storage, published: Sequence[WrittenFile]) -> None:
    """Remove the outputs of a run that failed before committing: no catalog knows them.

    Best effort: if this fails too, the cleanup's orphan sweep removes them after the grace period.
    """
    for written in published:
        with contextlib.suppress(OSError):
            storage.delete(written.path)
