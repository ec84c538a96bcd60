"""Progress: rate-limited report lines, rates and ETA from a fake clock, a bar only on a TTY."""

from __future__ import annotations

import io
import threading

import pytest

from parquetry.progress import Progress, format_bytes, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_are_rate_limited_to_one_per_interval() -> None:
    clock, lines = FakeClock(), []
    p = Progress(10_000_000, label="orders", log=lines.append, every_s=2.0, clock=clock)
    for _ in range(10):  # ten advances within 0.9 s: no line yet
        clock.now += 0.09
        p.advance(100_000)
    assert lines == []
    clock.now += 1.2  # 2.1 s since start
    p.advance(100_000)
    assert len(lines) == 1
    clock.now += 1.0
    p.advance(100_000)
    assert len(lines) == 1


def test_line_reports_percent_rows_throughput_and_eta() -> None:
    clock, lines = FakeClock(), []
    p = Progress(100_000_000, label="orders", log=lines.append, every_s=1.0, clock=clock)
    clock.now += 10.0
    p.advance(25_000_000, rows=50_000)
    # 25 MB in 10 s = 2.5 MB/s; 75 MB left -> 30 s.
    assert lines == ["orders:  25.0%, 25.0 MB of 100.0 MB, 50,000 rows, 2.5 MB/s, ETA 0:30"]


def test_completion_is_reported_once_even_inside_the_interval() -> None:
    clock, lines = FakeClock(), []
    p = Progress(1000, unit="files", log=lines.append, every_s=60.0, clock=clock)
    clock.now += 4.0
    p.advance(1000)
    p.close()
    assert lines == ["100.0%, 1,000 files of 1,000 files, 250.0 files/s, in 0:04"]


def test_unknown_total_shows_no_percent_and_no_eta() -> None:
    clock, lines = FakeClock(), []
    p = Progress(None, log=lines.append, every_s=1.0, clock=clock)
    clock.now += 2.0
    p.advance(3_000_000, rows=7)
    assert lines == ["3.0 MB, 7 rows, 1.5 MB/s"]
    clock.now += 2.0
    p.close()
    assert lines[-1] == "3.0 MB, 7 rows, 0.8 MB/s, in 0:04"


def test_summary_has_elapsed_and_rates_frozen_at_completion() -> None:
    clock = FakeClock()
    p = Progress(8_000_000, clock=clock)
    clock.now += 4.0
    p.advance(8_000_000, rows=400)
    clock.now += 100.0  # after completion, time no longer counts
    s = p.summary()
    assert s["elapsed_s"] == pytest.approx(4.0)
    assert s["rate"] == pytest.approx(2_000_000)
    assert s["mb_per_s"] == pytest.approx(2.0)
    assert s["rows_per_s"] == pytest.approx(100)
    assert (s["done"], s["rows"], s["total"]) == (8_000_000, 400, 8_000_000)


def test_bar_is_drawn_only_when_the_stream_is_a_terminal() -> None:
    clock = FakeClock()
    tty, pipe = TtyStream(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(100, unit="files", bar=True, stream=stream, every_s=0.0, clock=clock)
        clock.now += 1.0
        p.advance(50)
        p.close()
    assert pipe.getvalue() == ""
    out = tty.getvalue()
    assert out.startswith("\r[" + "#" * 15 + "-" * 15 + "]")
    assert out.endswith("\n")


def test_concurrent_advances_lose_no_count() -> None:
    p = Progress(None, every_s=0.0)

    def work() -> None:
        for _ in range(2000):
            p.advance(3, rows=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (p.done, p.rows) == (24_000, 8000)


def test_negative_progress_is_refused() -> None:
    with pytest.raises(ValueError, match="only advance"):
        Progress(10).advance(-1)


def test_formatting_helpers() -> None:
    assert format_bytes(999) == "999 B"
    assert format_bytes(1_500_000) == "1.5 MB"
    assert format_bytes(2.5e12) == "2.5 TB"
    assert format_duration(75) == "1:15"
    assert format_duration(3725) == "1:02:05"


def test_stage_timer_sums_repeated_stages_in_first_seen_order() -> None:
    from parquetry.progress import StageTimer

    clock = FakeClock()
    timer = StageTimer(clock=clock)
    for stage, seconds in (("copy", 2.0), ("decode", 0.5), ("copy", 1.0)):
        with timer.stage(stage):
            clock.now += seconds
    assert list(timer.seconds) == ["copy", "decode"]
    assert timer.seconds == {"copy": pytest.approx(3.0), "decode": pytest.approx(0.5)}
