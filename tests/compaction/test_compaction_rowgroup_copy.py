"""The Thrift footer codec and the byte-for-byte row-group copier, checked by pyarrow and DuckDB."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry import stitch
from parquetry.compact.rowgroup_copy import RowGroupCopyError, copy_row_groups, read_source_footer
from parquetry.storage import ParquetOptions, Storage
from parquetry.testing.compaction import mixed_table
from parquetry.thrift import decode, encode


def footer_bytes(data: bytes) -> bytes:
    (length,) = struct.unpack("<I", data[-8:-4])
    return data[-8 - length : -8]


def nested_table(rows: int) -> pa.Table:
    return (
        mixed_table(rows)
        .append_column("tags", pa.array([[i, i + 1] for i in range(rows)]))
        .append_column("pair", pa.array([{"a": i, "b": str(i)} for i in range(rows)]))
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"write_page_index": True, "write_statistics": False},
        {"compression": "snappy", "use_dictionary": False, "row_group_size": 333},
        {"use_deprecated_int96_timestamps": True, "data_page_version": "1.0"},
    ],
)
def test_footer_codec_round_trips_real_footers_byte_for_byte(options: dict) -> None:
    sink = io.BytesIO()
    pq.write_table(nested_table(1000), sink, **options)
    footer = footer_bytes(sink.getvalue())
    assert encode(decode(footer)) == footer


def test_copied_row_groups_read_back_equal_in_pyarrow_and_duckdb(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    first, second = nested_table(3000), nested_table(2500)
    a = storage.write_parquet(storage.path("a.parquet"), first, options=ParquetOptions(row_group_rows=1000))
    b = storage.write_parquet(storage.path("b.parquet"), second, options=ParquetOptions(row_group_rows=2500))
    fa, fb = read_source_footer(storage, a.path), read_source_footer(storage, b.path)

    written, info = copy_row_groups(storage, storage.path("out.parquet"), [(fa, 2), (fb, 0), (fa, 0)])

    expected = pa.concat_tables([first.slice(2000, 1000), second, first.slice(0, 1000)])
    assert pq.read_table(written.path).equals(expected)
    assert (written.rows, written.row_groups, info["row_groups"]) == (4500, 3, 3)
    got = duckdb.sql(f"SELECT id, label, tags, pair FROM read_parquet('{written.path}')").fetchall()
    assert got == duckdb.sql("SELECT id, label, tags, pair FROM expected").fetchall()
    assert storage.file_digest(written.path) == (written.etag, written.bytes)


def test_int96_and_statistics_free_sources_are_not_copyable(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    storage.makedirs(storage.base)
    pq.write_table(mixed_table(10), storage.path("int96.parquet"), use_deprecated_int96_timestamps=True)
    pq.write_table(mixed_table(10), storage.path("nostats.parquet"), write_statistics=False)
    assert read_source_footer(storage, storage.path("int96.parquet")).reason == "INT96 column"
    nostats = read_source_footer(storage, storage.path("nostats.parquet"))
    with pytest.raises(RowGroupCopyError, match="without statistics"):
        copy_row_groups(storage, storage.path("out.parquet"), [(nostats, 0)])


def test_sources_with_different_layouts_are_refused(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    a = storage.write_parquet(storage.path("a.parquet"), mixed_table(10))
    b = storage.write_parquet(storage.path("b.parquet"), mixed_table(10).drop_columns(["label"]))
    parts = [(read_source_footer(storage, a.path), 0), (read_source_footer(storage, b.path), 0)]
    with pytest.raises(RowGroupCopyError, match=r"b\.parquet: schema differs"):
        copy_row_groups(storage, storage.path("out.parquet"), parts)


def test_a_footer_pointing_at_the_wrong_bytes_fails_verification_and_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(str(tmp_path))
    a = storage.write_parquet(storage.path("a.parquet"), mixed_table(2000))
    source = read_source_footer(storage, a.path)
    real = stitch.chunk_range
    monkeypatch.setattr(stitch, "chunk_range", lambda cmd: (real(cmd)[0] + 1, real(cmd)[1]))
    with pytest.raises(RowGroupCopyError):
        copy_row_groups(storage, storage.path("out.parquet"), [(source, 0)])
    assert sorted(os.listdir(storage.base)) == ["a.parquet"]


def test_a_truncated_file_is_named(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    a = storage.write_parquet(storage.path("a.parquet"), mixed_table(100))
    with open(a.path, "r+b") as fh:
        fh.truncate(a.bytes - 3)
    with pytest.raises(RowGroupCopyError, match=r"a\.parquet"):
        read_source_footer(storage, a.path)


def test_dates_and_timestamps_beyond_python_years_copy_and_verify(tmp_path: Path) -> None:
    # PostgreSQL dates run from 4713 BC to 5874897 AD; Python's from year 1 to 9999. The copy's check of
    # the footer compares statistics as stored, so such values in min/max are no obstacle.
    storage = Storage(str(tmp_path))
    days = [-2_451_545, -800_000, 0, 3_000_000, 2_147_000_000]
    table = pa.table(
        {
            "day": pa.array(days, pa.int32()).cast(pa.date32()),
            "at": pa.array([d * 1_000_000_000 for d in days], pa.timestamp("us")),
        }
    )
    a = storage.write_parquet(storage.path("a.parquet"), table, options=ParquetOptions(row_group_rows=2))
    source = read_source_footer(storage, a.path)

    written, _ = copy_row_groups(storage, storage.path("out.parquet"), [(source, 2), (source, 0)])

    expected = pa.concat_tables([table.slice(4, 1), table.slice(0, 2)])
    assert pq.read_table(written.path).equals(expected)
