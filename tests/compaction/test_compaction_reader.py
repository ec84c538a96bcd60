"""The compactor's input side: every planned row group read once, in plan order, across outputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.compact.plan import PlanConfig, PlanInput, plan_compaction
from parquetry.compact.reader import RowGroupReader
from parquetry.compact.verify import RowDigest
from parquetry.storage import Storage
from parquetry.testing.compaction import mixed_table, write_files


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Storage, list[PlanInput]]:
    storage = Storage(str(tmp_path))
    written = write_files(storage, "", files=9, rows_per_file=700, row_group_rows=300)
    inputs = [
        PlanInput(
            w.path, w.etag, w.bytes, tuple(pq.read_metadata(w.path).row_group(i).num_rows for i in range(3))
        )
        for w in written
    ]
    return storage, inputs


def test_outputs_read_in_order_hold_every_input_row_once_in_order(
    setup: tuple[Storage, list[PlanInput]],
) -> None:
    storage, inputs = setup
    # 1,000-row row groups and 2,500-row outputs: row groups and outputs both end inside input row groups.
    plan = plan_compaction(inputs, PlanConfig(1000, 2500, 10_000), lambda f: False)
    assert len(plan.outputs) == 3
    digest = RowDigest()
    reader = RowGroupReader(storage, plan, mixed_table(0).schema, digest, skip=set())
    try:
        tables = [t for planned in plan.outputs for t in reader.row_groups(planned)]
        reader.finish()
    finally:
        reader.close()
    got = pa.concat_tables(tables)
    assert got.column("id").to_pylist() == list(range(9 * 700))
    assert [t.num_rows for t in tables] == [rg.rows for out in plan.outputs for rg in out.row_groups]
    assert digest.as_dict()["rows"] == 9 * 700  # each input row group hashed exactly once


def test_the_next_outputs_rows_are_read_while_the_current_one_is_written(
    setup: tuple[Storage, list[PlanInput]],
) -> None:
    """One read-ahead spans the outputs: once the first output's last row group is handed over, the
    second output's first input row groups are already being decoded, before the writer asks for them."""
    storage, inputs = setup
    plan = plan_compaction(inputs, PlanConfig(1000, 2500, 10_000), lambda f: False)
    reader = RowGroupReader(storage, plan, mixed_table(0).schema, RowDigest(), skip=set())
    try:
        list(reader.row_groups(plan.outputs[0]))
        ahead = reader._read_ahead()
        queued = [key for _, future in ahead.pending for key, _ in future.result()]
        queued += [key for key, _ in ahead.ready]
        second = {(s.input_index, s.row_group) for rg in plan.outputs[1].row_groups for s in rg.slices}
        assert second & set(queued), "nothing of the second output was read ahead"
        assert sum(t.num_rows for t in reader.row_groups(plan.outputs[1])) == plan.outputs[1].rows
    finally:
        reader.close()
