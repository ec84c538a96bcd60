"""One STDF file -> Hive-partitioned Parquet tables, published all-or-nothing.

Layout (``<root>`` is the :class:`~parquetry.storage.Storage` root)::

    <root>/stdf/<table>/product=<PART_TYP>/stage=<TEST_COD>/lot=<LOT_ID>/<file_id>.parquet

``file_id`` is the sha256 of the file's bytes, so re-ingesting the same content replaces its files
(idempotent), and two uploads of the same bytes never double the data. The partition values come
from the MIR and are sanitised for paths by :func:`partition_value` (the exact MIR strings stay in the
``files`` table).

Why staging: the MIR that names the partition may come after the first records, and a file may turn
out to be corrupt anywhere. So every table is first streamed (bounded memory: one writer per table,
fed through a short queue) into ``<root>/stdf/_staging/<file_id>.<token>/<table>.parquet`` with
:meth:`Storage.write_parquet` (temporary name, verified footer). Only when the whole file has parsed
are the tables moved to their partition (a rename on local disks), the ``files`` table last, so a file
listed in ``stdf_files`` has all its rows published. A file that fails publishes nothing: what was read
before the fault is moved to ``<root>/stdf/_failed/<file_id>/`` beside an ``error.json`` that names the
byte offset, for inspection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import posixpath
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from parquetry.storage import ParquetOptions, Storage, WrittenFile

STDF_PREFIX = "stdf"
STAGING_DIR = "_staging"
FAILED_DIR = "_failed"
UNKNOWN = "unknown"
PARTITION_KEYS = ("product", "stage", "lot")
# MIR fields that name the partition, in PARTITION_KEYS order.
PARTITION_FIELDS = ("PART_TYP", "TEST_COD", "LOT_ID")

# Memory: the parser decodes BATCH_RECORDS records at a time; each table's batches are coalesced up to
# GROUP_ROWS rows (or GROUP_BYTES) per row group, and at most QUEUE_DEPTH groups wait for each writer.
# With these values a 4-site, 200-PTR-per-part lot peaks near 340 MB RSS whatever its size (324 MB at
# 30 MB, 338 MB at 150 MB; about 230 MB of that is numba and pyarrow themselves).
BATCH_RECORDS = 1 << 17
GROUP_ROWS = 1 << 17
GROUP_BYTES = 32 << 20
QUEUE_DEPTH = 1

# Per-table Parquet layout, measured column by column on a 4-site, 200-PTR-per-part lot (2 cores, CPU
# time per result row). Parquet encoding is most of the cost of an ingestion, so ``results`` (nearly all
# the rows) is tuned column by column:
# * the record ordinal and part sequence rise steadily: delta-packed (about 100x smaller than dictionary
#   pages, 8 instead of 77 ns per row for ``rec_index``);
# * measured values are almost all distinct: byte-stream-split (a dictionary costs 70-100 ns per row
#   and grows the file);
# * LZ4 rather than zstd for the whole table: 20 instead of 30 ns per row on the values (zstd level 3:
#   45) for 7-10% more bytes on the values, measured on this lot and on the V93000 and J750 samples;
#   the other columns (deltas, dictionaries, flags) are a few KB either way;
# * statistics stay on every column although they cost 17 ns per row (10 of them on the three dictionary
#   columns): compaction copies row groups byte for byte only when every column chunk has them, and
#   re-encoding at compaction costs far more;
# * columns that are never null are declared so in the schema (``tables.TABLE_SCHEMAS``): a nullable
#   column costs about 5 ns per row in definition levels even when it holds no null.
# Together: 75-90 instead of 330 ns per result row; the results file is about 15% bigger than with
# zstd level 3 everywhere (3.9 instead of 3.4 MB for a 30 MB lot).
COLUMN_ENCODING: dict[str, dict[str, str]] = {
    "results": {"rec_index": "DELTA_BINARY_PACKED", "part_seq": "DELTA_BINARY_PACKED",
                "value": "BYTE_STREAM_SPLIT", "test_num": "PLAIN", "test_id": "PLAIN", "head_num": "PLAIN",
                "site_num": "PLAIN", "test_flg": "PLAIN", "parm_flg": "PLAIN", "pin_index": "PLAIN",
                "rtn_stat": "PLAIN", "lo_limit": "PLAIN", "hi_limit": "PLAIN"},
    "parts": {"part_seq": "DELTA_BINARY_PACKED", "pir_rec_index": "DELTA_BINARY_PACKED",
              "prr_rec_index": "DELTA_BINARY_PACKED"},
}  # fmt: skip
# Codec of a table, in place of the options' codec when that is zstd (the default).
TABLE_CODEC: dict[str, str] = {"results": "lz4"}
# Values pyarrow encodes per internal step (its default: 1024); 64 Ki costs 7% less on ``results``.
TABLE_WRITE_BATCH: dict[str, int] = {"results": 1 << 16}


@dataclass(frozen=True)
class _TableParquetOptions(ParquetOptions):
    """``ParquetOptions`` plus per-column encodings, a table codec and pyarrow's write batch size; the
    columns given an encoding are left out of the dictionary (Parquet allows one or the other)."""

    column_encoding: tuple[tuple[str, str], ...] = ()
    codec: str | None = None
    write_batch: int | None = None

    def writer_kwargs(self, schema: pa.Schema | None = None) -> dict[str, Any]:
        kwargs = super().writer_kwargs(schema)
        if schema is None:
            return kwargs
        if self.column_encoding:
            encoded = {**kwargs.get("column_encoding", {}), **dict(self.column_encoding)}
            dictionary = kwargs["use_dictionary"]
            if dictionary is True:
                dictionary = schema.names
            if dictionary is not False:
                kwargs["use_dictionary"] = [c for c in dictionary if c not in encoded]
            kwargs["column_encoding"] = encoded
        if self.codec is not None and str(self.compression).lower() == "zstd":
            kwargs["compression"] = self.codec
            kwargs.pop("compression_level", None)
        if self.write_batch is not None:
            kwargs["write_batch_size"] = self.write_batch
        return kwargs


def table_options(table: str, schema: pa.Schema, options: ParquetOptions) -> ParquetOptions:
    """``options`` with the table's column layout (see ``COLUMN_ENCODING`` and what follows it)."""
    encoding = COLUMN_ENCODING.get(table)
    if not encoding:
        return options
    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(ParquetOptions)}
    return _TableParquetOptions(
        **fields,
        column_encoding=tuple((c, e) for c, e in encoding.items() if c in schema.names),
        codec=TABLE_CODEC.get(table),
        write_batch=TABLE_WRITE_BATCH.get(table),
    )


RegisterFn = Callable[[str, Sequence[WrittenFile], pa.Schema], None]
"""Called once per published table: (table name, its files, its schema)."""

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def partition_value(raw: str | None, max_len: int = 100) -> str:
    """A MIR string as a safe Hive partition value.

    Runs of characters other than ``A-Z a-z 0-9 . _ + -`` become one ``_`` (so ``/``, ``=``, spaces
    and control characters can never split or fake a path level); leading dots and underscores and
    trailing underscores are dropped (no hidden or ``..`` names); the result is cut to ``max_len``.
    Empty or missing values read ``unknown``.
    """
    if raw is None:
        return UNKNOWN
    value = _SAFE.sub("_", raw.strip()).lstrip("._").rstrip("_")[:max_len]
    return value or UNKNOWN


@dataclass
class IngestResult:
    """What one ingestion did. ``status`` is ``"ingested"`` or ``"failed"``."""

    file_id: str
    source: str
    status: str
    partition: dict[str, str]
    files: dict[str, WrittenFile] = field(default_factory=dict)  # table -> published file
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows (read so far, when failed)
    source_bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    error_type: str | None = None
    error_offset: int | None = None
    records_read: int | None = None
    failed_dir: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ingested"

    @property
    def mb_per_s(self) -> float:
        return self.source_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def parquet_bytes(self) -> int:
        return sum(f.bytes for f in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "source": self.source,
            "status": self.status,
            "partition": self.partition,
            "rows": self.rows,
            "files": {t: f.path for t, f in self.files.items()},
            "source_bytes": self.source_bytes,
            "parquet_bytes": self.parquet_bytes,
            "seconds": round(self.seconds, 4),
            "mb_per_s": round(self.mb_per_s, 2),
            "error": self.error,
            "error_type": self.error_type,
            "error_offset": self.error_offset,
            "records_read": self.records_read,
            "failed_dir": self.failed_dir,
        }


def table_path(storage: Storage, table: str, partition: dict[str, str], file_id: str) -> str:
    """The published path of one table of one STDF file."""
    levels = [f"{key}={partition[key]}" for key in PARTITION_KEYS]
    return storage.path(STDF_PREFIX, table, *levels, f"{file_id}.parquet")


def failed_path(storage: Storage, file_id: str) -> str:
    return storage.path(STDF_PREFIX, FAILED_DIR, file_id)


# -- streaming one table through Storage.write_parquet ---------------------------------------------------

_END = object()
_ABORT = object()


class _Aborted(RuntimeError):
    pass


class _TableSink:
    """Feeds batches to ``Storage.write_parquet`` running in its own thread (one per table), so all
    tables of a file stream at once while each writer still does temp-name, verify, publish."""

    def __init__(self, storage: Storage, path: str, schema: pa.Schema, options: ParquetOptions) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self.result: WrittenFile | None = None
        self.error: BaseException | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._thread = threading.Thread(
            target=self._run,
            args=(storage, options),
            name=f"stdf-sink-{posixpath.basename(path)}",
            daemon=True,
        )
        self._thread.start()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if item is _ABORT:
                raise _Aborted(self.path)
            yield item

    def _run(self, storage: Storage, options: ParquetOptions) -> None:
        try:
            self.result = storage.write_parquet(self.path, self._batches(), self.schema, options)
        except BaseException as exc:  # handed to the caller by put/close
            self.error = exc

    def _send(self, item: Any) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise RuntimeError(f"{self.path}: writer stopped") from self.error

    def put(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if batch.schema != self.schema:
            batch = pa.RecordBatch.from_arrays(
                [
                    batch.column(name).cast(f.type)
                    for name, f in zip(self.schema.names, self.schema, strict=True)
                ],
                schema=self.schema,
            )
        self.rows += batch.num_rows
        if batch.num_rows >= GROUP_ROWS // 2:
            # big enough for a row group of its own: sent as is (coalescing would copy every column)
            self._flush()
            self._send(batch)
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        if self._pending_rows >= GROUP_ROWS or self._pending_bytes >= GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        merged = self._pending[0] if len(self._pending) == 1 else pa.concat_batches(self._pending)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        self._send(merged)

    def close(self) -> WrittenFile:
        self._flush()
        self._send(_END)
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def abort(self) -> None:
        """Stop the writer and drop its temporary file (nothing is published)."""
        self._pending = []
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._queue.put(_ABORT, timeout=5)
            self._thread.join(timeout=30)


# -- the ingestion ----------------------------------------------------------------------------------------


def _open_source(source: str | Path, storage_options: dict[str, Any] | None) -> tuple[Any, Any, int]:
    """(what the parser reads, what to close afterwards, size in bytes) for a local path or a URL.

    Local files go to the parser by path; remote ones as an fsspec file object (seekable, buffered)."""
    text = str(source)
    if "://" not in text or text.startswith("file://"):
        local = Path(text.removeprefix("file://"))
        return str(local), None, local.stat().st_size
    import fsspec

    from parquetry.stdf.landing import landing_options

    fs, path = fsspec.core.url_to_fs(text, **landing_options(text, storage_options))
    fh = fs.open(path, "rb", block_size=8 << 20)
    return fh, fh, int(fs.size(path))


def _mir_partition(files_batches: Sequence[pa.RecordBatch]) -> dict[str, str]:
    """Partition values from the ``files`` table (one row per STDF file, MIR fields among its columns)."""
    values: dict[str, str | None] = dict.fromkeys(PARTITION_FIELDS)
    for batch in files_batches:
        if batch.num_rows == 0:
            continue
        by_name = {name.upper(): name for name in batch.schema.names}
        for mir_field in PARTITION_FIELDS:
            column = by_name.get(mir_field)
            if column is not None:
                value = batch.column(column)[0].as_py()
                values[mir_field] = value.decode("latin-1") if isinstance(value, bytes) else value
        break
    return {key: partition_value(values[f]) for key, f in zip(PARTITION_KEYS, PARTITION_FIELDS, strict=True)}


def ingest_stdf_file(
    source: str | Path,
    storage: Storage,
    file_id: str | None = None,
    *,
    source_options: dict[str, Any] | None = None,
    register: RegisterFn | None = None,
    options: ParquetOptions | None = None,
    batch_records: int | None = None,
) -> IngestResult:
    """Parse one STDF file (local path or fsspec URL) and publish its tables; never raises for bad input.

    A file that cannot be parsed returns ``status="failed"`` with the error and its byte offset, and
    what was read is kept under ``<root>/stdf/_failed/<file_id>/``. Errors of the destination (storage
    or catalog) propagate: they are not the file's fault, and a retry may succeed.
    ``register`` is called for every published table after all of them are in place.
    """
    from parquetry.stdf.errors import StdfFormatError
    from parquetry.stdf.parse import parse_stdf
    from parquetry.stdf.tables import TABLE_SCHEMAS

    started = time.perf_counter()
    if file_id is None:
        import fsspec

        from parquetry.stdf.landing import hash_file, landing_options

        text = str(source)
        opts = landing_options(text, source_options) if "://" in text else {}
        fs, path = fsspec.core.url_to_fs(text, **opts)
        file_id = hash_file(fs, path)[0]
    if not re.fullmatch(r"[A-Za-z0-9._-]+", file_id):
        raise ValueError(f"file_id {file_id!r} is not usable as a file name")
    options = options or ParquetOptions(row_group_rows=GROUP_ROWS)
    staging = storage.path(STDF_PREFIX, STAGING_DIR, f"{file_id}.{uuid.uuid4().hex[:12]}")
    sinks: dict[str, _TableSink] = {}
    files_batches: list[pa.RecordBatch] = []
    parse_error: BaseException | None = None
    readable, closer, size = _open_source(source, source_options)
    kwargs: dict[str, Any] = {"file_id": file_id, "batch_records": batch_records or BATCH_RECORDS}
    if re.fullmatch(r"[0-9a-f]{64}", file_id):
        kwargs["sha256"] = file_id
    try:
        try:
            for table, batch in parse_stdf(readable, **kwargs):
                if table == "files":
                    files_batches.append(batch)
                sink = sinks.get(table)
                if sink is None:
                    if batch.num_rows == 0:
                        continue
                    schema = TABLE_SCHEMAS.get(table, batch.schema)
                    sink = sinks[table] = _TableSink(
                        storage,
                        posixpath.join(staging, f"{table}.parquet"),
                        schema,
                        table_options(table, schema, options),
                    )
                sink.put(batch)
        except Exception as exc:
            # A fault of the input (corrupt, truncated, unreadable compression): keep what was read.
            # Anything else (storage, a bug) propagates.
            if not _is_input_error(exc, StdfFormatError):
                raise
            parse_error = exc
        staged = {table: sink.close() for table, sink in sinks.items()}
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        _remove_tree(storage, staging)
        raise
    finally:
        if closer is not None:
            closer.close()
    rows = {table: written.rows for table, written in staged.items()}
    partition = _mir_partition(files_batches)
    if parse_error is not None:
        kept = _keep_failed(storage, file_id, str(source), staging, staged, parse_error, partition)
        seconds = time.perf_counter() - started
        return IngestResult(
            file_id=file_id,
            source=str(source),
            status="failed",
            partition=partition,
            rows=rows,
            source_bytes=size,
            seconds=seconds,
            error=str(parse_error),
            error_type=type(parse_error).__name__,
            error_offset=getattr(parse_error, "offset", None),
            records_read=getattr(parse_error, "records_read", None),
            failed_dir=kept,
        )
    published: dict[str, WrittenFile] = {}
    order = sorted(staged, key=lambda t: (t == "files", t))  # the files table last: it marks completion
    for table in order:
        final = table_path(storage, table, partition, file_id)
        storage.makedirs(posixpath.dirname(final))
        storage.fs.move(staged[table].path, final)
        published[table] = dataclasses.replace(staged[table], path=final)
    _remove_tree(storage, staging)
    _remove_tree(storage, failed_path(storage, file_id))
    if register is not None:
        for table in order:
            schema = TABLE_SCHEMAS.get(table) or sinks[table].schema
            register(table, [published[table]], schema)
    return IngestResult(
        file_id=file_id,
        source=str(source),
        status="ingested",
        partition=partition,
        files=published,
        rows=rows,
        source_bytes=size,
        seconds=time.perf_counter() - started,
    )


def _is_input_error(exc: BaseException, format_error: type[BaseException]) -> bool:
    """Whether an exception says the input is bad: STDF framing, or corrupt/truncated compression
    (gzip raises BadGzipFile/EOFError/zlib.error, bz2 OSError("Invalid data stream"), zip BadZipFile)."""
    import gzip
    import zipfile
    import zlib

    if isinstance(exc, format_error | EOFError | zlib.error | zipfile.BadZipFile | gzip.BadGzipFile):
        return True
    return type(exc) is OSError and "invalid data stream" in str(exc).lower()


def _keep_failed(
    storage: Storage,
    file_id: str,
    source: str,
    staging: str,
    staged: dict[str, WrittenFile],
    error: BaseException,
    partition: dict[str, str],
) -> str:
    """Move the partial tables to ``_failed/<file_id>/`` and write ``error.json`` beside them."""
    target = failed_path(storage, file_id)
    _remove_tree(storage, target)
    storage.makedirs(target)
    for table, written in staged.items():
        storage.fs.move(written.path, posixpath.join(target, f"{table}.parquet"))
    report = {
        "file_id": file_id,
        "source": source,
        "error": str(error),
        "error_type": type(error).__name__,
        "offset": getattr(error, "offset", None),
        "records_read": getattr(error, "records_read", None),
        "partition": partition,
        "rows_read": {table: w.rows for table, w in staged.items()},
        "failed_at": datetime.now(UTC).isoformat(),
    }
    tmp = posixpath.join(target, f".tmp-{uuid.uuid4().hex}-error.json")
    with storage.fs.open_output_stream(tmp) as out:
        out.write(json.dumps(report, indent=2, sort_keys=True).encode())
    storage.fs.move(tmp, posixpath.join(target, "error.json"))
    _remove_tree(storage, staging)
    return target


def _remove_tree(storage: Storage, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        storage.delete(path)


def list_failures(storage: Storage) -> list[dict[str, Any]]:
    """Every ``error.json`` under ``<root>/stdf/_failed/``: the files that could not be ingested."""
    import pyarrow.fs as pafs

    base = storage.path(STDF_PREFIX, FAILED_DIR)
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    reports = []
    for info in storage.fs.get_file_info(selector):
        if info.type == pafs.FileType.File and posixpath.basename(info.path) == "error.json":
            with storage.fs.open_input_stream(info.path) as fh:
                report = json.loads(fh.read())
            report["failed_dir"] = posixpath.dirname(info.path)
            reports.append(report)
    return sorted(reports, key=lambda r: r.get("failed_at", ""))


STDF_DATASET_PREFIX = "stdf_"  # catalog dataset of table T: stdf_T


def merged_by_compaction(catalog: Any, file_id: str) -> bool:
    """True when this file was ingested and a compaction has since merged its rows into other files.

    Ingesting it again would then publish ``<file_id>.parquet`` beside the compacted files that already
    hold its rows: every row twice. The ``files`` table's entry tells: registered once, never live now.
    """
    states = catalog.file_states(f"{STDF_DATASET_PREFIX}files", f"{file_id}.parquet")
    return bool(states) and "live" not in states


def catalog_registrar(catalog: Any, storage: Storage, prefix: str = STDF_DATASET_PREFIX) -> RegisterFn:
    """A ``register`` callback that adds each table's files to the catalog dataset ``stdf_<table>``.

    ``catalog`` is a :class:`parquetry.catalog.Catalog` (anything with its ``register_files``)."""

    def register(table: str, files: Sequence[WrittenFile], schema: pa.Schema) -> None:
        uri = storage.uri(storage.path(STDF_PREFIX, table))
        catalog.register_files(f"{prefix}{table}", uri, files, schema)

    return register
