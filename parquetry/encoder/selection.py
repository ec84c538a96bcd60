"""Which columns Parquetry's encoder writes itself, and how (physical type, encoding).

Only top-level columns without a dictionary qualify, of these Arrow types:

- integers up to 64 bits (signed), ``date32``, ``time32[ms]``, ``time64``, ``timestamp`` in ms, us or
  ns, and ``decimal128`` of precision <= 18 stored as integers, all with ``DELTA_BINARY_PACKED``;
- ``string``, ``binary`` (and their large variants) and ``fixed_size_binary``, ``PLAIN``.

Everything else, and every column under an option the encoder does not implement, is pyarrow's. This
module imports no numba: a writer that encodes nothing itself never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from parquetry.parquet_writer import empty_footer
from parquetry.thrift import TStruct

INT32, INT64, BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY = 1, 2, 6, 7
PLAIN, RLE, DELTA_BINARY_PACKED = 0, 3, 5
UNCOMPRESSED, ZSTD = 0, 6
DATA_PAGE = 0
MAX_STATISTICS_SIZE = 4096  # pyarrow's default: longer min / max values are not written
_SAFE_KWARGS = {
    "compression",
    "compression_level",
    "write_statistics",
    "data_page_size",
    "use_dictionary",
    "write_batch_size",
    "column_encoding",
    "store_decimal_as_integer",
}


class EncodeError(ValueError):
    """Values the column's schema forbids (nulls in a non-nullable column)."""


@dataclass(frozen=True)
class OwnColumn:
    """How one top-level column is encoded here: its physical type and encoding, and whether it is
    nullable (then pages carry definition levels)."""

    physical: int
    encoding: int
    nullable: bool
    width: int = 0  # FIXED_LEN_BYTE_ARRAY: bytes per value

    @property
    def signed(self) -> bool:
        return self.physical in (INT32, INT64)


def _delta_type(t: pa.DataType, kwargs: dict[str, Any]) -> int | None:
    """The Parquet physical type of an integer-like Arrow type this encoder writes as deltas, if any."""
    if pa.types.is_decimal128(t):
        if not kwargs.get("store_decimal_as_integer") or t.precision > 18:
            return None
        return INT32 if t.precision <= 9 else INT64
    if pa.types.is_signed_integer(t):
        return INT64 if t.bit_width == 64 else INT32
    if pa.types.is_date32(t) or (pa.types.is_time32(t) and t.unit == "ms"):
        return INT32
    if pa.types.is_time64(t) or (pa.types.is_timestamp(t) and t.unit in ("ms", "us", "ns")):
        return INT64
    return None


def own_columns(schema: pa.Schema, kwargs: dict[str, Any], elements: list[TStruct]) -> dict[int, OwnColumn]:
    """The top-level columns of ``schema`` this encoder writes, with ``pq.ParquetWriter`` options
    ``kwargs``; ``elements`` is the Parquet schema pyarrow writes for ``schema`` (its footer's field 2).

    Any option this encoder does not implement (another codec, page version, checksum, page index,
    byte-stream split...) leaves every column to pyarrow, so the options always mean what they say.
    """
    if set(kwargs) - _SAFE_KWARGS:
        return {}
    if str(kwargs.get("compression", "snappy")).lower() not in ("zstd", "none"):
        return {}
    stats = kwargs.get("write_statistics", True)
    dictionary = kwargs.get("use_dictionary", True)
    encodings = kwargs.get("column_encoding") or {}
    if isinstance(encodings, str):
        return {}
    out: dict[int, OwnColumn] = {}
    at = 1  # elements[0] is the root; each top-level field is followed by its subtree
    for i, f in enumerate(schema):
        if at >= len(elements):
            return {}  # not the schema pyarrow wrote for these fields: encode nothing here
        element = elements[at]
        size = _subtree_size(elements, at)
        at += size
        if size != 1 or element.get(4) != f.name.encode():
            continue
        if stats is not True and (stats is False or f.name not in stats):
            continue
        if dictionary is True or (dictionary is not False and f.name in dictionary):
            continue
        physical = element.get(1)
        nullable = element.get(3) == 1
        wanted = encodings.get(f.name)
        delta = _delta_type(f.type, kwargs)
        if delta is not None and wanted == "DELTA_BINARY_PACKED" and physical == delta:
            out[i] = OwnColumn(physical, DELTA_BINARY_PACKED, nullable)
        elif wanted in (None, "PLAIN") and physical == BYTE_ARRAY and _is_bytes(f.type):
            out[i] = OwnColumn(BYTE_ARRAY, PLAIN, nullable)
        elif wanted in (None, "PLAIN") and physical == FIXED_LEN_BYTE_ARRAY and _is_fixed(f.type):
            out[i] = OwnColumn(FIXED_LEN_BYTE_ARRAY, PLAIN, nullable, f.type.byte_width)
    return out


def _is_bytes(t: pa.DataType) -> bool:
    tests = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    return any(test(t) for test in tests)


def _is_fixed(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_binary(t) and not pa.types.is_decimal(t)


def leaf_counts(elements: list[TStruct]) -> list[int]:
    """Parquet leaf columns under each top-level field of a footer's schema ``elements`` (an int: 1; a
    struct of two ints: 2): how many column chunks each field has in a row group."""
    counts, at = [], 1  # elements[0] is the root
    for _ in range(elements[0].get(5) or 0):
        size = _subtree_size(elements, at)
        counts.append(sum(1 for e in elements[at : at + size] if not e.get(5)))
        at += size
    return counts


def _subtree_size(elements: list[TStruct], at: int) -> int:
    """Schema elements in the subtree of element ``at`` (1 for a leaf)."""
    children = elements[at].get(5) or 0
    size, nxt = 1, at + 1
    for _ in range(children):
        n = _subtree_size(elements, nxt)
        size += n
        nxt += n
    return size


@dataclass(frozen=True)
class Selection:
    """The footer pyarrow writes for a schema and options (rows and row groups left to fill), and the
    columns Parquetry's encoder takes under them."""

    footer: TStruct
    columns: dict[int, OwnColumn]


def select(schema: pa.Schema, kwargs: dict[str, Any]) -> Selection:
    footer = empty_footer(schema, kwargs)
    return Selection(footer, own_columns(schema, kwargs, footer.get(2).items))
