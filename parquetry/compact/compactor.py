"""The compactor: plan from the catalog, write new immutable files, verify, commit once, never overwrite.

One run over one dataset:

1. take the dataset's lease (a crashed run blocks it for at most the lease's time to live);
2. read the live file set from the catalog (never by listing a prefix) and the footers of the files that
   are not healthy (a few at a time; each is parsed once); plan (:mod:`parquetry.compact.plan`);
3. merge the inputs' schemas (:mod:`parquetry.compact.schema_merge`) and stream row groups into outputs
   named after the plan's hash, each published atomically through :meth:`Storage.publishing`
   (:mod:`parquetry.compact.writer`). Input files are decoded by a small thread pool while the previous
   row group is hashed and the one before is encoded (:mod:`parquetry.compact.reader`); memory holds a
   few output row groups;
4. verify: read every re-encoded output back from storage and compare row count, per-column null counts
   and an order-independent row hash with those of every input row group (each read exactly once), and
   check every column chunk has statistics; the output's etag is hashed from the same read-back. An
   output is read back in a worker thread as soon as it is published, while the next one is written;
   nothing is committed before every read-back has matched;
5. commit the swap in one catalog transaction, fenced by the lease token, each output placed where its
   rows were in the dataset's order (:mod:`parquetry.compact.positions`). Inputs are deleted later,
   after a grace period, by :func:`parquetry.compact.cleanup.cleanup`.

Files the policy calls healthy are not touched at all. An output made only of healthy row groups (at
least ``min_row_group_rows``, statistics present, same Parquet layout as the merged schema) is copied byte
for byte (:mod:`parquetry.compact.rowgroup_copy`); other outputs are decoded and re-encoded, with healthy
row groups kept whole (one input row group, one output row group) and small ones re-chunked.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.catalog import Catalog, CatalogError, LiveFile
from parquetry.compact.errors import CompactionError, VerificationError
from parquetry.compact.faults import fault_point
from parquetry.compact.plan import Plan, PlanConfig, PlanInput, PlannedFile, plan_compaction
from parquetry.compact.positions import PositionError, output_positions
from parquetry.compact.reader import RowGroupReader, read_footers
from parquetry.compact.rowgroup_copy import (
    RowGroupCopyError,
    SourceFooter,
    copy_row_groups,
    read_source_footer,
)
from parquetry.compact.schema_merge import SchemaMergeError, merge_schemas
from parquetry.compact.verify import RowDigest, warm_up
from parquetry.compact.writer import read_back, write_row_groups
from parquetry.encoder import load_encoder
from parquetry.storage import ParquetOptions, Storage, WrittenFile

__all__ = ["CompactionError", "CompactionResult", "CompactionSettings", "Compactor", "VerificationError"]

StorageFactory = Callable[[str], Storage]
VERIFY_THREADS = 2  # DuckDB threads hashing a read-back output (the last one is the run's last CPU stage)
# Byte-copied outputs made at once: a copy is mostly the kernel copying and a second thread hashing what
# it reads back, so two outputs in flight keep two cores busy where one left the copy and the compare
# taking turns.
COPY_THREADS = 2


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
    # Dictionary pages on string and binary columns only ("auto", see ParquetOptions): on fixed-width
    # columns of many distinct values pyarrow builds a dictionary only to abandon it, a quarter of the
    # encoding CPU for no smaller file.
    use_dictionary: bool | str | tuple[str, ...] = "auto"
    # Integer and temporal columns (without a dictionary) written DELTA_BINARY_PACKED: smaller and
    # cheaper to encode and decode than plain for keys, timestamps and dates (see compact.writer).
    delta_integers: bool = True
    # Row groups encoded at once (see compact.writer); None: half the cores, at most four. Each one in
    # flight holds a row group in memory, decoded and encoded.
    encode_threads: int | None = None
    # Who encodes the re-encoded outputs' columns (see ParquetOptions.encoder). pyarrow by default:
    # Parquetry's encoder saved 12% of the re-encoding CPU on the benchmark's table (its delta-packed
    # columns; the strings have dictionaries), less than loading numba costs a compaction process
    # (about 0.6 CPU-s and 100 MB; extraction has it loaded for its decoder anyway).
    encoder: str = "pyarrow"

    def parquet_options(self, row_group_rows: int, file_rows: int) -> ParquetOptions:
        """How a re-encoded output of ``file_rows`` rows, in row groups of up to ``row_group_rows``, is
        written (the benchmarks write with these options too)."""
        return ParquetOptions(
            compression=self.compression,
            compression_level=self.compression_level,
            row_group_rows=row_group_rows,
            target_file_rows=max(self.target_file_rows, file_rows),
            write_statistics=True,
            use_dictionary=self.use_dictionary,
        )

    def resolved_encode_threads(self) -> int:
        if self.encode_threads is not None:
            return max(1, int(self.encode_threads))
        # On two cores reading and verification already keep both busy: a second encoder only added
        # 3-4% CPU there (benchmarks/compaction.py); with more cores the encoding stage scales.
        return max(1, min(4, (os.cpu_count() or 1) // 2))


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
        renewed = time.monotonic()
        written_paths: list[str] = []  # every output published so far: removed if the run fails
        commit_sent = False
        storage: Storage | None = None
        try:
            snapshot = self.catalog.snapshot(dataset)
            storage = self.storage_factory(snapshot.storage_uri)
            by_path = {f.path: f for f in snapshot.files}
            schemas: dict[str, pa.Schema] = {}
            footers: dict[str, pq.FileMetaData] = {}
            plan_inputs = self._plan_inputs(storage, snapshot.files, schemas, footers)
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
            try:
                # Where the outputs go in the dataset's order; computed before any work, so that a plan
                # that could not keep the order fails at once.
                positions = output_positions(plan, {f.path: f.position for f in snapshot.files})
            except PositionError as exc:
                raise CompactionError(str(exc)) from exc
            target = self._merged_schema(storage, plan, schemas)
            copies = self._copyable_outputs(storage, plan, target, schemas)
            if len(copies) < len(plan.outputs):
                # The digests' DuckDB database takes tens of milliseconds to create: do it while the
                # first row groups are read.
                threading.Thread(target=warm_up, name="parquetry-compact-warm-up", daemon=True).start()
            skip = {
                (s.input_index, s.row_group)
                for n in copies
                for rg in plan.outputs[n].row_groups
                for s in rg.slices
            }
            if self.settings.encoder == "parquetry":
                load_encoder()  # before the reading threads start (see load_encoder)
            input_digest = RowDigest()
            reader = RowGroupReader(storage, plan, target, input_digest, skip, footers)
            verifier = _OutputVerifier(storage, target)
            copier = _ByteCopier(storage)
            try:
                try:
                    for n, planned in enumerate(plan.outputs):
                        # Listed before it exists: a failed run removes whatever of it was published.
                        written_paths.append(planned.path)
                        if n in copies:
                            copier.submit(n, planned.path, copies[n])  # copied and checked meanwhile
                        else:
                            rows, groups = self._write(storage, planned, reader, target)
                            # Read back in the background while the next output is written.
                            verifier.submit(n, planned.path, rows, groups)
                        verifier.raise_failure()  # a failed read-back stops the run at once
                        copier.raise_failure()
                        if time.monotonic() - renewed >= self.settings.lease_ttl_s / 3:
                            # Only a long run renews (one round trip per third of the lease's life, not
                            # one per output); the commit checks the lease again anyway.
                            self.catalog.renew_lease(dataset, lease.token, self.settings.lease_ttl_s)
                            renewed = time.monotonic()
                    reader.finish()
                    input_digest.flush()
                    byte_copies, copied = copier.results()
                finally:
                    reader.close()
                try:
                    read_back_files, verification = self._verify(
                        plan, byte_copies, verifier, input_digest, by_path
                    )
                    verification["byte_copied"] = copied
                finally:
                    input_digest.close()
            finally:
                # Before any clean-up removes what they may still be reading or about to publish.
                copier.close()
                verifier.close()
            published = [byte_copies.get(n) or read_back_files[n] for n in range(len(plan.outputs))]
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
                positions=positions,
            )
            fault_point("after_commit")
            replaced = {i.path for i in inputs}
            after_files = [f for f in snapshot.files if f.path not in replaced]
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
                _discard(storage, written_paths)
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
        self,
        storage: Storage,
        files: Sequence[LiveFile],
        schemas: dict[str, pa.Schema],
        footers: dict[str, pq.FileMetaData],
    ) -> list[PlanInput]:
        """Footers of the files that may be rewritten (healthy ones need only the catalog's numbers).

        The footers are kept (``footers``), so reading the row groups later does not parse them again.
        On an object store they are fetched eight at a time (round trips overlap); on a local disk one
        thread parses them fastest (the work is mostly under the GIL).
        """
        policy = self.catalog.policy
        force = self.settings.force
        unhealthy = [f for f in files if force or not policy.file_is_healthy(f.bytes, f.rows, f.row_groups)]
        for f, (metadata, schema) in zip(
            unhealthy,
            read_footers(storage, [f.path for f in unhealthy], threads=1 if storage.is_local else 8),
            strict=True,
        ):
            footers[f.path] = metadata
            schemas[f.path] = schema
        out = []
        for f in files:
            metadata = footers.get(f.path)
            if metadata is None:
                out.append(PlanInput(f.path, f.etag, f.bytes, (f.rows,)))
                continue
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
        self, storage: Storage, planned: PlannedFile, reader: RowGroupReader, schema: pa.Schema
    ) -> tuple[int, int]:
        s = self.settings
        return write_row_groups(
            storage,
            planned.path,
            reader.row_groups(planned),
            schema,
            s.parquet_options(max(rg.rows for rg in planned.row_groups), planned.rows),
            s.delta_integers,
            threads=s.resolved_encode_threads(),
            encoder=s.encoder,
        )

    def _verify(
        self,
        plan: Plan,
        byte_copies: dict[int, WrittenFile],
        verifier: _OutputVerifier,
        input_digest: RowDigest,
        by_path: dict[str, LiveFile],
    ) -> tuple[dict[int, WrittenFile], dict[str, Any]]:
        """Re-encoded outputs: rows read back from storage (by ``verifier``) and hashed against the inputs'
        row groups. Byte-copied outputs were verified by the copier (their chunk bytes read back and
        compared with the source bytes). Together they must hold the registered rows.

        Returns the re-encoded outputs as the catalog records them (etag and size from the bytes read
        back) and the verification report.
        """
        files, output_digest, decoders = verifier.results()
        problems = input_digest.differences(output_digest)
        registered_rows = sum(by_path[f.path].rows for f in plan.inputs)
        output_rows = sum(w.rows for w in [*files.values(), *byte_copies.values()])
        if output_rows != registered_rows:
            problems.append(f"outputs hold {output_rows} rows, the catalog registered {registered_rows}")
        if problems:
            raise VerificationError(f"compaction of plan {plan.hash[:20]} failed verification: {problems}")
        report = {
            "verified": True,
            "input": input_digest.as_dict(),
            "output": output_digest.as_dict(),
            "read_back_by": decoders,  # which decoder read the re-encoded outputs back
        }
        return files, report


class _OutputVerifier:
    """Reads re-encoded outputs back from storage and hashes their rows, one at a time, in a worker
    thread, so that output k is verified while output k + 1 is encoded (both release the GIL: the
    run uses two cores where it used one for the read-back). Each output gets its own digest, merged
    in output order at the end; memory is what one DuckDB read-back holds.
    """

    def __init__(self, storage: Storage, target: pa.Schema) -> None:
        self.storage = storage
        self.target = target
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="parquetry-compact-verify")
        self._jobs: list[tuple[int, Future[tuple[WrittenFile, str]], RowDigest]] = []

    def submit(self, n: int, path: str, rows: int, groups: int) -> None:
        digest = RowDigest(threads=VERIFY_THREADS)
        self._jobs.append((n, self._pool.submit(self._read_back, path, rows, groups, digest), digest))

    def _read_back(self, path: str, rows: int, groups: int, digest: RowDigest) -> tuple[WrittenFile, str]:
        written = read_back(self.storage, path, rows, groups, self.target, digest)
        digest.flush()
        return written

    def raise_failure(self) -> None:
        """Raise the error of a read-back that already failed (without waiting for running ones)."""
        for _, future, _ in self._jobs:
            if future.done() and future.exception() is not None:
                future.result()

    def results(self) -> tuple[dict[int, WrittenFile], RowDigest, dict[str, int]]:
        """Wait for every read-back: the files as stored, their rows' digest, and who decoded them."""
        files: dict[int, WrittenFile] = {}
        merged = RowDigest()
        decoders = {"duckdb": 0, "pyarrow": 0}
        for n, future, digest in self._jobs:
            files[n], decoder = future.result()
            decoders[decoder] += 1
            merged.merge(digest)
        return files, merged, decoders

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for _, _, digest in self._jobs:
            digest.close()


_Copied = tuple[WrittenFile, dict[str, int]]  # a published copy and its totals


class _ByteCopier:
    """Makes the byte-copied outputs (:func:`copy_row_groups`: copy, compare, publish) in a small thread
    pool, ``COPY_THREADS`` at a time, while the run goes on with the next outputs."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pool = ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="parquetry-compact-copy")
        self._jobs: list[tuple[int, Future[_Copied]]] = []

    def submit(self, n: int, path: str, parts: list[tuple[SourceFooter, int]]) -> None:
        self._jobs.append((n, self._pool.submit(copy_row_groups, self.storage, path, parts)))

    def _result(self, future: Future[_Copied]) -> _Copied:
        try:
            return future.result()
        except RowGroupCopyError as exc:
            raise CompactionError(str(exc)) from exc

    def raise_failure(self) -> None:
        """Raise the error of a copy that already failed (without waiting for running ones)."""
        for _, future in self._jobs:
            if future.done() and future.exception() is not None:
                self._result(future)

    def results(self) -> tuple[dict[int, WrittenFile], dict[str, int]]:
        """Wait for every copy: the published files by output number, and the totals for the report."""
        files: dict[int, WrittenFile] = {}
        copied = {"files": 0, "row_groups": 0, "chunk_bytes": 0}
        for n, future in self._jobs:
            files[n], info = self._result(future)
            copied["files"] += 1
            copied["row_groups"] += info["row_groups"]
            copied["chunk_bytes"] += info["chunk_bytes"]
        return files, copied

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _totals(files: Sequence[LiveFile]) -> tuple[int, int, int]:
    return len(files), sum(f.row_groups for f in files), sum(f.bytes for f in files)


def _pair(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[int, ...]:
    return before[0], after[0], before[1], after[1], before[2], after[2]


def _discard(storage: Storage, paths: Sequence[str]) -> None:
    """Remove the outputs of a run that failed before committing: no catalog knows them.

    Best effort: if this fails too, the cleanup's orphan sweep removes them after the grace period.
    """
    for path in paths:
        with contextlib.suppress(OSError):
            storage.delete(path)
