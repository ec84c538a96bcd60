"""The GPU of a step process: availability (with the reason when there is none) and its RMM pool.

Constructing the resource touches nothing: the pool is created on first use in the step process
(:meth:`GpuResource.ensure_pool`), never at import or construction, and released when the step ends.
The engine logic (probe, pool) lives in :mod:`parquetry.gpu`; this class is configuration and lifecycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from parquetry.gpu.engine import Availability, EngineInfo


class GpuResource(dg.ConfigurableResource):
    """One CUDA device with an RMM pool shared by cuDF, CuPy and numba.

    Pool sizes are bytes (``"8GiB"``, ``8589934592``) or a fraction of the free device memory (``"0.5"``).
    ``engine``: ``auto`` (GPU when usable, else CPU, reason reported), ``gpu`` (fail if unusable) or ``cpu``.
    """

    device: int = Field(default=0, description="CUDA device ordinal")
    initial_pool_size: str = Field(default="0.5", description="bytes, '8GiB', or a fraction of free memory")
    maximum_pool_size: str | None = Field(default="0.9", description="bytes, '8GiB', fraction, or null")
    engine: str = Field(default="auto", description="auto | gpu | cpu")
    require_cudf: bool = Field(
        default=True, description="the GPU engine also needs cuDF (GPU Parquet writer)"
    )
    writer: str = Field(default="pyarrow", description="Parquet writer on the GPU engine: pyarrow | cudf")

    _pool: Any = PrivateAttr(default=None)

    def available(self) -> Availability:
        """Truthy when the GPU engine can run here; its ``reason`` says why not otherwise."""
        from parquetry.gpu.engine import Availability, select_engine

        if self.engine == "cpu":
            return Availability(False, "engine set to cpu")
        info = select_engine("auto", require_cudf=self.require_cudf, device=self.device)
        return Availability(info.name == "gpu", info.reason, dict(info.details))

    def select_engine(self) -> EngineInfo:
        """The engine to run (raises ``GpuUnavailableError`` when ``engine='gpu'`` cannot be met)."""
        from parquetry.gpu.engine import select_engine

        return select_engine(self.engine, require_cudf=self.require_cudf, device=self.device)

    def ensure_pool(self) -> dict[str, Any]:
        """Create the RMM pool now (first call in this process) and return device/pool metadata."""
        if self._pool is None:
            from parquetry.gpu.pool import RmmPool

            self._pool = RmmPool(self.device, _size(self.initial_pool_size), _size(self.maximum_pool_size))
        return self._pool.start()

    def metadata(self) -> dict[str, Any]:
        """Device name, memory and pool use, for asset metadata (no pool is created by asking)."""
        out: dict[str, Any] = {}
        if self._pool is not None and self._pool.started:
            out.update(self._pool.stats())
        return out

    def consumer_factory(self):
        """The extraction pipeline's GPU consumer factory, with the pool started first."""
        from parquetry.gpu.consumer import gpu_consumer_factory

        self.ensure_pool()
        return gpu_consumer_factory(writer=self.writer)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _size(value: str | None) -> float | str | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value
