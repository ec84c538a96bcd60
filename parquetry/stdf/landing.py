"""Finding STDF files in a landing folder and naming each by its content.

A landing folder is anything fsspec can list: a local path, ``file://``, ``ftp://``, ``sftp://``,
``s3://``, ``memory://``. Each STDF file found gets the sha256 of its bytes (as stored, so a ``.gz``
and its plain twin are two files) as its ``file_id``: a re-upload of the same bytes under another name
is recognised, and Parquet output named by ``file_id`` is replaced, not duplicated, on re-ingest.

Hashing reads every byte, so :class:`HashCache` remembers the hash of each path by (size, mtime): a
sensor tick re-hashes only files that are new or changed. Reads are streamed in blocks, so memory
stays bounded whatever the file size.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STDF_SUFFIXES: tuple[str, ...] = (".stdf", ".std", ".stdf.gz", ".std.gz", ".bz2", ".zip")
HASH_BLOCK = 8 << 20


@dataclass(frozen=True)
class LandingFile:
    """One STDF file in the landing folder."""

    uri: str  # full URI (with the scheme for remote filesystems), readable by fsspec.open
    size: int
    mtime: str  # as the filesystem reports it, normalised to a string (only compared for equality)
    sha256: str

    @property
    def file_id(self) -> str:
        return self.sha256

    @property
    def name(self) -> str:
        return posixpath.basename(self.uri.rstrip("/"))


@dataclass
class HashCache:
    """sha256 of files by path, valid while (size, mtime) are unchanged. JSON-serialisable for cursors."""

    entries: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def get(self, path: str, size: int, mtime: str) -> str | None:
        hit = self.entries.get(path)
        if hit is not None and hit[0] == size and hit[1] == mtime:
            return hit[2]
        return None

    def put(self, path: str, size: int, mtime: str, sha256: str) -> None:
        self.entries[path] = (size, mtime, sha256)

    def keep_only(self, paths: Iterable[str]) -> None:
        """Forget files that left the landing folder, so the cache does not grow forever."""
        present = set(paths)
        self.entries = {p: v for p, v in self.entries.items() if p in present}

    def to_json(self) -> str:
        return json.dumps({p: list(v) for p, v in sorted(self.entries.items())}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> HashCache:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls({p: (int(v[0]), str(v[1]), str(v[2])) for p, v in raw.items()})


def is_stdf_name(name: str) -> bool:
    """Whether a file name looks like STDF (plain or compressed); hidden and partial uploads are not."""
    base = posixpath.basename(name)
    if base.startswith("."):
        return False
    return base.lower().endswith(STDF_SUFFIXES)


def _mtime(info: dict[str, Any]) -> str:
    """The modification time from an fsspec ``info`` dict, whatever key and type the filesystem uses."""
    for key in ("mtime", "LastModified", "last_modified", "modify", "modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)
    return ""


def landing_options(uri: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """fsspec options for files below ``uri``: those given plus any the URI itself carries
    (``ftp://user:password@host:port``), so that file URIs can be written without credentials."""
    import fsspec

    protocol = uri.split("://", 1)[0] if "://" in uri else "file"
    cls = fsspec.get_filesystem_class(protocol)
    return {**cls._get_kwargs_from_urls(uri), **(storage_options or {})}


def _filesystem(uri: str, storage_options: dict[str, Any] | None) -> tuple[Any, str, str]:
    """(fsspec filesystem, root path inside it, URI prefix that turns a path back into a URI).

    The prefix never holds credentials: a URI names a file for logs, tags and metadata."""
    import fsspec

    options = landing_options(uri, storage_options)
    fs, root = fsspec.core.url_to_fs(uri, **options)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local") or "://" not in uri:
        return fs, root, ""
    scheme, rest = uri.split("://", 1)
    if protocol in ("ftp", "sftp", "ssh"):
        authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]  # host[:port], no user or password
        return fs, root, f"{scheme}://{authority}"
    return fs, root, f"{scheme}://"


def _to_uri(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if prefix.endswith("://"):
        return prefix + path
    return prefix + ("" if path.startswith("/") else "/") + path


def hash_file(fs: Any, path: str, block: int = HASH_BLOCK) -> tuple[str, int]:
    """sha256 hex and byte count of one file, read in ``block``-sized pieces."""
    sha = hashlib.sha256()
    size = 0
    with fs.open(path, "rb", block_size=block) as fh:
        while chunk := fh.read(block):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def scan_landing(
    uri: str,
    storage_options: dict[str, Any] | None = None,
    cache: HashCache | None = None,
) -> list[LandingFile]:
    """Every STDF file below ``uri`` (recursively), with its content hash, sorted by URI.

    ``cache`` (updated in place) spares re-hashing files whose size and mtime did not change.
    """
    fs, root, prefix = _filesystem(uri, storage_options)
    cache = cache if cache is not None else HashCache()
    listing = fs.find(root, detail=True, withdirs=False)
    found: list[LandingFile] = []
    present: list[str] = []
    for path, info in sorted(listing.items()):
        if info.get("type", "file") != "file" or not is_stdf_name(path):
            continue
        present.append(path)
        size = int(info.get("size") or 0)
        mtime = _mtime(info)
        sha = cache.get(path, size, mtime)
        if sha is None:
            sha, read = hash_file(fs, path)
            if read != size:  # still being written: hash it again on a later scan
                continue
            cache.put(path, size, mtime, sha)
        found.append(LandingFile(_to_uri(prefix, path), size, mtime, sha))
    cache.keep_only(present)
    return found


def open_landing_file(uri: str, storage_options: dict[str, Any] | None = None) -> Any:
    """An open binary file object for a landing URI (local path or fsspec URL); the caller closes it.

    ``storage_options`` are those of the landing folder (see :func:`landing_options`)."""
    import fsspec

    return fsspec.open(uri, "rb", **(storage_options or {})).open()
