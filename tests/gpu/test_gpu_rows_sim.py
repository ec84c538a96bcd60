"""Row boundaries on the GPU path: exact on data built to fool a guesser, identical to the CPU decoder.

Runs the numba-cuda kernels under numba's CUDA simulator (tiny blocks, so that block boundaries fall
inside values everywhere). ``rewalked_blocks > 0`` proves the speculative phase really was fooled and
the verified chain corrected it.
"""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry.testing import cudasim

ACTIVE = cudasim.activate()

pytestmark = pytest.mark.cudasim
simulator_or_subprocess = cudasim.simulator_or_subprocess  # autouse: skip here when the subprocess runs them

from parquetry.gpu.decode import GpuDecodeOptions  # noqa: E402
from parquetry.pgcopy.types import PgColumn  # noqa: E402
from parquetry.testing.copy_reference import encode_copy_binary, encode_row, header  # noqa: E402

SMALL = GpuDecodeOptions(block_size=64, confirm=3, threads=16, chain_tile=8, scan_chunk=8)

INT4 = (23, "integer")
TEXT = (25, "text")
BYTEA = (17, "bytea")
NUMERIC_20_4 = (1700, "numeric(20,4)", ((20 << 16) | 4) + 4)


def cols(*specs) -> list[PgColumn]:
    out = []
    for i, spec in enumerate(specs):
        oid, name, *typmod = spec
        out.append(PgColumn(f"c{i}", oid, name, typmod[0] if typmod else -1))
    return out


def assert_same(data: bytes, columns, options=SMALL):
    result, gpu, cpu = cudasim.decode_both(data, columns, options)
    assert gpu.schema == cpu.schema
    assert gpu.equals(cpu), (gpu.to_pylist()[:3], cpu.to_pylist()[:3])
    assert result.num_rows == cpu.num_rows
    return result


@pytest.mark.skipif(ACTIVE, reason="this process runs the simulator itself")
def test_module_runs_in_simulator_subprocess():
    cudasim.run_module_in_subprocess(__file__)


def test_text_holding_whole_fake_rows_never_shifts_a_row_start():
    columns = cols(INT4, TEXT, BYTEA)
    fake = encode_row(columns, [7, "ab", b"cd"])  # ASCII only: valid UTF-8, looks exactly like rows
    rows = [[i, fake.decode() * (3 + i % 4), fake * (i % 3)] for i in range(24)]
    result = assert_same(encode_copy_binary(columns, rows), columns)
    assert result.rewalked_blocks > 0, "the data did not fool the speculative phase; the test proves nothing"


def test_field_length_patterns_inside_bytea_and_text():
    columns = cols(INT4, TEXT, BYTEA)
    lookalike = b"\x00\x03\x00\x00\x00\x04" * 9 + b"\xff\xff\x00\x03\xff\xff\xff\xff"
    rows = [[i, "\x00\x03\x00\x00\x00\x04" * (i % 5), lookalike[: 7 * i % len(lookalike)]] for i in range(30)]
    assert_same(encode_copy_binary(columns, rows), columns)


def test_numerics_whose_bytes_read_as_row_headers():
    # ndigits = 3 starts the value with 00 03: a field count of 3; weight/sign/dscale read as lengths.
    columns = cols(NUMERIC_20_4, INT4, TEXT)
    values = ["4.0004", "10002.0003", "0.0003", "-3.0003", "30003.0004", "400040004.0004"]
    rows = [
        [decimal.Decimal(values[i % len(values)]), 3 if i % 2 else 4, "\x00\x03" * (i % 4)] for i in range(30)
    ]
    assert_same(encode_copy_binary(columns, rows), columns)


def test_rows_longer_than_a_block_span_blocks():
    columns = cols(INT4, TEXT)
    rows = [[i, "x" * (150 + 97 * i)] for i in range(6)]
    result = assert_same(encode_copy_binary(columns, rows), columns)
    assert result.blocks > 3 * result.num_rows


def test_forty_columns():
    specs = [INT4 if i % 2 == 0 else TEXT for i in range(40)]
    columns = cols(*specs)
    rows = [[(r * 40 + i) if i % 2 == 0 else f"r{r}c{i}" * (i % 3) for i in range(40)] for r in range(5)]
    rows[2][7] = None
    assert_same(
        encode_copy_binary(columns, rows),
        columns,
        GpuDecodeOptions(block_size=128, confirm=2, threads=16, chain_tile=4),
    )


def test_zero_rows_keep_the_schema():
    columns = cols(INT4, TEXT, NUMERIC_20_4)
    result = assert_same(encode_copy_binary(columns, []), columns)
    assert result.num_rows == 0 and result.blocks == 0


def test_rows_without_columns_are_counted():
    data = encode_copy_binary([], [[] for _ in range(11)])
    result, gpu, cpu = cudasim.decode_both(data, [], SMALL)
    assert gpu.num_rows == cpu.num_rows == 11 == result.num_rows


def test_header_extension_is_skipped():
    columns = cols(INT4, TEXT)
    body = b"".join(encode_row(columns, [i, "v" * i]) for i in range(9))
    data = header(b"\x00\x03\x00\x00\x00\x04ext") + body + b"\xff\xff"
    assert_same(data, columns)


def test_null_heavy_columns():
    columns = cols(INT4, TEXT, BYTEA, NUMERIC_20_4, (1082, "date"), (16, "boolean"))
    rows = []
    for i in range(40):
        if i % 13 == 5:
            rows.append([i, "t", b"b", decimal.Decimal("1.5"), dt.date(2020, 1, i % 28 + 1), True])
        else:
            rows.append([None] * 6)
    assert_same(encode_copy_binary(columns, rows), columns)


_TEXT = st.text(alphabet=st.sampled_from(["a", "\x00", "\x03", "\xff", "é", "€", "𝄞", "\x04"]), max_size=30)
_POOL = {
    "int4": (INT4, st.integers(-(2**31), 2**31 - 1)),
    "text": (TEXT, _TEXT),
    "bytea": (BYTEA, st.binary(max_size=40)),
    "numeric": (NUMERIC_20_4, st.decimals(min_value=-(10**15), max_value=10**15, places=4, allow_nan=False)),
    "bool": ((16, "boolean"), st.booleans()),
    "int8": ((20, "bigint"), st.integers(-(2**63), 2**63 - 1)),
}


@st.composite
def streams(draw):
    names = draw(st.lists(st.sampled_from(sorted(_POOL)), min_size=1, max_size=5))
    columns = cols(*[_POOL[n][0] for n in names])
    row = st.tuples(*[st.one_of(st.none(), _POOL[n][1]) for n in names])
    rows = draw(st.lists(row, max_size=12))
    options = GpuDecodeOptions(
        block_size=draw(st.integers(8, 160)),
        confirm=draw(st.integers(1, 4)),
        threads=draw(st.sampled_from([4, 16])),
        chain_tile=draw(st.sampled_from([1, 3, 8])),
        scan_chunk=draw(st.sampled_from([1, 5, 16])),
    )
    return encode_copy_binary(columns, rows), columns, options


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(streams())
def test_property_gpu_equals_cpu_for_any_geometry(case):
    data, columns, options = case
    assert_same(data, columns, options)
