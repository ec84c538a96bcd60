"""Malformed STDF gives StdfFormatError with file name, byte offset and the records read before it."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry.stdf import StdfFormatError, parse_stdf, read_stdf, record_counts

SAMPLE = "93k_PLL_TX_SN5592.stdf"  # 84 kB, little-endian, PTR/MPR/FTR


def _headers(data: bytes, big: bool = False) -> list[int]:
    """Offsets of every record start (a plain header walk, written here independently)."""
    out, pos = [], 0
    while pos + 4 <= len(data):
        out.append(pos)
        (ln,) = struct.unpack_from(">H" if big else "<H", data, pos)
        pos += 4 + ln
    return out


@pytest.fixture(scope="module")
def sample_bytes(shared_dir: Path) -> bytes:
    return (shared_dir / "stdf_samples" / SAMPLE).read_bytes()


def _drain(source, **kw) -> dict[str, int]:
    rows: dict[str, int] = {}
    for table, batch in parse_stdf(source, **kw):
        rows[table] = rows.get(table, 0) + batch.num_rows
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=84487))
def test_a_file_cut_anywhere_fails_clearly_or_reads_whole_records(sample_bytes, cut):
    data = sample_bytes[:cut]
    starts = _headers(sample_bytes)
    complete = [s for s in starts if s < cut]
    if cut in starts or cut == len(sample_bytes):
        if cut < 6:
            with pytest.raises(StdfFormatError):
                _drain(io.BytesIO(data))
            return
        # a cut on a record boundary is a shorter valid stream
        counts = record_counts(io.BytesIO(data))
        assert sum(counts.values()) == len(complete)
        return
    with pytest.raises(StdfFormatError) as info:
        _drain(io.BytesIO(data))
    err = info.value
    if cut < 6:
        assert err.offset <= 6
        return
    assert err.offset == complete[-1], "offset names the record that runs past the end"
    assert err.records_read == len(complete) - 1
    assert "<stream>" in str(err) or err.path
    assert str(err.offset) in str(err)


def test_error_names_the_file_and_offset(tmp_path, sample_bytes):
    path = tmp_path / "cut.stdf"
    starts = _headers(sample_bytes)
    path.write_bytes(sample_bytes[: starts[100] + 7])
    with pytest.raises(StdfFormatError) as info:
        read_stdf(path)
    err = info.value
    assert err.path == str(path) and err.offset == starts[100] and err.records_read == 100
    assert f"{path}: invalid STDF at byte offset {starts[100]} (after 100 records)" in str(err)
    assert "declares REC_LEN" in err.reason


def test_record_header_cut_mid_way(sample_bytes):
    starts = _headers(sample_bytes)
    with pytest.raises(StdfFormatError, match="inside a record header") as info:
        _drain(io.BytesIO(sample_bytes[: starts[50] + 3]))
    assert info.value.offset == starts[50] and info.value.records_read == 50


def test_rec_len_running_past_the_end_is_refused(sample_bytes):
    starts = _headers(sample_bytes)
    bad = bytearray(sample_bytes)
    at = starts[-1]
    struct.pack_into("<H", bad, at, 60000)  # the last record claims far more than is left
    with pytest.raises(StdfFormatError, match="REC_LEN=60000") as info:
        _drain(io.BytesIO(bytes(bad)))
    assert info.value.offset == at and info.value.records_read == len(starts) - 1


def test_batches_before_the_fault_are_delivered(sample_bytes):
    starts = _headers(sample_bytes)
    got: list[str] = []
    with pytest.raises(StdfFormatError):
        for table, _batch in parse_stdf(io.BytesIO(sample_bytes[: starts[-1] + 5]), batch_records=64):
            got.append(table)
    assert "results" in got and "files" not in got  # the file summary comes only after a clean end


@pytest.mark.parametrize(
    ("head", "match"),
    [
        (b"", "before a complete FAR"),
        (b"\x02\x00\x00", "before a complete FAR"),
        (b"\x02\x00\x01\x0a\x02\x04", "not a FAR"),
        (b"\x03\x00\x00\x0a\x02\x04\x00", "malformed FAR: REC_LEN bytes 03 00"),
        (b"\x02\x00\x00\x0a\x02\x03", "STDF_VER=3"),
        (b"hello world, not stdf", "not a FAR"),
    ],
)
def test_malformed_far_is_refused(head, match):
    with pytest.raises(StdfFormatError, match=match) as info:
        _drain(io.BytesIO(head))
    assert info.value.records_read == 0


def test_zip_with_several_members_is_refused(tmp_path, sample_bytes):
    import zipfile

    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.stdf", sample_bytes)
        zf.writestr("b.stdf", sample_bytes)
    with pytest.raises(StdfFormatError, match="holds 2 files"):
        read_stdf(path)


def test_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(StdfFormatError(12, "f.stdf", 3, "why")))
    assert (err.offset, err.path, err.records_read, err.reason) == (12, "f.stdf", 3, "why")


@pytest.mark.parametrize("compress", ["gzip", "bz2"])
def test_a_cut_compressed_file_is_a_format_error(tmp_path, sample_bytes, compress):
    import bz2
    import gzip

    packed = gzip.compress(sample_bytes) if compress == "gzip" else bz2.compress(sample_bytes)
    path = tmp_path / f"cut.{compress}"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(StdfFormatError, match=r"decompression failed|declares REC_LEN|record header") as info:
        read_stdf(path)
    assert info.value.path == str(path) and 0 <= info.value.offset < len(sample_bytes)
    if compress == "gzip":  # gzip decodes up to the cut (bz2 only whole 900 kB blocks)
        assert info.value.offset > 0 and info.value.records_read > 0
