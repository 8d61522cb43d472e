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
    total = sum(weights)
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(_SUN_INCHES, _SUN_INCHES))
        ax.set_aspect("equal")
        ax.axis("off")
        start = 90.0  # degrees, clockwise from the top
        rings = {"domain": (0.27, 0.64), "category": (0.64, 0.97), "subcategory": (0.97, 1.22)}
        spans: dict[tuple[str, str], list[float]] = {}
        angle = start
        for (d, c, s), w in zip(subs, weights, strict=True):
            sweep = 360.0 * w / total
            for level, name in (("domain", d), ("category", c), ("subcategory", s)):
                lo_hi = spans.setdefault((level, name), [angle, angle])
                lo_hi[1] = angle - sweep
            angle -= sweep
        for (level, name), (a0, a1) in spans.items():
            d = name if level == "domain" else tax.path(name)[0] if level == "subcategory" else (
                tax.parent("category", name))  # fmt: skip
            colour = DOMAIN_COLOURS[tax.index("domain", d) % len(DOMAIN_COLOURS)]
            shade = {"domain": 0.0, "category": 0.35, "subcategory": 0.6}[level]
            r0, r1 = rings[level]
            wedge = matplotlib.patches.Wedge(
                (0, 0), r1, a1, a0, width=r1 - r0, facecolor=_lighten(colour, shade),
                edgecolor="white", linewidth=1.2,
            )  # fmt: skip
            ax.add_patch(wedge)
            _label(ax, level, tax.display(level, name), a0, a1, r0, r1, _ink(colour))
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
        ax.set_xlim(-_SUN_LIM, _SUN_LIM)
        ax.set_ylim(-_SUN_LIM, _SUN_LIM)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.96)
        _save(fig, path)
    return path


def _ink(colour: str) -> str:
    """White text on dark domain colours, black on light ones (contrast)."""
    r, g, b = mcolors.to_rgb(colour)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _label(ax, level: str, text: str, a0: float, a1: float, r0: float, r1: float, ink: str) -> None:
    sweep = a0 - a1
    if sweep < 0.5:  # an empty (or nearly) wedge: no room for a label
        return
    mid = math.radians((a0 + a1) / 2)
    deg = math.degrees(mid) % 360
    left = 90 < deg < 270  # flip text there so it never reads upside down
    if level == "subcategory":
        # Radial labels just outside the ring.
        x, y = (r1 + 0.02) * math.cos(mid), (r1 + 0.02) * math.sin(mid)
        ax.text(x, y, text, rotation=deg + 180 if left else deg, rotation_mode="anchor",
                ha="right" if left else "left", va="center", fontsize=9.5)  # fmt: skip
        return
    r = (r0 + r1) / 2
    x, y = r * math.cos(mid), r * math.sin(mid)
    arc = math.radians(sweep) * r  # wedge length along the ring, in axis units
    size = 10.5 if level == "domain" else 9
    style = {"color": ink, "fontweight": "bold"} if level == "domain" else {}
    tangential = arc > 0.5  # wide wedge: text along the ring; else along the radius
    room = arc * 0.85 if tangential else (r1 - r0) * 0.92
    longest = max(len(word) for word in text.split())
    # A character is about 0.6 em wide (more in bold).
    em = 0.68 if level == "domain" else 0.6
    while size > 7 and longest * size * em / _POINTS_PER_UNIT > room:  # until the word fits
        size -= 0.5
    per_char = size * em / _POINTS_PER_UNIT
    width = max(longest, int(room / per_char))
    rot = (deg - 90 if deg < 180 else deg + 90) if tangential else (deg + 180 if left else deg)
    ax.text(x, y, textwrap.fill(text, width, break_long_words=False), ha="center", va="center",
            fontsize=size, rotation=rot, rotation_mode="anchor", linespacing=1.05,
            **style)  # fmt: skip


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
            ax.spines[["top", "right"]].set_visible(False)
            ax.set_xlabel("rows")
        fig.suptitle("SPA-VL rows per split and harm domain", fontsize=15)
        fig.tight_layout()
        _save(fig, path)
    return path
