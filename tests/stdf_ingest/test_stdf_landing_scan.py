"""Scanning landing folders (memory://, local, FTP on loopback) and naming files by content."""

import hashlib
import socket
import threading

import fsspec
import pytest

from parquetry.stdf.ingest import ingest_stdf_file
from parquetry.stdf.landing import HashCache, is_stdf_name, scan_landing
from parquetry.storage import Storage
from parquetry.testing.stdf_writer import write_lot


def test_only_stdf_names_are_picked():
    assert all(is_stdf_name(n) for n in ["a.stdf", "B.STD", "c.stdf.gz", "d.std.gz", "e.stdf.bz2", "f.zip"])
    assert not any(is_stdf_name(n) for n in ["a.txt", "a.stdf.part", ".a.stdf", "stdf", "a.gz"])


@pytest.fixture
def memory_landing():
    fs = fsspec.filesystem("memory")
    base = "/landing_test"
    if fs.exists(base):
        fs.rm(base, recursive=True)
    yield fs, base
    if fs.exists(base):
        fs.rm(base, recursive=True)


def test_memory_landing_lists_hashes_and_skips_other_files(memory_landing):
    fs, base = memory_landing
    fs.pipe(f"{base}/a.stdf", b"first")
    fs.pipe(f"{base}/sub/b.std.gz", b"second")
    fs.pipe(f"{base}/notes.txt", b"ignored")
    files = scan_landing(f"memory://{base}")
    assert [f.name for f in files] == ["a.stdf", "b.std.gz"]
    assert [f.sha256 for f in files] == [
        hashlib.sha256(b"first").hexdigest(),
        hashlib.sha256(b"second").hexdigest(),
    ]
    assert [f.size for f in files] == [5, 6]
    with fsspec.open(files[1].uri, "rb") as fh:
        assert fh.read() == b"second"


def test_cache_spares_rehashing_unchanged_files_and_forgets_removed_ones(memory_landing, monkeypatch):
    fs, base = memory_landing
    fs.pipe(f"{base}/a.stdf", b"one")
    fs.pipe(f"{base}/b.stdf", b"two")
    cache = HashCache()
    scan_landing(f"memory://{base}", cache=cache)
    hashed = []
    import parquetry.stdf.landing as landing

    real = landing.hash_file
    monkeypatch.setattr(
        landing, "hash_file", lambda fs_, path, *a: hashed.append(path) or real(fs_, path, *a)
    )
    restored = HashCache.from_json(cache.to_json())
    again = scan_landing(f"memory://{base}", cache=restored)
    assert hashed == [] and len(again) == 2
    fs.rm(f"{base}/b.stdf")
    fs.pipe(f"{base}/a.stdf", b"one, rewritten")
    after = scan_landing(f"memory://{base}", cache=restored)
    assert hashed == [f"{base}/a.stdf"]
    assert [f.sha256 for f in after] == [hashlib.sha256(b"one, rewritten").hexdigest()]
    assert list(restored.entries) == [f"{base}/a.stdf"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ftp_server(tmp_path):
    pyftpdlib = pytest.importorskip("pyftpdlib")
    del pyftpdlib
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    home = tmp_path / "ftp_home"
    (home / "landing").mkdir(parents=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user("tester", "s3cret", str(home), perm="elradfmw")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "banner": "ready"})
    port = _free_port()
    server = FTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        yield home / "landing", port
    finally:
        server.close_all()
        thread.join(timeout=5)


def test_ftp_landing_is_scanned_and_ingested_without_credentials_in_uris(ftp_server, tmp_path):
    folder, port = ftp_server
    lot = write_lot(folder / "lot1.stdf", parts=8, tests=4, sites=4, lot_id="FTP-LOT")
    (folder / "readme.txt").write_text("not stdf")
    options = {"username": "tester", "password": "s3cret"}
    files = scan_landing(f"ftp://127.0.0.1:{port}/landing", options)
    assert [f.name for f in files] == ["lot1.stdf"]
    (found,) = files
    assert found.sha256 == hashlib.sha256(lot.path.read_bytes()).hexdigest()
    assert "s3cret" not in found.uri and found.uri.startswith(f"ftp://127.0.0.1:{port}/")
    result = ingest_stdf_file(
        found.uri, Storage(str(tmp_path / "root")), found.sha256, source_options=options
    )
    assert result.ok, result.error
    assert result.partition["lot"] == "FTP-LOT" and result.rows["parts"] == 8
    assert result.source_bytes == lot.path.stat().st_size


def test_credentials_in_the_landing_url_are_used_but_not_repeated(ftp_server):
    folder, port = ftp_server
    write_lot(folder / "lot2.stdf", parts=4, tests=2, sites=2)
    files = scan_landing(f"ftp://tester:s3cret@127.0.0.1:{port}/landing")
    assert [f.name for f in files] == ["lot2.stdf"] and "s3cret" not in files[0].uri
