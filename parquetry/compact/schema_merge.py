"""Explicit schema merge for compaction: one output schema for files written at different times.

Columns are taken in order of first appearance. A column missing from some files becomes nullable and
reads as nulls in their rows. A column whose type is ``null`` in some files (all values missing when it was
written) takes the other files' type. Any other difference in type is an error that names the column and
both files: compaction never casts data silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa


class SchemaMergeError(ValueError):
    """Two input files disagree on a column's type."""


def merge_schemas(schemas: Sequence[tuple[str, pa.Schema]]) -> pa.Schema:
    """The merged schema of ``(path, schema)`` pairs, without schema-level metadata."""
    fields: dict[str, tuple[pa.Field, str]] = {}
    seen_in: dict[str, int] = {}
    previous: pa.Schema | None = None
    for path, schema in schemas:
        if previous is not None and schema.equals(previous):
            # Same names, types and nullability as the file before (the common case: thousands of files
            # from one writer): it can change nothing but the counts.
            for name in schema.names:
                seen_in[name] += 1
            continue
        previous = schema
        names = schema.names
        if len(set(names)) != len(names):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            raise SchemaMergeError(f"{path}: duplicate column names {duplicates}")
        for f in schema:
            seen_in[f.name] = seen_in.get(f.name, 0) + 1
            if f.name not in fields:
                fields[f.name] = (f, path)
                continue
            known, known_path = fields[f.name]
            if known.type == f.type:
                if f.nullable and not known.nullable:
                    fields[f.name] = (known.with_nullable(True), known_path)
            elif pa.types.is_null(known.type):
                fields[f.name] = (f.with_nullable(True), path)
            elif pa.types.is_null(f.type):
                fields[f.name] = (known.with_nullable(True), known_path)
            else:
                raise SchemaMergeError(
                    f"column {f.name!r} is {known.type} in {known_path} but {f.type} in {path}: "
                    "incompatible types, refusing to merge"
                )
    merged = [
        f if seen_in[name] == len(schemas) else f.with_nullable(True) for name, (f, _) in fields.items()
    ]
    return pa.schema(merged)


def conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    """``table`` with ``target``'s columns, in its order: missing columns as nulls, null-typed ones typed.

    A column of ``table`` that ``target`` lacks is an error, never dropped: the target is merged from
    every input's footer, so such a column means the file changed since planning (its rows would be
    hashed and written without it, and verification could not notice).
    """
    schema = table.schema
    if schema.equals(target):  # the common case, thousands of files from one writer: no column to check
        if schema.equals(target, check_metadata=True):
            return table
        return pa.Table.from_arrays(table.columns, schema=target)  # the target's (field) metadata
    extra = [name for name in table.column_names if target.get_field_index(name) < 0]
    if extra:
        raise SchemaMergeError(f"columns {extra} are not in the merged schema")
    arrays = []
    for f in target:
        index = table.schema.get_field_index(f.name)
        if index < 0:
            arrays.append(pa.nulls(table.num_rows, type=f.type))
            continue
        column = table.column(index)
        if column.type != f.type:
            if not pa.types.is_null(column.type):
                raise SchemaMergeError(f"column {f.name!r} is {column.type}, expected {f.type}")
            column = pa.nulls(table.num_rows, type=f.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=target)
