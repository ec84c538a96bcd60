"""Malformed streams and unstorable values: the GPU path refuses exactly what the CPU decoder refuses.

Same exception class, byte offset, row and column as the CPU decoder for every case. Runs under numba's
CUDA simulator.
"""

from __future__ import annotations

import struct

import pytest

from parquetry.testing import cudasim

ACTIVE = cudasim.activate()

pytestmark = pytest.mark.cudasim
simulator_or_subprocess = cudasim.simulator_or_subprocess  # autouse: skip here when the subprocess runs them

from parquetry.gpu.decode import GpuDecodeOptions  # noqa: E402
from parquetry.pgcopy.errors import CopyFormatError  # noqa: E402
from parquetry.pgcopy.types import PgColumn  # noqa: E402
from parquetry.testing.copy_reference import encode_copy_binary, encode_row, header  # noqa: E402

OPTS = GpuDecodeOptions(block_size=32, confirm=2, threads=8, chain_tile=4, scan_chunk=4)
COLUMNS = [PgColumn("id", 23, "integer"), PgColumn("name", 25, "text"), PgColumn("blob", 17, "bytea")]
ROWS = [[i, "n" * i, b"\x00\x03" * i] for i in range(8)]
GOOD = encode_copy_binary(COLUMNS, ROWS)
ROW_STARTS = [len(header()) + sum(len(encode_row(COLUMNS, r)) for r in ROWS[:i]) for i in range(len(ROWS))]


def assert_same_refusal(data: bytes, columns=COLUMNS):
    gpu, cpu = cudasim.errors_of_both(data, columns, OPTS)
    assert type(gpu) is type(cpu) is CopyFormatError, (gpu, cpu)
    assert (gpu.offset, gpu.row, gpu.column) == (cpu.offset, cpu.row, cpu.column), (str(gpu), str(cpu))
    assert gpu.offset is not None
    return gpu, cpu


def field(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def stream(*rows: bytes) -> bytes:
    return header() + b"".join(rows) + b"\xff\xff"


@pytest.mark.skipif(ACTIVE, reason="this process runs the simulator itself")
def test_module_runs_in_simulator_subprocess():
    cudasim.run_module_in_subprocess(__file__)


@pytest.mark.parametrize(
    "cut", [0, 5, 11, 17, 19, 20, 24, 30, ROW_STARTS[5] + 1, ROW_STARTS[7] + 3, -3, -2, -1]
)
def test_truncated_streams_are_refused_where_they_stop(cut):
    assert_same_refusal(GOOD[:cut])


def test_wrong_field_count_names_the_row():
    bad = bytearray(GOOD)
    bad[ROW_STARTS[4] : ROW_STARTS[4] + 2] = struct.pack(">h", 2)
    gpu, _ = assert_same_refusal(bytes(bad))
    assert gpu.row == 5 and gpu.offset == ROW_STARTS[4]


def test_negative_length_names_row_and_column():
    bad = bytearray(GOOD)
    at = ROW_STARTS[6] + 2 + 8  # the text field's length word
    bad[at : at + 4] = struct.pack(">i", -2)
    gpu, _ = assert_same_refusal(bytes(bad))
    assert (gpu.row, gpu.column, gpu.offset) == (7, "name", at)


def test_data_after_the_trailer():
    assert_same_refusal(GOOD + b"\x00")


def test_length_running_past_the_end():
    bad = bytearray(GOOD)
    at = ROW_STARTS[2] + 2 + 8
    bad[at : at + 4] = struct.pack(">i", 10_000)
    assert_same_refusal(bytes(bad))


def test_header_problems():
    assert_same_refusal(b"PGCOPY\n\xfe\r\n\x00" + GOOD[11:])
    assert_same_refusal(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 1 << 16, 0) + GOOD[19:])
    assert_same_refusal(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, -1) + GOOD[19:])
    assert_same_refusal(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 1000) + GOOD[19:])
    assert_same_refusal(b"")


INT4 = PgColumn("i", 23, "integer")
NUM = PgColumn("n", 1700, "numeric(6,2)", ((6 << 16) | 2) + 4)


@pytest.mark.parametrize(
    ("columns", "bad_field"),
    [
        ([PgColumn("b", 16, "boolean")], field(b"\x02")),
        ([PgColumn("b", 16, "boolean")], field(b"\x01\x00")),
        ([INT4], field(b"\x00\x00\x01")),
        ([PgColumn("t", 25, "text")], field(b"ok\xc3")),
        ([PgColumn("t", 25, "text")], field(b"\xed\xa0\x80")),  # a UTF-16 surrogate
        ([PgColumn("t", 25, "text")], field(b"\xc0\xaf")),  # overlong
        ([PgColumn("j", 3802, "jsonb")], field(b"\x02{}")),
        ([PgColumn("j", 3802, "jsonb")], field(b"")),
        ([NUM], field(struct.pack(">hhHh", 0, 0, 0xC000, 0))),  # NaN
        ([NUM], field(struct.pack(">hhHh", 0, 0, 0xD000, 0))),  # Infinity
        ([NUM], field(struct.pack(">hhHhh", 1, 1, 0, 0, 1))),  # 10000: five integer digits > 6 - 2
        ([NUM], field(struct.pack(">hhHhh", 1, -1, 0, 3, 1230))),  # 0.123: a digit past scale 2
        ([NUM], field(struct.pack(">hhHhh", 1, 0, 0x1234, 0, 1))),  # unknown sign
        ([NUM], field(struct.pack(">hhHhh", 1, 0, 0, 0, 10000))),  # digit out of range
        ([NUM], field(struct.pack(">hhHhh", 2, 0, 0, 0, 1))),  # length disagrees with ndigits
        ([PgColumn("ts", 1114, "timestamp")], field(struct.pack(">q", 2**63 - 2))),
        ([PgColumn("iv", 1186, "interval")], field(struct.pack(">qii", 2**62, 0, 0))),
        ([PgColumn("a", 1007, "integer[]")], field(struct.pack(">iii", 1, 0, 23))),  # CPU hybrid column
    ],
)
def test_unstorable_values_are_refused_with_row_column_and_offset(columns, bad_field):
    good = [encode_row([*columns, INT4], [None, 1])] * 3
    row = struct.pack(">h", 2) + bad_field + field(struct.pack(">i", 5))
    gpu, _ = assert_same_refusal(stream(*good, row, *good), [*columns, INT4])
    assert gpu.row == 4 and gpu.column == columns[0].name


def test_first_bad_row_wins_within_a_column():
    columns = [INT4, PgColumn("b", 16, "boolean")]
    rows = [
        struct.pack(">h", 2) + field(struct.pack(">i", i)) + field(b"\x01" if i not in (5, 9) else b"\x07")
        for i in range(12)
    ]
    gpu, _ = assert_same_refusal(stream(*rows), columns)
    assert gpu.row == 6
