"""Placeholder: filled in by the compaction work. Exposes `defs`, merged in definitions.py."""

import dagster as dg

defs = dg.Definitions()
