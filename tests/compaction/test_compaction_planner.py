"""Properties of the pure planner: every input row lands exactly once, in order, in well-sized outputs."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.compact.plan import Plan, PlanConfig, PlanInput, plan_compaction

configs = st.builds(
    PlanConfig,
    row_group_rows=st.integers(1, 50),
    target_file_rows=st.integers(1, 200),
    min_row_group_rows=st.integers(1, 80),
)


@st.composite
def datasets(draw: st.DrawFn) -> list[PlanInput]:
    count = draw(st.integers(0, 12))
    directories = draw(st.lists(st.sampled_from(["/d/a", "/d/b", "/d/c"]), min_size=count, max_size=count))
    files = []
    for n, directory in enumerate(directories):
        sizes = tuple(draw(st.lists(st.integers(0, 120), min_size=0, max_size=5)))
        nbytes = draw(st.integers(0, 1000))
        files.append(PlanInput(f"{directory}/f{n}.parquet", f"etag{n}", nbytes, sizes))
    return files


def healthy_if_big(f: PlanInput) -> bool:
    return f.nbytes >= 900


def rows_of(plan: Plan, directory: str) -> list[tuple[int, int, int]]:
    """(input, row group, row) for every output row of ``directory``, in output order."""
    out = []
    for planned in plan.outputs:
        if planned.directory != directory:
            continue
        for rg in planned.row_groups:
            for s in rg.slices:
                out.extend((s.input_index, s.row_group, s.offset + k) for k in range(s.length))
    return out


@settings(max_examples=150, deadline=None)
@given(files=datasets(), config=configs)
def test_every_input_row_is_written_exactly_once_in_input_order(
    files: list[PlanInput], config: PlanConfig
) -> None:
    plan = plan_compaction(files, config, healthy_if_big)
    for directory in {posixpath.dirname(f.path) for f in plan.inputs}:
        expected = [
            (i, r, k)
            for i, f in enumerate(plan.inputs)
            if posixpath.dirname(f.path) == directory
            for r, n in enumerate(f.row_group_rows)
            for k in range(n)
        ]
        assert rows_of(plan, directory) == expected


@settings(max_examples=150, deadline=None)
@given(files=datasets(), config=configs)
def test_outputs_are_sized_by_the_config_and_healthy_files_are_kept(
    files: list[PlanInput], config: PlanConfig
) -> None:
    plan = plan_compaction(files, config, healthy_if_big)
    assert not any(healthy_if_big(f) for f in plan.inputs)
    assert {f.path for f in plan.inputs} | set(plan.kept) == {f.path for f in files}
    assert not {f.path for f in plan.inputs} & set(plan.kept)
    for planned in plan.outputs:
        assert all(
            posixpath.dirname(plan.inputs[s.input_index].path) == planned.directory
            for rg in planned.row_groups
            for s in rg.slices
        )
        biggest = max(rg.rows for rg in planned.row_groups)
        assert planned.rows <= config.target_file_rows or len(planned.row_groups) == 1, (
            planned.rows,
            biggest,
        )
        for rg in planned.row_groups:
            assert rg.rows > 0
            if rg.passthrough:
                (s,) = rg.slices
                assert s.offset == 0 and s.length == plan.inputs[s.input_index].row_group_rows[s.row_group]
                assert s.length >= config.min_row_group_rows
            else:
                assert rg.rows <= config.row_group_rows
    assert len({p.path for p in plan.outputs}) == len(plan.outputs)


@settings(max_examples=100, deadline=None)
@given(files=datasets(), config=configs)
def test_a_rewritten_directory_loses_files_or_row_groups(files: list[PlanInput], config: PlanConfig) -> None:
    plan = plan_compaction(files, config, healthy_if_big)
    for directory in {posixpath.dirname(f.path) for f in plan.inputs}:
        inputs = [f for f in plan.inputs if posixpath.dirname(f.path) == directory]
        outputs = [p for p in plan.outputs if p.directory == directory]
        assert len(outputs) < len(inputs) or sum(len(p.row_groups) for p in outputs) < sum(
            len(f.row_group_rows) for f in inputs
        )


@settings(max_examples=100, deadline=None)
@given(files=datasets(), config=configs)
def test_the_plan_and_its_output_names_are_deterministic(files: list[PlanInput], config: PlanConfig) -> None:
    first, second = (
        plan_compaction(files, config, healthy_if_big),
        plan_compaction(files, config, healthy_if_big),
    )
    assert first == second
    assert all(p.name.startswith(f"compacted-{first.hash[:20]}-") for p in first.outputs)


@settings(max_examples=150, deadline=None)
@given(files=datasets(), config=configs)
def test_no_output_merely_copies_one_input_file_whole(files: list[PlanInput], config: PlanConfig) -> None:
    plan = plan_compaction(files, config, healthy_if_big)
    for planned in plan.outputs:
        owners = {s.input_index for rg in planned.row_groups for s in rg.slices}
        if len(owners) == 1 and all(rg.passthrough for rg in planned.row_groups):
            source = plan.inputs[owners.pop()]
            assert len(planned.row_groups) < sum(1 for n in source.row_group_rows if n)


def test_a_trailing_file_of_big_row_groups_is_left_in_place() -> None:
    config = PlanConfig(row_group_rows=10, target_file_rows=200, min_row_group_rows=50)
    files = [PlanInput(f"/d/f{n}.parquet", f"e{n}", 1, (100,)) for n in range(5)]
    plan = plan_compaction(files, config, healthy_if_big)
    assert [f.path for f in plan.inputs] == [f"/d/f{n}.parquet" for n in range(4)]
    assert [len(p.row_groups) for p in plan.outputs] == [2, 2]
    assert plan.kept == ("/d/f4.parquet",)


def test_changing_an_input_etag_changes_the_plan_hash() -> None:
    config = PlanConfig(row_group_rows=10, target_file_rows=100, min_row_group_rows=10)
    files = [PlanInput(f"/d/f{n}.parquet", "e", 1, (3,)) for n in range(3)]
    changed = [*files[:2], PlanInput("/d/f2.parquet", "other", 1, (3,))]
    assert (
        plan_compaction(files, config, healthy_if_big).hash
        != plan_compaction(changed, config, healthy_if_big).hash
    )


def test_small_row_groups_pack_exactly_and_big_ones_pass_through() -> None:
    config = PlanConfig(row_group_rows=10, target_file_rows=1000, min_row_group_rows=50)
    files = [PlanInput("/d/a.parquet", "a", 1, (4, 4, 60, 7)), PlanInput("/d/b.parquet", "b", 1, (9,))]
    plan = plan_compaction(files, config, healthy_if_big)
    ((planned),) = plan.outputs
    assert [(rg.rows, rg.passthrough) for rg in planned.row_groups] == [
        (8, False),
        (60, True),
        (10, False),
        (6, False),
    ]
