"""Versioned, idempotent migrations of the catalog schema.

Each migration runs once, in order, recorded in ``schema_version``. :func:`migrate` takes a transaction-level
advisory lock first, so many processes (every Dagster run, the sensor, a CLI) may call it at once and at every
start: the first one migrates, the others wait and then find nothing left to do.
"""

from __future__ import annotations

import zlib

import psycopg
from psycopg import sql

# (version, description, statements). Statements use {s} for the catalog's PostgreSQL schema.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "datasets, files and the compaction log",
        [
            """
            CREATE TABLE {s}.datasets (
                id bigserial PRIMARY KEY,
                name text NOT NULL UNIQUE,
                storage_uri text NOT NULL,
                schema_fingerprint text,
                generation bigint NOT NULL DEFAULT 0,
                compaction_needed boolean NOT NULL DEFAULT false,
                lease_owner text,
                lease_token bigint NOT NULL DEFAULT 0,
                lease_expires_at timestamptz,
                last_compacted_at timestamptz,
                live_files integer NOT NULL DEFAULT 0,
                total_rows bigint NOT NULL DEFAULT 0,
                total_bytes bigint NOT NULL DEFAULT 0,
                etag text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX datasets_flagged ON {s}.datasets (id) WHERE compaction_needed",
            """
            CREATE TABLE {s}.files (
                id bigserial PRIMARY KEY,
                dataset_id bigint NOT NULL REFERENCES {s}.datasets (id) ON DELETE CASCADE,
                path text NOT NULL,
                bytes bigint NOT NULL CHECK (bytes >= 0),
                rows bigint NOT NULL CHECK (rows >= 0),
                row_groups integer NOT NULL CHECK (row_groups >= 0),
                etag text NOT NULL,
                schema_fingerprint text,
                state text NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'retired', 'deleted')),
                generation_added bigint NOT NULL,
                generation_retired bigint,
                registered_at timestamptz NOT NULL DEFAULT now(),
                retired_at timestamptz,
                deleted_at timestamptz
            )
            """,
            "CREATE UNIQUE INDEX files_live_path ON {s}.files (dataset_id, path) WHERE state = 'live'",
            "CREATE INDEX files_live ON {s}.files (dataset_id, generation_added, id) WHERE state = 'live'",
            "CREATE INDEX files_retired ON {s}.files (retired_at) WHERE state = 'retired'",
            "CREATE INDEX files_path ON {s}.files (path)",
            """
            CREATE TABLE {s}.compaction_log (
                id bigserial PRIMARY KEY,
                dataset_id bigint NOT NULL REFERENCES {s}.datasets (id) ON DELETE CASCADE,
                lease_owner text,
                lease_token bigint NOT NULL,
                plan_hash text,
                planned_generation bigint NOT NULL,
                committed_generation bigint NOT NULL,
                input_files integer NOT NULL,
                input_rows bigint NOT NULL,
                input_bytes bigint NOT NULL,
                output_files integer NOT NULL,
                output_rows bigint NOT NULL,
                output_bytes bigint NOT NULL,
                verification jsonb,
                committed_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ],
    ),
    (
        2,
        "file positions: a compaction's outputs take the place of the rows they hold",
        [
            # NULL means the file's id: files registered by writers come last, in registration order
            # (the order of versions before 2, which ordered by generation and id: the same order).
            "ALTER TABLE {s}.files ADD COLUMN position numeric",
            "CREATE INDEX files_live_position ON {s}.files (dataset_id, (coalesce(position, id)), id)"
            " WHERE state = 'live'",
        ],
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def _lock_key(schema: str) -> int:
    """A stable 63-bit advisory-lock key per catalog schema (two catalogs in one database do not contend)."""
    return zlib.crc32(f"parquetry_catalog.migrate:{schema}".encode()) | (0x5051 << 32)


def migrate(conn: psycopg.Connection, schema: str = "parquetry_catalog") -> int:
    """Bring the catalog in ``schema`` to the latest version and return it. Safe to run concurrently."""
    s = sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(schema)])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version ("
                " version integer PRIMARY KEY, description text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(s)
        )
        row = conn.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(s)
        ).fetchone()
        current = int(row[0]) if row else 0
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(sql.SQL(statement).format(s=s))
            conn.execute(
                sql.SQL("INSERT INTO {}.schema_version (version, description) VALUES (%s, %s)").format(s),
                [version, description],
            )
    return LATEST_VERSION
