"""Parquetry's own Parquet encoder for flat columns (:mod:`parquetry.encoder.writer`), and the choice
between it and pyarrow's writer (:func:`open_writer`)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

ENCODERS = ("parquetry", "pyarrow")


def load_encoder() -> None:
    """Import the encoder's modules (numba included) now, in the calling thread: callers about to start
    threads that may write Parquet call this first (see :func:`parquetry.pgcopy.decode.load_kernels`
    for why imports stay out of concurrent threads)."""
    from parquetry.encoder import columns, headers, kernels, selection, writer  # noqa: F401


def open_writer(
    sink: Any,
    schema: pa.Schema,
    where: str = "",
    local_path: str | None = None,
    encoder: str = "parquetry",
    **kwargs: Any,
) -> Any:
    """A Parquet writer of ``schema`` into ``sink`` with ``pq.ParquetWriter`` options ``kwargs``.

    ``encoder="parquetry"``: :class:`~parquetry.encoder.writer.ColumnWriter` when it encodes at least one
    column itself under these options, else pyarrow's writer (the same file either way, see
    :mod:`parquetry.encoder.writer`). ``"pyarrow"``: always pyarrow's (through
    :class:`parquetry.parquet_writer.ParquetWriter`).
    """
    from parquetry.parquet_writer import ParquetWriter

    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
    if encoder == "parquetry":
        from parquetry.encoder.selection import select

        selection = select(schema, kwargs)
        if selection.columns:  # numba loads only here, where a column is Parquetry's to encode
            from parquetry.encoder.writer import ColumnWriter

            return ColumnWriter(sink, schema, where, selection, **kwargs)
    return ParquetWriter(sink, schema, where, local_path, **kwargs)
