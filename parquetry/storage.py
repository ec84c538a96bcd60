"""Where Parquet lands: a root URI (a local path or any fsspec URL) and an atomic Parquet writer.

Every writer in Parquetry goes through :meth:`Storage.write_parquet`, so every file is written under a
temporary name, verified (its footer is read back and its row count checked), and only then published
under its final name. A reader never sees a half-written file, and a crash leaves only ``.tmp-`` files,
which :meth:`Storage.remove_temporaries` clears.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import posixpath
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from parquetry.encoder import ENCODERS, open_writer
from parquetry.parquet_writer import FooterError
from parquetry.stitch import StitchError, write_parallel
from parquetry.storable import UnstorableType, storable, storable_schema

TEMP_PREFIX = ".tmp-"


class StorageError(RuntimeError):
    """A file could not be written, verified or published."""


@dataclass(frozen=True)
class ParquetOptions:
    """How Parquet files are encoded. zstd level 3 by default: small files, fast to read and write.

    ``use_dictionary``: ``True`` (every column), ``False``, a sequence of column names, or ``"auto"``:
    dictionaries for the variable-width (string and binary) columns only. Fixed-width columns of
    many distinct values (keys, prices, timestamps, uuids) gain nothing from a dictionary page that
    pyarrow builds and then abandons; zstd packs their repeats as well (measured on a lineitem-like
    table, 2 cores: about a quarter less encoding CPU and an 8% smaller file). ``"auto"`` depends on the
    schema alone, so the output stays deterministic; it is resolved by :meth:`resolved` or by
    ``writer_kwargs(schema)``; without a schema it means ``True``.

    zstd levels measured on the same table (encoding CPU, file size relative to level 3): level 1
    -40% CPU, +16% bytes; level 2 -30% CPU, +0.5% bytes. With ``delta_integers`` the numbers reach
    zstd already packed, and level 1 costs only 3% more bytes than level 2 (extraction's default).

    ``delta_integers``: DELTA_BINARY_PACKED for the top-level integer, date, time, timestamp and
    duration columns, and for decimals of precision <= 18, which are then stored as INT32/INT64 (the
    Parquet spec's own decimal layout; every reader of decimals reads it). Keys, counters and timestamps
    differ little from one row to the next, so the deltas pack into a few bits before zstd sees them:
    measured on a lineitem-like table (2 cores), 12% less encoding CPU and a 25% smaller file than plain
    encoding; on uniformly random 32/64-bit integers it costs about 15 ns per value more than plain.
    DELTA_BINARY_PACKED is part of Parquet 2.x and read by every engine Parquetry targets (pyarrow,
    DuckDB, Spark, Polars). Such columns get no dictionary (Parquet allows one or the other).

    ``write_batch_rows``: values pyarrow encodes per internal step (None: its default of 1024);
    larger steps cost less per value, and a data page then holds up to that many values.

    ``encoder``: ``"parquetry"`` encodes the flat integer-like (delta-packed), string, binary and
    fixed-size binary columns with Parquetry's own encoder (:mod:`parquetry.encoder`) and the other
    columns with pyarrow, in one file that reads back as pyarrow's would (same schema, values and
    statistics); ``"pyarrow"`` leaves every column to pyarrow. Options the own encoder does not
    implement (another codec, dictionaries, byte-stream split) hand the columns they touch to pyarrow.

    ``encode_threads``: row groups encoded at once (:mod:`parquetry.stitch`); the file's bytes do not
    depend on it. More than one helps where the writer is the bottleneck and cores are idle (the
    re-encoding stage of the compaction benchmark: 1.5-1.7x with two threads on two cores); each thread
    holds one more row group in memory.
    """

    compression: str = "zstd"
    compression_level: int | None = 3
    row_group_rows: int = 1_000_000
    target_file_rows: int = 8_000_000
    write_statistics: bool = True
    data_page_size: int = 1 << 20
    use_dictionary: bool | str | Sequence[str] = True
    delta_integers: bool = False
    write_batch_rows: int | None = None
    encode_threads: int = 1
    encoder: str = "parquetry"

    def __post_init__(self) -> None:
        d = self.use_dictionary
        if isinstance(d, str) and d != "auto":
            raise ValueError(f"use_dictionary must be a bool, 'auto' or column names, not {d!r}")
        if not isinstance(d, (bool, str)):
            object.__setattr__(self, "use_dictionary", tuple(d))  # hashable, like the rest
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, not {self.encoder!r}")

    def resolved(self, schema: pa.Schema) -> ParquetOptions:
        """These options with ``use_dictionary="auto"`` turned into the column names it means."""
        if self.use_dictionary != "auto":
            return self
        return dataclasses.replace(self, use_dictionary=auto_dictionary_columns(schema))

    def writer_kwargs(self, schema: pa.Schema | None = None) -> dict[str, Any]:
        use_dictionary = self.use_dictionary
        if use_dictionary == "auto":
            use_dictionary = auto_dictionary_columns(schema) if schema is not None else True
        kwargs: dict[str, Any] = {
            "compression": self.compression,
            "write_statistics": self.write_statistics,
            "data_page_size": self.data_page_size,
            "use_dictionary": use_dictionary if isinstance(use_dictionary, bool) else list(use_dictionary),
        }
        if self.compression_level is not None and self.compression.lower() not in ("none", "snappy"):
            kwargs["compression_level"] = self.compression_level
        if self.write_batch_rows is not None:
            kwargs["write_batch_size"] = self.write_batch_rows
        if self.delta_integers and schema is not None:
            delta = delta_columns(schema)
            if delta:
                kwargs["column_encoding"] = dict.fromkeys(delta, "DELTA_BINARY_PACKED")
                kwargs["store_decimal_as_integer"] = True
                dictionary = kwargs["use_dictionary"]
                if dictionary is not False:
                    names = schema.names if dictionary is True else dictionary
                    kwargs["use_dictionary"] = [c for c in names if c not in set(delta)]
        return kwargs


def auto_dictionary_columns(schema: pa.Schema) -> tuple[str, ...]:
    """The top-level string, binary and dictionary columns of ``schema``: where ``"auto"`` applies."""
    variable = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_dictionary,
    )
    return tuple(f.name for f in schema if any(test(f.type) for test in variable))


def delta_columns(schema: pa.Schema) -> tuple[str, ...]:
    """The top-level columns ``delta_integers`` encodes with DELTA_BINARY_PACKED: those stored as
    Parquet INT32/INT64 (integers, dates, times, timestamps, durations, decimals of precision <= 18)."""
    integer_like = (
        pa.types.is_integer,
        pa.types.is_date,
        pa.types.is_time,
        pa.types.is_timestamp,
        pa.types.is_duration,
    )

    def fits(t: pa.DataType) -> bool:
        if pa.types.is_decimal(t):
            return t.precision <= 18
        return any(test(t) for test in integer_like)

    return tuple(f.name for f in schema if fits(f.type))


@dataclass(frozen=True)
class WrittenFile:
    """One published Parquet file, as the catalog records it."""

    path: str  # full path inside the storage's filesystem
    bytes: int
    rows: int
    row_groups: int
    etag: str  # sha256 of the file's bytes


@dataclass
class Storage:
    """A root location for Parquet output.

    ``root`` is a local directory or an fsspec URL (``s3://bucket/prefix``, ``memory://x``...).
    ``storage_options`` go to fsspec (endpoint, credentials: pass them from the environment).
    """

    root: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fs, self.base = resolve_filesystem(self.root, self.storage_options)
        self.base = self.base.rstrip("/")

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """The full filesystem path of ``parts`` below the root."""
        return posixpath.join(self.base, *[p.strip("/") for p in parts if p])

    def uri(self, path: str) -> str:
        """A URI for a full path, for messages and for tools such as DuckDB."""
        if self.is_local:
            return path
        scheme = self.root.split("://", 1)[0]
        return f"{scheme}://{path}"

    def makedirs(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def delete(self, path: str) -> None:
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            self.fs.delete_file(path)
        elif info.type == pafs.FileType.Directory:
            self.fs.delete_dir(path)

    def list_files(self, prefix: str, suffix: str = ".parquet") -> list[str]:
        """Published files below ``prefix`` (temporaries excluded), sorted."""
        selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
        return sorted(
            info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and info.path.endswith(suffix)
            and not posixpath.basename(info.path).startswith(TEMP_PREFIX)
        )

    def remove_temporaries(self, prefix: str) -> int:
        """Delete ``.tmp-`` files a crashed writer left below ``prefix``; returns how many."""
        selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
        removed = 0
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and posixpath.basename(info.path).startswith(TEMP_PREFIX):
                self.fs.delete_file(info.path)
                removed += 1
        return removed

    def write_parquet(
        self,
        path: str,
        batches: pa.Table | Iterable[pa.RecordBatch | pa.Table],
        schema: pa.Schema | None = None,
        options: ParquetOptions | None = None,
    ) -> WrittenFile:
        """Write ``batches`` to ``path`` atomically: temporary name, verify, publish.

        ``batches`` may be a table or any iterable of record batches (streamed, so memory stays
        bounded by one batch); the iterable may also yield tables, each written as row groups of up to
        ``row_group_rows`` rows without first copying its chunks into one batch. An existing file at
        ``path`` is replaced (re-runs are idempotent). Intervals are stored as their three parts
        (:mod:`parquetry.storable`): the file's schema is ``storable_schema(schema)``.
        """
        options = options or ParquetOptions()
        if isinstance(batches, pa.Table):
            schema = schema or batches.schema
            batches = batches.to_batches(max_chunksize=options.row_group_rows)
        if schema is None:
            raise StorageError(f"{path}: a schema is needed to write an iterable of batches")
        try:
            stored = storable_schema(schema)
        except UnstorableType as exc:
            raise StorageError(f"{self.uri(path)}: {exc}") from exc
        if stored is not schema:  # intervals: stored as their three parts (parquetry.storable)
            batches = (storable(b, stored) for b in batches)
            schema = stored
        rows = 0
        with self.publishing(path) as tmp:
            if options.encode_threads > 1:
                tables = (
                    b if isinstance(b, pa.Table) else pa.Table.from_batches([b])
                    for b in _rechunk(batches, options.row_group_rows)
                )
                with self.fs.open_output_stream(tmp) as sink:
                    kwargs = options.writer_kwargs(schema)
                    try:
                        rows, _ = write_parallel(
                            sink,
                            tables,
                            schema,
                            kwargs,
                            options.encode_threads,
                            self.uri(path),
                            options.encoder,
                        )
                    except StitchError as exc:
                        raise StorageError(str(exc)) from exc
            else:
                kwargs = options.writer_kwargs(schema)
                try:
                    with (
                        self.fs.open_output_stream(tmp) as sink,
                        open_writer(
                            sink,
                            schema,
                            self.uri(path),
                            tmp if self.is_local else None,
                            options.encoder,
                            **kwargs,
                        ) as writer,
                    ):
                        for batch in _rechunk(batches, options.row_group_rows):
                            if isinstance(batch, pa.Table):
                                writer.write_table(batch, row_group_size=options.row_group_rows)
                            else:
                                writer.write_batch(batch, row_group_size=options.row_group_rows)
                            rows += batch.num_rows
                            del batch  # not held while the next one is produced: memory is one batch
                except FooterError as exc:
                    raise StorageError(str(exc)) from exc
            written = self._verify(tmp, rows)
        return WrittenFile(
            path=path, bytes=written.bytes, rows=rows, row_groups=written.row_groups, etag=written.etag
        )

    def _verify(self, path: str, expected_rows: int) -> WrittenFile:
        with self.fs.open_input_file(path) as fh:
            metadata = pq.ParquetFile(fh).metadata
            if metadata.num_rows != expected_rows:
                raise StorageError(
                    f"{path}: wrote {expected_rows} rows but the footer says {metadata.num_rows}"
                )
        digest, size = self.file_digest(path)
        return WrittenFile(
            path=path, bytes=size, rows=metadata.num_rows, row_groups=metadata.num_row_groups, etag=digest
        )

    def file_digest(self, path: str) -> tuple[str, int]:
        """sha256 and size of a file, read in 1 MiB blocks into one buffer.

        One buffer, reused: a new block per read made the allocator map fresh pages each time (the
        kernel zeroing them was a fifth of extraction's page faults), and a block that fits the cache
        is hashed while still in it.
        """
        sha = hashlib.sha256()
        size = 0
        block = bytearray(1 << 20)
        view = memoryview(block)
        with self.fs.open_input_stream(path) as fh:
            while n := fh.readinto(block):
                sha.update(view[:n])
                size += n
        return sha.hexdigest(), size

    @contextlib.contextmanager
    def publishing(self, path: str) -> Iterator[str]:
        """Yield a temporary path beside ``path``; publish it as ``path`` when the block succeeds.

        Every writer writes and verifies inside the block, so a reader never sees a partial file and a
        failure (or a crash, which leaves only a ``.tmp-`` name) removes nothing that was published.
        """
        directory = posixpath.dirname(path)
        self.makedirs(directory)
        tmp = posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}-{posixpath.basename(path)}")
        try:
            yield tmp
            if self.is_local:
                os.replace(tmp, path)  # atomic on POSIX, replaces an existing file
            else:
                self.fs.move(tmp, path)  # object stores: copy then delete; the final PUT is atomic
        except BaseException:
            if self.exists(tmp):
                self.fs.delete_file(tmp)
            raise


def _rechunk(batches: Iterable[pa.RecordBatch | pa.Table], rows: int) -> Iterator[pa.RecordBatch | pa.Table]:
    """Yield batches (or tables) of at most ``rows`` rows, so row groups follow the configured size.
    Empty ones are dropped: pyarrow would write each as an empty row group."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if batch.num_rows <= rows:
            yield batch
        else:
            for start in range(0, batch.num_rows, rows):
                yield batch.slice(start, rows)
        del batch  # released before the next one is produced


def resolve_filesystem(
    root: str, storage_options: dict[str, Any] | None = None
) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and base path for a local path or an fsspec URL."""
    if "://" not in root or root.startswith("file://"):
        local = root.removeprefix("file://")
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(local))
    import fsspec

    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), base
