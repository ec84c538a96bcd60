"""A staging file written and read through one shared memory map that lives as long as the file.

Staging a chunk with ``write()`` and decoding it through a fresh ``mmap`` costs the kernel a copy into
the page cache, page-cache bookkeeping for every 4 KiB written, and a map, populate and unmap per
chunk: measured on the lineitem-like table of ``benchmarks/pg_to_parquet.py`` (2 cores), about 14% of
the run's client CPU. A :class:`MappedFile` is mapped once, shared and writable: the reader strips
the COPY framing straight into the file's pages, the decoder reads the same pages, and when the file
is recycled for a later chunk its pages are already allocated and mapped, so the kernel does no
per-chunk work at all beyond the final cut to size.

The file is always exactly what has been written (it is cut to size when a chunk is finished), so it
can be read like any other file (the GPU engine reads it with kvikio, and ``COPY ... FROM`` accepts it).
Space is allocated with ``posix_fallocate`` *before* any byte is written through the map: a full disk
is an ``OSError`` naming the file, never a ``SIGBUS``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path

import numpy as np

# Space is allocated in steps of at least this much (rounded to pages), usually what the reader asks for.
# Small on purpose: the cut frees what was allocated past a chunk's end, and the next chunk written into
# that (recycled) file allocates and zeroes it again. Measured on the lineitem-like table of
# benchmarks/pg_to_parquet.py: with 4 MiB steps a 6 M-row run allocated 340 MiB and freed 256 MiB again
# (0.3 CPU-s in fallocate, populate and truncate); with 64 KiB steps 84 MiB and 19 MiB (0.09 CPU-s).
STEP = 64 << 10
_PAGE = mmap.PAGESIZE
_POPULATE_WRITE = 23  # MADV_POPULATE_WRITE (Linux 5.14+): map a range's pages in one call


class MappedFile:
    """A file of at most ``capacity`` bytes behind a writable shared map (beyond it: ``pwrite``).

    ``size`` is the file's length. Bytes are written with :meth:`write` or through :meth:`window`
    and :meth:`grow`; :meth:`cut` makes the file exactly ``n`` bytes long. Not thread-safe: one
    writer at a time, then readers once the writer is done (the staging board hands it over).
    """

    def __init__(self, path: Path, capacity: int):
        self.path = path
        self.capacity = max(_PAGE, -(-capacity // _PAGE) * _PAGE)
        self.size = 0  # file length; bytes [0, size) are allocated
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            # The map must cover ``capacity`` from the start: stretch the (empty, sparse) file just long
            # enough to map it, then cut it back. Nothing touches the map past ``size``.
            os.ftruncate(self._fd, self.capacity)
            self._map = mmap.mmap(self._fd, self.capacity, flags=mmap.MAP_SHARED)
            os.ftruncate(self._fd, 0)
        except BaseException:
            os.close(self._fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        self.array = np.frombuffer(self._map, dtype=np.uint8)

    def _allocate(self, end: int) -> None:
        """Make bytes ``[0, end)`` part of the file, with space allocated, before anything writes there."""
        if end <= self.size:
            return
        end = min(max(end, self.size + STEP), max(end, self.capacity))
        end = -(-end // _PAGE) * _PAGE
        start = self.size
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(self._fd, start, end - start)
            else:  # no way to reserve space here: the file is extended sparse
                os.ftruncate(self._fd, end)
        except OSError as exc:
            reason = f"cannot allocate {end - start} bytes in {self.path}: {exc.strerror}"
            raise OSError(exc.errno, reason) from exc
        self.size = end
        mapped_end = min(end, self.capacity)
        first = start - start % _PAGE
        if mapped_end > first and hasattr(self._map, "madvise"):
            with contextlib.suppress(OSError, ValueError):  # an older kernel: pages fault in one by one
                self._map.madvise(_POPULATE_WRITE, first, mapped_end - first)

    def window(self, offset: int, nbytes: int) -> np.ndarray:
        """A writable view of ``[offset, offset + nbytes)`` with space allocated (within ``capacity``)."""
        end = min(offset + nbytes, self.capacity)
        self._allocate(end)
        return self.array[offset:end]

    def write(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Write ``data`` at ``offset``; what lies past ``capacity`` goes through ``pwrite``."""
        view = memoryview(data).cast("B")
        n = len(view)
        self._allocate(offset + n)
        inside = max(0, min(n, self.capacity - offset))
        if inside:
            self.array[offset : offset + inside] = np.frombuffer(view[:inside], dtype=np.uint8)
        rest = view[inside:]
        pos = offset + inside
        while rest:
            written = os.pwrite(self._fd, rest, pos)
            rest = rest[written:]
            pos += written

    def cut(self, size: int) -> None:
        """Make the file exactly ``size`` bytes long (what was allocated past it is freed)."""
        if size != self.size:
            os.ftruncate(self._fd, size)
            self.size = size

    def view(self, size: int) -> np.ndarray | None:
        """A read-only view of the first ``size`` bytes, or None when they do not all lie in the map."""
        if size > self.capacity:
            return None
        view = self.array[:size]
        view.flags.writeable = False
        return view

    def rename(self, path: Path) -> None:
        os.rename(self.path, path)
        self.path = path

    def close(self, unlink: bool = True) -> None:
        """Unmap (once no view is left; else when the last one goes), close and optionally delete."""
        self.array = np.empty(0, dtype=np.uint8)
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
