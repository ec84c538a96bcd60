"""The exact PostgreSQL COPY BINARY -> Arrow decoder (CPU, numba).

The rows are walked exactly as the format defines them: a 16-bit field count per row, a 32-bit length
per field (-1 = NULL) and the -1 trailer; nothing is guessed from the data, so text that happens to look
like a row header cannot shift anything.

The default (``one_pass=True``) is ``rowkernel.decode_rows``: one walk over the stream that writes every
field of a row straight into its column's final buffer (see ``rows.py``); only columns of rarer types
(arrays, ranges, composites, intervals...) are recorded as slices and decoded per column at the end of
the batch. Once a machine has compiled the kernel specialized to a table's row layout
(``rowspec.py``: the same walk with the layout as constants, about a third faster), decoders of that
layout run it instead. ``one_pass=False`` keeps the two-pass decoder it replaced, as a reference: pass 1
(``kernels.scan_rows``) records each field's offset and length, pass 2 (``columns.decode_columns``)
gathers the columns from them. Both give identical batches (a property test holds them to it).

``CopyDecoder`` is streaming: ``feed`` takes any split of the stream, keeps at most one batch of input
(``batch_rows`` rows or about ``batch_bytes`` bytes, plus one partial row) and returns the batches that
are complete; ``finish`` checks that the trailer was seen. Every error names the source, the absolute
byte offset and, where known, the row (from 1) and column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from parquetry.pgcopy.errors import CopyFormatError
from parquetry.pgcopy.types import PgColumn, arrow_schema

if TYPE_CHECKING:
    from parquetry.pgcopy.pool import BufferPool

__all__ = ["SIGNATURE", "CopyDecoder", "decode_copy_binary"]

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER_FIXED = len(SIGNATURE) + 8
FLAG_OIDS = 1 << 16
DEFAULT_BATCH_BYTES = 64 << 20
MAX_INDEX_CELLS = 1 << 21


def load_kernels() -> None:
    """Import the decoder's numba modules now, in the calling thread.

    They load lazily (importing Parquetry's code location must stay cheap), and the first decoder of a
    run is usually made in a decoding thread. Callers that start such threads call this first: under
    pytest every Parquetry module is parsed by ``ast.parse`` for assertion rewriting (Parquetry is a
    pytest plugin, so this holds in any project's tests that use it), and CPython 3.11's ``ast.parse``
    fails ("AST constructor recursion depth mismatch") when two threads run it at once.
    """
    from parquetry.pgcopy import columns, kernels, rowops, rows, rowspec  # noqa: F401


class CopyDecoder:
    """Streaming decoder of one COPY BINARY stream into RecordBatches of ``arrow_schema(columns)``.

    A batch holds at most ``batch_rows`` rows (fewer for very wide tables: at most 2M fields per batch)
    and about ``batch_bytes`` of input, so memory stays bounded whatever the table looks like.
    ``pool`` supplies the one-pass decoder's batch buffers (see ``parquetry.pgcopy.pool``); decoders
    that share one reuse each other's freed batches.
    """

    def __init__(
        self,
        columns: Sequence[PgColumn],
        source: str = "",
        batch_rows: int = 65536,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        one_pass: bool = True,
        pool: BufferPool | None = None,
    ) -> None:
        if batch_rows < 1 or batch_bytes < 1:
            raise ValueError("batch_rows and batch_bytes must be positive")
        self.columns = list(columns)
        self.schema = arrow_schema(self.columns)  # raises UnsupportedTypeError up front
        self.source = source
        # The field index holds 12 bytes per (row, column): cap it so wide tables stay bounded too.
        self.batch_rows = max(1, min(batch_rows, MAX_INDEX_CELLS // max(1, len(self.columns))))
        batch_rows = self.batch_rows
        self.batch_bytes = batch_bytes
        self._types = [c.type for c in self.columns]
        # numba loads here, not at import: importing Parquetry's code location must stay cheap.
        from parquetry.pgcopy import columns, kernels, rows

        self._k = kernels
        self._cols = columns
        ncols = len(self.columns)
        not_null = [c.not_null for c in self.columns]
        self._one = rows.RowColumns(self._types, batch_rows, pool, not_null) if one_pass else None
        # Without slice columns the one-pass decoder keeps no input: only a partial row is pending.
        self._keeps_input = self._one is None or self._one.keeps_input
        self._batch_first = 0  # stream offset where the pending batch's first row starts
        self._buf = bytearray()
        self._base = 0  # stream offset of self._buf[0]
        self._scan = 0  # position in the buffer where the next unparsed row starts
        self._batch_pos = 0  # position where the pending batch's first row starts
        self._rows = 0  # rows parsed into the pending batch
        self._rows_done = 0  # rows already emitted
        index_rows = batch_rows if self._one is None else 1
        self._offs = np.empty((ncols, index_rows), dtype=np.int64)  # [column, row]
        self._lens = np.empty((ncols, index_rows), dtype=np.int32)
        self._header_done = False
        self._trailer_at: int | None = None  # stream offset of the trailer once seen
        self._finished = False

    @property
    def rows(self) -> int:
        """Rows decoded so far (emitted or pending)."""
        return self._rows_done + self._rows

    @property
    def specialized_kernel(self) -> bool:
        """Whether the last rows were decoded by the row kernel specialized to this layout (rowspec)."""
        return self._one is not None and self._one.specialized

    def feed(self, data: bytes | bytearray | memoryview) -> list[pa.RecordBatch]:
        """Add the next bytes of the stream; return the batches that became complete."""
        return list(self.feed_iter(data))

    def feed_iter(self, data: bytes | bytearray | memoryview) -> Iterator[pa.RecordBatch]:
        """Like :meth:`feed`, but yields each batch as soon as it is decoded.

        A large piece of input (a whole staged chunk) then never has all its batches in memory at once:
        the caller writes one while the next is decoded. ``data`` must stay unchanged until the
        iterator is exhausted; one that is closed early leaves the decoder unusable.
        """
        if self._finished:
            raise RuntimeError("CopyDecoder.feed after finish")
        if not len(data):
            return
        if self._trailer_at is not None:
            raise self._error("data after the end-of-data trailer", self._trailer_at + 2 - self._base)
        # Scan the caller's buffer in place when nothing is pending; otherwise append to the pending bytes.
        if self._buf:
            self._buf += data
            work: bytes | bytearray | memoryview = self._buf
        else:
            work = data
        arr = np.frombuffer(work, dtype=np.uint8)
        arr.flags.writeable = False  # one kernel specialization for bytes, bytearray and memoryview
        try:
            if self._header_done or self._parse_header(arr):
                while self._scan_more(arr) == self._k.SCAN_BATCH_FULL:
                    yield self._emit(arr)
                if self._trailer_at is not None and self._rows:
                    yield self._emit(arr)
                if self._trailer_at is not None and self._one is not None:
                    self._one.discard_pending()
        finally:
            del arr
        self._keep_pending(work)

    def finish(self) -> list[pa.RecordBatch]:
        """End of input: check the stream ended with its trailer and return the last batch."""
        if self._finished:
            return []
        self._finished = True
        if not self._header_done:
            if len(self._buf) < HEADER_FIXED:
                raise self._error(
                    f"stream ends after {len(self._buf)} bytes, inside the header", len(self._buf)
                )
            raise self._error("stream ends inside the header extension", len(self._buf))
        if self._trailer_at is None:
            raise self._truncation_error()
        return []

    # --- internals ---------------------------------------------------------------------------

    def _error(self, reason: str, buf_pos: int, row: int | None = None, column: str | None = None):
        return CopyFormatError(
            reason, source=self.source, offset=self._base + buf_pos, row=row, column=column
        )

    def _keep_pending(self, work) -> None:
        """Keep only the bytes of the pending batch and the partial row; rebase offsets to them."""
        keep = self._batch_pos
        if work is self._buf:
            del self._buf[:keep]
        else:
            self._buf = bytearray(memoryview(work)[keep:])
        if keep:
            if self._one is None:
                self._offs[:, : self._rows] -= keep
            else:
                self._one.rebase(self._rows, keep)
            self._base += keep
            self._scan -= keep
            self._batch_pos = 0

    def _parse_header(self, buf: np.ndarray) -> bool:
        n = min(len(buf), len(SIGNATURE))
        if buf[:n].tobytes() != SIGNATURE[:n]:
            raise self._error("not a COPY BINARY stream (bad signature)", 0)
        if len(buf) < HEADER_FIXED:
            return False
        flags = int.from_bytes(buf[11:15].tobytes(), "big")
        if flags & FLAG_OIDS:
            raise self._error("stream carries row OIDs (WITH OIDS), which Parquetry does not read", 11)
        if flags & 0xFFFF0000 & ~FLAG_OIDS:
            raise self._error(f"unknown critical header flags {flags:#010x}", 11)
        ext = int.from_bytes(buf[15:19].tobytes(), "big", signed=True)
        if ext < 0:
            raise self._error(f"negative header extension length {ext}", 15)
        if len(buf) < HEADER_FIXED + ext:
            return False
        self._scan = self._batch_pos = HEADER_FIXED + ext
        self._batch_first = self._base + self._scan
        self._header_done = True
        return True

    def _scan_more(self, arr: np.ndarray) -> int:
        stop_pos = self._batch_first - self._base + self.batch_bytes
        if self._one is not None:
            rows, pos, status, bad, bad_pos, detail = self._one.decode(
                arr, self._scan, len(arr), self._rows, stop_pos, self._value_error
            )
            if status == self._k.SCAN_BAD_FIELD_COUNT:
                bad = detail
        else:
            rows, pos, status, bad, bad_pos = self._k.scan_rows(
                arr, self._scan, len(arr), len(self.columns), self._offs, self._lens,
                self._rows, self.batch_rows, stop_pos,
            )  # fmt: skip
        row_no = self.rows + int(rows) + 1
        self._rows += int(rows)
        self._scan = int(pos)
        if not self._keeps_input:
            self._batch_pos = self._scan
        if status == self._k.SCAN_TRAILER:
            self._trailer_at = self._base + int(pos) - 2
            if len(arr) > pos:
                raise self._error("data after the end-of-data trailer", int(pos))
        elif status == self._k.SCAN_BAD_FIELD_COUNT:
            raise self._error(
                f"row has {int(bad)} fields, expected {len(self.columns)} (or -1 for the trailer)",
                int(bad_pos),
                row=row_no,
            )
        elif status == self._k.SCAN_BAD_LENGTH:
            raise self._error(
                "negative field length other than -1 (NULL)",
                int(bad_pos),
                row=row_no,
                column=self.columns[int(bad)].name,
            )
        return int(status)

    def _value_error(self, row: int, buf_pos: int, column: int, reason: str) -> CopyFormatError:
        """A bad value found by the one-pass kernel: row ``row`` of the pending batch."""
        return self._error(reason, buf_pos, row=self._rows_done + row + 1, column=self.columns[column].name)

    def _emit(self, arr: np.ndarray) -> pa.RecordBatch:
        n = self._rows
        first_row = self._rows_done + 1
        contexts = [self._cols.Context(self.source, col.name, first_row, self._base) for col in self.columns]
        if self._one is not None:
            arrays = self._one.emit(arr, n, contexts)
        else:
            arrays = self._cols.decode_columns(arr, self._offs, self._lens, n, self._types, contexts)
            self._check_not_null(arrays, first_row)  # the one-pass kernel refuses such NULLs itself
        if arrays:
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        else:
            batch = pa.RecordBatch.from_struct_array(pa.array([{}] * n, pa.struct([])))
        self._rows_done += n
        self._rows = 0
        self._batch_pos = self._scan
        self._batch_first = self._base + self._scan
        return batch

    def _check_not_null(self, arrays: list[pa.Array], first_row: int) -> None:
        """A NULL in a column the table declares ``NOT NULL`` is refused, not written as a null into a
        non-nullable field (Arrow would not check it). The one-pass kernel stops at the very field; this
        check is the two-pass decoder's, naming the row and the offset where its batch starts."""
        for col, field, array in zip(self.columns, self.schema, arrays, strict=False):
            if not field.nullable and array.null_count:
                row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
                reason = "NULL in a column declared NOT NULL (in the batch starting at this offset)"
                raise self._error(
                    reason, self._batch_first - self._base, row=first_row + row, column=col.name
                )

    def _truncation_error(self) -> CopyFormatError:
        """Say exactly where the stream stops: inside which row and field."""
        buf = self._buf
        pos = self._scan
        end = len(buf)
        row = self.rows + 1
        if pos >= end:
            return self._error("stream ends without the end-of-data trailer (truncated)", end, row=None)
        if pos + 2 > end:
            return self._error("stream ends inside a row's field count (truncated)", pos, row=row)
        p = pos + 2
        for col in self.columns:
            if p + 4 > end:
                return self._error(
                    "stream ends inside a field length (truncated row)", p, row=row, column=col.name
                )
            ln = int.from_bytes(buf[p : p + 4], "big", signed=True)
            if ln > 0 and p + 4 + ln > end:
                return self._error(
                    f"field length {ln} runs past the end of the stream "
                    f"({end - p - 4} bytes left; truncated row)",
                    p,
                    row=row,
                    column=col.name,
                )
            p += 4 + max(ln, 0)
        return self._error("stream ends without the end-of-data trailer (truncated)", end, row=row)


def decode_copy_binary(
    data: bytes | bytearray | memoryview,
    columns: Sequence[PgColumn],
    source: str = "",
    batch_rows: int = 65536,
    one_pass: bool = True,
) -> pa.Table:
    """Decode one complete COPY BINARY stream into a Table."""
    decoder = CopyDecoder(columns, source=source, batch_rows=batch_rows, one_pass=one_pass)
    batches = decoder.feed(data)
    batches += decoder.finish()
    return pa.Table.from_batches(batches, schema=decoder.schema)
