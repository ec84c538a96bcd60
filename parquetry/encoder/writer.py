"""A Parquet file writer that encodes the flat columns it knows itself and hands the rest to pyarrow.

Why: in extraction, pyarrow's page building was most of the client's CPU (about 40%, the compressor a
small part of it), on columns whose Parquet form is simple: integers as DELTA_BINARY_PACKED, strings
and binaries as PLAIN. :mod:`parquetry.encoder.columns` writes those columns' pages in one numba pass
each; every other column of a row group (floats, booleans, nested types, dictionaries...) is encoded by
pyarrow as one in-memory part per row group, whose column chunks are moved into place unchanged
(:mod:`parquetry.stitch`). The footer's schema and key-value metadata (``ARROW:schema`` included) are
those pyarrow writes for the same schema and options, so readers see the file pyarrow would have
written, value for value and statistic for statistic; only page boundaries and the delta blocks' sizes
may differ.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from parquetry.encoder.columns import ChunkEncoder, EncodedChunk
from parquetry.encoder.selection import EncodeError, Selection, leaf_counts, select
from parquetry.parquet_writer import FooterError
from parquetry.stitch import StitchError, chunk_range, clone_chunk, encode_part, part_footer, place_chunk
from parquetry.thrift import I64, LIST, STRUCT, TList, TStruct, encode

MAGIC = b"PAR1"
DEFAULT_ROW_GROUP_ROWS = 1024 * 1024  # pyarrow's, where a call gives no row_group_size


class ColumnWriter:
    """``pq.ParquetWriter``'s ``write_table`` / ``write_batch`` / ``close`` over a binary ``sink``.

    Each call writes its rows as row groups of at most ``row_group_size`` rows. ``where`` names the file
    in errors.
    """

    def __init__(
        self, sink: Any, schema: pa.Schema, where: str = "", selection: Selection | None = None, **kwargs: Any
    ) -> None:
        self.schema = schema
        self.where = where
        self._sink = sink
        selection = selection or select(schema, kwargs)
        self._footer = selection.footer
        self._own = selection.columns
        # Column chunks per field, from the schema pyarrow wrote (whatever the Arrow type).
        self._leaves = leaf_counts(self._footer.get(2).items)
        compression = str(kwargs.get("compression", "snappy")).lower()
        codec = None
        if compression == "zstd":
            codec = pa.Codec("zstd", kwargs.get("compression_level"))
        self._encoder = ChunkEncoder(codec, int(kwargs.get("data_page_size") or (1 << 20)))
        others = [i for i in range(len(schema)) if i not in self._own]
        self._others = others
        self._other_schema = pa.schema([schema.field(i) for i in others], metadata=schema.metadata)
        self._other_kwargs = _subset_kwargs(kwargs, {schema.field(i).name for i in others})
        self._groups: list[TStruct] = []
        self._rows = 0
        self._pos = 0

    def write_table(self, table: pa.Table, row_group_size: int | None = None) -> None:
        size = row_group_size or DEFAULT_ROW_GROUP_ROWS
        for start in range(0, table.num_rows, size):
            self._row_group(table.slice(start, size))

    def write_batch(self, batch: pa.RecordBatch, row_group_size: int | None = None) -> None:
        self.write_table(pa.Table.from_batches([batch]), row_group_size)

    def _write(self, data: Any) -> None:
        self._sink.write(data)
        self._pos += memoryview(data).nbytes

    def _row_group(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._pos == 0:
            self._write(MAGIC)
        try:
            own: dict[int, EncodedChunk] = {
                i: self._encoder.encode(self.schema.field(i).name, column, table.column(i))
                for i, column in self._own.items()
            }
        except EncodeError as exc:
            raise EncodeError(f"{self.where}: {exc}") from exc
        moved: dict[int, list[tuple[Any, TStruct]]] = {}
        if self._others:
            part, _ = encode_part(table.select(self._others), self._other_schema, self._other_kwargs)
            try:
                metadata = part_footer(part, table.num_rows, self.where)
            except StitchError as exc:
                raise FooterError(str(exc)) from exc
            view = memoryview(part)
            chunks = iter(metadata.get(4).items[0].get(1).items)
            for i in self._others:
                moved[i] = []
                for _ in range(self._leaves[i]):
                    cc = next(chunks)
                    start, length = chunk_range(cc.get(3))
                    moved[i].append((view[start : start + length], cc))
        start = self._pos
        columns: list[TStruct] = []
        byte_size = compressed = 0
        for i in range(len(self.schema)):
            if i in own:
                chunk = own[i]
                columns.append(chunk.placed(self._pos))
                for piece in chunk.pages:
                    self._write(piece)
                byte_size += chunk.uncompressed
                compressed += chunk.compressed
                continue
            for data, cc in moved[i]:
                moved_chunk = clone_chunk(cc)
                place_chunk(moved_chunk, self._pos)
                columns.append(moved_chunk)
                meta = cc.get(3)
                byte_size += meta.get(6)
                compressed += meta.get(7)
                self._write(data)
        self._groups.append(
            TStruct(
                [
                    (1, LIST, TList(STRUCT, columns)),
                    (2, I64, byte_size),
                    (3, I64, table.num_rows),
                    (5, I64, start),
                    (6, I64, compressed),
                ]
            )
        )
        self._rows += table.num_rows

    def close(self) -> None:
        if self._pos == 0:
            self._write(MAGIC)
        meta = TStruct(list(self._footer.fields))
        meta.set(3, I64, self._rows)
        meta.set(4, LIST, TList(STRUCT, self._groups))
        footer = encode(meta)
        self._write(footer + len(footer).to_bytes(4, "little") + MAGIC)

    def __enter__(self) -> ColumnWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def _subset_kwargs(kwargs: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """``kwargs`` with per-column options cut down to the columns ``names`` (pyarrow rejects others)."""
    out = dict(kwargs)
    encodings = out.get("column_encoding")
    if isinstance(encodings, dict):
        kept = {k: v for k, v in encodings.items() if k in names}
        if kept:
            out["column_encoding"] = kept
        else:
            out.pop("column_encoding")
    for key in ("use_dictionary", "write_statistics"):
        value = out.get(key)
        if isinstance(value, (list, tuple)):
            out[key] = [c for c in value if c in names]
    return out
