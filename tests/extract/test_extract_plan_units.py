"""Planner and staging rules that need no server: ctid ranges and the budget's head rule."""

import itertools
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.extract.errors import ExtractCancelled
from parquetry.extract.plan import page_ranges, range_pages
from parquetry.extract.staging import ChunkBoard


@settings(deadline=None)
@given(pages=st.integers(0, 50_000), per=st.integers(1, 5000))
def test_page_ranges_tile_the_relation_and_leave_the_last_one_open(pages, per):
    ranges = page_ranges(pages, per)
    assert ranges[0][0] == 0 and ranges[-1][1] is None
    for (_, stop), (start, _) in itertools.pairwise(ranges):
        assert stop == start
    assert all(stop - start == per for start, stop in ranges[:-1])
    assert len(ranges) == max(1, -(-pages // per))  # the fewest ranges of `per` pages covering all


@given(pages=st.integers(0, 10**8), range_bytes=st.integers(8192, 1 << 30), min_ranges=st.integers(1, 64))
def test_range_size_depends_on_the_table_only_and_stays_within_bounds(pages, range_bytes, min_ranges):
    per = range_pages(pages, 8192, range_bytes, min_ranges)
    assert 1 <= per <= range_bytes // 8192
    if per < range_bytes // 8192:  # shrunk for parallelism, but never below 1 MiB
        assert per >= min(128, range_bytes // 8192)
        assert len(page_ranges(pages, per)) <= min_ranges or per == 128


def test_only_the_head_task_may_take_the_last_chunk_of_the_budget(tmp_path):
    board = ChunkBoard(tmp_path, tasks=3, budget_bytes=300, chunk_bytes=100)
    board.reserve(2, 100)  # non-head: up to budget - chunk = 200
    board.reserve(1, 100)
    got = threading.Event()

    def third_non_head():
        board.reserve(2, 100)
        got.set()

    waiter = threading.Thread(target=third_non_head)
    waiter.start()
    time.sleep(0.3)
    assert not got.is_set()  # 300 would leave nothing for the head
    board.reserve(0, 100)  # the head gets the reserved room at once
    assert board.staged == 300 and board.peak == 300
    board.release(200)
    waiter.join(2)
    assert got.is_set() and board.staged == 200


def test_a_stopped_board_wakes_waiting_readers_with_cancellation(tmp_path):
    board = ChunkBoard(tmp_path, tasks=2, budget_bytes=200, chunk_bytes=100)
    board.reserve(0, 200)
    errors = []

    def blocked():
        try:
            board.reserve(1, 100)
        except ExtractCancelled as exc:
            errors.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    board.fail(RuntimeError("consumer failed"))
    thread.join(2)
    assert len(errors) == 1 and isinstance(board.error, RuntimeError)


def test_budget_must_hold_two_chunks(tmp_path):
    with pytest.raises(ValueError, match="two chunks"):
        ChunkBoard(tmp_path, tasks=1, budget_bytes=150, chunk_bytes=100)
