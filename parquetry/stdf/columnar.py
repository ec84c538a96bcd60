"""Vectorised decoding of all records of one type at once, for types made of fixed fields and C*n.

Summary records (TSR, HBR, SBR, PCR) can number thousands per file (a TSR per test and site on the
V93000); decoding them one by one in Python would cost more than all the PTRs together. Here every
field is read for all records of the chunk with numpy: a field is present where the record still has
room for it, and the positions of later fields follow each record's C*n lengths. Semantics are those of
``decode.decode_record``: an omitted field is null, and a field cut part-way by REC_LEN is null with
every field after it, and is reported.
"""

from __future__ import annotations

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
_BYTES = {size: np.arange(size, dtype=np.int64) for size in _UINT}


def supported(rec: RecordType) -> bool:
    return all(f.count is None and (f.type in _NUM or f.type in ("C1", "Cn")) for f in rec.fields)


def decode_columns(
    rec: RecordType, gather, buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, big: bool
) -> tuple[dict[str, pa.Array], int]:
    """({FIELD: Arrow array over the records}, count of records with a field cut by REC_LEN)."""
    pos = offs.astype(np.int64) + 4
    end = pos + lens.astype(np.int64)
    alive = np.ones(len(offs), np.bool_)
    partial = np.zeros(len(offs), np.bool_)
    out: dict[str, pa.Array] = {}
    for f in rec.fields:
        has = alive & (pos < end)
        if f.type == "Cn":
            ln = np.where(has, buf[np.where(has, pos, 0)], 0).astype(np.int64)
            ok = has & (pos + 1 + ln <= end)
            out[f.name] = strings_from(gather, buf, pos + 1, np.where(ok, ln, -1))
            step = 1 + ln
        else:
            size = 1 if f.type == "C1" else _NUM[f.type][0]
            ok = has & (pos + size <= end)
            if f.type == "C1":
                out[f.name] = strings_from(gather, buf, pos, np.where(ok, 1, -1))
            else:
                # one gather of the field's bytes (n x size), read as an unsigned integer in the
                # file's byte order, then reinterpreted: integer conversions only, so bit-exact
                idx = np.where(ok, pos, 0)
                raw = buf[idx[:, None] + _BYTES[size]]
                wire = np.dtype(_UINT[size]).newbyteorder(">" if big else "<")
                typed = raw.view(wire).reshape(-1).astype(_UINT[size]).view(_NUM[f.type][1])
                out[f.name] = pa.array(typed, mask=~ok) if not ok.all() else pa.array(typed)
            step = np.full(len(offs), size, np.int64)
        partial |= has & ~ok
        pos = np.where(ok, pos + step, pos)
        alive = ok
    return out, int(partial.sum())
