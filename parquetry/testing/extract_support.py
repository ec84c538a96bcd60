"""Test support for extraction: consumers that check chunks with PostgreSQL itself as the oracle.

``LoadBackConsumer`` loads every staged chunk into a table with ``COPY ... FROM STDIN (FORMAT
binary)``: if the server accepts the chunk, it is a well-formed binary COPY stream with whole rows,
and the loaded rows can be compared with the source using SQL alone (no decoder of ours involved).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from parquetry.extract.plan import ExtractPlan
from parquetry.extract.staging import StagedChunk


@dataclass
class ChunkLog:
    """What a consumer saw: chunk order, sizes and rows, plus staged bytes measured on disk."""

    chunks: list[tuple[int, int, int, int]] = field(default_factory=list)  # (task, seq, bytes, rows)
    max_staged_on_disk: int = 0
    rows: int = 0


def staged_bytes_on_disk(directory: Path) -> int:
    """Bytes of the chunk files (and spare files) in ``directory``; readers rename and delete them
    meanwhile, so a file listed may be gone when it is measured."""
    total = 0
    for p in directory.glob("*.pgcopy"):
        with contextlib.suppress(FileNotFoundError):
            total += p.stat().st_size
    return total


class LoadBackConsumer:
    """Loads each chunk into ``target`` (a table with the source's columns) on ``dsn``."""

    def __init__(
        self,
        dsn: str,
        target: str,
        log: ChunkLog | None = None,
        on_chunk: Callable[[StagedChunk], None] | None = None,
    ):
        self.dsn = dsn
        self.target = target
        self.log = log or ChunkLog()
        self.on_chunk = on_chunk

    def __call__(self, plan: ExtractPlan, chunks: Iterator[StagedChunk]) -> ChunkLog:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            statement = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.Identifier(self.target))
            for chunk in chunks:
                self.log.max_staged_on_disk = max(
                    self.log.max_staged_on_disk, staged_bytes_on_disk(chunk.path.parent)
                )
                if self.on_chunk is not None:
                    self.on_chunk(chunk)
                with conn.cursor() as cur, cur.copy(statement) as copy:
                    copy.write(chunk.path.read_bytes())
                self.log.chunks.append((chunk.task, chunk.seq, chunk.bytes, chunk.rows))
                self.log.rows += chunk.rows
        return self.log


def clone_empty(dsn: str, source: str, target: str, columns: list[str] | None = None) -> None:
    """Create ``target`` with the columns (and types) of ``source`` (a table, view or query), no rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        select = sql.SQL(", ").join(sql.Identifier(c) for c in columns) if columns else sql.SQL("*")
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT {} FROM ({}) AS s WITH NO DATA").format(
                sql.Identifier(target), select, sql.SQL(source)
            )
        )
