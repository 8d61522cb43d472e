"""The sunburst reads well: names inside their wedges, legible text colours, no empty margins,
outer labels that never overlap. The figures are drawn with Pillow alone (no matplotlib), the
same bytes from the same counts, and a failure to draw them is the build's, said as such."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spa_vl.card import canvas, plots
from spa_vl.card.canvas import lighten
from spa_vl.card.plots import DOMAIN_COLOURS, _box_in_wedge, _ink, _luminance, _spread
from spa_vl.card.stats import ReleaseStats, read_stats
from spa_vl.names import LEVELS
from spa_vl.release.build import build_release
from spa_vl.release.layout import CARD_IMAGES
from spa_vl.taxonomy import load_taxonomy


def contrast(a, b) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("shade", [plots._SHADES["domain"], plots._SHADES["category"]])
def test_inner_label_text_is_legible_on_every_wedge(shade: float) -> None:
    for colour in DOMAIN_COLOURS:
        face = lighten(colour, shade)
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
    inside: list[str] = []
    place = plots._inner_label

    def spy(fig, level, text, a0, a1, ink):
        before = len(fig.texts)
        place(fig, level, text, a0, a1, ink)
        inside.extend(fig.texts[before:])  # what _inner_label fitted in the wedge

    monkeypatch.setattr(plots, "_inner_label", spy)
    path = plots.taxonomy_sunburst(_sample_stats(), tmp_path / "sun.png")
    flat = {" ".join(t.split()) for t in inside}
    for domain in load_taxonomy().names("domain"):
        name = load_taxonomy().display("domain", domain)
        assert name in flat or name.removesuffix(" Harms") in flat, name
    ink = np.asarray(Image.open(path).convert("L")) < 250
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    height, width = ink.shape
    # Drawn from edge to edge, but for the 0.15 in pad (17 px at 110 dpi).
    assert max(rows[0], height - rows[-1], cols[0], width - cols[-1]) <= 30


def test_card_figures_are_reproducible(card_release: Path, tmp_path: Path) -> None:
    """The same counts, the same bytes: twice here, and as the build drew them."""
    stats = read_stats(card_release)
    a = plots.taxonomy_sunburst(stats, tmp_path / "a.png")
    b = plots.taxonomy_sunburst(stats, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes() == (card_release / CARD_IMAGES["sunburst"]).read_bytes()
    plots.draw_figures(tmp_path / "again", stats)
    for name in CARD_IMAGES.values():
        assert (tmp_path / "again" / name).read_bytes() == (card_release / name).read_bytes(), name


def test_figures_are_drawn_without_matplotlib(tmp_path: Path) -> None:
    """Neither importing the plots nor drawing imports matplotlib; its DejaVu font is found
    all the same."""
    code = textwrap.dedent(
        """
        import sys
        from collections import Counter
        from spa_vl.card import canvas, plots
        from spa_vl.card.stats import ReleaseStats
        from spa_vl.names import LEVELS
        splits = ("train", "validation", "test")
        labels = {level: {s: Counter({"x": 1}) for s in splits} for level in LEVELS}
        plots.draw_figures(sys.argv[1], ReleaseStats(rows={}, files={}, parquet_bytes={}, labels=labels))
        fonts = canvas.font_files()
        print(sorted(m for m in sys.modules if m.partition(".")[0] == "matplotlib"))
        print(fonts is not None and "DejaVuSans" in fonts[0])
        """
    )
    run = [sys.executable, "-c", code, str(tmp_path)]
    out = subprocess.run(run, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]
    assert all((tmp_path / name).is_file() for name in CARD_IMAGES.values())


def test_figures_with_pillows_own_font(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DejaVu Sans (no matplotlib installed) the figures are drawn in Pillow's font."""
    monkeypatch.setattr(canvas, "font_files", lambda: None)
    for cached in (canvas.font_at, canvas.extent):
        cached.cache_clear()
    try:
        written = plots.draw_figures(tmp_path, _sample_stats())
    finally:
        for cached in (canvas.font_at, canvas.extent):
            cached.cache_clear()
    for name in written:
        assert Image.open(tmp_path / name).size[0] >= 1000


def test_png_holds_the_image() -> None:
    image = Image.effect_noise((37, 23), 60).convert("RGB")
    again = Image.open(io.BytesIO(canvas.png_bytes(image)))
    assert again.mode == "RGB" and again.tobytes() == image.tobytes()


def test_a_count_too_small_for_a_pixel_still_gets_its_bar(tmp_path: Path) -> None:
    stats = _sample_stats()
    domains = load_taxonomy().names("domain")
    stats.labels["domain"]["test"].update({domains[0]: 1_000_000, domains[1]: 1})
    path = plots.rows_per_split_domain(stats, tmp_path / "bars.png")
    assert Image.open(path).size[0] >= 1000


def test_a_failure_to_draw_is_the_builds_with_its_reason(
    sample_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(stats, path, split="train"):
        raise ValueError("no wedge for you")

    monkeypatch.setattr(plots, "taxonomy_sunburst", broken)
    failed = r"drawing the card's figures failed: ValueError: no wedge for you"
    with pytest.raises(RuntimeError, match=failed):
        build_release(sample_dirs["hub"], tmp_path / "release")
    assert not (tmp_path / "release").exists()
