"""Counts for the card: ``spa_vl.release.stats`` (gathered by the build as it writes, or read
from a release folder's parquet files, never from the card itself)."""

from __future__ import annotations

from spa_vl.release.stats import UNKNOWN, ReleaseStats, read_stats, size_category

__all__ = ["UNKNOWN", "ReleaseStats", "read_stats", "size_category"]
