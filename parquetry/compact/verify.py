"""An order-independent digest of a table's rows, computed in a stream, to prove output == input.

Each row is hashed over all of its columns (DuckDB's ``hash(c1, c2, ...)``, deterministic for equal values
and types; nulls hash too). Summing the row hashes modulo 2**64 and xor-ing them gives a digest that does
not depend on row order or batching, and that a lost, duplicated or altered row changes. Row counts and
per-column null counts are kept beside it.

A Parquet file on a local disk can be hashed straight from DuckDB's own Parquet reader
(:meth:`RowDigest.add_parquet`): about half the CPU of decoding it with pyarrow and handing the columns to
DuckDB, and an independent decoder of what pyarrow wrote. It is used only when DuckDB reads the file as
exactly the column types it sees in the Arrow tables the other digest hashed
(:func:`duckdb_reads_alike`), so equal rows hash equally either way.

DuckDB takes every Arrow type a dataset may hold except two: ``decimal256`` (any precision: PostgreSQL
``numeric`` wider than 38 digits extracts to it) and ``float16``. Columns of those types (also inside
lists, structs and maps) are hashed as what they are in memory, their fixed-width bytes
(:func:`hashable`): equal values of one type have equal bytes, so both digests stay comparable, and a
file holding them is read back by pyarrow (DuckDB's Parquet reader turns wide decimals into doubles).

Creating a DuckDB database costs tens of milliseconds, so digests share one private in-memory database
per process (each digest has its own cursor); :func:`warm_up` creates it ahead of time, off the critical
path.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_MASK = (1 << 64) - 1
_db: Any = None
_db_pid = 0
_db_lock = threading.Lock()


def _cursor() -> Any:
    """A new cursor on this process's private DuckDB database (a forked child makes its own)."""
    global _db, _db_pid
    with _db_lock:
        if _db is None or _db_pid != os.getpid():
            import duckdb

            _db, _db_pid = duckdb.connect(), os.getpid()
        return _db.cursor()


def warm_up() -> None:
    """Create the shared DuckDB database now (e.g. in a background thread while the caller plans)."""
    _cursor().close()


def _hashable_type(t: pa.DataType) -> pa.DataType:
    """``t`` with ``decimal256`` and ``float16`` replaced by fixed-width types of the same bytes."""
    if pa.types.is_decimal256(t):
        return pa.binary(32)
    if pa.types.is_float16(t):
        return pa.uint16()
    if pa.types.is_map(t):
        return pa.map_(
            t.key_field.with_type(_hashable_type(t.key_type)),
            t.item_field.with_type(_hashable_type(t.item_type)),
            t.keys_sorted,
        )
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_hashable_type(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_hashable_type(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(_hashable_type(t.value_type)), t.list_size)
    if pa.types.is_struct(t):
        return pa.struct([t.field(i).with_type(_hashable_type(t.field(i).type)) for i in range(t.num_fields)])
    if pa.types.is_dictionary(t) and _hashable_type(t.value_type) != t.value_type:
        return _hashable_type(t.value_type)  # hashed decoded (see hashable)
    return t


def hashable(table: pa.Table) -> pa.Table:
    """``table`` with the columns DuckDB cannot take from Arrow viewed as their bytes (no copy), the
    others untouched. A dictionary column of such values is decoded first (its values are viewed)."""
    columns = []
    changed = False
    for column in table.columns:
        target = _hashable_type(column.type)
        if target == column.type:
            columns.append(column)
            continue
        changed = True
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(pa.chunked_array([chunk.view(target) for chunk in column.chunks], target))
    if not changed:
        return table
    return pa.Table.from_arrays(columns, names=table.column_names)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class RowDigest:
    rows: int = 0
    hash_sum: int = 0
    hash_xor: int = 0
    null_counts: dict[str, int] = field(default_factory=dict)
    flush_rows: int = 1 << 20  # hash in batches of about this many rows: one DuckDB call per batch
    threads: int = 1  # DuckDB threads per hash call
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
        con = self._connection()
        columns = ", ".join(_quote(n) for n in table.column_names)
        con.register("digest_input", hashable(table))
        try:
            ((count, total, xor),) = con.execute(
                f"SELECT count(*), sum(h), bit_xor(h) FROM (SELECT hash({columns}) AS h FROM digest_input)"
            ).fetchall()
        finally:
            con.unregister("digest_input")
        self.rows += int(count)
        self.hash_sum = (self.hash_sum + int(total)) & _MASK
        self.hash_xor ^= int(xor)
        for name, column in zip(table.column_names, table.columns, strict=True):
            self.null_counts[name] = self.null_counts.get(name, 0) + column.null_count

    def add_parquet(self, path: str) -> None:
        """Add every row of the local Parquet file ``path``, decoded by DuckDB's Parquet reader."""
        self.flush()
        con = self._connection()
        names = [
            row[0] for row in con.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": path}).fetchall()
        ]
        if not names:
            return
        columns = ", ".join(_quote(n) for n in names)
        nulls = "".join(f", count(*) - count({_quote(n)})" for n in names)
        h = "parquetry_row_hash"
        while h in names:  # the alias must not shadow a column
            h += "_"
        ((count, total, xor, *null_counts),) = con.execute(
            f"SELECT count(*), coalesce(sum({_quote(h)}), 0), coalesce(bit_xor({_quote(h)}), 0){nulls}"
            f" FROM (SELECT hash({columns}) AS {_quote(h)}, * FROM read_parquet($p))",
            {"p": path},
        ).fetchall()
        self.rows += int(count)
        self.hash_sum = (self.hash_sum + int(total)) & _MASK
        self.hash_xor ^= int(xor)
        for name, n in zip(names, null_counts, strict=True):
            self.null_counts[name] = self.null_counts.get(name, 0) + int(n)

    def _connection(self) -> Any:
        if self._con is None:
            self._con = _cursor()
        # A database-wide setting: when two digests hash at once (the inputs' while an earlier output is
        # read back) either may run with the other's thread count; the sums do not depend on it.
        self._con.execute(f"SET threads = {max(1, int(self.threads))}")
        return self._con

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

    def merge(self, other: RowDigest) -> None:
        """Add ``other``'s rows (the digest of a disjoint set of rows, e.g. another output file)."""
        other.flush()
        self.flush()
        self.rows += other.rows
        self.hash_sum = (self.hash_sum + other.hash_sum) & _MASK
        self.hash_xor ^= other.hash_xor
        for name, n in other.null_counts.items():
            self.null_counts[name] = self.null_counts.get(name, 0) + n

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


def duckdb_reads_alike(path: str, schema: pa.Schema) -> bool:
    """Whether DuckDB reads the Parquet file ``path`` with the very column names and types it gives Arrow
    tables of ``schema`` (then both hash equal rows equally)."""
    con = _cursor()
    try:
        con.register("digest_schema", hashable(schema.empty_table()))
        try:
            arrow_side = con.execute("DESCRIBE digest_schema").fetchall()
        finally:
            con.unregister("digest_schema")
        parquet_side = con.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": path}).fetchall()
    finally:
        con.close()
    return [r[:2] for r in arrow_side] == [r[:2] for r in parquet_side]


def digest_row_groups(pf: pq.ParquetFile, digest: RowDigest) -> None:
    """Hash every row group of ``pf`` into ``digest``, decoding row group r + 1 while r is hashed.

    Decoding and DuckDB's hash both release the GIL, so on two cores the read-back costs about the
    larger of the two rather than their sum. Read errors propagate unchanged (the caller names the file).
    """
    count = pf.metadata.num_row_groups
    if count == 0:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="parquetry-verify-read") as pool:
        pending = pool.submit(pf.read_row_group, 0, use_threads=True)
        for r in range(count):
            table = pending.result()
            if r + 1 < count:
                pending = pool.submit(pf.read_row_group, r + 1, use_threads=True)
            digest.update(table)
            digest.flush()
