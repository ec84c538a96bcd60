"""Columnar decoding of all records of one type at once, for types made of fixed fields and C*n.

Summary records (TSR, HBR, SBR, PCR) can number thousands per file (a TSR per test and site on the
V93000), and so can DTR and PMR; decoding them one by one in Python would cost more than all the PTRs
together. One numba pass walks every record of the chunk and notes, per field, whether it is present,
its raw bits (numbers) or its place in the buffer (strings); the columns are then built from those
arrays. Semantics are those of ``decode.decode_record``: an omitted field is null, and a field cut
part-way by REC_LEN is null with every field after it, and is reported.

``json_texts`` renders the same fields as one JSON object per record (the ``fields`` column of
``records_other``), byte for byte what ``json.dumps`` writes for the dict ``decode_record`` returns.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from parquetry.stdf.spec import RecordType
from parquetry.stdf.tables import strings_from

_NUM = {
    "U1": (1, np.uint8), "U2": (2, np.uint16), "U4": (4, np.uint32), "U8": (8, np.uint64),
    "I1": (1, np.int8), "I2": (2, np.int16), "I4": (4, np.int32), "I8": (8, np.int64),
    "R4": (4, np.float32), "R8": (8, np.float64), "B1": (1, np.uint8),
}  # fmt: skip
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_SIGNED = {"I1", "I2", "I4", "I8"}

K_NUM = 0
K_C1 = 1
K_CN = 2


def supported(rec: RecordType) -> bool:
    return all(f.count is None and (f.type in _NUM or f.type in ("C1", "Cn")) for f in rec.fields)


def _layout(rec: RecordType) -> tuple[np.ndarray, np.ndarray]:
    kinds = np.array(
        [K_CN if f.type == "Cn" else K_C1 if f.type == "C1" else K_NUM for f in rec.fields], np.int64
    )
    sizes = np.array([_NUM[f.type][0] if f.type in _NUM else 1 for f in rec.fields], np.int64)
    return kinds, sizes


def _fields_impl(buf, offs, lens, big, kinds, sizes, bits, soff, slen, partial):
    """Walk every record once. ``slen[i, f]``: -1 field absent, else 0 (number) or the text length;
    ``bits[i, f]``: a number's raw bits (file byte order undone); ``soff``: where a text starts.
    Returns the count of records with a field cut part-way by REC_LEN."""
    n = offs.shape[0]
    nf = kinds.shape[0]
    cut = 0
    for i in range(n):
        pos = offs[i] + 4
        end = pos + lens[i]
        alive = True
        partial[i] = False
        for f in range(nf):
            slen[i, f] = -1
            bits[i, f] = 0
            soff[i, f] = 0
            if not alive:
                continue
            if pos >= end:
                alive = False
                continue
            k = kinds[f]
            if k == K_CN:
                ln = np.int64(buf[pos])
                if pos + 1 + ln > end:
                    alive = False
                    partial[i] = True
                    continue
                soff[i, f] = pos + 1
                slen[i, f] = ln
                pos += 1 + ln
            else:
                size = sizes[f]
                if pos + size > end:
                    alive = False
                    partial[i] = True
                    continue
                if k == K_C1:
                    soff[i, f] = pos
                    slen[i, f] = 1
                else:
                    v = np.uint64(0)
                    for j in range(size):
                        b = np.uint64(buf[pos + (size - 1 - j if not big else j)])
                        v = (v << np.uint64(8)) | b
                    bits[i, f] = v
                    slen[i, f] = 0
                pos += size
        if partial[i]:
            cut += 1
    return cut


def _digits(m):
    d = 1
    while m >= np.uint64(10):
        m = m // np.uint64(10)
        d += 1
    return d


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8).copy()


def _escape_tables() -> tuple[np.ndarray, np.ndarray]:
    """Every Latin-1 byte as ``json.dumps`` writes it inside a string (taken from json itself)."""
    import json

    esc = np.zeros((256, 6), np.uint8)
    esc_n = np.zeros(256, np.int64)
    for b in range(256):
        text = json.encoder.encode_basestring_ascii(chr(b))[1:-1].encode("ascii")
        esc[b, : len(text)] = np.frombuffer(text, np.uint8)
        esc_n[b] = len(text)
    return esc, esc_n


_ESC, _ESC_N = _escape_tables()


def _magnitude(v, size, signed):
    """(|value|, negative) of raw bits ``v`` of a ``size``-byte integer."""
    if signed:
        shift = np.uint64(64 - 8 * size)
        s = np.int64(v << shift) >> np.int64(shift)
        if s < 0:
            return np.uint64(-(s + 1)) + np.uint64(1), True
        return np.uint64(s), False
    return v, False


def _json_impl(buf, kinds, sizes, signed, keys, key_off, bits, soff, slen, esc, esc_n):
    """One JSON object per record: ``{"NAME": value, ...}`` over the present fields, in field order.

    Strings are escaped as ``json.dumps`` does by default (ensure_ascii): a Latin-1 byte outside
    printable ASCII becomes ``\\u00XX`` (lower-case hex), quote, backslash and the five C escapes
    their two-character forms. Returns (int32 offsets, UTF-8 bytes).
    """
    nf = kinds.shape[0]
    n = slen.shape[0]
    out_off = np.empty(n + 1, np.int32)
    total = 0
    for i in range(n):
        out_off[i] = total
        total += 2
        first = True
        for f in range(nf):
            ln = slen[i, f]
            if ln < 0:
                continue
            if not first:
                total += 2
            first = False
            total += key_off[f + 1] - key_off[f]
            if kinds[f] == K_NUM:
                m, neg = _magnitude(bits[i, f], sizes[f], signed[f])
                total += _digits(m) + (1 if neg else 0)
            else:
                total += 2
                o = soff[i, f]
                for j in range(ln):
                    total += esc_n[buf[o + j]]
    out_off[n] = total
    data = np.empty(total, np.uint8)
    w = 0
    for i in range(n):
        data[w] = 123  # {
        w += 1
        first = True
        for f in range(nf):
            ln = slen[i, f]
            if ln < 0:
                continue
            if not first:
                data[w] = 44  # ,
                data[w + 1] = 32
                w += 2
            first = False
            for j in range(key_off[f], key_off[f + 1]):
                data[w] = keys[j]
                w += 1
            if kinds[f] == K_NUM:
                m, neg = _magnitude(bits[i, f], sizes[f], signed[f])
                if neg:
                    data[w] = 45  # -
                    w += 1
                d = _digits(m)
                for j in range(d - 1, -1, -1):
                    data[w + j] = 48 + np.uint8(m % np.uint64(10))
                    m = m // np.uint64(10)
                w += d
            else:
                data[w] = 34
                w += 1
                o = soff[i, f]
                for j in range(ln):
                    b = buf[o + j]
                    k = esc_n[b]
                    if k == 1:
                        data[w] = b
                    else:
                        for q in range(k):
                            data[w + q] = esc[b, q]
                    w += k
                data[w] = 34
                w += 1
        data[w] = 125  # }
        w += 1
    return out_off, data


# GDR item type codes (``decode.VN_TYPES``) -> (name, bytes of a fixed value, signed); -1: not fixed
_GDR_NAMES = np.frombuffer(b"B0U1U2U4I1I2I4R4R8??CnBnDnN1", np.uint8).copy()
_GDR_SIZE = np.array([0, 1, 2, 4, 1, 2, 4, 4, 8, -1, -1, -1, -1, 1], np.int64)
GDR_OK = 0
GDR_PARTIAL = 1  # an item cut part-way by REC_LEN: GEN_DATA is left out, as decode_record does
GDR_PYTHON = 2  # a float item (needs Python's shortest repr) or an undefined type code: decoded in Python


def _emit(data, w, b, write):
    if write:
        data[w] = b
    return w + 1


def _emit_uint(data, w, m, write):
    d = _digits(m)
    if write:
        for j in range(d - 1, -1, -1):
            data[w + j] = 48 + np.uint8(m % np.uint64(10))
            m = m // np.uint64(10)
    return w + d


def _emit_text(data, w, buf, o, ln, write, esc, esc_n):
    w = _emit(data, w, 34, write)
    for j in range(ln):
        b = buf[o + j]
        k = esc_n[b]
        if write:
            if k == 1:
                data[w] = b
            else:
                for q in range(k):
                    data[w + q] = esc[b, q]
        w += k
    return _emit(data, w, 34, write)


def _emit_hex(data, w, buf, o, ln, write, hexd):
    w = _emit(data, w, 34, write)
    for j in range(ln):
        b = buf[o + j]
        w = _emit(data, w, hexd[b >> 4], write)
        w = _emit(data, w, hexd[b & 15], write)
    return _emit(data, w, 34, write)


def _emit_str(data, w, lit, write):
    for j in range(lit.shape[0]):
        w = _emit(data, w, lit[j], write)
    return w


def _read_uint(buf, pos, size, big):
    v = np.uint64(0)
    for j in range(size):
        v = (v << np.uint64(8)) | np.uint64(buf[pos + (size - 1 - j if not big else j)])
    return v


def _gdr_pass(buf, offs, lens, big, data, out_off, status, write, hexd, esc, esc_n, names, sizes, lits):
    """Render (write=True) or measure (write=False) every GDR's JSON; see ``gdr_json``."""
    L_FLD, L_GEN, L_SEP, L_ITEM, L_NULL, L_BITS, L_HEX = lits
    w = 0
    peak = 0  # a cut GEN_DATA is written, then taken back: the buffer must hold it meanwhile
    for i in range(offs.shape[0]):
        out_off[i] = w
        pos = offs[i] + 4
        end = pos + lens[i]
        st = GDR_OK
        w = _emit(data, w, 123, write)
        if pos + 2 <= end:
            cnt = _read_uint(buf, pos, 2, big)
            pos += 2
            w = _emit_str(data, w, L_FLD, write)
            w = _emit_uint(data, w, cnt, write)
            if pos < end:
                mark = w
                w = _emit_str(data, w, L_GEN, write)
                for k in range(cnt):
                    if pos >= end:
                        st = GDR_PARTIAL
                        break
                    code = np.int64(buf[pos])
                    pos += 1
                    if code > 13 or code == 9 or code == 7 or code == 8:
                        st = GDR_PYTHON
                        break
                    if k > 0:
                        w = _emit_str(data, w, L_SEP, write)
                    w = _emit_str(data, w, L_ITEM, write)
                    w = _emit(data, w, names[2 * code], write)
                    w = _emit(data, w, names[2 * code + 1], write)
                    w = _emit(data, w, 34, write)
                    w = _emit_str(data, w, L_SEP, write)
                    size = sizes[code]
                    if code == 0:
                        w = _emit_str(data, w, L_NULL, write)
                    elif size > 0:
                        if pos + size > end:
                            st = GDR_PARTIAL
                            break
                        v = _read_uint(buf, pos, size, big)
                        pos += size
                        if code == 13:
                            v = v & np.uint64(15)
                        m, neg = _magnitude(v, size, code >= 4 and code <= 6)
                        if neg:
                            w = _emit(data, w, 45, write)
                        w = _emit_uint(data, w, m, write)
                    elif code == 12:
                        if pos + 2 > end:
                            st = GDR_PARTIAL
                            break
                        nbits = _read_uint(buf, pos, 2, big)
                        nb = (np.int64(nbits) + 7) // 8
                        if pos + 2 + nb > end:
                            st = GDR_PARTIAL
                            break
                        w = _emit_str(data, w, L_BITS, write)
                        w = _emit_uint(data, w, nbits, write)
                        w = _emit_str(data, w, L_HEX, write)
                        w = _emit_hex(data, w, buf, pos + 2, nb, write, hexd)
                        w = _emit(data, w, 125, write)
                        pos += 2 + nb
                    else:
                        if pos >= end:
                            st = GDR_PARTIAL
                            break
                        ln = np.int64(buf[pos])
                        if pos + 1 + ln > end:
                            st = GDR_PARTIAL
                            break
                        if code == 10:
                            w = _emit_text(data, w, buf, pos + 1, ln, write, esc, esc_n)
                        else:
                            w = _emit_hex(data, w, buf, pos + 1, ln, write, hexd)
                        pos += 1 + ln
                    w = _emit(data, w, 93, write)
                peak = max(peak, w + 1)
                w = mark if st == GDR_PARTIAL else _emit(data, w, 93, write)
        elif pos < end:
            st = GDR_PARTIAL
        w = _emit(data, w, 125, write)
        status[i] = st
    out_off[offs.shape[0]] = w
    return w, max(peak, w)


def _gdr_impl(buf, offs, lens, big, hexd, esc, esc_n, names, sizes, lits):
    n = offs.shape[0]
    out_off = np.empty(n + 1, np.int32)
    status = np.empty(n, np.int8)
    dummy = np.empty(0, np.uint8)
    total, peak = _gdr_pass(
        buf, offs, lens, big, dummy, out_off, status, False, hexd, esc, esc_n, names, sizes, lits
    )
    data = np.empty(peak, np.uint8)
    _gdr_pass(buf, offs, lens, big, data, out_off, status, True, hexd, esc, esc_n, names, sizes, lits)
    return out_off, data[:total], status


_jit: dict = {}


def _kernels():
    if not _jit:
        import numba

        opts = {"cache": True, "nogil": True}
        g = globals()
        for name in ("_digits", "_magnitude", "_emit", "_emit_uint", "_emit_text", "_emit_hex",
                     "_emit_str", "_read_uint", "_gdr_pass"):  # fmt: skip
            g[name] = numba.njit(inline="always", **opts)(g[name])
        _jit["fields"] = numba.njit(**opts)(_fields_impl)
        _jit["json"] = numba.njit(**opts)(_json_impl)
        _jit["gdr"] = numba.njit(**opts)(_gdr_impl)
    return _jit["fields"], _jit["json"]


_LOCAL = threading.local()


def _scratch(n: int, nf: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of this thread's scratch arrays, shape (n, nf); valid until the next call in the thread
    (every user consumes its ``Fields`` before decoding the next record type)."""
    need = n * nf
    have = getattr(_LOCAL, "arrays", None)
    if have is None or have[0].size < need:
        size = max(need, 1 << 15)
        have = _LOCAL.arrays = (np.empty(size, np.uint64), np.empty(size, np.int64), np.empty(size, np.int64))
    return tuple(a[:need].reshape(n, nf) for a in have)  # type: ignore[return-value]


class Fields:
    """Where every field of every record of one type lies (the output of one kernel pass)."""

    def __init__(self, rec: RecordType, buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, big: bool):
        fields_kernel, _ = _kernels()
        self.rec = rec
        self.buf = buf
        self.kinds, self.sizes = _layout(rec)
        n, nf = len(offs), len(rec.fields)
        # record-major (a record's fields side by side), in per-thread scratch memory: fresh arrays
        # cost a page fault per 4 KiB written, more than the kernel itself on a TSR-heavy chunk
        self.bits, self.soff, self.slen = _scratch(n, nf)
        partial = np.empty(n, np.bool_)
        self.partial = int(
            fields_kernel(
                buf, np.asarray(offs, np.int64), np.asarray(lens, np.int64), big, self.kinds, self.sizes,
                self.bits, self.soff, self.slen, partial,
            )
        )  # fmt: skip

    def columns(self, gather) -> dict[str, pa.Array]:
        return {f.name: self.column(gather, k) for k, f in enumerate(self.rec.fields)}

    def column(self, gather, f: int) -> pa.Array:
        typ = self.rec.fields[f].type
        ln = self.slen[:, f]
        if typ in ("C1", "Cn"):
            return strings_from(gather, self.buf, self.soff[:, f], ln)
        # integer narrowing of the raw bits only (bit-exact), straight into the Arrow buffers
        values = self.bits[:, f].astype(_UINT[_NUM[typ][0]])
        return pa.Array.from_buffers(_ARROW[typ], len(ln), [_validity(ln >= 0), pa.py_buffer(values)])

    def equals(self, f: int, value: int) -> pa.Array:
        """Booleans ``field == value`` (null where the field is absent)."""
        ln = self.slen[:, f]
        hit = np.packbits(self.bits[:, f] == value, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(ln), [_validity(ln >= 0), pa.py_buffer(hit)])


def _validity(present: np.ndarray) -> pa.Buffer | None:
    return None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))


_ARROW = {t: pa.from_numpy_dtype(np.dtype(d)) for t, (_size, d) in _NUM.items()}


def decode_columns(
    rec: RecordType, gather, buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, big: bool
) -> tuple[dict[str, pa.Array], int]:
    """({FIELD: Arrow array over the records}, count of records with a field cut by REC_LEN)."""
    fl = Fields(rec, buf, offs, lens, big)
    return fl.columns(gather), fl.partial


_KEYS: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def json_texts(rec: RecordType, buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, big: bool):
    """(Arrow strings: one JSON object per record, count of records with a field cut by REC_LEN).

    Only integer and text fields: a float would need Python's shortest repr, so such a type is
    refused rather than rendered differently from ``json.dumps``.
    """
    import json

    _, json_kernel = _kernels()
    keys = _KEYS.get(rec.name)
    if keys is None:
        for f in rec.fields:
            if f.type in ("R4", "R8") or not (f.type in _NUM or f.type in ("C1", "Cn")) or f.count:
                raise TypeError(f"no JSON rendering for {rec.name}.{f.name} of type {f.type}")
        pieces = [json.encoder.encode_basestring_ascii(f.name).encode() + b": " for f in rec.fields]
        key_off = np.zeros(len(pieces) + 1, np.int64)
        np.cumsum([len(p) for p in pieces], out=key_off[1:])
        signed = np.array([f.type in _SIGNED for f in rec.fields], np.bool_)
        keys = _KEYS[rec.name] = (np.frombuffer(b"".join(pieces) or b"\0", np.uint8).copy(), key_off, signed)
    fl = Fields(rec, buf, offs, lens, big)
    out_off, data = json_kernel(
        buf, fl.kinds, fl.sizes, keys[2], keys[0], keys[1], fl.bits, fl.soff, fl.slen, _ESC, _ESC_N
    )
    n = len(offs)
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(out_off), pa.py_buffer(data)])
    return arr, fl.partial


def _lit(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8).copy()


_GDR_LITS = tuple(
    _lit(t) for t in ('"FLD_CNT": ', ', "GEN_DATA": [', ", ", '["', "null", '{"bits": ', ', "hex": ')
)


def gdr_json(buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, big: bool) -> tuple[pa.Array, np.ndarray]:
    """(JSON text per GDR, status per GDR: ``GDR_OK``, ``GDR_PARTIAL`` or ``GDR_PYTHON``).

    The text is what ``json.dumps`` writes for ``decode_record``'s dict (``GEN_DATA`` as a list of
    ``[type, value]`` pairs); a GDR with a float or an undefined type code is left to the Python
    decoder (its text here is meaningless), which renders floats and reports bad codes itself.
    """
    _kernels()
    out_off, data, status = _jit["gdr"](
        buf, np.asarray(offs, np.int64), np.asarray(lens, np.int64), big, _HEX, _ESC, _ESC_N, _GDR_NAMES,
        _GDR_SIZE, _GDR_LITS,
    )  # fmt: skip
    arr = pa.Array.from_buffers(pa.string(), len(offs), [None, pa.py_buffer(out_off), pa.py_buffer(data)])
    return arr, status
