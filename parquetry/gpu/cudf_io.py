"""cuDF, RMM and kvikio glue: staged chunk file -> device buffer -> cuDF DataFrame -> Parquet, on the GPU.

Everything here imports ``cudf``/``pylibcudf``/``rmm``/``kvikio`` inside functions: none of them is
needed to import Parquetry or to decode to Arrow. This module is deliberately thin: the decoding and
its correctness live in :mod:`parquetry.gpu.decode` (tested under numba's simulator); this code only
hands finished device buffers to cuDF without copying them to the host.

Arrow type -> cuDF type, explicitly (:data:`CUDF_TYPE_IDS`); a column outside this table (bytea,
uuid, time, interval, money-as-decimal is fine, columns the CPU decoded) makes
:func:`decode_chunk_to_cudf` raise :class:`CudfUnsupportedError`, and the consumer then writes with
pyarrow instead (and says so).

=====================  ==========================  =======================================
Arrow type             pylibcudf TypeId            device buffers handed over
=====================  ==========================  =======================================
bool                   BOOL8                       one byte per value (not Arrow's bits)
int16/int32/int64      INT16/INT32/INT64           values
uint32 (oid)           UINT32                      values
float32/float64        FLOAT32/FLOAT64             values
date32                 TIMESTAMP_DAYS              int32 days since 1970-01-01
timestamp[us]          TIMESTAMP_MICROSECONDS      int64; tz=UTC -> ``dt.tz_localize("UTC")``
decimal128(p, s)       DECIMAL128, scale = -s      16-byte values; ``astype(Decimal128Dtype(p, s))``
string                 STRING                      chars + INT32 offsets child
large_string           STRING                      chars + INT64 offsets child
=====================  ==========================  =======================================
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from parquetry.gpu.decode import DeviceColumn, GpuDecodeOptions, GpuDecodeResult, decode_device

CUDF_TYPE_IDS: dict[str, str] = {
    "bool": "BOOL8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint32": "UINT32",
    "float": "FLOAT32",
    "double": "FLOAT64",
    "date32[day]": "TIMESTAMP_DAYS",
    "timestamp[us]": "TIMESTAMP_MICROSECONDS",
    "timestamp[us, tz=UTC]": "TIMESTAMP_MICROSECONDS",
    "string": "STRING",
    "large_string": "STRING",
}


class CudfUnsupportedError(TypeError):
    """A column cannot be handed to cuDF as is; the message names it and its Arrow type."""


def cudf_type_id(arrow_type: pa.DataType) -> str | None:
    """The pylibcudf TypeId name for an Arrow type, or None when the cuDF path does not take it."""
    if pa.types.is_decimal128(arrow_type):
        return "DECIMAL128"
    return CUDF_TYPE_IDS.get(str(arrow_type))


def cudf_unsupported_columns(
    result_or_schema: GpuDecodeResult | pa.Schema, cpu_columns: Sequence[str] = ()
) -> list[str]:
    """Columns that keep a chunk off the cuDF writer (no mapping, or decoded on the CPU)."""
    schema = result_or_schema.schema if isinstance(result_or_schema, GpuDecodeResult) else result_or_schema
    if isinstance(result_or_schema, GpuDecodeResult):
        cpu_columns = result_or_schema.cpu_columns
    return [f.name for f in schema if cudf_type_id(f.type) is None or f.name in set(cpu_columns)]


def read_chunk_to_device(path: str | os.PathLike[str]) -> Any:
    """Read a staged chunk file straight into an ``rmm.DeviceBuffer`` with kvikio (GPUDirect Storage
    when available, kvikio's own POSIX path otherwise)."""
    import kvikio
    import rmm

    size = os.path.getsize(path)
    buf = rmm.DeviceBuffer(size=size)
    with kvikio.CuFile(str(path), "r") as fh:
        read = fh.read(buf)
    if read != size:
        raise OSError(f"{path}: kvikio read {read} of {size} bytes")
    return buf


def _column(plc, col: DeviceColumn) -> Any:
    t = col.plan.arrow_type
    type_id = cudf_type_id(t)
    if type_id is None or col.host_array is not None:
        raise CudfUnsupportedError(f"column {col.plan.name!r} ({t}) has no device-side cuDF mapping")
    n = col.length
    mask = plc.gpumemoryview(col.validity) if col.null_count else None
    tid = getattr(plc.TypeId, type_id)
    dtype = plc.DataType(tid, -t.scale) if type_id == "DECIMAL128" else plc.DataType(tid)
    if type_id == "STRING":
        offsets_tid = plc.TypeId.INT64 if t == pa.large_string() else plc.TypeId.INT32
        offsets = plc.Column(plc.DataType(offsets_tid), n + 1, plc.gpumemoryview(col.offsets), None, 0, 0, [])
        return plc.Column(dtype, n, plc.gpumemoryview(col.data), mask, col.null_count, 0, [offsets])
    data = col.byte_values if type_id == "BOOL8" else col.data
    return plc.Column(dtype, n, plc.gpumemoryview(data), mask, col.null_count, 0, [])


def result_to_cudf(result: GpuDecodeResult) -> Any:
    """A ``cudf.DataFrame`` over the decoded device buffers (no host copy of any value)."""
    import cudf
    import pylibcudf as plc

    bad = cudf_unsupported_columns(result)
    if bad:
        raise CudfUnsupportedError(f"columns without a device-side cuDF mapping: {', '.join(bad)}")
    series = {}
    for col in result.columns:
        s = cudf.Series.from_pylibcudf(_column(plc, col))
        t = col.plan.arrow_type
        if pa.types.is_decimal128(t):
            s = s.astype(cudf.Decimal128Dtype(precision=t.precision, scale=t.scale))
        elif pa.types.is_timestamp(t) and t.tz is not None:
            s = s.dt.tz_localize(t.tz)
        series[col.plan.name] = s
    return cudf.DataFrame(series)


def decode_chunk_to_cudf(
    device_buffer: Any, columns: Sequence, source: str = "", options: GpuDecodeOptions | None = None
) -> Any:
    """Decode a chunk already in device memory (``rmm.DeviceBuffer`` or any CUDA array) into a DataFrame."""
    return result_to_cudf(decode_device(device_buffer, columns, source, options))


def write_cudf_parquet(df: Any, path: str, schema: pa.Schema, options: Any) -> tuple[int, int]:
    """Write ``df`` with cuDF's GPU Parquet writer at ``path`` (local), then verify it with pyarrow.

    Same codec and row-group size as the CPU path (``ParquetOptions``); cuDF has no zstd level, so the
    level is cuDF's default. The footer's row count and the Arrow types (field metadata aside) must
    match ``schema``; returns (rows, row groups).
    """
    import pyarrow.parquet as pq

    compression = {"zstd": "ZSTD", "snappy": "SNAPPY", "none": None, "lz4": "LZ4"}[
        options.compression.lower()
    ]
    df.to_parquet(
        path,
        compression=compression,
        row_group_size_rows=options.row_group_rows,
        statistics="ROWGROUP" if options.write_statistics else "NONE",
        index=False,
    )
    meta = pq.ParquetFile(path).metadata
    if meta.num_rows != len(df):
        raise OSError(f"{path}: cuDF wrote {meta.num_rows} rows, expected {len(df)}")
    got = pq.read_schema(path).remove_metadata()
    want = pa.schema([pa.field(f.name, f.type) for f in schema])
    got = pa.schema([pa.field(f.name, f.type) for f in got])
    if not got.equals(want):
        raise TypeError(f"{path}: cuDF wrote schema {got} but the dataset's schema is {want}")
    return meta.num_rows, meta.num_row_groups


def temp_sibling(path: str) -> str:
    return posixpath.join(posixpath.dirname(path), f".tmp-{uuid.uuid4().hex}-{posixpath.basename(path)}")
