"""R*4 results and limits keep their exact bits (NaN payloads, signalling NaN, -0.0, subnormals), in
both byte orders, through the parser and through the published Parquet file."""

from __future__ import annotations

import io
import struct

import numpy as np
import pyarrow.parquet as pq
import pytest

from parquetry.stdf import read_stdf
from parquetry.stdf.ingest import ingest_stdf_file
from parquetry.storage import Storage
from parquetry.testing.stdf_writer import OPT_NO_HI_SPEC, OPT_NO_LO_SPEC, OPT_RESERVED

LIMITS_VALID = OPT_RESERVED | OPT_NO_LO_SPEC | OPT_NO_HI_SPEC
BITS = [0x7FC12345, 0x7F800001, 0xFFC00001, 0x80000000, 0x00000001, 0x7F800000, 0xFF7FFFFF, 0x3DCCCCCD]


def _record(bo: str, typ: int, sub: int, body: bytes) -> bytes:
    return struct.pack(bo + "HBB", len(body), typ, sub) + body


def _lot(bo: str) -> bytes:
    """FAR, one part, a PTR per bit pattern (RESULT, LO_LIMIT and HI_LIMIT all that pattern, raw),
    and an MPR whose RTN_RSLT are the patterns."""
    far = _record(bo, 0, 10, bytes([1 if bo == ">" else 2, 4]))
    out = [far, _record(bo, 5, 10, bytes([1, 1]))]
    for k, bits in enumerate(BITS):
        raw = struct.pack(bo + "I", bits)
        body = struct.pack(bo + "IBBBB", 100 + k, 1, 1, 0, 0) + raw + b"\x01t" + b"\x00"
        body += bytes([LIMITS_VALID, 0, 0, 0]) + raw + raw
        out.append(_record(bo, 15, 10, body))
    n = len(BITS)
    mpr = struct.pack(bo + "IBBBBHH", 900, 1, 1, 0, 0, n, n) + bytes((n + 1) // 2)
    mpr += b"".join(struct.pack(bo + "I", b) for b in BITS) + b"\x01m"
    out.append(_record(bo, 15, 15, mpr))
    out.append(_record(bo, 5, 20, bytes([1, 1, 0])))
    return b"".join(out)


def _bits(column) -> list[int]:
    return (
        np.asarray(column.combine_chunks().to_numpy(zero_copy_only=False), np.float32)
        .view(np.uint32)
        .tolist()
    )


@pytest.mark.parametrize("bo", ["<", ">"])
def test_r4_fields_keep_every_bit_in_the_parser_and_in_parquet(bo, tmp_path):
    data = _lot(bo)
    results = read_stdf(io.BytesIO(data), file_id="f")["results"]
    n = len(BITS)
    assert _bits(results["value"]) == BITS + BITS
    assert _bits(results["lo_limit"])[:n] == BITS and _bits(results["hi_limit"])[:n] == BITS
    path = tmp_path / "bits.stdf"
    path.write_bytes(data)
    ingested = ingest_stdf_file(path, Storage(str(tmp_path / "root")), "bits")
    assert ingested.ok, ingested.error
    published = pq.read_table(ingested.files["results"].path).sort_by("rec_index")
    assert _bits(published["value"]) == BITS + BITS
    assert _bits(published["lo_limit"])[:n] == BITS and _bits(published["hi_limit"])[:n] == BITS
