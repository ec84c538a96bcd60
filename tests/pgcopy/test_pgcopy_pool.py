"""Reused batch buffers: a block goes back to the pool only when no Arrow array refers to it, and a
batch decoded into reused memory is the same as one decoded into fresh memory.

The reference is the two-pass decoder, which builds its arrays with numpy and never uses the pool.
"""

from __future__ import annotations

import gc

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquetry.pgcopy.decode import CopyDecoder, decode_copy_binary
from parquetry.pgcopy.pool import BufferPool
from parquetry.pgcopy.types import PgColumn
from parquetry.testing.arrow_compare import assert_same_table
from parquetry.testing.copy_reference import encode_copy_binary

COLUMNS = [
    PgColumn("id", 20, "bigint"),
    PgColumn("flag", 16, "boolean"),
    PgColumn("price", 1700, "numeric(12,2)", (12 << 16 | 2) + 4),
    PgColumn("label", 25, "text"),
    PgColumn("day", 1082, "date"),
]


def _rows(n: int, null_every: int = 3) -> list[tuple]:
    import datetime as dt
    import decimal

    return [
        (
            i,
            None if i % null_every == 1 else i % 2 == 0,
            None if i % null_every == 2 else decimal.Decimal(i) / 4,
            None if i % null_every == 0 else "v" * (i % 11),
            dt.date(2024, 1, 1) + dt.timedelta(days=i),
        )
        for i in range(n)
    ]


def _stream_batches(data: bytes, pool: BufferPool, batch_rows: int, keep: bool) -> list[list[dict]]:
    """Decode batch by batch; each batch is turned into Python values and, unless ``keep``, dropped
    before the next one is decoded (so its blocks can be reused)."""
    decoder = CopyDecoder(COLUMNS, "s", batch_rows, pool=pool)
    out, kept = [], []
    for batch in decoder.feed_iter(data):
        batch.validate(full=True)
        out.append(batch.to_pylist())
        if keep:
            kept.append(batch)
        del batch
    decoder.finish()
    return out


def test_dropped_batches_give_their_blocks_to_the_next_batch() -> None:
    data = encode_copy_binary(COLUMNS, _rows(100))
    pool = BufferPool()
    batches = _stream_batches(data, pool, 10, keep=False)
    assert sum(len(b) for b in batches) == 100
    assert pool.reused > 0
    # one batch in flight at a time: the blocks of the first batch serve all later ones
    assert pool.allocated <= 2 * 4


def test_no_block_is_reused_while_an_array_of_its_batch_lives() -> None:
    data = encode_copy_binary(COLUMNS, _rows(60))
    expected = decode_copy_binary(data, COLUMNS, one_pass=False).slice(0, 10)
    pool = BufferPool()
    decoder = CopyDecoder(COLUMNS, "s", 10, pool=pool)
    batches = decoder.feed_iter(data)
    first = next(batches)
    label = first.column(3).slice(2, 5)  # a slice keeps the whole batch's blocks
    price = first.column(2)
    del first
    for _ in batches:
        pass
    decoder.finish()
    gc.collect()
    assert label.to_pylist() == expected.column(3).to_pylist()[2:7]
    assert price.to_pylist() == expected.column(2).to_pylist()
    free_before = pool.free_bytes
    del label, price
    assert pool.free_bytes > free_before  # the first batch's blocks came back only now


def test_null_counts_are_right_in_reused_bitmaps() -> None:
    # a full batch with every value valid leaves set bits behind; a short last batch with NULLs must
    # not count them (its bitmap's last byte has bits past the last row)
    rows = [(i, True, None, "x", None) for i in range(16)] + _rows(5, null_every=2)
    data = encode_copy_binary(COLUMNS, rows)
    pool = BufferPool()
    decoder = CopyDecoder(COLUMNS, "s", 16, pool=pool)
    got = []
    for batch in decoder.feed_iter(data):
        got.append([batch.column(c).null_count for c in range(len(COLUMNS))])
        del batch
    assert pool.reused > 0
    reference = decode_copy_binary(data, COLUMNS, batch_rows=16, one_pass=False).to_batches()
    assert got == [[b.column(c).null_count for c in range(len(COLUMNS))] for b in reference]


def test_feed_iter_yields_a_batch_before_decoding_the_next() -> None:
    data = encode_copy_binary(COLUMNS, _rows(50))
    decoder = CopyDecoder(COLUMNS, "s", 10)
    batches = decoder.feed_iter(data)
    first = next(batches)
    assert first.num_rows == 10
    assert decoder.rows == 10  # the rest of the input is not decoded yet
    assert sum(b.num_rows for b in batches) == 40


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 300), min_size=1, max_size=4),
    st.integers(1, 40),
    st.integers(2, 5),
)
def test_streams_decoded_into_a_shared_pool_equal_the_reference(sizes, batch_rows, null_every) -> None:
    pool = BufferPool()
    for n in sizes:  # several streams, one pool: blocks of one stream's batches serve the next
        data = encode_copy_binary(COLUMNS, _rows(n, null_every))
        reference = decode_copy_binary(data, COLUMNS, one_pass=False)
        decoder = CopyDecoder(COLUMNS, "s", batch_rows, pool=pool)
        tables = []
        for batch in decoder.feed_iter(data):
            # a copy of the values, so this batch's blocks can go back before the next is decoded
            tables.append(pa.Table.from_pylist(batch.to_pylist(), schema=batch.schema))
            del batch
        decoder.finish()
        got = pa.concat_tables(tables) if tables else reference.slice(0, 0)
        assert_same_table(got, reference)


def test_idle_blocks_beyond_the_cap_are_dropped() -> None:
    pool = BufferPool(max_free_bytes=1 << 20)
    blocks = [pool.take(400 << 10) for _ in range(4)]
    pool.give(blocks)
    assert pool.free_bytes <= 1 << 20
    again = pool.take(300 << 10)
    assert again.shape[0] >= 300 << 10
    assert again.ctypes.data % 64 == 0


def test_a_block_no_request_fits_goes_back_after_idle_takes() -> None:
    """A block of an odd size (the last batch of a chunk) is not kept for the rest of a long run."""
    pool = BufferPool(idle_takes=8)
    odd = pool.take(8 << 20)
    pool.give([odd])
    for _ in range(8):  # batches needing small blocks only: the big one is never reused...
        pool.give([pool.take(64 << 10)])
    assert pool.free_bytes >= 8 << 20, "still within its idle takes"
    pool.give([pool.take(64 << 10)])  # ...and after its ninth miss the next give drops it
    assert pool.free_bytes < 1 << 20
    assert pool.take(8 << 20) is not odd


def test_a_block_in_steady_use_is_never_dropped() -> None:
    pool = BufferPool(idle_takes=4)
    pool.give([pool.take(1 << 20)])
    made = pool.allocated
    for _ in range(50):
        pool.give([pool.take(1 << 20)])
    assert pool.allocated == made
    assert pool.reused == 50


def test_a_new_decoder_sizes_its_first_batch_from_the_streams_decoded_before_it() -> None:
    """A run makes one decoder per chunk; without what earlier chunks held, each first batch sized its
    string region from its input bytes, several times what the strings need."""
    data = encode_copy_binary(COLUMNS, _rows(3000))
    requests: list[int] = []

    class Recording(BufferPool):
        def take(self, nbytes: int):  # type: ignore[no-untyped-def]
            requests.append(nbytes)
            return super().take(nbytes)

    pool = Recording()
    firsts = []
    for _ in range(2):
        requests.clear()
        batches = CopyDecoder(COLUMNS, "s", 1000, pool=pool).feed_iter(data)
        next(batches)  # the first batch's blocks are taken
        firsts.append(max(requests))
        for _ in batches:
            pass
    learned = max(r for r in requests)  # what a later batch of the second decoder asked for
    assert firsts[1] <= learned
    assert firsts[0] > 2 * firsts[1]
