"""Placeholder: filled in by the stdf files work. Exposes `defs`, merged in definitions.py."""

import dagster as dg

defs = dg.Definitions()
