"""Sensors: landing folders for STDF files and datasets flagged for compaction."""
