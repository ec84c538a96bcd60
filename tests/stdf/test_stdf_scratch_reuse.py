"""Parses reuse working memory from one file to the next: no state may leak between files, and two
parses alive at once (interleaved generators in one thread) must not share it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from parquetry.stdf import parse as P
from parquetry.stdf import read_stdf

FILES = ["93k_main_Lot_1_4site.stdf", "galaxy_lot3.stdf", "93k_58_100000_test.stdf", "d10_metis_test.std"]


def _fresh(path: Path) -> dict:
    P._POOL.clear()
    saved = P._POOL_MAX
    P._POOL_MAX = 0
    try:
        return read_stdf(path, file_id="f")
    finally:
        P._POOL_MAX = saved


@pytest.fixture(scope="module")
def samples(shared_dir: Path) -> list[Path]:
    return [shared_dir / "stdf_samples" / f for f in FILES]


def test_a_file_parsed_after_others_equals_a_fresh_parse(samples):
    fresh = [_fresh(p) for p in samples]
    for p in samples:  # fill the pool with the memory (tests, names, hash tables) of every file
        read_stdf(p, file_id="f")
    for p, want in zip(reversed(samples), reversed(fresh), strict=True):
        got = read_stdf(p, file_id="f")
        for table, t in want.items():
            assert got[table].equals(t), (p.name, table)


def test_interleaved_parses_do_not_share_memory(samples):
    want = [_fresh(p) for p in samples[:2]]
    P._POOL.clear()
    gens = [P.parse_stdf(p, file_id="f", batch_records=512, block_bytes=1 << 16) for p in samples[:2]]
    got: list[dict[str, list]] = [{}, {}]
    live = [True, True]
    while any(live):
        for i, g in enumerate(gens):
            if live[i]:
                try:
                    table, batch = next(g)
                    got[i].setdefault(table, []).append(batch)
                except StopIteration:
                    live[i] = False
    for w, g in zip(want, got, strict=True):
        for table, t in w.items():
            rebuilt = pa.Table.from_batches(g.get(table, []), schema=t.schema)
            assert _same_rows(rebuilt, t), table


def _same_rows(a, b) -> bool:
    """Smaller chunks order rows of different record types differently: compare in record order."""
    key = [c for c in ("rec_index", "part_seq", "test_id", "wir_rec_index") if c in a.column_names][:1]
    if key:
        a, b = a.sort_by(key[0]), b.sort_by(key[0])
    return a.to_pylist() == b.to_pylist()
