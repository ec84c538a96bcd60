"""DuckDB views over ingested STDF, and the example queries checked against pystdf on the same files."""

from collections import defaultdict
from statistics import median

import duckdb
import pytest

from parquetry.stdf.ingest import ingest_stdf_file
from parquetry.stdf.landing import hash_file
from parquetry.stdf.views import (
    create_views,
    failing_test_pareto,
    parametric_distribution,
    yield_by_lot,
    yield_by_wafer,
)
from parquetry.storage import Storage
from parquetry.testing.stdf_oracle import pystdf_records
from parquetry.testing.stdf_writer import write_lot
from resources.duckdb import DuckDBResource

pytestmark = pytest.mark.slow  # one module fixture parses a real 4.4 MB lot with pystdf (a few seconds)

SAMPLE = "galaxy_lot2.stdf.gz"  # real A530 wafer sort, big-endian, 1569 parts, 52k PTR


def _file_id(path) -> str:
    import fsspec

    return hash_file(fsspec.filesystem("file"), str(path))[0]


@pytest.fixture(scope="module")
def lake(shared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("stdf_lake")
    storage = Storage(str(root))
    sample = shared_dir / "stdf_samples" / SAMPLE
    assert ingest_stdf_file(sample, storage, _file_id(sample)).ok
    generated = write_lot(
        root.parent / "gen.stdf", parts=60, tests=8, sites=4, wafers=3, seed=11, lot_id="GEN-7"
    )
    assert ingest_stdf_file(generated.path, storage, "gen7").ok
    con = duckdb.connect()
    create_views(con, str(root))
    records = pystdf_records(sample)
    return con, root, records, generated


def _pystdf_parts(records):
    """(part flags, wafer id, results) per part, following PIR/PRR per head/site as the spec says."""
    open_parts, parts, wafer = {}, [], None
    for name, f in records:
        if name == "WIR":
            wafer = f["WAFER_ID"]
        elif name == "WRR":
            wafer = None
        elif name == "PIR":
            open_parts[(f["HEAD_NUM"], f["SITE_NUM"])] = {"results": [], "wafer": wafer}
        elif name in ("PTR", "MPR", "FTR"):
            open_parts[(f["HEAD_NUM"], f["SITE_NUM"])]["results"].append((name, f))
        elif name == "PRR":
            part = open_parts.pop((f["HEAD_NUM"], f["SITE_NUM"]))
            part["flg"] = f["PART_FLG"]
            parts.append(part)
    return parts


def test_every_view_reads_and_counts_what_was_published(lake):
    con, root, _records, _generated = lake
    for path in (root / "stdf").iterdir():
        if path.name.startswith("_"):
            continue
        import pyarrow.parquet as pq

        expected = sum(pq.ParquetFile(p).metadata.num_rows for p in path.rglob("*.parquet"))
        assert con.execute(f"SELECT count(*) FROM stdf_{path.name}").fetchone()[0] == expected
    lots = {r[0] for r in con.execute("SELECT DISTINCT lot FROM stdf_parts").fetchall()}
    assert lots == {"GAL-LOT", "GEN-7"}


def test_yield_by_wafer_matches_pystdf_part_flags(lake):
    con, _root, records, _generated = lake
    by_wafer = defaultdict(lambda: [0, 0])
    for part in _pystdf_parts(records):
        valid = not part["flg"] & 0x10
        by_wafer[part["wafer"]][0] += 1
        by_wafer[part["wafer"]][1] += valid and not part["flg"] & 0x08
    rows = {r["wafer_id"]: r for r in yield_by_wafer(con) if r["lot_id"] == "GAL-LOT"}
    assert {w: (r["parts"], r["good"]) for w, r in rows.items()} == {w: tuple(v) for w, v in by_wafer.items()}


def test_yield_by_wafer_and_lot_match_the_generated_truth(lake):
    con, _root, _records, generated = lake
    truth = defaultdict(lambda: [0, 0])
    for p in generated.parts:
        truth[p.wafer_id][0] += 1
        truth[p.wafer_id][1] += p.passed
    rows = {r["wafer_id"]: (r["parts"], r["good"]) for r in yield_by_wafer(con) if r["lot_id"] == "GEN-7"}
    assert rows == {w: tuple(v) for w, v in truth.items()} and len(rows) == 3
    (lot,) = [r for r in yield_by_lot(con) if r["lot_id"] == "GEN-7"]
    good = sum(p.passed for p in generated.parts)
    assert (lot["parts"], lot["good"]) == (60, good)
    assert lot["yield_pct"] == pytest.approx(round(100.0 * good / 60, 2))


def test_failing_test_pareto_matches_pystdf_test_flags(lake):
    con, _root, records, _generated = lake
    failing = defaultdict(int)
    for part in _pystdf_parts(records):
        failed_tests = {
            f["TEST_NUM"] for _n, f in part["results"] if f["TEST_FLG"] & 0x80 and not f["TEST_FLG"] & 0x40
        }
        for num in failed_tests:
            failing[num] += 1
    rows = failing_test_pareto(con, top=1000, lot="GAL-LOT")
    assert {r["test_num"]: r["failing_parts"] for r in rows} == dict(failing)
    counts = [r["failing_parts"] for r in rows]
    assert counts == sorted(counts, reverse=True)
    assert rows[-1]["cumulative_pct"] == pytest.approx(100.0)


def test_parametric_distribution_matches_pystdf_results(lake):
    con, _root, records, _generated = lake
    values = defaultdict(list)
    for name, f in records:
        if name == "PTR" and not f["TEST_FLG"] & 0x02:  # bit 1: RESULT not valid
            values[f["TEST_NUM"]].append(f["RESULT"])
    test_num, vals = max(values.items(), key=lambda kv: len(kv[1]))
    stats = parametric_distribution(con, test_num, bins=10, lot="GAL-LOT")
    assert stats["n"] == len(vals)
    assert stats["mean"] == pytest.approx(sum(vals) / len(vals), rel=1e-6)
    assert (stats["min"], stats["max"]) == pytest.approx((min(vals), max(vals)))
    assert stats["median"] == pytest.approx(median(vals))
    assert sum(n for _b, n in stats["histogram"]) == len(vals)
    assert all(0 <= b < 10 for b, _n in stats["histogram"])


def test_views_exist_even_for_tables_with_no_file_yet(tmp_path):
    con = duckdb.connect()
    names = create_views(con, str(tmp_path))
    assert "stdf_results" in names
    assert con.execute("SELECT count(*) FROM stdf_results").fetchone()[0] == 0
    assert "lot" in [d[0] for d in con.execute("SELECT * FROM stdf_parts").description]


def test_duckdb_resource_gives_a_connection_with_the_views(lake):
    _con, root, _records, _generated = lake
    with DuckDBResource(data_root=str(root)).get_connection() as con:
        assert con.execute("SELECT count(*) FROM stdf_files").fetchone()[0] == 2
