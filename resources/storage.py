"""Where Parquet lands: a root URI (local path or fsspec URL) and how files are encoded."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from parquetry.storage import ParquetOptions, Storage

DEFAULT_ROOT = "./.parquetry/data"
DICTIONARY_CHOICES = {"all": True, "none": False, "auto": "auto"}


def default_root() -> str:
    return os.environ.get("PARQUETRY_DATA_ROOT") or DEFAULT_ROOT


def general_defaults() -> ParquetOptions:
    """The encoding of writers that have no measured default of their own (STDF's small tables)."""
    from parquetry.storage import ParquetOptions

    return ParquetOptions(
        compression="zstd",
        compression_level=2,
        use_dictionary="auto",
        row_group_rows=1_000_000,
        target_file_rows=8_000_000,
    )


class StorageResource(dg.ConfigurableResource):
    """The Parquet root (``$PARQUETRY_DATA_ROOT`` or ``./.parquetry/data``) and Parquet options.

    An encoding field left unset keeps the writer's own default, each measured by its write cost:
    PostgreSQL extraction writes zstd 1, no dictionaries, delta-packed integers and 131,072-row
    groups (``parquetry.extract.parquet.EXTRACT_PARQUET_OPTIONS``); STDF ingestion tunes its
    ``results`` table column by column. A field that is set applies to every writer.
    """

    root: str = Field(default_factory=default_root, description="local directory or fsspec URL")
    storage_options: dict[str, Any] = Field(default_factory=dict, description="fsspec options (endpoint...)")
    compression: str | None = Field(default=None, description="codec, e.g. 'zstd', 'snappy'; unset: zstd")
    compression_level: int | None = Field(default=None, description="codec level; unset: the writer's")
    dictionary: str | None = Field(
        default=None,
        description="dictionary pages: 'auto' (string/binary columns), 'all' or 'none'; unset: the writer's",
    )
    delta_integers: bool | None = Field(
        default=None, description="DELTA_BINARY_PACKED for integer-like columns; unset: the writer's"
    )
    row_group_rows: int | None = Field(default=None, description="rows per row group; unset: the writer's")
    target_file_rows: int | None = Field(default=None, description="most rows per file; unset: the writer's")
    encode_threads: int | None = Field(
        default=None,
        description="row groups encoded at once, each holding a row group in memory (same bytes); unset: 1",
    )
    encoder: str | None = Field(
        default=None,
        description="'parquetry' (its own encoder for the flat columns it can write, pyarrow for the rest)"
        " or 'pyarrow'; unset: 'parquetry'",
    )

    def get_storage(self) -> Storage:
        from parquetry.storage import Storage

        return Storage(self.root, dict(self.storage_options))

    def parquet_options(self, defaults: ParquetOptions | None = None) -> ParquetOptions:
        """``defaults`` (a writer's own; else :func:`general_defaults`) with the fields set here."""
        if self.dictionary is not None and self.dictionary not in DICTIONARY_CHOICES:
            raise ValueError(
                f"storage.dictionary={self.dictionary!r}: choose one of {', '.join(DICTIONARY_CHOICES)}"
            )
        overrides: dict[str, Any] = {
            "compression": self.compression,
            "delta_integers": self.delta_integers,
            "row_group_rows": self.row_group_rows,
            "target_file_rows": self.target_file_rows,
            "encode_threads": self.encode_threads,
            "encoder": self.encoder,
            "use_dictionary": None if self.dictionary is None else DICTIONARY_CHOICES[self.dictionary],
        }
        chosen = {k: v for k, v in overrides.items() if v is not None}
        if self.compression is not None or self.compression_level is not None:
            chosen["compression_level"] = self.compression_level  # another codec: its own level or none
        return dataclasses.replace(defaults or general_defaults(), **chosen)
