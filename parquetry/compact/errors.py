"""The compactor's exceptions (one module, so that every stage can raise them without import cycles)."""

from __future__ import annotations


class CompactionError(RuntimeError):
    """A compaction stopped before committing; the dataset is unchanged."""


class VerificationError(CompactionError):
    """The outputs do not hold exactly the inputs' rows."""
