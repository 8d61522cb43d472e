"""Counts read from the parquet files, the size category and the plots."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from spa_vl.card.plots import rows_per_split_domain, taxonomy_sunburst
from spa_vl.card.stats import ReleaseStats, read_stats, size_category


def test_stats_of_the_sample(card_release: Path) -> None:
    # SampleSpec defaults: 10 train rows per subcategory + 5 unlabelled, 2 validation rows and
    # one HarmEval + one HelpEval row per subcategory.
    stats = read_stats(card_release)
    assert stats.rows["default"] == {"train": 535, "validation": 106, "test": 106}
    assert stats.rows["malicious_use"] == {"train": 220, "validation": 44, "test": 44}
    assert stats.unlabeled("train") == 5 and stats.unlabeled("test") == 0
    assert stats.count("subcategory", "train", "scamns") == 10
    assert stats.count("category", "validation", "false beliefs") == 6
    assert stats.count("domain", "test", "Information & Safety Harms") == 6
    assert dict(stats.eval_sets) == {"harm": 53, "help": 53}


@pytest.mark.parametrize(
    ("rows", "bucket"),
    [(0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"), (100_787, "100K<n<1M"),
     (100_788, "100K<n<1M"), (99_999, "10K<n<100K"), (2_000_000, "1M<n<10M")],
)  # fmt: skip
def test_size_category(rows: int, bucket: str) -> None:
    assert size_category(rows) == bucket


def _png_size_and_chunks(path: Path) -> tuple[tuple[int, int], list[bytes]]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, i = [], 8
    while i < len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        chunks.append(data[i + 4 : i + 8])
        i += 12 + length
    return (width, height), chunks


@pytest.mark.parametrize("name", ["taxonomy_sunburst.png", "rows_per_split_domain.png"])
def test_plots_are_pngs_without_software_stamp(card_release: Path, name: str) -> None:
    (width, height), chunks = _png_size_and_chunks(card_release / "images" / name)
    assert width >= 1000 and height >= 400  # big enough to read
    assert b"tEXt" not in chunks and b"iTXt" not in chunks  # no version or date stamped in


def test_plots_of_an_empty_release(tmp_path: Path) -> None:
    from collections import Counter

    from spa_vl.names import LEVELS

    splits = ("train", "validation", "test")
    empty = ReleaseStats(
        rows={}, files={}, parquet_bytes={},
        labels={level: {s: Counter() for s in splits} for level in LEVELS},
    )  # fmt: skip
    taxonomy_sunburst(empty, tmp_path / "a.png")
    rows_per_split_domain(empty, tmp_path / "b.png")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0
