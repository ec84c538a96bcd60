"""Verified, atomic compaction of catalogued Parquet datasets."""

from parquetry.compact.cleanup import CleanupResult, cleanup
from parquetry.compact.compactor import (
    CompactionError,
    CompactionResult,
    CompactionSettings,
    Compactor,
    VerificationError,
)
from parquetry.compact.plan import Plan, PlanConfig, PlanInput, plan_compaction
from parquetry.compact.rowgroup_copy import RowGroupCopyError, copy_row_groups
from parquetry.compact.schema_merge import SchemaMergeError, conform, merge_schemas

__all__ = [
    "CleanupResult",
    "CompactionError",
    "CompactionResult",
    "CompactionSettings",
    "Compactor",
    "Plan",
    "PlanConfig",
    "PlanInput",
    "RowGroupCopyError",
    "SchemaMergeError",
    "VerificationError",
    "cleanup",
    "conform",
    "copy_row_groups",
    "merge_schemas",
    "plan_compaction",
]
