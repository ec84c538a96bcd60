"""numba-cuda kernels that decode a PostgreSQL ``COPY ... (FORMAT binary)`` stream held in device memory.

Importing this module imports ``numba.cuda``; :mod:`parquetry.gpu.decode` imports it lazily. Every kernel
runs unchanged under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), which is how the test suite
checks them on machines without a GPU.

Integer arithmetic is done on ``int64`` values holding at most 32 significant bits (64-bit and 128-bit
results are written as little-endian 32-bit words into ``uint32`` arrays). This keeps every operation
free of unsigned/signed mixing (numba types ``uint64 op int64`` as float64) and makes the simulator,
which runs on numpy scalars, compute exactly what the compiled kernel computes.

Row boundaries are found exactly (see ``docs/gpu.md``):

1. :func:`speculate_kernel`: the data area is cut into blocks of ``block_size`` bytes. Block 0 starts
   at the first row (right after the header). Every other block *guesses* its first row start (the
   first offset from which ``confirm`` complete, well-formed rows follow), then walks whole rows from
   that guess until it passes the block's end, recording the guess, the exit offset, the rows seen and
   whether the walk met malformed data.
2. :func:`chain_kernel`: a single thread block chains the blocks in order, starting from the known
   first row. A block's guess is used only if it *equals* the true entry offset handed over by the
   previous block (then the guess's walk is the true walk); otherwise the block is walked again from
   the true entry. So every row start accepted is reached from the first row by walking whole rows: a
   byte pattern that merely looks like a row can never be accepted. The chain also yields each
   block's first row number (a prefix sum of row counts) and finds the first malformed row.
3. :func:`row_starts_kernel` writes every row's offset, :func:`fields_kernel` every field's payload
   offset and length (column-major), and the per-column kernels decode values into Arrow layouts.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

# Walk and chain status codes (shared with parquetry.gpu.decode).
ST_OK = 0
ST_FIELD_COUNT = 1  # a row's field count is not the number of columns
ST_BAD_LENGTH = 2  # a field length below -1
ST_PAST_END = 3  # a row or field runs past the end of the data
ST_EARLY_TRAILER = 4  # the -1 trailer appears before the end of the stream

# Per-value error codes, packed into ``err[col] = min(row * 16 + code)``.
E_WIDTH = 1  # a fixed-width field with the wrong length
E_RANGE = 2  # a date/timestamp/interval that does not fit the Arrow type (e.g. +-infinity)
E_NUMERIC_NAN = 3
E_NUMERIC_INF = 4
E_NUMERIC_SIGN = 5  # an unknown sign word
E_NUMERIC_DIGIT = 6  # a base-10000 digit outside 0..9999
E_NUMERIC_PRECISION = 7  # more integer digits than the decimal's precision
E_NUMERIC_SCALE = 8  # non-zero digits beyond the decimal's scale
E_JSONB_VERSION = 9  # a jsonb value whose version byte is not 1
E_NUMERIC_LENGTH = 10  # a numeric whose length disagrees with its digit count (or negative dscale)
E_BOOL = 11  # a boolean byte other than 0 or 1
E_UTF8 = 12  # a text value that is not well-formed UTF-8
ERR_NONE = np.iinfo(np.int64).max

MASK32 = 0xFFFFFFFF
TWO32 = 1 << 32
# PostgreSQL counts from 2000-01-01, Arrow from 1970-01-01.
PG_EPOCH_DAYS = 10957
PG_EPOCH_MICROS = PG_EPOCH_DAYS * 86_400 * 1_000_000
PG_EPOCH_MICROS_HI = PG_EPOCH_MICROS >> 32
PG_EPOCH_MICROS_LO = PG_EPOCH_MICROS & MASK32
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


# ----------------------------------------------------------------------------------------------- reads
@cuda.jit(device=True)
def be16s(buf, p):
    v = np.int64(buf[p]) * 256 + np.int64(buf[p + 1])
    if v >= 32768:
        v -= 65536
    return v


@cuda.jit(device=True)
def be16u(buf, p):
    return np.int64(buf[p]) * 256 + np.int64(buf[p + 1])


@cuda.jit(device=True)
def be32u(buf, p):
    return ((np.int64(buf[p]) * 256 + np.int64(buf[p + 1])) * 256 + np.int64(buf[p + 2])) * 256 + np.int64(
        buf[p + 3]
    )


@cuda.jit(device=True)
def be32s(buf, p):
    v = be32u(buf, p)
    if v >= 2147483648:
        v -= 4294967296
    return v


# ----------------------------------------------------------------------------------------- row walking
@cuda.jit(device=True)
def walk_row(buf, pos, limit, ncols):
    """Validate the row at ``pos``; return (offset after it, status, offset of the problem)."""
    if pos + 2 > limit:
        return pos, ST_PAST_END, pos
    n = be16s(buf, pos)
    if n == -1:
        return pos, ST_EARLY_TRAILER, pos
    if n != ncols:
        return pos, ST_FIELD_COUNT, pos
    p = pos + 2
    for _c in range(ncols):
        if p + 4 > limit:
            return pos, ST_PAST_END, p
        ln = be32s(buf, p)
        if ln < -1:
            return pos, ST_BAD_LENGTH, p
        if ln > 0:
            if p + 4 + ln > limit:
                return pos, ST_PAST_END, p
            p += ln
        p += 4
    return p, ST_OK, 0


@cuda.jit(device=True)
def walk_block(buf, entry, block_end, limit, ncols):
    """Walk whole rows from ``entry`` until an offset >= ``block_end``.

    Returns (exit offset, rows walked, status, offset of the problem).
    """
    pos = entry
    rows = 0
    while pos < block_end:
        nxt, st, errpos = walk_row(buf, pos, limit, ncols)
        if st != ST_OK:
            return pos, rows, st, errpos
        pos = nxt
        rows += 1
    return pos, rows, ST_OK, 0


@cuda.jit(device=True)
def looks_like_rows(buf, p, limit, ncols, confirm):
    """True when ``confirm`` well-formed rows (or the end of the data) follow ``p``. Only a guess."""
    pos = p
    for _i in range(confirm):
        if pos == limit:
            return True
        nxt, st, _e = walk_row(buf, pos, limit, ncols)
        if st != ST_OK:
            return False
        pos = nxt
    return True


@cuda.jit
def speculate_kernel(
    buf, data_start, limit, block_size, ncols, confirm, spec_entry, spec_exit, spec_rows, spec_status
):
    k = cuda.grid(1)
    if k >= spec_entry.size:
        return
    s = data_start + k * block_size
    e = min(s + block_size, limit)
    entry = -1
    if k == 0:
        entry = data_start
    else:
        for p in range(s, e):
            if looks_like_rows(buf, p, limit, ncols, confirm):
                entry = p
                break
    spec_entry[k] = entry
    if entry < 0:
        spec_exit[k] = -1
        spec_rows[k] = 0
        spec_status[k] = ST_OK
        return
    x, rows, st, _errpos = walk_block(buf, entry, e, limit, ncols)
    spec_exit[k] = x
    spec_rows[k] = rows
    spec_status[k] = st


_CHAIN_KERNELS: dict[int, object] = {}


def chain_kernel(tile: int):
    """The chaining kernel for a tile of ``tile`` blocks (launch it with one thread block of ``tile``).

    ``result`` receives [rows, status, offset of the problem, blocks walked again, final offset]; on an
    error, rows counts the good rows before the bad one and the final offset is the bad row's start.
    """
    if tile in _CHAIN_KERNELS:
        return _CHAIN_KERNELS[tile]

    @cuda.jit
    def _chain(
        buf,
        data_start,
        limit,
        block_size,
        ncols,
        spec_entry,
        spec_exit,
        spec_rows,
        spec_status,
        true_entry,
        row_base,
        result,
    ):
        tid = cuda.threadIdx.x
        sh_entry = cuda.shared.array(tile, np.int64)
        sh_exit = cuda.shared.array(tile, np.int64)
        sh_rows = cuda.shared.array(tile, np.int64)
        sh_status = cuda.shared.array(tile, np.int64)
        nb = spec_entry.size
        e = data_start
        total = 0
        status = 0
        errpos = 0
        rewalks = 0
        stopped = False
        for t0 in range(0, nb, tile):
            i = t0 + tid
            if i < nb:
                sh_entry[tid] = spec_entry[i]
                sh_exit[tid] = spec_exit[i]
                sh_rows[tid] = spec_rows[i]
                sh_status[tid] = spec_status[i]
            cuda.syncthreads()
            if tid == 0 and not stopped:
                for j in range(min(tile, nb - t0)):
                    k = t0 + j
                    block_end = min(data_start + (k + 1) * block_size, limit)
                    row_base[k] = total
                    if e >= block_end:
                        true_entry[k] = -1  # a row that started earlier covers this whole block
                        continue
                    true_entry[k] = e
                    if sh_entry[j] == e and sh_status[j] == ST_OK:
                        e = sh_exit[j]
                        total += sh_rows[j]
                    else:
                        rewalks += 1
                        x, rows, st, ep = walk_block(buf, e, block_end, limit, ncols)
                        if st != ST_OK:
                            status = st
                            errpos = ep
                            e = x  # the start of the bad row
                            total += rows  # rows before it
                            stopped = True
                            break
                        e = x
                        total += rows
            cuda.syncthreads()
        if tid == 0:
            result[0] = total
            result[1] = status
            result[2] = errpos
            result[3] = rewalks
            result[4] = e

    _CHAIN_KERNELS[tile] = _chain
    return _chain


@cuda.jit
def row_starts_kernel(buf, data_start, limit, block_size, ncols, true_entry, row_base, row_start):
    k = cuda.grid(1)
    if k >= true_entry.size:
        return
    pos = true_entry[k]
    if pos < 0:
        return
    block_end = min(data_start + (k + 1) * block_size, limit)
    r = row_base[k]
    while pos < block_end:
        row_start[r] = pos
        r += 1
        nxt, _st, _e = walk_row(buf, pos, limit, ncols)  # validated by the chain
        pos = nxt


@cuda.jit
def fields_kernel(buf, row_start, ncols, field_pos, field_len):
    """field_pos/field_len are column-major (col * nrows + row); field_pos is the payload offset."""
    r = cuda.grid(1)
    nrows = row_start.size
    if r >= nrows:
        return
    p = row_start[r] + 2
    for c in range(ncols):
        ln = be32s(buf, p)
        field_len[c * nrows + r] = ln
        field_pos[c * nrows + r] = p + 4
        p += 4
        if ln > 0:
            p += ln


# ------------------------------------------------------------------------------------------ validity
@cuda.jit
def validity_kernel(lens, bitmap, null_count):
    """Arrow validity bitmap (LSB first) from field lengths (-1 = NULL); counts NULLs."""
    i = cuda.grid(1)
    if i >= bitmap.size:
        return
    n = lens.size
    b = 0
    nulls = 0
    for j in range(8):
        r = i * 8 + j
        if r < n:
            if lens[r] >= 0:
                b |= 1 << j
            else:
                nulls += 1
    bitmap[i] = b
    if nulls:
        cuda.atomic.add(null_count, 0, nulls)


@cuda.jit
def pack_bits_kernel(values, bitmap):
    i = cuda.grid(1)
    if i >= bitmap.size:
        return
    n = values.size
    b = 0
    for j in range(8):
        r = i * 8 + j
        if r < n and values[r] != 0:
            b |= 1 << j
    bitmap[i] = b


# ------------------------------------------------------------------------------------ fixed-width values
@cuda.jit
def bool_kernel(buf, pos, lens, values, err, col):
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    values[r] = 0
    if ln == -1:
        return
    if ln != 1:
        cuda.atomic.min(err, col, r * 16 + E_WIDTH)
        return
    v = buf[pos[r]]
    if v > 1:
        cuda.atomic.min(err, col, r * 16 + E_BOOL)
        return
    values[r] = v


@cuda.jit
def swap_kernel(buf, pos, lens, width, out, err, col):
    """Big-endian -> little-endian copy of ``width``-byte values (ints, floats bit-exact, time)."""
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    o = r * width
    if ln != width:
        for i in range(width):
            out[o + i] = 0
        if ln != -1:
            cuda.atomic.min(err, col, r * 16 + E_WIDTH)
        return
    p = pos[r]
    for i in range(width):
        out[o + i] = buf[p + width - 1 - i]


@cuda.jit
def copy_kernel(buf, pos, lens, width, out, err, col):
    """Byte-for-byte copy of ``width``-byte values (uuid: network order is Arrow's order)."""
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    o = r * width
    if ln != width:
        for i in range(width):
            out[o + i] = 0
        if ln != -1:
            cuda.atomic.min(err, col, r * 16 + E_WIDTH)
        return
    p = pos[r]
    for i in range(width):
        out[o + i] = buf[p + i]


@cuda.jit
def date_kernel(buf, pos, lens, out, err, col):
    """int32 days since 2000-01-01 -> date32 days since 1970-01-01; +-infinity stay INT32_MAX/MIN."""
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    out[r] = 0
    if ln == -1:
        return
    if ln != 4:
        cuda.atomic.min(err, col, r * 16 + E_WIDTH)
        return
    v = be32s(buf, pos[r])
    if v == INT32_MAX or v == INT32_MIN:  # noqa: SIM109  +-infinity keep the extreme date32 values
        out[r] = v
        return
    v += PG_EPOCH_DAYS
    if v > INT32_MAX:
        cuda.atomic.min(err, col, r * 16 + E_RANGE)
        return
    out[r] = v


@cuda.jit
def timestamp_kernel(buf, pos, lens, out, err, col):
    """int64 microseconds since 2000-01-01 -> since 1970-01-01, as (low, high) uint32 words.

    +-infinity (INT64_MAX/MIN) are kept as they are; a finite value that would reach INT64_MAX is refused.
    """
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    out[2 * r] = 0
    out[2 * r + 1] = 0
    if ln == -1:
        return
    if ln != 8:
        cuda.atomic.min(err, col, r * 16 + E_WIDTH)
        return
    p = pos[r]
    hi = be32s(buf, p)
    lo = be32u(buf, p + 4)
    if (hi == INT32_MAX and lo == MASK32) or (hi == INT32_MIN and lo == 0):  # +-infinity kept as is
        out[2 * r] = lo
        out[2 * r + 1] = hi & MASK32
        return
    lo += PG_EPOCH_MICROS_LO
    carry = 0
    if lo >= TWO32:
        lo -= TWO32
        carry = 1
    hi = hi + PG_EPOCH_MICROS_HI + carry
    if hi > INT32_MAX or (hi == INT32_MAX and lo == MASK32):  # would read as +infinity
        cuda.atomic.min(err, col, r * 16 + E_RANGE)
        return
    out[2 * r] = lo
    out[2 * r + 1] = hi & MASK32


@cuda.jit
def interval_kernel(buf, pos, lens, out, err, col):
    """PostgreSQL interval (int64 us, int32 days, int32 months) -> Arrow month_day_nano (4 words)."""
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    for i in range(4):
        out[4 * r + i] = 0
    if ln == -1:
        return
    if ln != 16:
        cuda.atomic.min(err, col, r * 16 + E_WIDTH)
        return
    p = pos[r]
    hi = be32s(buf, p)
    lo = be32u(buf, p + 4)
    days = be32u(buf, p + 8)
    months = be32u(buf, p + 12)
    out[4 * r] = months
    out[4 * r + 1] = days
    if hi == INT32_MAX and lo == MASK32 and days == MASK32 >> 1 and months == MASK32 >> 1:
        out[4 * r + 2] = MASK32  # +infinity: nanoseconds INT64_MAX
        out[4 * r + 3] = MASK32 >> 1
        return
    if hi == INT32_MIN and lo == 0 and days == TWO32 >> 1 and months == TWO32 >> 1:
        out[4 * r + 2] = 0  # -infinity: nanoseconds INT64_MIN
        out[4 * r + 3] = TWO32 >> 1
        return
    t = lo * 1000
    lo2 = t & MASK32
    hi2 = hi * 1000 + (t >> 32)
    if hi2 > INT32_MAX or hi2 < INT32_MIN:
        out[4 * r] = 0
        out[4 * r + 1] = 0
        cuda.atomic.min(err, col, r * 16 + E_RANGE)
        return
    out[4 * r + 2] = lo2
    out[4 * r + 3] = hi2 & MASK32


@cuda.jit
def money_kernel(buf, pos, lens, out, err, col):
    """money (int64 in the smallest currency unit) -> decimal128(19, scale): sign-extended to 4 words."""
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    for i in range(4):
        out[4 * r + i] = 0
    if ln == -1:
        return
    if ln != 8:
        cuda.atomic.min(err, col, r * 16 + E_WIDTH)
        return
    p = pos[r]
    hi = be32s(buf, p)
    out[4 * r] = be32u(buf, p + 4)
    out[4 * r + 1] = hi & MASK32
    if hi < 0:
        out[4 * r + 2] = MASK32
        out[4 * r + 3] = MASK32


# ------------------------------------------------------------------------------------------- numeric
@cuda.jit(device=True)
def _mul_add(acc, m, a):
    """acc = acc * m + a on four 32-bit limbs; returns the carry out (non-zero = overflow)."""
    c = a
    for i in range(4):
        t = acc[i] * m + c
        acc[i] = t & MASK32
        c = t >> 32
    return c


@cuda.jit
def numeric_kernel(buf, pos, lens, scale, bound, out, err, col):
    """PostgreSQL numeric (base-10000 digits) -> decimal128(precision, scale) as 4 little-endian words.

    ``bound`` holds 10**precision as four 32-bit limbs: a magnitude at or above it is refused, and so
    is a value with non-zero digits beyond ``scale`` (never rounded), NaN and +-Infinity.
    """
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    for i in range(4):
        out[4 * r + i] = 0
    if ln == -1:
        return
    if ln < 8:
        cuda.atomic.min(err, col, r * 16 + E_NUMERIC_LENGTH)
        return
    p = pos[r]
    nd = be16s(buf, p)
    weight = be16s(buf, p + 2)
    sign = be16u(buf, p + 4)
    dscale = be16s(buf, p + 6)
    if nd < 0 or ln != 8 + 2 * nd or dscale < 0:
        cuda.atomic.min(err, col, r * 16 + E_NUMERIC_LENGTH)
        return
    if sign == 0xC000:
        cuda.atomic.min(err, col, r * 16 + E_NUMERIC_NAN)
        return
    if sign == 0xD000 or sign == 0xF000:
        cuda.atomic.min(err, col, r * 16 + E_NUMERIC_INF)
        return
    if sign != 0 and sign != 0x4000:
        cuda.atomic.min(err, col, r * 16 + E_NUMERIC_SIGN)
        return
    acc = cuda.local.array(4, np.int64)
    for i in range(4):
        acc[i] = 0
    # Digit i is worth d * 10**e in units of the decimal's last place, e = 4 * (weight - i) + scale.
    # Digits are folded in from the top; a digit reaching below the scale must have zeros there.
    e = 0
    for i in range(nd):
        d = be16s(buf, p + 8 + 2 * i)
        if d < 0 or d > 9999:
            cuda.atomic.min(err, col, r * 16 + E_NUMERIC_DIGIT)
            return
        e = 4 * (weight - i) + scale
        m = 10000
        if e <= -4:
            if d != 0:
                cuda.atomic.min(err, col, r * 16 + E_NUMERIC_SCALE)
                return
            continue
        if e < 0:
            q = 10
            m = 1000
            for _j in range(-e - 1):
                q *= 10
                m //= 10
            if d % q != 0:
                cuda.atomic.min(err, col, r * 16 + E_NUMERIC_SCALE)
                return
            d //= q
        if _mul_add(acc, m, d) != 0:
            cuda.atomic.min(err, col, r * 16 + E_NUMERIC_PRECISION)
            return
    if nd > 0 and e > 0:  # the last digit's units place is above the decimal's last place
        for _i in range(e):
            if _mul_add(acc, 10, 0) != 0:
                cuda.atomic.min(err, col, r * 16 + E_NUMERIC_PRECISION)
                return
    # magnitude < 10**precision, compared limb by limb from the top
    for j in range(4):
        i = 3 - j
        if acc[i] < bound[i]:
            break
        if acc[i] > bound[i] or i == 0:
            cuda.atomic.min(err, col, r * 16 + E_NUMERIC_PRECISION)
            return
    if sign == 0x4000:  # two's complement negation
        c = 1
        for i in range(4):
            t = (MASK32 - acc[i]) + c
            acc[i] = t & MASK32
            c = t >> 32
    for i in range(4):
        out[4 * r + i] = acc[i]


# ------------------------------------------------------------------------------ variable-width values
@cuda.jit
def varlen_sizes_kernel(buf, pos, lens, skip, sizes, err, col):
    """Output size of each value; ``skip`` = 1 drops jsonb's version byte (which must be 1)."""
    r = cuda.grid(1)
    if r >= lens.size:
        return
    ln = lens[r]
    if ln < 0 or (ln == 0 and skip == 0):
        sizes[r] = 0
        return
    if skip == 1 and (ln == 0 or buf[pos[r]] != 1):
        cuda.atomic.min(err, col, r * 16 + E_JSONB_VERSION)
        sizes[r] = 0
        return
    sizes[r] = ln - skip


@cuda.jit
def chunk_sums_kernel(values, chunk, sums):
    t = cuda.grid(1)
    if t >= sums.size:
        return
    s = 0
    start = t * chunk
    stop = min(start + chunk, values.size)
    for i in range(start, stop):
        s += values[i]
    sums[t] = s


@cuda.jit
def chunk_offsets_kernel(values, chunk, bases, offsets):
    """offsets[i + 1] = bases[chunk of i] + inclusive sum within the chunk; offsets[0] = 0."""
    t = cuda.grid(1)
    if t >= bases.size:
        return
    s = bases[t]
    start = t * chunk
    stop = min(start + chunk, values.size)
    if t == 0:
        offsets[0] = 0
    for i in range(start, stop):
        s += values[i]
        offsets[i + 1] = s


@cuda.jit
def gather_kernel(buf, pos, lens, skip, offsets, out):
    r = cuda.grid(1)
    if r >= lens.size:
        return
    o = offsets[r]
    n = offsets[r + 1] - o
    p = pos[r] + skip
    for i in range(n):
        out[o + i] = buf[p + i]


# ---------------------------------------------------------------------- sub-streams for the CPU hybrid
@cuda.jit
def substream_sizes_kernel(field_len, nrows, cols, sizes):
    """Bytes of each row of a COPY sub-stream holding only the columns in ``cols``."""
    r = cuda.grid(1)
    if r >= nrows:
        return
    s = 2
    for j in range(cols.size):
        ln = field_len[cols[j] * nrows + r]
        s += 4
        if ln > 0:
            s += ln
    sizes[r] = s


@cuda.jit
def substream_gather_kernel(buf, field_pos, field_len, nrows, cols, offsets, out):
    r = cuda.grid(1)
    if r >= nrows:
        return
    o = offsets[r]
    n = cols.size
    out[o] = (n >> 8) & 0xFF
    out[o + 1] = n & 0xFF
    o += 2
    for j in range(n):
        i = cols[j] * nrows + r
        p = field_pos[i]
        ln = field_len[i]
        for b in range(4):  # the length word, as sent
            out[o + b] = buf[p - 4 + b]
        o += 4
        for b in range(max(ln, 0)):
            out[o + b] = buf[p + b]
        o += max(ln, 0)


@cuda.jit
def utf8_kernel(data, offsets, err, col):
    """Flag the first value (by row) that is not well-formed UTF-8, as Arrow's full validation does."""
    r = cuda.grid(1)
    if r >= offsets.size - 1:
        return
    i = offsets[r]
    end = offsets[r + 1]
    while i < end:
        c = np.int64(data[i])
        if c < 0x80:
            i += 1
            continue
        n = 0
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif c == 0xE0:
            n = 2
            lo = 0xA0
        elif 0xE1 <= c <= 0xEC or 0xEE <= c <= 0xEF:
            n = 2
        elif c == 0xED:
            n = 2
            hi = 0x9F
        elif c == 0xF0:
            n = 3
            lo = 0x90
        elif 0xF1 <= c <= 0xF3:
            n = 3
        elif c == 0xF4:
            n = 3
            hi = 0x8F
        else:
            cuda.atomic.min(err, col, r * 16 + E_UTF8)
            return
        if i + n >= end:  # the sequence is cut by the end of the value
            cuda.atomic.min(err, col, r * 16 + E_UTF8)
            return
        c1 = np.int64(data[i + 1])
        if c1 < lo or c1 > hi:
            cuda.atomic.min(err, col, r * 16 + E_UTF8)
            return
        for j in range(2, n + 1):
            cj = np.int64(data[i + j])
            if cj < 0x80 or cj > 0xBF:
                cuda.atomic.min(err, col, r * 16 + E_UTF8)
                return
        i += n + 1
