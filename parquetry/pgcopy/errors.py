"""Errors raised while describing or decoding PostgreSQL COPY BINARY data.

Both carry enough context (source, byte offset, row, column, type) for an operator to find the bad
input without re-running anything: a decoder that loses data silently is worse than one that stops.
"""

from __future__ import annotations


class CopyFormatError(ValueError):
    """The COPY BINARY stream is malformed, truncated, or holds a value the Arrow mapping cannot keep.

    The message names the source (chunk file or table), the absolute byte offset in the stream, and the
    row (counted from 1) and column where they are known. The same facts are kept as attributes.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str = "",
        offset: int | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.offset = offset
        self.row = row
        self.column = column
        where = [f"source {source!r}" if source else "source <unnamed>"]
        if offset is not None:
            where.append(f"byte offset {offset}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"COPY BINARY data error: {reason} ({', '.join(where)})")


class UnsupportedTypeError(TypeError):
    """A column's PostgreSQL type has no exact Arrow mapping in Parquetry. Names table, column and type."""

    def __init__(self, reason: str, *, table: str = "", column: str = "", type_name: str = "") -> None:
        self.reason = reason
        self.table = table
        self.column = column
        self.type_name = type_name
        super().__init__(
            f"unsupported PostgreSQL type {type_name!r} for column {column!r} "
            f"of {table or '<query>'}: {reason}"
            f"of {table or '<query>'}: {reason}"
        )
