"""Verification catches what the writers or storage get wrong; catalog work stays constant per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from parquetry.catalog import Catalog
from parquetry.compact import CompactionSettings, Compactor, VerificationError, rowgroup_copy
from parquetry.compact import writer as writer_module
from parquetry.compact.rowgroup_copy import RowGroupCopyError, copy_row_groups, read_source_footer
from parquetry.compact.verify import RowDigest
from parquetry.storage import Storage
from parquetry.testing.compaction import SMALL_SETTINGS, mixed_table, register, write_files

pytestmark = pytest.mark.postgres


def leftovers(storage: Storage) -> list[str]:
    return [p for p in os.listdir(storage.base) if p.startswith(("compacted-", ".tmp-"))]


class _FlipOneByte:
    """An output stream that stores byte ``at`` of the file altered, like a faulty disk or object store."""

    def __init__(self, inner: Any, at: int) -> None:
        self.inner, self.at, self.pos = inner, at, 0

    def write(self, data: bytes) -> int:
        data = bytes(data)
        if self.pos <= self.at < self.pos + len(data):
            k = self.at - self.pos
            data = data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1 :]
        self.pos += len(data)
        return self.inner.write(data)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _FlipOneByte:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FaultyFileSystem:
    """The local filesystem, except that files named with ``marker`` are stored with one byte flipped."""

    def __init__(self, marker: str, at: int) -> None:
        self.local, self.marker, self.at = pafs.LocalFileSystem(), marker, at

    def open_output_stream(self, path: str, *args: Any, **kwargs: Any) -> Any:
        stream = self.local.open_output_stream(path, *args, **kwargs)
        return _FlipOneByte(stream, self.at) if self.marker in path else stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)


def test_a_copied_row_group_stored_with_other_bytes_than_the_source_is_refused(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    source = storage.write_parquet(storage.path("a.parquet"), mixed_table(3000))
    footer = read_source_footer(storage, source.path)
    storage.fs = _FaultyFileSystem(marker="out.parquet", at=100)  # inside the first column chunk
    with pytest.raises(RowGroupCopyError, match="bytes read back differ"):
        copy_row_groups(storage, storage.path("out.parquet"), [(footer, 0)])
    assert sorted(os.listdir(storage.base)) == ["a.parquet"]


def test_a_local_copy_whose_stored_bytes_differ_from_the_source_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(str(tmp_path))
    source = storage.write_parquet(storage.path("a.parquet"), mixed_table(3000))
    footer = read_source_footer(storage, source.path)
    real_verify = rowgroup_copy._verify

    def damage_then_verify(storage: Storage, tmp: str, *args: Any) -> Any:
        with open(tmp, "r+b") as fh:  # the disk changes a byte of the first column chunk
            fh.seek(100)
            (byte,) = fh.read(1)
            fh.seek(100)
            fh.write(bytes([byte ^ 0xFF]))
        return real_verify(storage, tmp, *args)

    monkeypatch.setattr(rowgroup_copy, "_verify", damage_then_verify)
    with pytest.raises(RowGroupCopyError, match=r"read back differ from .*a\.parquet bytes"):
        copy_row_groups(storage, storage.path("out.parquet"), [(footer, 0)])
    assert sorted(os.listdir(storage.base)) == ["a.parquet"]


def test_a_faithful_copy_passes_the_same_check(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    source = storage.write_parquet(storage.path("a.parquet"), mixed_table(3000))
    footer = read_source_footer(storage, source.path)
    storage.fs = _FaultyFileSystem(marker="no-such-file", at=100)
    written, _ = copy_row_groups(storage, storage.path("out.parquet"), [(footer, 0)])
    assert pq.read_table(written.path).equals(pq.read_table(source.path))


@contextmanager
def writer_that_changes_a_price(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Parquet encoder writes one value wrong (rows, nulls and types stay as they were)."""
    real = writer_module.pq.ParquetWriter

    class Wrong(real):  # type: ignore[misc, valid-type]
        def write_table(self, table: pa.Table, row_group_size: int | None = None) -> None:
            index = table.schema.get_field_index("price")
            if index < 0:  # a part of the row group without the column (the rest encoded elsewhere)
                return super().write_table(table, row_group_size)
            wrong = np.arange(table.num_rows) == min(5, table.num_rows - 1)
            price = pc.if_else(pa.array(wrong), 1e9, table.column("price"))
            super().write_table(table.set_column(index, "price", price), row_group_size)

    monkeypatch.setattr(writer_module.pq, "ParquetWriter", Wrong)
    yield


def test_a_re_encoded_output_whose_values_differ_is_refused_and_nothing_changes(
    catalog: Catalog, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(catalog, "wrong", storage, write_files(storage, "", files=6, rows_per_file=500))
    before = catalog.snapshot("wrong")
    with (
        writer_that_changes_a_price(monkeypatch),
        pytest.raises(VerificationError, match="row hashes differ"),
    ):
        Compactor(catalog, SMALL_SETTINGS).run("wrong")
    assert catalog.snapshot("wrong") == before
    assert leftovers(storage) == []
    assert not catalog.dataset("wrong").compaction_in_progress


def test_a_re_encoded_output_damaged_in_storage_is_refused(
    catalog: Catalog, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(catalog, "damaged", storage, write_files(storage, "", files=6, rows_per_file=500))
    before = catalog.snapshot("damaged")
    real_read_back = writer_module.read_back

    def damage_then_read_back(storage: Storage, path: str, *args: Any) -> Any:
        with open(path, "r+b") as fh:  # the first page header no longer decodes
            fh.seek(4)
            fh.write(b"\xff" * 64)
        return real_read_back(storage, path, *args)

    from parquetry.compact import compactor as compactor_module

    monkeypatch.setattr(compactor_module, "read_back", damage_then_read_back)
    with pytest.raises(VerificationError, match=r"compacted-.*does not read back"):
        Compactor(catalog, SMALL_SETTINGS).run("damaged")
    assert catalog.snapshot("damaged") == before
    assert leftovers(storage) == []


def test_re_encoded_outputs_record_the_stored_bytes_etag_and_delta_encode_integers(
    catalog: Catalog, storage: Storage
) -> None:
    files = write_files(storage, "", files=6, rows_per_file=500)
    register(catalog, "enc", storage, files)
    expected = pa.concat_tables([pq.read_table(f.path) for f in files])

    result = Compactor(catalog, SMALL_SETTINGS).run("enc")

    assert result.verification["input"] == result.verification["output"]
    assert result.verification["read_back_by"] == {"duckdb": 1, "pyarrow": 0}
    (live,) = catalog.live_files("enc")
    assert storage.file_digest(live.path) == (live.etag, live.bytes)
    assert pq.read_table(live.path).equals(expected)
    meta = pq.read_metadata(live.path).row_group(0)
    encodings = {meta.column(c).path_in_schema: meta.column(c).encodings for c in range(meta.num_columns)}
    for name in ("id", "qty", "at", "day"):
        assert "DELTA_BINARY_PACKED" in encodings[name], name
    assert "RLE_DICTIONARY" in encodings["label"]
    assert "DELTA_BINARY_PACKED" not in encodings["price"]
    columns = ", ".join(f'"{n}"' for n in expected.column_names)
    got = duckdb.sql(f"SELECT {columns} FROM read_parquet('{live.path}') ORDER BY id").to_arrow_table()
    assert got.equals(expected.cast(got.schema))


def test_integers_can_be_left_plain(catalog: Catalog, storage: Storage) -> None:
    register(catalog, "plain", storage, write_files(storage, "", files=6, rows_per_file=500))
    settings = CompactionSettings(row_group_rows=2000, target_file_rows=5000, delta_integers=False)
    Compactor(catalog, settings).run("plain")
    (live,) = catalog.live_files("plain")
    meta = pq.read_metadata(live.path).row_group(0)
    assert all("DELTA_BINARY_PACKED" not in meta.column(c).encodings for c in range(meta.num_columns))


def count_catalog_connections(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = catalog._connect

    @contextmanager
    def counting() -> Iterator[Any]:
        calls.append("connect")
        with real() as conn:
            yield conn

    monkeypatch.setattr(catalog, "_connect", counting)
    return calls


def test_catalog_round_trips_do_not_grow_with_the_number_of_input_files(
    catalog: Catalog, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(catalog, "few", storage, write_files(storage, "few", files=5, rows_per_file=100))
    register(catalog, "many", storage, write_files(storage, "many", files=60, rows_per_file=10, start=500))
    calls = count_catalog_connections(catalog, monkeypatch)
    settings = CompactionSettings(row_group_rows=2000, target_file_rows=100_000)

    Compactor(catalog, settings).run("few")
    few = len(calls)
    Compactor(catalog, settings).run("many")

    assert len(calls) - few == few  # acquire, snapshot, commit, release: the same for 60 inputs


def test_an_input_row_group_split_across_two_outputs_is_read_once(catalog: Catalog, storage: Storage) -> None:
    files = write_files(storage, "", files=5, rows_per_file=1500, row_group_rows=1500)
    register(catalog, "split", storage, files)
    settings = CompactionSettings(row_group_rows=1000, target_file_rows=2000, min_row_group_rows=10_000)

    result = Compactor(catalog, settings).run("split")

    assert result.output_files == 4  # 2000 | 2000 | 2000 | 1500: the second input ends up in two outputs
    assert result.verification["input"]["rows"] == 7500  # each input row hashed once, not twice
    ids = pa.concat_tables([pq.read_table(f.path, columns=["id"]) for f in catalog.live_files("split")])
    assert ids.column("id").to_pylist() == list(range(7500))


def write_tables(storage: Storage, tables: list[pa.Table]) -> list[Any]:
    return [storage.write_parquet(storage.path(f"t{n}.parquet"), t) for n, t in enumerate(tables)]


def compact_tables(
    catalog: Catalog, storage: Storage, dataset: str, tables: list[pa.Table]
) -> tuple[Any, pa.Table, str]:
    """Write ``tables`` one file each, register them as ``dataset`` and compact it into one file:
    (the run's result, the inputs' rows as pyarrow reads them, the output's path)."""
    files = write_tables(storage, tables)
    catalog.register_files(dataset, storage.root, files, tables[0].schema)
    expected = pa.concat_tables([pq.read_table(f.path) for f in files])
    result = Compactor(catalog, SMALL_SETTINGS).run(dataset)
    (live,) = catalog.live_files(dataset)
    return result, expected, live.path


def test_types_duckdb_reads_differently_are_read_back_by_pyarrow(catalog: Catalog, storage: Storage) -> None:
    def table(start: int) -> pa.Table:  # Parquet has no seconds: DuckDB reads these as milliseconds
        ids = list(range(start, start + 50))
        return pa.table({"id": ids, "at": pa.array([i * 7 for i in ids], pa.timestamp("s"))})

    result, expected, output = compact_tables(catalog, storage, "secs", [table(n * 50) for n in range(5)])

    assert result.verification["read_back_by"] == {"duckdb": 0, "pyarrow": 1}
    assert result.verification["input"] == result.verification["output"]
    assert pq.read_table(output).equals(expected)


def test_duckdb_read_back_names_every_column_even_one_called_like_its_hash(
    catalog: Catalog, storage: Storage
) -> None:
    def table(start: int) -> pa.Table:
        ids = list(range(start, start + 50))
        return pa.table(
            {"parquetry_row_hash": ids, "h": [str(i) for i in ids], "n": [None if i % 3 else i for i in ids]}
        )

    tables = [table(n * 50) for n in range(5)]
    catalog.register_files("names", storage.root, write_tables(storage, tables), tables[0].schema)

    result = Compactor(catalog, SMALL_SETTINGS).run("names")

    assert result.verification["read_back_by"] == {"duckdb": 1, "pyarrow": 0}
    out = result.verification["output"]
    assert out == result.verification["input"]
    assert out["null_counts"] == {"h": 0, "n": 250 - 84, "parquetry_row_hash": 0}


WIDE = Context(prec=60)  # Decimal arithmetic keeps 28 digits by default


def test_wide_decimals_and_half_floats_are_hashed_by_their_bytes_and_read_back_by_pyarrow(
    catalog: Catalog, storage: Storage
) -> None:
    # numeric(50,10) extracts to decimal256, which DuckDB cannot take from Arrow (nor float16): the
    # digest hashes their bytes, and DuckDB's Parquet reader (wide decimals as doubles) is not used.
    def table(start: int) -> pa.Table:
        ids = list(range(start, start + 50))
        wide = [None if i % 7 == 0 else Decimal(i * 10**30 + 3).scaleb(-10, WIDE) for i in ids]
        return pa.table(
            {
                "id": ids,
                "wide": pa.array(wide, pa.decimal256(50, 10)),
                "half": pa.array([i / 4 for i in ids], pa.float32()).cast(pa.float16()),
                "nested": pa.array([[w] for w in wide], pa.list_(pa.decimal256(50, 10))),
            }
        )

    result, expected, output = compact_tables(catalog, storage, "wide", [table(n * 50) for n in range(5)])

    assert result.verification["read_back_by"] == {"duckdb": 0, "pyarrow": 1}
    assert result.verification["input"] == result.verification["output"]
    assert result.verification["output"]["null_counts"]["wide"] == 36
    assert pq.read_table(output).equals(expected)


def test_a_changed_wide_decimal_changes_the_digest() -> None:
    values = [Decimal(10**45 + i).scaleb(-10, WIDE) for i in range(20)]
    table = pa.table({"wide": pa.array(values, pa.decimal256(50, 10))})
    changed = table.set_column(
        0, "wide", pa.array([*values[:-1], WIDE.add(values[-1], Decimal("1e-10"))], pa.decimal256(50, 10))
    )
    a, b, c = RowDigest(), RowDigest(), RowDigest()
    a.update(table)
    b.update(pa.concat_tables([table.slice(0, 7), table.slice(7)]))  # other chunks, same rows
    c.update(changed)
    assert a.as_dict() == b.as_dict()
    assert a.differences(c) == ["row hashes differ"]


def test_a_column_of_arrow_null_type_needs_no_statistics(catalog: Catalog, storage: Storage) -> None:
    # Parquet's Null logical type is written without statistics; every other column still must have them.
    tables = [pa.table({"id": list(range(n * 40, n * 40 + 40)), "nothing": pa.nulls(40)}) for n in range(5)]

    result, expected, output = compact_tables(catalog, storage, "nulls", tables)

    assert result.verification["output"]["null_counts"] == {"id": 0, "nothing": 200}
    assert pq.read_table(output).equals(expected)
    meta = pq.read_metadata(output)
    assert [meta.row_group(0).column(c).is_stats_set for c in range(2)] == [True, False]
