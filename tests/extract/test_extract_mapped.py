"""A staging file behind one shared map: the file always holds exactly the bytes written, space is
allocated before the map is written (a full disk is an error naming the file, not a crash), and
bytes past the map's capacity go to the file directly."""

import errno
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.extract import mapped
from parquetry.extract.mapped import MappedFile


def test_the_file_holds_what_was_written_and_is_cut_exactly(tmp_path):
    f = MappedFile(tmp_path / "a.pgcopy", 1 << 20)
    f.write(0, b"header")
    window = f.window(6, 100)
    window[:5] = np.frombuffer(b"hello", dtype=np.uint8)
    f.cut(11)
    assert (tmp_path / "a.pgcopy").read_bytes() == b"headerhello"
    assert f.view(11).tobytes() == b"headerhello"
    assert not f.view(11).flags.writeable
    f.close()
    assert not (tmp_path / "a.pgcopy").exists()


def test_space_is_allocated_ahead_in_steps_and_freed_by_the_cut(tmp_path):
    f = MappedFile(tmp_path / "a", 64 << 20)
    f.write(0, b"x" * 10)
    assert f.size >= min(mapped.STEP, f.capacity)  # allocated ahead, so the map never faults past the end
    assert os.stat(f.path).st_size == f.size
    f.cut(10)
    assert os.stat(f.path).st_size == 10
    f.close()


def test_bytes_past_the_capacity_are_written_to_the_file(tmp_path):
    f = MappedFile(tmp_path / "big", 8192)
    data = bytes(range(256)) * 100  # 25,600 bytes: past the map
    f.write(0, data)
    f.cut(len(data))
    assert f.path.read_bytes() == data
    assert f.view(len(data)) is None  # the decoder reads such a chunk from the file
    assert f.window(f.capacity, 100).shape[0] == 0
    f.close()


def test_a_recycled_file_is_overwritten_in_place(tmp_path):
    f = MappedFile(tmp_path / "a", 1 << 20)
    f.write(0, b"a" * 5000)
    f.cut(5000)
    f.rename(tmp_path / "b")
    f.write(0, b"b" * 3)
    f.cut(3)
    assert (tmp_path / "b").read_bytes() == b"bbb"
    assert not (tmp_path / "a").exists()
    f.close()


def test_no_space_is_an_error_naming_the_file(tmp_path, monkeypatch):
    f = MappedFile(tmp_path / "full.pgcopy", 1 << 20)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    with pytest.raises(OSError, match=r"full\.pgcopy.*No space left"):
        f.write(0, b"x" * 10)
    assert f.size == 0
    f.close()


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(st.tuples(st.sampled_from(["write", "window"]), st.binary(max_size=9000)), max_size=8),
    capacity=st.sampled_from([4096, 16384, 1 << 20]),
)
def test_any_sequence_of_appends_leaves_exactly_those_bytes(tmp_path_factory, writes, capacity):
    path = tmp_path_factory.mktemp("m") / "f"
    f = MappedFile(path, capacity)
    expected = b""
    for how, data in writes:
        if how == "window" and len(expected) + len(data) <= f.capacity:
            window = f.window(len(expected), len(data))
            window[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        else:
            f.write(len(expected), data)
        expected += data
    f.cut(len(expected))
    assert path.read_bytes() == expected
    view = f.view(len(expected))
    if len(expected) <= f.capacity:
        assert view is not None and view.tobytes() == expected
    f.close()
    assert not path.exists()
