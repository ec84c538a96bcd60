"""pystdf as an independent oracle for the STDF parser's tests.

``pystdf_records(path)`` returns every record pystdf decodes as (record name, {FIELD: value}), in file
order. pystdf has known limits, which the tests account for rather than copy: it picks the byte order
from CPU_TYPE alone, pads omitted trailing fields with None, reads N1 arrays as packed bytes, knows
no V4-2007 record, decodes text as ASCII, and cannot read GDR pad fields.
"""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path


def open_plain(path: str | Path) -> io.BytesIO:
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:3] == b"BZh":
        raw = bz2.decompress(raw)
    return io.BytesIO(raw)


def pystdf_records(path: str | Path, wanted: set[str] | None = None) -> list[tuple[str, dict]]:
    from pystdf.IO import Parser

    out: list[tuple[str, dict]] = []

    class _Sink:
        def after_send(self, _source, data) -> None:
            rec_type, fields = data
            name = type(rec_type).__name__.upper()
            if wanted is None or name in wanted:
                out.append((name, dict(zip(rec_type.fieldNames, fields, strict=False))))

    parser = Parser(inp=open_plain(path))
    parser.addSink(_Sink())
    parser.parse()
    return out
