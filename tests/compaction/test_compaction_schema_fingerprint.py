"""The catalog's schema fingerprint: a writer's schema and its files' agree; any real change tells."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import schema_fingerprint

WRITER_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("samples", pa.large_list(pa.field("item", pa.float64(), nullable=False))),
        pa.field("pair", pa.list_(pa.int16(), 2)),
        pa.field("attrs", pa.map_(pa.string(), pa.int32())),
        pa.field("site", pa.struct([("name", pa.string()), ("codes", pa.list_(pa.int32()))])),
        pa.field("kind", pa.dictionary(pa.int32(), pa.string())),
        pa.field("at", pa.timestamp("us", tz="UTC")),
        pa.field("price", pa.decimal128(12, 2)),
    ],
    metadata={b"written_by": b"test"},
)


def test_a_writers_schema_and_the_schema_read_back_from_its_file_agree(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pq.write_table(WRITER_SCHEMA.empty_table(), path)
    read_back = pq.read_schema(path)
    assert read_back.field("tags").type.value_field.name == "element"  # pyarrow renames list items
    ipc = [s.remove_metadata().serialize().to_pybytes() for s in (read_back, WRITER_SCHEMA)]
    assert ipc[0] != ipc[1], "the two schemas really differ in their nested names"
    assert schema_fingerprint(read_back) == schema_fingerprint(WRITER_SCHEMA)


def test_metadata_does_not_count() -> None:
    assert schema_fingerprint(WRITER_SCHEMA.remove_metadata()) == schema_fingerprint(WRITER_SCHEMA)


def _changed(index: int, field: pa.Field) -> pa.Schema:
    return WRITER_SCHEMA.set(index, field)


@pytest.mark.parametrize(
    "changed",
    [
        _changed(0, pa.field("ID", pa.int64(), nullable=False)),
        _changed(0, pa.field("id", pa.int64())),
        _changed(0, pa.field("id", pa.int32(), nullable=False)),
        _changed(1, pa.field("tags", pa.list_(pa.field("element", pa.string(), nullable=False)))),
        _changed(1, pa.field("tags", pa.large_list(pa.string()))),
        _changed(3, pa.field("pair", pa.list_(pa.int16(), 3))),
        _changed(4, pa.field("attrs", pa.map_(pa.string(), pa.int64()))),
        _changed(5, pa.field("site", pa.struct([("label", pa.string()), ("codes", pa.list_(pa.int32()))]))),
        _changed(6, pa.field("kind", pa.string())),
        _changed(7, pa.field("at", pa.timestamp("us"))),
        _changed(8, pa.field("price", pa.decimal128(12, 3))),
        WRITER_SCHEMA.remove(8),
    ],
    ids=lambda s: "",
)
def test_every_real_change_changes_it(changed: pa.Schema) -> None:
    assert schema_fingerprint(changed) != schema_fingerprint(WRITER_SCHEMA)
