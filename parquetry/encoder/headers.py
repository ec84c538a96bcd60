"""Page headers and statistics in the Thrift compact protocol, written as bytes directly.

A header is encoded for every page; the generic encoder (:mod:`parquetry.thrift`) cost as much as the
page's delta packing. The tests decode these bytes with the generic codec and compare field by field.
"""

from __future__ import annotations

from parquetry.encoder.selection import MAX_STATISTICS_SIZE, OwnColumn
from parquetry.thrift import BINARY, BOOL_TRUE, I64, TStruct, decode, varint


def uleb(n: int) -> bytes:
    """``n`` as an unsigned LEB128 varint (Thrift's and Parquet's)."""
    out = bytearray()
    varint(n, out)
    return bytes(out)


def statistics(column: OwnColumn, nulls: int, lo: bytes | None, hi: bytes | None) -> TStruct:
    """A ``Statistics`` struct as pyarrow fills it: a min or max longer than ``MAX_STATISTICS_SIZE``
    is left out (each on its own), signed integers also fill the deprecated fields 1 and 2."""
    return decode(statistics_bytes(column, nulls, lo, hi))


def _zigzag(n: int) -> bytes:
    return uleb((n << 1) ^ (n >> 63))


def statistics_bytes(column: OwnColumn, nulls: int, lo: bytes | None, hi: bytes | None) -> bytes:
    """An encoded ``Statistics`` struct (see :func:`statistics`), written directly: a page header is
    encoded for every page, and the generic encoder cost as much as the page's delta packing."""
    has_hi = hi is not None and len(hi) <= MAX_STATISTICS_SIZE
    has_lo = lo is not None and len(lo) <= MAX_STATISTICS_SIZE
    fields: list[tuple[int, int, bytes]] = []  # (id, compact type, value bytes)
    if column.signed and has_hi and has_lo:
        fields += [(1, BINARY, uleb(len(hi)) + hi), (2, BINARY, uleb(len(lo)) + lo)]  # type: ignore[arg-type]
    fields.append((3, I64, _zigzag(nulls)))
    if has_hi:
        fields.append((5, BINARY, uleb(len(hi)) + hi))  # type: ignore[arg-type]
    if has_lo:
        fields.append((6, BINARY, uleb(len(lo)) + lo))  # type: ignore[arg-type]
    if has_hi:
        fields.append((7, BOOL_TRUE, b""))
    if has_lo:
        fields.append((8, BOOL_TRUE, b""))
    out = bytearray()
    last = 0
    for fid, ftype, value in fields:
        out.append(((fid - last) << 4) | ftype)
        out += value
        last = fid
    out.append(0)
    return bytes(out)


def page_header(uncompressed: int, compressed: int, values: int, encoding: int, statistics: bytes) -> bytes:
    """A version 1 data page's ``PageHeader`` (thrift compact protocol), statistics already encoded."""
    return b"".join(
        (
            b"\x15\x00\x15",  # 1: type DATA_PAGE; 2: uncompressed size
            _zigzag(uncompressed),
            b"\x15",  # 3: compressed size
            _zigzag(compressed),
            b"\x2c\x15",  # 5: data_page_header { 1: values
            _zigzag(values),
            b"\x15",  # 2: encoding
            _zigzag(encoding),
            b"\x15\x06\x15\x06\x1c",  # 3, 4: RLE levels; 5: statistics
            statistics,
            b"\x00\x00",  # } stop
        )
    )
