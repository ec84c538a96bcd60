"""Reconcile published STDF tables with the file's own record counts.

The counts come from a plain header walk (:func:`parquetry.stdf.record_counts`: REC_TYP/REC_SUB and
REC_LEN only), which shares no decoding with the parser, so a parser that drops or duplicates records
is caught after publishing, from the Parquet files as readers see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow.compute as pc
import pyarrow.parquet as pq

from parquetry.storage import Storage, WrittenFile


@dataclass(frozen=True)
class CountCheck:
    """One comparison: ``what`` was expected ``expected`` times and the Parquet holds ``found``."""

    what: str
    expected: int
    found: int

    @property
    def ok(self) -> bool:
        return self.expected == self.found


def reconcile_record_counts(
    counts: Mapping[str, int], files: Mapping[str, WrittenFile], storage: Storage
) -> list[CountCheck]:
    """Compare header-walk ``counts`` with the rows of the published ``files`` (table -> file).

    One row per record: TSR -> ``test_summaries``, PCR -> ``part_counts``, HBR + SBR -> ``bins``, and the
    PTR and FTR rows of ``results``. An MPR expands to one row per pin, so MPR records are counted as
    distinct record indexes among the MPR rows (an MPR holding no result has none).
    """

    def rows(table: str) -> int:
        return files[table].rows if table in files else 0

    def result_kinds():
        if "results" not in files:
            return None
        with storage.fs.open_input_file(files["results"].path) as fh:
            return pq.read_table(fh, columns=["rec_type", "rec_index"])

    checks = [
        CountCheck("files rows (one per file)", 1, rows("files")),
        CountCheck("TSR records -> test_summaries rows", counts.get("TSR", 0), rows("test_summaries")),
        CountCheck("PCR records -> part_counts rows", counts.get("PCR", 0), rows("part_counts")),
        CountCheck(
            "HBR + SBR records -> bins rows", counts.get("HBR", 0) + counts.get("SBR", 0), rows("bins")
        ),
    ]
    results = result_kinds()
    kinds: dict[str, int] = {}
    mpr_records = 0
    if results is not None:
        rec_type = results["rec_type"].cast("string")
        for entry in pc.value_counts(rec_type).to_pylist():
            kinds[entry["values"]] = entry["counts"]
        mpr_rows = results.filter(pc.equal(rec_type, "MPR"))
        mpr_records = len(pc.unique(mpr_rows["rec_index"])) if mpr_rows.num_rows else 0
    checks.append(CountCheck("PTR records -> results rows", counts.get("PTR", 0), kinds.get("PTR", 0)))
    checks.append(CountCheck("FTR records -> results rows", counts.get("FTR", 0), kinds.get("FTR", 0)))
    if mpr_records > counts.get("MPR", 0):
        checks.append(CountCheck("MPR records -> distinct results", counts.get("MPR", 0), mpr_records))
    return checks
