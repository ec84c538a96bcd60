"""Ingesting STDF files: layout, row counts, idempotence, failures kept aside."""

import contextlib
import json
import os
import struct
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from parquetry.stdf import read_stdf
from parquetry.stdf.ingest import ingest_stdf_file, list_failures, partition_value
from parquetry.stdf.landing import scan_landing
from parquetry.storage import Storage
from parquetry.testing.stdf_oracle import open_plain
from parquetry.testing.stdf_writer import StdfWriter, write_lot

# One sample declares big-endian in its FAR but is written little-endian (MANIFEST.md): the parser warns.
pytestmark = pytest.mark.filterwarnings("ignore:.*CPU_TYPE=1 says big-endian:UserWarning")


def _pystdf_mir(path: str) -> dict:
    """The MIR as pystdf reads it from the first records of ``path`` ({} when there is none).

    pystdf takes the byte order from FAR CPU_TYPE alone; the one sample whose CPU_TYPE contradicts
    its data (MANIFEST.md: ``malformed_stdfparser4net_sample.std``) is read little-endian as written."""
    from pystdf.IO import Parser

    class _Parser(Parser):
        def auto_detect_endian(self) -> None:
            if "malformed_stdfparser4net" in path:
                self.endian = "<"
            else:
                super().auto_detect_endian()

    found: dict = {}

    class _Found(Exception):
        pass

    class _Sink:
        def after_send(self, _source, data) -> None:
            rec_type, fields = data
            if type(rec_type).__name__ == "Mir":
                found.update(zip(rec_type.fieldNames, fields, strict=False))
                raise _Found

    parser = _Parser(inp=open_plain(path))
    parser.addSink(_Sink())
    with contextlib.suppress(_Found):
        parser.parse(count=40)
    return found


def _published(root: Path) -> list[Path]:
    return sorted(p for p in (root / "stdf").rglob("*.parquet") if "_failed" not in p.parts)


@pytest.fixture(scope="module")
def ingested(shared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("stdf_root")
    storage = Storage(str(root))
    files = scan_landing(str(shared_dir / "stdf_samples"))
    results = {f.name: (f, ingest_stdf_file(f.uri, storage, f.sha256)) for f in files}
    return root, storage, results


@pytest.mark.slow
def test_every_sample_is_published_under_product_stage_lot_from_its_mir(ingested):
    root, _storage, results = ingested
    assert len(results) >= 25
    for name, (landing, result) in results.items():
        assert result.ok, f"{name}: {result.error}"
        mir = _pystdf_mir(landing.uri)
        expected = {
            "product": partition_value(mir.get("PART_TYP")),
            "stage": partition_value(mir.get("TEST_COD")),
            "lot": partition_value(mir.get("LOT_ID")),
        }
        assert result.partition == expected, name
        for table, written in result.files.items():
            rel = Path(written.path).relative_to(root)
            assert rel.parts == (
                "stdf",
                table,
                f"product={expected['product']}",
                f"stage={expected['stage']}",
                f"lot={expected['lot']}",
                f"{landing.sha256}.parquet",
            )
            assert pq.ParquetFile(written.path).metadata.num_rows == written.rows


@pytest.mark.slow
def test_published_row_counts_match_the_parser_table_by_table(ingested):
    _root, _storage, results = ingested
    for name, (landing, result) in results.items():
        tables = read_stdf(landing.uri, file_id=landing.sha256)
        expected = {t: tbl.num_rows for t, tbl in tables.items() if tbl.num_rows}
        assert result.rows == expected, name
        assert set(result.files) == set(expected), name


@pytest.mark.slow
def test_nothing_is_left_in_staging_and_no_temporaries_remain(ingested):
    root, _storage, _results = ingested
    leftovers = [
        p
        for p in (root / "stdf").rglob("*")
        if p.is_file() and ("_staging" in p.parts or p.name.startswith(".tmp-"))
    ]
    assert leftovers == []


def test_reingesting_the_same_content_replaces_its_files(tmp_path):
    lot = write_lot(tmp_path / "in.stdf", parts=8, tests=5, sites=2)
    storage = Storage(str(tmp_path / "root"))
    first = ingest_stdf_file(lot.path, storage, "abc123")
    before = _published(tmp_path / "root")
    second = ingest_stdf_file(lot.path, storage, "abc123")
    after = _published(tmp_path / "root")
    assert first.ok and second.ok
    assert before == after and len(after) == len(first.files)
    assert {t: f.rows for t, f in first.files.items()} == {t: f.rows for t, f in second.files.items()}
    assert second.files["parts"].rows == 8


def test_sanitised_partition_values_cannot_escape_the_folder():
    assert partition_value("../../etc/passwd") == "etc_passwd"
    assert partition_value("A=B/C") == "A_B_C"
    assert partition_value("  ") == "unknown"
    assert partition_value(None) == "unknown"
    assert partition_value(".hidden") == "hidden"
    assert partition_value("..") == "unknown"
    assert partition_value("LOT 42.1") == "LOT_42.1"


def test_mir_written_after_parts_still_names_the_partition(tmp_path):
    lot = write_lot(tmp_path / "late.stdf", parts=8, tests=3, sites=4, mir_after_parts=4, lot_id="L/ATE")
    storage = Storage(str(tmp_path / "root"))
    result = ingest_stdf_file(lot.path, storage, "late1")
    assert result.ok
    assert result.partition == {"product": "PRODUCT-A", "stage": "FT1", "lot": "L_ATE"}


def _truncated_copy(src: Path, dst: Path, keep: int) -> None:
    dst.write_bytes(src.read_bytes()[:keep])


def test_a_corrupt_file_publishes_nothing_and_keeps_its_partial_read_with_the_offset(tmp_path):
    lot = write_lot(tmp_path / "good.stdf", parts=40, tests=10, sites=4)
    data = bytearray(lot.path.read_bytes())
    # Cut the file in the middle of a record: the last record is incomplete.
    cut = len(data) * 2 // 3
    bad = tmp_path / "bad.stdf"
    bad.write_bytes(bytes(data[:cut]))
    storage = Storage(str(tmp_path / "root"))
    result = ingest_stdf_file(bad, storage, "bad0001")
    assert result.status == "failed"
    assert result.error_offset is not None and 0 < result.error_offset <= cut
    assert _published(tmp_path / "root") == []
    kept = Path(result.failed_dir)
    report = json.loads((kept / "error.json").read_text())
    assert report["offset"] == result.error_offset and report["file_id"] == "bad0001"
    assert report["error_type"] == "StdfFormatError"
    partial = pq.read_table(kept / "results.parquet")
    assert 0 < partial.num_rows < 40 * 10
    assert [f["file_id"] for f in list_failures(storage)] == ["bad0001"]


def test_a_good_ingest_of_a_previously_failed_id_clears_the_failure(tmp_path):
    lot = write_lot(tmp_path / "good.stdf", parts=4, tests=2, sites=2)
    bad = tmp_path / "bad.stdf"
    _truncated_copy(lot.path, bad, lot.path.stat().st_size - 3)
    storage = Storage(str(tmp_path / "root"))
    assert not ingest_stdf_file(bad, storage, "same").ok
    assert ingest_stdf_file(lot.path, storage, "same").ok
    assert list_failures(storage) == []


def test_a_bad_record_length_is_reported_at_its_byte_offset(tmp_path):
    path = tmp_path / "badlen.stdf"
    with open(path, "wb") as fh:
        w = StdfWriter(fh)
        w.record("FAR")
        w.record("MIR", LOT_ID="L1", PART_TYP="P", TEST_COD="T")
        w.record("PIR", HEAD_NUM=1, SITE_NUM=1)
        at = w.raw(struct.pack("<HBB", 400, 15, 10) + b"\x00" * 10)  # claims 400 bytes, 10 follow
    storage = Storage(str(tmp_path / "root"))
    result = ingest_stdf_file(path, storage, "badlen")
    assert not result.ok
    assert result.error_offset == at
    assert "badlen.stdf" in result.error


def test_corrupt_gzip_fails_cleanly(tmp_path):
    lot = write_lot(tmp_path / "x.stdf.gz", parts=40, tests=10, sites=4)
    raw = bytearray(lot.path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = os.urandom(64)
    bad = tmp_path / "bad.stdf.gz"
    bad.write_bytes(bytes(raw))
    storage = Storage(str(tmp_path / "root"))
    result = ingest_stdf_file(bad, storage, "gzbad")
    assert result.status == "failed" and result.error
    assert _published(tmp_path / "root") == []


def test_catalog_callback_sees_every_published_table_once(tmp_path):
    lot = write_lot(tmp_path / "in.stdf", parts=4, tests=2, sites=2, wafers=1)
    seen = []
    storage = Storage(str(tmp_path / "root"))
    result = ingest_stdf_file(
        lot.path, storage, "cb1", register=lambda table, files, schema: seen.append((table, files[0].path))
    )
    assert sorted(seen) == sorted((t, f.path) for t, f in result.files.items())
    assert seen[-1][0] == "files"
