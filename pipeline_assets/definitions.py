"""The code location. Importing it is cheap and side-effect free: no connection, no CUDA."""

import dagster as dg

from pipeline_assets import compaction, operations, postgres_tables, stdf_files

defs = dg.Definitions.merge(
    postgres_tables.defs,
    stdf_files.defs,
    compaction.defs,
    operations.defs,
)
