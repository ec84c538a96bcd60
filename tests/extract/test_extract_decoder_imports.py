"""The CPU consumer loads the decoder's modules in its own thread, before its decoding thread starts.

Under pytest every Parquetry module is parsed for assertion rewriting, and CPython 3.11's ``ast.parse``
fails when two threads run it at once; a first import of the decoder inside the decoding thread, while
another thread imports too, did fail that way. Checked in a fresh interpreter, where nothing is loaded
yet: every ``parquetry.pgcopy`` module is imported by the thread that runs the consumer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib.abc, sys, threading
from pathlib import Path
from types import SimpleNamespace

importers = {}

class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("parquetry.pgcopy."):
            importers.setdefault(name, threading.current_thread().name)
        return None

sys.meta_path.insert(0, Recorder())

from parquetry.extract.parquet import ParquetConsumer
from parquetry.extract.staging import StagedChunk
from parquetry.pgcopy.types import PgColumn
from parquetry.storage import ParquetOptions, Storage
from parquetry.testing.copy_reference import encode_copy_binary

out = Path(sys.argv[1])
columns = [PgColumn("id", 20, "bigint"), PgColumn("name", 25, "text")]
path = out / "chunk.copy"
path.write_bytes(encode_copy_binary(columns, [[i, f"v{i}"] for i in range(10)]))
chunk = StagedChunk(path=path, task=0, seq=0, bytes=path.stat().st_size, rows=10, source="t#0")
storage = Storage(str(out / "parquet"))
result = ParquetConsumer(storage, storage.path("t"), ParquetOptions())(
    SimpleNamespace(columns=columns), iter([chunk])
)
assert result.rows == 10, result.rows
for name in ("parquetry.pgcopy.rows", "parquetry.pgcopy.kernels", "parquetry.pgcopy.rowspec"):
    assert name in importers, (name, sorted(importers))
print(sorted(set(importers.values())))
"""


def test_the_decoder_modules_are_imported_by_the_consumers_thread(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['MainThread']"
