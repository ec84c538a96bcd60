"""DuckDB views pinned to the catalog's live files count every row once, even while a compaction's
replaced files still sit in the folder waiting for their grace period."""

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.stdf.views import create_views

TABLES = {"results": pa.schema([pa.field("value", pa.float32())])}


def _lot_dir(root: Path) -> Path:
    path = root / "stdf" / "results" / "product=P" / "stage=FT1" / "lot=L1"
    path.mkdir(parents=True)
    return path


def test_views_on_live_files_ignore_files_a_compaction_retired(tmp_path: Path) -> None:
    lot = _lot_dir(tmp_path)
    pq.write_table(pa.table({"value": pa.array([1.0, 2.0], pa.float32())}), lot / "a.parquet")
    pq.write_table(pa.table({"value": pa.array([3.0], pa.float32())}), lot / "b.parquet")
    # the compaction's output, committed; a.parquet and b.parquet are retired but not yet deleted
    compacted = lot / "compacted-1.parquet"
    pq.write_table(pa.table({"value": pa.array([1.0, 2.0, 3.0], pa.float32())}), compacted)

    con = duckdb.connect()
    create_views(con, str(tmp_path), TABLES, live_files={"results": [str(compacted)]})
    assert con.execute("SELECT count(*), sum(value), min(lot) FROM stdf_results").fetchone() == (3, 6.0, "L1")

    con = duckdb.connect()
    create_views(con, str(tmp_path), TABLES)
    assert con.execute("SELECT count(*) FROM stdf_results").fetchone() == (6,), "globbing sees both sets"


def test_a_table_with_no_live_file_is_an_empty_typed_view(tmp_path: Path) -> None:
    pq.write_table(pa.table({"value": pa.array([1.0], pa.float32())}), _lot_dir(tmp_path) / "retired.parquet")
    con = duckdb.connect()
    create_views(con, str(tmp_path), TABLES, live_files={"results": []})
    assert con.execute("SELECT count(*) FROM stdf_results").fetchone() == (0,)
    assert "value" in [c[0] for c in con.execute("DESCRIBE stdf_results").fetchall()]
