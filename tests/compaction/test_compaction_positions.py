"""Property: compaction keeps a dataset's row order, however often it runs.

A dataset is modelled as the catalog holds it: live files with positions, each file a list of row
groups of known rows. A compaction is the real planner plus :func:`output_positions`; its commit swaps
the inputs for outputs that hold the planned slices, at the positions given. After any sequence of
compactions and appends, reading every directory's files in (position, id) order must give its rows in
the order they were written.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.compact.plan import PlanConfig, PlanInput, plan_compaction
from parquetry.compact.positions import PositionError, output_positions

Row = tuple[str, int]  # (the file that first held the row, its index there)


@dataclass
class File:
    id: int
    path: str
    position: Decimal
    row_groups: list[list[Row]]
    healthy: bool


class Dataset:
    def __init__(self) -> None:
        self.files: list[File] = []
        self.next_id = 1
        self.written: dict[str, list[Row]] = {}  # directory -> rows in the order written

    def append(self, directory: str, sizes: list[int], healthy: bool) -> None:
        path = f"{directory}/f{self.next_id}.parquet"
        groups = []
        for size in sizes:
            rows = [(path, len(self.written.get(directory, [])) + k) for k in range(size)]
            self.written.setdefault(directory, []).extend(rows)
            groups.append(rows)
        self.files.append(File(self.next_id, path, Decimal(self.next_id), groups, healthy))
        self.next_id += 1

    def live(self) -> list[File]:
        return sorted(self.files, key=lambda f: (f.position, f.id))

    def compact(self, config: PlanConfig) -> None:
        live = self.live()
        by_path = {f.path: f for f in live}
        inputs = [PlanInput(f.path, str(f.id), 1, tuple(len(g) for g in f.row_groups)) for f in live]
        plan = plan_compaction(inputs, config, lambda f: by_path[f.path].healthy)
        positions = output_positions(plan, {f.path: f.position for f in live})
        replaced = {f.path for f in plan.inputs}
        self.files = [f for f in self.files if f.path not in replaced]
        for planned, position in zip(plan.outputs, positions, strict=True):
            groups = [
                [
                    row
                    for s in rg.slices
                    for row in by_path[plan.inputs[s.input_index].path].row_groups[s.row_group][
                        s.offset : s.offset + s.length
                    ]
                ]
                for rg in planned.row_groups
            ]
            path = f"{planned.directory}/c{self.next_id}.parquet"
            self.files.append(File(self.next_id, path, position, groups, healthy=False))
            self.next_id += 1

    def rows_in_order(self, directory: str) -> list[Row]:
        return [
            row
            for f in self.live()
            if posixpath.dirname(f.path) == directory
            for g in f.row_groups
            for row in g
        ]


configs = st.builds(
    PlanConfig,
    row_group_rows=st.integers(1, 30),
    target_file_rows=st.integers(1, 90),
    min_row_group_rows=st.integers(1, 40),
)
appends = st.lists(
    st.tuples(
        st.sampled_from(["/d/a", "/d/b"]),
        st.lists(st.integers(0, 50), min_size=0, max_size=4),
        st.booleans(),  # healthy: left in place by the next compaction
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.tuples(appends, configs), min_size=1, max_size=4))
def test_every_directory_reads_its_rows_in_written_order_after_any_compactions(
    steps: list[tuple[list[tuple[str, list[int], bool]], PlanConfig]],
) -> None:
    dataset = Dataset()
    for batch, config in steps:
        for directory, sizes, healthy in batch:
            dataset.append(directory, sizes, healthy)
        dataset.compact(config)
        for directory, rows in dataset.written.items():
            assert dataset.rows_in_order(directory) == rows
        # A file registered now gets the next id as its position: it must come after every live file.
        assert all(f.position < dataset.next_id for f in dataset.files)


def test_outputs_split_from_one_file_are_spread_inside_its_gap() -> None:
    dataset = Dataset()
    dataset.append("/d/a", [5] * 6, healthy=False)  # one file of six small row groups
    dataset.append("/d/a", [40], healthy=True)
    dataset.compact(PlanConfig(row_group_rows=10, target_file_rows=10, min_row_group_rows=40))
    positions = [f.position for f in dataset.live()]
    assert positions == [Decimal(1), Decimal("1.3"), Decimal("1.6"), Decimal(2)]


def test_a_plan_whose_outputs_go_backwards_is_refused() -> None:
    config = PlanConfig(row_group_rows=6, target_file_rows=6, min_row_group_rows=10)
    files = [PlanInput(f"/d/f{n}.parquet", "e", 1, (3,)) for n in range(4)]
    plan = plan_compaction(files, config, lambda f: False)
    assert len(plan.outputs) == 2
    backwards = {f.path: Decimal(4 - n) for n, f in enumerate(files)}
    with pytest.raises(PositionError, match="starts before"):
        output_positions(plan, backwards)
