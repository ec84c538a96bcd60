"""STDF V4 / V4-2007 reader: exact decoding into Arrow tables, streamed in bounded memory.

Public API: ``parse_stdf`` (iterator of (table, RecordBatch)), ``read_stdf`` (dict of tables),
``record_counts`` (header walk), ``TABLE_SCHEMAS``, ``StdfFormatError``, ``StdfWarning``.
Importing this package is cheap: numba kernels compile (or load from cache) on first use.
"""

from parquetry.stdf.errors import StdfFormatError, StdfWarning
from parquetry.stdf.parse import parse_stdf, read_stdf, record_counts
from parquetry.stdf.tables import TABLE_SCHEMAS

__all__ = ["TABLE_SCHEMAS", "StdfFormatError", "StdfWarning", "parse_stdf", "read_stdf", "record_counts"]
