"""The compaction planner: a pure function from the live files (and their row-group sizes) to a plan.

Rules, per directory (a Hive partition is a directory; outputs never mix directories):

* files the fragmentation policy calls healthy are left in place, and each ends a *run*: the other files
  are rewritten run by run, so no output holds rows from both sides of a file that stays, and the
  catalog can put every output where its rows were (:mod:`parquetry.compact.positions`): the dataset
  keeps its row order;
* of the other files, row groups of at least ``min_row_group_rows`` pass through as one output row group
  each (never re-chunked), and runs of smaller row groups are packed into row groups of exactly
  ``row_group_rows`` rows (the last of a run may be shorter);
* output row groups are packed, in input order, into files of at most ``target_file_rows`` rows;
* an output that would copy one input file whole (only its own row groups, all passed through) is
  dropped and that file left in place (rewriting it would change nothing); it ends a run too;
* a run is rewritten only if that lowers its file count or its row-group count.

The plan's hash covers its inputs (path and etag, in order) and its settings, so outputs named after it
(``compacted-<hash>-<n>.parquet``) are the same on a re-run: a crashed run's outputs are overwritten,
never duplicated.
"""

from __future__ import annotations

import collections
import hashlib
import json
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

PLAN_FORMAT = 2  # 2: runs end at files left in place (the dataset keeps its order)


@dataclass(frozen=True)
class PlanInput:
    """One live file as the planner sees it: catalog identity plus its footer's row-group sizes."""

    path: str
    etag: str
    nbytes: int
    row_group_rows: tuple[int, ...]

    @property
    def rows(self) -> int:
        return sum(self.row_group_rows)


@dataclass(frozen=True)
class PlanConfig:
    row_group_rows: int = 1_000_000
    target_file_rows: int = 8_000_000
    min_row_group_rows: int = 100_000  # row groups at least this big are kept whole (not re-chunked)

    def __post_init__(self) -> None:
        if self.row_group_rows <= 0 or self.target_file_rows <= 0 or self.min_row_group_rows <= 0:
            raise ValueError(f"compaction sizes must be positive: {self}")


@dataclass(frozen=True)
class Slice:
    """Rows ``[offset, offset + length)`` of row group ``row_group`` of input ``input_index``."""

    input_index: int
    row_group: int
    offset: int
    length: int


@dataclass(frozen=True)
class PlannedRowGroup:
    slices: tuple[Slice, ...]
    passthrough: bool  # one whole healthy input row group, not re-chunked

    @property
    def rows(self) -> int:
        return sum(s.length for s in self.slices)


@dataclass(frozen=True)
class PlannedFile:
    directory: str
    row_groups: tuple[PlannedRowGroup, ...]
    name: str = ""

    @property
    def path(self) -> str:
        return posixpath.join(self.directory, self.name)

    @property
    def rows(self) -> int:
        return sum(rg.rows for rg in self.row_groups)


@dataclass(frozen=True)
class Plan:
    inputs: tuple[PlanInput, ...]  # files to replace, in input order
    outputs: tuple[PlannedFile, ...]
    kept: tuple[str, ...]  # paths left in place
    config: PlanConfig
    hash: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.inputs


def plan_compaction(
    files: Sequence[PlanInput],
    config: PlanConfig,
    is_healthy: Callable[[PlanInput], bool],
) -> Plan:
    """Plan a compaction of ``files`` (the dataset's live files, in order). Pure: no I/O."""
    directories: dict[str, list[PlanInput]] = {}
    for f in files:
        directories.setdefault(posixpath.dirname(f.path), []).append(f)
    inputs: list[PlanInput] = []
    outputs: list[tuple[str, list[PlannedRowGroup]]] = []
    kept: list[str] = []
    for directory, group in directories.items():
        for run in _runs(group, is_healthy):
            rewritten, left = _plan_run(run, config)
            kept.extend(f.path for f in left)
            for candidates in rewritten:
                row_groups = _pack_row_groups(candidates, len(inputs), config)
                inputs.extend(candidates)
                outputs.extend((directory, rgs) for rgs in _pack_files(row_groups, config.target_file_rows))
        kept.extend(f.path for f in group if is_healthy(f))
    digest = plan_hash(inputs, config)
    named = tuple(
        PlannedFile(directory=d, row_groups=tuple(rgs), name=f"compacted-{digest[:20]}-{n:05d}.parquet")
        for n, (d, rgs) in enumerate(outputs)
    )
    return Plan(inputs=tuple(inputs), outputs=named, kept=tuple(kept), config=config, hash=digest)


def plan_hash(inputs: Sequence[PlanInput], config: PlanConfig) -> str:
    payload = {
        "format": PLAN_FORMAT,
        "config": asdict(config),
        "inputs": [[f.path, f.etag] for f in inputs],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _runs(group: Sequence[PlanInput], is_healthy: Callable[[PlanInput], bool]) -> list[list[PlanInput]]:
    """The maximal runs of consecutive files that are not healthy (a healthy file ends a run)."""
    runs: list[list[PlanInput]] = [[]]
    for f in group:
        if is_healthy(f):
            runs.append([])
        else:
            runs[-1].append(f)
    return [run for run in runs if run]


def _split_at(run: Sequence[PlanInput], stays: Sequence[PlanInput]) -> list[list[PlanInput]]:
    """The runs of ``run`` between the files of ``stays``."""
    paths = {f.path for f in stays}
    return _runs(run, lambda f: f.path in paths)


def _plan_run(run: list[PlanInput], config: PlanConfig) -> tuple[list[list[PlanInput]], list[PlanInput]]:
    """Split ``run`` into the runs worth rewriting (each packed into its own outputs), in order, and the
    files left in place.

    A file that some output would copy whole is left in place and splits the run there, like a healthy
    file: outputs never hold rows from both sides of a file that stays, so the dataset keeps its order.
    """
    rewritten: list[list[PlanInput]] = []
    left: list[PlanInput] = []
    pending = collections.deque([run])
    while pending:
        current = pending.popleft()
        files_out = _pack_files(_pack_row_groups(current, 0, config), config.target_file_rows)
        unchanged = _copied_whole(files_out, current, 0)
        if unchanged:
            left.extend(unchanged)
            pending.extendleft(reversed(_split_at(current, unchanged)))  # the pieces come next, in order
            continue
        rgs_in = sum(len(f.row_group_rows) for f in current)
        if len(files_out) >= len(current) and sum(len(x) for x in files_out) >= rgs_in:
            left.extend(current)  # rewriting would not improve anything
        else:
            rewritten.append(current)
    return rewritten, left


def _pack_row_groups(candidates: Sequence[PlanInput], base: int, config: PlanConfig) -> list[PlannedRowGroup]:
    out: list[PlannedRowGroup] = []
    pending: list[Slice] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending:
            out.append(PlannedRowGroup(tuple(pending), passthrough=False))
        pending, pending_rows = [], 0

    for k, f in enumerate(candidates):
        for r, n in enumerate(f.row_group_rows):
            if n == 0:
                continue
            if n >= config.min_row_group_rows:
                flush()
                out.append(PlannedRowGroup((Slice(base + k, r, 0, n),), passthrough=True))
                continue
            offset = 0
            while offset < n:
                take = min(n - offset, config.row_group_rows - pending_rows)
                pending.append(Slice(base + k, r, offset, take))
                pending_rows += take
                offset += take
                if pending_rows == config.row_group_rows:
                    flush()
    flush()
    return out


def _copied_whole(
    files_out: Sequence[Sequence[PlannedRowGroup]], candidates: Sequence[PlanInput], base: int
) -> list[PlanInput]:
    """The inputs some planned output would copy whole, row group for row group, and nothing else."""
    whole = []
    for rgs in files_out:
        owners = {s.input_index for rg in rgs for s in rg.slices}
        if len(owners) != 1 or not all(rg.passthrough for rg in rgs):
            continue
        source = candidates[owners.pop() - base]
        if len(rgs) == sum(1 for n in source.row_group_rows if n):
            whole.append(source)
    return whole


def _pack_files(row_groups: Sequence[PlannedRowGroup], target_rows: int) -> list[list[PlannedRowGroup]]:
    files: list[list[PlannedRowGroup]] = []
    current: list[PlannedRowGroup] = []
    current_rows = 0
    for rg in row_groups:
        if current and current_rows + rg.rows > target_rows:
            files.append(current)
            current, current_rows = [], 0
        current.append(rg)
        current_rows += rg.rows
    if current:
        files.append(current)
    return files
