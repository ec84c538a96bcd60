"""Parquet files made of row groups encoded apart: in parallel, then stitched together in order.

pyarrow encodes one file's row groups one after another, on one core. Here each row group is encoded by
its own ``ParquetWriter`` into an in-memory Parquet file (a *part*), in a small thread pool (encoding
releases the GIL), and its column chunks are appended to the output in order under one footer: the first
part's, with every row group's offsets shifted. Column chunks are relocatable (page headers hold sizes,
not positions), and a writer starts every column chunk afresh (pages, dictionary, statistics), so the
stitched file holds the very bytes one writer makes of the same row groups: the tests compare the two
byte for byte, so output stays deterministic whatever the thread count.

:class:`FooterBuilder` is shared with the compactor's row-group copier, which moves column chunks from
other files the same way. Footers are edited with :mod:`parquetry.thrift`, which keeps every field.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.encoder import load_encoder, open_writer
from parquetry.parquet_writer import FooterError
from parquetry.thrift import I16, I64, LIST, STRUCT, ThriftError, TList, TStruct, decode, encode

MAGIC = b"PAR1"


class StitchError(RuntimeError):
    """An encoded part or a footer is not what stitching needs; nothing is written past it."""


def chunk_range(cmd: TStruct) -> tuple[int, int]:
    """(start, length) of a column chunk: from its dictionary page when it has one."""
    data = cmd.get(9)
    dictionary = cmd.get(11)
    start = dictionary if dictionary is not None and 0 < dictionary < data else data
    return start, cmd.get(7)


class FooterBuilder:
    """Builds the footer of a file whose row groups are column chunks moved from other Parquet files.

    Column chunks are relocatable (page headers hold sizes, not positions), so moving one only shifts
    the offsets its metadata records. :meth:`add` takes a row group of a source footer placed at output
    byte ``pos``; :meth:`tail` is the new footer (the first source's, with every row group added),
    its length and the closing magic. Page indexes and bloom filters are not carried (their pointers
    are dropped rather than left dangling).
    """

    def __init__(self) -> None:
        self.groups: list[TStruct] = []
        self.rows = 0
        self._first: TStruct | None = None

    def add(
        self, metadata: TStruct, r: int, pos: int, copy_range: Callable[[int, int], None]
    ) -> list[tuple[int, int, int]]:
        """Place row group ``r`` of ``metadata`` at output byte ``pos``: ``copy_range(start, length)``
        is called for each of its column chunks in order, and must append those source bytes to the
        output. Returns the (output offset, source start, length) of each chunk."""
        if self._first is None:
            self._first = metadata
        group = clone_row_group(metadata.get(4).items[r])
        group_start = pos
        moved = []
        for cc in group.get(1).items:
            start, length = chunk_range(cc.get(3))
            copy_range(start, length)
            moved.append((pos, start, length))
            place_chunk(cc, pos)
            pos += length
        group.set(5, I64, group_start)
        group.set(6, I64, pos - group_start)
        if group.has(7):  # the ordinal is optional (pyarrow leaves it out); where set, renumber it
            group.set(7, I16, len(self.groups))
        self.groups.append(group)
        self.rows += group.get(3)
        return moved

    def tail(self) -> bytes:
        if self._first is None:
            raise StitchError("no row group to write a footer for")
        meta = TStruct(list(self._first.fields))  # fields 3 and 4 are replaced, the rest shared
        meta.set(3, I64, self.rows)
        meta.set(4, LIST, TList(STRUCT, self.groups))
        footer = encode(meta)
        return footer + len(footer).to_bytes(4, "little") + MAGIC


def place_chunk(cc: TStruct, pos: int) -> None:
    """Edit a ``ColumnChunk`` (a clone: see :func:`clone_chunk`) moved to start at output byte ``pos``:
    its offsets shift, and its bloom filter and page index pointers go (they are not moved)."""
    cmd = cc.get(3)
    delta = pos - chunk_range(cmd)[0]
    for fid in (9, 10, 11):
        if cmd.has(fid):
            cmd.set(fid, I64, cmd.get(fid) + delta)
    cmd.drop(14, 15)
    if cc.get(2):
        cc.set(2, I64, cc.get(2) + delta)
    cc.drop(4, 5, 6, 7)


def clone_chunk(cc: TStruct) -> TStruct:
    """A copy of a ``ColumnChunk`` deep enough for :func:`place_chunk`: it and its metadata get new field
    lists; the values below them (statistics, schema paths) are shared, never edited."""
    return TStruct([(i, t, TStruct(list(v.fields)) if i == 3 else v) for i, t, v in cc.fields])


def chunk_ranges(metadata: TStruct, r: int) -> list[tuple[int, int]]:
    """(start, length) of each column chunk of row group ``r``, in column order."""
    return [chunk_range(cc.get(3)) for cc in metadata.get(4).items[r].get(1).items]


def clone_row_group(group: TStruct) -> TStruct:
    """A copy of a RowGroup struct deep enough to edit: the struct, its column chunks and their metadata
    get new field lists; the values below them (statistics, schema paths) are shared, never edited.

    A ``copy.deepcopy`` of every row group cost a fifth of copying a healthy dataset's bytes.
    """
    columns: TList = group.get(1)
    chunks = [clone_chunk(cc) for cc in columns.items]
    return TStruct([(i, t, TList(v.elem_type, chunks) if i == 1 else v) for i, t, v in group.fields])


def encode_part(
    table: pa.Table, schema: pa.Schema, kwargs: dict[str, Any], encoder: str = "pyarrow"
) -> tuple[pa.Buffer, int]:
    """``table`` as a Parquet file of one row group, in memory; with its row count.

    Written by :func:`parquetry.encoder.open_writer`, so the part's footer (whose schema and key-value
    metadata the stitched file takes) is the one pyarrow writes for ``schema``.
    """
    out = pa.BufferOutputStream()
    try:
        with open_writer(out, schema, "an encoded row group", None, encoder, **kwargs) as writer:
            writer.write_table(table, row_group_size=table.num_rows)
    except FooterError as exc:
        raise StitchError(str(exc)) from exc
    return out.getvalue(), table.num_rows


def write_parallel(
    sink: Any,
    tables: Iterable[pa.Table],
    schema: pa.Schema,
    kwargs: dict[str, Any],
    threads: int,
    uri: str,
    encoder: str = "pyarrow",
) -> tuple[int, int]:
    """Write each non-empty table of ``tables`` as one row group of a Parquet file into ``sink``, up to
    ``threads`` of them encoded at once (``kwargs`` are ``pq.ParquetWriter``'s, ``encoder`` as in
    :func:`parquetry.encoder.open_writer`); returns (rows, row groups). The bytes are those one writer
    makes of the same tables; no rows: a file with the schema.
    """
    if encoder == "parquetry":
        load_encoder()  # not first inside the pool's threads
    builder = FooterBuilder()
    pending: collections.deque[Future[tuple[pa.Buffer, int]]] = collections.deque()
    pos = 0

    def append(part: pa.Buffer, rows: int) -> None:
        nonlocal pos
        if pos == 0:
            sink.write(MAGIC)
            pos = len(MAGIC)
        metadata = part_footer(part, rows, uri)
        view = memoryview(part)
        builder.add(metadata, 0, pos, lambda start, length: sink.write(view[start : start + length]))
        pos += _footer_start(part) - len(MAGIC)

    with ThreadPoolExecutor(threads, thread_name_prefix="parquetry-encode") as pool:
        try:
            for table in tables:
                if table.num_rows == 0:
                    continue
                pending.append(pool.submit(encode_part, table, schema, kwargs, encoder))
                del table  # the pool holds it while encoding, nobody after
                if len(pending) >= threads:
                    append(*pending.popleft().result())
            while pending:
                append(*pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
    if not builder.groups:
        with pq.ParquetWriter(sink, schema, **kwargs):
            pass  # no rows: a file with the schema only
        return 0, 0
    sink.write(builder.tail())
    return builder.rows, len(builder.groups)


def _footer_start(part: pa.Buffer) -> int:
    return part.size - 8 - int.from_bytes(part[part.size - 8 : part.size - 4].to_pybytes(), "little")


def part_footer(part: pa.Buffer, rows: int, uri: str) -> Any:
    """The decoded footer of an encoded part, checked to be one row group of ``rows`` rows whose
    column chunks fill the part from the magic to the footer (nothing between them to carry)."""
    start = _footer_start(part)
    try:
        metadata = decode(part[start : part.size - 8].to_pybytes())
    except ThriftError as exc:
        raise StitchError(f"{uri}: an encoded row group's footer does not decode: {exc}") from exc
    groups = metadata.get(4).items
    if len(groups) != 1 or groups[0].get(3) != rows:
        raise StitchError(f"{uri}: an encoded row group of {rows} rows came back as {len(groups)} groups")
    expected = len(MAGIC)
    for chunk_start, length in chunk_ranges(metadata, 0):
        if chunk_start != expected:
            raise StitchError(f"{uri}: an encoded row group's column chunks leave a gap at {expected}")
        expected += length
    if expected != start:
        raise StitchError(f"{uri}: an encoded row group's column chunks end at {expected}, not {start}")
    return metadata
