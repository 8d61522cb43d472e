"""What the parquet files of one release hold: rows, files and bytes per config and split, and
label counts per split, for the card and its ``dataset_info``.

The build gathers these as the rows pass (``spa_vl.release.writer``) and hands them to the card
renderer, so a build reads none of its own files again; ``read_stats`` reads the same figures
from a release folder (parquet footers and the four small label columns), for ``spa-vl card``
and its check. Both give equal ``ReleaseStats`` for the same release.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spa_vl.names import EVAL_SETS, LEVELS, SPLITS
from spa_vl.release import layout
from spa_vl.taxonomy import CONFIGS, load_taxonomy

if TYPE_CHECKING:
    import pyarrow as pa

UNKNOWN = None  # the label of a row whose ClassLabel is -1


@dataclass
class ReleaseStats:
    """What the parquet files of one release hold."""

    rows: dict[str, dict[str, int]]  # config -> split -> rows
    files: dict[str, dict[str, list[str]]]  # config -> split -> relative shard paths, reading order
    parquet_bytes: dict[str, int]  # config -> bytes of its parquet files
    # level -> split -> Counter over label names (None for rows whose label is unknown)
    labels: dict[str, dict[str, Counter]] = field(default_factory=dict)
    eval_sets: Counter = field(default_factory=Counter)  # test rows per eval_set name
    # (config, split) -> Arrow bytes (datasets' num_bytes); None when read back from a folder
    arrow_bytes: dict[tuple[str, str], int] | None = None
    synthetic: bool = False  # the data is `spa-vl sample`'s (its answers carry the placeholder)

    def total(self, config: str = "default") -> int:
        return sum(self.rows.get(config, {}).values())

    def count(self, level: str, split: str, name: str | None) -> int:
        return self.labels[level][split][name]

    def unlabeled(self, split: str) -> int:
        """Rows of ``split`` whose domain is unknown (kept in ``default`` only)."""
        return self.labels["domain"][split][UNKNOWN]

    def split_folders(self, config: str) -> dict[str, list[str]]:
        """split -> the data folders of ``config`` holding files of it, in reading order."""
        out: dict[str, list[str]] = {}
        for split, paths in self.files.get(config, {}).items():
            for rel in paths:
                folder = rel.split("/")[1]
                if folder not in out.setdefault(split, []):
                    out[split].append(folder)
        return {s: f for s, f in out.items() if f}


def _label_names() -> dict[str, list]:
    tax = load_taxonomy()
    return {**{level: tax.names(level) for level in LEVELS}, "eval_set": list(EVAL_SETS)}


def stats_from_counts(
    files: list[tuple[str, str, str, int, int, int]],
    bins: dict[str, dict[str, list[int]]],
    *,
    synthetic: bool = False,
    version: int = 2,
) -> ReleaseStats:
    """``ReleaseStats`` from what a writer recorded: ``files`` as (relative path, folder,
    split, rows, bytes on disk, Arrow bytes), ``bins`` as level -> split -> counts per
    ClassLabel id + 1 (bin 0: unknown)."""
    order = {f: i for i, f in enumerate(layout.data_folders() if version == 2 else CONFIGS)}
    files = sorted(files, key=lambda f: (order.get(f[1], len(order)), f[1], f[0]))
    rows = {c: dict.fromkeys(SPLITS, 0) for c in CONFIGS}
    paths: dict[str, dict[str, list[str]]] = {c: {s: [] for s in SPLITS} for c in CONFIGS}
    sizes = dict.fromkeys(CONFIGS, 0)
    arrow = {(c, s): 0 for c in CONFIGS for s in SPLITS}
    for rel, folder, split, n, size, nbytes in files:
        for config in CONFIGS:
            if folder in layout.folders_of_config(config, version):
                rows[config][split] += n
                paths[config][split].append(rel)
                sizes[config] += size
                arrow[(config, split)] += nbytes
    stats = ReleaseStats(rows, paths, sizes, arrow_bytes=arrow, synthetic=synthetic)
    names = _label_names()
    stats.labels = {level: {s: Counter() for s in SPLITS} for level in LEVELS}
    for level in LEVELS:
        for s in SPLITS:
            counts = bins[level][s]
            stats.labels[level][s].update(
                {(names[level][i - 1] if i else UNKNOWN): c for i, c in enumerate(counts) if c}
            )
    stats.eval_sets.update(
        {(EVAL_SETS[i - 1] if i else UNKNOWN): c for i, c in enumerate(bins["eval_set"]["test"]) if c}
    )
    return stats


def read_stats(folder: str | Path) -> ReleaseStats:
    """Count rows per config/split and labels per split (``default`` config) of a release."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    found = layout.ReleaseLayout.of(folder)
    rows: dict[str, dict[str, int]] = {}
    files: dict[str, dict[str, list[str]]] = {}
    sizes: dict[str, int] = {}
    footers: dict[Path, int] = {}
    for config in CONFIGS:
        rows[config], files[config], sizes[config] = {}, {}, 0
        for split in SPLITS:
            paths = found.files(config, split)
            for p in paths:
                if p not in footers:
                    footers[p] = pq.ParquetFile(p).metadata.num_rows
            rows[config][split] = sum(footers[p] for p in paths)
            files[config][split] = [p.relative_to(folder).as_posix() for p in paths]
            sizes[config] += sum(p.stat().st_size for p in paths)
    stats = ReleaseStats(rows, files, sizes)
    names = _label_names()
    stats.labels = {level: {s: Counter() for s in SPLITS} for level in LEVELS}
    for split in SPLITS:
        for batch in found.read_split(split, [*LEVELS, "eval_set"]):
            for level in LEVELS:
                stats.labels[level][split].update(
                    names[level][i] if i is not None and i >= 0 else UNKNOWN
                    for i in batch.column(level).to_pylist()
                )
            if split == "test":
                stats.eval_sets.update(
                    EVAL_SETS[i] if i is not None and i >= 0 else UNKNOWN
                    for i in batch.column("eval_set").to_pylist()
                )
    stats.synthetic = _first_group_is_sample(found)
    return stats


def is_sample_answer(rejected: pa.Array) -> bool:
    """Whether every ``rejected`` answer given (at least one) carries the placeholder text of
    ``spa-vl sample``."""
    import pyarrow.compute as pc

    from spa_vl.sample import _HARMFUL

    answers = rejected.drop_null()
    marker = _HARMFUL.split("{", 1)[0]
    return len(answers) > 0 and pc.all(pc.starts_with(answers, marker)).as_py() is True


def _first_group_is_sample(found: layout.ReleaseLayout, check: Callable | None = None) -> bool:
    """Whether the first row group of ``default``'s train data holds the sample's answers."""
    import pyarrow.parquet as pq

    paths = found.files("default", "train")
    if not paths:
        return False
    pf = pq.ParquetFile(paths[0])
    if pf.metadata.num_row_groups == 0:
        return False
    return (check or is_sample_answer)(pf.read_row_group(0, columns=["rejected"]).column(0).combine_chunks())


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
