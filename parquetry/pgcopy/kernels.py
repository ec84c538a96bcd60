"""numba kernels of the COPY BINARY decoder: one pass to find every field, then the gathers.

Pass 1 (``scan_rows``) records each field's offset and length. Pass 2 decodes the common scalar columns
of a batch in one call (``gather_columns``: cache-sized blocks of rows, one tight loop per column inside
a block, since whole-batch passes per column over a row-major buffer would pull every cache line from
memory once per column), and the rare and nested types with one kernel per column.

Every loop over rows or values lives here, compiled with ``cache=True`` (a process pays the compile
once per machine) and ``nogil=True`` (decoders in threads run in parallel). Kernels never raise: they
return an error code and the index of the offending row or value, and the Python side turns that into
a ``CopyFormatError`` naming source, offset, row and column. Field slices are ``(offset, length)``
pairs into the stream buffer, length -1 meaning NULL.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Status codes of scan_rows.
SCAN_NEED_MORE = 0
SCAN_BATCH_FULL = 1
SCAN_TRAILER = 2
SCAN_BAD_FIELD_COUNT = 3
SCAN_BAD_LENGTH = 4

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _be_i16(buf, p):
    v = (np.int32(buf[p]) << 8) | np.int32(buf[p + 1])
    if v >= 32768:
        v -= 65536
    return v


@_jit
def _be_i32(buf, p):
    v = (
        (np.int64(buf[p]) << 24)
        | (np.int64(buf[p + 1]) << 16)
        | (np.int64(buf[p + 2]) << 8)
        | np.int64(buf[p + 3])
    )
    if v >= 2147483648:
        v -= 4294967296
    return v


@_jit
def scan_rows(buf, pos, end, ncols, offs, lens, row0, max_rows, stop_pos):
    """Walk complete rows from ``pos``; record each field's offset/length at ``[col, row]``.

    Stops before an incomplete row (NEED_MORE), after ``max_rows`` rows or once ``pos >= stop_pos``
    (BATCH_FULL), at the trailer (TRAILER, ``pos`` just past it) or at bad data (error status, ``pos`` at
    the row, ``bad`` the field index or -1). Returns (rows, pos, status, bad, bad_pos).
    """
    row = row0
    while True:
        if row >= max_rows or (row > 0 and pos >= stop_pos):
            return row - row0, pos, SCAN_BATCH_FULL, -1, pos
        if pos + 2 > end:
            return row - row0, pos, SCAN_NEED_MORE, -1, pos
        nf = _be_i16(buf, pos)
        if nf == -1:
            return row - row0, pos + 2, SCAN_TRAILER, -1, pos
        if nf != ncols:
            return row - row0, pos, SCAN_BAD_FIELD_COUNT, nf, pos
        p = pos + 2
        for c in range(ncols):
            if p + 4 > end:
                return row - row0, pos, SCAN_NEED_MORE, -1, pos
            ln = _be_i32(buf, p)
            p += 4
            if ln == -1:
                offs[c, row] = p
                lens[c, row] = -1
                continue
            if ln < 0:
                return row - row0, pos, SCAN_BAD_LENGTH, c, p - 4
            if p + ln > end:
                return row - row0, pos, SCAN_NEED_MORE, -1, pos
            offs[c, row] = p
            lens[c, row] = ln
            p += ln
        pos = p
        row += 1


@_jit
def validity(lens, bitmap):
    """Set bit i of ``bitmap`` for non-NULL slices; return the NULL count."""
    nulls = 0
    for i in range(lens.shape[0]):
        if lens[i] < 0:
            nulls += 1
        else:
            bitmap[i >> 3] |= np.uint8(1 << (i & 7))
    return nulls


@_jit
def gather_fixed(buf, offs, lens, width, swap, out, r0, r1):
    """Copy fixed-width values of rows [r0, r1) into ``out`` (n*width bytes), byte-reversed when ``swap``.

    Returns the index of the first non-NULL value whose length is not ``width``, or -1.
    """
    for i in range(r0, r1):
        ln = lens[i]
        if ln < 0:
            continue
        if ln != width:
            return i
        o = offs[i]
        b = i * width
        if swap:
            for k in range(width):
                out[b + k] = buf[o + width - 1 - k]
        else:
            for k in range(width):
                out[b + k] = buf[o + k]
    return -1


# --- numeric ------------------------------------------------------------------------------------

NUM_OK = 0
NUM_BAD_LENGTH = 1
NUM_NAN = 2
NUM_INF = 3
NUM_TOO_MANY_DIGITS = 4
NUM_SCALE_EXCEEDED = 5
NUM_BAD_SIGN = 6
NUM_BAD_DIGIT = 7

_POW10 = np.array([1, 10, 100, 1000], dtype=np.int64)


@_jit
def _num_header(buf, o, ln):
    """(ndigits, weight, sign, dscale, status) of a numeric value at ``o``."""
    if ln < 8:
        return 0, 0, 0, 0, NUM_BAD_LENGTH
    nd = _be_i16(buf, o)
    weight = _be_i16(buf, o + 2)
    sign = (np.int64(buf[o + 4]) << 8) | np.int64(buf[o + 5])
    dscale = _be_i16(buf, o + 6)
    if nd < 0 or ln != 8 + 2 * nd or dscale < 0:
        return nd, weight, sign, dscale, NUM_BAD_LENGTH
    if sign == 0xC000:
        return nd, weight, sign, dscale, NUM_NAN
    if sign == 0xD000 or sign == 0xF000:
        return nd, weight, sign, dscale, NUM_INF
    if sign != 0 and sign != 0x4000:
        return nd, weight, sign, dscale, NUM_BAD_SIGN
    for i in range(nd):
        d = _be_i16(buf, o + 8 + 2 * i)
        if d < 0 or d > 9999:
            return nd, weight, sign, dscale, NUM_BAD_DIGIT
    return nd, weight, sign, dscale, NUM_OK


@_jit
def _num_digit(buf, o, nd, weight, ex):
    """The decimal digit at decimal exponent ``ex`` of a numeric value (0 outside its digits)."""
    q = ex // 4
    i = weight - q
    if i < 0 or i >= nd:
        return 0
    d = _be_i16(buf, o + 8 + 2 * i)
    return (d // _POW10[ex - 4 * q]) % 10


@_jit
def _mul_add(limbs, nlimbs, m, a):
    """limbs = limbs * m + a over 32-bit limbs held in uint64 (m <= 10**9); returns the carry out."""
    carry = np.uint64(a)
    mm = np.uint64(m)
    for k in range(nlimbs):
        t = limbs[k] * mm + carry
        limbs[k] = t & np.uint64(0xFFFFFFFF)
        carry = t >> np.uint64(32)
    return carry


@_jit
def _to_limbs(limbs, nlimbs, acc):
    for k in range(nlimbs):
        limbs[k] = 0
    limbs[0] = acc & np.uint64(0xFFFFFFFF)
    limbs[1] = acc >> np.uint64(32)


_POW10_U64 = np.array([10**k for k in range(20)], dtype=np.uint64)
_U64_LIMIT = np.array([(2**64 - 1) // 10**k for k in range(20)], dtype=np.uint64)
_ALL_ONES = np.uint64(2**64 - 1)
_FAST_LIMIT = np.uint64((2**64 - 1 - 9999) // 10000)


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _decimal_one(buf, o, ln, precision, scale, nlimbs, limbs, out, w):
    """Write one numeric value as a little-endian two's-complement decimal of ``nlimbs`` 32-bit limbs
    into ``out[w : w + nlimbs // 2]`` (uint64 words). Returns a NUM_* status.

    The unscaled integer ``value * 10**scale`` is built by Horner's rule over the base-10000 digits (in a
    uint64 while it fits, then in 32-bit limbs). A value with more integer digits than
    ``precision - scale`` or non-zero digits past ``scale`` is refused, never rounded.
    """
    if ln < 8:
        return NUM_BAD_LENGTH
    nd = _be_i16(buf, o)
    weight = _be_i16(buf, o + 2)
    sign = (np.int64(buf[o + 4]) << 8) | np.int64(buf[o + 5])
    if nd < 0 or ln != 8 + 2 * nd:
        return NUM_BAD_LENGTH
    if sign == 0xC000:
        return NUM_NAN
    if sign == 0xD000 or sign == 0xF000:
        return NUM_INF
    if sign != 0 and sign != 0x4000:
        return NUM_BAD_SIGN
    nwords = nlimbs // 2
    # Leading and trailing zero groups carry no digits (PostgreSQL strips them; tolerated anyway).
    first = 0
    while first < nd and _be_i16(buf, o + 8 + 2 * first) == 0:
        first += 1
    last = nd - 1
    while last >= first and _be_i16(buf, o + 8 + 2 * last) == 0:
        last -= 1
    if first > last:
        for k in range(nwords):
            out[w + k] = 0
        return NUM_OK
    d0 = _be_i16(buf, o + 8 + 2 * first)
    w0 = weight - first  # weight of the first non-zero group
    if w0 >= 0 and 0 < d0 <= 9999:
        int_digits = 4 * w0 + (4 if d0 >= 1000 else 3 if d0 >= 100 else 2 if d0 >= 10 else 1)
        if int_digits > precision - scale:
            return NUM_TOO_MANY_DIGITS
    e_last = 4 * (weight - last) + scale  # decimal exponent of the last group in the unscaled value
    if e_last <= -4:
        return NUM_SCALE_EXCEEDED
    acc = np.uint64(0)
    big = False
    for g in range(first, last + 1):
        d = _be_i16(buf, o + 8 + 2 * g)
        if d < 0 or d > 9999:
            return NUM_BAD_DIGIT
        mult = 10000
        if g == last and e_last < 0:
            # drop the -e_last trailing zero digits past the scale (constant divisors: no idiv)
            if e_last == -1:
                q = d // 10
                r = d - q * 10
                mult = 1000
            elif e_last == -2:
                q = d // 100
                r = d - q * 100
                mult = 100
            else:
                q = d // 1000
                r = d - q * 1000
                mult = 10
            if r != 0:
                return NUM_SCALE_EXCEEDED
            d = q
        if not big:
            if acc <= _FAST_LIMIT:
                acc = acc * np.uint64(mult) + np.uint64(d)
                continue
            big = True
            _to_limbs(limbs, nlimbs, acc)
        if _mul_add(limbs, nlimbs, mult, d) != 0:
            return NUM_TOO_MANY_DIGITS
    if not big:
        if 0 < e_last <= 19 and acc <= _U64_LIMIT[e_last]:
            acc = acc * _POW10_U64[e_last]
            e_last = 0
        if e_last <= 0:  # the common case: the unscaled value fits one uint64
            if sign == 0:
                out[w] = acc
                for k in range(1, nwords):
                    out[w + k] = 0
            else:
                out[w] = (acc ^ _ALL_ONES) + np.uint64(1)
                for k in range(1, nwords):
                    out[w + k] = _ALL_ONES
            return NUM_OK
        _to_limbs(limbs, nlimbs, acc)
    rest = e_last
    while rest > 0:
        step = min(rest, 9)
        if _mul_add(limbs, nlimbs, _POW10_U64[step], 0) != 0:
            return NUM_TOO_MANY_DIGITS
        rest -= step
    if nlimbs == 4 and limbs[3] >= np.uint64(0x80000000):
        return NUM_TOO_MANY_DIGITS
    if sign == 0x4000:
        carry = np.uint64(1)
        for k in range(nlimbs):
            t = (limbs[k] ^ np.uint64(0xFFFFFFFF)) + carry
            limbs[k] = t & np.uint64(0xFFFFFFFF)
            carry = t >> np.uint64(32)
    for k in range(nwords):
        out[w + k] = limbs[2 * k] | (limbs[2 * k + 1] << np.uint64(32))
    return NUM_OK


# --- all common scalar columns of a batch in one row-major pass ----------------------------------

COL_BE = 1  # big-endian 2/4/8-byte integer or float, byte-swapped
COL_RAW = 2  # fixed width copied as is (timetz, interval, uuid)
COL_BOOL = 3  # one byte -> one bit
COL_VAR = 4  # variable length (text family, bytea; skip=1: jsonb version byte)
COL_DEC = 5  # numeric(p, s) -> decimal128/256

GATHER_BAD_WIDTH = 1
GATHER_BAD_BOOL = 2
GATHER_BAD_VERSION = 3
GATHER_NUMERIC = 4


@_jit
def _gather_be(buf, offs, lens, c, r0, r1, wd, base, arena):
    for i in range(r0, r1):
        ln = lens[c, i]
        if ln < 0:
            continue
        if ln != wd:
            return i
        o = offs[c, i]
        b = base + i * wd
        if wd == 4:
            arena[b] = buf[o + 3]
            arena[b + 1] = buf[o + 2]
            arena[b + 2] = buf[o + 1]
            arena[b + 3] = buf[o]
        elif wd == 8:
            arena[b] = buf[o + 7]
            arena[b + 1] = buf[o + 6]
            arena[b + 2] = buf[o + 5]
            arena[b + 3] = buf[o + 4]
            arena[b + 4] = buf[o + 3]
            arena[b + 5] = buf[o + 2]
            arena[b + 6] = buf[o + 1]
            arena[b + 7] = buf[o]
        else:
            arena[b] = buf[o + 1]
            arena[b + 1] = buf[o]
    return -1


@_jit
def _gather_raw(buf, offs, lens, c, r0, r1, wd, base, arena):
    for i in range(r0, r1):
        ln = lens[c, i]
        if ln < 0:
            continue
        if ln != wd:
            return i
        o = offs[c, i]
        b = base + i * wd
        for j in range(wd):
            arena[b + j] = buf[o + j]
    return -1


@_jit
def _gather_bool(buf, offs, lens, c, r0, r1, base, arena):
    for i in range(r0, r1):
        ln = lens[c, i]
        if ln < 0:
            continue
        o = offs[c, i]
        if ln != 1 or buf[o] > 1:
            return i
        if buf[o] == 1:
            arena[base + (i >> 3)] |= np.uint8(1 << (i & 7))
    return -1


@_jit
def _gather_var(buf, offs, lens, c, r0, r1, skip, base, var_offsets, v, arena):
    for i in range(r0, r1):
        ln = lens[c, i]
        if ln < 0:
            continue
        o = offs[c, i]
        if skip and (ln < 1 or buf[o] != 1):
            return i
        # unsigned indexes: no negative-index wraparound code, so the copy loop vectorizes
        p = np.uint64(base + var_offsets[v, i])
        m = np.uint64(var_offsets[v, i + 1] - var_offsets[v, i])
        src = np.uint64(o + skip)
        for j in range(m):
            arena[p + j] = buf[src + j]
    return -1


@_jit
def _gather_dec(buf, offs, lens, c, r0, r1, wd, precision, scale, base, limbs, words):
    nl = wd // 4
    w0 = base >> 3
    for i in range(r0, r1):
        ln = lens[c, i]
        if ln < 0:
            continue
        st = _decimal_one(buf, offs[c, i], ln, precision, scale, nl, limbs, words, w0 + i * (wd >> 3))
        if st != NUM_OK:
            return i, st
    return -1, NUM_OK


@_jit
def gather_columns(buf, offs, lens, n, cols, kinds, widths, bases, params, scales, var_offsets, arena, words,
                   block):  # fmt: skip
    """Decode rows [0, n) of the columns ``cols`` (indexes into the ``[col, row]`` offs/lens).

    Column k writes into ``arena`` at ``bases[k]`` (``words`` is the same arena as uint64, used for
    decimals, whose bases are 8-byte aligned); variable-length columns take their Arrow offsets from
    ``var_offsets[params[k]]``. Rows go in blocks of ``block`` rows (a few hundred KiB of input): within
    a block, one tight loop per column, so the block's input stays in cache across the columns and each
    loop has a single kind. Returns (status, row, k, detail): status 0 when all values are good.
    """
    ncol = cols.shape[0]
    limbs = np.zeros(8, dtype=np.uint64)
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        for k in range(ncol):
            c = cols[k]
            kind = kinds[k]
            if kind == COL_BE:
                bad = _gather_be(buf, offs, lens, c, r0, r1, widths[k], bases[k], arena)
                if bad >= 0:
                    return GATHER_BAD_WIDTH, bad, k, lens[c, bad]
            elif kind == COL_VAR:
                bad = _gather_var(
                    buf, offs, lens, c, r0, r1, widths[k], bases[k], var_offsets, params[k], arena
                )
                if bad >= 0:
                    return GATHER_BAD_VERSION, bad, k, lens[c, bad]
            elif kind == COL_DEC:
                bad, st = _gather_dec(
                    buf, offs, lens, c, r0, r1, widths[k], params[k], scales[k], bases[k], limbs, words
                )
                if bad >= 0:
                    return GATHER_NUMERIC, bad, k, st
            elif kind == COL_RAW:
                bad = _gather_raw(buf, offs, lens, c, r0, r1, widths[k], bases[k], arena)
                if bad >= 0:
                    return GATHER_BAD_WIDTH, bad, k, lens[c, bad]
            else:  # COL_BOOL
                bad = _gather_bool(buf, offs, lens, c, r0, r1, bases[k], arena)
                if bad >= 0:
                    return GATHER_BAD_BOOL, bad, k, lens[c, bad]
    return 0, -1, -1, 0


@_jit
def var_offsets_all(lens, n, cols, skips, out):
    """Arrow offsets (``out[k]``, n+1 each) of variable-length columns; returns (-1, -1) or the (row, k)
    of a value shorter than its skipped header."""
    for k in range(cols.shape[0]):
        c = cols[k]
        skip = skips[k]
        pos = 0
        out[k, 0] = 0
        for i in range(n):
            ln = lens[c, i]
            if ln >= 0:
                if ln < skip:
                    return i, k
                pos += ln - skip
            out[k, i + 1] = pos
    return -1, -1


@_jit
def _num_int_start(buf, o, nd, weight):
    """Decimal exponent of the first printed integer digit: the first non-zero one, at least 0."""
    for ex in range(4 * weight + 3, 0, -1):
        if _num_digit(buf, o, nd, weight, ex) != 0:
            return ex
    return 0


@_jit
def _num_text_len(buf, o, nd, weight, sign, dscale):
    if sign == 0xC000:
        return 3
    if sign == 0xD000:
        return 8
    if sign == 0xF000:
        return 9
    n = 1 if sign == 0x4000 else 0
    n += _num_int_start(buf, o, nd, weight) + 1
    if dscale > 0:
        n += 1 + dscale
    return n


@_jit
def numeric_text_lengths(buf, offs, lens, out_offsets):
    """Arrow offsets of numeric values printed as PostgreSQL's numeric_out does. Returns (status, index)."""
    pos = 0
    out_offsets[0] = 0
    for i in range(offs.shape[0]):
        ln = lens[i]
        if ln >= 0:
            o = offs[i]
            nd, weight, sign, dscale, st = _num_header(buf, o, ln)
            if st != NUM_OK and st != NUM_NAN and st != NUM_INF:
                return st, i
            pos += _num_text_len(buf, o, nd, weight, sign, dscale)
        out_offsets[i + 1] = pos
    return NUM_OK, -1


@_jit
def _put_str(data, p, s):
    for k in range(len(s)):
        data[p + k] = ord(s[k])


@_jit
def numeric_text(buf, offs, lens, out_offsets, data):
    """Print numeric values exactly as PostgreSQL's numeric_out (sign, integer digits, dscale decimals)."""
    for i in range(offs.shape[0]):
        ln = lens[i]
        if ln < 0:
            continue
        o = offs[i]
        p = out_offsets[i]
        nd = _be_i16(buf, o)
        weight = _be_i16(buf, o + 2)
        sign = (np.int64(buf[o + 4]) << 8) | np.int64(buf[o + 5])
        dscale = _be_i16(buf, o + 6)
        if sign == 0xC000:
            _put_str(data, p, "NaN")
            continue
        if sign == 0xD000:
            _put_str(data, p, "Infinity")
            continue
        if sign == 0xF000:
            _put_str(data, p, "-Infinity")
            continue
        if sign == 0x4000:
            data[p] = 45  # '-'
            p += 1
        for ex in range(_num_int_start(buf, o, nd, weight), -1, -1):
            data[p] = 48 + _num_digit(buf, o, nd, weight, ex)
            p += 1
        if dscale > 0:
            data[p] = 46  # '.'
            p += 1
            for k in range(1, dscale + 1):
                data[p] = 48 + _num_digit(buf, o, nd, weight, -k)
                p += 1
    return 0


# --- bit strings --------------------------------------------------------------------------------


@_jit
def bits_lengths(buf, offs, lens, out_offsets):
    """Arrow offsets for bit/varbit printed as '0'/'1' text. Returns the first bad index or -1."""
    pos = 0
    out_offsets[0] = 0
    for i in range(offs.shape[0]):
        ln = lens[i]
        if ln >= 0:
            if ln < 4:
                return i
            nbits = _be_i32(buf, offs[i])
            if nbits < 0 or ln != 4 + (nbits + 7) // 8:
                return i
            pos += nbits
        out_offsets[i + 1] = pos
    return -1


@_jit
def bits_text(buf, offs, lens, out_offsets, data):
    for i in range(offs.shape[0]):
        if lens[i] < 0:
            continue
        o = offs[i] + 4
        p = out_offsets[i]
        nbits = out_offsets[i + 1] - p
        for k in range(nbits):
            data[p + k] = 48 + ((buf[o + (k >> 3)] >> (7 - (k & 7))) & 1)
    return 0


# --- arrays, ranges, composites, multiranges ----------------------------------------------------

NEST_OK = 0
NEST_TRUNCATED = 1
NEST_BAD_NDIM = 2
NEST_LOWER_BOUND = 3
NEST_BAD_FLAGS = 4
NEST_TRAILING = 5
NEST_BAD_COUNT = 6


@_jit
def array_count(buf, offs, lens, ndims, level_counts):
    """Validate array headers; fill ``level_counts[l]`` (lists at level l) and return (status, index,
    elements, detail). Empty arrays (0 dimensions) are empty lists; others need ``ndims`` dimensions and
    lower bounds of 1 (detail holds the offending dimension count or lower bound)."""
    n = offs.shape[0]
    level_counts[0] = n
    for lv in range(1, ndims):
        level_counts[lv] = 0
    elems = 0
    for i in range(n):
        ln = lens[i]
        if ln < 0:
            continue
        o = offs[i]
        end = o + ln
        if ln < 12:
            return NEST_TRUNCATED, i, 0, 0
        nd = _be_i32(buf, o)
        flags = _be_i32(buf, o + 4)
        if flags != 0 and flags != 1:
            return NEST_BAD_FLAGS, i, 0, flags
        if nd == 0:
            if ln != 12:
                return NEST_TRAILING, i, 0, 0
            continue
        if nd != ndims:
            return NEST_BAD_NDIM, i, 0, nd
        p = o + 12
        if p + 8 * nd > end:
            return NEST_TRUNCATED, i, 0, 0
        prod = 1
        for d in range(nd):
            dim = _be_i32(buf, p + 8 * d)
            lb = _be_i32(buf, p + 8 * d + 4)
            if dim < 0:
                return NEST_TRUNCATED, i, 0, 0
            if lb != 1:
                return NEST_LOWER_BOUND, i, 0, lb
            if d >= 1:
                level_counts[d] += prod
            prod *= dim
        p += 8 * nd
        for _k in range(prod):
            if p + 4 > end:
                return NEST_TRUNCATED, i, 0, 0
            el = _be_i32(buf, p)
            p += 4
            if el < -1:
                return NEST_TRUNCATED, i, 0, 0
            if el > 0:
                p += el
            if p > end:
                return NEST_TRUNCATED, i, 0, 0
        if p != end:
            return NEST_TRAILING, i, 0, 0
        elems += prod
    return NEST_OK, -1, elems, 0


@_jit
def array_fill(buf, offs, lens, ndims, level_bases, level_offsets, elem_offs, elem_lens, elem_rows):
    """Second pass over validated arrays: list offsets per level, element slices and their value index."""
    n = offs.shape[0]
    cnt = np.zeros(ndims, dtype=np.int64)
    dims = np.zeros(ndims, dtype=np.int64)
    for lv in range(ndims):
        level_offsets[level_bases[lv]] = 0
    e = 0
    for i in range(n):
        ln = lens[i]
        b0 = level_bases[0]
        if ln < 0 or _be_i32(buf, offs[i]) == 0:
            level_offsets[b0 + i + 1] = level_offsets[b0 + i]
            continue
        o = offs[i]
        p = o + 12
        for d in range(ndims):
            dims[d] = _be_i32(buf, p + 8 * d)
        p += 8 * ndims
        level_offsets[b0 + i + 1] = level_offsets[b0 + i] + dims[0]
        reps = dims[0]
        for lv in range(1, ndims):
            b = level_bases[lv]
            for _r in range(reps):
                c = cnt[lv]
                level_offsets[b + c + 1] = level_offsets[b + c] + dims[lv]
                cnt[lv] = c + 1
            reps *= dims[lv]
        for _k in range(reps):
            el = _be_i32(buf, p)
            p += 4
            elem_offs[e] = p
            elem_lens[e] = el
            elem_rows[e] = i
            e += 1
            if el > 0:
                p += el
    return e


RANGE_EMPTY = 0x01
RANGE_LB_INC = 0x02
RANGE_UB_INC = 0x04
RANGE_LB_INF = 0x08
RANGE_UB_INF = 0x10


@_jit
def range_scan(buf, offs, lens, flags_out, lo_offs, lo_lens, hi_offs, hi_lens):
    """Split range values into flags and lower/upper bound slices (NULL slice when absent)."""
    for i in range(offs.shape[0]):
        lo_lens[i] = -1
        hi_lens[i] = -1
        ln = lens[i]
        if ln < 0:
            continue
        o = offs[i]
        end = o + ln
        if ln < 1:
            return NEST_TRUNCATED, i
        f = buf[o]
        if f & 0xE0:
            return NEST_BAD_FLAGS, i
        flags_out[i] = f
        p = o + 1
        if (f & (RANGE_EMPTY | RANGE_LB_INF)) == 0:
            if p + 4 > end:
                return NEST_TRUNCATED, i
            bl = _be_i32(buf, p)
            p += 4
            if bl < 0 or p + bl > end:
                return NEST_TRUNCATED, i
            lo_offs[i] = p
            lo_lens[i] = bl
            p += bl
        if (f & (RANGE_EMPTY | RANGE_UB_INF)) == 0:
            if p + 4 > end:
                return NEST_TRUNCATED, i
            bl = _be_i32(buf, p)
            p += 4
            if bl < 0 or p + bl > end:
                return NEST_TRUNCATED, i
            hi_offs[i] = p
            hi_lens[i] = bl
            p += bl
        if p != end:
            return NEST_TRAILING, i
    return NEST_OK, -1


@_jit
def items_count(buf, offs, lens, with_oid, expect, counts):
    """Count length-prefixed items of composite (``with_oid``: oid+len per item) or multirange values.

    ``counts[i]`` gets the item count of value i; ``expect`` >= 0 demands that count. Returns
    (status, index, total items).
    """
    total = 0
    step = 8 if with_oid else 4
    for i in range(offs.shape[0]):
        counts[i] = 0
        ln = lens[i]
        if ln < 0:
            continue
        o = offs[i]
        end = o + ln
        if ln < 4:
            return NEST_TRUNCATED, i, 0
        k = _be_i32(buf, o)
        if k < 0 or (expect >= 0 and k != expect):
            return NEST_BAD_COUNT, i, 0
        p = o + 4
        for _j in range(k):
            if p + step > end:
                return NEST_TRUNCATED, i, 0
            il = _be_i32(buf, p + step - 4)
            p += step
            if il < -1:
                return NEST_TRUNCATED, i, 0
            if il > 0:
                p += il
            if p > end:
                return NEST_TRUNCATED, i, 0
        if p != end:
            return NEST_TRAILING, i, 0
        counts[i] = k
        total += k
    return NEST_OK, -1, total


@_jit
def items_fill(buf, offs, lens, with_oid, item_offs, item_lens, item_rows):
    step = 8 if with_oid else 4
    e = 0
    for i in range(offs.shape[0]):
        if lens[i] < 0:
            continue
        o = offs[i]
        k = _be_i32(buf, o)
        p = o + 4
        for _j in range(k):
            il = _be_i32(buf, p + step - 4)
            p += step
            item_offs[e] = p
            item_lens[e] = il
            item_rows[e] = i
            e += 1
            if il > 0:
                p += il
    return e
