"""Arrow tables to PostgreSQL's binary COPY stream (``COPY ... FROM STDIN (FORMAT binary)``).

Loading test and demo data row by row through SQL is far too slow for the volumes Parquetry is built
for, and the text COPY format needs per-value formatting in Python. The binary format is a flat
sequence of ``int16 field count`` then ``int32 length`` + big-endian payload per field, so a block
of rows can be laid out with a handful of vectorised passes:

1. every column is turned into a numpy view of its payload (big-endian fixed-width bytes, or
   offsets + data for strings) without a Python loop over rows;
2. the byte size of every field is known up front, so one cumulative sum gives where each row and
   each field starts;
3. small numba kernels copy the payloads into one preallocated buffer.

Wire formats follow PostgreSQL's ``*_recv`` functions: dates are days since 2000-01-01, timestamps
microseconds since 2000-01-01 00:00 (UTC for ``timestamptz``), numerics are base-10000 digit arrays
with weight, sign and display scale, intervals are (microseconds, days, months). Values PostgreSQL
would refuse (out-of-range dates, integers that do not fit the column) are refused here with the
column name and row number, before anything reaches the server.

numba is imported on first use only, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parquetry.storable import MONTH_DAY_NANO

__all__ = [
    "COPY_HEADER",
    "COPY_TRAILER",
    "SUPPORTED_TYPES",
    "CopyEncodeError",
    "encode_copy_binary",
    "iter_copy_binary",
    "wire_kind",
]

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: Signature, flags (int32 0: no OIDs), header extension length (int32 0).
COPY_HEADER = COPY_SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
#: A field count of -1 ends the stream.
COPY_TRAILER = b"\xff\xff"

DEFAULT_ROWS_PER_BLOCK = 131_072

_PG_EPOCH_DAYS = 10_957  # 2000-01-01 minus 1970-01-01, in days
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
# PostgreSQL's accepted ranges (julian day 0 = 4714-11-24 BC), relative to 2000-01-01.
_DATE_MIN = -2_451_545
_DATE_END = 2_147_483_494 - 2_451_545
_TS_MIN = -211_813_488_000_000_000

# PostgreSQL type name (lower case, no type modifier) -> wire kind understood by the encoder.
_KIND_BY_NAME: dict[str, str] = {
    "bool": "bool",
    "boolean": "bool",
    "int2": "int2",
    "smallint": "int2",
    "int4": "int4",
    "int": "int4",
    "integer": "int4",
    "int8": "int8",
    "bigint": "int8",
    "float4": "float4",
    "real": "float4",
    "float8": "float8",
    "double precision": "float8",
    "text": "text",
    "varchar": "text",
    "character varying": "text",
    "char": "text",
    "character": "text",
    "bpchar": "text",
    "name": "text",
    "enum": "text",  # enum_recv reads the label as text
    "json": "text",
    "jsonb": "jsonb",
    "bytea": "bytea",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamptz": "timestamp",
    "timestamp with time zone": "timestamp",
    "uuid": "uuid",
    "interval": "interval",
    "numeric": "numeric",
    "decimal": "numeric",
}
SUPPORTED_TYPES: tuple[str, ...] = tuple(sorted(_KIND_BY_NAME))


class CopyEncodeError(ValueError):
    """A column cannot be written in the binary COPY format; the message names the column."""


def wire_kind(pg_type: str) -> str:
    """The encoder's wire kind for a PostgreSQL type name such as ``numeric(12,2)`` or ``varchar(20)``.

    ``enum`` and ``enum:<type name>`` stand for any enum type (its binary form is the label text).
    """
    name = pg_type.strip().lower()
    if name.startswith("enum:"):
        return "text"
    if name.endswith("[]"):
        raise CopyEncodeError(f"array type {pg_type!r} is not supported by the binary COPY encoder")
    name = re.sub(r"\(\s*[\d\s,]*\)", "", name)  # typmods: numeric(12,2), timestamp(3) with time zone
    name = " ".join(name.split())
    kind = _KIND_BY_NAME.get(name)
    if kind is None:
        raise CopyEncodeError(
            f"PostgreSQL type {pg_type!r} is not supported by the binary COPY encoder; "
            f"supported: {', '.join(SUPPORTED_TYPES)}"
        )
    return kind


# -- numba kernels (compiled on first call, cached on disk) -----------------------------------------


def _lazy_njit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit(cache=True, nogil=True)(fn)``, done on the first call (numba is slow to import)."""
    compiled: list[Callable[..., Any]] = []
    lock = threading.Lock()

    def call(*args: Any) -> Any:
        if not compiled:
            with lock:
                if not compiled:
                    import numba

                    compiled.append(numba.njit(cache=True, nogil=True)(fn))
        return compiled[0](*args)

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def _k_row_headers(out: np.ndarray, row_start: np.ndarray, ncols: int) -> None:
    hi = (ncols >> 8) & 0xFF
    lo = ncols & 0xFF
    for i in range(row_start.shape[0]):
        p = row_start[i]
        out[p] = hi
        out[p + 1] = lo


def _k_fixed(out: np.ndarray, pos: np.ndarray, valid: np.ndarray, data: np.ndarray) -> None:
    """Length word then ``w`` payload bytes (already big-endian) per row; -1 for NULL."""
    n = data.shape[0]
    w = data.shape[1]
    for i in range(n):
        p = pos[i]
        if valid[i]:
            out[p] = 0
            out[p + 1] = 0
            out[p + 2] = (w >> 8) & 0xFF
            out[p + 3] = w & 0xFF
            for j in range(w):
                out[p + 4 + j] = data[i, j]
        else:
            out[p] = 0xFF
            out[p + 1] = 0xFF
            out[p + 2] = 0xFF
            out[p + 3] = 0xFF


def _k_var(
    out: np.ndarray, pos: np.ndarray, valid: np.ndarray, offsets: np.ndarray, data: np.ndarray, prefix: int
) -> None:
    """Length word then the bytes ``data[offsets[i]:offsets[i+1]]``, optionally after one prefix byte."""
    n = pos.shape[0]
    extra = 1 if prefix >= 0 else 0
    for i in range(n):
        p = pos[i]
        if valid[i]:
            start = offsets[i]
            length = offsets[i + 1] - start
            total = length + extra
            out[p] = (total >> 24) & 0xFF
            out[p + 1] = (total >> 16) & 0xFF
            out[p + 2] = (total >> 8) & 0xFF
            out[p + 3] = total & 0xFF
            q = p + 4
            if extra:
                out[q] = prefix
                q += 1
            for j in range(length):
                out[q + j] = data[start + j]
        else:
            out[p] = 0xFF
            out[p + 1] = 0xFF
            out[p + 2] = 0xFF
            out[p + 3] = 0xFF


def _k_numeric_digits(
    limbs: np.ndarray, valid: np.ndarray, scale: int, max_groups: int, max_dec: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Base-10000 digits of two's-complement little-endian 32-bit-limb integers scaled by 10**-scale.

    Returns (digits (n, max_groups) most significant first, digit count, weight, negative flag),
    trailing zero digits stripped as PostgreSQL stores them. Values that fit 53 bits (nearly all
    money-like data) take a short path on one int64; the rest go through decimal long division.
    """
    n = limbs.shape[0]
    nl = limbs.shape[1]
    digits = np.zeros((n, max_groups), np.int16)
    ngroups = np.zeros(n, np.int64)
    weights = np.zeros(n, np.int64)
    negative = np.zeros(n, np.bool_)
    work = np.empty(nl, np.int64)
    dec = np.zeros(max_dec + 4, np.int64)
    grp = np.zeros(max_groups + 1, np.int64)  # least significant group first
    if scale >= 0:
        shift = (4 - scale % 4) % 4
        frac_groups = (scale + shift) // 4
    else:
        shift = -scale
        frac_groups = 0
    pow_shift = 1
    for _ in range(min(shift, 4)):
        pow_shift *= 10
    for i in range(n):
        if not valid[i]:
            continue
        neg = (limbs[i, nl - 1] >> 31) & 1
        fill = 0xFFFFFFFF if neg else 0
        small = shift <= 3 and ((limbs[i, 1] >> 31) & 1) == neg
        for k in range(2, nl):
            if limbs[i, k] != fill:
                small = False
        g_total = 0
        if small:
            v = (limbs[i, 1] << 32) | limbs[i, 0]  # wraps to the signed 64-bit value
            if neg:
                v = -v  # -2**63 stays negative and takes the long path
            if v == 0:
                continue
            if 0 < v < (1 << 53):
                v *= pow_shift
                while v > 0:
                    grp[g_total] = v % 10000
                    v //= 10000
                    g_total += 1
            else:
                small = False
        if not small:
            if neg:
                carry = 1
                for k in range(nl):
                    w = (0xFFFFFFFF - limbs[i, k]) + carry
                    work[k] = w & 0xFFFFFFFF
                    carry = w >> 32
            else:
                for k in range(nl):
                    work[k] = limbs[i, k]
            nonzero = False
            for k in range(nl):
                if work[k] != 0:
                    nonzero = True
            if not nonzero:
                continue
            m = 0
            for _ in range(shift):
                dec[m] = 0
                m += 1
            while nonzero:
                rem = 0
                for k in range(nl - 1, -1, -1):
                    cur = (rem << 32) | work[k]
                    work[k] = cur // 1000000000
                    rem = cur % 1000000000
                for _ in range(9):
                    dec[m] = rem % 10
                    rem //= 10
                    m += 1
                nonzero = False
                for k in range(nl):
                    if work[k] != 0:
                        nonzero = True
            while m > 0 and dec[m - 1] == 0:
                m -= 1
            for k in range(m, m + 4):
                dec[k] = 0
            g_total = (m + 3) // 4
            for g in range(g_total):
                grp[g] = dec[4 * g] + 10 * dec[4 * g + 1] + 100 * dec[4 * g + 2] + 1000 * dec[4 * g + 3]
        lowest = 0
        while grp[lowest] == 0:
            lowest += 1
        for g in range(g_total - 1, lowest - 1, -1):
            digits[i, g_total - 1 - g] = grp[g]
        ngroups[i] = g_total - lowest
        weights[i] = g_total - 1 - frac_groups
        negative[i] = neg == 1
    return digits, ngroups, weights, negative


def _k_numeric_write(
    out: np.ndarray,
    pos: np.ndarray,
    valid: np.ndarray,
    digits: np.ndarray,
    ngroups: np.ndarray,
    weights: np.ndarray,
    negative: np.ndarray,
    dscale: int,
) -> None:
    n = pos.shape[0]
    for i in range(n):
        p = pos[i]
        if not valid[i]:
            out[p] = 0xFF
            out[p + 1] = 0xFF
            out[p + 2] = 0xFF
            out[p + 3] = 0xFF
            continue
        nd = ngroups[i]
        total = 8 + 2 * nd
        out[p] = (total >> 24) & 0xFF
        out[p + 1] = (total >> 16) & 0xFF
        out[p + 2] = (total >> 8) & 0xFF
        out[p + 3] = total & 0xFF
        w = weights[i] & 0xFFFF
        sign = 0x4000 if negative[i] else 0
        out[p + 4] = (nd >> 8) & 0xFF
        out[p + 5] = nd & 0xFF
        out[p + 6] = (w >> 8) & 0xFF
        out[p + 7] = w & 0xFF
        out[p + 8] = (sign >> 8) & 0xFF
        out[p + 9] = 0
        out[p + 10] = (dscale >> 8) & 0xFF
        out[p + 11] = dscale & 0xFF
        q = p + 12
        for j in range(nd):
            d = digits[i, j]
            out[q] = (d >> 8) & 0xFF
            out[q + 1] = d & 0xFF
            q += 2


_row_headers = _lazy_njit(_k_row_headers)
_put_fixed = _lazy_njit(_k_fixed)
_put_var = _lazy_njit(_k_var)
_numeric_digits = _lazy_njit(_k_numeric_digits)
_put_numeric = _lazy_njit(_k_numeric_write)


# -- columns -> payload plans -------------------------------------------------------------------------


@dataclass
class _Plan:
    """One column of one block, ready to be written: its field sizes and a writer."""

    sizes: np.ndarray  # bytes per field, length word included
    write: Callable[[np.ndarray, np.ndarray], None]  # (out, field positions)


def _validity(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=np.bool_)
    return np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _primitive_values(arr: pa.Array, dtype: np.dtype[Any]) -> np.ndarray:
    """Zero-copy numpy view of a fixed-width array's values (NULL slots hold arbitrary values)."""
    itemsize = np.dtype(dtype).itemsize
    buf = arr.buffers()[1]
    if buf is None or len(arr) == 0:
        return np.zeros(len(arr), dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=len(arr), offset=arr.offset * itemsize)


def _fixed_plan(values_be: np.ndarray, valid: np.ndarray) -> _Plan:
    n = valid.shape[0]
    width = values_be.dtype.itemsize if values_be.ndim == 1 else values_be.shape[1]
    data = np.ascontiguousarray(values_be).view(np.uint8).reshape(n, width)
    sizes = np.where(valid, 4 + width, 4).astype(np.int64)
    return _Plan(sizes, lambda out, pos: _put_fixed(out, pos, valid, data))


def _fail(column: str, message: str) -> CopyEncodeError:
    return CopyEncodeError(f"column {column!r}: {message}")


def _first_bad_row(mask: np.ndarray, row0: int) -> int:
    return row0 + int(np.flatnonzero(mask)[0])


def _unwrap(arr: pa.Array) -> pa.Array:
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


_INT_TYPES = {"int2": (pa.int16(), ">i2"), "int4": (pa.int32(), ">i4"), "int8": (pa.int64(), ">i8")}


def _plan_int(arr: pa.Array, kind: str, column: str) -> _Plan:
    target, be = _INT_TYPES[kind]
    if not pa.types.is_integer(arr.type):
        raise _fail(column, f"{kind} needs an Arrow integer column, got {arr.type}")
    try:
        arr = pc.cast(arr, target, safe=True)
    except pa.ArrowInvalid as exc:
        raise _fail(column, f"value does not fit {kind}: {exc}") from exc
    return _fixed_plan(_primitive_values(arr, target.to_pandas_dtype()).astype(be), _validity(arr))


def _plan_float(arr: pa.Array, kind: str, column: str) -> _Plan:
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        raise _fail(column, f"{kind} needs an Arrow float or integer column, got {arr.type}")
    target, np_type, be = (
        (pa.float32(), np.float32, ">f4") if kind == "float4" else (pa.float64(), np.float64, ">f8")
    )
    if arr.type != target:
        arr = pc.cast(arr, target, safe=False)
    return _fixed_plan(_primitive_values(arr, np_type).astype(be), _validity(arr))


def _plan_bool(arr: pa.Array, column: str) -> _Plan:
    if not pa.types.is_boolean(arr.type):
        raise _fail(column, f"bool needs an Arrow boolean column, got {arr.type}")
    valid = _validity(arr)
    values = np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=np.uint8)
    return _fixed_plan(values.reshape(-1, 1), valid)


def _plan_date(arr: pa.Array, column: str, row0: int) -> _Plan:
    if pa.types.is_date64(arr.type):
        arr = pc.cast(arr, pa.date32())
    if not pa.types.is_date32(arr.type):
        raise _fail(column, f"date needs an Arrow date32/date64 column, got {arr.type}")
    valid = _validity(arr)
    days = _primitive_values(arr, np.int32).astype(np.int64) - _PG_EPOCH_DAYS
    bad = valid & ((days < _DATE_MIN) | (days >= _DATE_END))
    if bad.any():
        raise _fail(column, f"date out of PostgreSQL's range at row {_first_bad_row(bad, row0)}")
    return _fixed_plan(days.astype(">i4"), valid)


_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


def _plan_timestamp(arr: pa.Array, column: str, row0: int) -> _Plan:
    if pa.types.is_date32(arr.type) or pa.types.is_date64(arr.type):
        arr = pc.cast(arr, pa.timestamp("us"))
    if not pa.types.is_timestamp(arr.type):
        raise _fail(column, f"timestamp needs an Arrow timestamp column, got {arr.type}")
    valid = _validity(arr)
    raw = _primitive_values(arr, np.int64)
    unit = arr.type.unit
    if unit == "ns":
        lost = valid & (raw % 1000 != 0)
        if lost.any():
            raise _fail(
                column,
                f"nanoseconds at row {_first_bad_row(lost, row0)} do not fit PostgreSQL's microsecond "
                "timestamps; round the column first",
            )
        us = raw // 1000
    else:
        factor = _US_PER_UNIT[unit]
        limit = np.iinfo(np.int64).max // factor
        over = valid & (np.abs(raw) > limit)
        if over.any():
            raise _fail(column, f"timestamp out of PostgreSQL's range at row {_first_bad_row(over, row0)}")
        us = raw * factor if factor != 1 else raw
    safe = np.where(valid, us, _PG_EPOCH_US)
    # The upper end (year 294276) lies beyond any int64 microsecond count since 1970.
    bad = safe < _TS_MIN + _PG_EPOCH_US
    if bad.any():
        raise _fail(column, f"timestamp out of PostgreSQL's range at row {_first_bad_row(bad, row0)}")
    return _fixed_plan((safe - _PG_EPOCH_US).astype(">i8"), valid)


_INT32_MAX, _INT32_MIN = 2**31 - 1, -(2**31)
_INT64_MAX, _INT64_MIN = 2**63 - 1, -(2**63)


def _plan_interval(arr: pa.Array, column: str, row0: int) -> _Plan:
    """Arrow ``month_day_nano_interval`` -> ``interval_recv``'s (int64 us, int32 days, int32 months).

    The decoder's infinities (every part at its maximum or minimum) go back to PostgreSQL's; any other
    value must be whole microseconds.
    """
    if arr.type != pa.month_day_nano_interval():
        raise _fail(column, f"interval needs an Arrow month_day_nano_interval column, got {arr.type}")
    valid = _validity(arr)
    n = len(arr)
    buf = arr.buffers()[1]
    if buf is None or n == 0:
        parts = np.zeros(n, dtype=MONTH_DAY_NANO)
    else:
        parts = np.frombuffer(buf, dtype=MONTH_DAY_NANO, count=n, offset=16 * arr.offset)
    months, days, nanos = parts["months"], parts["days"], parts["nanoseconds"]
    pos_inf = (months == _INT32_MAX) & (days == _INT32_MAX) & (nanos == _INT64_MAX)
    neg_inf = (months == _INT32_MIN) & (days == _INT32_MIN) & (nanos == _INT64_MIN)
    lost = valid & ~pos_inf & ~neg_inf & (nanos % 1000 != 0)
    if lost.any():
        raise _fail(
            column,
            f"nanoseconds at row {_first_bad_row(lost, row0)} do not fit PostgreSQL's microsecond "
            "intervals; round the column first",
        )
    out = np.zeros(n, dtype=[("us", ">i8"), ("days", ">i4"), ("months", ">i4")])
    out["us"] = np.where(pos_inf, _INT64_MAX, np.where(neg_inf, _INT64_MIN, nanos // 1000))
    out["days"] = days
    out["months"] = months
    return _fixed_plan(out.view(np.uint8).reshape(n, 16), valid)


def _plan_uuid(arr: pa.Array, column: str) -> _Plan:
    if not (pa.types.is_fixed_size_binary(arr.type) and arr.type.byte_width == 16):
        raise _fail(column, f"uuid needs an Arrow uuid or fixed_size_binary(16) column, got {arr.type}")
    valid = _validity(arr)
    buf = arr.buffers()[1]
    n = len(arr)
    if buf is None or n == 0:
        data = np.zeros((n, 16), dtype=np.uint8)
    else:
        data = np.frombuffer(buf, dtype=np.uint8, count=16 * n, offset=16 * arr.offset).reshape(n, 16)
    return _fixed_plan(data, valid)


def _plan_var(arr: pa.Array, kind: str, column: str) -> _Plan:
    t = arr.type
    if kind in ("text", "jsonb"):
        if pa.types.is_string_view(t):
            arr = pc.cast(arr, pa.large_string())
        elif not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise _fail(column, f"{kind} needs an Arrow string column, got {t}")
    else:
        if pa.types.is_fixed_size_binary(t):
            valid = _validity(arr)
            width = t.byte_width
            buf = arr.buffers()[1]
            data = (
                np.frombuffer(buf, np.uint8, count=width * len(arr), offset=width * arr.offset)
                if buf is not None and len(arr)
                else np.zeros(width * len(arr), np.uint8)
            )
            return _fixed_plan(data.reshape(len(arr), width), valid)
        if pa.types.is_binary_view(t) or pa.types.is_string_view(t):
            arr = pc.cast(arr, pa.large_binary())
        elif not (
            pa.types.is_binary(t)
            or pa.types.is_large_binary(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
        ):
            raise _fail(column, f"bytea needs an Arrow binary column, got {t}")
    t = arr.type
    off_type = np.int64 if (pa.types.is_large_string(t) or pa.types.is_large_binary(t)) else np.int32
    n = len(arr)
    valid = _validity(arr)
    buffers = arr.buffers()
    if n == 0 or buffers[1] is None:
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.frombuffer(
            buffers[1], dtype=off_type, count=n + 1, offset=arr.offset * np.dtype(off_type).itemsize
        ).astype(np.int64, copy=False)  # one compiled kernel for both offset widths
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    prefix = 1 if kind == "jsonb" else -1  # jsonb_recv expects its format version byte first
    lengths = np.diff(offsets).astype(np.int64)
    sizes = np.where(valid, 4 + lengths + (1 if prefix >= 0 else 0), 4)
    return _Plan(sizes, lambda out, pos: _put_var(out, pos, valid, offsets, data, prefix))


def _plan_numeric(arr: pa.Array, column: str) -> _Plan:
    t = arr.type
    if pa.types.is_integer(t):
        arr = pc.cast(arr, pa.decimal128(20, 0))
        t = arr.type
    if not (pa.types.is_decimal128(t) or pa.types.is_decimal256(t)):
        raise _fail(column, f"numeric needs an Arrow decimal128/decimal256 or integer column, got {t}")
    if sys.byteorder != "little":  # pragma: no cover - Arrow decimals are little-endian in memory
        raise _fail(column, "numeric encoding needs a little-endian machine")
    width = 16 if pa.types.is_decimal128(t) else 32
    nl = width // 4
    n = len(arr)
    valid = _validity(arr)
    buf = arr.buffers()[1]
    if buf is None or n == 0:
        limbs = np.zeros((n, nl), dtype=np.int64)
    else:
        raw = np.frombuffer(buf, dtype="<u4", count=nl * n, offset=width * arr.offset)
        limbs = raw.reshape(n, nl).astype(np.int64)
    scale = int(t.scale)
    chunks = math.ceil(nl * 32 * math.log10(2) / 9) + 1
    shift = -scale if scale < 0 else 3
    max_dec = 9 * chunks + shift
    max_groups = max_dec // 4 + 2
    if max_groups > 32_000:
        raise _fail(column, f"decimal scale {scale} is outside what PostgreSQL numeric can hold")
    digits, ngroups, weights, negative = _numeric_digits(limbs, valid, scale, max_groups, max_dec)
    dscale = max(scale, 0)
    sizes = np.where(valid, 12 + 2 * ngroups, 4).astype(np.int64)
    return _Plan(
        sizes, lambda out, pos: _put_numeric(out, pos, valid, digits, ngroups, weights, negative, dscale)
    )


def _plan(arr: pa.Array, kind: str, column: str, row0: int) -> _Plan:
    arr = _unwrap(arr)
    if pa.types.is_null(arr.type):
        n = len(arr)
        valid = np.zeros(n, dtype=np.bool_)
        return _fixed_plan(np.zeros((n, 0), dtype=np.uint8), valid)
    if kind in _INT_TYPES:
        return _plan_int(arr, kind, column)
    if kind in ("float4", "float8"):
        return _plan_float(arr, kind, column)
    if kind == "bool":
        return _plan_bool(arr, column)
    if kind == "date":
        return _plan_date(arr, column, row0)
    if kind == "timestamp":
        return _plan_timestamp(arr, column, row0)
    if kind == "uuid":
        return _plan_uuid(arr, column)
    if kind == "interval":
        return _plan_interval(arr, column, row0)
    if kind == "numeric":
        return _plan_numeric(arr, column)
    return _plan_var(arr, kind, column)


# -- blocks ----------------------------------------------------------------------------------------------


def _column_array(table: pa.Table, index: int) -> pa.Array:
    col = table.column(index)
    if col.num_chunks == 1:
        return col.chunk(0)
    if col.num_chunks == 0:
        return pa.array([], type=col.type)
    return col.combine_chunks()


def _encode_block(
    block: pa.Table, kinds: Sequence[str], row0: int, header: bool, trailer: bool
) -> np.ndarray:
    n = block.num_rows
    ncols = block.num_columns
    plans = [_plan(_column_array(block, k), kinds[k], block.column_names[k], row0) for k in range(ncols)]
    row_sizes = np.full(n, 2, dtype=np.int64)
    for plan in plans:
        row_sizes += plan.sizes
    lead = len(COPY_HEADER) if header else 0
    total = lead + int(row_sizes.sum()) + (len(COPY_TRAILER) if trailer else 0)
    out = np.empty(total, dtype=np.uint8)
    if header:
        out[:lead] = np.frombuffer(COPY_HEADER, dtype=np.uint8)
    if trailer:
        out[total - 2 :] = 0xFF
    if n:
        row_start = np.empty(n, dtype=np.int64)
        row_start[0] = lead
        np.cumsum(row_sizes[:-1], out=row_start[1:])
        row_start[1:] += lead
        _row_headers(out, row_start, ncols)
        pos = row_start + 2
        for plan in plans:
            plan.write(out, pos)
            pos = pos + plan.sizes
    return out


def _check(table: pa.Table, pg_types: Sequence[str]) -> list[str]:
    if isinstance(pg_types, str):
        raise TypeError("pg_types must be a sequence of type names, one per column, not a single string")
    if len(pg_types) != table.num_columns:
        raise CopyEncodeError(
            f"{table.num_columns} columns ({', '.join(table.column_names)}) but {len(pg_types)} PostgreSQL "
            "types were given"
        )
    if table.num_columns > 1664:
        raise CopyEncodeError(f"{table.num_columns} columns: PostgreSQL tables hold at most 1664")
    kinds = []
    for name, pg_type in zip(table.column_names, pg_types, strict=True):
        try:
            kinds.append(wire_kind(pg_type))
        except CopyEncodeError as exc:
            raise CopyEncodeError(f"column {name!r}: {exc}") from None
    return kinds


def iter_copy_binary(
    table: pa.Table | pa.RecordBatch,
    pg_types: Sequence[str],
    rows_per_block: int = DEFAULT_ROWS_PER_BLOCK,
) -> Iterator[bytes]:
    """Yield the binary COPY stream of ``table`` in blocks of at most ``rows_per_block`` rows.

    The first block starts with the header, the last one ends with the trailer; an empty table
    yields one block holding both. Memory use is bounded by one encoded block.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if rows_per_block < 1:
        raise ValueError("rows_per_block must be at least 1")
    kinds = _check(table, pg_types)
    n = table.num_rows
    if n == 0:
        yield COPY_HEADER + COPY_TRAILER
        return
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        block = table.slice(start, stop - start)
        yield _encode_block(block, kinds, start, header=start == 0, trailer=stop == n).tobytes()


def encode_copy_binary(table: pa.Table | pa.RecordBatch, pg_types: Sequence[str]) -> bytes:
    """The whole binary COPY stream of ``table`` (header, rows, trailer) as one ``bytes``."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    kinds = _check(table, pg_types)
    if table.num_rows == 0:
        return COPY_HEADER + COPY_TRAILER
    return _encode_block(table, kinds, 0, header=True, trailer=True).tobytes()
