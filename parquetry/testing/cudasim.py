"""Run numba-cuda kernels under numba's CUDA simulator in tests, on machines without a GPU.

numba decides between the real CUDA target and the simulator once, when ``numba.cuda`` is first
imported (reading ``NUMBA_ENABLE_CUDASIM``). :func:`activate` switches the simulator on if that has not
happened yet in this process. When ``numba.cuda`` was already imported for real hardware (another
test module got there first), a test module cannot switch, so it runs itself in a child pytest with
the variable set: :func:`run_module_in_subprocess`. Either way every test runs exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = "NUMBA_ENABLE_CUDASIM"


def active() -> bool:
    """True when ``numba.cuda`` in this process is the simulator (numba's own or numba-cuda's)."""
    if "numba.cuda" not in sys.modules:
        return False
    from numba import cuda

    try:
        return type(cuda.device_array(1)).__name__ == "FakeCUDAArray"
    except Exception:  # real CUDA target without a usable driver
        return False


def activate() -> bool:
    """Make ``numba.cuda`` the simulator in this process if still possible; True when it is."""
    if "numba.cuda" in sys.modules:
        return active()
    os.environ[ENV] = "1"
    if "numba" in sys.modules or "numba.core.config" in sys.modules:
        from numba.core import config

        config.reload_config()
    import numba.cuda  # noqa: F401  (binds the simulator now)

    return active()


def run_module_in_subprocess(module_file: str | Path, timeout: float = 600) -> None:
    """Run one test module in a child pytest with the simulator on; raise with its output if it fails."""
    env = dict(os.environ, **{ENV: "1"})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"simulator run of {module_file} failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
        )


def decode_both(data: bytes, columns, options=None, source: str = "chunk-under-test"):
    """(GPU result, GPU table, CPU table) for one stream, for tests that compare the two decoders."""
    from parquetry.gpu.decode import decode_device, to_arrow
    from parquetry.pgcopy.decode import decode_copy_binary

    result = decode_device(data, columns, source, options)
    return result, to_arrow(result), decode_copy_binary(data, columns, source)


def errors_of_both(data: bytes, columns, options=None, source: str = "chunk-under-test"):
    """(GPU exception, CPU exception) for a stream both decoders must refuse; fails if either accepts it."""
    from parquetry.gpu.decode import decode_chunk_gpu
    from parquetry.pgcopy.decode import decode_copy_binary

    found = []
    for decode in (
        lambda: decode_chunk_gpu(data, columns, source, options),
        lambda: decode_copy_binary(data, columns, source),
    ):
        try:
            decode()
        except Exception as exc:
            found.append(exc)
        else:
            found.append(None)
    gpu, cpu = found
    if gpu is None or cpu is None:
        raise AssertionError(f"expected both decoders to refuse the stream; gpu={gpu!r} cpu={cpu!r}")
    return gpu, cpu


SUBPROCESS_TEST = "test_module_runs_in_simulator_subprocess"


@pytest.fixture(autouse=True)
def simulator_or_subprocess(request):
    """Autouse in simulator test modules (import it there): skips a test when this process cannot run
    the simulator, because that module's ``test_module_runs_in_simulator_subprocess`` runs it instead."""
    if request.node.originalname != SUBPROCESS_TEST and not active():
        pytest.skip(
            "numba.cuda is bound to hardware in this process; the module runs in a simulator subprocess"
        )
