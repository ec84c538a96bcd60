"""Recycled chunk files: a consumed chunk's file is overwritten by a later chunk, cut to that chunk's
size, and its bytes stay inside the staging budget while it waits as a spare. The decoder reads a
chunk through ``StagedChunk.data``, the staging map's view of exactly the file's bytes."""

import struct
import threading
import time

from parquetry.extract.staging import COPY_HEADER, COPY_TRAILER, ChunkBoard, ChunkWriter

CHUNK = 4096


def row(value: int, width: int) -> bytes:
    """One binary COPY row of a single bytea field of ``width`` bytes."""
    return struct.pack("!hi", 1, width) + bytes([value % 256]) * width


def write_task(board: ChunkBoard, task: int, rows: list[bytes]) -> None:
    writer = ChunkWriter(board, task, f"t{task}")
    for data in rows:
        if len(data) > writer.room and writer.chunk_rows:
            writer.cut()
        writer.write_rows(data, 1)
    writer.cut()
    board.task_done(task)


def test_a_recycled_file_holds_exactly_the_new_chunk(tmp_path):
    board = ChunkBoard(tmp_path, 2, budget_bytes=8 * CHUNK, chunk_bytes=CHUNK)
    big = [row(i, 1000) for i in range(3)]  # one chunk of about 3 KB
    small = [row(7, 10)]
    write_task(board, 0, big)
    seen: list[tuple[int, int, bytes]] = []

    def consume() -> None:
        for chunk in board.consume():
            assert chunk.data is not None and chunk.data.tobytes() == chunk.path.read_bytes()
            seen.append((chunk.task, chunk.bytes, chunk.path.read_bytes()))

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    deadline = time.monotonic() + 10
    while not list(tmp_path.glob("spare-*")):  # the first chunk, consumed, waits as a spare
        assert time.monotonic() < deadline
        time.sleep(0.005)
    write_task(board, 1, small)
    consumer.join(10)
    assert not consumer.is_alive()
    assert board.recycled == 1
    assert seen[0][0] == 0 and seen[0][1] > 3000
    assert seen[1] == (1, len(COPY_HEADER + small[0] + COPY_TRAILER), COPY_HEADER + small[0] + COPY_TRAILER)


def test_spare_files_count_against_the_budget(tmp_path):
    board = ChunkBoard(tmp_path, 1, budget_bytes=8 * CHUNK, chunk_bytes=CHUNK)
    rows = [row(i, 1500) for i in range(8)]  # two rows per chunk: four chunks
    write_task(board, 0, rows)
    seen = [c.bytes for c in board.consume()]
    assert len(seen) == 4
    on_disk = sum(p.stat().st_size for p in tmp_path.glob("*.pgcopy"))
    # every consumed file was kept (the budget leaves room for six spares) and is still counted as staged
    assert board.max_spares == 6
    assert board.staged == on_disk == sum(seen)
    board.close()
    assert list(tmp_path.glob("*.pgcopy")) == []


def test_a_budget_of_two_chunks_keeps_no_spares(tmp_path):
    board = ChunkBoard(tmp_path, 1, budget_bytes=2 * CHUNK, chunk_bytes=CHUNK)
    write_task(board, 0, [row(i, 1500) for i in range(4)])
    assert len(list(board.consume())) == 2
    assert board.max_spares == 0
    assert board.staged == 0
    assert list(tmp_path.glob("*.pgcopy")) == []
