"""The sunburst reads well: names inside their wedges, legible text colours, no empty margins,
outer labels that never overlap."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spa_vl.card import plots
from spa_vl.card.plots import DOMAIN_COLOURS, _box_in_wedge, _ink, _lighten, _luminance, _spread
from spa_vl.card.stats import ReleaseStats, read_stats
from spa_vl.names import LEVELS
from spa_vl.taxonomy import load_taxonomy


def contrast(a, b) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("shade", [plots._SHADES["domain"], plots._SHADES["category"]])
def test_inner_label_text_is_legible_on_every_wedge(shade: float) -> None:
    for colour in DOMAIN_COLOURS:
        face = _lighten(colour, shade)
        assert contrast(face, _ink(face)) >= 4.5, colour  # WCAG AA for normal text
    # Malicious Use's vermilion had white text (3.9:1); black reads better (5.4:1).
    assert _ink("#D55E00") == "black" and _ink("#0072B2") == "white"


def test_spread_keeps_labels_apart_round_the_circle() -> None:
    calm = [80.0, 40.0, -100.0, -200.0]
    assert _spread(calm, 2.0) == calm  # nothing crowds: nothing moves
    crowded = [89.9, 89.8, 89.7, 0.0, -10.0, -10.2, -269.8, -269.9]
    placed = _spread(crowded, 2.0)
    ring = sorted(a % 360 for a in placed)
    gaps = [b - a for a, b in itertools.pairwise(ring)] + [ring[0] + 360 - ring[-1]]
    assert min(gaps) >= 2.0 - 1e-9  # also across the top, where the circle starts and ends
    assert max(abs(p - c) for p, c in zip(placed, crowded, strict=True)) < 8


def test_box_in_wedge() -> None:
    ring, wedge = (0.27, 0.64), (60.0, 120.0)  # 60 degrees round the top
    assert _box_in_wedge(0.2, 0.05, 0.455, 90.0, True, ring, wedge)
    assert not _box_in_wedge(0.6, 0.05, 0.455, 90.0, True, ring, wedge)  # too long for the arc
    assert not _box_in_wedge(0.2, 0.40, 0.455, 90.0, True, ring, wedge)  # too tall for the ring
    # A straight box along the ring: its corners reach past the outer edge before its middle.
    assert not _box_in_wedge(0.43, 0.30, 0.455, 90.0, True, ring, wedge)


def _sample_stats() -> ReleaseStats:
    tax = load_taxonomy()
    labels = {level: {s: Counter() for s in ("train", "validation", "test")} for level in LEVELS}
    for i, sub in enumerate(tax.names("subcategory")):
        d, c, _ = tax.path(sub)
        n = 10 + 97 * (i % 5)
        for level, name in (("domain", d), ("category", c), ("subcategory", sub)):
            labels[level]["train"][name] += n
    return ReleaseStats(rows={}, files={}, parquet_bytes={}, labels=labels)


def test_sunburst_names_every_domain_inside_and_has_no_empty_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[str] = []
    save = plots._save

    def spy(fig, path, box="tight"):
        drawn.extend(t.get_text() for t in fig.axes[0].texts)
        save(fig, path, box)

    monkeypatch.setattr(plots, "_save", spy)
    path = plots.taxonomy_sunburst(_sample_stats(), tmp_path / "sun.png")
    flat = {" ".join(t.split()) for t in drawn}
    for domain in load_taxonomy().names("domain"):
        name = load_taxonomy().display("domain", domain)
        assert name in flat or name.removesuffix(" Harms") in flat, name
    ink = np.asarray(Image.open(path).convert("L")) < 250
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    height, width = ink.shape
    # Drawn from edge to edge, but for the 0.15 in pad (17 px at 110 dpi) and the legend's own
    # border (the uncropped figure had ~140 px of blank canvas above the title).
    assert max(rows[0], height - rows[-1], cols[0], width - cols[-1]) <= 30


def test_card_sunburst_is_reproducible(card_release: Path, tmp_path: Path) -> None:
    stats = read_stats(card_release)
    a = plots.taxonomy_sunburst(stats, tmp_path / "a.png")
    b = plots.taxonomy_sunburst(stats, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes() == (card_release / "images/taxonomy_sunburst.png").read_bytes()
