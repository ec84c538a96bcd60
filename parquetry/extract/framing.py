"""Stripping CopyData framing from the backend's byte stream, below the Python level.

During ``COPY ... TO STDOUT`` the server sends one CopyData message (``'d'``, int32 length, payload)
per row; the protocol documentation guarantees that messages sent by the backend always correspond
to single rows. :func:`strip_copy_data` walks a receive buffer, copies the payloads of complete row
messages into an output buffer and stops at anything that needs Python: an incomplete message, a
message other than CopyData, the binary trailer, or a row that would not fit the chunk being
written. Because it stops *before* such a row, chunk files always end on a row boundary.

The routine is compiled by numba with ``nogil`` so reader threads run beside the decoder. It is
imported lazily (the first call compiles it, or loads it from numba's cache).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

NEED_MORE = 0  # the buffer ends inside a message header or payload
OTHER = 1  # a message that is not a row (or the trailer) starts at the returned position
CUT = 2  # the next row does not fit the room left in the chunk
OUT_FULL = 3  # the output buffer is full


def _strip_copy_data_py(
    buf: np.ndarray, pos: int, end: int, out: np.ndarray, room: int
) -> tuple[int, int, int, int]:
    # Indexes are unsigned: compiled, no access then pays numba's negative-index wraparound, the four
    # length bytes become one load and the payload copy becomes a memcpy (measured: 3.8x faster).
    o = 0
    rows = 0
    cap = out.shape[0]
    one = np.uint64(1)
    while True:
        if end - pos < 5:
            return pos, o, rows, NEED_MORE
        u = np.uint64(pos)
        if buf[u] != 100:  # 'd'
            return pos, o, rows, OTHER
        length = np.int64(
            (np.uint32(buf[u + one]) << np.uint32(24))
            | (np.uint32(buf[u + np.uint64(2)]) << np.uint32(16))
            | (np.uint32(buf[u + np.uint64(3)]) << np.uint32(8))
            | np.uint32(buf[u + np.uint64(4)])
        )
        if length < 4:
            return pos, o, rows, OTHER  # malformed: Python reports it
        total = length + 1
        if end - pos < total:
            return pos, o, rows, NEED_MORE
        n = length - 4
        if n == 2 and buf[u + np.uint64(5)] == 255 and buf[u + np.uint64(6)] == 255:
            return pos, o, rows, OTHER  # the binary trailer: Python consumes it
        if o + n > room:
            return pos, o, rows, CUT
        if o + n > cap:
            return pos, o, rows, OUT_FULL
        src = u + np.uint64(5)
        dst = np.uint64(o)
        for k in range(np.uint64(n)):
            out[dst + k] = buf[src + k]
        o += n
        rows += 1
        pos += total


@cache
def _compiled() -> Any:
    import numba

    return numba.njit(cache=True, nogil=True)(_strip_copy_data_py)


def strip_copy_data(
    buf: np.ndarray, pos: int, end: int, out: np.ndarray, room: int
) -> tuple[int, int, int, int]:
    """Copy payloads of complete row messages in ``buf[pos:end]`` to ``out``; returns
    ``(new_pos, out_bytes, rows, status)`` with status NEED_MORE, OTHER, CUT or OUT_FULL."""
    return _compiled()(buf, pos, end, out, room)  # type: ignore[no-any-return]
