"""Arrow types Parquet cannot hold, and the exact form Parquetry stores them in.

One such type reaches Parquetry's writers: ``month_day_nano_interval``, the Arrow type of PostgreSQL's
``interval``. pyarrow has no Parquet mapping for it, and Parquet's own ``INTERVAL`` (three unsigned
32-bit parts, milliseconds) can hold neither PostgreSQL's microseconds nor a negative part. So a column
of intervals is stored as ``struct<months: int32, days: int32, nanoseconds: int64>``: the three parts of
the Arrow value, exact, under the names Arrow gives them, readable by every Parquet reader (DuckDB
sees ``STRUCT(months INTEGER, days INTEGER, nanoseconds BIGINT)``). Intervals inside lists (``interval[]``)
and structs (composite types) are stored the same way; a field keeps its metadata (``pg_type``).

Writers call :func:`storable_schema` once and :func:`storable` per batch; both return their argument
itself when nothing needs changing, so tables without intervals pay one schema walk per file.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pyarrow as pa

INTERVAL_PARTS = pa.struct(
    [
        pa.field("months", pa.int32(), nullable=False),
        pa.field("days", pa.int32(), nullable=False),
        pa.field("nanoseconds", pa.int64(), nullable=False),
    ]
)
"""How an Arrow ``month_day_nano_interval`` value is stored in Parquet."""

MONTH_DAY_NANO = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanoseconds", "<i8")])
"""One Arrow ``month_day_nano_interval`` value in memory: the layout the decoder, the COPY encoder and
this module read and write (16 bytes, little-endian)."""


class UnstorableType(TypeError):
    """A column's type holds intervals inside a type this module does not rewrite (e.g. a map)."""


def storable_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every ``month_day_nano_interval`` in it replaced by :data:`INTERVAL_PARTS`."""
    if t == pa.month_day_nano_interval():
        return INTERVAL_PARTS
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        value = t.value_field.with_type(storable_type(t.value_type))
        if value.type == t.value_type:
            return t
        if pa.types.is_fixed_size_list(t):
            return pa.list_(value, t.list_size)
        return pa.large_list(value) if pa.types.is_large_list(t) else pa.list_(value)
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        stored = [f.with_type(storable_type(f.type)) for f in fields]
        return t if stored == fields else pa.struct(stored)
    if _holds_interval(t):
        raise UnstorableType(f"intervals inside {t} cannot be stored in Parquet")
    return t


def _holds_interval(t: pa.DataType) -> bool:
    if t == pa.month_day_nano_interval():
        return True
    return any(_holds_interval(t.field(i).type) for i in range(t.num_fields))


def storable_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as the Parquet files hold it (itself when it has no interval)."""
    fields = [schema.field(i) for i in range(len(schema))]
    stored = [f.with_type(storable_type(f.type)) for f in fields]
    if stored == fields:
        return schema
    return pa.schema(stored, metadata=schema.metadata)


def _storable_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    if array.type == target:
        return array
    mask = array.is_null() if array.null_count else None
    if array.type == pa.month_day_nano_interval():
        parts = np.frombuffer(
            array.buffers()[1], dtype=MONTH_DAY_NANO, count=array.offset + len(array), offset=0
        )
        parts = parts[array.offset :]
        children = [pa.array(np.ascontiguousarray(parts[name])) for name in MONTH_DAY_NANO.names]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        # Rebased on the values this slice uses (pyarrow takes a null mask only with unsliced offsets).
        offsets = array.offsets.to_numpy()
        start = int(offsets[0]) if len(offsets) else 0
        values = array.values.slice(start, int(offsets[-1]) - start if len(offsets) else 0)
        values = _storable_array(values, target.value_type)
        cls = pa.LargeListArray if pa.types.is_large_list(array.type) else pa.ListArray
        return cls.from_arrays(pa.array(offsets - start), values, type=target, mask=mask)
    if pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        values = _storable_array(
            array.values.slice(array.offset * size, len(array) * size), target.value_type
        )
        return pa.FixedSizeListArray.from_arrays(values, type=target, mask=mask)
    if pa.types.is_struct(array.type):
        children = [_storable_array(array.field(i), target.field(i).type) for i in range(target.num_fields)]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    raise UnstorableType(f"intervals inside {array.type} cannot be stored in Parquet")


Batch = TypeVar("Batch", pa.RecordBatch, pa.Table)


def storable(batch: Batch, schema: pa.Schema) -> Batch:
    """``batch`` with its columns in the types of ``schema`` (from :func:`storable_schema`); the batch
    itself when its schema is that already. Values are unchanged: an interval's three parts move into
    the struct's three children."""
    if batch.schema.equals(schema):
        return batch
    if isinstance(batch, pa.Table):
        columns = [
            pa.chunked_array([_storable_array(c, f.type) for c in column.chunks], f.type)
            for column, f in zip(batch.columns, schema, strict=True)
        ]
        return pa.Table.from_arrays(columns, schema=schema)
    arrays = [_storable_array(c, f.type) for c, f in zip(batch.columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
