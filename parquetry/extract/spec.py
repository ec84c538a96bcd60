"""Table specs: what a user writes to say which PostgreSQL data becomes which Parquet dataset.

A spec names a dataset and its source: a relation (table, partitioned table, view, materialized
view) or a SELECT. Optional ``columns`` narrow the output, ``where`` filters rows (SQL text from a
trusted config file, never from end users), and ``time_column`` + ``start_date`` turn the dataset
into daily partitions, each extracted with ``time_column >= day AND time_column < day + 1``.

Specs are validated when loaded so that a typo fails at import of the code location with the file
and the entry named, not in the middle of a run.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["TableSpec", "TableSpecError", "load_table_specs", "parse_table_specs"]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TableSpecError(ValueError):
    """A table spec (or the YAML file holding specs) is invalid."""


@dataclass(frozen=True)
class TableSpec:
    """One dataset extracted from PostgreSQL.

    ``name`` is the dataset name: the output folder below the storage root and the suffix of the
    Dagster asset keys, so it must be a plain identifier. Exactly one of ``relation`` and ``query``
    is set. ``relation`` is ``"schema.table"`` or ``"table"``; a part may be double-quoted
    (``'"Sales"."Ünïcode Table"'``) to keep case, dots or spaces.
    """

    name: str
    relation: str | None = None
    query: str | None = None
    columns: tuple[str, ...] | None = None
    where: str | None = None
    time_column: str | None = None
    start_date: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise TableSpecError(
                f"table spec name {self.name!r} must be a plain identifier (letters, digits, underscore)"
            )
        if (self.relation is None) == (self.query is None):
            raise TableSpecError(f"table spec {self.name!r}: set exactly one of 'relation' and 'query'")
        if self.relation is not None:
            split_relation(self.relation)  # raises on a malformed name
        if self.query is not None and not self.query.strip():
            raise TableSpecError(f"table spec {self.name!r}: 'query' is empty")
        if self.columns is not None:
            if isinstance(self.columns, str) or not all(isinstance(c, str) and c for c in self.columns):
                raise TableSpecError(f"table spec {self.name!r}: 'columns' must be a list of column names")
            if not self.columns:
                raise TableSpecError(f"table spec {self.name!r}: 'columns' is empty")
            object.__setattr__(self, "columns", tuple(self.columns))
        if self.where is not None and not str(self.where).strip():
            raise TableSpecError(f"table spec {self.name!r}: 'where' is empty")
        if (self.time_column is None) != (self.start_date is None):
            raise TableSpecError(
                f"table spec {self.name!r}: 'time_column' and 'start_date' go together (daily partitions)"
            )
        if self.start_date is not None:
            if isinstance(self.start_date, dt.date):
                object.__setattr__(self, "start_date", self.start_date.isoformat())
            try:
                dt.date.fromisoformat(str(self.start_date))
            except ValueError:
                raise TableSpecError(
                    f"table spec {self.name!r}: start_date {self.start_date!r} is not a YYYY-MM-DD date"
                ) from None

    @property
    def is_partitioned(self) -> bool:
        """True when the dataset is split in daily partitions on ``time_column``."""
        return self.time_column is not None

    @property
    def source(self) -> str:
        """The relation name or ``"query"``, for messages."""
        return self.relation if self.relation is not None else f"query of {self.name}"


def split_relation(relation: str) -> tuple[str | None, str]:
    """Split a relation name: ``'s.t'`` -> ``('s', 't')``, ``'t'`` -> ``(None, 't')``,
    ``'"My Schema"."A.b"'`` -> ``('My Schema', 'A.b')``.

    Unquoted parts are folded to lower case, as PostgreSQL does, so the names can be passed to
    ``psycopg.sql.Identifier`` (which quotes them) without changing their meaning.
    """
    parts: list[str] = []
    i, n = 0, len(relation)
    while True:
        if i < n and relation[i] == '"':
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise TableSpecError(f"relation {relation!r}: unterminated quoted identifier")
                if relation[j] == '"':
                    if j + 1 < n and relation[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(relation[j])
                j += 1
            part = "".join(buf)
            i = j + 1
        else:
            j = relation.find(".", i)
            raw = relation[i:] if j < 0 else relation[i:j]
            part = raw.strip().lower()
            if '"' in part or not part:
                raise TableSpecError(f"relation {relation!r}: malformed name")
            i = n if j < 0 else j
        if not part:
            raise TableSpecError(f"relation {relation!r}: empty identifier")
        parts.append(part)
        if i >= n:
            break
        if relation[i] != ".":
            raise TableSpecError(f"relation {relation!r}: expected '.' after an identifier")
        i += 1
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise TableSpecError(f"relation {relation!r}: expected 'table' or 'schema.table'")


_FIELDS = {f.name for f in fields(TableSpec)}


def parse_table_specs(data: Any, origin: str = "<table specs>") -> list[TableSpec]:
    """Build specs from parsed YAML (``{"tables": [{...}, ...]}``); errors name ``origin`` and the entry."""
    if not isinstance(data, dict) or not isinstance(data.get("tables"), list):
        raise TableSpecError(f"{origin}: expected a mapping with a 'tables' list")
    specs: list[TableSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(data["tables"]):
        where = f"{origin}: tables[{index}]"
        if not isinstance(entry, dict):
            raise TableSpecError(f"{where}: expected a mapping, got {type(entry).__name__}")
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            raise TableSpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_FIELDS)}")
        if "name" not in entry:
            raise TableSpecError(f"{where}: 'name' is required")
        values = dict(entry)
        if values.get("columns") is not None:
            if not isinstance(values["columns"], list):
                raise TableSpecError(f"{where}: 'columns' must be a list")
            values["columns"] = tuple(values["columns"])
        for key in ("where", "query", "relation", "time_column"):
            if values.get(key) is not None and not isinstance(values[key], str):
                raise TableSpecError(f"{where}: '{key}' must be a string")
        try:
            spec = TableSpec(**values)
        except TableSpecError as exc:
            raise TableSpecError(f"{where}: {exc}") from None
        if spec.name in seen:
            raise TableSpecError(f"{where}: duplicate table name {spec.name!r}")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def load_table_specs(path: str | Path) -> list[TableSpec]:
    """Read and validate a YAML file of table specs."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TableSpecError(f"{path}: cannot read table specs: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date-like scalar that is no date
        raise TableSpecError(f"{path}: invalid YAML: {exc}") from exc
    return parse_table_specs(data, origin=str(path))
