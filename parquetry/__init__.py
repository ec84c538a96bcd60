"""Parquetry: operational data (PostgreSQL tables, STDF tester logs) as clean, compacted Parquet.

The engine. It never imports Dagster; the code location in ``pipeline_assets`` is a thin layer over it.
"""

__version__ = "0.1.0"
