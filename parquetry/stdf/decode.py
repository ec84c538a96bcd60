"""Generic, table-driven decoding of one record (the rarer record types: MIR, SDR, TSR, GDR, STR...).

Fields are read in order until REC_LEN runs out; a field that is not there is absent from the result
(the tables turn that into null). A field cut part-way by REC_LEN is also absent and is reported in
``partial``. Bytes after the last field are ignored (REC_LEN is authoritative).
"""

from __future__ import annotations

import struct

from parquetry.stdf.spec import RecordType

_FIXED = {
    "U1": ("B", 1), "U2": ("H", 2), "U4": ("I", 4), "U8": ("Q", 8),
    "I1": ("b", 1), "I2": ("h", 2), "I4": ("i", 4), "I8": ("q", 8),
    "R4": ("f", 4), "R8": ("d", 8), "B1": ("B", 1),
}  # fmt: skip
_UF = {1: "B", 2: "H", 4: "I", 8: "Q"}
# GDR generic data type codes -> field type
VN_TYPES = {
    0: "B0", 1: "U1", 2: "U2", 3: "U4", 4: "I1", 5: "I2", 6: "I4", 7: "R4", 8: "R8",
    10: "Cn", 11: "Bn", 12: "Dn", 13: "N1",
}  # fmt: skip


class _Short(Exception):
    pass


def latin1(raw: bytes) -> str:
    """STDF text is bytes; Latin-1 decodes every byte exactly (ASCII is unchanged)."""
    return raw.decode("latin-1")


class _Reader:
    __slots__ = ("bo", "data", "end", "pos")

    def __init__(self, data: bytes, bo: str) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.bo = bo

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise _Short
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def scalar(self, typ: str):
        if typ == "C1":
            return latin1(self.take(1))
        code, size = _FIXED[typ]
        return struct.unpack(self.bo + code, self.take(size))[0]

    def one(self, typ: str, width: int | None = None):
        if typ in _FIXED or typ == "C1":
            return self.scalar(typ)
        if typ == "Cn":
            return latin1(self.take(self.scalar("U1")))
        if typ == "Sn":
            return latin1(self.take(self.scalar("U2")))
        if typ == "Bn":
            return self.take(self.scalar("U1")).hex()
        if typ == "Dn":
            nbits = self.scalar("U2")
            return {"bits": nbits, "hex": self.take((nbits + 7) // 8).hex()}
        if typ == "Uf":
            if width not in _UF:
                raise ValueError(f"unsupported Uf width {width}")
            return struct.unpack(self.bo + _UF[width], self.take(width))[0]
        if typ == "Cf":
            return latin1(self.take(int(width or 0)))
        if typ == "N1":
            return self.scalar("U1") & 15
        raise ValueError(f"unknown STDF type {typ}")

    def array(self, typ: str, count: int, width: int | None):
        if typ == "N1":
            raw = self.take((count + 1) // 2)
            return [(raw[k // 2] >> 4) if k & 1 else (raw[k // 2] & 15) for k in range(count)]
        if typ in _FIXED and typ not in ("B1",):
            code, size = _FIXED[typ]
            return list(struct.unpack(f"{self.bo}{count}{code}", self.take(size * count)))
        return [self.one(typ, width) for _ in range(count)]

    def generic(self, count: int) -> list:
        out = []
        for _ in range(count):
            code = self.scalar("U1")
            typ = VN_TYPES.get(code)
            if typ is None:
                raise ValueError(f"GDR field type code {code} is not defined by STDF")
            out.append([typ, None if typ == "B0" else self.one(typ)])
        return out


def _plan(rec: RecordType, bo: str) -> list:
    """Steps for the fast path: runs of fixed-size scalars become one ``struct`` unpack, Cn a slice."""
    steps: list = []
    run: list = []

    def flush() -> None:
        if run:
            fmt = struct.Struct(bo + "".join("c" if t == "C1" else _FIXED[t][0] for _, t in run))
            steps.append(("fixed", fmt, tuple(n for n, _ in run), tuple(t == "C1" for _, t in run)))
            run.clear()

    for f in rec.fields:
        if f.count is None and (f.type in _FIXED or f.type == "C1"):
            run.append((f.name, f.type))
            continue
        flush()
        if f.count is None and f.type == "Cn":
            steps.append(("cn", f.name))
        else:
            return []  # arrays and exotic types: generic reader only
    flush()
    return steps


_PLANS: dict[tuple[str, bool], list] = {}


def _fast(rec: RecordType, data: bytes, big: bool) -> dict | None:
    """Decode a record that carries every field, or return None (then the generic reader runs)."""
    key = (rec.name, big)
    steps = _PLANS.get(key)
    if steps is None:
        steps = _PLANS[key] = _plan(rec, ">" if big else "<")
    if not steps:
        return None
    out: dict = {}
    pos = 0
    end = len(data)
    for step in steps:
        if step[0] == "cn":
            if pos >= end:
                return None
            ln = data[pos]
            if pos + 1 + ln > end:
                return None
            out[step[1]] = data[pos + 1 : pos + 1 + ln].decode("latin-1")
            pos += 1 + ln
        else:
            fmt = step[1]
            if pos + fmt.size > end:
                return None
            vals = fmt.unpack_from(data, pos)
            for name, is_c1, v in zip(step[2], step[3], vals, strict=True):
                out[name] = v.decode("latin-1") if is_c1 else v
            pos += fmt.size
    return out


def decode_record(rec: RecordType, data: bytes, big: bool) -> tuple[dict, bool]:
    """Return ({FIELD_NAME: value} for the fields present, whether a field was cut by REC_LEN)."""
    fast = _fast(rec, data, big)
    if fast is not None:
        return fast, False
    r = _Reader(data, ">" if big else "<")
    out: dict = {}
    for f in rec.fields:
        if r.pos >= r.end:
            return out, False
        start = r.pos
        try:
            if f.count is None:
                out[f.name] = r.one(f.type)
            else:
                count = int(out.get(f.count, 0))
                width = int(out.get(f.width, 0)) if f.width else None
                if f.type == "Vn":
                    out[f.name] = r.generic(count)
                else:
                    out[f.name] = r.array(f.type, count, width)
        except _Short:
            r.pos = start
            return out, True
    return out, False
