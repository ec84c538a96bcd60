"""Value decoders: a set of field slices of one PostgreSQL type -> one Arrow array.

Every decoder takes the stream buffer and ``(offset, length)`` slices (length -1 = NULL), so a column of
rows, the elements of arrays, the bounds of ranges and the attributes of composites all go through the
same code; nested types recurse with the slices their own kernel found. The common types run entirely in
numba kernels or vectorized numpy; only inet/cidr and "char" format per value in Python (rare types whose
PostgreSQL text form has many special cases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from parquetry.pgcopy import kernels as K
from parquetry.pgcopy.errors import CopyFormatError
from parquetry.pgcopy.types import PgType, arrow_type, decimal_precision_scale, range_struct
from parquetry.storable import MONTH_DAY_NANO

# Days / microseconds between the PostgreSQL epoch (2000-01-01) and the Unix epoch (1970-01-01).
PG_EPOCH_DAYS = 10957
PG_EPOCH_US = 946_684_800_000_000
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
BLOCK_BYTES = 256 << 10  # input bytes per gather block: stays in L2 while every column is decoded


@dataclass(frozen=True)
class Context:
    """Where the slices come from, to name source, byte offset, row and column in errors.

    ``rows`` maps a slice index to its row within the batch (None: slice i is row i); ``first_row`` is
    the 1-based row number of batch row 0; ``base_offset`` the stream offset of ``buf[0]``.
    """

    source: str
    column: str
    first_row: int
    base_offset: int
    rows: np.ndarray | None = None

    def error(self, reason: str, index: int, offs: np.ndarray) -> CopyFormatError:
        row = int(self.rows[index]) if self.rows is not None else int(index)
        return CopyFormatError(
            reason,
            source=self.source,
            offset=self.base_offset + int(offs[index]),
            row=self.first_row + row,
            column=self.column,
        )

    def nested(self, rows: np.ndarray) -> Context:
        """The context of child slices whose parent slice indexes are ``rows``."""
        mapped = rows if self.rows is None else self.rows[rows]
        return Context(self.source, self.column, self.first_row, self.base_offset, mapped)


def _validity(lens: np.ndarray) -> tuple[pa.Buffer | None, int]:
    n = lens.shape[0]
    bitmap = np.zeros((n + 7) // 8, dtype=np.uint8)
    nulls = int(K.validity(lens, bitmap))
    return (pa.py_buffer(bitmap) if nulls else None), nulls


def _width_error(ctx: Context, t: PgType, lens, offs, bad: int, width: int) -> CopyFormatError:
    return ctx.error(f"{t.name} value of {int(lens[bad])} bytes, expected {width}", bad, offs)


def _fixed(buf, offs, lens, width: int, swap: bool, ctx: Context, t: PgType) -> np.ndarray:
    out = np.zeros(offs.shape[0] * width, dtype=np.uint8)
    bad = int(K.gather_fixed(buf, offs, lens, width, swap, out, 0, offs.shape[0]))
    if bad >= 0:
        raise _width_error(ctx, t, lens, offs, bad, width)
    return out


def _primitive(typ: pa.DataType, values: np.ndarray, lens: np.ndarray) -> pa.Array:
    validity, nulls = _validity(lens)
    return pa.Array.from_buffers(typ, len(lens), [validity, pa.py_buffer(values)], null_count=nulls)


def _var_array(typ, offsets, data, lens, ctx: Context, offs, t: PgType) -> pa.Array:
    validity, nulls = _validity(lens)
    arr = pa.Array.from_buffers(
        typ, len(lens), [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls
    )
    if typ == pa.string():
        try:
            arr.validate(full=True)
        except pa.ArrowInvalid as exc:
            bad = _first_invalid_utf8(arr)
            raise ctx.error(
                f"{t.name} value is not valid UTF-8 (set client_encoding to UTF8): {exc}", bad, offs
            ) from None
    return arr


def _first_invalid_utf8(arr: pa.Array) -> int:
    binary = arr.view(pa.binary())
    for i, v in enumerate(binary.to_pylist()):
        if v is not None:
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                return i
    return 0


def _fused_kind(t: PgType) -> tuple[int, int, int, int] | None:
    """(kind, width or skip, param, scale) for the one-pass gather, or None for other decoders."""
    if t.kind == "enum":
        return K.COL_VAR, 0, 0, 0
    if t.kind != "scalar":
        return None
    c = t.codec
    if c in _FIXED:
        width, swap, _ = _FIXED[c]
        return (K.COL_BE if swap else K.COL_RAW), width, 0, 0
    if c == "bool":
        return K.COL_BOOL, 1, 0, 0
    if c in _TEXT_CODECS or c == "bytea":
        return K.COL_VAR, 0, 0, 0
    if c == "jsonb":
        return K.COL_VAR, 1, 0, 0
    if c == "numeric":
        ps = decimal_precision_scale(t)
        if ps is not None:
            return K.COL_DEC, (16 if ps[0] <= 38 else 32), ps[0], ps[1]
    return None


def _align(n: int) -> int:
    return (n + 63) & ~63


def decode_columns(
    buf: np.ndarray,
    offs: np.ndarray,
    lens: np.ndarray,
    n: int,
    types: list[PgType],
    contexts: list[Context],
) -> list[pa.Array]:
    """Decode the first ``n`` rows of every column; ``offs``/``lens`` are indexed ``[column, row]``.

    The common scalar types are decoded together by ``kernels.gather_columns`` (cache-sized blocks of
    rows) into one zeroed arena; the other columns go through ``decode_values`` one by one.
    """
    ncols = len(types)
    col_offs = [offs[j, :n] for j in range(ncols)]
    col_lens = [lens[j, :n] for j in range(ncols)]
    fused = [(j, k) for j in range(ncols) if (k := _fused_kind(types[j])) is not None]
    out: list[pa.Array | None] = [None] * ncols
    if fused:
        cols = np.array([j for j, _ in fused], dtype=np.int64)
        kinds = np.array([k[0] for _, k in fused], dtype=np.int64)
        widths = np.array([k[1] for _, k in fused], dtype=np.int64)
        params = np.array([k[2] for _, k in fused], dtype=np.int64)
        scales = np.array([k[3] for _, k in fused], dtype=np.int64)
        var_idx = [i for i, (_, k) in enumerate(fused) if k[0] == K.COL_VAR]
        var_offsets = np.zeros((max(1, len(var_idx)), n + 1), dtype=np.int64)
        if var_idx:
            bad_row, bad_k = K.var_offsets_all(lens, n, cols[var_idx], widths[var_idx], var_offsets)
            if bad_row >= 0:
                j = int(cols[var_idx[bad_k]])
                raise contexts[j].error(
                    f"{types[j].name} value shorter than its 1-byte header", int(bad_row), col_offs[j]
                )
            for v, i in enumerate(var_idx):
                params[i] = v
        sizes = []
        for i, (_, (kind, width, _, _)) in enumerate(fused):
            if kind == K.COL_VAR:
                total = int(var_offsets[params[i], n])
                if total > INT32_MAX:
                    j = int(cols[i])
                    raise contexts[j].error(
                        "more than 2 GiB of data in one column of one batch; lower batch_rows", 0, col_offs[j]
                    )
                sizes.append(total)
            elif kind == K.COL_BOOL:
                sizes.append((n + 7) // 8)
            else:
                sizes.append(n * width)
        bases = np.zeros(len(fused), dtype=np.int64)
        pos = 0
        for i, size in enumerate(sizes):
            bases[i] = pos
            pos += _align(size)
        arena = np.zeros(max(pos, 8), dtype=np.uint8)
        in_bytes = int(offs[:, n - 1].max() - offs[:, 0].min()) if n else 0
        block = max(64, BLOCK_BYTES * n // max(1, in_bytes))
        st, row, k, detail = K.gather_columns(
            buf, offs, lens, n, cols, kinds, widths, bases, params, scales, var_offsets, arena,
            arena.view(np.uint64), block,
        )  # fmt: skip
        if st != 0:
            j = int(cols[k])
            t, ctx, o, ln = types[j], contexts[j], col_offs[j], col_lens[j]
            if st == K.GATHER_BAD_WIDTH:
                raise _width_error(ctx, t, ln, o, int(row), int(widths[k]))
            if st == K.GATHER_BAD_BOOL:
                raise ctx.error(f"boolean value of {int(detail)} bytes or not 0/1", int(row), o)
            if st == K.GATHER_BAD_VERSION:
                raise ctx.error(f"{t.name} value without the version byte 1", int(row), o)
            raise ctx.error(_NUMERIC_ERRORS[int(detail)].format(typ=arrow_type(t)), int(row), o)
        for i, (j, (kind, _, _, _)) in enumerate(fused):
            t, ctx, o, ln = types[j], contexts[j], col_offs[j], col_lens[j]
            region = arena[bases[i] : bases[i] + sizes[i]]
            if kind == K.COL_VAR:
                typ = pa.binary() if t.codec == "bytea" else pa.string()
                offsets = var_offsets[params[i]].astype(np.int32)
                out[j] = _var_array(typ, offsets, region, ln, ctx, o, t)
            elif kind == K.COL_BOOL:
                out[j] = _primitive(pa.bool_(), region, ln)
            elif kind == K.COL_DEC:
                out[j] = _primitive(arrow_type(t), region, ln)
            else:
                out[j] = _FIXED[t.codec][2](region, ln, t, ctx, o)
    return [
        a if a is not None else decode_values(buf, col_offs[j], col_lens[j], types[j], contexts[j])
        for j, a in enumerate(out)
    ]


def decode_values(buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, t: PgType, ctx: Context) -> pa.Array:
    """Decode the slices ``(offs[i], lens[i])`` of ``buf`` holding values of type ``t``."""
    if _fused_kind(t) is not None:
        return decode_columns(buf, offs.reshape(1, -1), lens.reshape(1, -1), offs.shape[0], [t], [ctx])[0]
    kind = t.kind
    if kind == "array":
        return _array(buf, offs, lens, t, ctx)
    if kind == "range":
        return _range(buf, offs, lens, t, ctx)
    if kind == "multirange":
        return _multirange(buf, offs, lens, t, ctx)
    if kind == "composite":
        return _composite(buf, offs, lens, t, ctx)
    decoder = _SCALARS.get(t.codec)
    if decoder is None:
        raise ctx.error(f"no decoder for PostgreSQL type {t.name}", 0, offs)
    return decoder(buf, offs, lens, t, ctx)


# --- scalars ------------------------------------------------------------------------------------
# Post-processing of fixed-width values: ``raw`` holds n*width bytes (byte-swapped to little-endian
# where the table below says so), NULL slots zero.


def _plain(typ: pa.DataType):
    def post(raw, lens, t, ctx, offs):
        return _primitive(typ, raw, lens)

    return post


def _date(raw, lens, t, ctx, offs):
    days = raw.view(np.int32)
    out = days.astype(np.int64) + PG_EPOCH_DAYS
    # +-infinity (INT32 max/min in PostgreSQL) keep the extreme date32 values; no finite date reaches them.
    out[days == INT32_MAX] = INT32_MAX
    out[days == INT32_MIN] = INT32_MIN
    out[lens < 0] = 0
    return _primitive(pa.date32(), out.astype(np.int32), lens)


def _timestamp(raw, lens, t, ctx, offs):
    us = raw.view(np.int64)
    pos_inf = us == INT64_MAX
    neg_inf = us == INT64_MIN
    too_big = (us >= INT64_MAX - PG_EPOCH_US) & ~pos_inf & (lens >= 0)
    if too_big.any():
        bad = int(np.flatnonzero(too_big)[0])
        raise ctx.error(
            f"{t.name} value {int(us[bad])} us after 2000-01-01 is beyond the Arrow int64 microsecond range "
            "(after 294247-01-10)",
            bad,
            offs,
        )
    out = np.where(pos_inf | neg_inf | (lens < 0), us, us + PG_EPOCH_US)
    return _primitive(arrow_type(t), out, lens)


def _timetz(raw, lens, t, ctx, offs):
    raw = raw.reshape(-1, 12)
    us = raw[:, :8].copy().view(">i8").astype(np.int64).ravel()
    zone_west = raw[:, 8:].copy().view(">i4").astype(np.int32).ravel()
    # PostgreSQL keeps the zone in seconds WEST of UTC; offset_s is the ISO 8601 offset (east positive).
    offset = np.negative(zone_west)
    children = [pa.array(us, pa.time64("us")), pa.array(offset, pa.int32())]
    return _struct(arrow_type(t), children, lens)


def _struct(typ: pa.StructType, children: list[pa.Array], lens: np.ndarray) -> pa.Array:
    validity, nulls = _validity(lens)
    return pa.StructArray.from_buffers(typ, len(lens), [validity], null_count=nulls, children=children)


def _interval(raw, lens, t, ctx, offs):
    raw = raw.reshape(-1, 16)
    us = raw[:, :8].copy().view(">i8").astype(np.int64).ravel()
    days = raw[:, 8:12].copy().view(">i4").astype(np.int32).ravel()
    months = raw[:, 12:].copy().view(">i4").astype(np.int32).ravel()
    pos_inf = (us == INT64_MAX) & (days == INT32_MAX) & (months == INT32_MAX)
    neg_inf = (us == INT64_MIN) & (days == INT32_MIN) & (months == INT32_MIN)
    limit = INT64_MAX // 1000
    overflow = ((us > limit) | (us < -limit)) & ~pos_inf & ~neg_inf & (lens >= 0)
    if overflow.any():
        bad = int(np.flatnonzero(overflow)[0])
        raise ctx.error(
            f"interval time part of {int(us[bad])} us does not fit Arrow's int64 nanoseconds", bad, offs
        )
    out = np.zeros(len(lens), dtype=MONTH_DAY_NANO)
    out["months"] = months
    out["days"] = days
    # +-infinity keeps every part at its extreme; no finite interval has INT64_MAX/MIN nanoseconds.
    out["nanoseconds"] = np.where(pos_inf, INT64_MAX, np.where(neg_inf, INT64_MIN, us * 1000))
    return _primitive(pa.month_day_nano_interval(), out.view(np.uint8), lens)


def _money(raw, lens, t, ctx, offs):
    cents = raw.view(np.int64)
    words = np.empty((len(lens), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63
    return _primitive(arrow_type(t), words.view(np.uint8).ravel(), lens)


# codec -> (width, byte-swap, post-processing)
_FIXED = {
    "int2": (2, True, _plain(pa.int16())),
    "int4": (4, True, _plain(pa.int32())),
    "int8": (8, True, _plain(pa.int64())),
    "oid": (4, True, _plain(pa.uint32())),
    "float4": (4, True, _plain(pa.float32())),
    "float8": (8, True, _plain(pa.float64())),
    "date": (4, True, _date),
    "timestamp": (8, True, _timestamp),
    "timestamptz": (8, True, _timestamp),
    "time": (8, True, _plain(pa.time64("us"))),
    "timetz": (12, False, _timetz),
    "interval": (16, False, _interval),
    "uuid": (16, False, _plain(pa.binary(16))),
    "money": (8, True, _money),
}
_TEXT_CODECS = frozenset({"text", "varchar", "bpchar", "name", "json", "xml"})


_NUMERIC_ERRORS = {
    K.NUM_BAD_LENGTH: "numeric value with a length that does not match its digit count",
    K.NUM_NAN: "numeric NaN cannot be stored in {typ}; cast the column to text or float8 in the query",
    K.NUM_INF: "numeric Infinity cannot be stored in {typ}; cast the column to text or float8 in the query",
    K.NUM_TOO_MANY_DIGITS: "numeric value has more significant digits than {typ} allows",
    K.NUM_SCALE_EXCEEDED: "numeric value has more fractional digits than {typ} allows",
    K.NUM_BAD_SIGN: "numeric value with an unknown sign word",
    K.NUM_BAD_DIGIT: "numeric value with a base-10000 digit outside 0..9999",
}


def _numeric_text(buf, offs, lens, t, ctx):
    """Unconstrained numeric (and scales Arrow cannot hold): the exact text numeric_out prints."""
    offsets = np.empty(offs.shape[0] + 1, dtype=np.int64)
    st, bad = K.numeric_text_lengths(buf, offs, lens, offsets)
    if st != K.NUM_OK:
        raise ctx.error(_NUMERIC_ERRORS[st].format(typ="text"), int(bad), offs)
    if offsets[-1] > INT32_MAX:
        raise ctx.error("more than 2 GiB of numeric text in one batch; lower batch_rows", 0, offs)
    data = np.zeros(int(offsets[-1]), dtype=np.uint8)
    K.numeric_text(buf, offs, lens, offsets, data)
    return _var_array(pa.string(), offsets.astype(np.int32), data, lens, ctx, offs, t)


_CHAR_TEXT = np.array(
    ["" if b == 0 else chr(b) if b < 0x80 else f"\\{b:03o}" for b in range(256)], dtype=object
)


def _char(buf, offs, lens, t, ctx):
    raw = _fixed(buf, offs, lens, 1, False, ctx, t)
    return pa.array(_CHAR_TEXT[raw], pa.string(), mask=lens < 0)


def _bits(buf, offs, lens, t, ctx):
    offsets = np.empty(offs.shape[0] + 1, dtype=np.int64)
    bad = int(K.bits_lengths(buf, offs, lens, offsets))
    if bad >= 0:
        raise ctx.error(f"{t.name} value whose bit count does not match its length", bad, offs)
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    K.bits_text(buf, offs, lens, offsets, data)
    return _var_array(pa.string(), offsets.astype(np.int32), data, lens, ctx, offs, t)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _macaddr(width: int):
    def decode(buf, offs, lens, t, ctx):
        raw = _fixed(buf, offs, lens, width, False, ctx, t).reshape(-1, width)
        valid = lens >= 0
        raw = raw[valid]
        text_width = 3 * width - 1
        chars = np.full((raw.shape[0], text_width), ord(":"), dtype=np.uint8)
        chars[:, 0::3] = _HEX[raw >> 4]
        chars[:, 1::3] = _HEX[raw & 15]
        offsets = np.zeros(len(lens) + 1, dtype=np.int32)
        np.cumsum(valid * text_width, out=offsets[1:])
        return _var_array(pa.string(), offsets, chars.ravel(), lens, ctx, offs, t)

    return decode


def _inet(buf, offs, lens, t, ctx):
    out: list[str | None] = []
    for i in range(offs.shape[0]):
        ln = int(lens[i])
        if ln < 0:
            out.append(None)
            continue
        o = int(offs[i])
        value = bytes(buf[o : o + ln])
        text = format_inet(value) if ln >= 4 else None
        if text is None:
            raise ctx.error(f"malformed {t.name} value", i, offs)
        out.append(text)
    return pa.array(out, pa.string())


def format_inet(value: bytes) -> str | None:
    """PostgreSQL's inet/cidr text (network_out): inet omits /32 and /128, cidr always shows the mask."""
    family, bits, is_cidr, nb = value[0], value[1], value[2], value[3]
    addr = value[4:]
    if len(addr) != nb or family not in (2, 3) or nb != (4 if family == 2 else 16):
        return None
    if family == 2:
        text = ".".join(str(b) for b in addr)
        if bits != 32:
            text += f"/{bits}"
    else:
        text = _ipv6_text(addr)
        if bits != 128:
            text += f"/{bits}"
    if is_cidr and "/" not in text:
        text += f"/{bits}"
    return text


def _ipv6_text(src: bytes) -> str:
    """inet_net_ntop_ipv6 of PostgreSQL: longest zero run (>= 2 words) as '::', embedded IPv4 forms."""
    words = [(src[2 * i] << 8) | src[2 * i + 1] for i in range(8)]
    best_base, best_len, cur_base, cur_len = -1, 0, -1, 0
    for i, w in enumerate(words):
        if w == 0:
            if cur_base == -1:
                cur_base, cur_len = i, 1
            else:
                cur_len += 1
        elif cur_base != -1:
            if best_base == -1 or cur_len > best_len:
                best_base, best_len = cur_base, cur_len
            cur_base = -1
    if cur_base != -1 and (best_base == -1 or cur_len > best_len):
        best_base, best_len = cur_base, cur_len
    if best_base != -1 and best_len < 2:
        best_base = -1
    parts: list[str] = []
    for i in range(8):
        if best_base != -1 and best_base <= i < best_base + best_len:
            if i == best_base:
                parts.append(":")
            continue
        if i != 0:
            parts.append(":")
        if (
            i == 6
            and best_base == 0
            and (best_len == 6 or (best_len == 7 and words[7] != 1) or (best_len == 5 and words[5] == 0xFFFF))
        ):
            parts.append(".".join(str(b) for b in src[12:]))
            break
        parts.append(f"{words[i]:x}")
    if best_base != -1 and best_base + best_len == 8:
        parts.append(":")
    return "".join(parts)


_SCALARS = {
    "numeric": _numeric_text,
    "char": _char,
    "bit": _bits,
    "varbit": _bits,
    "macaddr": _macaddr(6),
    "macaddr8": _macaddr(8),
    "inet": _inet,
    "cidr": _inet,
}


# --- nested -------------------------------------------------------------------------------------

_NEST_ERRORS = {
    K.NEST_TRUNCATED: "{name} value is truncated or has a bad element length",
    K.NEST_BAD_NDIM: "{name} value has {detail} dimensions but the column declares {ndims}; "
    "declare the column with matching dimensions (e.g. int[][]) or reshape in the query",
    K.NEST_LOWER_BOUND: "{name} value has lower bound {detail}; only lower bound 1 maps to a list "
    "(use array_lower()/array_upper() or a slice in the query)",
    K.NEST_BAD_FLAGS: "{name} value with unknown flags {detail}",
    K.NEST_TRAILING: "{name} value has bytes after its last element",
    K.NEST_BAD_COUNT: "{name} value with an unexpected attribute count",
}


def _nest_error(st: int, bad: int, t: PgType, ctx: Context, offs, detail: int = 0) -> CopyFormatError:
    reason = _NEST_ERRORS[st].format(name=t.name, detail=detail, ndims=t.ndims)
    return ctx.error(reason, bad, offs)


def _array(buf, offs, lens, t, ctx):
    assert t.element is not None
    ndims = t.ndims
    level_counts = np.zeros(ndims, dtype=np.int64)
    st, bad, elems, detail = K.array_count(buf, offs, lens, ndims, level_counts)
    if st != K.NEST_OK:
        raise _nest_error(st, bad, t, ctx, offs, detail)
    bases = np.zeros(ndims, dtype=np.int64)
    bases[1:] = np.cumsum(level_counts + 1)[:-1]
    level_offsets = np.zeros(int((level_counts + 1).sum()), dtype=np.int32)
    elem_offs = np.zeros(elems, dtype=np.int64)
    elem_lens = np.zeros(elems, dtype=np.int32)
    elem_rows = np.zeros(elems, dtype=np.int64)
    K.array_fill(buf, offs, lens, ndims, bases, level_offsets, elem_offs, elem_lens, elem_rows)
    child = decode_values(buf, elem_offs, elem_lens, t.element, ctx.nested(elem_rows))
    for lv in range(ndims - 1, -1, -1):
        count = int(level_counts[lv])
        lo = int(bases[lv])
        offsets = level_offsets[lo : lo + count + 1].copy()
        validity, nulls = _validity(lens) if lv == 0 else (None, 0)
        child = pa.Array.from_buffers(
            pa.list_(child.type), count, [validity, pa.py_buffer(offsets)], null_count=nulls, children=[child]
        )
    return child


def _range(buf, offs, lens, t, ctx):
    assert t.element is not None
    n = offs.shape[0]
    flags = np.zeros(n, dtype=np.uint8)
    lo_offs = np.zeros(n, dtype=np.int64)
    lo_lens = np.zeros(n, dtype=np.int32)
    hi_offs = np.zeros(n, dtype=np.int64)
    hi_lens = np.zeros(n, dtype=np.int32)
    st, bad = K.range_scan(buf, offs, lens, flags, lo_offs, lo_lens, hi_offs, hi_lens)
    if st != K.NEST_OK:
        raise _nest_error(st, int(bad), t, ctx, offs, int(flags[bad]))
    lower = decode_values(buf, lo_offs, lo_lens, t.element, ctx)
    upper = decode_values(buf, hi_offs, hi_lens, t.element, ctx)
    children = [
        lower,
        upper,
        pa.array((flags & K.RANGE_LB_INC) != 0, pa.bool_()),
        pa.array((flags & K.RANGE_UB_INC) != 0, pa.bool_()),
        pa.array((flags & K.RANGE_EMPTY) != 0, pa.bool_()),
    ]
    return _struct(range_struct(lower.type), children, lens)


def _items(buf, offs, lens, t, ctx, with_oid: bool, expect: int):
    counts = np.zeros(offs.shape[0], dtype=np.int64)
    st, bad, total = K.items_count(buf, offs, lens, with_oid, expect, counts)
    if st != K.NEST_OK:
        raise _nest_error(st, int(bad), t, ctx, offs)
    item_offs = np.zeros(total, dtype=np.int64)
    item_lens = np.zeros(total, dtype=np.int32)
    item_rows = np.zeros(total, dtype=np.int64)
    K.items_fill(buf, offs, lens, with_oid, item_offs, item_lens, item_rows)
    return counts, item_offs, item_lens, item_rows


def _multirange(buf, offs, lens, t, ctx):
    assert t.element is not None
    counts, item_offs, item_lens, item_rows = _items(buf, offs, lens, t, ctx, False, -1)
    child = decode_values(buf, item_offs, item_lens, t.element, ctx.nested(item_rows))
    offsets = np.zeros(len(lens) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    validity, nulls = _validity(lens)
    return pa.Array.from_buffers(
        pa.list_(child.type), len(lens), [validity, pa.py_buffer(offsets)], null_count=nulls, children=[child]
    )


def _composite(buf, offs, lens, t, ctx):
    nf = len(t.fields)
    counts, item_offs, item_lens, _ = _items(buf, offs, lens, t, ctx, True, nf)
    n = len(lens)
    starts = np.zeros(n, dtype=np.int64)
    if n:
        starts[1:] = np.cumsum(counts)[:-1]
    valid = lens >= 0
    children = []
    for j, f in enumerate(t.fields):
        idx = np.where(valid, starts + j, 0)
        f_offs = item_offs[idx] if len(item_offs) else np.zeros(n, np.int64)
        f_lens = np.where(valid, item_lens[idx] if len(item_lens) else -1, -1).astype(np.int32)
        sub = Context(ctx.source, f"{ctx.column}.{f.name}", ctx.first_row, ctx.base_offset, ctx.rows)
        children.append(decode_values(buf, np.ascontiguousarray(f_offs), f_lens, f.type, sub))
    return _struct(arrow_type(t), children, lens)
