"""The RMM pool of one step process: created on first use, shared by cuDF, CuPy and numba, closed at the end.

Sizes are bytes (``8589934592``, ``"8GiB"``, ``"512MB"``) or a fraction of the device's *free* memory
when the pool is created (``0.5``, ``"0.5"``). rmm, CuPy and numba are imported inside the methods,
never at import time. Numba's external memory manager can only be set before numba creates its CUDA
context, so :meth:`RmmPool.start` must run before the first kernel launch of the process (the
decoder calls it through ``GpuResource``); if numba already has a context, numba keeps its own
allocator and ``numba_on_rmm`` in :meth:`RmmPool.stats` says so.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field
from typing import Any

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: int | float | str | None, free_bytes: int) -> int | None:
    """Bytes for a size spec; a number in (0, 1] is that fraction of ``free_bytes``. Rounded to 256 B."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        m = re.fullmatch(r"([0-9]*\.?[0-9]+)([a-z]*)", text)
        if not m or m.group(2) not in _UNITS:
            raise ValueError(f"pool size {value!r}: use bytes, a size like '8GiB', or a fraction like 0.5")
        number, unit = float(m.group(1)), m.group(2)
        value = number * _UNITS[unit] if unit else number
    if value <= 0:
        raise ValueError(f"pool size must be positive, got {value!r}")
    size = int(value * free_bytes) if value <= 1 else int(value)
    return max(256, size // 256 * 256)


@dataclass
class RmmPool:
    """One RMM pool on ``device``; ``start`` is idempotent, ``close`` restores plain CUDA allocations."""

    device: int = 0
    initial: int | float | str | None = 0.5
    maximum: int | float | str | None = 0.9
    _started: bool = False
    _info: dict[str, Any] = field(default_factory=dict)

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> dict[str, Any]:
        if self._started:
            return self.stats()
        import rmm

        _select_device(self.device)
        free, total = rmm.mr.available_device_memory()
        initial = parse_size(self.initial, free)
        maximum = parse_size(self.maximum, free)
        if initial is not None and maximum is not None and initial > maximum:
            raise ValueError(f"initial pool size {initial} exceeds the maximum {maximum}")
        rmm.reinitialize(
            pool_allocator=True, initial_pool_size=initial, maximum_pool_size=maximum, devices=self.device
        )
        numba_on_rmm = _use_rmm_for_numba()
        cupy_on_rmm = _use_rmm_for_cupy()
        self._started = True
        self._info = {
            "gpu_device": self.device,
            "gpu_memory_total": int(total),
            "gpu_memory_free_at_start": int(free),
            "pool_initial_bytes": initial,
            "pool_maximum_bytes": maximum,
            "numba_on_rmm": numba_on_rmm,
            "cupy_on_rmm": cupy_on_rmm,
        }
        return self.stats()

    def stats(self) -> dict[str, Any]:
        """Device and pool facts for asset metadata (pool size and use where RMM reports them)."""
        info = dict(self._info)
        if not self._started:
            return info
        import rmm

        mr = rmm.mr.get_current_device_resource()
        for name in ("pool_size", "get_pool_size"):
            fn = getattr(mr, name, None)
            if callable(fn):
                info["pool_bytes"] = int(fn())
                break
        free, _total = rmm.mr.available_device_memory()
        info["gpu_memory_free"] = int(free)
        return info

    def close(self) -> None:
        """Give the pool's memory back: plain CUDA allocations from here on."""
        if not self._started:
            return
        import rmm

        rmm.mr.set_current_device_resource(rmm.mr.CudaMemoryResource())
        if self._info.get("cupy_on_rmm"):
            import cupy

            cupy.cuda.set_allocator(None)
        self._started = False
        gc.collect()


def _select_device(device: int) -> None:
    """Make ``device`` current for the free-memory probe (CuPy when present; device 0 needs nothing)."""
    if device == 0:
        return
    import cupy

    cupy.cuda.Device(device).use()


def _use_rmm_for_numba() -> bool:
    try:
        from numba import cuda
        from rmm.allocators.numba import RMMNumbaManager

        cuda.set_memory_manager(RMMNumbaManager)
        return True
    except Exception:
        return False


def _use_rmm_for_cupy() -> bool:
    try:
        import cupy
        from rmm.allocators.cupy import rmm_cupy_allocator

        cupy.cuda.set_allocator(rmm_cupy_allocator)
        return True
    except ImportError:
        return False
