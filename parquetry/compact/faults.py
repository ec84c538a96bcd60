"""Named points where a test can stop the compactor dead, to prove that a crash there loses nothing.

Set ``PARQUETRY_COMPACT_FAULT`` to a point's name and the process SIGKILLs itself on reaching it: no
``finally`` block, no lease release, exactly like a machine losing power.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "PARQUETRY_COMPACT_FAULT"
POINTS = ("after_outputs", "after_commit")


def fault_point(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}")
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
