"""A generic Thrift compact-protocol codec, just enough to edit Parquet footers without losing a field.

Decoding keeps every field (id, wire type, value) in wire order, including fields this module knows
nothing about, and encoding writes them back the same way, so ``encode(decode(b)) == b`` for footers
written by standard Parquet writers. The row-group copier edits only file offsets and drops page-index
and bloom-filter pointers; everything else passes through untouched.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

BOOL_TRUE, BOOL_FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(1, 13)
_INTS = (I16, I32, I64)


class ThriftError(ValueError):
    """The bytes are not a valid compact-protocol struct."""


@dataclass
class TStruct:
    fields: list[tuple[int, int, Any]] = field(default_factory=list)  # (id, type, value)

    def get(self, fid: int, default: Any = None) -> Any:
        for i, _, value in self.fields:
            if i == fid:
                return value
        return default

    def has(self, fid: int) -> bool:
        return any(i == fid for i, _, _ in self.fields)

    def set(self, fid: int, ftype: int, value: Any) -> None:
        """Replace field ``fid`` (keeping its place) or insert it in field-id order."""
        for n, (i, _, _) in enumerate(self.fields):
            if i == fid:
                self.fields[n] = (fid, ftype, value)
                return
        self.fields.append((fid, ftype, value))
        self.fields.sort(key=lambda f: f[0])

    def drop(self, *fids: int) -> None:
        self.fields = [f for f in self.fields if f[0] not in fids]


@dataclass
class TList:
    elem_type: int
    items: list[Any]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError(f"truncated at byte {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ThriftError(f"varint too long at byte {self.pos}")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ThriftError(f"truncated: {n} bytes wanted at byte {self.pos}")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def value(self, ftype: int) -> Any:
        if ftype in (BOOL_TRUE, BOOL_FALSE):  # inside a collection: one byte
            return self.byte() == BOOL_TRUE
        if ftype == BYTE:
            return self.byte()
        if ftype in _INTS:
            return self.zigzag()
        if ftype == DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if ftype == BINARY:
            return self.take(self.varint())
        if ftype in (LIST, SET):
            header = self.byte()
            size, elem = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return TList(elem, [self.value(elem) for _ in range(size)])
        if ftype == STRUCT:
            return self.struct()
        raise ThriftError(f"unsupported wire type {ftype} at byte {self.pos}")

    def struct(self) -> TStruct:
        out = TStruct()
        last = 0
        while True:
            header = self.byte()
            if header == 0:
                return out
            ftype, delta = header & 0x0F, header >> 4
            fid = last + delta if delta else self.zigzag()
            if ftype in (BOOL_TRUE, BOOL_FALSE):
                out.fields.append((fid, ftype, ftype == BOOL_TRUE))
            else:
                out.fields.append((fid, ftype, self.value(ftype)))
            last = fid


def decode(data: bytes) -> TStruct:
    reader = _Reader(data)
    result = reader.struct()
    if reader.pos != len(data):
        raise ThriftError(f"{len(data) - reader.pos} bytes left after the struct")
    return result


def varint(n: int, out: bytearray) -> None:
    """Append ``n`` to ``out`` as an unsigned varint (ULEB128)."""
    while True:
        if n < 0x80:
            out.append(n)
            return
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _zigzag(n: int, out: bytearray) -> None:
    varint((n << 1) ^ (n >> 63), out)


def _value(ftype: int, value: Any, out: bytearray) -> None:
    if ftype in (BOOL_TRUE, BOOL_FALSE):
        out.append(BOOL_TRUE if value else BOOL_FALSE)
    elif ftype == BYTE:
        out.append(value & 0xFF)
    elif ftype in _INTS:
        _zigzag(value, out)
    elif ftype == DOUBLE:
        out += struct.pack("<d", value)
    elif ftype == BINARY:
        varint(len(value), out)
        out += value
    elif ftype in (LIST, SET):
        size = len(value.items)
        if size < 15:
            out.append((size << 4) | value.elem_type)
        else:
            out.append(0xF0 | value.elem_type)
            varint(size, out)
        for item in value.items:
            _value(value.elem_type, item, out)
    elif ftype == STRUCT:
        _struct(value, out)
    else:
        raise ThriftError(f"unsupported wire type {ftype}")


def _struct(s: TStruct, out: bytearray) -> None:
    last = 0
    for fid, ftype, value in s.fields:
        wire = (BOOL_TRUE if value else BOOL_FALSE) if ftype in (BOOL_TRUE, BOOL_FALSE) else ftype
        delta = fid - last
        if 0 < delta <= 15:
            out.append((delta << 4) | wire)
        else:
            out.append(wire)
            _zigzag(fid, out)
        if wire not in (BOOL_TRUE, BOOL_FALSE):
            _value(ftype, value, out)
        last = fid
    out.append(0)


def encode(s: TStruct) -> bytes:
    out = bytearray()
    _struct(s, out)
    return bytes(out)
