"""Every type the GPU kernels decode gives the CPU decoder's exact Arrow values; the rest is a reported hybrid

Runs under numba's CUDA simulator. Streams come from the plain reference encoder (independent of both
decoders); the CPU decoder is the oracle for schema and values, checked bit for bit for floats.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid

import pyarrow as pa
import pytest

from parquetry.testing import cudasim

ACTIVE = cudasim.activate()

pytestmark = pytest.mark.cudasim
simulator_or_subprocess = cudasim.simulator_or_subprocess  # autouse: skip here when the subprocess runs them

from parquetry.gpu.decode import GpuDecodeOptions  # noqa: E402
from parquetry.gpu.plan import K_CPU, plan_columns  # noqa: E402
from parquetry.pgcopy.types import PgColumn, arrow_schema  # noqa: E402
from parquetry.testing.copy_reference import encode_copy_binary  # noqa: E402

OPTS = GpuDecodeOptions(block_size=96, confirm=2, threads=16, chain_tile=8, scan_chunk=8)
I32_MAX, I32_MIN, I64_MAX, I64_MIN = 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)


def typmod(p: int, s: int) -> int:
    return ((p << 16) | s) + 4


def col(name: str, oid: int, type_name: str, tm: int = -1) -> PgColumn:
    return PgColumn(name, oid, type_name, tm)


def same_bits(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    """Equality that also holds for NaN payloads and -0.0: compare floats as integers."""
    a, b = a.combine_chunks(), b.combine_chunks()
    if pa.types.is_floating(a.type):
        width = pa.int32() if a.type == pa.float32() else pa.int64()
        return a.view(width).equals(b.view(width))
    return a.equals(b)


def assert_same(data, columns, options=OPTS):
    result, gpu, cpu = cudasim.decode_both(data, columns, options)
    assert gpu.schema == cpu.schema
    for name in cpu.column_names:
        assert same_bits(gpu.column(name), cpu.column(name)), (name, gpu.column(name), cpu.column(name))
    return result


@pytest.mark.skipif(ACTIVE, reason="this process runs the simulator itself")
def test_module_runs_in_simulator_subprocess():
    cudasim.run_module_in_subprocess(__file__)


def test_integers_floats_bool_oid_at_their_extremes():
    columns = [
        col("b", 16, "boolean"),
        col("i2", 21, "smallint"),
        col("i4", 23, "integer"),
        col("i8", 20, "bigint"),
        col("o", 26, "oid"),
        col("f4", 700, "real"),
        col("f8", 701, "double precision"),
    ]
    rows = [
        [True, -(2**15), I32_MIN, I64_MIN, 0, float("-inf"), float("nan")],
        [False, 2**15 - 1, I32_MAX, I64_MAX, 2**32 - 1, float("inf"), -0.0],
        [None, 0, -1, -1, 7, 1.5e-45, 5e-324],
        [True, None, None, None, None, None, None],
    ]
    result = assert_same(encode_copy_binary(columns, rows), columns)
    assert result.cpu_columns == []


def test_dates_timestamps_times_with_infinities_and_the_epoch_shift():
    columns = [
        col("d", 1082, "date"),
        col("ts", 1114, "timestamp without time zone"),
        col("tz", 1184, "timestamp with time zone"),
        col("t", 1083, "time without time zone"),
    ]
    rows = [
        [dt.date(2000, 1, 1), dt.datetime(2000, 1, 1), dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.time(0)],
        [
            dt.date(1970, 1, 1),
            dt.datetime(1970, 1, 1),
            dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
            dt.time(23, 59, 59, 999999),
        ],
        ["infinity", "infinity", "-infinity", None],
        ["-infinity", "-infinity", "infinity", dt.time(12, 0, 0, 1)],
        [
            dt.date(1, 1, 1),
            dt.datetime(1, 1, 1, 0, 0, 0, 1),
            dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
            dt.time(0, 0, 0, 1),
        ],
        [dt.date(9999, 12, 31), None, None, None],
    ]
    assert_same(encode_copy_binary(columns, rows), columns)


def test_intervals_uuids_and_money():
    columns = [col("iv", 1186, "interval"), col("u", 2950, "uuid"), col("m", 790, "money")]
    rows = [
        [(1, 2, 3), uuid.UUID("12345678-1234-5678-1234-567812345678"), 0],
        [(-14, -3, -86_400_000_001), uuid.UUID(int=0), I64_MIN],
        [(I32_MAX, I32_MAX, I64_MAX), uuid.UUID(int=2**128 - 1), I64_MAX],  # +infinity
        [(I32_MIN, I32_MIN, I64_MIN), None, -1],  # -infinity
        [(0, 0, 9_223_372_036_854_775), None, None],  # largest time part that fits nanoseconds
        [None, uuid.UUID(int=1), 123456],
    ]
    assert_same(encode_copy_binary(columns, rows), columns)


@pytest.mark.parametrize(
    ("p", "s", "values"),
    [
        (
            20,
            4,
            ["0", "0.0001", "-0.0001", "1234567890123456.7891", "-9999999999999999.9999", "10000", "0.5"],
        ),
        (38, 0, ["9" * 38, "-" + "9" * 38, "1" + "0" * 37, "10000", "1"]),
        (38, 38, ["0." + "9" * 38, "-0." + "0" * 37 + "1", "0"]),
        (10, 2, ["12345678.99", "-0.01", "100", "0.10", "42"]),
        (5, 5, ["0.12345", "-0.00001"]),
    ],
)
def test_numeric_to_decimal128(p, s, values):
    columns = [col("n", 1700, f"numeric({p},{s})", typmod(p, s)), col("k", 23, "integer")]
    rows = [[decimal.Decimal(v), i] for i, v in enumerate(values)] + [[None, -1]]
    result = assert_same(encode_copy_binary(columns, rows), columns)
    assert result.gpu_columns == ["n", "k"]


def test_numeric_with_trailing_zero_scale_digits():
    # dscale larger than needed: the last base-10000 digit holds zeros beyond the column scale.
    columns = [col("n", 1700, "numeric(12,2)", typmod(12, 2))]
    body = struct.pack(">hhHh2h", 2, 0, 0, 2, 12, 5000)  # 12.5000 with dscale 2 -> 12.50
    data = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + struct.pack(">hi", 1, len(body)) + body + b"\xff\xff"
    assert_same(data, columns)


def test_text_family_bytea_and_jsonb():
    columns = [
        col("t", 25, "text"),
        col("v", 1043, "character varying(5)", 9),
        col("c", 1042, "character(3)", 7),
        col("n", 19, "name"),
        col("j", 114, "json"),
        col("jb", 3802, "jsonb"),
        col("x", 142, "xml"),
        col("by", 17, "bytea"),
    ]
    rows = [
        ["", "", "   ", "", "{}", "{}", "<a/>", b""],
        [
            "héllo €𝄞",
            "abcde",
            "ab ",
            "pg_class",
            '{"a": [1, 2]}',
            '{"a": [1, 2]}',
            "<x>é</x>",
            b"\x00\xff\x80",
        ],
        [None, None, None, None, None, None, None, None],
        ["\x00 nul inside", "z", "z  ", "n", "null", "null", "<y/>", bytes(range(256))],
    ]
    assert_same(encode_copy_binary(columns, rows), columns)


@pytest.mark.slow
def test_columns_without_kernels_are_decoded_on_the_cpu_and_reported():
    columns = [
        col("id", 23, "integer"),
        col("arr", 1007, "integer[]"),
        col("tt", 1266, "time with time zone"),
        col("s", 25, "text"),
        col("tags", 1009, "text[]"),
        col("free", 1700, "numeric"),
    ]  # the unconstrained numeric maps to exact text
    rows = [
        [1, [1, None, 3], (dt.time(1, 2, 3), 3600), "a", ["x", None], decimal.Decimal("1.50")],
        [2, None, None, None, [], decimal.Decimal("NaN")],
        [3, [], (dt.time(23, 0), -19800), "ccc", None, None],
    ]
    result = assert_same(encode_copy_binary(columns, rows), columns)
    assert result.cpu_columns == ["arr", "tt", "tags", "free"]
    assert result.gpu_columns == ["id", "s"]


def test_plan_sends_only_exact_type_pairs_to_kernels():
    columns = [
        col("i", 23, "integer"),
        col("n", 1700, "numeric(50,2)", typmod(50, 2)),
        col("u", 2950, "uuid"),
        col("r", 3904, "int4range"),
    ]
    plans = plan_columns(columns, arrow_schema(columns))
    assert [p.kernel for p in plans] == ["swap", K_CPU, "uuid", K_CPU]  # decimal256 and ranges: CPU
    assert "decimal256" in plans[1].reason
