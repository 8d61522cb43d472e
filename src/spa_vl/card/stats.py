"""Counts for the card, read from the release's parquet files (never from the card itself).

Row counts come from the parquet footers; label counts read only the four small integer
columns of the ``default`` config, so this stays fast on the full 100,788-row release.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from spa_vl.features import EVAL_SETS
from spa_vl.release.metadata import data_files
from spa_vl.sources import SPLITS
from spa_vl.taxonomy import CONFIGS, LEVELS, load_taxonomy

UNKNOWN = None  # the label of a row whose ClassLabel is -1


@dataclass
class ReleaseStats:
    """What the parquet files of one release hold."""

    rows: dict[str, dict[str, int]]  # config -> split -> rows
    files: dict[str, dict[str, list[str]]]  # config -> split -> relative shard paths
    parquet_bytes: dict[str, int]  # config -> bytes of its parquet files
    # level -> split -> Counter over label names (None for rows whose label is unknown)
    labels: dict[str, dict[str, Counter]] = field(default_factory=dict)
    eval_sets: Counter = field(default_factory=Counter)  # test rows per eval_set name

    def total(self, config: str = "default") -> int:
        return sum(self.rows.get(config, {}).values())

    def count(self, level: str, split: str, name: str | None) -> int:
        return self.labels[level][split][name]

    def unlabeled(self, split: str) -> int:
        """Rows of ``split`` whose domain is unknown (kept in ``default`` only)."""
        return self.labels["domain"][split][UNKNOWN]


def read_stats(folder: str | Path) -> ReleaseStats:
    """Count rows per config/split and labels per split (``default`` config) of a release."""
    folder = Path(folder)
    found = data_files(folder)
    rows: dict[str, dict[str, int]] = {}
    files: dict[str, dict[str, list[str]]] = {}
    sizes: dict[str, int] = {}
    for config in CONFIGS:
        rows[config], files[config], sizes[config] = {}, {}, 0
        for split in SPLITS:
            paths = found.get(config, {}).get(split, [])
            rows[config][split] = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
            files[config][split] = [p.relative_to(folder).as_posix() for p in paths]
            sizes[config] += sum(p.stat().st_size for p in paths)
    stats = ReleaseStats(rows, files, sizes)
    tax = load_taxonomy()
    names = {level: tax.names(level) for level in LEVELS}
    stats.labels = {level: {s: Counter() for s in SPLITS} for level in LEVELS}
    for split in SPLITS:
        for path in found.get("default", {}).get(split, []):
            table = pq.read_table(path, columns=[*LEVELS, "eval_set"])
            for level in LEVELS:
                ids = table.column(level).to_pylist()
                stats.labels[level][split].update(
                    names[level][i] if i is not None and i >= 0 else UNKNOWN for i in ids
                )
            if split == "test":
                stats.eval_sets.update(
                    EVAL_SETS[i] if i is not None and i >= 0 else UNKNOWN
                    for i in table.column("eval_set").to_pylist()
                )
    return stats


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bucket of a row count."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for bound, name in bounds:
        if rows < bound:
            return name
    return "1B<n<10B"
