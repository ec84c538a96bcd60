"""Reusable batch buffers: the decoder's output memory, handed back once Arrow lets go of it.

Every decoded batch needs fresh column buffers (its arrays live on while later batches are decoded
and earlier ones are encoded). Taken from the allocator each time, blocks this large come straight
from the kernel and return to it when the batch is written, so every batch faulted in and zeroed its
pages again: measured on the lineitem-like table of ``benchmarks/pg_to_parquet.py`` (2 cores), the
kernel clearing pages was two thirds of the decoding thread's CPU, more than decoding itself.

A :class:`BufferPool` keeps the blocks instead. The decoder takes blocks for a batch, and at emit
time wraps them in one :class:`Lease` that every Arrow buffer of the batch holds as its base
(``pa.foreign_buffer``). When the last Arrow array of the batch is freed, wherever that happens
(usually the Parquet writer's thread, after the row group is written), the lease returns its blocks
to the pool and the next batch writes into pages that are already mapped.

Nothing is reused while anything can still read it: a block goes back only when no Arrow buffer
refers to it any more. Memory stays bounded: the pool holds at most ``max_free_bytes`` of idle blocks
(the rest go back to the allocator), blocks in use are bounded by the batches the pipeline keeps in
flight, and a block that no request has fitted for ``idle_takes`` takes goes back to the allocator.
That last rule keeps the pool at its working set over a long run: batches at the ends of chunks are
smaller than the rest and leave blocks of odd sizes behind, and without it the idle blocks grew from
170 to 255 MB over a 24 M-row extraction of the benchmark's table, where the batches need the same
blocks throughout.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Hashable, Iterable

import numpy as np
import pyarrow as pa

_ALIGN = 64
_ROUND = 1 << 16  # block sizes are rounded up to 64 KiB so batches of similar size share blocks
IDLE_TAKES = 256  # a free block no take has fitted in this many takes goes back (about 60 batches)


class BufferPool:
    """Idle uint8 blocks by size; thread-safe (leases are released in whichever thread drops them)."""

    def __init__(self, max_free_bytes: int = 512 << 20, idle_takes: int = IDLE_TAKES) -> None:
        self.max_free_bytes = max_free_bytes
        self.idle_takes = idle_takes
        self._free: list[np.ndarray] = []  # sorted by size
        self._free_bytes = 0
        self._takes = 0
        self._given_at: dict[int, int] = {}  # id of a free block -> the take count when it came back
        self._lock = threading.RLock()  # re-entrant: a lease may be released by a decref in take()
        self.allocated = 0  # blocks made (for tests and statistics)
        self.reused = 0
        self._hints: dict[Hashable, np.ndarray] = {}

    @property
    def free_bytes(self) -> int:
        return self._free_bytes

    def take(self, nbytes: int) -> np.ndarray:
        """A 64-byte aligned uint8 block of at least ``nbytes`` bytes; its contents are undefined."""
        nbytes = max(int(nbytes), _ALIGN)
        with self._lock:
            self._takes += 1
            for i, block in enumerate(self._free):
                if block.shape[0] >= nbytes:
                    if block.shape[0] > 4 * nbytes + (1 << 20):
                        break  # far too large: keep it for a batch that needs it
                    del self._free[i]
                    del self._given_at[id(block)]
                    self._free_bytes -= block.shape[0]
                    self.reused += 1
                    return block
            self.allocated += 1
        size = -(-nbytes // _ROUND) * _ROUND
        raw = np.empty(size + _ALIGN, dtype=np.uint8)
        skip = -raw.ctypes.data % _ALIGN
        return raw[skip : skip + size]

    def give(self, blocks: Iterable[np.ndarray]) -> None:
        """Return blocks nothing refers to any more; beyond ``max_free_bytes`` they are dropped."""
        with self._lock:
            stale = self._takes - self.idle_takes
            if self._given_at and min(self._given_at.values()) < stale:
                kept = [b for b in self._free if self._given_at[id(b)] >= stale]
                self._given_at = {id(b): self._given_at[id(b)] for b in kept}
                self._free = kept
                self._free_bytes = sum(b.shape[0] for b in kept)
            for block in blocks:
                if self._free_bytes + block.shape[0] > self.max_free_bytes:
                    continue
                bisect.insort(self._free, block, key=_size)
                self._given_at[id(block)] = self._takes
                self._free_bytes += block.shape[0]

    def hint(self, key: Hashable, size: int) -> np.ndarray:
        """A float64 array of ``size`` shared by every decoder of this pool that asks with ``key``.

        Decoders of one column layout keep in it the string bytes per row their batches held. A run
        makes a decoder per chunk, and a new decoder knew nothing of its strings: it sized the string
        regions of its first batch from the batch's input bytes, three times what they held on the
        lineitem-like table of ``benchmarks/pg_to_parquet.py``, and those blocks were half the pool
        (every block is zeroed by the kernel when first touched). With the hint, the first batch of
        a chunk is sized from the chunks before it.
        """
        with self._lock:
            found = self._hints.get(key)
            if found is None or found.shape[0] != size:
                found = self._hints[key] = np.zeros(size, dtype=np.float64)
            return found

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self._given_at.clear()
            self._free_bytes = 0


def _size(block: np.ndarray) -> int:
    return int(block.shape[0])


class Lease:
    """The blocks of one batch, held by every Arrow buffer made from them; returned when freed."""

    __slots__ = ("__weakref__", "_blocks", "_pool")

    def __init__(self, pool: BufferPool, blocks: list[np.ndarray]) -> None:
        self._pool = pool
        self._blocks = blocks

    def buffer(self, view: np.ndarray) -> pa.Buffer:
        """An Arrow buffer over ``view`` (a contiguous view into one of the leased blocks)."""
        return pa.foreign_buffer(view.ctypes.data, view.nbytes, base=self)

    def __del__(self) -> None:
        blocks, self._blocks = self._blocks, []
        if blocks:
            self._pool.give(blocks)
