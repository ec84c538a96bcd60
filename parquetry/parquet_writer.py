"""``pq.ParquetWriter`` as Parquetry uses it: narrow decimals handed to pyarrow as the integers Parquet
stores, for the same file bytes at less CPU.

With ``store_decimal_as_integer`` (Parquetry's ``delta_integers`` sets it), a decimal of precision <= 18
is stored as a Parquet INT32 (precision <= 9) or INT64 annotated DECIMAL(precision, scale). pyarrow
narrows every 16-byte ``decimal128`` value to that integer one by one, with a range check: on the
benchmark's lineitem-like table, 10 ms per decimal column per 640k rows, a third of what the column's
encoding costs (its four decimal columns: 9% of the file's encoding CPU).

A decimal's value fits the integer by its precision, so the integer is the low 4 or 8 bytes of the
little-endian 128-bit value. This writer hands pyarrow those integers (one strided copy) under an
integer schema, and then gives the file the footer pyarrow writes for the real schema: the footer's
column schema (field 2) and key-value metadata (field 5, ``ARROW:schema`` included) are taken from an
empty file pyarrow writes with the real schema, and swapped into the file's footer as bytes (no
re-encoding of its row groups). Everything else (pages, statistics as the integers'
bytes, encodings, offsets) is what pyarrow writes for the decimals themselves: the tests compare the
files byte for byte with pyarrow's own.

The footer is caught on its way out (:class:`_HeldTail`), so files on object stores, written as one
stream, get it too.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from parquetry.thrift import ThriftError, TStruct, decode, encode

MAGIC = b"PAR1"


class FooterError(RuntimeError):
    """The footer pyarrow wrote is not the shape this writer edits; nothing past it is written."""


def narrow_columns(schema: pa.Schema, kwargs: dict[str, Any]) -> dict[int, pa.DataType]:
    """Top-level ``decimal128`` columns pyarrow would store as integers, and the integer type of each."""
    if not kwargs.get("store_decimal_as_integer") or sys.byteorder != "little":
        return {}
    out: dict[int, pa.DataType] = {}
    for i, f in enumerate(schema):
        if pa.types.is_decimal128(f.type) and f.type.precision <= 18:
            out[i] = pa.int32() if f.type.precision <= 9 else pa.int64()
    return out


def _narrow_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    """The low 4 or 8 bytes of each 128-bit value of ``array`` as ``target`` integers (same validity)."""
    width = 4 if target == pa.int32() else 8
    step = 16 // width
    values = np.frombuffer(array.buffers()[1], dtype=np.int32 if width == 4 else np.int64)
    offset, n = array.offset, len(array)
    data = np.empty(offset + n, dtype=values.dtype)  # validity keeps its offset; so must the values
    data[offset:] = values[offset * step : (offset + n) * step : step]
    return pa.Array.from_buffers(
        target, n, [array.buffers()[0], pa.py_buffer(data)], null_count=array.null_count, offset=offset
    )


def _narrowed(data: pa.RecordBatch | pa.Table, columns: dict[int, pa.DataType], schema: pa.Schema) -> Any:
    arrays: list[Any] = list(data.columns)
    for i, target in columns.items():
        column = arrays[i]
        if isinstance(column, pa.ChunkedArray):
            arrays[i] = pa.chunked_array([_narrow_array(c, target) for c in column.chunks], target)
        else:
            arrays[i] = _narrow_array(column, target)
    if isinstance(data, pa.Table):
        return pa.Table.from_arrays(arrays, schema=schema)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class _HeldTail:
    """A file-like sink for pyarrow that passes writes through to ``sink`` until :meth:`hold`, then
    keeps them (the footer, its length and the closing magic) for the caller to edit and write."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.position = 0
        self.held: bytearray | None = None
        self.closed = False

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        if self.held is not None:
            self.held += data
        else:
            self.sink.write(data)
        self.position += n
        return n

    def hold(self) -> None:
        self.held = bytearray()

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        if self.held is None:
            self.sink.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True  # the caller closes the sink


def empty_footer(schema: pa.Schema, kwargs: dict[str, Any]) -> TStruct:
    """The footer pyarrow writes for a file of ``schema`` with no rows."""
    buf = pa.BufferOutputStream()
    with pq.ParquetWriter(buf, schema, **kwargs):
        pass
    try:
        return decode(_split_tail(buf.getvalue().to_pybytes(), "an empty file")[0])
    except ThriftError as exc:
        raise FooterError(f"the footer of an empty file does not decode: {exc}") from exc


def _head_and_tail(meta: TStruct) -> tuple[bytes, bytes]:
    """The encoded bytes of ``meta``'s fields before its row counts and row groups (fields 1-2: version,
    column schema) and after them (fields 5 on: key-value metadata, writer, column orders, stop).

    The compact protocol writes a struct as its fields one after another (each header holds the id
    delta from the field before), so a footer is head + fields 3-4 + tail, and two footers that differ
    only in fields 2 and 5 differ only in their heads and tails.
    """
    whole = encode(meta)
    head = encode(TStruct([f for f in meta.fields if f[0] <= 2]))[:-1]  # without the stop byte
    through_4 = encode(TStruct([f for f in meta.fields if f[0] <= 4]))[:-1]
    if not whole.startswith(through_4) or not meta.has(3) or not meta.has(4) or meta.has(8):
        raise FooterError("an empty file's footer is not laid out as version, schema, rows, row groups, ...")
    return head, whole[len(through_4) :]


def _split_tail(data: bytes, where: str) -> tuple[bytes, int]:
    """(footer bytes, footer start) of ``data``, which ends with a Parquet footer, its length and magic."""
    if len(data) < 8 or data[-4:] != MAGIC:
        raise FooterError(f"{where}: the writer's last bytes are not a Parquet footer")
    length = int.from_bytes(data[-8:-4], "little")
    if length > len(data) - 8:
        raise FooterError(f"{where}: footer length {length} is past the bytes held ({len(data) - 8})")
    return bytes(data[-8 - length : -8]), len(data) - 8 - length


class ParquetWriter:
    """``pq.ParquetWriter(sink, schema, **kwargs)``: same methods, same bytes (see the module docstring).

    ``where`` names the file in errors. ``local_path``, when ``sink`` writes that local file, lets
    pyarrow write to ``sink`` itself (no Python in the write path: measured 3-4% less encoding CPU in
    extraction's pipeline than passing every write through Python) and swaps the footer in the file
    once it is written; otherwise the footer is held back on its way to ``sink`` and swapped there.
    """

    def __init__(
        self, sink: Any, schema: pa.Schema, where: str = "", local_path: str | None = None, **kwargs: Any
    ) -> None:
        self.schema = schema
        self.where = where
        self._columns = narrow_columns(schema, kwargs)
        self._sink = sink
        self._local_path = local_path
        self._tail: _HeldTail | None = None
        self._file: Any = None
        if not self._columns:
            self._writer = pq.ParquetWriter(sink, schema, **kwargs)
            return
        fields = list(schema)
        for i, target in self._columns.items():
            fields[i] = fields[i].with_type(target)
        self._writer_schema = pa.schema(fields, metadata=schema.metadata)
        # The footer this writer gets (integer columns) and the one pyarrow writes for the decimals
        # differ only in their heads and tails (see _head_and_tail): swapped in bytes, not re-encoded.
        self._written = _head_and_tail(empty_footer(self._writer_schema, kwargs))
        self._real = _head_and_tail(empty_footer(schema, kwargs))
        if local_path is not None:
            self._writer = pq.ParquetWriter(sink, self._writer_schema, **kwargs)
            return
        self._tail = _HeldTail(sink)
        # Opened and closed here, not left to pyarrow: a Python file pyarrow wraps on its own is closed
        # by its destructor, which may run at interpreter exit and abort the process.
        self._file = pa.PythonFile(self._tail, mode="w")
        self._writer = pq.ParquetWriter(self._file, self._writer_schema, **kwargs)

    def write_table(self, table: pa.Table, row_group_size: int | None = None) -> None:
        if self._columns:
            table = _narrowed(table, self._columns, self._writer_schema)
        self._writer.write_table(table, row_group_size=row_group_size)

    def write_batch(self, batch: pa.RecordBatch, row_group_size: int | None = None) -> None:
        if self._columns:
            batch = _narrowed(batch, self._columns, self._writer_schema)
        self._writer.write_batch(batch, row_group_size=row_group_size)

    def _swapped(self, footer: bytes) -> bytes:
        """The file's closing bytes for ``footer`` (as written): footer for the real schema, length, magic."""
        head, tail = self._written
        if not footer.startswith(head) or not footer.endswith(tail) or len(footer) < len(head) + len(tail):
            raise FooterError(f"{self.where}: the footer differs from an empty file's outside its row groups")
        real_head, real_tail = self._real
        new = real_head + footer[len(head) : len(footer) - len(tail)] + real_tail
        return new + len(new).to_bytes(4, "little") + MAGIC

    def close(self) -> None:
        if not self._columns:
            self._writer.close()
        elif self._local_path is not None:
            self._writer.close()
            self._sink.flush()
            self._swap_in_file(self._local_path)
        else:
            assert self._tail is not None
            self._tail.hold()
            self._writer.close()
            self._file.close()
            footer, start = _split_tail(bytes(self._tail.held or b""), self.where)
            if start != 0:
                raise FooterError(
                    f"{self.where}: {start} bytes came between the last row group and the footer"
                )
            self._sink.write(self._swapped(footer))

    def _swap_in_file(self, path: str) -> None:
        with open(path, "r+b") as fh:
            size = fh.seek(0, 2)
            if size < 12:
                raise FooterError(f"{self.where}: {size} bytes is too short for a Parquet file")
            fh.seek(size - 8)
            closing = fh.read(8)
            length = int.from_bytes(closing[:4], "little")
            if closing[4:] != MAGIC or length > size - 12:
                raise FooterError(f"{self.where}: the file does not end with a Parquet footer")
            fh.seek(size - 8 - length)
            new = self._swapped(fh.read(length))
            fh.seek(size - 8 - length)
            fh.write(new)
            fh.truncate()

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._writer.close()  # the file is discarded by the caller (it never gets published)
            if self._file is not None:
                self._file.close()
