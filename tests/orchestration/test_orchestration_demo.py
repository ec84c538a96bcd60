"""The demo end to end (`python -m pipeline_assets.demo`), and its summary helpers."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_assets.demo import fill_landing, format_table, summarize

ROOT = Path(__file__).resolve().parents[2]


def test_summary_counts_datasets_and_ignores_staging_failed_and_temporary_files(tmp_path: Path) -> None:
    table = pa.table({"x": list(range(5))})
    for rel in (
        "orders/date=2024-05-01/part-0.parquet",
        "orders/date=2024-05-02/part-0.parquet",
        "stdf/results/product=A/stage=FT/lot=L1/f1.parquet",
        "customers/part-0.parquet",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp_path / rel)
    for rel in (
        "stdf/_failed/abc/results.parquet",
        "stdf/_staging/x/results.parquet",
        "orders/.tmp-1.parquet",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"partial")
    rows = summarize(tmp_path)
    assert [(r["dataset"], r["files"], r["rows"]) for r in rows] == [
        ("customers", 1, 5),
        ("orders", 2, 10),
        ("stdf/results", 1, 5),
    ]
    text = format_table(rows)
    assert re.search(r"^total\s+4\s+20\s", text, re.MULTILINE)


def test_landing_is_filled_with_generated_lots_without_samples(tmp_path: Path) -> None:
    files = fill_landing(
        tmp_path / "landing", samples=tmp_path / "absent", generated_lots=2, split_lot_files=3
    )
    assert [f.name for f in files] == [
        "demo_lot1.stdf",
        "demo_lot2.stdf",
        "demo_split_lot_file01.stdf",
        "demo_split_lot_file02.stdf",
        "demo_split_lot_file03.stdf",
    ]
    assert all(f.stat().st_size > 1000 for f in files)
    assert len({f.read_bytes() for f in files}) == len(files), "distinct contents: none is a re-upload"


@pytest.mark.slow
@pytest.mark.postgres
def test_demo_materializes_every_asset_and_prints_the_summary(tmp_path: Path) -> None:
    from parquetry.pg.cluster import ClusterError, find_bindir

    try:
        find_bindir()
    except ClusterError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    out = subprocess.run(
        [sys.executable, "-m", "pipeline_assets.demo", "--workdir", str(tmp_path / "work"),
         "--output", str(tmp_path / "out"), "--scale", "0.01"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    root = tmp_path / "out" / "parquet"
    assert f"Parquet written under {root}" in out.stdout
    datasets = {r["dataset"]: r for r in summarize(root)}
    # every PostgreSQL table, and the STDF tables of the ingested files
    assert {"customers", "orders", "order_items", "stdf/files", "stdf/results"} <= set(datasets)
    assert datasets["orders"]["files"] == 30, "one file per day of the sample"
    for name, entry in datasets.items():
        assert re.search(
            rf"^{re.escape(name)}\s+{entry['files']}\s+{entry['rows']:,}\s", out.stdout, re.MULTILINE
        )
    # the lot tested in several files was flagged as fragmented and compacted into one file per table
    assert re.search(r"^compacting [1-9]\d* flagged dataset\(s\): .*stdf_results", out.stdout, re.MULTILINE)
    split_lot = list((root / "stdf" / "results").glob("*/*/lot=SPLIT01/*.parquet"))
    assert len(split_lot) == 1, split_lot
    assert not (tmp_path / "work" / "pg" / "data" / "postmaster.pid").exists(), "the server was stopped"
