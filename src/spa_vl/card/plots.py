"""The card's figures: the taxonomy sunburst and rows per split and domain (matplotlib, Agg).

PNG metadata carries no software version or date and text is drawn with the bundled DejaVu
font, so the same counts give the same bytes.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from spa_vl.card.stats import UNKNOWN, ReleaseStats
from spa_vl.sources import SPLITS
from spa_vl.taxonomy import load_taxonomy

# Colour-blind-safe qualitative palette (Okabe-Ito), one colour per domain.
DOMAIN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"]
_PNG_META = {"Software": None}
# Sunburst geometry: the axes span +-_SUN_LIM units (room for the longest outer label).
_SUN_INCHES, _SUN_LIM = 14.0, 1.95
_POINTS_PER_UNIT = _SUN_INCHES * 72 * 0.95 / (2 * _SUN_LIM)
_RC = {
    "font.family": "DejaVu Sans",
    "svg.hashsalt": "spa-vl",
    "path.simplify": False,
}


def _lighten(colour: str, amount: float) -> tuple[float, float, float]:
    r, g, b = mcolors.to_rgb(colour)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, metadata=_PNG_META, facecolor="white")
    plt.close(fig)


def taxonomy_sunburst(stats: ReleaseStats, path: str | Path, split: str = "train") -> Path:
    """Three rings (domain, category, subcategory), wedges sized by ``split`` rows."""
    tax = load_taxonomy()
    path = Path(path)
    subs = [(d, c, s) for d in tax.names("domain") for c in tax.children("domain", d)
            for s in tax.children("category", c)]  # fmt: skip
    counts = [stats.count("subcategory", split, s) for _, _, s in subs]
    # An empty split still gets a readable figure: equal wedges, said in the title.
    sized = sum(counts) > 0
    weights = counts if sized else [1] * len(subs)
    spans = _spans(subs, weights)
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(_SUN_INCHES, _SUN_INCHES))
        ax.set_aspect("equal")
        ax.axis("off")
        outer: list[tuple[str, float, float]] = []
        for (level, name), (a0, a1) in spans.items():
            domain = name if level == "domain" else tax.path(name)[0] if level == "subcategory" else (
                tax.parent("category", name))  # fmt: skip
            colour = DOMAIN_COLOURS[tax.index("domain", domain) % len(DOMAIN_COLOURS)]
            r0, r1 = _RINGS[level]
            ax.add_patch(matplotlib.patches.Wedge(
                (0, 0), r1, a1, a0, width=r1 - r0, facecolor=_lighten(colour, _SHADES[level]),
                edgecolor="white", linewidth=1.2,
            ))  # fmt: skip
            if level == "subcategory":
                outer.append((tax.display(level, name), a0, a1))
            else:
                _inner_label(ax, level, tax.display(level, name), a0, a1, _ink(colour))
        _outer_labels(ax, outer)
        empty = sum(1 for c in counts if c == 0) if sized else 0
        title = f"SPA-VL harm taxonomy, sized by {split} rows ({sum(counts):,} labelled)"
        if not sized:
            title = f"SPA-VL harm taxonomy ({split} has no labelled rows: equal wedges)"
        ax.set_title(title, fontsize=18, pad=4)
        centre = "\n".join(
            f"{len(tax.names(lvl))} {plural}"
            for lvl, plural in (("domain", "domains"), ("category", "categories"),
                                ("subcategory", "subcategories"))
        )  # fmt: skip
        ax.text(0, 0, centre, ha="center", va="center", fontsize=10.5, color="#333333")
        handles = [
            matplotlib.patches.Patch(
                color=DOMAIN_COLOURS[i],
                label=f"{tax.display('domain', d)}: {stats.count('domain', split, d):,}",
            )
            for i, d in enumerate(tax.names("domain"))
        ]
        legend = ax.legend(handles=handles, loc="lower left", fontsize=10.5, frameon=False,
                           title=f"{split} rows per domain", title_fontsize=11)  # fmt: skip
        legend.set_alignment("left")
        if empty:
            ax.text(_SUN_LIM, -_SUN_LIM, f"{empty} subcategories have no {split} rows (not shown)",
                    ha="right", va="bottom", fontsize=10.5, color="#555555")  # fmt: skip
        ax.set_xlim(-_SUN_LIM, _SUN_LIM)
        ax.set_ylim(-_SUN_LIM, _SUN_LIM)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.96)
        _save(fig, path)
    return path


_RINGS = {"domain": (0.27, 0.64), "category": (0.64, 0.97), "subcategory": (0.97, 1.22)}
_SHADES = {"domain": 0.0, "category": 0.35, "subcategory": 0.6}
_OUTER_SIZE = 9.5
_OUTER_GAP = 1.9  # degrees between neighbouring outer labels (one text height at r = 1.3)


def _spans(subs: list[tuple[str, str, str]], weights: list[int]) -> dict[tuple[str, str], list]:
    """(level, name) -> [start, end] angles in degrees, clockwise from the top."""
    total = sum(weights)
    spans: dict[tuple[str, str], list[float]] = {}
    angle = 90.0
    for (d, c, s), w in zip(subs, weights, strict=True):
        sweep = 360.0 * w / total
        for level, name in (("domain", d), ("category", c), ("subcategory", s)):
            spans.setdefault((level, name), [angle, angle])[1] = angle - sweep
        angle -= sweep
    return spans


def _ink(colour: str) -> str:
    """White text on dark domain colours, black on light ones (contrast)."""
    r, g, b = mcolors.to_rgb(colour)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _spread(angles: list[float], gap: float) -> list[float]:
    """Move label angles (decreasing) apart by at least ``gap``, as little as possible."""
    pos = list(angles)
    for _ in range(50):  # relax: push neighbours apart, then pull back toward the wedges
        moved = False
        for i in range(1, len(pos)):
            overlap = gap - (pos[i - 1] - pos[i])
            if overlap > 1e-6:
                pos[i - 1] += overlap / 2
                pos[i] -= overlap / 2
                moved = True
        if not moved:
            break
    return pos


def _outer_labels(ax, labels: list[tuple[str, float, float]]) -> None:
    """Radial subcategory labels outside the ring; thin wedges get spread labels with leaders."""
    shown = [(text, (a0 + a1) / 2) for text, a0, a1 in labels if a0 - a1 > 0.05]
    spread = _spread([mid for _, mid in shown], _OUTER_GAP)
    r1 = _RINGS["subcategory"][1]
    for (text, mid), at in zip(shown, spread, strict=True):
        deg = at % 360
        left = 90 < deg < 270  # flip text there so it never reads upside down
        r_text = r1 + 0.02
        if abs(at - mid) > 0.2:  # moved: a leader line from the wedge to the label
            r_text = r1 + 0.08
            a, b = math.radians(mid), math.radians(at)
            ax.plot([r1 * math.cos(a), (r1 + 0.06) * math.cos(b)],
                    [r1 * math.sin(a), (r1 + 0.06) * math.sin(b)],
                    color="#777777", linewidth=0.7)  # fmt: skip
        rad = math.radians(at)
        ax.text(r_text * math.cos(rad), r_text * math.sin(rad), text,
                rotation=deg + 180 if left else deg, rotation_mode="anchor",
                ha="right" if left else "left", va="center", fontsize=_OUTER_SIZE)  # fmt: skip


def _inner_label(ax, level: str, text: str, a0: float, a1: float, ink: str) -> None:
    """A domain or category name inside its wedge, shrunk to fit, or none when it cannot fit
    (the legend and the outer labels still name it)."""
    r0, r1 = _RINGS[level]
    sweep = a0 - a1
    mid = math.radians((a0 + a1) / 2)
    deg = math.degrees(mid) % 360
    left = 90 < deg < 270
    r = (r0 + r1) / 2
    arc = math.radians(sweep) * r  # wedge length along the ring, in axis units
    tangential = arc > 0.5  # wide wedge: text along the ring; else along the radius
    along, across = (arc * 0.85, (r1 - r0) * 0.9) if tangential else ((r1 - r0) * 0.92, arc * 0.9)
    style = {"color": ink, "fontweight": "bold"} if level == "domain" else {}
    em = 0.68 if level == "domain" else 0.6  # character width in em (more in bold)
    longest = max(len(word) for word in text.split())
    size = 10.5 if level == "domain" else 9.0
    while size >= 7:
        per_char = size * em / _POINTS_PER_UNIT
        if longest * per_char <= along:
            wrapped = textwrap.fill(text, max(longest, int(along / per_char)),
                                    break_long_words=False)  # fmt: skip
            height = (wrapped.count("\n") + 1) * size * 1.2 / _POINTS_PER_UNIT
            if height <= across:
                rot = (deg - 90 if deg < 180 else deg + 90) if tangential else (
                    deg + 180 if left else deg)  # fmt: skip
                ax.text(r * math.cos(mid), r * math.sin(mid), wrapped, ha="center",
                        va="center", fontsize=size, rotation=rot, rotation_mode="anchor",
                        linespacing=1.05, **style)  # fmt: skip
                return
        size -= 0.5


def rows_per_split_domain(stats: ReleaseStats, path: str | Path) -> Path:
    """One horizontal bar panel per split (each with its own scale), a bar per domain."""
    tax = load_taxonomy()
    path = Path(path)
    domains = tax.names("domain")
    labels = [tax.display("domain", d) for d in domains] + ["unknown label"]
    colours = [*DOMAIN_COLOURS[: len(domains)], "#999999"]
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, len(SPLITS), figsize=(15, 4.8), sharey=True)
        for ax, split in zip(axes, SPLITS, strict=True):
            values = [stats.count("domain", split, d) for d in domains]
            values.append(stats.count("domain", split, UNKNOWN))
            ys = list(range(len(labels)))[::-1]
            ax.barh(ys, values, color=colours, height=0.7)
            top = max(values) or 1
            for y, v in zip(ys, values, strict=True):
                ax.text(v + top * 0.02, y, f"{v:,}", va="center", fontsize=10)
            ax.set_xlim(0, top * 1.25)
            ax.set_title(f"{split} ({sum(values):,} rows)", fontsize=13)
            ax.set_yticks(ys, labels, fontsize=11)
            ax.tick_params(axis="x", labelsize=9)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.spines[["top", "right"]].set_visible(False)
            ax.set_xlabel("rows")
        fig.suptitle("SPA-VL rows per split and harm domain (each panel has its own scale)", fontsize=15)
        fig.tight_layout()
        _save(fig, path)
    return path
