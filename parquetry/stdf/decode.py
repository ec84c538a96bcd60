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
_STRUCTS = {bo: {t: struct.Struct(bo + code) for t, (code, _size) in _FIXED.items()} for bo in "<>"}
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
        fmt = _STRUCTS[self.bo][typ]
        pos = self.pos
        if pos + fmt.size > self.end:
            raise _Short
        self.pos = pos + fmt.size
        return fmt.unpack_from(self.data, pos)[0]

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
        # GDRs can number thousands per file: the common numeric and text fields are read inline
        structs = _STRUCTS[self.bo]
        data, end = self.data, self.end
        out = []
        for _ in range(count):
            if self.pos >= end:
                raise _Short
            code = data[self.pos]
            self.pos += 1
            typ = VN_TYPES.get(code)
            if typ is None:
                raise ValueError(f"GDR field type code {code} is not defined by STDF")
            fmt = structs.get(typ)
            if fmt is not None:
                pos = self.pos
                if pos + fmt.size > end:
                    raise _Short
                self.pos = pos + fmt.size
                out.append([typ, fmt.unpack_from(data, pos)[0]])
            elif typ == "Cn":
                pos = self.pos
                if pos >= end or pos + 1 + data[pos] > end:
                    raise _Short
                ln = data[pos]
                self.pos = pos + 1 + ln
                out.append([typ, latin1(data[pos + 1 : pos + 1 + ln])])
            else:
                out.append([typ, None if typ == "B0" else self.one(typ)])
        return out


def _compile(rec: RecordType, bo: str):
    """A decoder specialised for one record type and byte order, or None (arrays: generic reader).

    Runs of fixed-size fields become one ``struct`` unpack and C*n strings a slice, in straight-line
    generated code. It returns the fields read when the record ends on a field boundary (omitted
    trailing fields) and None when a field is cut part-way, so that the generic reader reports it.
    """
    if any(f.count is not None or not (f.type in _FIXED or f.type in ("C1", "Cn")) for f in rec.fields):
        return None
    env: dict = {}
    lines = ["def decode(data):", "    end = len(data)", "    pos = 0", "    out = {}"]
    run: list = []

    def flush() -> None:
        if not run:
            return
        fmt = struct.Struct(bo + "".join("c" if t == "C1" else _FIXED[t][0] for _, t in run))
        key = f"S{len(env)}"
        env[key] = fmt
        lines.append("    if pos >= end: return out")
        lines.append(f"    if pos + {fmt.size} > end: return None")
        names = ", ".join(f"v{k}" for k in range(len(run))) + ","
        lines.append(f"    {names} = {key}.unpack_from(data, pos)")
        for k, (name, t) in enumerate(run):
            value = f"v{k}.decode('latin-1')" if t == "C1" else f"v{k}"
            lines.append(f"    out[{name!r}] = {value}")
        lines.append(f"    pos += {fmt.size}")
        run.clear()

    for f in rec.fields:
        if f.type == "Cn":
            flush()
            lines += [
                "    if pos >= end: return out",
                "    ln = data[pos]",
                "    if pos + 1 + ln > end: return None",
                f"    out[{f.name!r}] = data[pos + 1 : pos + 1 + ln].decode('latin-1')",
                "    pos += 1 + ln",
            ]
        else:
            run.append((f.name, f.type))
    flush()
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<stdf decoder {rec.name}>", "exec"), env)
    return env["decode"]


_DECODERS: dict[tuple[str, bool], object] = {}


def _fast(rec: RecordType, data: bytes, big: bool) -> dict | None:
    key = (rec.name, big)
    fn = _DECODERS.get(key, False)
    if fn is False:
        fn = _DECODERS[key] = _compile(rec, ">" if big else "<")
    return None if fn is None else fn(data)  # type: ignore[operator]


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
