"""Opening STDF streams (plain, gzip, bz2, zip), byte order from the FAR, and record framing.

Framing is a numba walk over a block of the decompressed stream that returns every complete record's
offset, REC_LEN and type code; a record cut by the end of a block is carried into the next block.
REC_LEN is authoritative: the next record always starts 4 + REC_LEN bytes after the current one.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from parquetry.stdf.errors import StdfFormatError

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"
ZIP_MAGIC = b"PK\x03\x04"


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with the bytes already peeked put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        if not data:
            return 0
        b[: len(data)] = data
        return len(data)


def open_stream(source: str | Path | BinaryIO) -> tuple[BinaryIO, str, str, list]:
    """Return (decompressed binary stream, display name, compression, things to close).

    Compression is recognised by magic bytes, not by file name, so a renamed file still opens.
    A zip archive must hold exactly one member (the STDF file).
    """
    closers: list = []
    if isinstance(source, (str, Path)):
        name = str(source)
        raw: BinaryIO = open(source, "rb")  # noqa: SIM115 - closed by the caller through closers
        closers.append(raw)
    else:
        name = str(getattr(source, "name", "<stream>"))
        raw = source
    if hasattr(raw, "peek"):
        head = raw.peek(4)[:4]  # type: ignore[attr-defined]
        stream: BinaryIO = raw
    elif hasattr(raw, "seekable") and raw.seekable():
        pos = raw.tell()
        head = raw.read(4)
        raw.seek(pos)
        stream = raw
    else:
        head = raw.read(4)
        stream = io.BufferedReader(_Prefixed(head, raw))  # type: ignore[arg-type]
    if head.startswith(GZIP_MAGIC):
        out: BinaryIO = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        closers.insert(0, out)
        return out, name, "gzip", closers
    if head.startswith(BZ2_MAGIC):
        out = bz2.BZ2File(stream, mode="rb")  # type: ignore[assignment]
        closers.insert(0, out)
        return out, name, "bz2", closers
    if head.startswith(ZIP_MAGIC):
        if not (hasattr(stream, "seekable") and stream.seekable()):
            stream = io.BytesIO(stream.read())  # zip needs random access to its directory
        zf = zipfile.ZipFile(stream)
        members = [i for i in zf.infolist() if not i.is_dir()]
        if len(members) != 1:
            raise StdfFormatError(
                0, name, 0, f"zip archive holds {len(members)} files; expected one STDF file"
            )
        out = zf.open(members[0])  # type: ignore[assignment]
        closers[:0] = [out, zf]
        return out, f"{name}!{members[0].filename}", "zip", closers
    return stream, name, "none", closers


def byte_order_from_far(head: bytes, name: str) -> tuple[bool, int, int]:
    """Return (big_endian, cpu_type, stdf_ver) from the first 6 bytes of the stream.

    The FAR's REC_LEN is always 2, so its two bytes tell the byte order (02 00 little, 00 02 big)
    whatever CPU_TYPE claims; CPU_TYPE is reported, and a contradiction becomes a warning upstream.
    """
    if len(head) < 6:
        raise StdfFormatError(
            len(head), name, 0, f"stream ends after {len(head)} bytes, before a complete FAR"
        )
    if head[2] != 0 or head[3] != 10:
        raise StdfFormatError(
            0, name, 0, f"first record is type {head[2]}/{head[3]}, not a FAR (0/10): not an STDF file"
        )
    if head[0] == 2 and head[1] == 0:
        big = False
    elif head[0] == 0 and head[1] == 2:
        big = True
    else:
        raise StdfFormatError(
            0, name, 0, f"malformed FAR: REC_LEN bytes {head[0]:02x} {head[1]:02x}, expected 02 00 or 00 02"
        )
    return big, head[4], head[5]


def _frame_impl(buf, n, big, offs, lens, codes):
    """Walk complete records in ``buf[:n]``; returns (count, offset of the first incomplete record)."""
    pos = 0
    k = 0
    cap = offs.shape[0]
    while pos + 4 <= n and k < cap:
        ln = _u2(buf, pos, big)
        if pos + 4 + ln > n:
            break
        offs[k] = pos
        lens[k] = ln
        codes[k] = np.int32(buf[pos + 2]) * 256 + np.int32(buf[pos + 3])
        pos += 4 + ln
        k += 1
    return k, pos


def _scan_impl(buf, n, big, offs, lens, codes, counts, kind, rare):
    """``_frame_impl`` that also sizes the chunk for the decoder, in the same pass over the headers.

    Counts records by type code into ``counts``; ``kind[code]`` classes a record: 1 one result row
    (PTR, FTR), 2 MPR (max(RTN_ICNT, RSLT_CNT, 1) rows), 3 part record (PIR, PRR), 0 any other, whose
    index goes to ``rare``. Returns (records, end of the last, result rows, part rows, rare records).
    """
    pos = 0
    k = 0
    n_res = 0
    n_parts = 0
    n_rare = 0
    cap = offs.shape[0]
    while pos + 4 <= n and k < cap:
        ln = _u2(buf, pos, big)
        if pos + 4 + ln > n:
            break
        code = np.int32(buf[pos + 2]) * 256 + np.int32(buf[pos + 3])
        offs[k] = pos
        lens[k] = ln
        codes[k] = code
        counts[code] += 1
        c = kind[code]
        if c == 1:
            n_res += 1
        elif c == 2:
            icnt = np.int64(0)
            rcnt = np.int64(0)
            if ln >= 10:
                icnt = _u2(buf, pos + 12, big)
            if ln >= 12:
                rcnt = _u2(buf, pos + 14, big)
            n_res += max(icnt, rcnt, np.int64(1))
        elif c == 3:
            n_parts += 1
        else:
            rare[n_rare] = k
            n_rare += 1
        pos += 4 + ln
        k += 1
    return k, pos, n_res, n_parts, n_rare


def _u2(buf, p, big):
    if big:
        return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])
    return np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)


_kernels: dict[str, object] = {}


def _compiled() -> dict[str, object]:
    """Compile the framing kernels on first use, so that importing stays cheap. ``_u2`` becomes an
    inlined numba function first: both kernels call it for every record header."""
    global _u2
    if not _kernels:
        import numba

        _u2 = numba.njit(inline="always", cache=True, nogil=True)(_u2)
        _kernels["frame"] = numba.njit(cache=True, nogil=True)(_frame_impl)
        _kernels["scan"] = numba.njit(cache=True, nogil=True, _nrt=False)(_scan_impl)
    return _kernels


def frame(buf: np.ndarray, n: int, big: bool, offs: np.ndarray, lens: np.ndarray, codes: np.ndarray):
    """Numba-compiled ``_frame_impl``: the header walk alone (record counts)."""
    return _compiled()["frame"](buf, n, big, offs, lens, codes)


def scan(buf, n, big, offs, lens, codes, counts, kind, rare):
    """Numba-compiled ``_scan_impl``: the header walk that also sizes the chunk for the decoder."""
    return _compiled()["scan"](buf, n, big, offs, lens, codes, counts, kind, rare)
