"""Parquetry's dataset catalog in PostgreSQL: datasets, their live files, leases and the compaction commit."""

from parquetry.catalog.catalog import (
    DEFAULT_SCHEMA,
    Catalog,
    CatalogError,
    DatasetInfo,
    FlaggedDataset,
    Lease,
    LeaseHeld,
    LeaseLost,
    LiveFile,
    RetiredFile,
    Snapshot,
    StaleInputs,
    UnknownDataset,
    schema_fingerprint,
)
from parquetry.catalog.migrations import LATEST_VERSION, migrate
from parquetry.catalog.policy import FragmentationPolicy

__all__ = [
    "DEFAULT_SCHEMA",
    "LATEST_VERSION",
    "Catalog",
    "CatalogError",
    "DatasetInfo",
    "FlaggedDataset",
    "FragmentationPolicy",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "LiveFile",
    "RetiredFile",
    "Snapshot",
    "StaleInputs",
    "UnknownDataset",
    "migrate",
    "schema_fingerprint",
]
