"""DuckDB over the Parquet root: a connection with the ``stdf_*`` views already defined.

Nothing connects at import or construction. ``database`` is ``:memory:`` (views only, nothing
persisted) or a file path; ``data_root`` defaults to ``$PARQUETRY_DATA_ROOT`` like the storage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pydantic import Field

from resources.storage import default_root


class DuckDBResource(dg.ConfigurableResource):
    """A DuckDB database and the Parquet root its views read."""

    database: str = Field(default=":memory:", description="DuckDB database file, or :memory:")
    data_root: str = Field(default_factory=default_root, description="Parquet root (local path)")
    read_only: bool = Field(default=False, description="open a database file read-only")
    threads: int | None = Field(default=None, description="DuckDB worker threads; default all cores")
    memory_limit: str | None = Field(default=None, description="e.g. '2GB'; default DuckDB's (80% of RAM)")
    catalog_dsn: str | None = Field(
        default=None,
        description="catalog database: views read the files it holds live (consistent during compaction); "
        "unset: views glob the table folders",
    )
    catalog_schema: str = Field(default="parquetry_catalog", description="PostgreSQL schema of the catalog")

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        """A connection with ``stdf_files``, ``stdf_parts``, ``stdf_results``... defined; closed on exit."""
        import duckdb

        from parquetry.stdf.views import catalog_live_files, create_views

        config: dict[str, Any] = {}
        if self.threads is not None:
            config["threads"] = self.threads
        if self.memory_limit is not None:
            config["memory_limit"] = self.memory_limit
        read_only = self.read_only and self.database != ":memory:"
        con = duckdb.connect(self.database, read_only=read_only, config=config)
        try:
            if not read_only:
                live = None
                if self.catalog_dsn:
                    from parquetry.catalog import Catalog

                    live = catalog_live_files(Catalog(self.catalog_dsn, schema=self.catalog_schema))
                create_views(con, self.data_root, live_files=live)
            yield con
        finally:
            con.close()
