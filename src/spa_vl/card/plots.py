"""The card's figures: the taxonomy sunburst and rows per split and domain (matplotlib, Agg).

PNG metadata carries no software version or date and text is drawn with the bundled DejaVu
font, so the same counts give the same bytes. Figures are cropped to what they draw.
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
from matplotlib.transforms import Bbox

from spa_vl.card.stats import UNKNOWN, ReleaseStats
from spa_vl.release.layout import CARD_IMAGES, SPLITS
from spa_vl.taxonomy import load_taxonomy

# Colour-blind-safe qualitative palette (Okabe-Ito), one colour per domain.
DOMAIN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"]
_PNG_META = {"Software": None}
# Sunburst geometry: the axes span +-_SUN_LIM units (room for the longest outer label); the
# saved figure is cropped to what is drawn.
_SUN_INCHES, _SUN_LIM = 14.0, 1.95
_RC = {
    "font.family": "DejaVu Sans",
    "svg.hashsalt": "spa-vl",
    "path.simplify": False,
}


def _lighten(colour: str, amount: float) -> tuple[float, float, float]:
    r, g, b = mcolors.to_rgb(colour)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _save(fig: plt.Figure, path: Path, box: Bbox | str = "tight") -> None:
    """Save cropped to ``box`` (inches), by default to what the figure draws: no band of
    empty canvas around the drawing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, metadata=_PNG_META, facecolor="white",
                bbox_inches=box, pad_inches=0.15)  # fmt: skip
    plt.close(fig)


def draw_figures(folder: str | Path, stats: ReleaseStats) -> list[str]:
    """The card's figures into ``folder`` (label counts are all they need); their paths
    relative to it."""
    folder = Path(folder)
    taxonomy_sunburst(stats, folder / CARD_IMAGES["sunburst"])
    rows_per_split_domain(stats, folder / CARD_IMAGES["splits"])
    return [CARD_IMAGES["sunburst"], CARD_IMAGES["splits"]]


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
        ax.set_xlim(-_SUN_LIM, _SUN_LIM)
        ax.set_ylim(-_SUN_LIM, _SUN_LIM)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.96)
        ax.apply_aspect()  # the final data-to-pixel scale, which the label fitting measures in
        outer: list[tuple[str, float, float]] = []
        for (level, name), (a0, a1) in spans.items():
            domain = name if level == "domain" else tax.path(name)[0] if level == "subcategory" else (
                tax.parent("category", name))  # fmt: skip
            colour = DOMAIN_COLOURS[tax.index("domain", domain) % len(DOMAIN_COLOURS)]
            face = _lighten(colour, _SHADES[level])
            r0, r1 = _RINGS[level]
            ax.add_patch(matplotlib.patches.Wedge(
                (0, 0), r1, a1, a0, width=r1 - r0, facecolor=face, edgecolor="white", linewidth=1.2,
            ))  # fmt: skip
            if level == "subcategory":
                outer.append((tax.display(level, name), a0, a1))
            else:
                _inner_label(ax, level, tax.display(level, name), a0, a1, _ink(face))
        _outer_labels(ax, outer)
        empty = sum(1 for c in counts if c == 0) if sized else 0
        title = f"SPA-VL harm taxonomy, sized by {split} rows ({sum(counts):,} labelled)"
        if not sized:
            title = f"SPA-VL harm taxonomy ({split} has no labelled rows: equal wedges)"
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
        # The title sits just above the highest label, not at the top of the axes' square
        # (which would leave a band of empty canvas under it).
        renderer = fig.canvas.get_renderer()
        top = max(a.get_window_extent(renderer).y1 for a in [*ax.texts, *ax.patches])
        fig.text(0.5, (top + 14) / fig.bbox.height, title, ha="center", va="bottom", fontsize=18)
        # Crop to the drawn artists: matplotlib's "tight" box keeps the axes' whole square.
        drawn = Bbox.union([a.get_window_extent(renderer) for a in [*ax.texts, *ax.patches, legend,
                                                                     *fig.texts]])  # fmt: skip
        _save(fig, path, drawn.padded(0.15 * fig.dpi).transformed(fig.dpi_scale_trans.inverted()))
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


def _luminance(colour) -> float:
    """WCAG 2 relative luminance (of linear-light sRGB, not of the gamma-encoded values)."""
    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in mcolors.to_rgb(colour)]
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def _ink(colour) -> str:
    """Black or white text, whichever contrasts more with ``colour`` (WCAG contrast ratio)."""
    lum = _luminance(colour)
    return "black" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "white"


def _spread(angles: list[float], gap: float) -> list[float]:
    """Move label angles (decreasing, once round the circle) apart by at least ``gap``, as
    little as possible: neighbours that crowd form a cluster, evenly spaced about their wedges
    (least squares), merged with the next cluster while the two overlap. The circle is cut at
    its widest gap between labels, so the labels on either side of the top also stay apart."""
    n = len(angles)
    if n < 2 or gap * n >= 360:
        return list(angles)
    # Start after the widest gap; the labels before it follow the last one, 360 degrees lower.
    gaps = [angles[i - 1] - angles[i] for i in range(1, n)] + [angles[-1] - (angles[0] - 360)]
    start = (max(range(n), key=gaps.__getitem__) + 1) % n
    order = list(range(start, n)) + list(range(start))
    shift = [0.0] * (n - start) + [360.0] * start
    want = [angles[i] - shift[k] for k, i in enumerate(order)]
    clusters: list[tuple[int, int, float]] = []  # (first member, size, sum of want + j * gap)
    for k, a in enumerate(want):
        clusters.append((k, 1, a))
        while len(clusters) > 1:
            (first, n1, s1), (_, n2, s2) = clusters[-2], clusters[-1]
            if s1 / n1 - (n1 - 1) * gap - s2 / n2 >= gap - 1e-9:
                break  # the previous cluster's last label is far enough above this one's first
            clusters[-2:] = [(first, n1 + n2, s1 + s2 + n1 * n2 * gap)]
    placed = [0.0] * n
    for first, size, total in clusters:
        for j in range(size):
            placed[order[first + j]] = total / size - j * gap + shift[first + j]
    return placed


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
    """A domain or category name inside its wedge: the largest size, wrapping and direction
    (along the ring or along the radius) whose measured box lies wholly inside the wedge; a
    domain name may drop its trailing "Harms" to fit. None when nothing fits (the legend and
    the outer labels still name it)."""
    r0, r1 = _RINGS[level]
    mid = (a0 + a1) / 2
    r = (r0 + r1) / 2
    weight = "bold" if level == "domain" else "normal"
    per_pixel = 1 / (ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0])
    names = [text]
    if level == "domain" and text.endswith(" Harms"):
        names.append(text.removesuffix(" Harms"))
    # Along the ring reads more easily; wide wedges try it first.
    tangential_first = math.radians(a0 - a1) * r > (r1 - r0)
    for name in names:
        size = 10.5 if level == "domain" else 9.0
        while size >= 7:
            for tangential in (tangential_first, not tangential_first):
                for wrapped in _wrappings(name):
                    w10, h10 = _extent(ax.figure, wrapped, weight)
                    w, h = w10 * size / 10 * per_pixel, h10 * size / 10 * per_pixel
                    if _box_in_wedge(w, h, r, mid, tangential, (r0, r1), (a1, a0)):
                        deg = mid % 360
                        rot = (deg - 90 if deg < 180 else deg + 90) if tangential else (
                            deg + 180 if 90 < deg < 270 else deg)  # fmt: skip
                        ax.text(r * math.cos(math.radians(mid)), r * math.sin(math.radians(mid)),
                                wrapped, ha="center", va="center", fontsize=size, rotation=rot,
                                rotation_mode="anchor", linespacing=_LINESPACING, color=ink,
                                fontweight=weight, multialignment="center")  # fmt: skip
                        return
            size -= 0.5


_LINESPACING = 1.05
_MARGIN = 0.015  # axis units kept free between a label and its wedge's edges


def _wrappings(text: str) -> list[str]:
    """``text`` on one line, then wrapped ever narrower (at spaces only), up to four lines."""
    out: list[str] = []
    longest = max(len(word) for word in text.split())
    for width in range(len(text), longest - 1, -1):
        wrapped = textwrap.fill(text, width, break_long_words=False)
        if wrapped not in out and wrapped.count("\n") < 4:
            out.append(wrapped)
    return out


_EXTENTS: dict[tuple[str, str, float], tuple[float, float]] = {}


def _extent(fig: plt.Figure, text: str, weight: str) -> tuple[float, float]:
    """Width and height in pixels of ``text`` drawn at 10 pt on ``fig`` (sizes scale linearly)."""
    key = (text, weight, fig.dpi)
    if key not in _EXTENTS:
        label = fig.text(0, 0, text, fontsize=10, fontweight=weight, linespacing=_LINESPACING)
        box = label.get_window_extent(fig.canvas.get_renderer())
        label.remove()
        _EXTENTS[key] = (box.width, box.height)
    return _EXTENTS[key]


def _box_in_wedge(w: float, h: float, r: float, mid: float, tangential: bool,
                  radii: tuple[float, float], angles: tuple[float, float]) -> bool:  # fmt: skip
    """Whether a ``w`` x ``h`` box centred at radius ``r`` on the angle ``mid`` (degrees), its
    long side along the ring (``tangential``) or along the radius, lies inside the wedge
    (points along its edges checked: the inner arc bulges into a straight box)."""
    theta = math.radians(mid)
    radial = (math.cos(theta), math.sin(theta))
    tangent = (-math.sin(theta), math.cos(theta))
    along, across = (tangent, radial) if tangential else (radial, tangent)
    cx, cy = r * radial[0], r * radial[1]
    half = (angles[1] - angles[0]) / 2
    steps = [i / 8 - 0.5 for i in range(9)]
    edge = [(u, v) for u in steps for v in (-0.5, 0.5)] + [(u, v) for u in (-0.5, 0.5) for v in steps]
    for u, v in edge:
        x = cx + u * w * along[0] + v * h * across[0]
        y = cy + u * w * along[1] + v * h * across[1]
        rho = math.hypot(x, y)
        if not radii[0] + _MARGIN <= rho <= radii[1] - _MARGIN:
            return False
        off = (math.degrees(math.atan2(y, x)) - mid + 180) % 360 - 180
        if abs(off) > half - math.degrees(_MARGIN / rho):
            return False
    return True


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
