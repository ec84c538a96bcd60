"""The numba loops of Parquetry's Parquet encoder: DELTA_BINARY_PACKED integers, PLAIN byte arrays, and
the min / max statistics of both, each in one pass over a page's values.

Formats as the Parquet specification defines them (``Encodings.md``): a DELTA_BINARY_PACKED page is a
header (block size, miniblocks per block, value count, first value as zigzag ULEB128) and blocks of
deltas, each with its minimum delta (zigzag ULEB128), one bit width per miniblock, and the miniblocks'
``delta - min_delta`` bit-packed least significant bit first, the last miniblock padded to full size.
Deltas wrap at the column's width (32 or 64 bits), as readers add them back. A PLAIN ``BYTE_ARRAY`` value
is its length as 4 little-endian bytes, then its bytes.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@intrinsic
def _memcpy(typingctx, dst, dst_at, src, src_at, count):  # type: ignore[no-untyped-def]
    """``dst[dst_at : dst_at + count] = src[src_at : src_at + count]`` for uint8 arrays, as one memcpy
    (a byte loop cost 8x more on short strings, and a slice assignment builds two arrays a value)."""
    sig = types.void(dst, types.intp, src, types.intp, types.intp)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        d = context.make_array(signature.args[0])(context, builder, args[0])
        s = context.make_array(signature.args[2])(context, builder, args[2])
        target, source = builder.gep(d.data, [args[1]]), builder.gep(s.data, [args[3]])
        cgutils.raw_memcpy(builder, target, source, args[4], 1)

    return sig, codegen


@intrinsic
def _memcmp(typingctx, data, a, b, count):  # type: ignore[no-untyped-def]
    """C's ``memcmp(data + a, data + b, count)`` over a uint8 array: libc compares many bytes a step,
    where a byte loop took 2-3x as long on strings with long common prefixes."""
    sig = types.int32(data, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [i8p, i8p, ir.IntType(64)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "memcmp")
        first = builder.bitcast(builder.gep(arr.data, [args[1]]), i8p)
        second = builder.bitcast(builder.gep(arr.data, [args[2]]), i8p)
        return builder.call(fn, [first, second, args[3]])

    return sig, codegen


BLOCK = 128
MINIBLOCKS = 4
MINI = BLOCK // MINIBLOCKS


@_jit
def _uleb(out: np.ndarray, pos: int, value: np.uint64) -> int:
    v = np.uint64(value)
    while v >= np.uint64(0x80):
        out[pos] = np.uint8((v & np.uint64(0x7F)) | np.uint64(0x80))
        v >>= np.uint64(7)
        pos += 1
    out[pos] = np.uint8(v)
    return pos + 1


@_jit
def _zigzag(v: np.int64) -> np.uint64:
    return np.uint64((v << np.int64(1)) ^ (v >> np.int64(63)))


@_jit
def _bit_length(v: np.uint64) -> int:
    n = 0
    while v:
        v >>= np.uint64(1)
        n += 1
    return n


def delta_bound(count: int) -> int:
    """Bytes a DELTA_BINARY_PACKED page of ``count`` values may need at most (64-bit deltas)."""
    blocks = (count + BLOCK - 1) // BLOCK
    return 32 + blocks * (10 + MINIBLOCKS + BLOCK * 8) + 16


def levels_bound(count: int) -> int:
    """Bytes the definition levels of ``count`` values may need (length prefix included)."""
    return 4 + 10 + (count + 7) // 8


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _valid(bits: np.ndarray, i: int) -> bool:
    """Whether value ``i`` is valid in the Arrow validity bitmap ``bits`` (empty: no nulls)."""
    if bits.shape[0] == 0:
        return True
    return (bits[i >> 3] >> (i & 7)) & 1 == 1


@_jit
def count_nulls(bits: np.ndarray, first: int, count: int) -> int:
    """Nulls among values ``first .. first + count`` of a validity bitmap (empty: none)."""
    if bits.shape[0] == 0:
        return 0
    nulls = 0
    for i in range(first, first + count):
        if not (bits[i >> 3] >> (i & 7)) & 1:
            nulls += 1
    return nulls


@_jit
def definition_levels(bits: np.ndarray, first: int, count: int, nulls: int, out: np.ndarray, at: int) -> int:
    """Write the definition levels (bit width 1) of values ``first .. first + count``: a 4-byte length,
    then the RLE / bit-packed hybrid: one run of ones when no value is null, else the validity bits
    themselves, bit-packed (Arrow's bitmap already is that layout, least significant bit first).
    Returns the end."""
    pos = at + 4
    if nulls == 0:
        pos = _uleb(out, pos, np.uint64(count << 1))
        out[pos] = 1
        pos += 1
    else:
        groups = (count + 7) // 8
        pos = _uleb(out, pos, np.uint64((groups << 1) | 1))
        shift = first & 7
        base = first >> 3
        last = bits.shape[0] - 1
        for g in range(groups):
            low = np.uint32(bits[base + g])
            high = np.uint32(bits[base + g + 1]) if shift and base + g + 1 <= last else np.uint32(0)
            byte = ((low | (high << np.uint32(8))) >> np.uint32(shift)) & np.uint32(0xFF)
            left = count - 8 * g
            if left < 8:  # bits past the last value are zero: the file does not depend on them
                byte &= np.uint32((1 << left) - 1)
            out[pos + g] = np.uint8(byte)
        pos += groups
    length = pos - at - 4
    for j in range(4):
        out[at + j] = (length >> (8 * j)) & 0xFF
    return pos


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _block(deltas: np.ndarray, m: int, out: np.ndarray, pos: int) -> int:
    """Write one block of ``m`` deltas (its min delta, miniblock bit widths, bit-packed miniblocks)."""
    min_delta = deltas[0]
    for k in range(1, m):
        if deltas[k] < min_delta:
            min_delta = deltas[k]
    pos = _uleb(out, pos, _zigzag(min_delta))
    widths_at = pos
    pos += MINIBLOCKS
    used = (m + MINI - 1) // MINI
    for b in range(MINIBLOCKS):
        if b >= used:
            out[widths_at + b] = 0
            continue
        start = b * MINI
        stop = min(start + MINI, m)
        bits = np.uint64(0)
        for k in range(start, stop):
            bits |= np.uint64(deltas[k]) - np.uint64(min_delta)
        w = _bit_length(bits)
        out[widths_at + b] = w
        if w == 0:
            continue
        # Bits gather in a 64-bit word written out whole: a miniblock is 4 * w bytes.
        acc = np.uint64(0)
        nbits = 0
        uw = np.uint64(w)
        for k in range(start, start + MINI):
            u = np.uint64(deltas[k]) - np.uint64(min_delta) if k < stop else np.uint64(0)
            acc |= u << np.uint64(nbits)
            nbits += w
            if nbits >= 64:
                for j in range(8):
                    out[pos + j] = np.uint8((acc >> np.uint64(8 * j)) & np.uint64(0xFF))
                pos += 8
                nbits -= 64
                acc = u >> (uw - np.uint64(nbits)) if nbits > 0 else np.uint64(0)
        for j in range(nbits // 8):
            out[pos + j] = np.uint8((acc >> np.uint64(8 * j)) & np.uint64(0xFF))
        pos += nbits // 8
    return pos


@_jit
def delta_encode(
    values: np.ndarray,
    bits: np.ndarray,
    first: int,
    count: int,
    valid: int,
    width32: bool,
    out: np.ndarray,
    at: int,
) -> tuple[int, np.int64, np.int64]:
    """Encode the valid values among ``values[first : first + count]`` (``bits``: their validity bitmap,
    indexed like ``values``; empty when none is null; ``valid`` of them are) into ``out`` from byte ``at``
    (``delta_bound(valid)`` bytes there). Returns (end, min, max). ``width32``: deltas wrap at 32 bits
    (an INT32 column)."""
    pos = _uleb(out, at, np.uint64(BLOCK))
    pos = _uleb(out, pos, np.uint64(MINIBLOCKS))
    pos = _uleb(out, pos, np.uint64(valid))
    lo = np.int64(0)
    hi = np.int64(0)
    start = first
    stop = first + count
    while start < stop and not _valid(bits, start):
        start += 1
    if start == stop:
        return _uleb(out, pos, np.uint64(0)), lo, hi
    prev = np.int64(values[start])
    pos = _uleb(out, pos, _zigzag(prev))
    lo = prev
    hi = prev
    deltas = np.empty(BLOCK, dtype=np.int64)
    k = 0
    for i in range(start + 1, stop):
        if not _valid(bits, i):
            continue
        v = np.int64(values[i])
        if v < lo:
            lo = v
        if v > hi:
            hi = v
        d = v - prev  # wraps at 64 bits
        if width32:
            d = ((d + np.int64(0x80000000)) & np.int64(0xFFFFFFFF)) - np.int64(0x80000000)
        deltas[k] = d
        prev = v
        k += 1
        if k == BLOCK:
            pos = _block(deltas, k, out, pos)
            k = 0
    if k:
        pos = _block(deltas, k, out, pos)
    return pos, lo, hi


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _less(data: np.ndarray, a0: int, a1: int, b0: int, b1: int) -> bool:
    """Whether bytes ``data[a0:a1]`` sort before ``data[b0:b1]`` (unsigned, lexicographic)."""
    la = a1 - a0
    lb = b1 - b0
    if la > 0 and lb > 0 and data[a0] != data[b0]:  # decided by the first byte: no call
        return data[a0] < data[b0]
    c = _memcmp(data, a0, b0, min(la, lb))
    return c < 0 or (c == 0 and la < lb)


@_jit
def plain_byte_array(
    offsets: np.ndarray, data: np.ndarray, bits: np.ndarray, first: int, count: int, out: np.ndarray, at: int
) -> tuple[int, int, int, int]:
    """Write the valid values among ``first : first + count`` (``bits``: the validity bitmap indexed
    like ``offsets``, empty when none is null) as PLAIN ``BYTE_ARRAY`` into ``out`` from byte ``at``;
    returns (end, value bytes, index of the minimum, index of the maximum), indices -1 when every
    value is null."""
    pos = at
    raw = 0
    lo = -1
    hi = -1
    for i in range(first, first + count):
        if not _valid(bits, i):
            continue
        a = offsets[i]
        b = offsets[i + 1]
        length = b - a
        out[pos] = length & 0xFF
        out[pos + 1] = (length >> 8) & 0xFF
        out[pos + 2] = (length >> 16) & 0xFF
        out[pos + 3] = (length >> 24) & 0xFF
        pos += 4
        _memcpy(out, pos, data, a, length)
        pos += length
        raw += length
        if lo < 0:
            lo = hi = i
        else:
            if _less(data, a, b, offsets[lo], offsets[lo + 1]):
                lo = i
            if _less(data, offsets[hi], offsets[hi + 1], a, b):
                hi = i
    return pos, raw, lo, hi


@_jit
def plain_fixed(
    data: np.ndarray, width: int, bits: np.ndarray, first: int, count: int, out: np.ndarray, at: int
) -> tuple[int, int, int]:
    """Write the valid ``width``-byte values among ``first : first + count`` as PLAIN
    ``FIXED_LEN_BYTE_ARRAY`` into ``out`` from byte ``at``; returns (end, index of the least, index of
    the greatest), compared as unsigned bytes, -1 when every value is null."""
    pos = at
    lo = -1
    hi = -1
    for i in range(first, first + count):
        if not _valid(bits, i):
            continue
        a = i * width
        _memcpy(out, pos, data, a, width)
        pos += width
        if lo < 0:
            lo = hi = i
        else:
            if _less(data, a, a + width, lo * width, lo * width + width):
                lo = i
            if _less(data, hi * width, hi * width + width, a, a + width):
                hi = i
    return pos, lo, hi
