"""The Parquet layout of the published ``results`` table: fast to write, exact to read back, and still
eligible for compaction's byte-for-byte row-group copy."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.stdf import read_stdf
from parquetry.stdf.ingest import ingest_stdf_file
from parquetry.stdf.tables import TABLE_SCHEMAS
from parquetry.storage import ParquetOptions, Storage
from parquetry.testing.stdf_writer import write_lot

NEVER_NULL = {"file_id", "rec_index", "rec_type", "test_id", "test_num", "head_num", "site_num"}


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded, nullability dropped: the values alone."""
    fields = [
        pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    lot = write_lot(tmp / "lot.stdf", parts=60, tests=40, sites=4, mpr_every=5, ftr_every=7, seed=11)
    result = ingest_stdf_file(lot.path, Storage(str(tmp / "root")), "lotfile", batch_records=500)
    assert result.ok, result.error
    return lot.path, result


def test_published_results_read_back_equal_to_the_parser_value_for_value(published):
    path, result = published
    expected = read_stdf(path, file_id="lotfile")["results"]
    got = pq.read_table(result.files["results"].path)
    assert got.num_rows == expected.num_rows > 2000
    assert _plain(got).equals(_plain(expected))
    # MPR rows (null-free value absent, pin indices present) and FTR rows are among them
    assert got["pin_index"].null_count < got.num_rows
    assert got["value"].null_count > 0


def test_never_null_results_columns_are_required_in_the_file_and_hold_no_null(published):
    _path, result = published
    schema = TABLE_SCHEMAS["results"]
    assert {f.name for f in schema if not f.nullable} == NEVER_NULL
    parquet_schema = pq.ParquetFile(result.files["results"].path).schema
    for i, name in enumerate(parquet_schema.names):
        column = parquet_schema.column(i)
        assert (column.max_definition_level == 0) == (name in NEVER_NULL), name
    table = pq.read_table(result.files["results"].path)
    assert all(table[name].null_count == 0 for name in NEVER_NULL)


def test_results_keep_statistics_on_every_column_chunk_so_compaction_can_copy_them(published):
    _path, result = published
    meta = pq.ParquetFile(result.files["results"].path).metadata
    assert meta.num_row_groups >= 1
    for rg in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            chunk = meta.row_group(rg).column(c)
            assert chunk.is_stats_set, chunk.path_in_schema


def test_results_are_lz4_with_delta_and_byte_stream_split_where_they_pay(published):
    _path, result = published
    meta = pq.ParquetFile(result.files["results"].path).metadata
    chunks = {meta.row_group(0).column(c).path_in_schema: meta.row_group(0).column(c) for c in range(17)}
    # pyarrow names the codec LZ4; on disk it is LZ4_RAW, which DuckDB reads
    assert {chunk.compression for chunk in chunks.values()} == {"LZ4"}
    codecs = duckdb.sql(
        "SELECT DISTINCT compression FROM parquet_metadata(?)", params=[result.files["results"].path]
    ).fetchall()
    assert codecs == [("LZ4_RAW",)]
    assert "DELTA_BINARY_PACKED" in chunks["rec_index"].encodings
    assert "BYTE_STREAM_SPLIT" in chunks["value"].encodings
    assert chunks["test_txt"].has_dictionary_page
    assert not chunks["value"].has_dictionary_page


def test_a_codec_other_than_zstd_chosen_by_the_caller_is_kept(tmp_path):
    lot = write_lot(tmp_path / "lot.stdf", parts=8, tests=5, sites=2)
    options = ParquetOptions(compression="snappy", compression_level=None)
    result = ingest_stdf_file(lot.path, Storage(str(tmp_path / "root")), "snappy", options=options)
    assert result.ok, result.error
    meta = pq.ParquetFile(result.files["results"].path).metadata
    assert {meta.row_group(0).column(c).compression for c in range(meta.num_columns)} == {"SNAPPY"}
