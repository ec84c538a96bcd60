"""Where a compaction's outputs go in the dataset's order, so that every row stays where it was.

The catalog orders a dataset's live files by their *position* (a PostgreSQL ``numeric``; a file a
writer registers has its id, so new files come last), and readers take the files in that order (the
DuckDB views, :meth:`Catalog.live_files`). Giving outputs new ids would move the rewritten rows after
every file the compaction left in place.

The planner never lets an output span a file that stays (:mod:`parquetry.compact.plan`), so within a
directory each output's rows lie between two files that stay, and the output can take a position there:

* an output takes the position of the input file its first row comes from (that input is retired by the
  same commit, so the position is free);
* further outputs that start in that same file (a file of many row groups split into several outputs)
  are spread evenly between it and the next position the dataset held, with one more decimal digit than
  the gap needs: exact, strictly increasing, and short however often a dataset is compacted.

Files registered while the compaction ran have new ids, larger than any position handed out here (a
position beyond the last live file stays below the next integer), so they still come last.
"""

from __future__ import annotations

import bisect
import decimal
from collections.abc import Mapping
from decimal import Decimal

from parquetry.compact.plan import Plan

# Enough digits that sums of positions are exact (PostgreSQL's numeric is exact too).
_CONTEXT = decimal.Context(prec=1000, rounding=decimal.ROUND_FLOOR)


class PositionError(ValueError):
    """The plan's outputs cannot be placed in order (a planner bug: the commit must not happen)."""


def output_positions(plan: Plan, live: Mapping[str, Decimal]) -> list[Decimal]:
    """One catalog position per output of ``plan``, in output order.

    ``live`` maps every live file of the planned snapshot (inputs and files left in place, all
    directories) to its position.
    """
    taken = sorted(live.values())

    def next_after(x: Decimal) -> Decimal:
        i = bisect.bisect_right(taken, x)
        if i < len(taken):
            return taken[i]
        return x.to_integral_value(rounding=decimal.ROUND_FLOOR) + 1

    anchors: list[Decimal] = []
    for planned in plan.outputs:
        first = planned.row_groups[0].slices[0].input_index
        anchors.append(live[plan.inputs[first].path])

    out: list[Decimal | None] = [None] * len(plan.outputs)
    last_in_directory: dict[str, tuple[int, Decimal]] = {}  # directory -> (output, its anchor)
    followers: dict[int, list[int]] = {}  # anchoring output -> outputs starting in the same input
    for n, (planned, anchor) in enumerate(zip(plan.outputs, anchors, strict=True)):
        previous = last_in_directory.get(planned.directory)
        if previous is not None and anchor < previous[1]:
            raise PositionError(
                f"plan {plan.hash[:20]}: output {planned.name} starts before the output before it"
            )
        if previous is not None and anchor == previous[1]:
            followers[previous[0]].append(n)
            continue
        out[n] = anchor
        followers[n] = []
        last_in_directory[planned.directory] = (n, anchor)

    for n, rest in followers.items():
        if not rest:
            continue
        low = out[n]
        assert low is not None
        gap = _CONTEXT.subtract(next_after(low), low)
        step = _CONTEXT.divide(gap, len(rest) + 1)
        # Keep only the step's first significant digit: still above zero, and k * step stays in the gap.
        step = step.quantize(Decimal(1).scaleb(step.adjusted()), context=_CONTEXT)
        for k, m in enumerate(rest, start=1):
            out[m] = _CONTEXT.add(low, _CONTEXT.multiply(step, k))
    placed = [p for p in out if p is not None]
    if len(placed) != len(out):  # every output is an anchor or follows one
        raise PositionError(f"plan {plan.hash[:20]}: an output got no position")
    return placed
