"""The code location. Importing it is cheap and side-effect free: no connection, no CUDA.

Each area module exposes its own ``defs`` (assets, checks, jobs, schedules, sensors); the resources they
share are bound here, once. Secrets (DSNs) come from the environment through ``dg.EnvVar`` and are
resolved only when a run starts, never logged.
"""

import dagster as dg

from pipeline_assets import compaction, operations, postgres_tables, stdf_files
from resources.catalog import CatalogResource
from resources.duckdb import DuckDBResource
from resources.gpu import GpuResource
from resources.postgres import PostgresResource
from resources.storage import StorageResource

RESOURCES = {
    "postgres": PostgresResource(dsn=dg.EnvVar("PARQUETRY_PG_DSN")),
    "storage": StorageResource(),
    "catalog": CatalogResource(dsn=dg.EnvVar("PARQUETRY_CATALOG_DSN")),
    "duckdb": DuckDBResource(catalog_dsn=dg.EnvVar("PARQUETRY_CATALOG_DSN")),
    "gpu": GpuResource(),
}

defs = dg.Definitions.merge(
    postgres_tables.defs,
    stdf_files.defs,
    compaction.defs,
    operations.defs,
    dg.Definitions(resources=RESOURCES),
)
