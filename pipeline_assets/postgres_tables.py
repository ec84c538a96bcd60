"""Placeholder: filled in by the postgres tables work. Exposes `defs`, merged in definitions.py."""

import dagster as dg

defs = dg.Definitions()
