"""Progress reporting for long batch work: log lines for pipelines, a terminal bar for the CLI.

Extraction, STDF ingestion and compaction all move a known (or unknown) amount of bytes through
several workers. Operators want to see how far along a run is, how fast it goes and when it will
end, without flooding the Dagster event log: ``Progress`` emits at most one log line every
``every_s`` seconds (plus a final one), and can draw a one-line bar on stderr when stderr is a
terminal. It has no dependency and never imports Dagster; pass ``context.log.info`` as ``log``.

``advance`` is thread-safe, so worker threads may report directly.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "StageTimer", "format_bytes", "format_duration"]

_BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def format_bytes(n: float) -> str:
    """``1536000`` -> ``"1.5 MB"`` (decimal units, as throughput is usually quoted)."""
    value = float(n)
    for unit in _BYTE_UNITS:
        if abs(value) < 1000 or unit == _BYTE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts work done against an optional total and reports it, rate-limited.

    ``total`` is in ``unit`` (``"B"`` for bytes, else any noun such as ``"files"``); ``None`` means
    unknown, in which case no percent or ETA is shown. ``log`` receives the report lines. ``bar=True``
    draws a bar on ``stream`` (stderr by default) but only when that stream is a TTY, so redirected
    output and CI logs stay clean. ``clock`` exists for tests.
    """

    def __init__(
        self,
        total: int | None,
        unit: str = "B",
        label: str = "",
        log: Callable[[str], None] | None = None,
        every_s: float = 2.0,
        *,
        bar: bool = False,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        bar_width: int = 30,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"progress total must be >= 0, got {total}")
        self.total = total
        self.unit = unit
        self.label = label
        self.log = log
        self.every_s = every_s
        self._clock = clock
        self._stream = stream if stream is not None else sys.stderr
        self._bar = bar and _is_tty(self._stream)
        self._bar_width = bar_width
        self._lock = threading.Lock()
        self._start = clock()
        self._last_emit = self._start
        self._end: float | None = None
        self.done = 0
        self.rows = 0
        self._final_emitted = False
        self._bar_drawn = False

    # -- counting ------------------------------------------------------------------------------

    def advance(self, n: int, rows: int = 0) -> None:
        """Record ``n`` more units (and ``rows`` more rows) done; report if the interval elapsed."""
        if n < 0 or rows < 0:
            raise ValueError(f"progress can only advance, got n={n} rows={rows}")
        with self._lock:
            self.done += n
            self.rows += rows
            now = self._clock()
            complete = self.total is not None and self.done >= self.total
            if complete and not self._final_emitted:
                self._final_emitted = True
                self._end = now
                self._emit(now)
            elif not complete and now - self._last_emit >= self.every_s:
                self._emit(now)

    def close(self) -> None:
        """Finish: emit a final line if none was emitted for the end, and end the bar's line."""
        with self._lock:
            now = self._clock()
            if self._end is None:
                self._end = now
            if not self._final_emitted:
                self._final_emitted = True
                self._emit(now)
            if self._bar_drawn:
                self._stream.write("\n")
                self._stream.flush()
                self._bar_drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reporting -----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Totals and rates so far: ``elapsed_s``, ``done``, ``rows``, ``rate`` (unit/s), ``rows_per_s``."""
        with self._lock:
            now = self._end if self._end is not None else self._clock()
            elapsed = max(now - self._start, 0.0)
            rate = self.done / elapsed if elapsed > 0 else 0.0
            out: dict[str, Any] = {
                "label": self.label,
                "unit": self.unit,
                "total": self.total,
                "done": self.done,
                "rows": self.rows,
                "elapsed_s": elapsed,
                "rate": rate,
                "rows_per_s": self.rows / elapsed if elapsed > 0 else 0.0,
            }
            if self.unit == "B":
                out["mb_per_s"] = rate / 1e6
            return out

    def line(self) -> str:
        """The current report line (what ``log`` receives)."""
        return self._line(self._clock() if self._end is None else self._end)

    def _line(self, now: float) -> str:
        elapsed = max(now - self._start, 0.0)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts: list[str] = []
        if self.total:
            parts.append(f"{100.0 * min(self.done, self.total) / self.total:5.1f}%")
            parts.append(f"{self._amount(self.done)} of {self._amount(self.total)}")
        else:
            parts.append(self._amount(self.done))
        if self.rows:
            parts.append(f"{self.rows:,} rows")
        parts.append(self._rate(rate))
        if self._end is not None:
            parts.append(f"in {format_duration(elapsed)}")
        elif self.total is not None and self.done < self.total:
            if rate > 0:
                parts.append(f"ETA {format_duration((self.total - self.done) / rate)}")
            else:
                parts.append("ETA ?")
        prefix = f"{self.label}: " if self.label else ""
        return prefix + ", ".join(parts)

    def _amount(self, n: float) -> str:
        return format_bytes(n) if self.unit == "B" else f"{int(n):,} {self.unit}"

    def _rate(self, rate: float) -> str:
        if self.unit == "B":
            return f"{rate / 1e6:.1f} MB/s"
        return f"{rate:,.1f} {self.unit}/s"

    def _emit(self, now: float) -> None:
        self._last_emit = now
        text = self._line(now)
        if self.log is not None:
            self.log(text)
        if self._bar:
            self._draw_bar(text)

    def _draw_bar(self, text: str) -> None:
        if self.total:
            filled = int(self._bar_width * min(self.done, self.total) / self.total)
            bar = "#" * filled + "-" * (self._bar_width - filled)
        else:
            bar = "?" * self._bar_width
        self._stream.write(f"\r[{bar}] {text}\x1b[K")
        self._stream.flush()
        self._bar_drawn = True


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class StageTimer:
    """Wall-clock seconds per named stage (``copy``, ``decode``, ``write``...), summed over repeats.

    ``with timer.stage("decode"): ...`` adds the block's duration to ``timer.seconds["decode"]``;
    stages keep their first-seen order, which is the order the timing chart shows them in.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def stage(self, name: str) -> _StageBlock:
        return _StageBlock(self, name)


class _StageBlock:
    def __init__(self, timer: StageTimer, name: str) -> None:
        self._timer = timer
        self._name = name
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = self._timer._clock()

    def __exit__(self, *exc: object) -> None:
        self._timer.add(self._name, self._timer._clock() - self._start)
