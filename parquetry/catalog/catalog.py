"""The dataset catalog: which Parquet files make up each dataset, and the one place a compaction commits.

Readers take a snapshot (:meth:`Catalog.snapshot`): one SQL statement, so it sees one generation's file set,
old or new, never a mix. Writers register files (:meth:`Catalog.register_files`). A compactor holds a lease
with a fencing token and swaps its planned inputs for its verified outputs in one transaction
(:meth:`Catalog.commit_compaction`); retired files stay on storage for a grace period so that readers holding
an older snapshot can still open them, and :meth:`Catalog.retired_files` lists what a cleanup may delete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.rows import dict_row

from parquetry.catalog.migrations import migrate
from parquetry.catalog.policy import FragmentationPolicy
from parquetry.storage import WrittenFile

DEFAULT_SCHEMA = "parquetry_catalog"


class CatalogError(RuntimeError):
    """The catalog refused an operation."""


class DatasetLocationMismatch(CatalogError):
    """A writer registered files for a dataset under another storage URI than the catalog records."""


class UnknownDataset(CatalogError):
    pass


class LeaseHeld(CatalogError):
    """Another compactor holds a live lease on the dataset."""


class LeaseLost(CatalogError):
    """The caller's lease expired or was taken over (its fencing token is stale): it must not commit."""


class StaleInputs(CatalogError):
    """Some planned input files are no longer live: the plan is out of date."""


@dataclass(frozen=True)
class Lease:
    dataset: str
    owner: str
    token: int  # fencing token: grows by one at every acquisition
    generation: int  # the dataset's generation when the lease was taken
    expires_at: datetime


@dataclass(frozen=True)
class LiveFile:
    id: int
    path: str
    bytes: int
    rows: int
    row_groups: int
    etag: str
    schema_fingerprint: str | None
    generation_added: int
    position: Decimal  # the dataset's order: live files sorted by (position, id)


@dataclass(frozen=True)
class Snapshot:
    dataset: str
    storage_uri: str
    generation: int
    etag: str
    files: tuple[LiveFile, ...]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    storage_uri: str
    generation: int
    compaction_needed: bool
    live_files: int
    total_rows: int
    total_bytes: int
    etag: str
    lease_owner: str | None
    lease_token: int
    lease_expires_at: datetime | None
    compaction_in_progress: bool  # a lease is held and not expired
    last_compacted_at: datetime | None


@dataclass(frozen=True)
class FlaggedDataset:
    name: str
    generation: int


@dataclass(frozen=True)
class RetiredFile:
    id: int
    dataset: str
    storage_uri: str
    path: str
    retired_at: datetime


def schema_fingerprint(schema: pa.Schema) -> str:
    """sha256 of the schema's column names, types and nullability, metadata left out.

    Names of list items and map entries are left out too: pyarrow calls a list's item ``item`` in
    memory and ``element`` once written to Parquet, and a map's entries after the column, so a writer's
    schema and the schema read back from its files have the same fingerprint.
    """
    text = "\n".join(_describe_field(schema.field(i)) for i in range(len(schema)))
    return hashlib.sha256(text.encode()).hexdigest()


def _describe_field(f: pa.Field) -> str:
    return f"{f.name!r}: {_describe_type(f.type)}{'' if f.nullable else ' not null'}"


def _describe_type(t: pa.DataType) -> str:
    def item(f: pa.Field) -> str:  # a nested value whose field name is not part of the schema
        return _describe_type(f.type) + ("" if f.nullable else " not null")

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{'large_' if pa.types.is_large_list(t) else ''}list<{item(t.value_field)}>"
    if pa.types.is_fixed_size_list(t):
        return f"fixed_size_list<{item(t.value_field)}>[{t.list_size}]"
    if pa.types.is_map(t):
        return f"map<{item(t.key_field)}, {item(t.item_field)}, sorted={t.keys_sorted}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(_describe_field(t.field(i)) for i in range(t.num_fields)) + ">"
    if pa.types.is_dictionary(t):
        return f"dictionary<{_describe_type(t.index_type)}, {_describe_type(t.value_type)}, {t.ordered}>"
    return str(t)


class Catalog:
    """The catalog in PostgreSQL schema ``schema`` of the database at ``dsn``.

    Every method opens its own short connection: no state is shared between threads or processes, and a
    crashed caller leaves nothing open behind it.
    """

    def __init__(
        self, dsn: str, schema: str = DEFAULT_SCHEMA, policy: FragmentationPolicy | None = None
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.policy = policy or FragmentationPolicy()
        self._s = sql.Identifier(schema)

    def __repr__(self) -> str:  # never show the DSN: it may hold a password
        return f"Catalog(schema={self.schema!r})"

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.dsn, autocommit=True, application_name="parquetry-catalog") as conn:
            yield conn

    def _q(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(s=self._s)

    def migrate(self) -> int:
        with self._connect() as conn:
            return migrate(conn, self.schema)

    # ------------------------------------------------------------------ writers

    def register_files(
        self,
        dataset_name: str,
        storage_uri: str,
        files: Sequence[WrittenFile],
        schema: pa.Schema,
        replace_paths: Sequence[str] = (),
    ) -> int:
        """Add published files to a dataset (created on first use); returns the dataset's new generation.

        Idempotent: a file already live with the same path and etag is not added twice. A live file at a
        path in ``replace_paths``, or at the path of a new file with another etag (it was overwritten), is
        retired in the same transaction, so an idempotent re-run of a partition replaces what it wrote.
        """
        fingerprint = schema_fingerprint(schema)
        with self._connect() as conn, conn.transaction():
            row = conn.execute(
                self._q(
                    "INSERT INTO {s}.datasets (name, storage_uri, schema_fingerprint) VALUES (%s, %s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET updated_at = now()"
                    " RETURNING id, generation, storage_uri"
                ),
                [dataset_name, storage_uri, fingerprint],
            ).fetchone()
            assert row is not None
            dataset_id, generation, known_uri = row
            if known_uri.rstrip("/") != storage_uri.rstrip("/"):
                raise DatasetLocationMismatch(
                    f"dataset {dataset_name!r} lives at {known_uri!r}, not {storage_uri!r}: refusing to mix"
                )
            conn.execute(self._q("SELECT 1 FROM {s}.datasets WHERE id = %s FOR UPDATE"), [dataset_id])
            live = {
                path: etag
                for path, etag in conn.execute(
                    self._q("SELECT path, etag FROM {s}.files WHERE dataset_id = %s AND state = 'live'"),
                    [dataset_id],
                )
            }
            new_files = [f for f in files if live.get(f.path) != f.etag]
            retire = {p for p in replace_paths if p in live} | {f.path for f in new_files if f.path in live}
            if not new_files and not retire:
                return int(generation)
            generation += 1
            if retire:
                conn.execute(
                    self._q(
                        "UPDATE {s}.files SET state = 'retired', generation_retired = %s, retired_at = now()"
                        " WHERE dataset_id = %s AND state = 'live' AND path = ANY(%s)"
                    ),
                    [generation, dataset_id, sorted(retire)],
                )
            if new_files:
                self._insert_files(conn, dataset_id, new_files, fingerprint, generation)
            conn.execute(
                self._q("UPDATE {s}.datasets SET generation = %s, schema_fingerprint = %s WHERE id = %s"),
                [generation, fingerprint, dataset_id],
            )
            self._refresh(conn, dataset_id)
            return int(generation)

    # ------------------------------------------------------------------ readers

    def snapshot(self, dataset: str) -> Snapshot:
        """The live file set of one generation, read in one statement (a consistent snapshot)."""
        with self._connect() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT d.storage_uri, d.generation, d.etag, f.id, f.path, f.bytes, f.rows, f.row_groups,"
                    " f.etag, f.schema_fingerprint, f.generation_added, coalesce(f.position, f.id)"
                    " FROM {s}.datasets d LEFT JOIN {s}.files f ON f.dataset_id = d.id AND f.state = 'live'"
                    " WHERE d.name = %s ORDER BY coalesce(f.position, f.id), f.id"
                ),
                [dataset],
            ).fetchall()
        if not rows:
            raise UnknownDataset(f"dataset {dataset!r} is not in the catalog")
        files = tuple(LiveFile(*r[3:11], Decimal(r[11])) for r in rows if r[3] is not None)
        return Snapshot(
            dataset=dataset, storage_uri=rows[0][0], generation=int(rows[0][1]), etag=rows[0][2], files=files
        )

    def live_files(self, dataset: str) -> list[LiveFile]:
        """Live files in the dataset's row order: the order writers added them, compaction outputs in
        place of the files they replaced."""
        return list(self.snapshot(dataset).files)

    def dataset(self, dataset: str) -> DatasetInfo:
        with self._connect() as conn:
            row = conn.execute(
                self._q(
                    "SELECT name, storage_uri, generation, compaction_needed, live_files, total_rows,"
                    " total_bytes, etag, lease_owner, lease_token, lease_expires_at,"
                    " coalesce(lease_expires_at > now(), false), last_compacted_at"
                    " FROM {s}.datasets WHERE name = %s"
                ),
                [dataset],
            ).fetchone()
        if row is None:
            raise UnknownDataset(f"dataset {dataset!r} is not in the catalog")
        return DatasetInfo(*row)

    def datasets(self) -> list[str]:
        with self._connect() as conn:
            return [r[0] for r in conn.execute(self._q("SELECT name FROM {s}.datasets ORDER BY name"))]

    def flagged_datasets(
        self, limit: int = 100, requested: Mapping[str, int] | None = None
    ) -> list[FlaggedDataset]:
        """Datasets the policy flags and no live lease holds (a partial-index scan: cheap for a sensor).

        ``requested`` maps dataset names to the generation a caller already acted on (a sensor's
        cursor); those pairs come last, so that datasets whose compaction keeps failing at one
        generation cannot fill every ``limit`` and starve datasets flagged after them.
        """
        pairs = sorted((requested or {}).items())
        names, generations = [name for name, _ in pairs], [int(gen) for _, gen in pairs]
        with self._connect() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT d.name, d.generation FROM {s}.datasets d"
                    " LEFT JOIN unnest(%s::text[], %s::bigint[]) AS r(name, generation)"
                    " ON r.name = d.name AND r.generation = d.generation"
                    " WHERE d.compaction_needed"
                    " AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now())"
                    " ORDER BY r.name IS NOT NULL, d.id LIMIT %s"
                ),
                [names, generations, limit],
            ).fetchall()
        return [FlaggedDataset(name, int(gen)) for name, gen in rows]

    def compaction_log(self, dataset: str) -> list[dict[str, Any]]:
        with self._connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                self._q(
                    "SELECT l.* FROM {s}.compaction_log l JOIN {s}.datasets d ON d.id = l.dataset_id"
                    " WHERE d.name = %s ORDER BY l.id"
                ),
                [dataset],
            )
            return list(cur.fetchall())

    # ------------------------------------------------------------------ leases

    def acquire_lease(self, dataset: str, owner: str, ttl_s: float) -> Lease:
        """Take the dataset's compaction lease for ``ttl_s`` seconds, or raise :class:`LeaseHeld`.

        A lease replaces a ``compaction_in_progress`` flag: it expires on its own, so a crashed compactor
        blocks the dataset for at most ``ttl_s``. Every acquisition returns a larger fencing token; a
        commit with an older token is refused even if its holder wakes up late.
        """
        with self._connect() as conn:
            row = conn.execute(
                self._q(
                    "UPDATE {s}.datasets SET lease_owner = %s, lease_token = lease_token + 1,"
                    " lease_expires_at = now() + make_interval(secs => %s)"
                    " WHERE name = %s AND (lease_expires_at IS NULL OR lease_expires_at <= now())"
                    " RETURNING lease_token, generation, lease_expires_at"
                ),
                [owner, float(ttl_s), dataset],
            ).fetchone()
            if row is None:
                held = conn.execute(
                    self._q("SELECT lease_owner, lease_expires_at FROM {s}.datasets WHERE name = %s"),
                    [dataset],
                ).fetchone()
                if held is None:
                    raise UnknownDataset(f"dataset {dataset!r} is not in the catalog")
                raise LeaseHeld(f"dataset {dataset!r} is being compacted by {held[0]!r} until {held[1]}")
        return Lease(
            dataset=dataset, owner=owner, token=int(row[0]), generation=int(row[1]), expires_at=row[2]
        )

    def renew_lease(self, dataset: str, token: int, ttl_s: float) -> datetime:
        """Extend a live lease; raises :class:`LeaseLost` if it expired or was taken over."""
        with self._connect() as conn:
            row = conn.execute(
                self._q(
                    "UPDATE {s}.datasets SET lease_expires_at = now() + make_interval(secs => %s)"
                    " WHERE name = %s AND lease_token = %s AND lease_expires_at > now()"
                    " RETURNING lease_expires_at"
                ),
                [float(ttl_s), dataset, token],
            ).fetchone()
        if row is None:
            raise LeaseLost(f"dataset {dataset!r}: lease {token} expired or was taken over")
        return row[0]

    def release_lease(self, dataset: str, token: int) -> bool:
        """Give the lease back (a no-op if it was already taken over); True if this call released it."""
        with self._connect() as conn:
            cur = conn.execute(
                self._q(
                    "UPDATE {s}.datasets SET lease_owner = NULL, lease_expires_at = NULL"
                    " WHERE name = %s AND lease_token = %s AND lease_expires_at IS NOT NULL"
                ),
                [dataset, token],
            )
            return cur.rowcount == 1

    # ------------------------------------------------------------------ compaction

    def commit_compaction(
        self,
        dataset: str,
        lease_token: int,
        planned_generation: int,
        inputs: Sequence[LiveFile],
        outputs: Sequence[WrittenFile],
        *,
        plan_hash: str | None = None,
        schema: pa.Schema | None = None,
        verification: Mapping[str, Any] | None = None,
        positions: Sequence[Decimal] | None = None,
    ) -> int:
        """Swap exactly ``inputs`` for ``outputs`` in one transaction; returns the new generation.

        ``positions`` places the outputs in the dataset's order (see :mod:`parquetry.compact.positions`);
        without it they come after every live file.

        Refused (nothing changes) unless the lease token is current and unexpired (fencing) and every
        input is still live with the etag it was planned with. Files registered since the plan survive.
        Re-committing an already committed swap (a retry after a lost reply) returns the current
        generation and changes nothing.
        """
        if not inputs:
            raise CatalogError(f"dataset {dataset!r}: a compaction commit needs input files")
        fingerprint = schema_fingerprint(schema) if schema is not None else None
        input_ids = [f.id for f in inputs]
        if positions is not None and len(positions) != len(outputs):
            raise CatalogError(f"dataset {dataset!r}: {len(positions)} positions for {len(outputs)} outputs")
        with self._connect() as conn, conn.transaction():
            row = conn.execute(
                self._q(
                    "SELECT id, generation, lease_token, lease_owner,"
                    " coalesce(lease_expires_at > now(), false)"
                    " FROM {s}.datasets WHERE name = %s FOR UPDATE"
                ),
                [dataset],
            ).fetchone()
            if row is None:
                raise UnknownDataset(f"dataset {dataset!r} is not in the catalog")
            dataset_id, generation, token, owner, lease_live = row
            states = dict(
                conn.execute(
                    self._q("SELECT id, state FROM {s}.files WHERE dataset_id = %s AND id = ANY(%s)"),
                    [dataset_id, input_ids],
                ).fetchall()
            )
            if self._already_committed(conn, dataset_id, states, input_ids, outputs):
                return int(generation)
            if token != lease_token or not lease_live:
                raise LeaseLost(
                    f"dataset {dataset!r}: lease {lease_token} is no longer valid (current token {token},"
                    f" {'live' if lease_live else 'expired'}): commit refused"
                )
            stale = [f.path for f in inputs if states.get(f.id) != "live"]
            if stale:
                raise StaleInputs(f"dataset {dataset!r}: planned inputs no longer live: {stale[:5]}")
            generation += 1
            conn.execute(
                self._q(
                    "UPDATE {s}.files SET state = 'retired', generation_retired = %s, retired_at = now()"
                    " WHERE id = ANY(%s)"
                ),
                [generation, input_ids],
            )
            self._insert_files(conn, dataset_id, outputs, fingerprint, generation, positions)
            conn.execute(
                self._q("UPDATE {s}.datasets SET generation = %s, last_compacted_at = now() WHERE id = %s"),
                [generation, dataset_id],
            )
            conn.execute(
                self._q(
                    "INSERT INTO {s}.compaction_log (dataset_id, lease_owner, lease_token, plan_hash,"
                    " planned_generation, committed_generation, input_files, input_rows, input_bytes,"
                    " output_files, output_rows, output_bytes, verification)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ),
                [
                    dataset_id,
                    owner,
                    lease_token,
                    plan_hash,
                    planned_generation,
                    generation,
                    len(inputs),
                    sum(f.rows for f in inputs),
                    sum(f.bytes for f in inputs),
                    len(outputs),
                    sum(f.rows for f in outputs),
                    sum(f.bytes for f in outputs),
                    json.dumps(dict(verification or {}), default=str),
                ],
            )
            self._refresh(conn, dataset_id)
            return int(generation)

    def _insert_files(
        self,
        conn: psycopg.Connection,
        dataset_id: int,
        files: Sequence[WrittenFile],
        fingerprint: str | None,
        generation: int,
        positions: Sequence[Decimal] | None = None,
    ) -> None:
        """Insert ``files`` as live; without ``positions`` each takes its id's place (after every file)."""
        placed: Sequence[Decimal | None] = [None] * len(files) if positions is None else positions
        with conn.cursor() as cur:
            cur.executemany(
                self._q(
                    "INSERT INTO {s}.files (dataset_id, path, bytes, rows, row_groups, etag,"
                    " schema_fingerprint, generation_added, position)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ),
                [
                    (dataset_id, f.path, f.bytes, f.rows, f.row_groups, f.etag, fingerprint, generation, at)
                    for f, at in zip(files, placed, strict=True)
                ],
            )

    def _already_committed(
        self,
        conn: psycopg.Connection,
        dataset_id: int,
        states: Mapping[int, str],
        input_ids: Sequence[int],
        outputs: Sequence[WrittenFile],
    ) -> bool:
        if any(states.get(i) == "live" for i in input_ids) or len(states) != len(input_ids):
            return False
        live = dict(
            conn.execute(
                self._q(
                    "SELECT path, etag FROM {s}.files"
                    " WHERE dataset_id = %s AND state = 'live' AND path = ANY(%s)"
                ),
                [dataset_id, [f.path for f in outputs]],
            ).fetchall()
        )
        return all(live.get(f.path) == f.etag for f in outputs)

    def clear_flag(self, dataset: str, generation: int) -> bool:
        """Unflag a dataset a compactor found nothing to do for, unless it changed since ``generation``."""
        with self._connect() as conn:
            cur = conn.execute(
                self._q(
                    "UPDATE {s}.datasets SET compaction_needed = false, updated_at = now()"
                    " WHERE name = %s AND generation = %s"
                ),
                [dataset, generation],
            )
            return cur.rowcount == 1

    # ------------------------------------------------------------------ cleanup

    def retired_files(self, grace_s: float, limit: int = 10_000) -> list[RetiredFile]:
        """Retired files past the grace period, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT f.id, d.name, d.storage_uri, f.path, f.retired_at FROM {s}.files f"
                    " JOIN {s}.datasets d ON d.id = f.dataset_id WHERE f.state = 'retired'"
                    " AND f.retired_at <= now() - make_interval(secs => %s)"
                    " ORDER BY f.retired_at, f.id LIMIT %s"
                ),
                [float(grace_s), limit],
            ).fetchall()
        return [RetiredFile(*r) for r in rows]

    def path_is_live(self, path: str) -> bool:
        """True if any dataset still has a live file at ``path`` (a path re-used by an overwrite)."""
        with self._connect() as conn:
            row = conn.execute(
                self._q("SELECT 1 FROM {s}.files WHERE path = %s AND state = 'live' LIMIT 1"), [path]
            ).fetchone()
        return row is not None

    def file_states(self, dataset: str, name: str) -> list[str]:
        """The states (live, retired, deleted) of every file the dataset registered under the base name
        ``name`` in any directory, oldest first: tells "never written" from "merged into another file"."""
        with self._connect() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT f.state FROM {s}.files f JOIN {s}.datasets d ON d.id = f.dataset_id"
                    " WHERE d.name = %s AND (f.path = %s OR f.path LIKE %s) ORDER BY f.id"
                ),
                [dataset, name, "%/" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")],
            ).fetchall()
        return [r[0] for r in rows]

    def known_paths(self, dataset: str) -> set[str]:
        """Every path the dataset ever registered, in any state (to tell orphans from catalogued files)."""
        with self._connect() as conn:
            return {
                r[0]
                for r in conn.execute(
                    self._q(
                        "SELECT f.path FROM {s}.files f JOIN {s}.datasets d ON d.id = f.dataset_id"
                        " WHERE d.name = %s AND f.state <> 'deleted'"
                    ),
                    [dataset],
                )
            }

    def mark_deleted(self, file_ids: Sequence[int]) -> int:
        with self._connect() as conn:
            cur = conn.execute(
                self._q(
                    "UPDATE {s}.files SET state = 'deleted', deleted_at = now()"
                    " WHERE id = ANY(%s) AND state = 'retired'"
                ),
                [list(file_ids)],
            )
            return cur.rowcount

    # ------------------------------------------------------------------ internals

    def _refresh(self, conn: psycopg.Connection, dataset_id: int) -> None:
        """Recompute the dataset's totals, content etag and policy flag (in the caller's transaction)."""
        conn.execute(
            self._q(
                "UPDATE {s}.datasets d SET live_files = t.n, total_rows = t.rows, total_bytes = t.bytes,"
                " etag = t.etag, updated_at = now()"
                " FROM (SELECT count(*) AS n, coalesce(sum(rows), 0) AS rows,"
                "   coalesce(sum(bytes), 0) AS bytes,"
                "   encode(sha256(convert_to(coalesce("
                "     string_agg(path || E'\\t' || etag, E'\\n' ORDER BY path), ''), 'UTF8')), 'hex') AS etag"
                "   FROM {s}.files WHERE dataset_id = %(dataset_id)s AND state = 'live') AS t"
                " WHERE d.id = %(dataset_id)s"
            ),
            {"dataset_id": dataset_id},
        )
        flagged = conn.execute(self.policy.flag_sql(self.schema), {"dataset_id": dataset_id}).fetchone()
        conn.execute(
            self._q("UPDATE {s}.datasets SET compaction_needed = %s WHERE id = %s"),
            [bool(flagged and flagged[0]), dataset_id],
        )
