"""An order-independent digest of a table's rows, computed in a stream, to prove output == input.

Each row is hashed over all of its columns (DuckDB's ``hash(c1, c2, ...)``, deterministic for equal values
and types; nulls hash too). Summing the row hashes modulo 2**64 and xor-ing them gives a digest that does
not depend on row order or batching, and that a lost, duplicated or altered row changes. Row counts and
per-column null counts are kept beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

_MASK = (1 << 64) - 1


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class RowDigest:
    rows: int = 0
    hash_sum: int = 0
    hash_xor: int = 0
    null_counts: dict[str, int] = field(default_factory=dict)
    flush_rows: int = 1 << 20  # hash in batches of about this many rows: one DuckDB call per batch
    _con: Any = field(default=None, repr=False, compare=False)
    _pending: list[pa.Table] = field(default_factory=list, repr=False, compare=False)
    _pending_rows: int = field(default=0, repr=False, compare=False)

    def update(self, table: pa.Table) -> None:
        """Add ``table``'s rows. Small tables are buffered (they share memory with the caller's data)."""
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        self._hash(pending[0] if len(pending) == 1 else pa.concat_tables(pending))

    def _hash(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            for name in table.column_names:
                self.null_counts.setdefault(name, 0)
            return
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
            self._con.execute("SET threads = 1")
        columns = ", ".join(_quote(n) for n in table.column_names)
        self._con.register("digest_input", table)
        try:
            ((count, total, xor),) = self._con.execute(
                f"SELECT count(*), sum(h), bit_xor(h) FROM (SELECT hash({columns}) AS h FROM digest_input)"
            ).fetchall()
        finally:
            self._con.unregister("digest_input")
        self.rows += int(count)
        self.hash_sum = (self.hash_sum + int(total)) & _MASK
        self.hash_xor ^= int(xor)
        for name, column in zip(table.column_names, table.columns, strict=True):
            self.null_counts[name] = self.null_counts.get(name, 0) + column.null_count

    def close(self) -> None:
        self._pending, self._pending_rows = [], 0
        if self._con is not None:
            self._con.close()
            self._con = None

    def as_dict(self) -> dict[str, Any]:
        self.flush()
        return {
            "rows": self.rows,
            "hash_sum": f"{self.hash_sum:016x}",
            "hash_xor": f"{self.hash_xor:016x}",
            "null_counts": dict(sorted(self.null_counts.items())),
        }

    def differences(self, other: RowDigest) -> list[str]:
        """What differs between two digests (empty when they match)."""
        self.flush()
        other.flush()
        problems = []
        if self.rows != other.rows:
            problems.append(f"rows {self.rows} != {other.rows}")
        if self.hash_sum != other.hash_sum or self.hash_xor != other.hash_xor:
            problems.append("row hashes differ")
        for name in sorted(set(self.null_counts) | set(other.null_counts)):
            a, b = self.null_counts.get(name), other.null_counts.get(name)
            if a != b:
                problems.append(f"column {name!r} null count {a} != {b}")
        return problems
