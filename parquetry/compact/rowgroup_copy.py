"""Copy whole Parquet row groups byte for byte into a new file: no decode, no re-encode.

A healthy row group (big enough, statistics present) does not need rewriting to move into a bigger file:
its column chunks are copied as they are and the new footer is the first source's footer with the row
groups' offsets shifted (Thrift compact protocol, :mod:`parquetry.thrift`). Page indexes and bloom
filters live outside the column chunks, so their pointers are dropped rather than left dangling.

Only sources with byte-identical Parquet schemas and key/value metadata are combined, never encrypted
files, never INT96 columns (those are re-encoded to microsecond INT64), never chunks in other files.

Verification does not trust the encoder: the output's footer is parsed back by pyarrow, every column
chunk's metadata (types, codec, encodings, value counts, sizes, statistics) must equal its source's, the
chunks must tile the file from byte 4 to the footer, and the stored bytes must be exactly the source bytes:
on a local disk the chunks are copied by the kernel (``copy_file_range``, no pass through Python) and the
file read back is compared byte for byte with the source ranges; on an object store the sha256 of the
bytes sent (magic, source chunks, new footer) must equal the sha256 of the object read back. Either way
one pass over the stored file gives both that check and the file's etag. Equal metadata over equal bytes
decodes to equal rows. What this cannot see is a page corrupted in the source: it is carried over
unchanged (never introduced).
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.stitch import MAGIC, FooterBuilder
from parquetry.storage import Storage, WrittenFile
from parquetry.thrift import LIST, ThriftError, TStruct, decode, encode

_BLOCK = 8 << 20
# The read-back compares and hashes in blocks small enough to stay in the CPU cache between the two
# reads, the comparison and the hash (8 MiB blocks made the hash pay a second trip to memory).
_COMPARE_BLOCK = 1 << 20
# What a copied column chunk's metadata must share with its source's: all but where it sits in the file
# (offsets) and the bloom filter, which the copy drops.
_CHUNK_FIELDS = (
    "physical_type",
    "num_values",
    "path_in_schema",
    "compression",
    "encodings",
    "has_dictionary_page",
    "total_compressed_size",
    "total_uncompressed_size",
    "is_stats_set",
)


class RowGroupCopyError(RuntimeError):
    """A row-group copy failed or did not verify; nothing was published."""


@dataclass(frozen=True)
class _Segment:
    """Output bytes ``[offset, offset + length)`` are source ``path``'s bytes from ``start``."""

    offset: int
    path: str
    start: int
    length: int


@dataclass(frozen=True)
class _Layout:
    rows: int
    row_groups: int
    footer_start: int
    segments: tuple[_Segment, ...]
    tail: bytes  # footer, its length, magic
    sent_sha: str | None  # sha256 of every byte sent, when they went through Python


@dataclass(frozen=True)
class SourceFooter:
    path: str
    metadata: TStruct  # FileMetaData
    layout_key: bytes  # encoded schema + key/value metadata: equal keys can share one footer
    copyable: bool
    reason: str


def read_source_footer(storage: Storage, path: str) -> SourceFooter:
    """Decode a file's footer with the Thrift codec and say whether its row groups can be copied."""
    with storage.fs.open_input_file(path) as fh:
        size = fh.size()
        if size < 12:
            raise RowGroupCopyError(f"{storage.uri(path)}: {size} bytes is too short for Parquet")
        tail = fh.read_at(8, size - 8)
        if tail[4:] != MAGIC:
            raise RowGroupCopyError(
                f"{storage.uri(path)}: no PAR1 magic at the end (encrypted or not Parquet)"
            )
        length = int.from_bytes(tail[:4], "little")
        if length > size - 12:
            raise RowGroupCopyError(f"{storage.uri(path)}: footer length {length} exceeds the file")
        raw = fh.read_at(length, size - 8 - length)
    try:
        meta = decode(raw)
    except ThriftError as exc:
        raise RowGroupCopyError(f"{storage.uri(path)}: footer does not decode: {exc}") from exc
    reason = _not_copyable(meta)
    schema = meta.get(2)
    layout = encode(TStruct([(2, LIST, schema), *([(5, LIST, meta.get(5))] if meta.has(5) else [])]))
    return SourceFooter(path, meta, layout, reason == "", reason)


def _not_copyable(meta: TStruct) -> str:
    if meta.has(8) or meta.has(9):
        return "encrypted footer"
    for element in meta.get(2).items:
        if element.get(1) == 3:  # physical type INT96
            return "INT96 column"
    for rg in meta.get(4).items:
        for cc in rg.get(1).items:
            if cc.has(1) or cc.has(8) or cc.has(9) or not cc.has(3):
                return "column chunk in another file, encrypted or without metadata"
            if not cc.get(3).has(12):
                return "column chunk without statistics"
    return ""


def copy_row_groups(
    storage: Storage, path: str, parts: Sequence[tuple[SourceFooter, int]]
) -> tuple[WrittenFile, dict[str, int]]:
    """Write row groups ``parts`` ((source, row group index), in order) to ``path`` atomically.

    Returns the published file and ``{"row_groups": n, "chunk_bytes": b}`` for the verification report.
    """
    if not parts:
        raise RowGroupCopyError(f"{path}: nothing to copy")
    first = parts[0][0]
    for source, _ in parts:
        if not source.copyable:
            raise RowGroupCopyError(f"{storage.uri(source.path)}: cannot copy row groups: {source.reason}")
        if source.layout_key != first.layout_key:
            raise RowGroupCopyError(
                f"{storage.uri(source.path)}: schema differs from {storage.uri(first.path)}"
            )
    with storage.publishing(path) as tmp:
        if storage.is_local:
            layout = _write_local(storage, tmp, parts)
        else:
            layout = _write_streamed(storage, tmp, parts)
        written = _verify(storage, tmp, path, parts, layout)
    return written, {"row_groups": layout.row_groups, "chunk_bytes": layout.footer_start - 4}


def _write_local(storage: Storage, tmp: str, parts: Sequence[tuple[SourceFooter, int]]) -> _Layout:
    """Local disk: the kernel copies the chunks (no pass through Python); the footer is written after."""
    handles: dict[str, Any] = {}
    try:
        with open(tmp, "wb", buffering=0) as sink:
            sink.write(MAGIC)

            def copy_range(source: SourceFooter, start: int, length: int) -> None:
                if source.path not in handles:
                    handles[source.path] = open(source.path, "rb", buffering=0)  # noqa: SIM115
                _copy_file_range(handles[source.path], sink, start, length, storage.uri(source.path))

            layout = _assemble(parts, copy_range)
            sink.write(layout.tail)
            return layout
    finally:
        for fh in handles.values():
            fh.close()


def _copy_file_range(src: Any, dst: Any, start: int, length: int, uri: str) -> None:
    offset, end = start, start + length
    while offset < end:
        try:
            n = os.copy_file_range(src.fileno(), dst.fileno(), end - offset, offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
                raise
            n = 0  # this filesystem cannot: copy through a buffer
            block = os.pread(src.fileno(), min(_BLOCK, end - offset), offset)
            if block:
                dst.write(block)
                n = len(block)
        if n == 0:
            raise RowGroupCopyError(f"{uri}: short read at byte {offset}")
        offset += n


def _write_streamed(storage: Storage, tmp: str, parts: Sequence[tuple[SourceFooter, int]]) -> _Layout:
    """Any filesystem: chunks stream through Python, hashed on their way (the read-back must match)."""
    sent = hashlib.sha256()
    handles: dict[str, Any] = {}
    try:
        with storage.fs.open_output_stream(tmp) as sink:

            def send(data: bytes) -> None:
                sink.write(data)
                sent.update(data)

            def copy_range(source: SourceFooter, start: int, length: int) -> None:
                if source.path not in handles:
                    handles[source.path] = storage.fs.open_input_file(source.path)
                fh = handles[source.path]
                for offset in range(start, start + length, _BLOCK):
                    block = fh.read_at(min(_BLOCK, start + length - offset), offset)
                    if not block:
                        raise RowGroupCopyError(f"{storage.uri(source.path)}: short read at byte {offset}")
                    send(block)

            send(MAGIC)
            layout = _assemble(parts, copy_range)
            send(layout.tail)
    finally:
        for fh in handles.values():
            fh.close()
    return _Layout(
        layout.rows, layout.row_groups, layout.footer_start, layout.segments, layout.tail, sent.hexdigest()
    )


def _assemble(
    parts: Sequence[tuple[SourceFooter, int]], copy_range: Callable[[SourceFooter, int, int], None]
) -> _Layout:
    """Copy every column chunk of ``parts`` (after the 4-byte magic) and build the new footer."""
    builder = FooterBuilder()
    segments: list[_Segment] = []
    pos = 4
    for source, r in parts:
        moved = builder.add(
            source.metadata, r, pos, lambda start, length, source=source: copy_range(source, start, length)
        )
        for offset, start, length in moved:
            segments.append(_Segment(offset, source.path, start, length))
            pos = offset + length
    return _Layout(builder.rows, len(builder.groups), pos, tuple(segments), builder.tail(), None)


def _same_chunk(got: pq.ColumnChunkMetaData, want: pq.ColumnChunkMetaData) -> bool:
    """Whether two column chunks' metadata agree apart from their offsets.

    Statistics are compared as Parquet stores them (physical values, in C++), never turned into Python
    objects: a date or timestamp outside Python's years 1 to 9999 (PostgreSQL allows them) has none.
    """
    if any(getattr(got, key) != getattr(want, key) for key in _CHUNK_FIELDS):
        return False
    if got.is_stats_set and not got.statistics.equals(want.statistics):
        return False
    geo_got, geo_want = getattr(got, "geo_statistics", None), getattr(want, "geo_statistics", None)
    if geo_got is None or geo_want is None:
        return geo_got is None and geo_want is None
    return bool(geo_got.to_dict() == geo_want.to_dict())


def _verify(
    storage: Storage,
    tmp: str,
    path: str,
    parts: Sequence[tuple[SourceFooter, int]],
    layout: _Layout,
) -> WrittenFile:
    where = storage.uri(path)
    rows, footer_start = layout.rows, layout.footer_start
    with storage.fs.open_input_file(tmp) as fh:
        out = pq.ParquetFile(fh).metadata
        if out.num_rows != rows or out.num_row_groups != len(parts):
            raise RowGroupCopyError(
                f"{where}: footer reads back {out.num_rows} rows in {out.num_row_groups} groups"
            )
        ranges = []
        sources: dict[str, pq.FileMetaData] = {}
        for n, (source, r) in enumerate(parts):
            if source.path not in sources:
                with storage.fs.open_input_file(source.path) as sfh:
                    sources[source.path] = pq.ParquetFile(sfh).metadata
            want = sources[source.path].row_group(r)
            got = out.row_group(n)
            if got.num_rows != want.num_rows or got.num_columns != want.num_columns:
                raise RowGroupCopyError(f"{where}: row group {n} does not match its source")
            for c in range(got.num_columns):
                column = got.column(c)
                if not _same_chunk(column, want.column(c)):
                    raise RowGroupCopyError(
                        f"{where}: row group {n} column {column.path_in_schema} metadata differs"
                    )
                start = (
                    column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
                )
                ranges.append((start, column.total_compressed_size))
    expected = 4
    for start, length in ranges:
        if start != expected:
            raise RowGroupCopyError(f"{where}: column chunk at byte {start}, expected {expected}")
        expected += length
    if expected != footer_start:
        raise RowGroupCopyError(
            f"{where}: column chunks end at {expected}, the footer starts at {footer_start}"
        )
    if layout.sent_sha is None:
        etag, size = _compare_with_sources(storage, tmp, where, layout)
    else:
        etag, size = storage.file_digest(tmp)
        if etag != layout.sent_sha:
            raise RowGroupCopyError(
                f"{where}: the bytes read back differ from the bytes sent (source column chunks and footer)"
            )
    return WrittenFile(path=path, bytes=size, rows=rows, row_groups=len(parts), etag=etag)


def _compare_with_sources(storage: Storage, tmp: str, where: str, layout: _Layout) -> tuple[str, int]:
    """Read the stored file back once: its chunks must equal the source ranges byte for byte, the rest
    the magic and footer written. Returns its sha256 and size.

    Local files only (the kernel copied them): both sides are read with ``preadv`` into reused buffers
    (no page faults on fresh memory) and compared with ``memcmp``; a second thread hashes each block of
    the output (hashlib releases the GIL) while the next one is read and compared.
    """
    whole = hashlib.sha256()
    out_views = [memoryview(bytearray(_COMPARE_BLOCK)) for _ in range(2)]  # one hashed, one being read
    src_view = memoryview(bytearray(_COMPARE_BLOCK))
    hashing: list[Future[None] | None] = [None, None]
    sources: dict[str, int] = {}
    blocks = 0

    def read(fd: int, view: memoryview, n: int, offset: int, what: str) -> memoryview:
        got = os.preadv(fd, [view[:n]], offset)
        if got != n:
            raise RowGroupCopyError(f"{where}: short read of {what} ({got} of {n} bytes at {offset})")
        return view[:n]

    def compare(n: int, offset: int, want: bytes | memoryview, what: str) -> None:
        nonlocal blocks
        slot = blocks % 2
        blocks += 1
        if (previous := hashing[slot]) is not None:
            previous.result()  # the hash is done with this buffer
        got = read(out, out_views[slot], n, offset, "the output")
        if not pa.py_buffer(got).equals(pa.py_buffer(want)):
            raise RowGroupCopyError(f"{where}: the bytes read back differ from {what}")
        hashing[slot] = hasher.submit(whole.update, got)  # one worker: blocks are hashed in order

    out = os.open(tmp, os.O_RDONLY)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="parquetry-compact-etag") as hasher:
            size = os.fstat(out).st_size
            expected_size = layout.footer_start + len(layout.tail)
            if size != expected_size:
                raise RowGroupCopyError(f"{where}: {size} bytes stored, {expected_size} written")
            compare(4, 0, MAGIC, "the magic at byte 0")
            position = 4
            for seg in layout.segments:
                if seg.offset != position:  # every byte of the output is compared, none twice
                    raise RowGroupCopyError(f"{where}: copied ranges leave a gap at byte {position}")
                position += seg.length
                if seg.path not in sources:
                    sources[seg.path] = os.open(seg.path, os.O_RDONLY)
                for done in range(0, seg.length, _COMPARE_BLOCK):
                    n = min(_COMPARE_BLOCK, seg.length - done)
                    what = f"{storage.uri(seg.path)} bytes {seg.start + done}..{seg.start + done + n}"
                    want = read(sources[seg.path], src_view, n, seg.start + done, what)
                    compare(n, seg.offset + done, want, what)
            if position != layout.footer_start:
                raise RowGroupCopyError(f"{where}: copied ranges end at {position}, not at the footer")
            compare(len(layout.tail), layout.footer_start, layout.tail, "the footer written")
            for pending in hashing:
                if pending is not None:
                    pending.result()
    finally:
        os.close(out)
        for fd in sources.values():
            os.close(fd)
    return whole.hexdigest(), size
