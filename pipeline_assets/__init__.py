"""Parquetry's Dagster code location: thin assets, checks, jobs and schedules over the engine."""
