"""Property: whatever the dataset, compaction keeps exactly its rows, in their order, with every value.

Hypothesis draws the columns (every Arrow type a Parquetry dataset may hold, nested ones included,
with edge values: NaN, -0.0, empty strings, all-null columns), the files and their row groups, a
column added part-way (older rows read as nulls), the policy (so some files are healthy and stay, some
row groups are byte-copied) and the compactor's settings. The oracle is pyarrow reading the input files
directly: the live files after compaction must hold the same rows, and the rows of each file must keep
the inputs' order.
"""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry.catalog import Catalog, FragmentationPolicy
from parquetry.compact import CompactionSettings, Compactor
from parquetry.storage import ParquetOptions, Storage
from parquetry.testing.arrow_compare import same_array

pytestmark = pytest.mark.postgres

DIGITS = decimal.Context(prec=80)  # Decimal arithmetic keeps 28 digits by default

KINDS = (
    "int8",
    "uint16",
    "int32",
    "uint64",
    "float32",
    "float64",
    "bool",
    "string",
    "large_string",
    "binary",
    "fixed3",
    "decimal9",
    "decimal38",
    "decimal256",
    "date32",
    "timestamp_ms",
    "timestamp_ns_tz",
    "time64",
    "duration",
    "list_int",
    "struct",
    "dict_string",
    "float16",
    "map",
    "large_binary",
    "timestamp_s",
    "null",
    "list_decimal256",
)


def column(kind: str, rows: int, rng: np.random.Generator, null_rate: float) -> pa.Array:
    """``rows`` values of ``kind`` with edge values mixed in and about ``null_rate`` nulls."""
    mask = rng.random(rows) < null_rate
    ints = rng.integers(-(2**62), 2**62, rows, dtype=np.int64)
    small = rng.integers(0, 4, rows)  # picks an edge value now and then

    def masked(values: list) -> list:
        return [None if m else v for v, m in zip(values, mask, strict=True)]

    if kind == "int8":
        return pa.array(masked([int(x % 256) - 128 for x in ints]), pa.int8())
    if kind == "uint16":
        return pa.array(masked([int(x % 65536) for x in ints]), pa.uint16())
    if kind == "int32":
        return pa.array(masked([int(x % 2**32) - 2**31 for x in ints]), pa.int32())
    if kind == "uint64":
        return pa.array(
            masked([int(x) + 2**63 if s == 0 else int(x % 1000) for x, s in zip(ints, small, strict=True)]),
            pa.uint64(),
        )
    if kind in ("float32", "float64"):
        edges = [float("nan"), -0.0, 0.0, float("inf"), float("-inf")]
        values = [edges[int(x % 5)] if s == 0 else float(x) / 3.0 for x, s in zip(ints, small, strict=True)]
        return pa.array(masked(values), pa.float32() if kind == "float32" else pa.float64())
    if kind == "bool":
        return pa.array(masked([bool(x & 1) for x in ints]), pa.bool_())
    if kind in ("string", "large_string", "dict_string"):
        words = ["", "a", "é€😀", "x" * 40, "PAR1", "\x00nul"]
        values = [words[int(x % 6)] if s == 0 else f"v{x % 997}" for x, s in zip(ints, small, strict=True)]
        if kind == "dict_string":
            return pa.array(masked(values), pa.string()).dictionary_encode()
        return pa.array(masked(values), pa.large_string() if kind == "large_string" else pa.string())
    if kind == "binary":
        return pa.array(
            masked([int(x).to_bytes(8, "little", signed=True)[: int(x % 9)] for x in ints]), pa.binary()
        )
    if kind == "fixed3":
        return pa.array(masked([int(x).to_bytes(8, "little", signed=True)[:3] for x in ints]), pa.binary(3))
    if kind == "decimal9":
        values = [decimal.Decimal(int(x % 10**9) - 5 * 10**8).scaleb(-2, DIGITS) for x in ints]
        return pa.array(masked(values), pa.decimal128(9, 2))
    if kind in ("decimal38", "decimal256"):
        scale = 10**8 if kind == "decimal38" else 10**30  # 27 and 49 digits at most
        values = [decimal.Decimal(int(x) * scale + int(x % 7)).scaleb(-10, DIGITS) for x in ints]
        t = pa.decimal128(38, 10) if kind == "decimal38" else pa.decimal256(60, 10)
        return pa.array(masked(values), t)
    if kind == "date32":
        return pa.array(masked([int(x % 2_000_000) - 1_000_000 for x in ints]), pa.int32()).cast(pa.date32())
    if kind == "timestamp_ms":
        return pa.array(masked([int(x % 10**15) for x in ints]), pa.timestamp("ms"))
    if kind == "timestamp_ns_tz":
        return pa.array(masked([int(x) for x in ints]), pa.timestamp("ns", tz="UTC"))
    if kind == "time64":
        return pa.array(masked([int(x % 86_400_000_000) for x in ints]), pa.time64("us"))
    if kind == "duration":
        return pa.array(masked([int(x) for x in ints]), pa.duration("us"))
    if kind == "list_int":
        values = [
            None if s == 0 and x & 2 else [int(x % 100), None, int(x % 7)][: int(x % 4)]
            for x, s in zip(ints, small, strict=True)
        ]
        return pa.array(masked(values), pa.list_(pa.int32()))
    if kind == "struct":
        values = [
            {"a": int(x % 1000), "b": None if s == 0 else f"s{x % 13}"}
            for x, s in zip(ints, small, strict=True)
        ]
        return pa.array(masked(values), pa.struct([("a", pa.int32()), ("b", pa.string())]))
    if kind == "float16":
        halves = [
            float(x % 2000) / 8 if s else [float("nan"), -0.0, float("inf"), 0.0][int(x % 4)]
            for x, s in zip(ints, small, strict=True)
        ]
        return pa.array(masked(halves), pa.float32()).cast(pa.float16())
    if kind == "map":
        values = [[(f"k{x % 5}", int(x % 100))][: int(x % 2)] for x in ints]
        return pa.array(masked(values), pa.map_(pa.string(), pa.int64()))
    if kind == "large_binary":
        return pa.array(
            masked([int(x).to_bytes(8, "big", signed=True)[: int(x % 9)] for x in ints]), pa.large_binary()
        )
    if kind == "timestamp_s":
        return pa.array(masked([int(x % 10**11) for x in ints]), pa.timestamp("s"))
    if kind == "null":
        return pa.nulls(rows)
    if kind == "list_decimal256":
        values = [[decimal.Decimal(int(x)).scaleb(-3, DIGITS)][: int(x % 2)] for x in ints]
        return pa.array(masked(values), pa.list_(pa.decimal256(45, 3)))
    raise AssertionError(kind)


@st.composite
def datasets(draw: st.DrawFn) -> dict:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    files = draw(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 400)), min_size=1, max_size=7))
    added = draw(st.none() | st.sampled_from(KINDS))
    added_from = draw(st.integers(0, len(files) - 1)) if added else len(files)
    return {
        "kinds": kinds,
        "files": files,  # (rows, row group rows)
        "added": added,
        "added_from": added_from,
        "null_rates": draw(st.lists(st.sampled_from([0.0, 0.1, 1.0]), min_size=6, max_size=6)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "healthy_rows": draw(st.sampled_from([50, 150, 10**9])),  # row-group size the policy calls healthy
        "row_group_rows": draw(st.integers(20, 500)),
        "target_file_rows": draw(st.integers(20, 1500)),
        "copy_row_groups": draw(st.booleans()),
        "force": draw(st.booleans()),
        "encode_threads": draw(st.sampled_from([1, 2])),
    }


def build_tables(spec: dict) -> list[pa.Table]:
    rng = np.random.default_rng(spec["seed"])
    tables, seq = [], 0
    for n, (rows, _) in enumerate(spec["files"]):
        columns = {"seq": pa.array(np.arange(seq, seq + rows, dtype=np.int64))}
        for i, kind in enumerate(spec["kinds"]):
            columns[f"c{i}_{kind}"] = column(kind, rows, rng, spec["null_rates"][i])
        if spec["added"] and n >= spec["added_from"]:
            columns[f"added_{spec['added']}"] = column(spec["added"], rows, rng, spec["null_rates"][5])
        tables.append(pa.table(columns))
        seq += rows
    return tables


def read(storage: Storage, path: str) -> pa.Table:
    with storage.fs.open_input_file(path) as fh:
        return pq.read_table(fh)


def compact_and_check(
    pg_dsn: str, storage: Storage, spec: dict, storage_factory: Callable[[str], Storage] | None = None
) -> None:
    """Write the drawn dataset to ``storage``, register it, compact it, compare it with the inputs."""
    policy = FragmentationPolicy(
        small_file_bytes=1, min_small_files=2, min_row_groups=2, min_mean_row_group_rows=spec["healthy_rows"]
    )
    catalog = Catalog(pg_dsn, policy=policy)
    catalog.migrate()
    dataset = f"prop-{uuid.uuid4().hex[:12]}"
    tables = build_tables(spec)
    written = [
        storage.write_parquet(
            storage.path(f"part-{n:03d}.parquet"), t, options=ParquetOptions(row_group_rows=rg)
        )
        for n, (t, (_, rg)) in enumerate(zip(tables, spec["files"], strict=True))
    ]
    merged = pa.unify_schemas([t.schema for t in tables])
    catalog.register_files(dataset, storage.root, written, merged)
    expected = pa.concat_tables([read(storage, w.path) for w in written], promote_options="default")
    expected = expected.select(merged.names)
    settings_ = CompactionSettings(
        row_group_rows=spec["row_group_rows"],
        target_file_rows=spec["target_file_rows"],
        copy_row_groups=spec["copy_row_groups"],
        force=spec["force"],
        encode_threads=spec["encode_threads"],
        lease_ttl_s=60,
    )

    result = Compactor(catalog, settings_, storage_factory=storage_factory).run(dataset)

    assert result.status in ("compacted", "nothing_to_do")
    if result.status == "compacted":
        assert result.verification["input"] == result.verification["output"]
    live = [read(storage, f.path) for f in catalog.live_files(dataset)]
    for table in live:
        seq = table.column("seq").to_numpy()
        assert (np.diff(seq) > 0).all(), "rows keep the inputs' order within every file"
    if not live:  # every input was empty: nothing is left, and nothing was lost
        assert expected.num_rows == 0
        return
    got = pa.concat_tables(live, promote_options="default").select(merged.names)
    got = got.take(np.argsort(got.column("seq").to_numpy(), kind="stable"))
    assert got.num_rows == expected.num_rows
    for name in merged.names:
        want, have = expected.column(name), got.column(name)
        if pa.types.is_dictionary(want.type):  # read back dense or as a dictionary: same values
            want = want.cast(want.type.value_type)
        if pa.types.is_dictionary(have.type):
            have = have.cast(have.type.value_type)
        assert same_array(have, want), f"column {name} differs after compaction ({spec})"


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=30, **SETTINGS)
@given(spec=datasets())
def test_compaction_keeps_every_row_and_value_in_order(pg_dsn: str, tmp_path: Path, spec: dict) -> None:
    compact_and_check(pg_dsn, Storage(str(tmp_path / uuid.uuid4().hex)), spec)


@pytest.mark.slow
@settings(max_examples=8, **SETTINGS)
@given(spec=datasets())
def test_compaction_on_an_object_store_keeps_every_row_and_value(
    pg_dsn: str, s3_endpoint: str, spec: dict
) -> None:
    options = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": s3_endpoint}}

    def storage_for(uri: str) -> Storage:
        return Storage(uri, storage_options=options)

    compact_and_check(pg_dsn, storage_for(f"s3://lake/prop-{uuid.uuid4().hex[:12]}"), spec, storage_for)
