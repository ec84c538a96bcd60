"""The dataset catalog (PostgreSQL) and its fragmentation policy, as a Dagster resource.

Nothing connects at import or construction: :meth:`CatalogResource.get_catalog` returns a
:class:`parquetry.catalog.Catalog`, which opens a short connection per call. The DSN comes from
``dg.EnvVar("PARQUETRY_CATALOG_DSN")`` where the resource is bound, so it is never logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from parquetry.catalog import Catalog
    from parquetry.storage import Storage


class CatalogResource(dg.ConfigurableResource):
    """Where the catalog lives and when it flags a dataset for compaction."""

    dsn: str = Field(description="libpq DSN of the catalog database ($PARQUETRY_CATALOG_DSN)")
    schema_name: str = Field(default="parquetry_catalog", description="PostgreSQL schema holding the catalog")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for the datasets' storage URIs (endpoint...)"
    )
    small_file_bytes: int = Field(default=32 << 20, description="a live file below this size is small")
    min_small_files: int = Field(default=8, description="flag a directory with this many small files")
    min_row_groups: int = Field(default=8, description="... or with this many row groups ...")
    min_mean_row_group_rows: int = Field(default=100_000, description="... averaging fewer rows than this")

    def get_catalog(self) -> Catalog:
        from parquetry.catalog import Catalog, FragmentationPolicy

        policy = FragmentationPolicy(
            small_file_bytes=self.small_file_bytes,
            min_small_files=self.min_small_files,
            min_row_groups=self.min_row_groups,
            min_mean_row_group_rows=self.min_mean_row_group_rows,
        )
        return Catalog(self.dsn, schema=self.schema_name, policy=policy)

    def storage_for(self, uri: str) -> Storage:
        from parquetry.storage import Storage

        return Storage(uri, dict(self.storage_options))
