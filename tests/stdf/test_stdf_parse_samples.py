"""The parser against the real (and writer-made) STDF samples: counts from the manifest, pystdf values."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from parquetry.stdf import TABLE_SCHEMAS, StdfWarning, read_stdf, record_counts
from parquetry.stdf.spec import RECORDS
from parquetry.testing.stdf_oracle import pystdf_records


def _manifest(shared: Path) -> dict[str, dict]:
    """file name -> {"counts": {REC: n}, "cpu_type": int, "heads_sites": str} from MANIFEST.md."""
    out: dict[str, dict] = {}
    for line in (shared / "stdf_samples" / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 9 or not cells[0].startswith("`"):
            continue
        counts = {k: int(v) for k, v in re.findall(r"([A-Z]{3})=(\d+)", cells[7])}
        out[cells[0].strip("`")] = {"counts": counts, "cpu_type": int(cells[4][0]), "ver": cells[5]}
    return out


@pytest.fixture(scope="module")
def samples(shared_dir: Path) -> dict[str, dict]:
    manifest = _manifest(shared_dir)
    assert len(manifest) >= 25, "manifest table not understood"
    for name in manifest:
        assert (shared_dir / "stdf_samples" / name).exists(), name
    return manifest


@pytest.fixture(scope="module")
def parsed(shared_dir: Path, samples: dict[str, dict]) -> dict[str, dict[str, pa.Table]]:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StdfWarning)
        for name in samples:
            out[name] = read_stdf(shared_dir / "stdf_samples" / name, file_id=f"id-{name}")
    return out


REAL = [
    "galaxy_lot2.stdf.gz",
    "galaxy_lot3.stdf",
    "galaxy_demofile.stdf.gz",
    "d10_metis_test.std",
    "d10_AD7226.std",
    "93k_IN2864LP_QUAL_SN101.stdf",
    "93k_PLL_TX_SN5592.stdf",
    "93k_Wafer_TX_WM19784-13B1.stdf",
    "93k_ayad_ws.stdf",
    "93k_bcdm_145bga_sn1.stdf",
    "93k_main_Lot_1_4site.stdf",
    "93k_open_main_Lot_1.stdf",
    "93k_x17y8.stdf",
    "93k_58_100000_test.stdf",
    "93k_main_Lot_1_Wafer_1_noPTR.stdf",
    "igxl_integraflex_rabbi.stdf",
]


def test_every_sample_parses_with_counts_from_the_manifest(samples, parsed):
    for name, info in samples.items():
        files = parsed[name]["files"].to_pylist()
        assert len(files) == 1, name
        got = dict(files[0]["record_counts"])
        assert got == info["counts"], name
        assert files[0]["records"] == sum(info["counts"].values())
        assert files[0]["file_id"] == f"id-{name}"


def test_header_walk_counts_match_the_manifest(shared_dir, samples):
    for name, info in samples.items():
        assert record_counts(shared_dir / "stdf_samples" / name) == info["counts"], name


def test_tables_follow_the_published_schemas(parsed):
    for name, tables in parsed.items():
        assert set(tables) == set(TABLE_SCHEMAS), name
        for table, schema in TABLE_SCHEMAS.items():
            assert tables[table].schema.equals(schema), (name, table)


def test_every_record_lands_in_a_table(parsed):
    """Counts per record type equal the rows (or row sources) found in the tables."""
    for name, t in parsed.items():
        counts = dict(t["files"]["record_counts"][0].as_py())
        per_kind: dict[str, int] = {}
        res = t["results"]
        for kind, _rec in set(zip(res["rec_type"].to_pylist(), res["rec_index"].to_pylist(), strict=True)):
            per_kind[kind] = per_kind.get(kind, 0) + 1
        for kind in ("PTR", "MPR", "FTR"):
            assert per_kind.get(kind, 0) == counts.get(kind, 0), (name, kind)
        other = t["records_other"]["rec_type"].to_pylist()
        for rec in ("ATR", "VUR", "RDR", "SDR", "PMR", "PGR", "PLR", "PSR", "NMR", "CNR", "SSR", "CDR",
                    "STR", "BPS", "EPS", "GDR", "DTR", "WCR"):  # fmt: skip
            assert other.count(rec) == counts.get(rec, 0), (name, rec)
        bins = t["bins"]["bin_type"].to_pylist()
        assert bins.count("H") == counts.get("HBR", 0) and bins.count("S") == counts.get("SBR", 0), name
        assert t["test_summaries"].num_rows == counts.get("TSR", 0), name
        assert t["part_counts"].num_rows == counts.get("PCR", 0), name
        prr = pc.count(t["parts"]["prr_rec_index"]).as_py()
        assert prr == counts.get("PRR", 0), name
        pir = pc.count(t["parts"]["pir_rec_index"]).as_py()
        assert pir == counts.get("PIR", 0), name


def test_v4_2007_sample_has_every_record_type(parsed):
    t = parsed["synth_libstdf_v4_2007_all_records.stdf.bz2"]
    files = t["files"].to_pylist()[0]
    assert files["stdf_version"] == "V4-2007"
    assert set(dict(files["record_counts"])) == {r.name for r in RECORDS}
    other = {r["rec_type"]: r["fields"] for r in t["records_other"].to_pylist()}
    assert '"UPD_NAM": ["V4-2007", "Scan:2007.1"]' in other["VUR"]
    assert '"ATPG_NAM": ["DATAIO_1", "DATAIO_2", "CLK"]' in other["NMR"]
    assert '"CHN_LIST": [10, 11, 12, 13]' in other["SSR"]
    assert other["CNR"].startswith('{"CHN_NUM": 0, "BIT_POS": 987654321, "CELL_NAM": "ABCDEFGHIJ')
    # GDR pad fields (type 0) are kept, typed values decoded
    assert '["Cn", "Gendata Example"], ["U1", 255], ["U2", 65123], ["I1", -125], ["B0", null]' in other["GDR"]


def test_malformed_cpu_type_sample_is_read_by_its_rec_len_byte_order(shared_dir, samples):
    path = shared_dir / "stdf_samples" / "malformed_stdfparser4net_sample.std"
    with pytest.warns(StdfWarning, match="CPU_TYPE=1 says big-endian but REC_LEN is written little-endian"):
        t = read_stdf(path)
    files = t["files"].to_pylist()[0]
    assert files["byte_order"] == "little" and files["cpu_type"] == 1
    assert any("CPU_TYPE=1" in w for w in files["warnings"])
    assert dict(files["record_counts"]) == samples["malformed_stdfparser4net_sample.std"]["counts"]
    # little-endian decoding gives sane values (big-endian would make HEAD 1 / SITE 1 absurd elsewhere)
    parts = t["parts"].to_pylist()
    assert [(p["head_num"], p["site_num"]) for p in parts] == [(1, 1)]
    assert t["results"]["head_num"].to_pylist() == [1]


def test_byte_order_matches_the_manifest_on_well_formed_files(parsed, samples):
    for name, info in samples.items():
        if name.startswith("malformed_"):
            continue
        bo = parsed[name]["files"]["byte_order"][0].as_py()
        assert bo == ("big" if info["cpu_type"] == 1 else "little"), name


def _same_float(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL)
def test_values_agree_with_pystdf(shared_dir, parsed, name):
    """PTR/MPR/FTR/PIR/PRR/MIR fields, record by record, against pystdf (an independent reader).

    pystdf pads omitted fields with None where the parser has null or the test's default (limits):
    only fields present in the record are compared, except where noted.
    """
    t = parsed[name]
    recs = pystdf_records(shared_dir / "stdf_samples" / name, {"PTR", "MPR", "FTR", "PRR", "MIR"})
    res = t["results"].to_pydict()
    first_row: dict[int, int] = {}
    for i, rec_index in enumerate(res["rec_index"]):
        first_row.setdefault(rec_index, i)
    rows_by_kind: dict[str, list[int]] = {"PTR": [], "MPR": [], "FTR": []}
    for i in first_row.values():
        rows_by_kind[res["rec_type"][i]].append(i)
    for kind in rows_by_kind.values():
        kind.sort(key=lambda i: res["rec_index"][i])
    seen = {"PTR": 0, "MPR": 0, "FTR": 0}
    checked = 0
    for rec_name, f in recs:
        if rec_name in seen:
            i = rows_by_kind[rec_name][seen[rec_name]]
            seen[rec_name] += 1
            assert res["test_num"][i] == f["TEST_NUM"]
            assert (res["head_num"][i], res["site_num"][i]) == (f["HEAD_NUM"], f["SITE_NUM"])
            assert res["test_flg"][i] == f["TEST_FLG"]
            if rec_name == "PTR":
                assert res["parm_flg"][i] == f["PARM_FLG"]
                assert _same_float(res["value"][i], f["RESULT"]), (i, res["value"][i], f["RESULT"])
                if f["ALARM_ID"] is not None:
                    assert res["alarm_id"][i] == f["ALARM_ID"]
                opt = f["OPT_FLAG"]
                if opt is not None and f["LO_LIMIT"] is not None and not opt & 0x50:
                    assert _same_float(res["lo_limit"][i], f["LO_LIMIT"])
                if opt is not None and opt & 0x40:
                    assert res["lo_limit"][i] is None
                if opt is not None and f["HI_LIMIT"] is not None and not opt & 0xA0:
                    assert _same_float(res["hi_limit"][i], f["HI_LIMIT"])
                if opt is not None and opt & 0x80:
                    assert res["hi_limit"][i] is None
            if rec_name == "MPR":
                n = max(f["RTN_ICNT"] or 0, f["RSLT_CNT"] or 0, 1)
                values = res["value"][i : i + n]
                assert all(r == res["rec_index"][i] for r in res["rec_index"][i : i + n])
                assert all(_same_float(a, b) for a, b in zip(values, f["RTN_RSLT"] or [], strict=False))
                if f["RTN_INDX"]:
                    assert res["pin_index"][i : i + len(f["RTN_INDX"])] == f["RTN_INDX"]
            if f.get("TEST_TXT"):
                assert res["test_txt"][i] == f["TEST_TXT"]
            checked += 1
    assert seen == {k: len(v) for k, v in rows_by_kind.items()}
    prrs = [f for n, f in recs if n == "PRR"]
    parts = sorted(
        (p for p in t["parts"].to_pylist() if p["prr_rec_index"] is not None),
        key=lambda p: p["prr_rec_index"],
    )
    assert len(parts) == len(prrs)
    for p, f in zip(parts, prrs, strict=True):
        assert (p["head_num"], p["site_num"], p["part_flg"], p["num_test"], p["hard_bin"], p["soft_bin"]) == (
            f["HEAD_NUM"], f["SITE_NUM"], f["PART_FLG"], f["NUM_TEST"], f["HARD_BIN"], f["SOFT_BIN"],
        )  # fmt: skip
        assert (p["x_coord"], p["y_coord"], p["test_t"], p["part_id"]) == (
            f["X_COORD"], f["Y_COORD"], f["TEST_T"], f["PART_ID"],
        )  # fmt: skip
        assert p["passed"] == (None if f["PART_FLG"] & 16 else not f["PART_FLG"] & 8)
        checked += 1
    mir = [f for n, f in recs if n == "MIR"]
    files = t["files"].to_pylist()[0]
    for key, value in mir[0].items():
        if value is not None:
            assert files[key.lower()] == value, key
    assert checked == len(recs) - len(mir)


def test_results_join_parts_on_their_own_head_and_site(parsed):
    """Multi-site: a result's part is the part open on the result's (head, site)."""
    for name in ("93k_main_Lot_1_4site.stdf", "igxl_integraflex_rabbi.stdf", "d10_metis_test.std",
                 "93k_58_100000_test.stdf", "synth_stdfoo_testcaseSmall.stdf.gz"):  # fmt: skip
        t = parsed[name]
        parts = {p["part_seq"]: p for p in t["parts"].to_pylist()}
        res = t["results"].select(["part_seq", "head_num", "site_num", "rec_index"]).to_pylist()
        assert res
        for r in res:
            p = parts[r["part_seq"]]
            assert (p["head_num"], p["site_num"]) == (r["head_num"], r["site_num"])
            assert p["pir_rec_index"] < r["rec_index"] < p["prr_rec_index"]
        sites = {p["site_num"] for p in parts.values()}
        assert len(sites) > 1, name


def test_head_zero_is_a_real_head(parsed):
    t = parsed["d10_metis_test.std"]
    assert set(t["parts"]["head_num"].to_pylist()) == {0}
    assert pc.count(t["results"]["part_seq"]).as_py() == t["results"].num_rows


def test_summary_head_255_means_all_sites(parsed):
    t = parsed["93k_main_Lot_1_4site.stdf"]
    bins = t["bins"].to_pylist()
    assert any(b["all_sites"] for b in bins) and any(not b["all_sites"] for b in bins)
    assert all(b["all_sites"] == (b["head_num"] == 255) for b in bins)
    counts = t["part_counts"].to_pylist()
    merged = [c for c in counts if c["all_sites"]]
    assert len(merged) == 1
    assert merged[0]["part_cnt"] == sum(c["part_cnt"] for c in counts if not c["all_sites"])


def test_reused_test_numbers_with_other_names_are_separate_tests(parsed):
    t = parsed["93k_58_100000_test.stdf"]["tests"]
    ptr = t.filter(pc.equal(t["rec_type"], "PTR"))
    assert set(ptr["test_num"].to_pylist()) == {0}
    names = ptr["test_txt"].to_pylist()
    assert len(names) == len(set(names)) > 1


def test_later_ptrs_inherit_the_first_ptrs_limits(parsed):
    """IG-XL writes limits only in the first PTR of a test; every later result carries them."""
    t = parsed["igxl_integraflex_rabbi.stdf"]
    tests = {r["test_id"]: r for r in t["tests"].to_pylist()}
    res = t["results"].filter(pc.equal(t["results"]["rec_type"], "PTR"))
    for r in res.select(["test_id", "lo_limit", "hi_limit"]).to_pylist()[::97]:
        d = tests[r["test_id"]]
        assert (r["lo_limit"], r["hi_limit"]) == (d["lo_limit"], d["hi_limit"])
    assert pc.count(res["lo_limit"]).as_py() > 0.9 * res.num_rows


@pytest.mark.slow
@pytest.mark.parametrize("name", ["93k_main_Lot_1_4site.stdf", "galaxy_lot2.stdf.gz", "d10_AD7226.std",
                                  "93k_ayad_ws.stdf", "igxl_integraflex_rabbi.stdf"])  # fmt: skip
def test_summary_records_agree_with_pystdf(shared_dir, parsed, name):
    """TSR, HBR, SBR and PCR (decoded all at once per chunk) field by field against pystdf."""
    t = parsed[name]
    recs = pystdf_records(shared_dir / "stdf_samples" / name, {"TSR", "HBR", "SBR", "PCR"})
    tsr = sorted(t["test_summaries"].to_pylist(), key=lambda r: r["rec_index"])
    bins = sorted(t["bins"].to_pylist(), key=lambda r: r["rec_index"])
    pcr = sorted(t["part_counts"].to_pylist(), key=lambda r: r["rec_index"])
    got = {"TSR": iter(tsr), "PCR": iter(pcr), "HBR": iter(b for b in bins if b["bin_type"] == "H"),
           "SBR": iter(b for b in bins if b["bin_type"] == "S")}  # fmt: skip
    n = 0
    for rec_name, f in recs:
        row = next(got[rec_name])
        for key, value in f.items():
            if value is None:  # pystdf's padding for omitted fields: the parser has null
                assert row[_column(rec_name, key)] is None, (rec_name, key)
                continue
            ours = row[_column(rec_name, key)]
            assert ours == value or _same_float(ours, value), (rec_name, key, ours, value)
        assert row["all_sites"] == (f["HEAD_NUM"] == 255)
        n += 1
    assert n == len(tsr) + len(bins) + len(pcr) > 0


def _column(rec_name: str, key: str) -> str:
    if rec_name in ("HBR", "SBR") and key[1:].startswith("BIN_"):
        return "bin_" + key[5:].lower()
    return key.lower()
