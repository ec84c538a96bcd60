"""The source PostgreSQL database: a DSN plus how extraction reads it.

Nothing connects at import or construction; the DSN (a secret: it may hold a password) comes from
``dg.EnvVar("PARQUETRY_PG_DSN")`` in the definitions and is never logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from parquetry.extract.pipeline import ExtractOptions


class PostgresResource(dg.ConfigurableResource):
    """Source database and extraction settings (workers, staging, chunk sizes, reader)."""

    dsn: str = Field(description="libpq connection string or postgresql:// URL of the source database")
    workers: int | None = Field(default=None, description="reader connections; default one per CPU core")
    staging_dir: str | None = Field(
        default=None,
        description="where raw COPY chunks are staged (default: $PARQUETRY_STAGING_DIR, else a per-user"
        " directory in /dev/shm)",
    )
    staging_budget_bytes: int = Field(
        default=384 << 20, description="bytes of chunks staged at most (they are mapped: they count in RSS)"
    )
    chunk_bytes: int = Field(default=32 << 20, description="size bound of one chunk file")
    range_bytes: int = Field(
        default=16 << 20, description="heap bytes per ctid page range (about half a chunk: one chunk each)"
    )
    reader: str = Field(default="auto", description="auto, socket (fast, unencrypted) or psycopg (SSL-safe)")
    batch_rows: int = Field(default=65_536, description="rows per decoded Arrow batch")
    connect_timeout_s: int = Field(default=30)

    def extract_options(self) -> ExtractOptions:
        from parquetry.extract.pipeline import ExtractOptions

        return ExtractOptions(
            workers=self.workers,
            staging_dir=self.staging_dir,
            staging_budget_bytes=self.staging_budget_bytes,
            chunk_bytes=self.chunk_bytes,
            range_bytes=self.range_bytes,
            reader=self.reader,
            batch_rows=self.batch_rows,
            connect_timeout_s=self.connect_timeout_s,
        )
