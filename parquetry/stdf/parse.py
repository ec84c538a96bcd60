"""Streaming STDF parser: decompressed blocks -> numba framing -> numba hot decode -> Arrow batches.

Memory stays bounded by the block size (plus at most one carried record of < 64 KiB) and by the
per-chunk output arrays (``batch_records`` records at a time); only the per-file test definitions,
wafer rows and the file summary are kept until the end of the file.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from parquetry.stdf import hot as H
from parquetry.stdf import tables as T
from parquetry.stdf.columnar import GDR_PARTIAL, GDR_PYTHON, Fields, gdr_json, json_texts
from parquetry.stdf.decode import decode_record
from parquetry.stdf.errors import StdfFormatError, StdfWarning
from parquetry.stdf.framing import byte_order_from_far, frame, open_stream, scan
from parquetry.stdf.spec import BY_CODE, CODE_OF, NAME_OF_CODE, RECORDS

DEFAULT_BLOCK_BYTES = 8 << 20  # reused from block to block: a bigger one costs page faults, not speed
DEFAULT_BATCH_RECORDS = 1 << 18
MAX_RECORD = 4 + 65535

# How ``framing.scan`` classes a record for the hot kernel (0: decoded elsewhere).
_KIND = np.zeros(65536, np.uint8)
_KIND[[H.C_PTR, H.C_FTR]] = 1
_KIND[H.C_MPR] = 2
_KIND[[H.C_PIR, H.C_PRR]] = 3


class _Reader:
    """Fills buffers from the (decompressed) stream; a decompression fault ends the stream early.

    The fault is kept, not raised at once, so that every complete record before it is still decoded
    and delivered; the parser raises it (as StdfFormatError at the end of the good data) afterwards.
    Compressed streams are read in 16 KiB pieces so that at most that much good data is lost to a
    fault (a decompressor raises without returning what it decoded in the same call).
    """

    def __init__(self, stream: BinaryIO, compression: str) -> None:
        self.stream = stream
        self.error: BaseException | None = None
        self.PIECE = 1 << 14 if compression != "none" else 1 << 40

    def fill(self, view: memoryview) -> int:
        got = 0
        while got < len(view) and self.error is None:
            try:
                n = self.stream.readinto(view[got : got + self.PIECE])  # type: ignore[attr-defined]
            except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as exc:
                self.error = exc
                break
            if not n:
                break
            got += n
        return got

    def check(self, offset: int, name: str, records: int) -> None:
        if self.error is not None:
            exc = self.error
            raise StdfFormatError(
                offset, name, records, f"decompression failed: {type(exc).__name__}: {exc}"
            ) from exc


def _json_default(o):
    return o.hex() if isinstance(o, (bytes, bytearray)) else str(o)


def _jsonable(v):
    """JSON has no NaN/Infinity: such floats become the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


_LOWER: dict[str, str] = {f.name: f.name.lower() for r in RECORDS for f in r.fields}


def _to_json(fields: dict) -> str:
    try:  # the common case: no NaN or infinity among the values
        return json.dumps(fields, allow_nan=False, default=_json_default)
    except ValueError:
        return json.dumps(_jsonable(fields), default=_json_default)


def _lower(fields: dict) -> dict:
    low = _LOWER
    return {low[k]: v for k, v in fields.items()}


class _FileState:
    """Everything about one file that outlives a chunk."""

    def __init__(self, file_id: str, name: str) -> None:
        self.file_id = file_id
        self.name = name
        self.counts = np.zeros(65536, np.int64)
        self.records = 0
        self.mir: dict = {}
        self.mrr: dict = {}
        self.wcr: dict = {}
        self.vur_names: list[str] = []
        self.wafers: list[dict] = []  # WIR rows waiting for their WRR, then completed
        self.open_wafer: dict[tuple[int, int], dict] = {}
        self.partial_other = 0
        self.bad_other: list[str] = []


def _route_other(
    fs: _FileState, code: int, rec_index: int, offset: int, data: bytes, big: bool, out: dict
) -> None:
    """Decode one rare record in Python and append its row to the table it belongs to."""
    typ, sub = code >> 8, code & 255
    rec = BY_CODE.get((typ, sub))
    fid = fs.file_id
    if rec is None:
        out["records_other"].append(
            {"file_id": fid, "rec_index": rec_index, "offset": offset, "rec_type": f"UNKNOWN_{typ}_{sub}",
             "rec_typ": typ, "rec_sub": sub, "fields": json.dumps({"raw_hex": data.hex()})}
        )  # fmt: skip
        return
    try:
        fields, partial = decode_record(rec, data, big)
    except ValueError as exc:  # e.g. a GDR type code outside the specification
        fs.bad_other.append(f"{rec.name} at record {rec_index}: {exc}")
        fields, partial = {"raw_hex": data.hex()}, False
    if partial:
        fs.partial_other += 1
    name = rec.name
    if name in ("HBR", "SBR"):
        p = name[0]
        out["bins"].append(
            {"file_id": fid, "rec_index": rec_index, "bin_type": p, "head_num": fields.get("HEAD_NUM"),
             "site_num": fields.get("SITE_NUM"),
             "all_sites": fields.get("HEAD_NUM") == 255 if "HEAD_NUM" in fields else None,
             "bin_num": fields.get(f"{p}BIN_NUM"), "bin_cnt": fields.get(f"{p}BIN_CNT"),
             "bin_pf": fields.get(f"{p}BIN_PF"), "bin_nam": fields.get(f"{p}BIN_NAM")}
        )  # fmt: skip
    elif name == "TSR":
        row = {"file_id": fid, "rec_index": rec_index, **_lower(fields)}
        row["all_sites"] = fields["HEAD_NUM"] == 255 if "HEAD_NUM" in fields else None
        out["test_summaries"].append(row)
    elif name == "PCR":
        row = {"file_id": fid, "rec_index": rec_index, **_lower(fields)}
        row["all_sites"] = fields["HEAD_NUM"] == 255 if "HEAD_NUM" in fields else None
        out["part_counts"].append(row)
    elif name == "MIR" and not fs.mir:
        fs.mir = _lower(fields)
    elif name == "MRR" and not fs.mrr:
        fs.mrr = _lower(fields)
    elif name == "WIR":
        row = {"file_id": fid, "wir_rec_index": rec_index, **_lower(fields)}
        key = (fields.get("HEAD_NUM", -1), fields.get("SITE_GRP", -1))
        fs.wafers.append(row)
        fs.open_wafer[key] = row
    elif name == "WRR":
        key = (fields.get("HEAD_NUM", -1), fields.get("SITE_GRP", -1))
        row = fs.open_wafer.pop(key, None)
        if row is None:
            row = {"file_id": fid}
            fs.wafers.append(row)
        wid = row.get("wafer_id")
        row.update(_lower(fields))
        if wid is not None and not row.get("wafer_id"):
            row["wafer_id"] = wid  # WRR may leave WAFER_ID empty; the WIR's stands
        row["wrr_rec_index"] = rec_index
    else:
        if name == "WCR" and not fs.wcr:
            fs.wcr = _lower(fields)
        if name == "VUR":
            fs.vur_names.extend(fields.get("UPD_NAM", []))
        if name != "FAR":
            out["records_other"].append(
                {"file_id": fid, "rec_index": rec_index, "offset": offset, "rec_type": name, "rec_typ": typ,
                 "rec_sub": sub, "fields": _to_json(fields)}
            )  # fmt: skip


def _ts(v) -> datetime | None:
    return None if v is None else datetime.fromtimestamp(int(v), tz=UTC)


def parse_stdf(
    source: str | Path | BinaryIO,
    file_id: str | None = None,
    batch_records: int = DEFAULT_BATCH_RECORDS,
    *,
    sha256: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Parse one STDF file, yielding ``(table name, record batch)`` in bounded memory.

    ``file_id`` (normally a content hash computed by the caller) is stamped on every row; when None
    the file's base name is used. Tables: see ``TABLE_SCHEMAS`` and docs/stdf.md. ``files`` and
    ``tests`` come last, once the whole file has been read. Raises ``StdfFormatError`` (with byte
    offset and the count of records read) on a malformed stream; batches already yielded stay valid.
    """
    stream, name, compression, closers = open_stream(source)
    try:
        if file_id is None:
            file_id = os.path.basename(name.split("!")[0])
        yield from _parse(stream, name, compression, file_id, sha256, max(1, int(batch_records)), block_bytes)
    finally:
        for c in closers:
            c.close()


class _Scratch:
    """A parse's working memory: the read buffer, the framing arrays, the kernel's outputs and state.

    Kept for the next file (``_take``/``_give``): fresh memory costs a page fault per 4 KiB touched,
    about 1 ms for a 4 MB file, which is a tenth of parsing it. Nothing a yielded batch holds points
    into it (every builder copies), so it can be handed on once a parse ends.
    """

    def __init__(self, cap: int, batch_records: int) -> None:
        self.key = (cap, batch_records)
        self.buf = np.empty(cap, np.uint8)
        self.offs = np.empty(batch_records, np.int64)
        self.lens = np.empty(batch_records, np.int64)
        self.codes = np.empty(batch_records, np.int32)
        self.rare = np.empty(batch_records, np.int64)
        self.outs = _Outputs()
        self.state = H.HotState()


_POOL: list[_Scratch] = []
_POOL_LOCK = threading.Lock()
_POOL_MAX = 4  # parses running at once in one process, beyond which memory is given back


def _take(cap: int, batch_records: int) -> _Scratch:
    with _POOL_LOCK:
        for i, sc in enumerate(_POOL):
            if sc.key == (cap, batch_records):
                sc = _POOL.pop(i)
                break
        else:
            sc = None
    if sc is None:
        return _Scratch(cap, batch_records)
    sc.state.reset()
    return sc


def _give(sc: _Scratch) -> None:
    with _POOL_LOCK:
        if len(_POOL) < _POOL_MAX:
            _POOL.append(sc)


def _parse(stream, name, compression, file_id, sha256, batch_records, block_bytes):
    cap = MAX_RECORD + max(block_bytes, 1 << 16)
    sc = _take(cap, batch_records)
    try:
        yield from _parse_with(sc, stream, name, compression, file_id, sha256, batch_records, block_bytes)
    finally:
        _give(sc)


def _parse_with(sc, stream, name, compression, file_id, sha256, batch_records, block_bytes):
    decode, gather = H.kernels()
    fs = _FileState(file_id, name)
    state = sc.state
    outs = sc.outs
    cap = MAX_RECORD + max(block_bytes, 1 << 16)
    buf = sc.buf
    reader = _Reader(stream, compression)
    n = reader.fill(memoryview(buf)[: max(block_bytes, 1 << 16)])
    if n < 6:
        reader.check(n, name, 0)
    big, cpu_type, stdf_ver = byte_order_from_far(bytes(buf[: min(n, 6)]), name)
    file_warnings: list[str] = []
    if cpu_type in (1, 2) and (cpu_type == 1) != big:
        msg = (
            f"FAR CPU_TYPE={cpu_type} says {'big' if cpu_type == 1 else 'little'}-endian "
            "but REC_LEN is written "
            f"{'big' if big else 'little'}-endian; decoded as {'big' if big else 'little'}-endian"
        )
        file_warnings.append(msg)
        warnings.warn(f"{name}: {msg}", StdfWarning, stacklevel=3)
    if stdf_ver != 4:
        raise StdfFormatError(4, name, 0, f"FAR STDF_VER={stdf_ver}; only STDF V4 (and V4-2007) is supported")
    base = 0  # stream offset of buf[0]
    eof = n < max(block_bytes, 1 << 16) or reader.error is not None
    offs, lens, codes, rare = sc.offs, sc.lens, sc.codes, sc.rare
    pos = 0
    while True:
        k, used, n_res, n_parts, n_rare = scan(
            buf[pos:n], n - pos, big, offs, lens, codes, fs.counts, _KIND, rare
        )
        if k:
            sub = buf[pos:n]
            yield from _chunk(
                fs, state, outs, decode, gather, sub, base + pos, offs[:k], lens[:k], codes[:k], big,
                n_res, n_parts, rare[:n_rare],
            )  # fmt: skip
            pos += used
            continue
        # no complete record left in the buffer: carry the remainder to the front and read on
        rest = n - pos
        if eof:
            reader.check(base + n, name, fs.records)
            if rest:
                _raise_cut(buf[pos:n], big, base + pos, name, fs.records)
            break
        buf[:rest] = buf[pos:n]
        base += pos
        got = reader.fill(memoryview(buf)[rest:cap])
        eof = got < cap - rest or reader.error is not None
        n = rest + got
        pos = 0
    # parts still open at the end of the file (PIR without PRR)
    open_hs = np.nonzero(state.open_part >= 0)[0]
    if len(open_hs):
        P_I = np.zeros((H.N_PI, len(open_hs)), np.int64)
        order = np.argsort(state.open_part[open_hs], kind="stable")
        hs = open_hs[order]
        P_I[H.PI_SEQ] = state.open_part[hs]
        P_I[H.PI_HEAD] = hs >> 8
        P_I[H.PI_SITE] = hs & 255
        P_I[H.PI_PIR_REC] = state.open_pir[hs]
        P_I[H.PI_PRR_REC] = -1
        P_I[H.PI_NFIELDS] = 2
        file_warnings.append(f"{len(hs)} part(s) opened by a PIR have no PRR")
        yield "parts", T.parts_batch(file_id, gather, buf, P_I, len(hs))
    if fs.wafers:
        yield "wafers", T.rows_batch("wafers", fs.wafers)
    yield "tests", T.tests_batch(file_id, gather, state)
    st = state.st
    for key, what in (
        (H.S_PARTIAL, "field(s) cut part-way by REC_LEN were treated as omitted"),
        (H.S_SHORT, "PIR/PRR/PTR/MPR/FTR record(s) too short to name their head/site were not decoded"),
        (H.S_ORPHAN_PRR, "PRR record(s) had no open PIR on their head/site (given their own part_seq)"),
        (H.S_UNCLOSED, "PIR record(s) reopened a head/site whose part had no PRR (kept, without PRR fields)"),
    ):
        if st[key]:
            file_warnings.append(f"{int(st[key])} {what}")
    if fs.partial_other:
        file_warnings.append(f"{fs.partial_other} rare record(s) had a field cut part-way by REC_LEN")
    file_warnings.extend(fs.bad_other)
    counts = {NAME_OF_CODE.get(int(c), f"UNKNOWN_{int(c) >> 8}_{int(c) & 255}"): int(fs.counts[c])
              for c in np.nonzero(fs.counts)[0]}  # fmt: skip
    v2007 = any(BY_CODE[(r.typ, r.sub)].v2007 and counts.get(r.name) for r in RECORDS) or any(
        "2007" in v for v in fs.vur_names
    )
    row = {
        "file_id": file_id, "file_name": name, "sha256": sha256, "compression": compression,
        "byte_order": "big" if big else "little", "cpu_type": cpu_type, "stdf_ver": stdf_ver,
        "stdf_version": "V4-2007" if v2007 else "V4", "stream_bytes": base + n, "records": fs.records,
        "record_counts": list(counts.items()), "parts": int(st[H.S_PARTS]),
        "results": int(st[H.S_RESULTS_TOTAL]),
        "tests": int(st[H.S_TESTS]), "setup_time": _ts(fs.mir.get("setup_t")),
        "start_time": _ts(fs.mir.get("start_t")), "finish_time": _ts(fs.mrr.get("finish_t")),
        **fs.mir, **fs.mrr, **fs.wcr, "warnings": file_warnings,
    }  # fmt: skip
    yield "files", T.rows_batch("files", [row])


def _raise_cut(rest: np.ndarray, big: bool, offset: int, name: str, records: int) -> None:
    if len(rest) < 4:
        raise StdfFormatError(
            offset, name, records, f"stream ends inside a record header ({len(rest)} of 4 bytes present)"
        )
    ln = (int(rest[0]) << 8 | int(rest[1])) if big else (int(rest[0]) | int(rest[1]) << 8)
    raise StdfFormatError(
        offset,
        name,
        records,
        f"record type {int(rest[2])}/{int(rest[3])} declares REC_LEN={ln} but only {len(rest) - 4} bytes "
        "remain in the stream (truncated file or corrupt REC_LEN)",
    )


class _Outputs:
    """The kernel's result arrays, reused from chunk to chunk (fresh pages cost more than copies)."""

    def __init__(self) -> None:
        self.cap = 0
        self.arrays: tuple = ()

    def ensure(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if rows > self.cap or not self.arrays:
            self.cap = max(rows, 1024)
            self.arrays = (
                np.empty((H.N_RL, self.cap), np.int64),
                np.empty((H.N_RI, self.cap), np.int32),
                np.empty((H.N_RF, self.cap), np.float32),
            )
        return self.arrays


def _chunk(fs, state, outs, decode, gather, sub, sub_base, offs, lens, codes, big, n_res, n_parts, rare):
    """Decode one framed chunk (``scan`` counted its records, sized it, and listed its ``rare`` ones)."""
    k = len(codes)
    rec_base = fs.records
    R_L, R_I, R_F = outs.ensure(n_res)
    P_I = np.zeros((H.N_PI, n_parts), np.int64)
    state.st[H.S_NRES] = 0
    state.st[H.S_NPARTS] = 0
    start = 0
    while True:
        start, status = decode(
            sub, offs, lens, codes, start, k, big, rec_base,
            state.st, state.open_part, state.open_pir, state.last_test, state.T_I, state.T_F,
            state.h_full, state.h_num, state.pool, state.ipool, R_L, R_I, R_F, P_I,
        )  # fmt: skip
        if status == H.OK:
            break
        state.grow()
    if state.st[H.S_NRES] > n_res or state.st[H.S_NPARTS] > n_parts:  # the kernel checks no bounds
        raise RuntimeError(
            f"{fs.name}: decoder wrote {int(state.st[H.S_NRES])} result / {int(state.st[H.S_NPARTS])} part "
            f"rows into room for {n_res} / {n_parts}"
        )
    # the summary records, vectorised per type
    vector_batches = []
    rare_codes = codes[rare]
    is_vec = _VECTOR[rare_codes]
    python = rare[~is_vec]
    if is_vec.any():
        for code in np.unique(rare_codes[is_vec]).tolist():
            idx = rare[rare_codes == code]
            if code == _GDR:
                batch, left = _gdr_batch(fs, sub, offs[idx], lens[idx], rec_base + idx, big, sub_base)
                if batch is not None:
                    vector_batches.append(batch)
                if len(left):  # floats or undefined type codes: the Python decoder
                    python = np.sort(np.concatenate([python, idx[left]]))
                continue
            batch_fn = _summary_batch if code in _SUMMARY_CODES else _other_batch
            vector_batches.append(
                batch_fn(fs, gather, int(code), sub, offs[idx], lens[idx], rec_base + idx, big, sub_base)
            )
    # the rare records, in Python
    out: dict[str, list] = {t: [] for t in ("bins", "test_summaries", "part_counts", "records_other")}
    for i in python.tolist():
        o = int(offs[i])
        _route_other(
            fs, int(codes[i]), rec_base + i, sub_base + o, bytes(sub[o + 4 : o + 4 + int(lens[i])]), big, out
        )
    fs.records += k
    m = int(state.st[H.S_NRES])
    q = int(state.st[H.S_NPARTS])
    if q:
        yield "parts", T.parts_batch(fs.file_id, gather, sub, P_I, q)
    if m:
        yield (
            "results",
            T.results_batch(fs.file_id, gather, sub, R_L, R_I, R_F, m, T.test_names(gather, state)),
        )
    yield from vector_batches
    for table, rows in out.items():
        if rows:
            yield table, T.rows_batch(table, rows)


_SUMMARY_TABLE = {"HBR": "bins", "SBR": "bins", "TSR": "test_summaries", "PCR": "part_counts"}
_SUMMARY_CODES = {CODE_OF[n] for n in _SUMMARY_TABLE}
# records_other types with fixed fields, C*n strings and no floats (JSON needs no NaN handling)
_OTHER_VECTOR = ("ATR", "PMR", "BPS", "EPS", "DTR")
_VECTOR = np.zeros(65536, np.bool_)
_VECTOR[[CODE_OF[n] for n in (*_SUMMARY_TABLE, *_OTHER_VECTOR, "GDR")]] = True
_GDR = CODE_OF["GDR"]
_HEAD_FIELD = 0  # HEAD_NUM is the first field of HBR, SBR, TSR and PCR
assert all(BY_CODE[(CODE_OF[n] >> 8, CODE_OF[n] & 255)].fields[0].name == "HEAD_NUM" for n in _SUMMARY_TABLE)


def _records_other(fs, rec_index, offsets, code: int, name: str, texts: pa.Array) -> pa.RecordBatch:
    n = len(texts)
    arrays = [
        T.const_string(fs.file_id, n),
        pa.array(np.asarray(rec_index, np.int64)),
        pa.array(np.asarray(offsets, np.int64)),
        T.const_string(name, n),
        pa.array(np.full(n, code >> 8, np.uint8)),
        pa.array(np.full(n, code & 255, np.uint8)),
        texts,
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=T.TABLE_SCHEMAS["records_other"])


def _gdr_batch(fs, sub, offs, lens, rec_index, big, sub_base):
    """GDRs of one chunk rendered to JSON by one kernel pass; returns (batch or None, positions of
    the GDRs left to the Python decoder: those with a float item or an undefined type code)."""
    texts, status = gdr_json(sub, offs, lens, big)
    done = status != GDR_PYTHON
    fs.partial_other += int((status == GDR_PARTIAL).sum())
    left = np.nonzero(~done)[0]
    if not done.any():
        return None, left
    if len(left):
        keep = np.nonzero(done)[0]
        texts, rec_index, offs = texts.take(pa.array(keep)), rec_index[keep], offs[keep]
    batch = _records_other(fs, rec_index, np.asarray(offs, np.int64) + sub_base, _GDR, "GDR", texts)
    return ("records_other", batch), left


def _other_batch(fs, gather, code, sub, offs, lens, rec_index, big, sub_base) -> tuple[str, pa.RecordBatch]:
    """ATR/PMR/BPS/EPS/DTR records of one chunk: decoded together, then one JSON text each."""
    rec = BY_CODE[(code >> 8, code & 255)]
    texts, partial = json_texts(rec, sub, offs, lens, big)
    fs.partial_other += partial
    offsets = np.asarray(offs, np.int64) + sub_base
    return "records_other", _records_other(fs, rec_index, offsets, code, rec.name, texts)


def _summary_batch(
    fs, gather, code, sub, offs, lens, rec_index, big, _sub_base=0
) -> tuple[str, pa.RecordBatch]:
    """HBR/SBR/TSR/PCR records of one chunk, decoded together (see ``columnar``)."""
    rec = BY_CODE[(code >> 8, code & 255)]
    fl = Fields(rec, sub, offs, lens, big)
    cols = fl.columns(gather)
    fs.partial_other += fl.partial
    n = len(offs)
    table = _SUMMARY_TABLE[rec.name]
    head = cols["HEAD_NUM"]
    data: dict[str, pa.Array] = {
        "file_id": T.const_string(fs.file_id, n),
        "rec_index": pa.array(np.asarray(rec_index, np.int64)),
        "all_sites": fl.equals(_HEAD_FIELD, 255),  # HEAD_NUM 255: the summary is over all sites
    }
    if table == "bins":
        p = rec.name[0]
        data["bin_type"] = T.const_string(p, n)
        for name in ("NUM", "CNT", "PF", "NAM"):
            data[f"bin_{name.lower()}"] = cols[f"{p}BIN_{name}"]
        data["head_num"], data["site_num"] = head, cols["SITE_NUM"]
    else:
        data.update({k.lower(): v for k, v in cols.items()})
    schema = T.TABLE_SCHEMAS[table]
    return table, pa.RecordBatch.from_arrays([data[f.name] for f in schema], schema=schema)


def read_stdf(path: str | Path | BinaryIO, file_id: str | None = None, **kwargs) -> dict[str, pa.Table]:
    """Parse a whole file into one Arrow table per table name (every name in TABLE_SCHEMAS is present)."""
    batches: dict[str, list[pa.RecordBatch]] = {t: [] for t in T.TABLE_SCHEMAS}
    for table, batch in parse_stdf(path, file_id, **kwargs):
        batches[table].append(batch)
    return {t: pa.Table.from_batches(b, schema=T.TABLE_SCHEMAS[t]) for t, b in batches.items()}


def record_counts(path: str | Path | BinaryIO) -> dict[str, int]:
    """Count records by type with a header walk only (no field decoding); raises StdfFormatError."""
    stream, name, compression, closers = open_stream(path)
    try:
        block = 8 << 20
        cap = MAX_RECORD + block
        buf = np.empty(cap, np.uint8)
        reader = _Reader(stream, compression)
        n = reader.fill(memoryview(buf)[:block])
        if n < 6:
            reader.check(n, name, 0)
        big, _cpu, _ver = byte_order_from_far(bytes(buf[: min(n, 6)]), name)
        eof = n < block or reader.error is not None
        offs = np.empty(1 << 20, np.int64)
        lens = np.empty(1 << 20, np.int64)
        codes = np.empty(1 << 20, np.int32)
        counts = np.zeros(65536, np.int64)
        total = 0
        base = 0
        pos = 0
        while True:
            k, used = frame(buf[pos:n], n - pos, big, offs, lens, codes)
            if k:
                counts += np.bincount(codes[:k], minlength=65536)
                total += k
                pos += used
                continue
            rest = n - pos
            if eof:
                reader.check(base + n, name, total)
                if rest:
                    _raise_cut(buf[pos:n], big, base + pos, name, total)
                break
            buf[:rest] = buf[pos:n]
            base += pos
            got = reader.fill(memoryview(buf)[rest:cap])
            eof = got < cap - rest or reader.error is not None
            n = rest + got
            pos = 0
        return {
            NAME_OF_CODE.get(int(c), f"UNKNOWN_{int(c) >> 8}_{int(c) & 255}"): int(counts[c])
            for c in np.nonzero(counts)[0]
        }
    finally:
        for c in closers:
            c.close()
