"""Malformed or unmappable input stops the decoder with an error naming source, byte offset, row, column."""

from __future__ import annotations

import datetime as dt
import decimal
import struct

import pytest

from parquetry.pgcopy.decode import CopyDecoder, decode_copy_binary
from parquetry.pgcopy.errors import CopyFormatError, UnsupportedTypeError
from parquetry.pgcopy.types import PgColumn, PgType, arrow_schema
from parquetry.testing.copy_reference import TRAILER, encode_copy_binary, encode_numeric, encode_row, header

INT_TEXT = [PgColumn("id", 23, "integer"), PgColumn("name", 25, "text")]
SOURCE = "chunk-0007.copy"


def _stream(rows: list[tuple]) -> bytes:
    return encode_copy_binary(INT_TEXT, rows)


def _field(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def test_bad_signature_is_refused_at_offset_zero() -> None:
    data = b"PGCOPX\n\xff\r\n\x00" + _stream([(1, "a")])[11:]
    with pytest.raises(CopyFormatError, match=r"bad signature.*'chunk-0007.copy', byte offset 0"):
        decode_copy_binary(data, INT_TEXT, source=SOURCE)


def test_text_format_copy_is_not_mistaken_for_binary() -> None:
    with pytest.raises(CopyFormatError, match="bad signature"):
        decode_copy_binary(b"1\tfoo\n2\tbar\n", INT_TEXT, source=SOURCE)


def test_truncated_row_names_row_column_and_offset() -> None:
    data = _stream([(1, "first"), (2, "second row")])
    cut = data[: len(data) - len(TRAILER) - 3]  # inside the text of row 2
    row2_name_length_at = len(header()) + len(encode_row(INT_TEXT, (1, "first"))) + 2 + 8
    with pytest.raises(CopyFormatError) as err:
        decode_copy_binary(cut, INT_TEXT, source=SOURCE)
    assert err.value.row == 2
    assert err.value.column == "name"
    assert err.value.offset == row2_name_length_at
    assert "runs past the end" in str(err.value) and SOURCE in str(err.value)


def test_field_length_past_the_end_is_reported_even_before_a_trailer_like_tail() -> None:
    row = struct.pack(">h", 2) + _field(struct.pack(">i", 5)) + struct.pack(">i", 1000) + b"short"
    with pytest.raises(CopyFormatError, match=r"field length 1000 runs past the end.*row 1, column 'name'"):
        decode_copy_binary(header() + row + TRAILER, INT_TEXT, source=SOURCE)


def test_wrong_field_count_names_row_and_offset() -> None:
    good = encode_row(INT_TEXT, (1, "a"))
    bad = struct.pack(">h", 3) + _field(b"\x00\x00\x00\x02") + _field(b"b") + _field(b"c")
    data = header() + good + bad + TRAILER
    with pytest.raises(CopyFormatError, match=r"row has 3 fields, expected 2") as err:
        decode_copy_binary(data, INT_TEXT, source=SOURCE)
    assert (err.value.row, err.value.offset) == (2, len(header()) + len(good))


def test_missing_trailer_is_an_error_not_a_short_table() -> None:
    data = _stream([(1, "a")])[: -len(TRAILER)]
    with pytest.raises(CopyFormatError, match=r"without the end-of-data trailer.*byte offset") as err:
        decode_copy_binary(data, INT_TEXT, source=SOURCE)
    assert err.value.offset == len(data)


def test_stream_cut_inside_the_header_is_an_error() -> None:
    decoder = CopyDecoder(INT_TEXT, source=SOURCE)
    assert decoder.feed(_stream([])[:12]) == []
    with pytest.raises(CopyFormatError, match="inside the header"):
        decoder.finish()


def test_data_after_the_trailer_is_an_error() -> None:
    with pytest.raises(CopyFormatError, match="after the end-of-data trailer"):
        decode_copy_binary(_stream([(1, "a")]) + b"\x00", INT_TEXT, source=SOURCE)
    decoder = CopyDecoder(INT_TEXT, source=SOURCE)
    decoder.feed(_stream([(1, "a")]))
    with pytest.raises(CopyFormatError, match="after the end-of-data trailer"):
        decoder.feed(b"\x00\x02")


def test_negative_field_length_other_than_null_is_an_error() -> None:
    row = struct.pack(">h", 2) + struct.pack(">i", -2) + _field(b"x")
    with pytest.raises(CopyFormatError, match=r"negative field length.*row 1, column 'id'"):
        decode_copy_binary(header() + row + TRAILER, INT_TEXT, source=SOURCE)


def test_oids_flag_is_refused_and_header_extension_is_skipped() -> None:
    with_oids = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 1 << 16, 0) + TRAILER
    with pytest.raises(CopyFormatError, match="OIDs"):
        decode_copy_binary(with_oids, INT_TEXT, source=SOURCE)
    extended = header(b"\x00\x03\x00\x00\x00\x04ext!") + encode_row(INT_TEXT, (7, "x")) + TRAILER
    assert decode_copy_binary(extended, INT_TEXT).to_pylist() == [{"id": 7, "name": "x"}]


def test_value_of_the_wrong_width_names_the_column() -> None:
    row = struct.pack(">h", 2) + _field(b"\x00\x00\x01") + _field(b"x")
    with pytest.raises(CopyFormatError, match=r"3 bytes, expected 4.*row 1, column 'id'"):
        decode_copy_binary(header() + row + TRAILER, INT_TEXT, source=SOURCE)


def test_invalid_utf8_text_is_refused() -> None:
    row = struct.pack(">h", 2) + _field(struct.pack(">i", 1)) + _field(b"\xff\xfe")
    with pytest.raises(CopyFormatError, match=r"not valid UTF-8.*column 'name'"):
        decode_copy_binary(header() + row + TRAILER, INT_TEXT, source=SOURCE)


def test_numeric_beyond_declared_precision_is_refused_not_rounded() -> None:
    cols = [PgColumn("price", 1700, "numeric(5,2)", (5 << 16 | 2) + 4)]
    too_big = struct.pack(">h", 1) + _field(encode_numeric(decimal.Decimal("1234.56")))
    with pytest.raises(CopyFormatError, match="more significant digits"):
        decode_copy_binary(header() + too_big + TRAILER, cols, source=SOURCE)
    too_fine = struct.pack(">h", 1) + _field(encode_numeric(decimal.Decimal("1.234")))
    with pytest.raises(CopyFormatError, match="more fractional digits"):
        decode_copy_binary(header() + too_fine + TRAILER, cols, source=SOURCE)


def test_numeric_infinity_in_decimal_column_is_refused() -> None:
    cols = [PgColumn("price", 1700, "numeric(5,2)", (5 << 16 | 2) + 4)]
    with pytest.raises(
        CopyFormatError, match=r"Infinity cannot be stored in decimal128\(5, 2\).*column 'price'"
    ):
        decode_copy_binary(encode_copy_binary(cols, [(decimal.Decimal("Infinity"),)]), cols, source=SOURCE)


def test_timestamp_beyond_arrow_range_is_refused() -> None:
    cols = [PgColumn("t", 1114, "timestamp")]
    late = 2**63 - 946_684_800_000_000  # finite in PostgreSQL, past int64 microseconds since 1970
    row = struct.pack(">h", 1) + _field(struct.pack(">q", late))
    with pytest.raises(CopyFormatError, match="beyond the Arrow int64 microsecond range"):
        decode_copy_binary(header() + row + TRAILER, cols, source=SOURCE)
    ok = decode_copy_binary(encode_copy_binary(cols, [(dt.datetime(2000, 1, 1),)]), cols)
    assert ok.column("t").to_pylist() == [dt.datetime(2000, 1, 1)]


def test_interval_whose_nanoseconds_overflow_is_refused() -> None:
    cols = [PgColumn("iv", 1186, "interval")]
    row = struct.pack(">h", 1) + _field(struct.pack(">qii", 2**62, 0, 0))
    with pytest.raises(CopyFormatError, match="does not fit Arrow's int64 nanoseconds"):
        decode_copy_binary(header() + row + TRAILER, cols, source=SOURCE)


def _int_array(ndim: int, dims: list[tuple[int, int]], elems: list[int]) -> bytes:
    out = struct.pack(">iii", ndim, 0, 23) + b"".join(struct.pack(">ii", d, lb) for d, lb in dims)
    return out + b"".join(_field(struct.pack(">i", e)) for e in elems)


def test_array_lower_bound_other_than_one_is_refused() -> None:
    cols = [PgColumn("a", 1007, "integer[]")]
    row = struct.pack(">h", 1) + _field(_int_array(1, [(2, 0)], [5, 6]))
    with pytest.raises(CopyFormatError, match=r"lower bound 0.*column 'a'"):
        decode_copy_binary(header() + row + TRAILER, cols, source=SOURCE)


def test_array_with_other_dimensions_than_declared_is_refused() -> None:
    cols = [PgColumn("a", 1007, "integer[]")]
    row = struct.pack(">h", 1) + _field(_int_array(2, [(1, 1), (2, 1)], [5, 6]))
    with pytest.raises(CopyFormatError, match="has 2 dimensions but the column declares 1"):
        decode_copy_binary(header() + row + TRAILER, cols, source=SOURCE)


def test_array_element_running_past_its_value_is_refused() -> None:
    cols = [PgColumn("a", 1007, "integer[]")]
    body = struct.pack(">iii", 1, 0, 23) + struct.pack(">ii", 3, 1) + _field(struct.pack(">i", 1))
    row = struct.pack(">h", 1) + _field(body)
    with pytest.raises(CopyFormatError, match="truncated or has a bad element length"):
        decode_copy_binary(header() + row + TRAILER, cols, source=SOURCE)


def test_unsupported_type_names_table_column_and_type() -> None:
    cols = [PgColumn("location", 600, "point", relation="public.shops")]
    with pytest.raises(UnsupportedTypeError, match=r"'point' for column 'location' of public.shops"):
        arrow_schema(cols)
    with pytest.raises(UnsupportedTypeError, match="point"):
        CopyDecoder(cols, source=SOURCE)


def test_hand_written_composite_type_needs_no_database() -> None:
    addr = PgType(oid=99999, name="pair", kind="composite", fields=())
    with pytest.raises(UnsupportedTypeError, match="without attributes"):
        arrow_schema([PgColumn("p", 99999, "pair", pg_type=addr)])


def test_null_in_a_not_null_column_names_row_column_and_offset() -> None:
    columns = [PgColumn("id", 23, "integer", not_null=True), PgColumn("name", 25, "text", not_null=True)]
    rows = [(1, "a"), (2, "b"), (3, None)]
    data = encode_copy_binary(columns, rows)
    name_of_row3_at = len(header()) + sum(len(encode_row(columns, r)) for r in rows[:2]) + 2 + 8
    with pytest.raises(CopyFormatError, match="NULL in a column declared NOT NULL") as err:
        decode_copy_binary(data, columns, source=SOURCE)
    assert (err.value.row, err.value.column, err.value.offset) == (3, "name", name_of_row3_at)
    # The two-pass decoder names the row and where its batch starts.
    two_pass = CopyDecoder(columns, SOURCE, one_pass=False)
    with pytest.raises(CopyFormatError, match="NULL in a column declared NOT NULL") as err:
        two_pass.feed(data)
        two_pass.finish()
    assert (err.value.row, err.value.column, err.value.offset) == (3, "name", len(header()))

    batch = decode_copy_binary(encode_copy_binary(columns, rows[:2]), columns, source=SOURCE)
    assert [f.nullable for f in batch.schema] == [False, False]
    assert batch.column("name").to_pylist() == ["a", "b"]
