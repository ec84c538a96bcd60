"""Row groups encoded in parallel and stitched together make the very file one writer makes."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry import stitch
from parquetry.compact.errors import CompactionError
from parquetry.compact.writer import write_row_groups
from parquetry.storage import ParquetOptions, Storage
from parquetry.testing.compaction import mixed_table

OPTIONS = ParquetOptions(
    compression="zstd", compression_level=3, row_group_rows=1000, write_statistics=True, use_dictionary="auto"
)


def _nested(rows: int, start: int) -> pa.Table:
    """``mixed_table`` plus list, struct and dictionary columns: several leaf columns per field."""
    table = mixed_table(rows, start=start)
    ids = table.column("id").to_pylist()
    tags = pa.array(
        [None if i % 7 == 0 else [f"t{i % 5}", None][: i % 3] for i in ids], pa.list_(pa.string())
    )
    point = pa.array(
        [{"x": i * 0.5, "y": None if i % 4 else str(i)} for i in ids],
        pa.struct([("x", pa.float64()), ("y", pa.string())]),
    )
    kind = pa.array([("a", "b", None)[i % 3] for i in ids], pa.string()).dictionary_encode()
    return table.append_column("tags", tags).append_column("point", point).append_column("kind", kind)


def _write(storage: Storage, name: str, tables: list[pa.Table], threads: int) -> bytes:
    path = storage.path(name)
    write_row_groups(storage, path, tables, tables[0].schema, OPTIONS, delta_integers=True, threads=threads)
    return Path(path).read_bytes()


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("sizes", [[700], [1000, 1000, 250], [1, 999, 0, 500, 1000, 3]])
def test_row_groups_encoded_in_parallel_make_the_bytes_one_writer_makes(
    tmp_path: Path, threads: int, sizes: list[int]
) -> None:
    storage = Storage(str(tmp_path))
    starts = [sum(sizes[:n]) for n in range(len(sizes))]
    tables = [_nested(n, start) for n, start in zip(sizes, starts, strict=True)]

    serial = _write(storage, "serial.parquet", tables, threads=1)
    parallel = _write(storage, "parallel.parquet", tables, threads=threads)

    assert parallel == serial
    read = pq.ParquetFile(storage.path("parallel.parquet"))
    assert read.metadata.num_row_groups == sum(1 for n in sizes if n)
    assert read.read().to_pylist() == pa.concat_tables(tables).to_pylist()


def test_no_rows_still_write_a_file_with_the_schema(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    empty = mixed_table(0)
    path = storage.path("empty.parquet")

    assert write_row_groups(storage, path, [empty, empty], empty.schema, OPTIONS, threads=2) == (0, 0)
    assert pq.read_schema(path).remove_metadata().equals(empty.schema)
    assert pq.read_metadata(path).num_rows == 0


def test_an_encoding_failure_publishes_nothing(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    good = mixed_table(100)
    wrong = mixed_table(100, start=100).drop_columns(["price"])  # not the file's schema

    with pytest.raises(ValueError, match="schema does not match"):
        write_row_groups(storage, storage.path("out.parquet"), [good, wrong], good.schema, OPTIONS, threads=2)
    assert os.listdir(tmp_path) == []


def test_an_encoded_part_with_bytes_between_its_chunks_and_footer_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page index lives between the last column chunk and the footer; stitching would drop it and
    leave the chunks misplaced, so a part that does not hold exactly its column chunks is an error."""
    real = stitch.encode_part

    def with_page_index(table: pa.Table, schema: pa.Schema, kwargs: dict[str, Any], encoder: str) -> Any:
        return real(table, schema, {**kwargs, "write_page_index": True}, encoder)

    monkeypatch.setattr(stitch, "encode_part", with_page_index)
    storage = Storage(str(tmp_path))
    table = mixed_table(100)

    with pytest.raises(CompactionError, match="column chunks end at"):
        write_row_groups(storage, storage.path("out.parquet"), [table], table.schema, OPTIONS, threads=2)
    assert os.listdir(tmp_path) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 400), min_size=1, max_size=6),
    threads=st.integers(2, 4),
    dictionary=st.sampled_from([True, False, "auto"]),
    seed=st.integers(0, 1000),
    encoder=st.sampled_from(["pyarrow", "parquetry"]),
)
def test_any_row_groups_stitch_into_the_bytes_one_writer_makes(
    tmp_path: Path, sizes: list[int], threads: int, dictionary: bool | str, seed: int, encoder: str
) -> None:
    storage = Storage(str(tmp_path))
    starts = [seed * 10_000 + sum(sizes[:n]) for n in range(len(sizes))]
    tables = [_nested(n, start) for n, start in zip(sizes, starts, strict=True)]
    options = dataclasses.replace(OPTIONS, use_dictionary=dictionary)
    written = {}
    for n in (1, threads):
        path = storage.path(f"out-{n}.parquet")
        write_row_groups(
            storage, path, tables, tables[0].schema, options, seed % 2 == 0, threads=n, encoder=encoder
        )
        written[n] = Path(path).read_bytes()
    assert written[threads] == written[1]
    if sizes and sum(sizes):
        assert pq.read_table(storage.path("out-1.parquet")).equals(pa.concat_tables(tables))
