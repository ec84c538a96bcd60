"""Parquetry's encoder loads numba only where it encodes a column itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import pyarrow as pa
from parquetry.storage import ParquetOptions, Storage

storage = Storage(sys.argv[1])
table = pa.table({"k": pa.array([1, 2], pa.int64()), "s": ["a", "b"]})
storage.write_parquet(storage.path("dictionaries.parquet"), table, options=ParquetOptions())
print("numba" in sys.modules)
options = ParquetOptions(use_dictionary=False, delta_integers=True)
storage.write_parquet(storage.path("own.parquet"), table, options=options)
print("numba" in sys.modules)
"""


def test_numba_loads_only_when_a_column_is_parquetrys_to_encode(tmp_path: Path) -> None:
    """Dictionaries on every column (the default options): pyarrow writes the file and numba stays out
    of the process; delta integers and plain strings: Parquetry's encoder writes them."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], check=True, capture_output=True, text=True
    )
    assert out.stdout.split() == ["False", "True"]
