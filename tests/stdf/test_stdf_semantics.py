"""Field semantics on hand-made records: omitted fields, PTR/MPR defaults, test keys, parts, encodings."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import math
import struct
import zipfile

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.stdf import parse_stdf, read_stdf
from parquetry.testing.stdf_writer import (
    OPT_HI_LIMIT_DEFAULT,
    OPT_LO_LIMIT_DEFAULT,
    OPT_NO_HI_LIMIT,
    OPT_NO_HI_SPEC,
    OPT_NO_LO_LIMIT,
    OPT_NO_LO_SPEC,
    OPT_RESERVED,
    records_bytes,
    write_lot,
)

FULL = OPT_RESERVED | OPT_NO_LO_SPEC | OPT_NO_HI_SPEC  # limits valid, no spec limits


def _read(records, endian="<", **kw) -> dict[str, pa.Table]:
    data = records_bytes([("FAR", {}), *records], endian=endian)
    return read_stdf(io.BytesIO(data), file_id="f1", **kw)


def _ptr(num, site=1, value=1.0, head=1, **kw):
    return ("PTR", {"TEST_NUM": num, "HEAD_NUM": head, "SITE_NUM": site, "RESULT": value, **kw})


def test_omitted_prr_fields_are_null_not_zero():
    t = _read([("PIR", {"HEAD_NUM": 1, "SITE_NUM": 2}),
               ("PRR", {"HEAD_NUM": 1, "SITE_NUM": 2, "PART_FLG": 0, "HARD_BIN": 5, "SOFT_BIN": 6,
                        "truncate_after": "SOFT_BIN"})])  # fmt: skip
    (p,) = t["parts"].to_pylist()
    assert (p["hard_bin"], p["soft_bin"], p["passed"]) == (5, 6, True)
    assert p["x_coord"] is None and p["y_coord"] is None and p["test_t"] is None
    assert p["part_id"] is None and p["part_txt"] is None and p["part_fix"] is None


def test_empty_strings_stay_empty_and_omitted_ones_are_null():
    t = _read(
        [_ptr(7, TEST_TXT="", ALARM_ID="", truncate_after="ALARM_ID"), _ptr(8, truncate_after="RESULT")]
    )
    rows = t["results"].to_pylist()
    assert rows[0]["alarm_id"] == "" and rows[1]["alarm_id"] is None
    assert rows[0]["test_txt"] is None  # an empty TEST_TXT names nothing
    tests = t["tests"].to_pylist()
    assert all(x["units"] is None and x["lo_limit"] is None for x in tests[1:])


def test_later_ptrs_take_the_first_ptrs_defaults():
    recs = [
        _ptr(1, value=1.5, TEST_TXT="vdd", OPT_FLAG=FULL, RES_SCAL=-3, LLM_SCAL=-3, HLM_SCAL=-3,
             LO_LIMIT=1.0, HI_LIMIT=2.0, UNITS="V", C_RESFMT="%5.2f"),
        _ptr(1, value=1.6, TEST_TXT="vdd", truncate_after="TEST_TXT"),  # limits omitted
        _ptr(1, value=1.7, TEST_TXT="vdd", OPT_FLAG=FULL | OPT_LO_LIMIT_DEFAULT | OPT_HI_LIMIT_DEFAULT,
             LO_LIMIT=-9e9, HI_LIMIT=9e9, truncate_after="HI_LIMIT"),  # flagged invalid: defaults
        _ptr(1, value=1.8, TEST_TXT="vdd", OPT_FLAG=FULL | OPT_NO_LO_LIMIT, LO_LIMIT=0.0, HI_LIMIT=3.0,
             truncate_after="HI_LIMIT"),  # no low limit; this record's own high limit
        _ptr(1, value=1.9, TEST_TXT="vdd", OPT_FLAG=FULL | OPT_NO_HI_LIMIT, truncate_after="OPT_FLAG"),
    ]  # fmt: skip
    t = _read(recs)
    rows = t["results"].select(["value", "lo_limit", "hi_limit", "test_id"]).to_pylist()
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    assert [(r["lo_limit"], r["hi_limit"]) for r in rows] == [
        (1.0, 2.0), (1.0, 2.0), (1.0, 2.0), (None, 3.0), (1.0, None),
    ]  # fmt: skip
    assert [r["value"] for r in rows] == [f32(v) for v in (1.5, 1.6, 1.7, 1.8, 1.9)]
    (test,) = t["tests"].to_pylist()
    assert (test["test_num"], test["test_txt"], test["units"], test["c_resfmt"]) == (1, "vdd", "V", "%5.2f")
    assert (test["res_scal"], test["lo_limit"], test["hi_limit"], test["result_count"]) == (-3, 1.0, 2.0, 5)
    assert test["lo_spec"] is None and test["c_llmfmt"] is None  # omitted (empty) -> null


def test_first_ptr_without_limits_leaves_the_test_without_limits():
    t = _read([_ptr(3, TEST_TXT="t", truncate_after="TEST_TXT"),
               _ptr(3, TEST_TXT="t", OPT_FLAG=FULL, LO_LIMIT=1.0, HI_LIMIT=2.0)])  # fmt: skip
    rows = t["results"].select(["lo_limit", "hi_limit"]).to_pylist()
    assert rows == [{"lo_limit": None, "hi_limit": None}, {"lo_limit": 1.0, "hi_limit": 2.0}]
    assert t["tests"]["lo_limit"].to_pylist() == [None]


def test_infinite_and_nan_limits_are_kept_exactly():
    t = _read([_ptr(4, value=float("nan"), TEST_TXT="x", OPT_FLAG=FULL, LO_LIMIT=float("-inf"),
                    HI_LIMIT=float("inf"))])  # fmt: skip
    (r,) = t["results"].to_pylist()
    assert math.isnan(r["value"]) and r["lo_limit"] == float("-inf") and r["hi_limit"] == float("inf")


def test_float32_values_round_trip_bit_exactly():
    vals = [1e-45, 3.4028235e38, -0.0, 0.1, 123456.789]
    t = _read([_ptr(5, value=v, TEST_TXT="x") for v in vals])
    got = np.array(t["results"]["value"].to_pylist(), np.float32)
    assert got.tobytes() == np.array(vals, np.float32).tobytes()


def test_test_key_is_number_and_name_and_a_nameless_record_joins_the_first_test_of_its_number():
    t = _read([
        _ptr(0, TEST_TXT="alpha"), _ptr(0, TEST_TXT="beta"), _ptr(0, truncate_after="RESULT"),
        _ptr(0, TEST_TXT="beta"), _ptr(9, truncate_after="RESULT"), _ptr(9, TEST_TXT="named"),
    ])  # fmt: skip
    tests = t["tests"].select(["test_id", "test_num", "test_txt", "result_count"]).to_pylist()
    assert [(x["test_num"], x["test_txt"], x["result_count"]) for x in tests] == [
        (0, "alpha", 2), (0, "beta", 2), (9, None, 1), (9, "named", 1),
    ]  # fmt: skip
    assert t["results"]["test_txt"].to_pylist() == ["alpha", "beta", "alpha", "beta", None, "named"]


def test_ptr_mpr_and_ftr_with_one_number_are_different_tests():
    t = _read([_ptr(5, TEST_TXT="x"), ("MPR", {"TEST_NUM": 5, "HEAD_NUM": 1, "SITE_NUM": 1, "TEST_TXT": "x"}),
               ("FTR", {"TEST_NUM": 5, "HEAD_NUM": 1, "SITE_NUM": 1, "TEST_TXT": "x"})])  # fmt: skip
    assert t["tests"]["rec_type"].to_pylist() == ["PTR", "MPR", "FTR"]
    assert t["results"]["test_id"].to_pylist() == [0, 1, 2]


def test_results_belong_to_the_part_open_on_their_head_and_site():
    recs = [("PIR", {"HEAD_NUM": 0, "SITE_NUM": 1}), ("PIR", {"HEAD_NUM": 0, "SITE_NUM": 2}),
            _ptr(1, site=2, head=0, TEST_TXT="a"), _ptr(1, site=1, head=0, TEST_TXT="a"),
            ("PRR", {"HEAD_NUM": 0, "SITE_NUM": 2, "PART_ID": "B"}),
            _ptr(2, site=1, head=0, TEST_TXT="b"), _ptr(2, site=2, head=0, TEST_TXT="b"),  # site 2 closed
            ("PRR", {"HEAD_NUM": 0, "SITE_NUM": 1, "PART_ID": "A"})]  # fmt: skip
    t = _read(recs)
    parts = {p["part_seq"]: p["part_id"] for p in t["parts"].to_pylist()}
    assert parts == {0: "A", 1: "B"}  # part_seq = ordinal of the PIR
    rows = t["results"].select(["part_seq", "site_num"]).to_pylist()
    assert [(r["part_seq"], r["site_num"]) for r in rows] == [(1, 2), (0, 1), (0, 1), (None, 2)]


def test_prr_without_pir_and_pir_without_prr_are_kept_and_reported():
    t = _read([("PRR", {"HEAD_NUM": 1, "SITE_NUM": 1, "PART_ID": "orphan"}),
               ("PIR", {"HEAD_NUM": 1, "SITE_NUM": 3}), ("PIR", {"HEAD_NUM": 1, "SITE_NUM": 3}),
               ("PIR", {"HEAD_NUM": 2, "SITE_NUM": 0})])  # fmt: skip
    parts = sorted(t["parts"].to_pylist(), key=lambda p: p["part_seq"])
    assert [(p["part_seq"], p["part_id"], p["pir_rec_index"], p["prr_rec_index"]) for p in parts] == [
        (0, "orphan", None, 1), (1, None, 2, None), (2, None, 3, None), (3, None, 4, None),
    ]  # fmt: skip
    warnings = t["files"]["warnings"][0].as_py()
    assert any("no open PIR" in w for w in warnings) and any("no PRR" in w for w in warnings)
    assert any("reopened" in w for w in warnings)


def test_mpr_expands_to_one_row_per_pin_and_inherits_pin_indexes():
    first = {"TEST_NUM": 7, "HEAD_NUM": 1, "SITE_NUM": 1, "RTN_STAT": [1, 2, 15], "RTN_RSLT": [0.5, 1.5, 2.5],
             "TEST_TXT": "m", "OPT_FLAG": FULL, "LO_LIMIT": 0.0, "HI_LIMIT": 3.0, "RTN_INDX": [10, 11, 12],
             "UNITS": "A", "UNITS_IN": "V"}  # fmt: skip
    later = {"TEST_NUM": 7, "HEAD_NUM": 1, "SITE_NUM": 1, "RTN_STAT": [3, 4, 5], "RTN_RSLT": [],
             "TEST_TXT": "m", "truncate_after": "ALARM_ID"}  # fmt: skip
    t = _read([("MPR", first), ("MPR", later)])
    rows = t["results"].select(["value", "pin_index", "rtn_stat", "lo_limit", "hi_limit"]).to_pylist()
    assert [(r["value"], r["pin_index"], r["rtn_stat"]) for r in rows] == [
        (0.5, 10, 1), (1.5, 11, 2), (2.5, 12, 15), (None, 10, 3), (None, 11, 4), (None, 12, 5),
    ]  # fmt: skip
    assert {(r["lo_limit"], r["hi_limit"]) for r in rows} == {(0.0, 3.0)}
    (test,) = t["tests"].to_pylist()
    assert test["rtn_indx"] == [10, 11, 12] and test["units_in"] == "V" and test["start_in"] is None


def test_ftr_is_a_result_without_a_value():
    t = _read([("FTR", {"TEST_NUM": 3, "HEAD_NUM": 1, "SITE_NUM": 4, "TEST_FLG": 0x80, "RTN_INDX": [1, 2],
                        "RTN_STAT": [1, 0], "FAIL_PIN": (3, b"\x05"), "VECT_NAM": "pat", "TEST_TXT": "func",
                        "ALARM_ID": "al"})])  # fmt: skip
    (r,) = t["results"].to_pylist()
    assert (r["rec_type"], r["test_txt"], r["test_flg"], r["value"], r["alarm_id"]) == (
        "FTR",
        "func",
        0x80,
        None,
        "al",
    )


def test_summaries_wafers_bins_and_file_fields():
    t = _read([
        ("MIR", {"LOT_ID": "LOT\xe9", "SETUP_T": 1_700_000_000, "TEST_COD": "FT"}),
        ("WIR", {"HEAD_NUM": 1, "SITE_GRP": 255, "START_T": 5, "WAFER_ID": "W1"}),
        ("WRR", {"HEAD_NUM": 1, "SITE_GRP": 255, "FINISH_T": 6, "PART_CNT": 10,
                 "truncate_after": "PART_CNT"}),
        ("HBR", {"HEAD_NUM": 255, "SITE_NUM": 0, "HBIN_NUM": 1, "HBIN_CNT": 10, "HBIN_PF": "P",
                 "HBIN_NAM": "ok"}),
        ("SBR", {"HEAD_NUM": 1, "SITE_NUM": 2, "SBIN_NUM": 3, "SBIN_CNT": 4, "truncate_after": "SBIN_CNT"}),
        ("TSR", {"HEAD_NUM": 255, "TEST_NUM": 9, "EXEC_CNT": 3, "TEST_NAM": "t9",
                 "truncate_after": "TEST_NAM"}),
        ("PCR", {"HEAD_NUM": 1, "SITE_NUM": 2, "PART_CNT": 4}),
        ("MRR", {"FINISH_T": 1_700_000_500, "truncate_after": "FINISH_T"}),
    ])  # fmt: skip
    f = t["files"].to_pylist()[0]
    assert f["lot_id"] == "LOT\xe9" and f["test_cod"] == "FT" and f["finish_t"] == 1_700_000_500
    assert f["disp_cod"] is None and f["usr_desc"] is None and f["setup_time"].timestamp() == 1_700_000_000
    (w,) = t["wafers"].to_pylist()
    assert (w["wafer_id"], w["start_t"], w["finish_t"], w["part_cnt"], w["good_cnt"]) == (
        "W1",
        5,
        6,
        10,
        None,
    )
    bins = t["bins"].to_pylist()
    assert [(b["bin_type"], b["all_sites"], b["bin_num"], b["bin_pf"], b["bin_nam"]) for b in bins] == [
        ("H", True, 1, "P", "ok"), ("S", False, 3, None, None),
    ]  # fmt: skip
    (ts,) = t["test_summaries"].to_pylist()
    assert ts["all_sites"] and ts["test_nam"] == "t9" and ts["seq_name"] is None and ts["opt_flag"] is None


def test_gdr_generic_data_is_typed_and_unknown_records_are_kept_raw():
    data = records_bytes([
        ("FAR", {}),
        ("GDR", {"GEN_DATA": [("B0", None), ("U1", 255), ("U2", 65535), ("U4", 7), ("I1", -1), ("I2", -2),
                              ("I4", -3), ("R4", 0.5), ("R8", 0.25), ("Cn", "txt"), ("Bn", b"\x01\x02"),
                              ("Dn", (9, b"\xff\x01")), ("N1", 9)]}),
    ], endian=">") + struct.pack(">HBB", 3, 180, 7) + b"abc"  # fmt: skip
    t = read_stdf(io.BytesIO(data))
    rows = t["records_other"].to_pylist()
    gdr = json.loads(rows[0]["fields"])
    assert gdr["GEN_DATA"] == [["B0", None], ["U1", 255], ["U2", 65535], ["U4", 7], ["I1", -1], ["I2", -2],
                               ["I4", -3], ["R4", 0.5], ["R8", 0.25], ["Cn", "txt"], ["Bn", "0102"],
                               ["Dn", {"bits": 9, "hex": "ff01"}], ["N1", 9]]  # fmt: skip
    assert (rows[1]["rec_type"], rows[1]["rec_typ"], rows[1]["rec_sub"]) == ("UNKNOWN_180_7", 180, 7)
    assert json.loads(rows[1]["fields"]) == {"raw_hex": "616263"}


def test_bytes_beyond_the_last_field_are_skipped_and_cut_fields_reported():
    body = (
        struct.pack("<IBBBBf", 12, 1, 1, 0, 0, 2.5) + b"\x01X" + b"\x00" + b"\xff" * 30
    )  # junk after fields
    cut = struct.pack("<IBBBBf", 13, 1, 1, 0, 0, 3.5) + b"\x09ab"  # TEST_TXT says 9 bytes, has 2
    data = records_bytes([("FAR", {})]) + struct.pack("<HBB", len(body), 15, 10) + body
    data += struct.pack("<HBB", len(cut), 15, 10) + cut + records_bytes([_ptr(14, TEST_TXT="after")])
    t = read_stdf(io.BytesIO(data))
    rows = t["results"].select(["test_num", "test_txt", "value", "alarm_id"]).to_pylist()
    assert rows[0] == {"test_num": 12, "test_txt": "X", "value": 2.5, "alarm_id": ""}
    assert rows[1] == {"test_num": 13, "test_txt": None, "value": 3.5, "alarm_id": None}
    assert rows[2]["test_txt"] == "after"
    assert any("cut part-way" in w for w in t["files"]["warnings"][0].as_py())


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded (their dictionaries depend on how the file was cut into batches)."""
    fields = [
        pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
        for f in table.schema
    ]
    table = table.cast(pa.schema(fields))
    # rows of different record types may come in another order when batches are cut elsewhere
    return table.sort_by("rec_index") if "rec_index" in table.column_names else table


def _tables_equal(
    a: dict[str, pa.Table],
    b: dict[str, pa.Table],
    skip_files=("byte_order", "cpu_type", "compression", "file_name"),
) -> None:
    for name in a:
        ta, tb = a[name], b[name]
        if name == "files":
            ta = ta.drop_columns(list(skip_files))
            tb = tb.drop_columns(list(skip_files))
        assert _plain(ta).equals(_plain(tb)), name


@pytest.fixture(scope="module")
def lot_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("lot") / "lot.stdf"
    write_lot(path, parts=100, tests=50, sites=4, mpr_every=7, ftr_every=9, wafers=2, seed=3)
    return path


def test_compressed_inputs_read_the_same_as_plain(lot_path, tmp_path):
    plain = read_stdf(lot_path, file_id="x")
    raw = lot_path.read_bytes()
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "a.bz2").write_bytes(bz2.compress(raw))
    with zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.stdf", raw)
    for name, comp in (("a.gz", "gzip"), ("a.bz2", "bz2"), ("a.zip", "zip")):
        got = read_stdf(tmp_path / name, file_id="x")
        assert got["files"]["compression"][0].as_py() == comp
        _tables_equal(plain, got)
        with open(tmp_path / name, "rb") as fh:  # file objects too
            _tables_equal(plain, read_stdf(fh, file_id="x"))


def test_tiny_chunks_and_blocks_give_the_same_tables(lot_path):
    whole = read_stdf(lot_path, file_id="x")
    assert lot_path.stat().st_size > 3 * 65536  # so that the 64 KiB blocks carry records across
    pieces = read_stdf(lot_path, file_id="x", batch_records=7, block_bytes=1)
    for name in whole:
        assert _plain(whole[name]).equals(_plain(pieces[name])), name
    assert sum(1 for t, _ in parse_stdf(lot_path, batch_records=7) if t == "results") > 100


@settings(max_examples=12, deadline=None)
@given(
    endian=st.sampled_from(["<", ">"]),
    sites=st.integers(1, 5),
    head=st.sampled_from([0, 1, 7]),
    later_form=st.sampled_from(["RESULT", "TEST_TXT", "ALARM_ID", "OPT_FLAG"]),
    parts=st.integers(1, 23),
    tests=st.integers(1, 12),
    mpr_every=st.sampled_from([0, 2, 5]),
    wafers=st.integers(0, 2),
    seed=st.integers(0, 1000),
)
def test_written_lots_read_back_to_what_was_written(
    tmp_path_factory, endian, sites, head, later_form, parts, tests, mpr_every, wafers, seed
):
    path = tmp_path_factory.mktemp("prop") / "lot.stdf"
    lot = write_lot(path, parts=parts, tests=tests, sites=sites, head=head, endian=endian,
                    later_form=later_form, mpr_every=mpr_every, wafers=wafers, seed=seed)  # fmt: skip
    t = read_stdf(path, file_id="p")
    f = t["files"].to_pylist()[0]
    assert f["byte_order"] == ("big" if endian == ">" else "little")
    assert dict(f["record_counts"]) == lot.record_counts
    assert f["lot_id"] == lot.lot_id and f["part_typ"] == lot.part_typ and f["warnings"] == []
    got_parts = sorted(t["parts"].to_pylist(), key=lambda p: p["part_seq"])
    assert len(got_parts) == len(lot.parts)
    for g, w in zip(got_parts, lot.parts, strict=True):
        assert (g["head_num"], g["site_num"], g["part_id"], g["x_coord"], g["y_coord"]) == (
            w.head, w.site, w.part_id, w.x, w.y)  # fmt: skip
        assert (g["hard_bin"], g["soft_bin"], g["passed"]) == (w.hard_bin, w.soft_bin, w.passed)
    defs = {d.number: d for d in lot.tests}
    res = t["results"].filter(pa.compute.equal(t["results"]["rec_type"], "PTR"))
    by_part: dict[int, dict[int, float]] = {}
    for r in res.to_pylist():
        by_part.setdefault(r["part_seq"], {})[r["test_num"]] = r["value"]
        d = defs[r["test_num"]]
        assert r["test_txt"] == d.name
        assert (r["lo_limit"], r["hi_limit"]) == (float(np.float32(d.lo)), float(np.float32(d.hi)))
    assert [by_part[i] for i in range(len(lot.parts))] == [w.results for w in lot.parts]
    mpr = t["results"].filter(pa.compute.equal(t["results"]["rec_type"], "MPR"))
    assert mpr.num_rows == lot.mpr_results
    assert t["wafers"].num_rows == lot.record_counts.get("WIR", 0) == (wafers and min(wafers, parts))
    tests_tbl = {x["test_num"]: x for x in t["tests"].to_pylist() if x["rec_type"] == "PTR"}
    assert {n: x["units"] for n, x in tests_tbl.items()} == {n: d.units for n, d in defs.items()}


@pytest.mark.slow
def test_thousands_of_tests_grow_the_test_table_without_losing_any(tmp_path):
    path = tmp_path / "many.stdf"
    lot = write_lot(path, parts=2, tests=9000, sites=1, later_form="RESULT", seed=5)
    t = read_stdf(path, batch_records=5000)
    tests = t["tests"].to_pylist()
    assert len(tests) == 9000
    defs = {d.number: d for d in lot.tests}
    for x in tests:
        d = defs[x["test_num"]]
        assert (x["test_txt"], x["units"], x["result_count"]) == (d.name, d.units, 2)
        assert (x["lo_limit"], x["hi_limit"]) == (float(np.float32(d.lo)), float(np.float32(d.hi)))
    res = t["results"].select(["part_seq", "test_num", "test_txt", "value"]).to_pylist()
    assert all(r["test_txt"] == defs[r["test_num"]].name for r in res)
    assert {(r["part_seq"], r["test_num"]): r["value"] for r in res} == {
        (i, n): v for i, p in enumerate(lot.parts) for n, v in p.results.items()
    }


def test_many_mpr_pin_lists_grow_the_pin_index_pool():
    pins = list(range(120))
    first = [("MPR", {"TEST_NUM": n, "HEAD_NUM": 1, "SITE_NUM": 1, "RTN_STAT": [n % 16] * 120,
                      "RTN_RSLT": [float(n)] * 120, "TEST_TXT": f"m{n}", "OPT_FLAG": FULL,
                      "RTN_INDX": [p + n for p in pins]}) for n in range(200)]  # fmt: skip
    later = [("MPR", {"TEST_NUM": n, "HEAD_NUM": 1, "SITE_NUM": 1, "RTN_STAT": [1] * 120, "RTN_RSLT": [],
                      "TEST_TXT": f"m{n}", "truncate_after": "ALARM_ID"}) for n in range(200)]  # fmt: skip
    t = _read(first + later)
    tests = t["tests"].to_pylist()
    assert [x["rtn_indx"] for x in tests] == [[p + n for p in pins] for n in range(200)]
    res = t["results"].select(["test_num", "pin_index", "value"]).to_pylist()
    assert len(res) == 400 * 120
    assert all(r["pin_index"] == r["test_num"] + i % 120 for i, r in enumerate(res))
    assert all(r["value"] is None for r in res[200 * 120 :])


def test_non_finite_floats_in_json_fields_become_strings():
    t = _read([("GDR", {"GEN_DATA": [("R4", float("nan")), ("R8", float("-inf")), ("R4", 1.0)]})])
    (row,) = t["records_other"].to_pylist()
    assert json.loads(row["fields"])["GEN_DATA"] == [["R4", "NaN"], ["R8", "-Infinity"], ["R4", 1.0]]
