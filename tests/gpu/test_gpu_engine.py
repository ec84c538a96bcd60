"""Engine choice always says which engine runs and why; the GPU resource creates nothing until used."""

from __future__ import annotations

import importlib.util
import sys

import dagster as dg
import pytest

from parquetry.gpu.engine import GpuUnavailableError, probe_cudf, select_engine
from parquetry.gpu.pool import parse_size
from resources.gpu import GpuResource


def test_cpu_requested_is_cpu():
    info = select_engine("cpu")
    assert (info.name, info.reason) == ("cpu", "CPU engine requested")


def test_auto_without_a_gpu_runs_on_the_cpu_and_says_why():
    info = select_engine("auto")
    assert info.name == "cpu"
    assert info.reason.startswith("GPU not used: ")
    assert any(word in info.reason for word in ("simulator", "CUDA", "numba"))
    assert info.metadata()["engine"] == "cpu"


def test_gpu_requested_without_a_gpu_raises_instead_of_falling_back():
    with pytest.raises(GpuUnavailableError, match="GPU engine requested but unavailable"):
        select_engine("gpu")


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of"):
        select_engine("tpu")


def test_cudf_probe_states_its_finding():
    installed = importlib.util.find_spec("cudf") is not None
    cudf = probe_cudf()
    assert bool(cudf) == installed or "cannot be imported" in cudf.reason
    if not installed:
        assert "cuDF is not installed" in cudf.reason and "cudf" not in sys.modules


@pytest.mark.parametrize(
    ("spec", "free", "expected"),
    [
        ("0.5", 1 << 30, 1 << 29),
        (0.25, 1000, 256),
        ("8GiB", 0, 8 << 30),
        ("512MB", 0, 512 * 10**6),
        (1_000_000, 0, 999_936),
        (None, 1, None),
    ],
)
def test_pool_sizes_are_bytes_or_fractions_of_free_memory(spec, free, expected):
    assert parse_size(spec, free) == expected


@pytest.mark.parametrize("spec", ["-1", "lots", "3 parsecs", 0])
def test_bad_pool_sizes_are_refused(spec):
    with pytest.raises(ValueError, match="pool size"):
        parse_size(spec, 1 << 30)


@pytest.mark.slow
def test_resource_reports_the_engine_and_creates_no_pool():
    @dg.asset
    def which_engine(gpu: GpuResource) -> dg.MaterializeResult:
        available = gpu.available()
        engine = gpu.select_engine()
        return dg.MaterializeResult(
            metadata={
                "gpu_available": available.ok,
                "reason": available.reason,
                **engine.metadata(),
                **gpu.metadata(),
            }
        )

    result = dg.materialize([which_engine], resources={"gpu": GpuResource(initial_pool_size="1GiB")})
    assert result.success
    meta = result.asset_materializations_for_node("which_engine")[0].metadata
    assert meta["gpu_available"].value is False
    assert meta["engine"].value == "cpu"
    assert meta["reason"].value  # the reason is always stated
    assert "pool_bytes" not in meta and "rmm" not in sys.modules
