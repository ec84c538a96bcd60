"""Row kernels specialized to a layout (``pgcopy.rowspec``) against the generic ``decode_rows``.

One layout holds every kind of column the one-pass kernel knows (and slice columns and a NOT NULL
column beside them). Random rows, streams cut at random places, small batches and long strings that make
the string buffers grow must decode to identical tables with either kernel, and corrupted or truncated
streams must fail with the same error. The background compile is exercised for real: a detached process
compiles the kernel, and the next decoder picks it up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pgcopy_onepass import MIX  # every one-pass column kind, with a value strategy each

from parquetry.pgcopy import rowspec
from parquetry.pgcopy.decode import CopyDecoder
from parquetry.pgcopy.errors import CopyFormatError
from parquetry.pgcopy.types import PgColumn
from parquetry.testing.arrow_compare import assert_same_table
from parquetry.testing.copy_reference import decode_in_pieces, encode_copy_binary

# Every kernel kind and width: R_BE 2/4/8, floats, bool, decimals of 128 and 256 bits, strings with and
# without the UTF-8 check, jsonb's version byte, uuid, date, timestamps, and slice columns.
KINDS = [
    "bool", "int2", "int4", "int8", "float4", "float8", "numeric18_4", "numeric50_10", "numeric",
    "text", "bytea", "jsonb", "uuid", "date", "timestamp", "timestamptz", "time", "interval", "int4[]",
]  # fmt: skip
COLUMNS = [PgColumn("id", 20, "bigint", not_null=True)] + [
    PgColumn(f"{MIX[n][0].name}_{k}", MIX[n][0].type_oid, MIX[n][0].type_name, MIX[n][0].typmod)
    for k, n in enumerate(KINDS)
]
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    # ``kernels`` sets the mode on every call; nothing it holds carries over between examples
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(autouse=True)
def _as_a_new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with what a new process knows: no kernel loaded, asked for or counted."""
    for name in ("_ready", "_modules", "_seen", "_pending"):
        monkeypatch.setattr(rowspec, name, {})
    monkeypatch.setattr(rowspec, "_asked", set())


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernels")


@pytest.fixture
def kernels(kernel_cache: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Decode with the generic kernel or the specialized one (compiled here, once per module)."""
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(kernel_cache))

    def decode(how: str, data: bytes, cuts: list[int], batch_rows: int):  # type: ignore[no-untyped-def]
        monkeypatch.setenv(rowspec.MODE_ENV, how)
        calls: list[bool] = []
        choose = rowspec.choose

        def spy(*args):  # type: ignore[no-untyped-def]
            kernel, specialized = choose(*args)
            calls.append(specialized)
            return kernel, specialized

        monkeypatch.setattr(rowspec, "choose", spy)
        try:
            return decode_in_pieces(data, COLUMNS, cuts, batch_rows)
        finally:
            monkeypatch.setattr(rowspec, "choose", choose)
            assert (bool(calls) and all(calls)) if how == "sync" else not any(calls)  # what ran

    return decode


@st.composite
def rows(draw: st.DrawFn) -> list[tuple]:
    count = draw(st.integers(0, 25))
    return [(i, *(draw(st.none() | MIX[n][1]) for n in KINDS)) for i in range(count)]


@pytest.mark.slow
@SETTINGS
@given(rows(), st.lists(st.integers(0, 4000), max_size=6), st.integers(1, 9))
def test_specialized_and_generic_kernels_decode_every_stream_alike(kernels, data, cuts, batch_rows) -> None:
    stream = encode_copy_binary(COLUMNS, data)
    generic = kernels("generic", stream, cuts, batch_rows)
    specialized = kernels("sync", stream, cuts, batch_rows)
    specialized.validate(full=True)
    assert_same_table(specialized, generic)
    assert specialized.column("id").to_pylist() == list(range(len(data)))


@pytest.mark.slow
def test_string_buffers_grow_the_same_way_in_the_specialized_kernel(kernels) -> None:
    base = [(i, *(None for _ in KINDS)) for i in range(30)]
    text, blob = KINDS.index("text") + 1, KINDS.index("bytea") + 1
    long = {text: lambda i: "é" * (2000 + i), blob: lambda i: bytes(range(256)) * 9}
    data = [tuple(long[c](i) if c in long else v for c, v in enumerate(r)) for i, r in enumerate(base)]
    stream = encode_copy_binary(COLUMNS, data)
    assert_same_table(kernels("sync", stream, [], 7), kernels("generic", stream, [], 7))


def _error(kernels, how: str, stream: bytes, cuts: list[int]) -> str:  # type: ignore[no-untyped-def]
    try:
        kernels(how, stream, cuts, 4)
    except CopyFormatError as exc:
        return str(exc)
    return "no error"


@pytest.mark.slow
@SETTINGS
@given(rows(), st.data())
def test_malformed_streams_fail_alike_with_either_kernel(kernels, data, draw) -> None:
    stream = bytearray(encode_copy_binary(COLUMNS, data))
    body = range(19, len(stream) - 2)  # past the header, before the trailer
    if len(body) == 0:
        return
    where = draw.draw(st.sampled_from(body))
    if draw.draw(st.booleans()):
        stream[where] = draw.draw(st.integers(0, 255))  # a corrupted byte (a length, a value, a count)
    else:
        del stream[where:]  # cut short
    cuts = draw.draw(st.lists(st.integers(0, len(stream)), max_size=3))
    assert _error(kernels, "sync", bytes(stream), cuts) == _error(kernels, "generic", bytes(stream), cuts)


@pytest.mark.slow
def test_a_null_in_a_not_null_column_fails_alike(kernels) -> None:
    stream = encode_copy_binary(COLUMNS, [(None, *(None for _ in KINDS))])
    message = _error(kernels, "sync", stream, [])
    assert "NOT NULL" in message
    assert message == _error(kernels, "generic", stream, [])


# ---------------------------------------------------------------------------------- compiling


SMALL = [PgColumn("id", 20, "bigint"), PgColumn("note", 25, "text")]


def _decoder(stream: bytes) -> CopyDecoder:
    decoder = CopyDecoder(SMALL, source="small", batch_rows=64)
    decoder.feed(stream)
    decoder.finish()
    return decoder


def _stream(n: int) -> bytes:
    return encode_copy_binary(SMALL, [(i, f"row {i}") for i in range(n)])


def test_small_inputs_leave_nothing_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.delenv(rowspec.MODE_ENV, raising=False)
    decoder = _decoder(_stream(100))
    assert not decoder._one.specialized
    assert not (tmp_path / "kernels").exists()


def test_the_generic_mode_never_compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv(rowspec.MODE_ENV, "generic")
    monkeypatch.setattr(rowspec, "BACKGROUND_BYTES", 1)
    assert not _decoder(_stream(100))._one.specialized
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rowspec.MODE_ENV, "fastest")
    with pytest.raises(ValueError, match="PARQUETRY_ROW_KERNELS"):
        _decoder(_stream(3))


def _wait_for(path_glob: str, directory: Path, timeout: float) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(directory.glob(path_glob))
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {path_glob} in {directory} after {timeout} s: {sorted(os.listdir(directory))}")


_DECODE_AND_EXIT = """
from parquetry.pgcopy import rowspec
from parquetry.pgcopy.decode import CopyDecoder
from parquetry.pgcopy.types import PgColumn
from parquetry.testing.copy_reference import encode_copy_binary

rowspec.BACKGROUND_BYTES = 1000
columns = [PgColumn("id", 20, "bigint"), PgColumn("note", 25, "text")]
decoder = CopyDecoder(columns, source="small", batch_rows=64)
decoder.feed(encode_copy_binary(columns, [(i, f"row {i}") for i in range(500)]))
decoder.finish()
assert not decoder._one.specialized
print(sorted(p.name for p in rowspec.cache_dir(create=False).glob("*")))
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["exit", "multiprocessing child"])
def test_a_process_that_decoded_a_big_input_compiles_its_kernel_for_the_next_ones_when_it_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv(rowspec.MODE_ENV, "background")
    script = _DECODE_AND_EXIT
    if how == "multiprocessing child":  # exits without atexit, as Dagster's step processes do
        body = "\n".join("    " + line for line in script.strip().splitlines())
        script = f"import multiprocessing\n\ndef step():\n{body}\n\n"
        script += "if __name__ == '__main__':\n"
        script += "    p = multiprocessing.get_context('spawn').Process(target=step)\n"
        script += "    p.start()\n    p.join()\n    assert p.exitcode == 0\n"
    (tmp_path / "run.py").write_text(script)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "ready" not in done.stdout  # nothing compiled while it ran
    _wait_for("*.ready", tmp_path, timeout=240)
    decoder = CopyDecoder(SMALL, source="small", batch_rows=64)
    batches = decoder.feed(_stream(500)) + decoder.finish()
    assert decoder._one.specialized
    assert [v for b in batches for v in b.column(1).to_pylist()] == [f"row {i}" for i in range(500)]


@pytest.mark.slow
def test_a_failed_compile_is_reported_and_decoding_stays_generic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv(rowspec.MODE_ENV, "background")
    monkeypatch.setattr(rowspec, "BACKGROUND_BYTES", 1000)
    columns = [PgColumn("id", 20, "bigint"), PgColumn("n", 23, "integer")]
    stream = encode_copy_binary(columns, [(i, i) for i in range(500)])
    layout = rowspec.layout_of(*[np.array(x) for x in ([1, 1], [8, 4], [0, 0], [0, 0], [False, False])])
    rowspec.module_path(layout).write_text("def broken(:\n")  # what a broken generator would leave
    CopyDecoder(columns, source="broken", batch_rows=64).feed(stream)
    rowspec.compile_pending()  # what the process's exit would do
    (failed,) = _wait_for("*.failed", tmp_path, timeout=240)
    assert "SyntaxError" in failed.read_text()
    monkeypatch.setattr(rowspec, "_asked", set())  # as a new process would (again)
    decoder = CopyDecoder(columns, source="broken", batch_rows=64)
    batches = decoder.feed(stream) + decoder.finish()
    assert not decoder._one.specialized
    assert [v for b in batches for v in b.column(1).to_pylist()] == list(range(500))
    assert "failed to compile" in caplog.text


def test_a_kernel_is_named_after_the_code_it_compiles_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba's cache knows only the generated file: an upgrade that changes the routines the kernel
    calls (the numeric decoder, the UTF-8 check) must name, and so compile, the kernel anew."""
    layout = rowspec.layout_of(*[np.array(x) for x in ([1], [8], [0], [0], [False])])
    monkeypatch.setattr(rowspec, "_names", {})
    before = rowspec.module_name(layout)[0]
    monkeypatch.setattr(rowspec, "_names", {})
    monkeypatch.setattr(rowspec, "_deps", rowspec._dependencies() + " and a fix in kernels.py")
    after = rowspec.module_name(layout)[0]
    assert before != after
    assert before.startswith("parquetry_rows_") and after.startswith("parquetry_rows_")


@pytest.mark.slow
def test_a_run_that_decodes_a_great_deal_of_one_layout_starts_the_compile_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv(rowspec.MODE_ENV, "background")
    monkeypatch.setattr(rowspec, "BACKGROUND_BYTES", 1000)
    monkeypatch.setattr(rowspec, "EAGER_BYTES", 2000)
    columns = [PgColumn("id", 20, "bigint"), PgColumn("day", 1082, "date")]
    stream = encode_copy_binary(columns, [(i, None) for i in range(500)])
    first = CopyDecoder(columns, source="big", batch_rows=64)
    first.feed(stream)
    first.finish()
    assert not first._one.specialized
    _wait_for("*.ready", tmp_path, timeout=240)  # without this process exiting
    second = CopyDecoder(columns, source="big", batch_rows=64)
    batches = second.feed(stream) + second.finish()
    assert second._one.specialized
    assert [v for b in batches for v in b.column(0).to_pylist()] == list(range(500))


def test_the_cli_lists_cached_kernels_and_clears_failed_ones(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from parquetry.cli import main

    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path))
    layout = rowspec.layout_of(*[np.array(x) for x in ([1, 4], [8, 0], [0, 0], [0, 1], [True, False])])
    path = rowspec.module_path(layout)
    (tmp_path / f"{path.stem}.abc.failed").write_text("Traceback...\nSyntaxError: invalid syntax\n")
    (tmp_path / f"{path.stem}.def.signature").write_bytes(b"")
    assert main(["kernels", "list"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["kernels"]
    assert entry["kernel"] == path.stem and entry["columns"] == 2 and entry["ready"] == 0
    assert entry["failed"] == ["SyntaxError: invalid syntax"] and entry["compiling_or_abandoned"] == 1
    assert main(["kernels", "clear", "--failed"]) == 0
    assert json.loads(capsys.readouterr().out)["removed_files"] == 1
    assert path.exists()
    assert main(["kernels", "clear"]) == 0
    assert json.loads(capsys.readouterr().out)["removed_files"] == 2  # the module and the signature
    assert not any(tmp_path.glob("parquetry_rows_*"))


@pytest.mark.slow
def test_a_ready_kernel_whose_compiled_code_was_deleted_is_not_compiled_in_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARQUETRY_KERNEL_CACHE", str(tmp_path))
    columns = [PgColumn("id", 20, "bigint"), PgColumn("ok", 16, "boolean")]
    stream = encode_copy_binary(columns, [(i, i % 3 == 0) for i in range(300)])
    monkeypatch.setenv(rowspec.MODE_ENV, "sync")
    compiled = CopyDecoder(columns, source="t", batch_rows=64)
    compiled.feed(stream)
    assert compiled._one.specialized and list(tmp_path.glob("*.ready"))
    for path in (tmp_path / "__pycache__").iterdir():  # numba's cache cleared behind Parquetry's back
        path.unlink()
    monkeypatch.setattr(rowspec, "_ready", {})  # a new process
    monkeypatch.setattr(rowspec, "_modules", {})
    monkeypatch.setenv(rowspec.MODE_ENV, "background")
    decoder = CopyDecoder(columns, source="t", batch_rows=64)
    batches = decoder.feed(stream) + decoder.finish()
    assert not decoder._one.specialized
    assert [v for b in batches for v in b.column(1).to_pylist()] == [i % 3 == 0 for i in range(300)]
