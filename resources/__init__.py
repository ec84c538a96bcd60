"""Dagster resources: configuration and clients that assets receive; created lazily, never at import."""
