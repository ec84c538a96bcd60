"""Which columns the GPU kernels decode, and which go to the CPU decoder (the explicit hybrid rule).

A column is decoded on the GPU only when its PostgreSQL codec is in :data:`KERNEL_CODECS` **and** the
Arrow type the CPU decoder's schema gives it is exactly the type the kernel produces. Everything else
(arrays, ranges, multiranges, composites, ``timetz``, ``inet``/``cidr``/``macaddr``, ``bit``/``varbit``,
``"char"``, numerics mapped to text or ``decimal256``, any future mapping) is decoded by the CPU decoder
on the host from a sub-stream holding only those columns, and the decode result lists them in
``cpu_columns``: it is reported, never silent. Imports no numba, so engine choice stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

# Kernel families.
K_BOOL = "bool"
K_SWAP = "swap"  # big-endian fixed width -> little-endian (ints, floats, oid, time)
K_DATE = "date"
K_TIMESTAMP = "timestamp"
K_INTERVAL = "interval"
K_UUID = "uuid"
K_NUMERIC = "numeric"
K_MONEY = "money"
K_VARLEN = "varlen"  # text-like and bytea: Arrow offsets + bytes
K_CPU = "cpu"

_TEXT_CODECS = frozenset({"text", "varchar", "bpchar", "name", "json", "xml", "enum"})


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is decoded: ``kernel`` family, value ``width`` in bytes, jsonb ``skip`` byte."""

    index: int
    name: str
    codec: str
    arrow_type: pa.DataType
    kernel: str
    width: int = 0
    skip: int = 0
    reason: str = ""  # why a column goes to the CPU decoder

    @property
    def on_gpu(self) -> bool:
        return self.kernel != K_CPU


def _expected(codec: str, arrow_type: pa.DataType) -> tuple[str, int, int] | None:
    """(kernel, width, skip) when a kernel produces exactly ``arrow_type`` for ``codec``; else None."""
    t = arrow_type
    fixed: dict[str, tuple[pa.DataType, int]] = {
        "int2": (pa.int16(), 2),
        "int4": (pa.int32(), 4),
        "int8": (pa.int64(), 8),
        "oid": (pa.uint32(), 4),
        "float4": (pa.float32(), 4),
        "float8": (pa.float64(), 8),
        "time": (pa.time64("us"), 8),
    }
    if codec in fixed:
        want, width = fixed[codec]
        return (K_SWAP, width, 0) if t == want else None
    if codec == "bool":
        return (K_BOOL, 1, 0) if t == pa.bool_() else None
    if codec == "date":
        return (K_DATE, 4, 0) if t == pa.date32() else None
    if codec in ("timestamp", "timestamptz"):
        ok = pa.types.is_timestamp(t) and t.unit == "us" and (t.tz is None) == (codec == "timestamp")
        return (K_TIMESTAMP, 8, 0) if ok else None
    if codec == "interval":
        return (K_INTERVAL, 16, 0) if t == pa.month_day_nano_interval() else None
    if codec == "uuid":
        return (K_UUID, 16, 0) if t == pa.binary(16) else None
    if codec == "numeric":
        return (K_NUMERIC, 16, 0) if pa.types.is_decimal128(t) else None
    if codec == "money":
        return (K_MONEY, 8, 0) if pa.types.is_decimal128(t) and t.precision == 19 else None
    if codec in _TEXT_CODECS:
        return (K_VARLEN, 0, 0) if t in (pa.string(), pa.large_string()) else None
    if codec == "jsonb":
        return (K_VARLEN, 0, 1) if t in (pa.string(), pa.large_string()) else None
    if codec == "bytea":
        return (K_VARLEN, 0, 0) if t in (pa.binary(), pa.large_binary()) else None
    return None


def plan_columns(columns: Sequence, schema: pa.Schema) -> list[ColumnPlan]:
    """One :class:`ColumnPlan` per column, in order; ``schema`` is the CPU decoder's Arrow schema."""
    plans = []
    for i, (col, field) in enumerate(zip(columns, schema, strict=True)):
        t = col.type
        codec = t.codec if t.kind in ("scalar", "enum") else t.kind
        got = _expected(codec, field.type)
        if got is None:
            plans.append(
                ColumnPlan(
                    i, col.name, codec, field.type, K_CPU, reason=f"no GPU kernel for {codec} -> {field.type}"
                )
            )
        else:
            kernel, width, skip = got
            plans.append(ColumnPlan(i, col.name, codec, field.type, kernel, width, skip))
    return plans
