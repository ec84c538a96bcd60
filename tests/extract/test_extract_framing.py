"""CopyData framing is stripped exactly, whatever the receive boundaries and chunk room."""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.extract.framing import CUT, NEED_MORE, OTHER, OUT_FULL, strip_copy_data


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


rows_strategy = st.lists(
    st.one_of(st.just(b"\x00\x00"), st.binary(min_size=2, max_size=300)).filter(lambda b: b != b"\xff\xff"),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(
    rows=rows_strategy,
    cuts=st.lists(st.integers(1, 700), min_size=1, max_size=50),
    room=st.integers(0, 1200),
    out_size=st.integers(1, 2000),
)
def test_payloads_come_out_whole_and_in_order(rows, cuts, room, out_size):
    stream = b"".join(message(b"d", r) for r in rows) + message(b"d", b"\xff\xff") + message(b"c", b"")
    buf = np.frombuffer(stream, dtype=np.uint8)
    out = np.empty(out_size, dtype=np.uint8)
    pos, end, cut_i = 0, 0, 0
    chunks: list[list[bytes]] = [[]]
    written = 0  # bytes in the current chunk
    emitted_rows = 0
    while True:
        status_room = room - written
        new_pos, nbytes, nrows, status = strip_copy_data(buf, pos, end, out, status_room)
        assert nbytes <= max(status_room, 0) or nbytes == 0
        data = out[:nbytes].tobytes()
        # the output is exactly the next nrows payloads
        expected = b"".join(rows[emitted_rows : emitted_rows + nrows])
        assert data == expected
        chunks[-1].append(data)
        written += nbytes
        emitted_rows += nrows
        pos = new_pos
        if status == NEED_MORE:
            assert end < len(stream), "asked for more data after the end"
            end = min(len(stream), end + cuts[cut_i % len(cuts)])
            cut_i += 1
        elif status == CUT:
            payload = rows[emitted_rows]
            assert written + len(payload) > room  # it really did not fit
            if written == 0:  # a row larger than the whole room: the caller writes it alone
                chunks[-1].append(payload)
                emitted_rows += 1
                pos += 5 + len(payload)
            chunks.append([])
            written = 0
        elif status == OUT_FULL:
            assert len(rows[emitted_rows]) > out_size - nbytes or nbytes > 0
            if nbytes == 0:  # payload larger than the output buffer: the caller grows it
                out = np.empty(len(rows[emitted_rows]), dtype=np.uint8)
        else:
            assert status == OTHER
            break
    assert emitted_rows == len(rows)
    assert stream[pos : pos + 7] == message(b"d", b"\xff\xff")  # stopped at the trailer
    assert b"".join(b"".join(c) for c in chunks) == b"".join(rows)


def test_a_copy_data_length_below_its_own_header_is_left_to_python():
    good = message(b"d", b"\x00\x01abc")
    bad = b"d" + struct.pack("!I", 3) + b"\x00" * 8
    buf = np.frombuffer(good + bad, dtype=np.uint8)
    out = np.empty(64, dtype=np.uint8)
    pos, nbytes, rows, status = strip_copy_data(buf, 0, len(buf), out, 64)
    assert (pos, nbytes, rows, status) == (len(good), 5, 1, OTHER)
