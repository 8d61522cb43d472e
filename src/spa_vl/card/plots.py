"""The card's figures: the taxonomy sunburst and rows per split and domain, drawn with Pillow
(``card.canvas``). The same counts give the same PNG bytes."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from spa_vl.card.canvas import PX, Figure, extent, lighten, rgb
from spa_vl.card.stats import UNKNOWN, ReleaseStats
from spa_vl.release.layout import CARD_IMAGES, SPLITS
from spa_vl.taxonomy import load_taxonomy

# Colour-blind-safe qualitative palette (Okabe-Ito), one colour per domain.
DOMAIN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"]


def draw_figures(folder: str | Path, stats: ReleaseStats) -> list[str]:
    """The card's figures into ``folder`` (label counts are all they need); their paths
    relative to it."""
    folder = Path(folder)
    taxonomy_sunburst(stats, folder / CARD_IMAGES["sunburst"])
    rows_per_split_domain(stats, folder / CARD_IMAGES["splits"])
    return [CARD_IMAGES["sunburst"], CARD_IMAGES["splits"]]


# The sunburst's geometry in units of _UNIT saved pixels, the centre at (0, 0).
_UNIT = 375.0
_RINGS = {"domain": (0.27, 0.64), "category": (0.64, 0.97), "subcategory": (0.97, 1.22)}
_SHADES = {"domain": 0.0, "category": 0.35, "subcategory": 0.6}
_EDGE = 1.2 * PX  # the white edges of the wedges, saved pixels
_OUTER_SIZE = 9.5
_OUTER_GAP = 1.9  # degrees between neighbouring outer labels (one text height at r = 1.3)
_CORNER = 1.95  # the legend and the note on empty subcategories sit in the corners of +-_CORNER


def _at(r: float, degrees: float) -> tuple[float, float]:
    """The point at radius ``r`` and angle ``degrees`` (counter-clockwise from 3 o'clock)."""
    theta = math.radians(degrees)
    return (r * _UNIT * math.cos(theta), -r * _UNIT * math.sin(theta))


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
    fig = Figure()
    faces = {}
    for level, name in spans:
        domain = name if level == "domain" else tax.path(name)[0] if level == "subcategory" else (
            tax.parent("category", name))  # fmt: skip
        colour = DOMAIN_COLOURS[tax.index("domain", domain) % len(DOMAIN_COLOURS)]
        faces[level, name] = lighten(colour, _SHADES[level])
        r0, r1 = _RINGS[level]
        a0, a1 = spans[level, name]
        if a0 > a1:
            fig.sector((r0 * _UNIT, r1 * _UNIT), (a0, a1), faces[level, name])
    for (level, _), (a0, a1) in spans.items():  # white edges between the wedges, and round them
        r0, r1 = _RINGS[level]
        for a in (a0, a1):
            fig.line([_at(r0, a), _at(r1, a)], _EDGE, "white")
    for r in sorted({r for ring in _RINGS.values() for r in ring}):
        fig.circle(r * _UNIT, _EDGE, "white")
    outer: list[tuple[str, float, float]] = []
    for (level, name), (a0, a1) in spans.items():
        if level == "subcategory":
            outer.append((tax.display(level, name), a0, a1))
        else:
            _inner_label(fig, level, tax.display(level, name), a0, a1, _ink(faces[level, name]))
    _outer_labels(fig, outer)
    centre = "\n".join(
        f"{len(tax.names(lvl))} {plural}"
        for lvl, plural in (("domain", "domains"), ("category", "categories"),
                            ("subcategory", "subcategories"))
    )  # fmt: skip
    fig.text((0, 0), centre, 10.5, "#333333")
    _legend(fig, stats, split)
    empty = sum(1 for c in counts if c == 0) if sized else 0
    if empty:
        note = f"{empty} subcategories have no {split} rows (not shown)"
        fig.text((_CORNER * _UNIT, _CORNER * _UNIT), note, 10.5, "#555555", anchor="rd")
    title = f"SPA-VL harm taxonomy, sized by {split} rows ({sum(counts):,} labelled)"
    if not sized:
        title = f"SPA-VL harm taxonomy ({split} has no labelled rows: equal wedges)"
    assert fig.box is not None
    fig.text((0, fig.box[1] - 14), title, 18, anchor="md")  # just above the highest label
    fig.save(path)
    return path


def _legend(fig: Figure, stats: ReleaseStats, split: str) -> None:
    """Rows per domain beside a swatch of its colour, in the lower left corner."""
    tax = load_taxonomy()
    em = 10.5 * PX
    left = -_CORNER * _UNIT + 0.9 * em
    y = _CORNER * _UNIT - 1.65 * em  # the middle of the lowest line
    for i, d in reversed(list(enumerate(tax.names("domain")))):
        colour = DOMAIN_COLOURS[i % len(DOMAIN_COLOURS)]
        fig.rectangle((left, y - 0.35 * em, left + 2 * em, y + 0.35 * em), colour)
        label = f"{tax.display('domain', d)}: {stats.count('domain', split, d):,}"
        fig.text((left + 2.8 * em, y), label, 10.5, anchor="lm")
        y -= 1.5 * em
    fig.text((left, y), f"{split} rows per domain", 11, anchor="lm")


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
    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb(colour)]
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


def _outer_labels(fig: Figure, labels: list[tuple[str, float, float]]) -> None:
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
            fig.line([_at(r1, mid), _at(r1 + 0.06, at)], 0.7 * PX, "#777777")
        fig.text(_at(r_text, at), text, _OUTER_SIZE, anchor="rm" if left else "lm",
                 rotation=deg + 180 if left else deg)  # fmt: skip


def _inner_label(fig: Figure, level: str, text: str, a0: float, a1: float, ink: str) -> None:
    """A domain or category name inside its wedge: the largest size, wrapping and direction
    (along the ring or along the radius) whose measured box (``extent``) lies wholly inside the
    wedge; a domain name may drop its trailing "Harms" to fit. None when nothing fits (the
    legend and the outer labels still name it)."""
    r0, r1 = _RINGS[level]
    mid = (a0 + a1) / 2
    r = (r0 + r1) / 2
    bold = level == "domain"
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
                    w, h = extent(wrapped, size, bold)
                    if _box_in_wedge(w / _UNIT, h / _UNIT, r, mid, tangential, (r0, r1), (a1, a0)):
                        deg = mid % 360
                        rot = (deg - 90 if deg < 180 else deg + 90) if tangential else (
                            deg + 180 if 90 < deg < 270 else deg)  # fmt: skip
                        fig.text(_at(r, mid), wrapped, size, ink, bold=bold, anchor="ink", rotation=rot)
                        return
            size -= 0.5


_MARGIN = 0.015  # units kept free between a label's lines and its wedge's edges


def _wrappings(text: str) -> list[str]:
    """``text`` on one line, then wrapped ever narrower (at spaces only), up to four lines."""
    out: list[str] = []
    longest = max(len(word) for word in text.split())
    for width in range(len(text), longest - 1, -1):
        wrapped = textwrap.fill(text, width, break_long_words=False)
        if wrapped not in out and wrapped.count("\n") < 4:
            out.append(wrapped)
    return out


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


def _ticks(limit: float) -> list[int]:
    """Round values from 0 up to ``limit``, at most six: steps of 1, 2, 2.5 or 5 times a power
    of ten, whole numbers only (the values are counts)."""
    power = 1
    while True:
        for step in (power, 2 * power, 2.5 * power, 5 * power):
            if step % 1 == 0 and limit // step < 6:
                return [int(i * step) for i in range(int(limit // step) + 1)]
        power *= 10


def rows_per_split_domain(stats: ReleaseStats, path: str | Path) -> Path:
    """One horizontal bar panel per split (each with its own scale), a bar per domain."""
    tax = load_taxonomy()
    path = Path(path)
    domains = tax.names("domain")
    labels = [tax.display("domain", d) for d in domains] + ["unknown label"]
    colours = [*DOMAIN_COLOURS[: len(domains)], "#999999"]
    fig = Figure(smooth=False)
    width, height, gap = 418.0, 385.0, 24.0  # a panel's axes; the space between two panels
    tick, spine = 3.5 * PX, 0.8 * PX
    margin = 0.685  # half a bar (0.35 of a row) and 5% of the rows' span above and below
    row = height / (len(labels) - 1 + 2 * margin)
    ys = [(margin + i) * row for i in range(len(labels))]  # each bar's middle, top to bottom
    left = 0.0
    for k, split in enumerate(SPLITS):
        values = [stats.count("domain", split, d) for d in domains]
        values.append(stats.count("domain", split, UNKNOWN))
        top = max(values) or 1
        limit = top * 1.25

        def x_of(v: float, left: float = left, limit: float = limit) -> float:
            return left + width * v / limit

        for y, v, colour, label in zip(ys, values, colours, labels, strict=True):
            if v:
                fig.rectangle((left, y - 0.35 * row, x_of(v), y + 0.35 * row), colour)
            fig.text((x_of(v + top * 0.02), y), f"{v:,}", 10, anchor="lm")
            fig.line([(left - tick, y), (left, y)], spine, "black")
            if k == 0:
                fig.text((left - tick - 3.5 * PX, y), label, 11, anchor="rm")
        fig.line([(left, 0), (left, height)], spine, "black")
        fig.line([(left, height), (left + width, height)], spine, "black")
        for t in _ticks(limit):
            fig.line([(x_of(t), height), (x_of(t), height + tick)], spine, "black")
            fig.text((x_of(t), height + tick + 3.5 * PX), f"{t:,}", 9, anchor="ma")
        fig.text((left + width / 2, height + tick + 19.5 * PX), "rows", 10, anchor="ma")
        fig.text((left + width / 2, -6 * PX), f"{split} ({sum(values):,} rows)", 13, anchor="md")
        assert fig.box is not None
        left = max(left + width, fig.box[2]) + gap + tick  # clear of this panel's last tick label
    assert fig.box is not None
    title = "SPA-VL rows per split and harm domain (each panel has its own scale)"
    fig.text(((fig.box[0] + fig.box[2]) / 2, fig.box[1] - 12 * PX), title, 15, anchor="md")
    fig.save(path)
    return path
