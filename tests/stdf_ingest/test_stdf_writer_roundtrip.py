"""The STDF writer, read back by pystdf (an independent reader)."""

import io
import struct
from collections import Counter

import pytest

from parquetry.testing.stdf_oracle import pystdf_records
from parquetry.testing.stdf_writer import StdfWriteError, StdfWriter, write_bulk_lot, write_lot


@pytest.mark.parametrize("endian", ["<", ">"])
def test_written_lot_reads_back_in_pystdf_with_the_same_records_and_values(tmp_path, endian):
    lot = write_lot(
        tmp_path / "lot.stdf",
        parts=10,
        tests=6,
        sites=4,
        endian=endian,
        wafers=2,
        mpr_every=2,
        ftr_every=3,
        seed=3,
    )
    records = list(pystdf_records(lot.path))
    assert Counter(name for name, _ in records) == Counter(lot.record_counts)
    prrs = [f for name, f in records if name == "PRR"]
    read = [
        (p["SITE_NUM"], p["HARD_BIN"], p["SOFT_BIN"], p["PART_ID"], p["X_COORD"], p["Y_COORD"]) for p in prrs
    ]
    assert read == [(p.site, p.hard_bin, p.soft_bin, p.part_id, p.x, p.y) for p in lot.parts]
    ptrs = [f for name, f in records if name == "PTR"]
    by_part = [(p.site, t.number, p.results[t.number]) for p in lot.parts for t in lot.tests]
    assert sorted((f["SITE_NUM"], f["TEST_NUM"], f["RESULT"]) for f in ptrs) == sorted(by_part)
    mir = next(f for name, f in records if name == "MIR")
    assert (mir["LOT_ID"], mir["PART_TYP"], mir["TEST_COD"]) == (lot.lot_id, lot.part_typ, lot.test_cod)
    far = next(f for name, f in records if name == "FAR")
    assert far["CPU_TYPE"] == (2 if endian == "<" else 1)


def test_first_ptr_of_a_test_carries_limits_and_later_ones_are_truncated(tmp_path):
    lot = write_lot(tmp_path / "lot.stdf", parts=8, tests=3, sites=4, later_form="TEST_TXT")
    ptrs = [f for name, f in pystdf_records(lot.path) if name == "PTR"]
    first: dict[int, dict] = {}
    for f in ptrs:
        if f["TEST_NUM"] not in first:
            first[f["TEST_NUM"]] = f
            t = next(t for t in lot.tests if t.number == f["TEST_NUM"])
            assert f["LO_LIMIT"] == pytest.approx(t.lo, rel=1e-6)
            assert f["UNITS"] == t.units
        else:
            assert f["TEST_TXT"] is not None and f["ALARM_ID"] is None and f["LO_LIMIT"] is None


def test_later_ptrs_can_flag_limits_as_defaults_through_opt_flag(tmp_path):
    lot = write_lot(tmp_path / "lot.stdf", parts=4, tests=2, sites=2, later_form="OPT_FLAG")
    ptrs = [f for name, f in pystdf_records(lot.path) if name == "PTR"]
    seen: set[int] = set()
    later = [f for f in ptrs if f["TEST_NUM"] in seen or seen.add(f["TEST_NUM"])]
    assert len(later) == len(ptrs) - 2
    assert all(f["OPT_FLAG"] & 0x30 == 0x30 and f["UNITS"] is None for f in later)


def test_truncated_record_ends_after_the_named_field():
    buf = io.BytesIO()
    w = StdfWriter(buf, endian="<")
    w.record("PTR", TEST_NUM=7, RESULT=1.5, truncate_after="RESULT")
    data = buf.getvalue()
    assert struct.unpack("<HBB", data[:4]) == (12, 15, 10)
    assert struct.unpack("<f", data[12:16]) == (1.5,)


def test_arrays_fill_their_count_and_nibbles_pack_low_first():
    buf = io.BytesIO()
    w = StdfWriter(buf, endian=">")
    w.record("MPR", TEST_NUM=1, RTN_STAT=[1, 2, 3], RTN_RSLT=[0.5], truncate_after="RTN_RSLT")
    body = buf.getvalue()[4:]
    rtn_icnt, rslt_cnt = struct.unpack(">HH", body[8:12])
    assert (rtn_icnt, rslt_cnt) == (3, 1)
    assert body[12:14] == bytes([0x21, 0x03])
    assert struct.unpack(">f", body[14:18]) == (0.5,)


def test_bad_values_are_refused_with_the_field_name():
    w = StdfWriter(io.BytesIO())
    with pytest.raises(StdfWriteError, match=r"PTR\.HEAD_NUM"):
        w.record("PTR", HEAD_NUM=300)
    with pytest.raises(StdfWriteError, match="unknown fields"):
        w.record("PIR", NOPE=1)
    with pytest.raises(StdfWriteError, match="2 items but INDX_CNT=3"):
        w.record("PGR", INDX_CNT=3, PMR_INDX=[1, 2])


def test_bulk_lot_has_the_announced_records_and_consistent_parts(tmp_path):
    bulk = write_bulk_lot(tmp_path / "bulk.stdf", target_mb=0.5, sites=4, tests=30, mpr_every=10, ftr_every=8)
    assert bulk.bytes == (tmp_path / "bulk.stdf").stat().st_size >= 500_000
    counts = Counter()
    prrs = []
    fails = 0
    for name, f in pystdf_records(bulk.path):
        counts[name] += 1
        if name == "PRR":
            prrs.append(f)
        if name == "PTR":
            fails += bool(f["TEST_FLG"] & 0x80)
    assert counts["PTR"] == bulk.ptr_records and counts["MPR"] == bulk.mpr_records
    assert counts["FTR"] == bulk.ftr_records and counts["PRR"] == counts["PIR"] == bulk.parts
    assert [p["PART_ID"] for p in prrs] == [f"{i:010d}" for i in range(1, bulk.parts + 1)]
    failed_parts = sum(bool(p["PART_FLG"] & 0x08) for p in prrs)
    assert 0 < failed_parts < bulk.parts and fails >= failed_parts
    assert all((p["HARD_BIN"] == 1) == (not p["PART_FLG"] & 0x08) for p in prrs)
