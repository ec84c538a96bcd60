"""The one-pass decoder's column buffers: what ``rowkernel.decode_rows`` writes, and the Arrow arrays
made from them without another copy.

``RowColumns`` holds one batch's buffers: one arena for the fixed-width columns (each at a 64-byte
offset; values land at their final place, byte-swapped and converted), one validity bitmap per column,
and for the string columns their Arrow offsets and one data region each inside a shared arena. String
regions are sized from the bytes per row of the batches before (the first batch guesses from its input
size) and grow by copying when a row does not fit: the kernel stops before such a row and resumes at it.

The buffers come from a :class:`parquetry.pgcopy.pool.BufferPool` and go back to it when the batch's
Arrow arrays are freed, so consecutive batches write into pages that are already mapped.

Columns of rarer types (arrays, ranges, composites, intervals, bit strings, unconstrained numerics...)
get their ``(offset, length)`` recorded and go through ``columns.decode_values`` at emit time; only
then does the decoder have to keep the batch's input bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from parquetry.pgcopy import columns as C
from parquetry.pgcopy import rowkernel as R
from parquetry.pgcopy import rowspec
from parquetry.pgcopy.pool import BufferPool, Lease
from parquetry.pgcopy.types import PgType, arrow_type, decimal_precision_scale

INT32_MAX = 2**31 - 1
_SIGNATURES: dict[tuple[rowspec.Layout, tuple[bool, bool]], tuple[object, ...]] = {}
_STRING_CODECS = frozenset({"text", "varchar", "bpchar", "name", "json", "xml", "jsonb"})
_BE_CODECS = {"int2": 2, "int4": 4, "int8": 8, "oid": 4, "float4": 4, "float8": 8, "time": 8}


def row_kind(t: PgType) -> tuple[int, int, int, int]:
    """(kind, width, param, scale) of a column for ``decode_rows``; R_SLICE for the per-column decoders.

    For R_VAR, ``param`` is the header bytes to skip (jsonb's version byte) and ``scale`` 1 when the
    bytes must be valid UTF-8.
    """
    if t.kind == "enum":
        return R.R_VAR, 0, 0, 1
    if t.kind != "scalar":
        return R.R_SLICE, 0, 0, 0
    c = t.codec
    if c in _BE_CODECS:
        return R.R_BE, _BE_CODECS[c], 0, 0
    if c == "date":
        return R.R_DATE, 4, 0, 0
    if c in ("timestamp", "timestamptz"):
        return R.R_TS, 8, 0, 0
    if c == "uuid":
        return R.R_RAW, 16, 0, 0
    if c == "bool":
        return R.R_BOOL, 1, 0, 0
    if c == "bytea":
        return R.R_VAR, 0, 0, 0
    if c in _STRING_CODECS:
        return R.R_VAR, 0, (1 if c == "jsonb" else 0), 1
    if c == "numeric":
        ps = decimal_precision_scale(t)
        if ps is not None:
            return R.R_DEC, (16 if ps[0] <= 38 else 32), ps[0], ps[1]
    return R.R_SLICE, 0, 0, 0


def _align(n: int) -> int:
    return (n + 63) & ~63


def _stagger(n: int) -> int:
    """``n`` rounded up to a cache line, then moved to an odd number of cache lines past a 4 KiB
    multiple. The kernel writes every column at the same row at once: regions whose starts differ by a
    multiple of 4 KiB would put all those writes in one L1 cache set and evict each other."""
    n = _align(n)
    return n if (n >> 6) & 1 else n + 64


class RowColumns:
    """The buffers of one batch of at most ``max_rows`` rows, refilled after every ``emit``.

    ``pool`` supplies the buffers (a private one when None); share one between the decoders of a run
    so its chunks reuse each other's memory.
    """

    def __init__(
        self,
        types: Sequence[PgType],
        max_rows: int,
        pool: BufferPool | None = None,
        not_null: Sequence[bool] | None = None,
    ) -> None:
        self.pool = pool if pool is not None else BufferPool()
        self._blocks: list[np.ndarray] = []  # the pending batch's blocks, leased to its arrays at emit
        self.types = list(types)
        self.max_rows = max_rows
        ncols = len(self.types)
        specs = [row_kind(t) for t in self.types]
        self.kinds = np.array([s[0] for s in specs], dtype=np.int64)
        self.not_null = np.array(list(not_null or [False] * ncols), dtype=np.bool_)
        self.widths = np.array([s[1] for s in specs], dtype=np.int64)
        self.params = np.array([s[2] for s in specs], dtype=np.int64)
        self.scales = np.array([s[3] for s in specs], dtype=np.int64)
        self.slots = np.zeros(ncols, dtype=np.int64)
        self.var_cols: list[int] = []
        self.slice_cols: list[int] = []
        fixed = 0
        for c, (kind, width, _, _) in enumerate(specs):
            if kind == R.R_VAR:
                self.slots[c] = len(self.var_cols)
                self.var_cols.append(c)
            elif kind == R.R_SLICE:
                self.slots[c] = len(self.slice_cols)
                self.slice_cols.append(c)
            else:
                self.slots[c] = fixed
                fixed += _stagger((max_rows + 7) // 8 if kind == R.R_BOOL else max_rows * width)
        self.fixed_bytes = max(fixed, 64)
        nvar = max(1, len(self.var_cols))
        nslice = max(1, len(self.slice_cols))
        self.slice_offs = np.zeros((nslice, max_rows if self.slice_cols else 1), dtype=np.int64)
        self.slice_lens = np.zeros((nslice, max_rows if self.slice_cols else 1), dtype=np.int32)
        self.var_pos = np.zeros(nvar, dtype=np.int64)
        self.var_base = np.zeros(nvar, dtype=np.int64)
        self.var_cap = np.zeros(nvar, dtype=np.int64)
        # String bytes per row seen so far, shared with the decoders of the same layout (other chunks).
        layout = ("string bytes per row", tuple((t.oid, t.typmod, t.codec) for t in self.types))
        self._per_row = self.pool.hint(layout, nvar)
        self._allocated = False
        self.rows_decoded = 0
        self.layout = rowspec.layout_of(self.kinds, self.widths, self.params, self.scales, self.not_null)
        # The kernel per kind of input buffer (the compiled code depends on e.g. its being read-only):
        # the generic one until the layout's specialized kernel is ready (see rowspec).
        self._kernels: dict[tuple[bool, bool], tuple[rowspec.Kernel, bool]] = {}
        self.specialized = False  # the last batch ran the specialized kernel

    @property
    def keeps_input(self) -> bool:
        """True when some column is decoded at emit time from the retained input bytes."""
        return bool(self.slice_cols)

    # --- buffers -----------------------------------------------------------------------------

    def _take(self, nbytes: int, dtype: type = np.uint8) -> np.ndarray:
        """A block of the pending batch: ``nbytes`` bytes as ``dtype``, contents undefined."""
        block = self.pool.take(nbytes)
        self._blocks.append(block)
        return block[:nbytes].view(dtype)

    def _fresh_batch(self, input_bytes: int) -> None:
        """New buffers for a batch (the arrays emitted before keep the old ones); ``input_bytes`` bounds
        the batch's input and sizes the string regions of the first batch."""
        ncols = len(self.types)
        self.fixed = self._take((self.fixed_bytes // 8 + 1) * 8, np.uint64)
        self.fixed_u8 = self.fixed.view(np.uint8)
        for c in range(ncols):
            if self.kinds[c] == R.R_BOOL:
                s = int(self.slots[c])
                self.fixed_u8[s : s + (self.max_rows + 7) // 8] = 0
        width = _stagger((self.max_rows + 7) // 8 + 1)
        self.bitmaps = self._take(ncols * width).reshape(ncols, width)
        # Every row starts valid: the kernel clears the bit of a NULL and writes nothing for the rest
        # (emit clears the bits past the last row).
        self.bitmaps[:] = 0xFF
        nvar = max(1, len(self.var_cols))
        width = _stagger(4 * (self.max_rows + 1)) // 4
        self.var_offsets = self._take(nvar * width * 4, np.int32).reshape(nvar, width)
        self.var_offsets[:, 0] = 0
        self.var_pos[:] = 0
        caps = []
        for v in range(len(self.var_cols)):
            if self._per_row[v] > 0:
                guess = self._per_row[v] * self.max_rows * 1.25
            else:  # first batch: a share of its input
                guess = min(input_bytes, 64 << 20) / max(1, len(self.var_cols))
            caps.append(min(INT32_MAX, int(guess) + 4096))
        self._set_var_regions(caps, None)
        self.rows_decoded = 0
        self._allocated = True

    def _set_var_regions(self, caps: list[int], old: np.ndarray | None) -> None:
        base = 0
        bases = []
        for cap in caps:
            bases.append(base)
            base += _stagger(cap + R.SLACK)
        data = self._take(max(base, 64))
        for v, cap in enumerate(caps):
            if old is not None:
                used = int(self.var_pos[v])
                start = int(self.var_base[v])
                data[bases[v] : bases[v] + used] = old[start : start + used]
            self.var_base[v] = bases[v]
            self.var_cap[v] = cap
        if old is not None:  # the kernel wrote the old region only; no array refers to it
            self._release_block(old)
        self.var_data = data

    def _release_block(self, view: np.ndarray) -> None:
        for i, block in enumerate(self._blocks):
            if block.ctypes.data == view.ctypes.data:
                self.pool.give([self._blocks.pop(i)])
                return

    def _grow(self, column: int, need: int, row: int, pos: int, where) -> None:
        """Make room for ``need`` bytes in string column ``column`` (row ``row`` at ``pos`` needs it)."""
        v = int(self.slots[column])
        if need > INT32_MAX:
            reason = "more than 2 GiB of data in one column of one batch; lower batch_rows"
            raise where(row, pos, column, reason)
        caps = [int(x) for x in self.var_cap[: len(self.var_cols)]]
        caps[v] = min(INT32_MAX, max(2 * caps[v], need + need // 4 + 4096))
        self._set_var_regions(caps, self.var_data)

    # --- decoding ----------------------------------------------------------------------------

    def decode(
        self, buf: np.ndarray, pos: int, end: int, row0: int, stop_pos: int, where
    ) -> tuple[int, int, int, int, int, int]:
        """Run the kernel from ``pos`` (rows from ``row0``), growing string regions as needed.

        ``where(row_in_batch, buf_pos, column, reason)`` makes the ``CopyFormatError`` of a value
        error, which is raised here; framing statuses are returned as ``kernels.scan_rows`` returns them.
        """
        if not self._allocated:
            self._fresh_batch(max(0, min(end, stop_pos) - pos))
        rows_total = 0
        while True:
            args = (
                buf, pos, end, row0 + rows_total, self.max_rows, stop_pos,
                self.kinds, self.widths, self.params, self.scales, self.slots,
                self.fixed_u8, self.fixed, self.fixed_u8.view(np.uint16), self.fixed_u8.view(np.uint32),
                self.bitmaps,
                self.var_offsets, self.var_data, self.var_base, self.var_cap, self.var_pos,
                self.slice_offs, self.slice_lens, self.not_null,
            )  # fmt: skip
            buf_kind = (bool(buf.flags.writeable), bool(buf.flags.c_contiguous))
            kernel, self.specialized = self._kernels.get(buf_kind, (R.decode_rows, False))
            if not self.specialized and rowspec.mode() != "generic":
                # The arguments' numba types follow from the layout and the input's kind (the buffers
                # are always made alike): worked out once per process, not per chunk.
                signature = _SIGNATURES.get((self.layout, buf_kind))
                if signature is None:
                    signature = _SIGNATURES[(self.layout, buf_kind)] = rowspec.signature_of(args)
                kernel, self.specialized = self._kernels[buf_kind] = rowspec.choose(
                    self.layout, signature, max(0, end - pos)
                )
            rows, pos, status, col, bad_pos, detail = kernel(*args)
            rows_total += int(rows)
            self.rows_decoded = row0 + rows_total
            if status == R.ROWS_GROW:
                self._grow(int(col), int(detail), row0 + rows_total, int(pos), where)
                continue
            if status >= R.ROWS_BAD_WIDTH:
                self._raise(int(status), row0 + rows_total, int(col), int(bad_pos), int(detail), where)
            return rows_total, int(pos), int(status), int(col), int(bad_pos), int(detail)

    def _raise(self, status: int, row: int, c: int, bad_pos: int, detail: int, where) -> None:
        t = self.types[c]
        if status == R.ROWS_BAD_WIDTH:
            reason = f"{t.name} value of {detail} bytes, expected {int(self.widths[c])}"
        elif status == R.ROWS_BAD_BOOL:
            reason = f"boolean value of {detail} bytes or not 0/1"
        elif status == R.ROWS_BAD_VERSION:
            reason = f"{t.name} value without the version byte 1"
        elif status == R.ROWS_SHORT_HEADER:
            reason = f"{t.name} value shorter than its 1-byte header"
        elif status == R.ROWS_NUMERIC:
            reason = C._NUMERIC_ERRORS[detail].format(typ=arrow_type(t))
        elif status == R.ROWS_TS_RANGE:
            reason = (
                f"{t.name} value {detail} us after 2000-01-01 is beyond the Arrow int64 microsecond range "
                "(after 294247-01-10)"
            )
        elif status == R.ROWS_NOT_NULL:
            reason = "NULL in a column declared NOT NULL"
        elif status == R.ROWS_BAD_UTF8:
            reason = (
                f"{t.name} value is not valid UTF-8 (set client_encoding to UTF8): "
                f"byte {detail} of the value starts an invalid sequence"
            )
        else:
            reason = f"unknown decoder status {status}"
        raise where(row, bad_pos, c, reason)

    def discard_pending(self) -> None:
        """The stream ended with no rows pending: give the empty batch's buffers back to the pool (the
        kernel needed them to look for a next row, and found the trailer)."""
        if self._allocated and self.rows_decoded == 0:
            self.pool.give(self._blocks)
            self._blocks = []
            self._allocated = False

    def rebase(self, rows: int, keep: int) -> None:
        """The caller dropped ``keep`` bytes in front of its buffer: move recorded slices with it."""
        if self.slice_cols and rows:
            self.slice_offs[:, :rows] -= keep

    # --- Arrow ---------------------------------------------------------------------------------

    def emit(self, buf: np.ndarray, n: int, contexts: list[C.Context]) -> list[pa.Array]:
        """The first ``n`` decoded rows as Arrow arrays; the next batch gets new buffers."""
        out: list[pa.Array] = []
        nbytes = (n + 7) // 8
        lease = Lease(self.pool, self._blocks)
        self._blocks = []
        wrap = lease.buffer
        for c, t in enumerate(self.types):
            kind = int(self.kinds[c])
            if kind == R.R_SLICE:
                s = int(self.slots[c])
                offs = np.ascontiguousarray(self.slice_offs[s, :n])
                lens = np.ascontiguousarray(self.slice_lens[s, :n])
                out.append(C.decode_values(buf, offs, lens, t, contexts[c]))
                continue
            bitmap = self.bitmaps[c, :nbytes]
            if n % 8:
                bitmap[nbytes - 1] &= (1 << (n % 8)) - 1
            nulls = n - int(np.bitwise_count(bitmap).sum(dtype=np.int64))
            validity = wrap(bitmap) if nulls else None
            typ = arrow_type(t)
            if kind == R.R_VAR:
                v = int(self.slots[c])
                offsets = self.var_offsets[v, : n + 1]
                start = int(self.var_base[v])
                data = self.var_data[start : start + int(offsets[n])]
                buffers = [validity, wrap(offsets), wrap(data)]
            elif kind == R.R_BOOL:
                s = int(self.slots[c])
                buffers = [validity, wrap(self.fixed_u8[s : s + nbytes])]
            else:
                s = int(self.slots[c])
                buffers = [validity, wrap(self.fixed_u8[s : s + n * int(self.widths[c])])]
            out.append(pa.Array.from_buffers(typ, n, buffers, null_count=nulls))
        for v, _ in enumerate(self.var_cols):
            if n:
                self._per_row[v] = max(self._per_row[v] * 0.5, float(self.var_pos[v]) / n)
        self.rows_decoded = 0
        self._allocated = False
        return out
