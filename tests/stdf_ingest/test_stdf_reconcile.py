"""Published STDF tables agree with a header walk of the file; a lost row is reported by name."""

import hashlib
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from parquetry.stdf import record_counts
from parquetry.stdf.ingest import ingest_stdf_file
from parquetry.stdf.reconcile import reconcile_record_counts
from parquetry.storage import Storage


def _ingest(path: Path, root: Path):
    storage = Storage(str(root))
    result = ingest_stdf_file(str(path), storage, hashlib.sha256(path.read_bytes()).hexdigest())
    assert result.ok, result.error
    return storage, result


@pytest.mark.slow
def test_every_sample_reconciles_with_its_record_counts(shared_dir: Path, tmp_path: Path) -> None:
    samples = sorted(p for p in (shared_dir / "stdf_samples").iterdir() if p.name != "MANIFEST.md")
    for n, path in enumerate(samples):
        storage, result = _ingest(path, tmp_path / str(n))
        checks = reconcile_record_counts(record_counts(str(path)), result.files, storage)
        assert [c for c in checks if not c.ok] == [], path.name


def test_a_dropped_result_row_is_reported(tmp_path: Path) -> None:
    from parquetry.testing.stdf_writer import write_lot

    path = tmp_path / "lot.stdf"
    write_lot(path, parts=6, tests=5, sites=2, seed=7)
    storage, result = _ingest(path, tmp_path / "out")
    counts = record_counts(str(path))
    assert all(c.ok for c in reconcile_record_counts(counts, result.files, storage))

    results_path = result.files["results"].path
    table = pq.read_table(results_path)
    ptr_rows = pc.equal(table["rec_type"].cast("string"), "PTR")
    first_ptr = pc.index(ptr_rows, True).as_py()
    pq.write_table(table.take([i for i in range(table.num_rows) if i != first_ptr]), results_path)
    failed = [c for c in reconcile_record_counts(counts, result.files, storage) if not c.ok]
    assert [(c.what, c.expected - c.found) for c in failed] == [("PTR records -> results rows", 1)]
