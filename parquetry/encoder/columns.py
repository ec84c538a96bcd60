"""One column chunk of a flat column, encoded by Parquetry: pages and column metadata.

Which columns qualify (:func:`own_columns`): top-level, not dictionary-encoded, of these Arrow types:

- integers up to 64 bits (signed), ``date32``, ``time32[ms]``, ``time64``, ``timestamp`` in ms, us or
  ns, and ``decimal128`` of precision <= 18 stored as integers, all with ``DELTA_BINARY_PACKED``;
- ``string``, ``binary`` (and their large variants) and ``fixed_size_binary``, ``PLAIN``.

Pages are version 1 data pages, as pyarrow writes them by default: definition levels (RLE / bit-packed
hybrid: the Arrow validity bitmap is already the bit-packed form), then the values, compressed together.
Statistics follow pyarrow's rules, so a file reads back with the same metadata whichever encoder wrote
a column: signed integers also fill the deprecated min / max fields, byte arrays compare as unsigned
bytes, min / max longer than 4,096 bytes are left out, and ``size_statistics`` (unencoded bytes, the
definition level histogram) are written for nullable columns. The tests compare each of these, field by
field, with the footer pyarrow writes for the same data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from parquetry.encoder import kernels
from parquetry.encoder.headers import page_header, statistics, statistics_bytes
from parquetry.encoder.selection import (
    BYTE_ARRAY,
    DATA_PAGE,
    FIXED_LEN_BYTE_ARRAY,
    INT32,
    INT64,
    RLE,
    UNCOMPRESSED,
    ZSTD,
    EncodeError,
    OwnColumn,
)
from parquetry.thrift import BINARY, I32, I64, LIST, STRUCT, TList, TStruct


@dataclass
class EncodedChunk:
    """A column chunk's bytes (pages, in order) and its ``ColumnChunk`` struct, offsets from 0."""

    pages: list[Any]
    chunk: TStruct
    uncompressed: int
    compressed: int

    def placed(self, pos: int) -> TStruct:
        """The ``ColumnChunk`` for the chunk written at output byte ``pos``."""
        meta = TStruct(list(self.chunk.get(3).fields))
        meta.set(9, I64, pos)
        return TStruct([(2, I64, 0), (3, STRUCT, meta)])


class ChunkEncoder:
    """Encodes columns of one file's schema; ``codec`` None writes pages uncompressed."""

    def __init__(self, codec: pa.Codec | None, page_bytes: int) -> None:
        self.codec = codec
        self.page_bytes = max(1, page_bytes)
        self._buffer = np.empty(0, np.uint8)

    def encode(self, name: str, column: OwnColumn, data: pa.ChunkedArray) -> EncodedChunk:
        pages: list[Any] = []
        total = {"nulls": 0, "values": 0, "raw": 0, "lo": None, "hi": None, "pages": 0}
        uncompressed = compressed = 0
        for array in _runs(data.chunks):
            if not column.nullable and array.null_count:
                raise EncodeError(f"column {name!r} is not nullable but holds {array.null_count} null(s)")
            for body, nulls, count, raw, lo, hi in self._pages(column, array):
                size = len(body)
                payload = self.codec.compress(body) if self.codec is not None else body.tobytes()
                stats = statistics_bytes(column, nulls, lo, hi)
                head = page_header(size, len(payload), count, column.encoding, stats)
                pages.append(head)
                pages.append(payload)
                uncompressed += len(head) + size
                compressed += len(head) + len(payload)
                total["nulls"] += nulls
                total["values"] += count
                total["raw"] += raw
                total["pages"] += 1
                if lo is not None:
                    if total["lo"] is None or _before(column, lo, total["lo"]):
                        total["lo"] = lo
                    if total["hi"] is None or _before(column, total["hi"], hi):
                        total["hi"] = hi
        meta = TStruct(
            [
                (1, I32, column.physical),
                (2, LIST, TList(I32, [RLE, column.encoding])),
                (3, LIST, TList(BINARY, [name.encode()])),
                (4, I32, ZSTD if self.codec is not None else UNCOMPRESSED),
                (5, I64, total["values"]),
                (6, I64, uncompressed),
                (7, I64, compressed),
                (9, I64, 0),
                (12, STRUCT, statistics(column, total["nulls"], total["lo"], total["hi"])),
                (
                    13,
                    LIST,
                    TList(
                        STRUCT,
                        [TStruct([(1, I32, DATA_PAGE), (2, I32, column.encoding), (3, I32, total["pages"])])]
                        if total["pages"]
                        else [],
                    ),
                ),
            ]
        )
        # Size statistics as pyarrow writes them: byte arrays' unencoded bytes, the definition level
        # histogram of nullable columns; none for a non-nullable fixed-width column.
        if column.nullable or column.physical == BYTE_ARRAY:
            sizes = [(1, I64, total["raw"])] if column.physical == BYTE_ARRAY else []
            levels = [total["nulls"], total["values"] - total["nulls"]] if column.nullable else []
            sizes += [(2, LIST, TList(I64, [])), (3, LIST, TList(I64, levels))]
            meta.set(16, STRUCT, TStruct(sizes))
        return EncodedChunk(pages, TStruct([(2, I64, 0), (3, STRUCT, meta)]), uncompressed, compressed)

    def _scratch(self, size: int) -> np.ndarray:
        """A reused page buffer of at least ``size`` bytes (fresh memory costs a page fault per 4 KiB)."""
        if self._buffer.shape[0] < size:
            self._buffer = np.empty(max(size, 2 * self._buffer.shape[0]), np.uint8)
        return self._buffer

    def _pages(self, column: OwnColumn, array: pa.Array) -> Any:
        """(body, nulls, values, value bytes, min, max) of each page of ``array``; a body is a view of
        the scratch buffer, valid until the next page.

        The kernels read Arrow's buffers in place: values, offsets and the validity bitmap are indexed
        from the buffers' start, so a sliced array is read at ``array.offset`` without a copy.
        """
        n = len(array)
        base = array.offset
        bits = _bitmap(array)
        if column.physical == BYTE_ARRAY:
            offsets, data = _byte_buffers(array)
            per_value = 4 + (int(offsets[base + n]) - int(offsets[base])) / max(1, n)
        elif column.physical == FIXED_LEN_BYTE_ARRAY:
            w = column.width
            data = np.frombuffer(array.buffers()[1], np.uint8)[: (base + n) * w]
            per_value = w
        else:
            values = _integers(array, column.physical)
            per_value = 8 if column.physical == INT64 else 4
        step = max(1, int(self.page_bytes // max(per_value, 1.0)))
        for start in range(0, n, step):
            first = base + start
            count = min(n, start + step) - start
            nulls = kernels.count_nulls(bits, first, count)
            at = 0
            size = kernels.levels_bound(count) if column.nullable else 0
            raw = 0
            if column.physical == BYTE_ARRAY:
                size += 4 * count + int(offsets[first + count]) - int(offsets[first])
            elif column.physical == FIXED_LEN_BYTE_ARRAY:
                size += count * w
            else:
                size += kernels.delta_bound(count - nulls)
            out = self._scratch(size)
            if column.nullable:
                at = kernels.definition_levels(bits, first, count, nulls, out, 0)
            if column.physical == BYTE_ARRAY:
                end, raw, lo_i, hi_i = kernels.plain_byte_array(offsets, data, bits, first, count, out, at)
                lo = _bytes_at(data, offsets, lo_i)
                hi = _bytes_at(data, offsets, hi_i)
            elif column.physical == FIXED_LEN_BYTE_ARRAY:
                end, lo_i, hi_i = kernels.plain_fixed(data, w, bits, first, count, out, at)
                lo = data[lo_i * w : lo_i * w + w].tobytes() if lo_i >= 0 else None
                hi = data[hi_i * w : hi_i * w + w].tobytes() if hi_i >= 0 else None
            else:
                valid = count - nulls
                width32 = column.physical == INT32
                end, lo_v, hi_v = kernels.delta_encode(values, bits, first, count, valid, width32, out, at)
                fmt = "<q" if column.physical == INT64 else "<i"
                lo = struct.pack(fmt, lo_v) if valid else None
                hi = struct.pack(fmt, hi_v) if valid else None
            yield out[:end], nulls, count, raw, lo, hi


_NO_NULLS = np.empty(0, np.uint8)
RUN_ROWS = 65_536


def _runs(chunks: list[pa.Array]) -> Any:
    """``chunks`` with runs of small ones joined into arrays of about ``RUN_ROWS`` values.

    A page never spans two arrays, so a column of many small chunks (a compaction's input slices, 5,000
    rows each) would otherwise make as many small pages, each with its header and Python overhead.
    """
    run: list[pa.Array] = []
    rows = 0
    for array in chunks:
        if len(array) == 0:
            continue
        if len(array) >= RUN_ROWS:
            if run:
                yield run[0] if len(run) == 1 else pa.concat_arrays(run)
                run, rows = [], 0
            yield array
            continue
        run.append(array)
        rows += len(array)
        if rows >= RUN_ROWS:
            yield run[0] if len(run) == 1 else pa.concat_arrays(run)
            run, rows = [], 0
    if run:
        yield run[0] if len(run) == 1 else pa.concat_arrays(run)


def _bitmap(array: pa.Array) -> np.ndarray:
    """The validity bitmap of ``array`` from its buffer's start (empty when no value is null)."""
    if array.null_count == 0 or array.buffers()[0] is None:
        return _NO_NULLS
    return np.frombuffer(array.buffers()[0], np.uint8)


def _byte_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data bytes) of a string or binary array, from the buffers' start."""
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offsets = np.frombuffer(array.buffers()[1], np.int64 if large else np.int32)
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    return offsets, data


def _bytes_at(data: np.ndarray, offsets: np.ndarray, i: int) -> bytes | None:
    return None if i < 0 else data[offsets[i] : offsets[i + 1]].tobytes()


def _integers(array: pa.Array, physical: int) -> np.ndarray:
    """The values of an integer-like array, from its buffer's start, as arrays of the integers Parquet
    stores (a decimal's low 4 or 8 bytes: a strided view, no copy)."""
    t = array.type
    buffer = array.buffers()[1]
    if pa.types.is_decimal128(t):  # the low 4 or 8 bytes of each little-endian 128-bit value
        words = np.frombuffer(buffer, np.int32 if physical == INT32 else np.int64)
        return words[:: 4 if physical == INT32 else 2]
    dtype = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[t.bit_width // 8]
    return np.frombuffer(buffer, dtype)


def _before(column: OwnColumn, a: bytes, b: bytes) -> bool:
    if column.signed:
        fmt = "<q" if column.physical == INT64 else "<i"
        return struct.unpack(fmt, a)[0] < struct.unpack(fmt, b)[0]
    return a < b
