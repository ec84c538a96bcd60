"""DuckDB views over the STDF Parquet tables, and the example queries of docs/stdf_queries.md.

:func:`create_views` defines ``stdf_<table>`` for every table (``stdf_files``, ``stdf_parts``,
``stdf_tests``, ``stdf_results``, ``stdf_bins``, ``stdf_wafers``, ...) as a ``read_parquet`` over
``<root>/stdf/<table>/**/*.parquet`` with Hive partitioning, so the partition columns ``product``,
``stage`` and ``lot`` (sanitised MIR values, always VARCHAR) come with every row and filters on them
skip whole folders. A table with no file yet gets an empty view of the right columns, so queries do
not depend on which record types the ingested files happened to hold.

Flag conventions used below (STDF V4): a part failed when PRR ``PART_FLG`` bit 3 is set and bit 4
(pass/fail invalid) is clear (the ``passed`` column); a test result failed when ``TEST_FLG`` bit 7 is
set and bit 6 (pass/fail invalid) is clear.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from parquetry.stdf.ingest import PARTITION_KEYS, STDF_PREFIX

VIEW_PREFIX = "stdf_"
_HIVE_TYPES = "{" + ", ".join(f"'{k}': 'VARCHAR'" for k in PARTITION_KEYS) + "}"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_root(data_root: str, table: str) -> str:
    root = data_root.removeprefix("file://").rstrip("/")
    return posixpath.join(root, STDF_PREFIX, table)


def _has_files(con: Any, pattern: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM glob(?)", [pattern]).fetchone()[0])


def create_views(
    con: Any,
    data_root: str,
    tables: dict[str, pa.Schema] | None = None,
    live_files: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Create (or replace) one view per STDF table on connection ``con``; returns the view names.

    ``data_root`` is the Parquet root (a local path, or a URL DuckDB can read with its httpfs
    extension loaded). ``tables`` defaults to the parser's ``TABLE_SCHEMAS``.

    ``live_files`` (table -> paths, see :func:`catalog_live_files`) pins a view to the files the
    catalog holds live. Without it a view globs the table's folder, which, between a compaction's
    commit and the deletion of the files it replaced, holds both and would count those rows twice.
    """
    if tables is None:
        from parquetry.stdf.tables import TABLE_SCHEMAS

        tables = TABLE_SCHEMAS
    names = []
    for table, schema in tables.items():
        view = VIEW_PREFIX + table
        source: str | None = None
        if live_files is not None and live_files.get(table):
            source = "[" + ", ".join(_sql_string(path) for path in live_files[table]) + "]"
        elif live_files is None:
            pattern = posixpath.join(_table_root(data_root, table), "**", "*.parquet")
            source = _sql_string(pattern) if _has_files(con, pattern) else None
        if source is not None:
            con.execute(
                f"CREATE OR REPLACE VIEW {_ident(view)} AS SELECT * FROM read_parquet("
                f"{source}, hive_partitioning = true, union_by_name = true, "
                f"hive_types = {_HIVE_TYPES})"
            )
        else:
            empty = pa.schema([*schema, *(pa.field(k, pa.string()) for k in PARTITION_KEYS)]).empty_table()
            con.execute(f"DROP VIEW IF EXISTS {_ident(view)}")
            con.register(view, empty)
        names.append(view)
    return names


def catalog_live_files(catalog: Any, tables: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The live files of each STDF table's catalog dataset (``stdf_<table>``), one consistent snapshot
    per table; a table the catalog does not know yet maps to no files."""
    if tables is None:
        from parquetry.stdf.tables import TABLE_SCHEMAS

        tables = TABLE_SCHEMAS
    from parquetry.catalog.catalog import UnknownDataset

    out: dict[str, list[str]] = {}
    for table in tables:
        try:
            out[table] = [f.path for f in catalog.snapshot(f"stdf_{table}").files]
        except UnknownDataset:
            out[table] = []
    return out


# -- example queries --------------------------------------------------------------------------------------

YIELD_BY_WAFER_SQL = """
SELECT f.part_typ AS product, f.test_cod AS stage, f.lot_id, w.wafer_id,
       count(*) AS parts,
       count(*) FILTER (WHERE p.passed) AS good,
       count(*) FILTER (WHERE NOT p.passed) AS bad,
       round(100.0 * count(*) FILTER (WHERE p.passed) / nullif(count(p.passed), 0), 2) AS yield_pct
FROM stdf_parts p
JOIN stdf_files f USING (file_id)
LEFT JOIN stdf_wafers w
  ON w.file_id = p.file_id AND w.head_num = p.head_num
 AND p.pir_rec_index > w.wir_rec_index
 AND p.pir_rec_index < coalesce(w.wrr_rec_index, 9223372036854775807)
GROUP BY ALL
ORDER BY product, stage, lot_id, wafer_id NULLS LAST
"""

YIELD_BY_LOT_SQL = """
SELECT f.part_typ AS product, f.test_cod AS stage, f.lot_id,
       count(DISTINCT p.file_id) AS files,
       count(*) AS parts,
       count(*) FILTER (WHERE p.passed) AS good,
       round(100.0 * count(*) FILTER (WHERE p.passed) / nullif(count(p.passed), 0), 2) AS yield_pct
FROM stdf_parts p
JOIN stdf_files f USING (file_id)
GROUP BY ALL
ORDER BY product, stage, lot_id
"""

FAILING_TEST_PARETO_SQL = """
WITH failing AS (
    SELECT r.test_num, r.test_txt, r.rec_type, count(DISTINCT (r.file_id, r.part_seq)) AS failing_parts
    FROM stdf_results r
    WHERE (r.test_flg & 128) <> 0 AND (r.test_flg & 64) = 0
      AND ($lot IS NULL OR r.lot = $lot) AND ($product IS NULL OR r.product = $product)
    GROUP BY ALL
)
SELECT test_num, test_txt, rec_type, failing_parts,
       round(100.0 * failing_parts / sum(failing_parts) OVER (), 2) AS pct,
       round(100.0 * sum(failing_parts) OVER (ORDER BY failing_parts DESC, test_num, test_txt
             ROWS UNBOUNDED PRECEDING) / sum(failing_parts) OVER (), 2) AS cumulative_pct
FROM failing
ORDER BY failing_parts DESC, test_num, test_txt
LIMIT $top
"""

DISTRIBUTION_SQL = """
SELECT count(value) AS n, avg(value) AS mean, stddev_samp(value) AS stddev,
       min(value) AS min, quantile_cont(value, 0.01) AS p01, median(value) AS median,
       quantile_cont(value, 0.99) AS p99, max(value) AS max,
       any_value(lo_limit) AS lo_limit, any_value(hi_limit) AS hi_limit
FROM stdf_results
WHERE test_num = $test_num AND ($test_txt IS NULL OR test_txt = $test_txt) AND value IS NOT NULL
  AND ($lot IS NULL OR lot = $lot)
"""

HISTOGRAM_SQL = """
WITH v AS (
    SELECT value FROM stdf_results
    WHERE test_num = $test_num AND ($test_txt IS NULL OR test_txt = $test_txt) AND value IS NOT NULL
      AND ($lot IS NULL OR lot = $lot)
), b AS (SELECT min(value) AS lo, max(value) AS hi FROM v)
SELECT coalesce(least(CAST(floor((value - lo) / nullif((hi - lo) / $bins, 0)) AS INTEGER), $bins - 1), 0)
         AS bucket,
       count(*) AS n
FROM v, b
GROUP BY ALL
ORDER BY bucket
"""


def _rows(con: Any, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(query, params or {})
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def yield_by_wafer(con: Any) -> list[dict[str, Any]]:
    """Parts, good parts and yield per product / stage / lot / wafer (parts outside WIR/WRR: wafer None)."""
    return _rows(con, YIELD_BY_WAFER_SQL)


def yield_by_lot(con: Any) -> list[dict[str, Any]]:
    """Parts, good parts and yield per product / stage / lot over all its files."""
    return _rows(con, YIELD_BY_LOT_SQL)


def failing_test_pareto(
    con: Any, top: int = 20, lot: str | None = None, product: str | None = None
) -> list[dict[str, Any]]:
    """Tests ranked by how many parts failed them, with share and cumulative share (a Pareto chart).

    ``lot`` and ``product`` filter on the (sanitised) partition values."""
    return _rows(con, FAILING_TEST_PARETO_SQL, {"top": top, "lot": lot, "product": product})


def parametric_distribution(
    con: Any, test_num: int, test_txt: str | None = None, bins: int = 20, lot: str | None = None
) -> dict[str, Any]:
    """Summary statistics and an equal-width histogram of one parametric test's results.

    STDF test numbers are not unique in every file (some testers write TEST_NUM 0 for all), so
    ``test_txt`` narrows the test down when needed."""
    params = {"test_num": test_num, "test_txt": test_txt, "lot": lot}
    stats = _rows(con, DISTRIBUTION_SQL, params)[0]
    stats["histogram"] = [
        (r["bucket"], r["n"])
        for r in _rows(con, HISTOGRAM_SQL, {**params, "bins": bins})
        if r["bucket"] is not None
    ]
    return stats
