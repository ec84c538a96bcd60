"""Which engine decodes: the GPU when one is really there (and cuDF where required), else the CPU.

The choice is always stated: :func:`select_engine` returns the engine *and* the reason, and callers
put both in their metadata. An explicit ``prefer="gpu"`` that cannot be met raises instead of falling
back, so a run that was asked for the GPU never quietly runs somewhere else. numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM``) never counts as a GPU here.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

ENGINES = ("auto", "gpu", "cpu")


class GpuUnavailableError(RuntimeError):
    """The GPU engine was requested explicitly but cannot run; the message says why."""


@dataclass(frozen=True)
class Availability:
    """A yes/no with its reason; falsy when not available."""

    ok: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class EngineInfo:
    """The engine that runs (``gpu`` or ``cpu``), why, and for the GPU which Parquet writer it uses."""

    name: str
    reason: str
    writer: str = "pyarrow"  # "cudf" (GPU Parquet encoding) or "pyarrow"
    details: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "engine_reason": self.reason,
            "parquet_writer": self.writer,
            **self.details,
        }


def simulator_enabled() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def probe_gpu(device: int = 0) -> Availability:
    """Is there a real CUDA device numba can use? Never raises.

    Creates no CUDA context, so an RMM pool can still become numba's allocator afterwards.
    """
    if simulator_enabled():
        return Availability(False, "numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM); it is not a GPU")
    try:
        from numba import cuda
    except Exception as exc:
        return Availability(False, f"numba.cuda cannot be imported: {exc}")
    try:
        if not cuda.is_available():
            return Availability(False, "no CUDA driver or device visible to numba")
        count = len(cuda.gpus)
        if device >= count:
            return Availability(False, f"device {device} requested but only {count} GPU(s) visible")
        dev = cuda.gpus[device]  # attribute reads go to the driver; no CUDA context is created here
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        cc = ".".join(map(str, dev.compute_capability))
        details = {"gpu_name": name, "gpu_compute_capability": cc, "gpu_device": device}
        return Availability(True, f"{name} (device {device}, compute {cc})", details)
    except Exception as exc:
        return Availability(False, f"CUDA device {device} unusable: {exc}")


def probe_cudf() -> Availability:
    """Is cuDF importable (without importing it when it is not installed)?"""
    if importlib.util.find_spec("cudf") is None:
        return Availability(False, "cuDF is not installed (pip install cudf-cu13)")
    try:
        import cudf

        return Availability(True, f"cuDF {cudf.__version__}", {"cudf_version": cudf.__version__})
    except Exception as exc:
        return Availability(False, f"cuDF cannot be imported: {exc}")


def select_engine(prefer: str = "auto", *, require_cudf: bool = False, device: int = 0) -> EngineInfo:
    """Pick the engine. ``auto``: GPU when usable, else CPU with the reason. ``gpu``: GPU or raise.

    With ``require_cudf`` the GPU engine also needs cuDF; without it, the GPU decodes and pyarrow
    writes when cuDF is missing (the ``writer`` field says which).
    """
    if prefer not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {prefer!r}")
    if prefer == "cpu":
        return EngineInfo("cpu", "CPU engine requested")
    gpu = probe_gpu(device)
    cudf = probe_cudf() if gpu else Availability(False, "not checked: no GPU")
    if gpu and (cudf or not require_cudf):
        writer = "cudf" if cudf else "pyarrow"
        reason = f"GPU {gpu.reason}; Parquet written by {writer}" + ("" if cudf else f" ({cudf.reason})")
        return EngineInfo("gpu", reason, writer, dict(gpu.details))
    why = gpu.reason if not gpu else cudf.reason
    if prefer == "gpu":
        raise GpuUnavailableError(f"GPU engine requested but unavailable: {why}")
    return EngineInfo("cpu", f"GPU not used: {why}")
