"""Exact comparison of Arrow tables for decoder tests: NaN equals NaN of the same bits, chunking ignored.

``pa.Table.equals`` treats NaN as unequal to itself, so two bit-identical decodings of a float column
with NaN compare unequal. Here float columns (also inside lists and structs) are compared through their
bit patterns, which is stricter than value equality (-0.0 differs from 0.0) and exactly what "the same
decoded table" means.
"""

from __future__ import annotations

import pyarrow as pa

_FLOAT_BITS = {pa.float16(): pa.int16(), pa.float32(): pa.int32(), pa.float64(): pa.int64()}


def bits_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every floating-point type replaced by the integer type of the same width."""
    if t in _FLOAT_BITS:
        return _FLOAT_BITS[t]
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(bits_type(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(bits_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([t.field(i).with_type(bits_type(t.field(i).type)) for i in range(t.num_fields)])
    return t


def same_array(a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray) -> bool:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if isinstance(b, pa.ChunkedArray):
        b = b.combine_chunks()
    if a.type != b.type:
        return False
    target = bits_type(a.type)
    return a.view(target).equals(b.view(target)) if target != a.type else a.equals(b)


def assert_same_table(a: pa.Table, b: pa.Table) -> None:
    """Assert equal schemas (with metadata) and bit-identical columns; names the first differing column."""
    assert a.schema.equals(b.schema, check_metadata=True), f"schemas differ:\n{a.schema}\n---\n{b.schema}"
    assert a.num_rows == b.num_rows, f"{a.num_rows} rows != {b.num_rows} rows"
    for name in a.column_names:
        assert same_array(a.column(name), b.column(name)), f"column {name!r} differs"
