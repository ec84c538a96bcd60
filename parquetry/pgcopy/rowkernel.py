"""numba kernel of the one-pass COPY BINARY decoder: find each row and scatter its fields into columns.

``decode_rows`` walks the stream row by row, as the format defines it (16-bit field count, 32-bit length
per field, -1 = NULL, the -1 trailer), and writes every field of the row straight into its column's
final buffer: fixed-width values byte-swapped (dates and timestamps moved to the Unix epoch on the way),
numerics as decimal128/256, strings appended to their column's data with the Arrow offsets beside, and
validity bits set as it goes. The stream is read once, front to back, and each column is written
front to back: no per-column pass re-reads the interleaved rows, and no field index is built for them.

A row is decoded completely or not at all: when it turns out to be incomplete (the caller feeds more
bytes) or too large for a string buffer (the caller grows it), the kernel drops what it appended for
that row and returns; the next call starts again at the same row. Columns of rarer types
(arrays, ranges, composites, intervals...) only get their field's ``(offset, length)`` recorded, for
the per-column decoders of ``columns.py``.

Like every kernel here it never raises: it returns a status and where the problem is (row, column,
byte position, detail), and the Python side builds the ``CopyFormatError``.

``rowspec.py`` generates this same walk specialized to one row layout (used once compiled): a change
here is a change there too, and ``tests/pgcopy/test_pgcopy_rowspec.py`` holds the two to the same tables
and errors.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from parquetry.pgcopy.kernels import NUM_OK, _decimal_one

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)

# Column kinds.
R_BE = 1  # 2/4/8-byte big-endian integer or float -> little-endian
R_RAW = 2  # fixed width copied as is (uuid)
R_BOOL = 3  # one byte -> one bit
R_VAR = 4  # variable length: text family (UTF-8 checked), bytea; param 1 = jsonb version byte
R_DEC = 5  # numeric(p, s) -> decimal128/256 (param = precision, scale)
R_DATE = 6  # date -> date32 (days since 1970-01-01; +-infinity kept as INT32 max/min)
R_TS = 7  # timestamp[tz] -> microseconds since 1970-01-01 (+-infinity kept as INT64 max/min)
R_SLICE = 8  # only record (offset, length) for a per-column decoder

# Statuses (the scan statuses match kernels.SCAN_*).
ROWS_NEED_MORE = 0
ROWS_BATCH_FULL = 1
ROWS_TRAILER = 2
ROWS_BAD_FIELD_COUNT = 3
ROWS_BAD_LENGTH = 4
ROWS_GROW = 5  # a string column's buffer is full: detail = bytes it needs in all
ROWS_BAD_WIDTH = 6  # detail = the value's length
ROWS_BAD_BOOL = 7
ROWS_BAD_VERSION = 8  # jsonb without version byte 1
ROWS_SHORT_HEADER = 9  # jsonb value shorter than its version byte
ROWS_NUMERIC = 10  # detail = kernels.NUM_* status
ROWS_TS_RANGE = 11  # detail = the PostgreSQL microseconds
ROWS_BAD_UTF8 = 12  # detail = byte index inside the value
ROWS_NOT_NULL = 13  # a NULL in a column declared NOT NULL

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
PG_EPOCH_DAYS = 10957
PG_EPOCH_US = 946_684_800_000_000
TS_LIMIT = INT64_MAX - PG_EPOCH_US


_inline = nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_HIGH_BITS = np.uint64(0x8080808080808080)
SLACK = 16  # bytes every string region keeps past its capacity, for the 8-byte copy steps

# Byte access goes through unsigned indexes: numba then emits no negative-index wraparound per access,
# and LLVM merges the byte loads of a big-endian integer into one load and a byte swap.


@_inline
def _u8(buf, p):
    return buf[np.uint64(p)]


@_inline
def _be16(buf, p):
    """Signed big-endian int16 at ``p`` (as int64)."""
    u = np.uint64(p)
    return np.int64(np.int16((np.uint16(buf[u]) << np.uint16(8)) | np.uint16(buf[u + np.uint64(1)])))


@_inline
def _be32(buf, p):
    """Signed big-endian int32 at ``p`` (as int64)."""
    u = np.uint64(p)
    v = (
        (np.uint32(buf[u]) << np.uint32(24))
        | (np.uint32(buf[u + np.uint64(1)]) << np.uint32(16))
        | (np.uint32(buf[u + np.uint64(2)]) << np.uint32(8))
        | np.uint32(buf[u + np.uint64(3)])
    )
    return np.int64(np.int32(v))


@_inline
def _be64(buf, p):
    u = np.uint64(p)
    return (
        (np.uint64(buf[u]) << np.uint64(56))
        | (np.uint64(buf[u + np.uint64(1)]) << np.uint64(48))
        | (np.uint64(buf[u + np.uint64(2)]) << np.uint64(40))
        | (np.uint64(buf[u + np.uint64(3)]) << np.uint64(32))
        | (np.uint64(buf[u + np.uint64(4)]) << np.uint64(24))
        | (np.uint64(buf[u + np.uint64(5)]) << np.uint64(16))
        | (np.uint64(buf[u + np.uint64(6)]) << np.uint64(8))
        | np.uint64(buf[u + np.uint64(7)])
    )


@_inline
def _le64(buf, p):
    """8 bytes at ``p`` as a little-endian uint64 (one unaligned load)."""
    u = np.uint64(p)
    return (
        np.uint64(buf[u])
        | (np.uint64(buf[u + np.uint64(1)]) << np.uint64(8))
        | (np.uint64(buf[u + np.uint64(2)]) << np.uint64(16))
        | (np.uint64(buf[u + np.uint64(3)]) << np.uint64(24))
        | (np.uint64(buf[u + np.uint64(4)]) << np.uint64(32))
        | (np.uint64(buf[u + np.uint64(5)]) << np.uint64(40))
        | (np.uint64(buf[u + np.uint64(6)]) << np.uint64(48))
        | (np.uint64(buf[u + np.uint64(7)]) << np.uint64(56))
    )


@_inline
def _put64(out, p, v):
    """Store ``v`` little-endian at byte ``p`` of a uint8 array (one unaligned store)."""
    u = np.uint64(p)
    out[u] = np.uint8(v & np.uint64(0xFF))
    out[u + np.uint64(1)] = np.uint8((v >> np.uint64(8)) & np.uint64(0xFF))
    out[u + np.uint64(2)] = np.uint8((v >> np.uint64(16)) & np.uint64(0xFF))
    out[u + np.uint64(3)] = np.uint8((v >> np.uint64(24)) & np.uint64(0xFF))
    out[u + np.uint64(4)] = np.uint8((v >> np.uint64(32)) & np.uint64(0xFF))
    out[u + np.uint64(5)] = np.uint8((v >> np.uint64(40)) & np.uint64(0xFF))
    out[u + np.uint64(6)] = np.uint8((v >> np.uint64(48)) & np.uint64(0xFF))
    out[u + np.uint64(7)] = np.uint8(v >> np.uint64(56))


@_inline
def _decimal_fast(buf, o, ln, precision, scale):
    """The unscaled value of a short numeric(p <= 18, s) whose result surely fits, or (False, 0) when the
    exact routine (``kernels._decimal_one``) must decide: longer values, errors, special values."""
    if ln < 8:
        return False, np.int64(0)
    nd = _be16(buf, o)
    weight = _be16(buf, o + 2)
    sign = _be16(buf, o + 4) & 0xFFFF
    if nd < 0 or nd > 5 or ln != 8 + 2 * nd or (sign != 0 and sign != 0x4000) or precision > 18:
        return False, np.int64(0)
    if nd > 0 and 4 * weight + 4 + scale > 18:
        return False, np.int64(0)
    acc = np.int64(0)
    for i in range(nd):
        d = _be16(buf, o + 8 + 2 * i)
        if d < 0 or d > 9999:
            return False, np.int64(0)
        e = 4 * (weight - i) + scale
        if e >= 0:
            acc += d * _POW10[np.uint64(e)]
        elif e > -4:
            div = _POW10[np.uint64(-e)]
            q = d // div
            if q * div != d:
                return False, np.int64(0)
            acc += q
        elif d != 0:
            return False, np.int64(0)
    if acc >= _POW10[np.uint64(precision)]:
        return False, np.int64(0)
    return True, (-acc if sign == 0x4000 else acc)


@_jit
def utf8_invalid_at(buf, o, n):
    """Index of the first byte of ``buf[o:o+n]`` that breaks UTF-8 (as Arrow and Python define it: no
    overlong forms, no surrogates, nothing above U+10FFFF), or -1 when the bytes are valid UTF-8."""
    i = 0
    while i < n:
        b = _u8(buf, o + i)
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            need = 1
            lo = 0x80
            hi = 0xBF
        elif b == 0xE0:
            need = 2
            lo = 0xA0
            hi = 0xBF
        elif b == 0xED:
            need = 2
            lo = 0x80
            hi = 0x9F
        elif 0xE1 <= b <= 0xEF:
            need = 2
            lo = 0x80
            hi = 0xBF
        elif b == 0xF0:
            need = 3
            lo = 0x90
            hi = 0xBF
        elif 0xF1 <= b <= 0xF3:
            need = 3
            lo = 0x80
            hi = 0xBF
        elif b == 0xF4:
            need = 3
            lo = 0x80
            hi = 0x8F
        else:
            return i
        if i + need >= n:
            return i
        c = _u8(buf, o + i + 1)
        if c < lo or c > hi:
            return i
        for k in range(2, need + 1):
            c = _u8(buf, o + i + k)
            if c < 0x80 or c > 0xBF:
                return i
        i += need + 1
    return -1


@_jit
def decode_rows(
    buf, pos, end, row0, max_rows, stop_pos,
    kinds, widths, params, scales, slots,
    fixed, words, f16, f32, bitmaps,
    var_offsets, var_data, var_base, var_cap, var_pos,
    slice_offs, slice_lens, not_null,
):  # fmt: skip
    """Decode whole rows from ``pos`` into the column buffers, rows numbered from ``row0``.

    Column c writes, by kind: fixed-width values at byte ``slots[c] + row * width`` of ``fixed``
    (``words``/``f16``/``f32`` are uint64/16/32 views of it; ``slots`` are 64-byte aligned); booleans as
    bits from byte ``slots[c]``; a NULL clears its row's bit in ``bitmaps[c]``, which the caller sets to
    all ones (one store per NULL, not a read-modify-write per value: 5% of the decoding of a lineitem
    row). String column v = ``slots[c]`` appends its bytes at ``var_base[v] + var_pos[v]`` of
    ``var_data`` (room ``var_cap[v]``) and its end offset at ``var_offsets[v, row + 1]``; slice column
    s = ``slots[c]`` records ``slice_offs/lens[s, row]``.

    Stops like ``kernels.scan_rows`` (NEED_MORE before an incomplete row, BATCH_FULL after ``max_rows``
    rows or at ``stop_pos``, TRAILER just past the trailer) and before a row that does not fit a string
    buffer (GROW). A row it stops inside leaves nothing behind that counts: its string bytes are
    dropped (``var_pos`` goes back to the previous row's end) and its slots are rewritten when it is
    decoded again. Returns (rows, pos, status, column, bad_pos, detail); for value errors the row
    ``row0 + rows`` is the bad one and ``bad_pos`` the value's offset in ``buf``.
    """
    ncols = kinds.shape[0]
    nvar = var_pos.shape[0]
    row = row0
    limbs = np.zeros(8, dtype=np.uint64)
    while True:
        if row >= max_rows or (row > 0 and pos >= stop_pos):
            return row - row0, pos, ROWS_BATCH_FULL, -1, pos, 0
        if pos + 2 > end:
            return row - row0, pos, ROWS_NEED_MORE, -1, pos, 0
        nf = _be16(buf, pos)
        if nf == -1:
            return row - row0, pos + 2, ROWS_TRAILER, -1, pos, 0
        if nf != ncols:
            return row - row0, pos, ROWS_BAD_FIELD_COUNT, -1, pos, nf
        p = pos + 2
        ur = np.uint64(row)
        byte = np.uint64(row >> 3)
        bit = np.uint8(1 << (row & 7))
        keep = np.uint8(~(1 << (row & 7)) & 0xFF)
        status = ROWS_BATCH_FULL  # stays so when the row is complete
        grow_col = -1
        grow_need = 0
        for c in range(ncols):
            if p + 4 > end:
                status = ROWS_NEED_MORE
                break
            ln = _be32(buf, p)
            p += 4
            kind = kinds[c]
            if ln < 0:
                if ln != -1:
                    for v in range(nvar):  # the row does not count: drop its string bytes
                        var_pos[v] = var_offsets[v, ur]
                    return row - row0, pos, ROWS_BAD_LENGTH, c, p - 4, 0
                if not_null[c]:
                    for v in range(nvar):
                        var_pos[v] = var_offsets[v, ur]
                    return row - row0, pos, ROWS_NOT_NULL, c, p - 4, 0
                bitmaps[c, byte] &= keep
                if kind == R_VAR:
                    v = slots[c]
                    var_offsets[v, ur + np.uint64(1)] = var_pos[v]
                elif kind == R_SLICE:
                    slice_offs[slots[c], ur] = p
                    slice_lens[slots[c], ur] = -1
                elif kind == R_BOOL:
                    fixed[np.uint64(slots[c]) + byte] &= keep
                elif kind == R_DEC:
                    nw = np.uint64(widths[c] >> 3)
                    w = np.uint64(slots[c] >> 3) + ur * nw
                    for k in range(nw):
                        words[w + np.uint64(k)] = 0
                else:
                    wd = np.uint64(widths[c])
                    b = np.uint64(slots[c]) + ur * wd
                    for k in range(wd):
                        fixed[b + np.uint64(k)] = 0
                continue
            o = p
            p += ln
            if p > end:
                status = ROWS_NEED_MORE
                break
            if kind == R_BE:
                wd = widths[c]
                if ln != wd:
                    return row - row0, pos, ROWS_BAD_WIDTH, c, o, ln
                if wd == 8:
                    words[np.uint64(slots[c] >> 3) + ur] = _be64(buf, o)
                elif wd == 4:
                    f32[np.uint64(slots[c] >> 2) + ur] = np.uint32(_be32(buf, o) & 0xFFFFFFFF)
                else:
                    f16[np.uint64(slots[c] >> 1) + ur] = np.uint16(_be16(buf, o) & 0xFFFF)
            elif kind == R_VAR:
                skip = params[c]
                if skip:
                    if ln < 1:
                        return row - row0, pos, ROWS_SHORT_HEADER, c, o, ln
                    if _u8(buf, o) != 1:
                        return row - row0, pos, ROWS_BAD_VERSION, c, o, ln
                v = slots[c]
                m = ln - skip
                at = var_pos[v]
                if at + m > var_cap[v]:
                    status = ROWS_GROW
                    grow_col = c
                    grow_need = at + m
                    break
                dst = var_base[v] + at
                src = o + skip
                if src + m + 8 <= end:
                    # 8-byte steps: the last one copies up to 7 bytes past the value into the region's
                    # slack (the next value overwrites them); those bytes are masked out of ``acc``.
                    acc = np.uint64(0)
                    k = 0
                    while k + 8 <= m:
                        w8 = _le64(buf, src + k)
                        acc |= w8
                        _put64(var_data, dst + k, w8)
                        k += 8
                    if k < m:
                        w8 = _le64(buf, src + k)
                        acc |= w8 & ((np.uint64(1) << np.uint64(8 * (m - k))) - np.uint64(1))
                        _put64(var_data, dst + k, w8)
                    high = (acc & _HIGH_BITS) != 0
                else:
                    acc8 = np.uint8(0)
                    for k in range(m):
                        x = _u8(buf, src + k)
                        var_data[np.uint64(dst + k)] = x
                        acc8 |= x
                    high = acc8 >= 0x80
                if high and scales[c]:
                    bad = utf8_invalid_at(buf, src, m)
                    if bad >= 0:
                        return row - row0, pos, ROWS_BAD_UTF8, c, o, bad
                var_pos[v] = at + m
                var_offsets[v, ur + np.uint64(1)] = at + m
            elif kind == R_DEC:
                nw = widths[c] >> 3
                w = np.uint64((slots[c] >> 3) + row * nw)
                ok, unscaled = _decimal_fast(buf, o, ln, params[c], scales[c])
                if ok:
                    words[w] = np.uint64(unscaled)
                    ext = np.uint64(0xFFFFFFFFFFFFFFFF) if unscaled < 0 else np.uint64(0)
                    for k in range(1, nw):
                        words[w + np.uint64(k)] = ext
                else:
                    st = _decimal_one(buf, o, ln, params[c], scales[c], widths[c] >> 2, limbs, words, w)
                    if st != NUM_OK:
                        return row - row0, pos, ROWS_NUMERIC, c, o, st
            elif kind == R_DATE:
                if ln != 4:
                    return row - row0, pos, ROWS_BAD_WIDTH, c, o, ln
                days = _be32(buf, o)
                if days != INT32_MAX and days != INT32_MIN:
                    days += PG_EPOCH_DAYS
                f32[np.uint64(slots[c] >> 2) + ur] = np.uint32(days & 0xFFFFFFFF)
            elif kind == R_TS:
                if ln != 8:
                    return row - row0, pos, ROWS_BAD_WIDTH, c, o, ln
                us = np.int64(_be64(buf, o))
                if us != INT64_MAX and us != INT64_MIN:
                    if us >= TS_LIMIT:
                        return row - row0, pos, ROWS_TS_RANGE, c, o, us
                    us += PG_EPOCH_US
                words[np.uint64(slots[c] >> 3) + ur] = np.uint64(us)
            elif kind == R_RAW:
                wd = widths[c]
                if ln != wd:
                    return row - row0, pos, ROWS_BAD_WIDTH, c, o, ln
                b = slots[c] + row * wd
                if wd == 16:
                    w = np.uint64(b >> 3)
                    words[w] = _le64(buf, o)
                    words[w + np.uint64(1)] = _le64(buf, o + 8)
                else:
                    for k in range(wd):
                        fixed[np.uint64(b + k)] = _u8(buf, o + k)
            elif kind == R_BOOL:
                x = _u8(buf, o)
                if ln != 1 or x > 1:
                    return row - row0, pos, ROWS_BAD_BOOL, c, o, ln
                if x == 1:
                    fixed[np.uint64(slots[c]) + byte] |= bit
                else:
                    fixed[np.uint64(slots[c]) + byte] &= keep
            else:  # R_SLICE
                slice_offs[slots[c], ur] = o
                slice_lens[slots[c], ur] = ln
        if status != ROWS_BATCH_FULL:
            for v in range(nvar):  # the row does not count: drop its string bytes
                var_pos[v] = var_offsets[v, ur]
            if status == ROWS_GROW:
                return row - row0, pos, ROWS_GROW, grow_col, pos, grow_need
            return row - row0, pos, ROWS_NEED_MORE, -1, pos, 0
        pos = p
        row += 1
