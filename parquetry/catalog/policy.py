"""When a dataset needs compaction: the fragmentation policy, evaluated in SQL on every catalog change.

Fragmentation is judged per directory (a Hive partition is a directory and compaction never mixes
directories), so a dataset with many partitions of one healthy file each is not flagged forever:

* a directory holds ``min_small_files`` or more live files smaller than ``small_file_bytes``, or
* a directory holds ``min_row_groups`` or more row groups whose mean size is below
  ``min_mean_row_group_rows`` rows (many tiny row groups make every scan slow, even in few files).

The same thresholds tell the planner which files are healthy and stay as they are, so one compaction
leaves a directory that the policy no longer flags (the loop converges).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql


@dataclass(frozen=True)
class FragmentationPolicy:
    small_file_bytes: int = 32 << 20
    min_small_files: int = 8
    min_row_groups: int = 8
    min_mean_row_group_rows: int = 100_000

    def flag_sql(self, schema: str) -> sql.Composed:
        """A scalar query over one dataset (``%(dataset_id)s``): does the policy flag it?"""
        return sql.SQL(
            """
            SELECT coalesce(bool_or(
                       d.small >= {min_small}
                       OR (d.rgs >= {min_rgs} AND d.rows::float8 / greatest(d.rgs, 1) < {min_mean})), false)
            FROM (SELECT regexp_replace(path, '/[^/]*$', '') AS dir,
                         count(*) FILTER (WHERE bytes < {small_bytes}) AS small,
                         sum(row_groups) AS rgs, sum(rows) AS rows
                  FROM {s}.files WHERE dataset_id = %(dataset_id)s AND state = 'live'
                  GROUP BY 1) AS d
            """
        ).format(
            s=sql.Identifier(schema),
            min_small=sql.Literal(self.min_small_files),
            min_rgs=sql.Literal(self.min_row_groups),
            min_mean=sql.Literal(self.min_mean_row_group_rows),
            small_bytes=sql.Literal(self.small_file_bytes),
        )

    def file_is_healthy(self, nbytes: int, rows: int, row_groups: int) -> bool:
        """A file the planner leaves in place: big enough and with row groups big enough."""
        if row_groups == 0:
            return False
        return nbytes >= self.small_file_bytes and rows / row_groups >= self.min_mean_row_group_rows
