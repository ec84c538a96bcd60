"""Decode a COPY BINARY chunk on the GPU into Arrow buffers, a ``pa.Table`` or a cuDF ``DataFrame``.

:func:`decode_device` runs the kernels of :mod:`parquetry.gpu.kernels` and leaves every column's Arrow
buffers (validity bitmap, values, offsets) in device memory. :func:`decode_chunk_gpu` copies them into
a ``pa.Table`` identical to what the CPU decoder (:func:`parquetry.pgcopy.decode.decode_copy_binary`)
returns for the same bytes: same schema (taken from :func:`parquetry.pgcopy.types.arrow_schema`), same
values, same errors (:class:`~parquetry.pgcopy.errors.CopyFormatError` with the byte offset).

Columns without a kernel follow the hybrid rule of :mod:`parquetry.gpu.plan`: a COPY sub-stream of only
those columns is gathered on the device, copied to the host and decoded by the CPU decoder; the result
names them in ``GpuDecodeResult.cpu_columns``.

numba is imported on first use; nothing here touches a GPU at import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from parquetry.gpu.plan import (
    K_BOOL,
    K_CPU,
    K_DATE,
    K_INTERVAL,
    K_MONEY,
    K_NUMERIC,
    K_SWAP,
    K_TIMESTAMP,
    K_UUID,
    K_VARLEN,
    ColumnPlan,
    plan_columns,
)

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER_FIXED = len(COPY_SIGNATURE) + 8
FLAG_OIDS = 1 << 16


@dataclass(frozen=True)
class GpuDecodeOptions:
    """Launch geometry. ``block_size``: bytes of stream per speculative walker; ``confirm``: rows a
    guessed row start must be followed by; ``threads``: threads per CUDA block; ``chain_tile``: blocks
    the chaining kernel stages in shared memory at a time; ``scan_chunk``: values per thread in scans.
    """

    block_size: int = 64 * 1024
    confirm: int = 4
    threads: int = 256
    chain_tile: int = 256
    scan_chunk: int = 1024

    @classmethod
    def for_simulator(cls) -> GpuDecodeOptions:
        """Tiny geometry: the simulator runs every CUDA thread as a Python thread."""
        return cls(block_size=64, confirm=3, threads=16, chain_tile=8, scan_chunk=8)


def simulator_enabled() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def default_options() -> GpuDecodeOptions:
    return GpuDecodeOptions.for_simulator() if simulator_enabled() else GpuDecodeOptions()


@dataclass
class DeviceColumn:
    """One decoded column, its Arrow buffers in device memory (``None`` validity: no NULLs)."""

    plan: ColumnPlan
    length: int
    null_count: int
    validity: Any = None  # uint8 device array, LSB-first bitmap
    data: Any = None  # uint8/uint32/int32 device array in Arrow's value layout
    offsets: Any = None  # int32/int64 device array (variable-width columns)
    byte_values: Any = None  # booleans one byte each (cuDF's BOOL8 layout), besides the Arrow bits
    host_array: pa.Array | None = None  # set instead of the buffers for CPU-decoded columns


@dataclass
class GpuDecodeResult:
    """Decoded chunk: columns in order, plus what an operator needs to know about how it ran."""

    schema: pa.Schema
    num_rows: int
    columns: list[DeviceColumn]
    stream_bytes: int
    blocks: int
    rewalked_blocks: int
    gpu_columns: list[str] = field(default_factory=list)
    cpu_columns: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "rows": self.num_rows,
            "stream_bytes": self.stream_bytes,
            "blocks": self.blocks,
            "rewalked_blocks": self.rewalked_blocks,
            "gpu_columns": list(self.gpu_columns),
            "cpu_columns": list(self.cpu_columns),
        }


def _pgcopy():
    from parquetry.pgcopy import decode, errors, types

    return decode, errors, types


def _error(
    reason: str, *, source: str, offset: int | None, row: int | None = None, column: str | None = None
):
    _, errors, _ = _pgcopy()
    return errors.CopyFormatError(reason, source=source, offset=offset, row=row, column=column)


def to_device_bytes(data: Any) -> Any:
    """A 1-D uint8 device array over ``data`` (host bytes are copied; device arrays are wrapped)."""
    from numba import cuda

    if isinstance(data, bytes | bytearray | memoryview):
        return cuda.to_device(np.frombuffer(data, dtype=np.uint8))
    if isinstance(data, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(data).view(np.uint8).reshape(-1))
    arr = None
    if hasattr(data, "copy_to_host") and hasattr(data, "dtype"):  # a numba device array (or the simulator's)
        arr = data
    elif hasattr(cuda, "is_cuda_array") and cuda.is_cuda_array(data):  # rmm.DeviceBuffer, CuPy, ...
        arr = cuda.as_cuda_array(data)
    if arr is not None:
        if arr.dtype != np.uint8 or arr.ndim != 1:
            raise TypeError(f"device data must be a 1-D uint8 array, got {arr.dtype} with {arr.ndim} dims")
        return arr
    raise TypeError(f"cannot decode a {type(data).__name__}: pass bytes, a numpy array or a device buffer")


def _grid(n: int, threads: int) -> tuple[int, int]:
    return (max(1, (n + threads - 1) // threads), threads)


def parse_header(head: bytes, size: int, source: str) -> int:
    """Offset of the first row after the COPY header; the same checks and messages as the CPU decoder."""
    n = min(size, len(COPY_SIGNATURE))
    if head[:n] != COPY_SIGNATURE[:n]:
        raise _error("not a COPY BINARY stream (bad signature)", source=source, offset=0)
    if size < HEADER_FIXED:
        raise _error(f"stream ends after {size} bytes, inside the header", source=source, offset=size)
    flags = int.from_bytes(head[11:15], "big")
    if flags & FLAG_OIDS:
        raise _error(
            "stream carries row OIDs (WITH OIDS), which Parquetry does not read", source=source, offset=11
        )
    if flags & 0xFFFF0000 & ~FLAG_OIDS:
        raise _error(f"unknown critical header flags {flags:#010x}", source=source, offset=11)
    ext = int.from_bytes(head[15:19], "big", signed=True)
    if ext < 0:
        raise _error(f"negative header extension length {ext}", source=source, offset=15)
    if size < HEADER_FIXED + ext:
        raise _error("stream ends inside the header extension", source=source, offset=size)
    return HEADER_FIXED + ext


_STRUCT_REASONS = {
    1: "field count differs from the number of columns",
    2: "negative field length other than -1",
    3: "stream ends inside a row (truncated)",
    4: "trailer before the end of the stream",
}


def describe_bad_rows(tail: bytes, base: int, stream_end: int, row: int, columns: Sequence, source: str):
    """The error for the first bad row in ``tail`` (stream bytes from ``base``, a row start).

    Runs on the host only after the kernels found a structural problem, so that the message, byte
    offset, row and column are the ones the CPU decoder reports for the same bytes. Returns None if
    ``tail`` holds no problem (the caller then reports the kernels' finding).
    """
    ncols = len(columns)
    end = stream_end - base
    pos = 0
    while True:
        if pos >= end:
            return _error(
                "stream ends without the end-of-data trailer (truncated)", source=source, offset=stream_end
            )
        if pos + 2 > end:
            return _error(
                "stream ends inside a row's field count (truncated)",
                source=source,
                offset=base + pos,
                row=row,
            )
        if pos + 2 > len(tail):
            return None
        nf = int.from_bytes(tail[pos : pos + 2], "big", signed=True)
        if nf == -1:
            if pos + 2 < end:
                return _error("data after the end-of-data trailer", source=source, offset=base + pos + 2)
            return None
        if nf != ncols:
            return _error(
                f"row has {nf} fields, expected {ncols} (or -1 for the trailer)",
                source=source,
                offset=base + pos,
                row=row,
            )
        p = pos + 2
        for col in columns:
            if p + 4 > end:
                return _error(
                    "stream ends inside a field length (truncated row)",
                    source=source,
                    offset=base + p,
                    row=row,
                    column=col.name,
                )
            if p + 4 > len(tail):
                return None
            ln = int.from_bytes(tail[p : p + 4], "big", signed=True)
            if ln < -1:
                return _error(
                    "negative field length other than -1 (NULL)",
                    source=source,
                    offset=base + p,
                    row=row,
                    column=col.name,
                )
            if ln > 0 and p + 4 + ln > end:
                return _error(
                    f"field length {ln} runs past the end of the stream "
                    f"({end - p - 4} bytes left; truncated row)",
                    source=source,
                    offset=base + p,
                    row=row,
                    column=col.name,
                )
            p += 4 + max(ln, 0)
        pos = p
        row += 1


def decode_device(
    data: Any,
    columns: Sequence,
    source: str = "",
    options: GpuDecodeOptions | None = None,
) -> GpuDecodeResult:
    """Decode a whole COPY BINARY stream (header, rows, trailer) into device-resident Arrow buffers."""
    from numba import cuda

    from parquetry.gpu import kernels as k

    _, _, types = _pgcopy()
    opts = options or default_options()
    schema = types.arrow_schema(columns)
    plans = plan_columns(columns, schema)
    ncols = len(columns)
    buf = to_device_bytes(data)
    size = int(buf.shape[0])
    head = bytes(buf[: min(size, 4096)].copy_to_host())
    data_start = parse_header(head, size, source)

    def structural_error(row_start: int, rows_before: int, copy_to: int, finding: str, at: int):
        tail = bytes(buf[row_start:copy_to].copy_to_host())
        exc = describe_bad_rows(tail, row_start, size, rows_before + 1, columns, source)
        return exc or _error(finding, source=source, offset=at, row=rows_before + 1)

    if size - 2 < data_start:
        raise structural_error(data_start, 0, size, "stream ends without the -1 trailer", size)
    limit = size - 2  # the trailer's offset: rows must end exactly there
    nblocks = (limit - data_start + opts.block_size - 1) // opts.block_size
    threads = opts.threads

    # 1-2: speculative walks, then the verified chain (see the kernels module and docs/gpu.md).
    rewalks = 0
    nrows = 0
    true_entry = row_base = None
    end_pos = data_start
    if nblocks > 0:
        spec_entry = cuda.device_array(nblocks, np.int64)
        spec_exit = cuda.device_array(nblocks, np.int64)
        spec_rows = cuda.device_array(nblocks, np.int64)
        spec_status = cuda.device_array(nblocks, np.int64)
        k.speculate_kernel[_grid(nblocks, threads)](
            buf,
            data_start,
            limit,
            opts.block_size,
            ncols,
            opts.confirm,
            spec_entry,
            spec_exit,
            spec_rows,
            spec_status,
        )
        true_entry = cuda.device_array(nblocks, np.int64)
        row_base = cuda.device_array(nblocks, np.int64)
        result = cuda.to_device(np.zeros(5, np.int64))
        k.chain_kernel(opts.chain_tile)[1, opts.chain_tile](
            buf,
            data_start,
            limit,
            opts.block_size,
            ncols,
            spec_entry,
            spec_exit,
            spec_rows,
            spec_status,
            true_entry,
            row_base,
            result,
        )
        total, status, errpos, rewalks, end_pos = (int(v) for v in result.copy_to_host())
        if status != k.ST_OK:
            # A row that runs into the last two bytes may be a stream without its trailer: look to the end.
            copy_to = size if status == k.ST_PAST_END else min(size, errpos + 8)
            raise structural_error(end_pos, total, copy_to, _STRUCT_REASONS[status], errpos)
        nrows = total
    trailer = bytes(buf[limit:size].copy_to_host())
    if end_pos != limit or trailer != b"\xff\xff":
        raise structural_error(end_pos, nrows, size, "missing -1 trailer at the end of the stream", limit)

    # 3: row and field offsets.
    field_pos = cuda.device_array(max(1, nrows * ncols), np.int64)
    field_len = cuda.device_array(max(1, nrows * ncols), np.int32)
    if nrows > 0:
        row_start = cuda.device_array(nrows, np.int64)
        k.row_starts_kernel[_grid(nblocks, threads)](
            buf, data_start, limit, opts.block_size, ncols, true_entry, row_base, row_start
        )
        k.fields_kernel[_grid(nrows, threads)](buf, row_start, ncols, field_pos, field_len)

    # 4: per-column kernels. err[c] = min(row * 16 + code) over that column's bad values.
    err = cuda.to_device(np.full(max(1, ncols), k.ERR_NONE, np.int64))
    out_cols: list[DeviceColumn] = []
    for plan in plans:
        if plan.kernel == K_CPU:
            out_cols.append(DeviceColumn(plan, nrows, 0))
            continue
        lo, hi = plan.index * nrows, (plan.index + 1) * nrows
        pos, lens = field_pos[lo:hi], field_len[lo:hi]
        out_cols.append(_decode_column(k, cuda, plan, buf, pos, lens, nrows, err, opts))
    bad = err.copy_to_host()
    for plan in plans:
        if plan.kernel != K_CPU and bad[plan.index] != k.ERR_NONE:
            row, code = divmod(int(bad[plan.index]), 16)
            at = int(field_pos[plan.index * nrows + row : plan.index * nrows + row + 1].copy_to_host()[0])
            raise _error(
                _value_reason(k, code, plan), source=source, offset=at, row=row + 1, column=plan.name
            )

    # 5: columns without a kernel: CPU decoder on a sub-stream of just those columns.
    cpu_plans = [p for p in plans if p.kernel == K_CPU]
    if cpu_plans:
        arrays = _decode_on_cpu(k, cuda, buf, field_pos, field_len, nrows, columns, cpu_plans, source, opts)
        for p, arr in zip(cpu_plans, arrays, strict=True):
            out_cols[p.index].host_array = arr
            out_cols[p.index].null_count = arr.null_count
    for c in out_cols:
        if c.null_count:
            continue
        c.validity = None
    return GpuDecodeResult(
        schema=schema,
        num_rows=nrows,
        columns=out_cols,
        stream_bytes=size,
        blocks=nblocks,
        rewalked_blocks=rewalks,
        gpu_columns=[p.name for p in plans if p.kernel != K_CPU],
        cpu_columns=[p.name for p in cpu_plans],
    )


def _value_reason(k, code: int, plan: ColumnPlan) -> str:
    reasons = {
        k.E_WIDTH: f"{plan.codec} value has the wrong length (expected {plan.width} bytes)",
        k.E_RANGE: f"{plan.codec} value out of range for {plan.arrow_type} (infinity?)",
        k.E_NUMERIC_NAN: f"numeric NaN cannot be stored in {plan.arrow_type}",
        k.E_NUMERIC_INF: f"numeric infinity cannot be stored in {plan.arrow_type}",
        k.E_NUMERIC_SIGN: "numeric value has an unknown sign word",
        k.E_NUMERIC_DIGIT: "numeric digit outside 0..9999",
        k.E_NUMERIC_PRECISION: f"numeric value has more digits than {plan.arrow_type} holds",
        k.E_NUMERIC_SCALE: f"numeric value has digits beyond the scale of {plan.arrow_type}",
        k.E_JSONB_VERSION: "jsonb value with an unknown format version",
        k.E_NUMERIC_LENGTH: "numeric value length disagrees with its digit count",
        k.E_BOOL: "boolean value of 1 byte but not 0/1",
        k.E_UTF8: f"{plan.codec} value is not valid UTF-8 (set client_encoding to UTF8)",
    }
    return reasons.get(code, f"bad {plan.codec} value (code {code})")


def _validity(k, cuda, lens, nrows: int, opts: GpuDecodeOptions) -> tuple[Any, int]:
    nbytes = (nrows + 7) // 8
    bitmap = cuda.device_array(max(1, nbytes), np.uint8)
    nulls = cuda.to_device(np.zeros(1, np.int64))
    if nrows:
        k.validity_kernel[_grid(nbytes, opts.threads)](lens, bitmap, nulls)
    return bitmap, int(nulls.copy_to_host()[0])


def exclusive_offsets(k, cuda, sizes, n: int, dtype, opts: GpuDecodeOptions) -> tuple[Any, int]:
    """Arrow offsets (n + 1 values) of ``sizes`` and their total; the per-chunk sums go via the host."""
    chunk = opts.scan_chunk
    nch = max(1, (n + chunk - 1) // chunk)
    sums = cuda.device_array(nch, np.int64)
    if n:
        k.chunk_sums_kernel[_grid(nch, opts.threads)](sizes, chunk, sums)
        host = sums.copy_to_host()
    else:
        host = np.zeros(1, np.int64)
    bases = np.zeros(nch, np.int64)
    np.cumsum(host[:-1], out=bases[1:])
    total = int(host.sum())
    if np.dtype(dtype) == np.int32 and total > np.iinfo(np.int32).max:
        raise OverflowError(f"{total} bytes of values exceed 32-bit Arrow offsets")
    offsets = cuda.device_array(n + 1, dtype)
    if n:
        k.chunk_offsets_kernel[_grid(nch, opts.threads)](sizes, chunk, cuda.to_device(bases), offsets)
    else:
        offsets.copy_to_device(np.zeros(1, dtype))
    return offsets, total


def _decode_column(k, cuda, plan: ColumnPlan, buf, pos, lens, nrows: int, err, opts) -> DeviceColumn:
    validity, nulls = _validity(k, cuda, lens, nrows, opts)
    col = DeviceColumn(plan, nrows, nulls, validity=validity)
    grid = _grid(nrows, opts.threads)
    n1 = max(1, nrows)
    c = plan.index
    if plan.kernel == K_BOOL:
        values = cuda.device_array(n1, np.uint8)
        bits = cuda.device_array(max(1, (nrows + 7) // 8), np.uint8)
        if nrows:
            k.bool_kernel[grid](buf, pos, lens, values, err, c)
            k.pack_bits_kernel[_grid((nrows + 7) // 8, opts.threads)](values[:nrows], bits)
        col.data = bits
        col.byte_values = values
    elif plan.kernel == K_SWAP:
        out = cuda.device_array(n1 * plan.width, np.uint8)
        if nrows:
            k.swap_kernel[grid](buf, pos, lens, plan.width, out, err, c)
        col.data = out
    elif plan.kernel == K_UUID:
        out = cuda.device_array(n1 * 16, np.uint8)
        if nrows:
            k.copy_kernel[grid](buf, pos, lens, 16, out, err, c)
        col.data = out
    elif plan.kernel == K_DATE:
        out = cuda.device_array(n1, np.int32)
        if nrows:
            k.date_kernel[grid](buf, pos, lens, out, err, c)
        col.data = out
    elif plan.kernel == K_TIMESTAMP:
        out = cuda.device_array(2 * n1, np.uint32)
        if nrows:
            k.timestamp_kernel[grid](buf, pos, lens, out, err, c)
        col.data = out
    elif plan.kernel == K_INTERVAL:
        out = cuda.device_array(4 * n1, np.uint32)
        if nrows:
            k.interval_kernel[grid](buf, pos, lens, out, err, c)
        col.data = out
    elif plan.kernel == K_MONEY:
        out = cuda.device_array(4 * n1, np.uint32)
        if nrows:
            k.money_kernel[grid](buf, pos, lens, out, err, c)
        col.data = out
    elif plan.kernel == K_NUMERIC:
        t = plan.arrow_type
        bound = 10**t.precision
        limbs = np.array([(bound >> (32 * i)) & 0xFFFFFFFF for i in range(4)], np.int64)
        out = cuda.device_array(4 * n1, np.uint32)
        if nrows:
            k.numeric_kernel[grid](buf, pos, lens, t.scale, cuda.to_device(limbs), out, err, c)
        col.data = out
    elif plan.kernel == K_VARLEN:
        sizes = cuda.device_array(n1, np.int64)
        if nrows:
            k.varlen_sizes_kernel[grid](buf, pos, lens, plan.skip, sizes, err, c)
        large = plan.arrow_type in (pa.large_string(), pa.large_binary())
        offsets, total = exclusive_offsets(k, cuda, sizes, nrows, np.int64 if large else np.int32, opts)
        out = cuda.device_array(max(1, total), np.uint8)
        if nrows and total:
            k.gather_kernel[grid](buf, pos, lens, plan.skip, offsets, out)
            if pa.types.is_string(plan.arrow_type) or pa.types.is_large_string(plan.arrow_type):
                k.utf8_kernel[grid](out, offsets, err, c)
        col.offsets = offsets
        col.data = out
    else:  # pragma: no cover - plan_columns only yields the kernels above
        raise AssertionError(plan.kernel)
    return col


def _decode_on_cpu(
    k, cuda, buf, field_pos, field_len, nrows, columns, cpu_plans, source, opts
) -> list[pa.Array]:
    """The hybrid rule: gather a COPY stream of only ``cpu_plans``' columns and decode it on the host.

    The sub-stream keeps every row and every field byte for byte (length words included), so the CPU
    decoder sees exactly the values it would see in the full stream. Its errors are re-raised with the
    byte offset mapped back to the original stream.
    """
    decode, errors, _ = _pgcopy()
    cols = np.array([p.index for p in cpu_plans], np.int64)
    body = b""
    row_offsets = np.zeros(1, np.int64)
    if nrows:
        d_cols = cuda.to_device(cols)
        sizes = cuda.device_array(nrows, np.int64)
        k.substream_sizes_kernel[_grid(nrows, opts.threads)](field_len, nrows, d_cols, sizes)
        offsets, total = exclusive_offsets(k, cuda, sizes, nrows, np.int64, opts)
        out = cuda.device_array(total, np.uint8)
        k.substream_gather_kernel[_grid(nrows, opts.threads)](
            buf, field_pos, field_len, nrows, d_cols, offsets, out
        )
        body = out.copy_to_host().tobytes()
        row_offsets = offsets.copy_to_host()
    sub_header = COPY_SIGNATURE + b"\x00" * 8
    sub = sub_header + body + b"\xff\xff"
    sub_columns = [columns[p.index] for p in cpu_plans]
    try:
        table = decode.decode_copy_binary(sub, sub_columns, source)
    except errors.CopyFormatError as exc:
        offset = _map_sub_offset(exc, cpu_plans, cols, row_offsets, body, len(sub_header), field_pos, nrows)
        raise errors.CopyFormatError(
            exc.reason, source=source, offset=offset, row=exc.row, column=exc.column
        ) from exc
    return [table.column(i).combine_chunks() for i in range(len(cpu_plans))]


def _map_sub_offset(exc, cpu_plans, cols, row_offsets, body: bytes, header: int, field_pos, nrows: int):
    """Translate a byte offset inside the hybrid sub-stream into the original stream's offset."""
    if exc.offset is None or exc.row is None or exc.column is None or not 1 <= exc.row <= nrows:
        return exc.offset
    j = next((i for i, p in enumerate(cpu_plans) if p.name == exc.column), None)
    if j is None:
        return exc.offset
    p = int(row_offsets[exc.row - 1]) + 2
    for _ in range(j):
        ln = int.from_bytes(body[p : p + 4], "big", signed=True)
        p += 4 + max(ln, 0)
    sub_payload = header + p + 4
    at = int(cols[j]) * nrows + exc.row - 1
    return int(field_pos[at : at + 1].copy_to_host()[0]) + (exc.offset - sub_payload)


# ---------------------------------------------------------------------------------- host assembly
def _host_buffer(dev, nbytes: int) -> pa.Buffer:
    host = dev.copy_to_host().view(np.uint8)[:nbytes]
    return pa.py_buffer(host)


def column_to_arrow(col: DeviceColumn) -> pa.Array:
    """Copy one decoded column to the host as an Arrow array of its schema type."""
    if col.host_array is not None:
        return col.host_array
    n = col.length
    t = col.plan.arrow_type
    validity = _host_buffer(col.validity, (n + 7) // 8) if col.null_count else None
    if col.plan.kernel == K_BOOL:
        return pa.Array.from_buffers(t, n, [validity, _host_buffer(col.data, (n + 7) // 8)], col.null_count)
    if col.plan.kernel == K_VARLEN:
        width = 8 if t in (pa.large_string(), pa.large_binary()) else 4
        offsets_host = col.offsets.copy_to_host()
        total = int(offsets_host[-1]) if n else 0
        return pa.Array.from_buffers(
            t,
            n,
            [
                validity,
                pa.py_buffer(offsets_host.view(np.uint8)[: (n + 1) * width]),
                _host_buffer(col.data, total),
            ],
            col.null_count,
        )
    width = t.byte_width if col.plan.kernel != K_SWAP else col.plan.width
    return pa.Array.from_buffers(t, n, [validity, _host_buffer(col.data, n * width)], col.null_count)


def to_arrow(result: GpuDecodeResult) -> pa.Table:
    """Copy a decoded chunk to the host as a ``pa.Table`` of the CPU decoder's schema."""
    if not result.columns:  # ``SELECT FROM t``: rows without columns
        rows = pa.array([{}] * result.num_rows, pa.struct([]))
        return pa.Table.from_batches([pa.RecordBatch.from_struct_array(rows)], schema=result.schema)
    arrays = [column_to_arrow(c) for c in result.columns]
    return pa.Table.from_arrays(arrays, schema=result.schema)


def decode_chunk_gpu(
    data: Any, columns: Sequence, source: str = "", options: GpuDecodeOptions | None = None
) -> pa.Table:
    """Decode a COPY BINARY chunk on the GPU into the same ``pa.Table`` the CPU decoder returns.

    ``data`` is host bytes / a numpy array (copied to the device) or a device buffer (used in place).
    """
    return to_arrow(decode_device(data, columns, source, options))
