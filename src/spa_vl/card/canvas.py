"""A figure drawn with Pillow: colours, DejaVu Sans text, smooth curves, a PNG without metadata.

Curved shapes are drawn at ``FINE`` times the saved size and reduced (each pixel the mean of a
``FINE`` x ``FINE`` block), which smooths their edges; straight ones (bars, axes, swatches) lie
on whole pixels, as matplotlib snaps them. Each text is drawn at ``FINE`` on a mask of its own,
turned there when it is, and reduced. Text is DejaVu Sans, the copy in matplotlib's package
data (found without importing matplotlib, which a build never imports), else Pillow's default
font. A figure is laid out first and its canvas made just large enough for what it draws plus
``PAD``. The PNG holds no metadata, so the same drawing gives the same bytes.
"""

from __future__ import annotations

import importlib.util
import math
import struct
import zlib
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DPI = 110  # saved pixels per inch (font sizes are in points, as matplotlib's were)
PX = DPI / 72  # saved pixels per point
FINE = 3  # curves and text drawn at 3x and reduced: 9 samples a pixel
PAD = 0.15 * DPI  # blank border round what is drawn, in saved pixels
_LINESPACING = 0.2  # space between the lines of a label, in font sizes
_NAMED = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}

Box = tuple[float, float, float, float]  # left, top, right, bottom
Colour = str | tuple[float, float, float]  # "#rrggbb", "black", "white" or (r, g, b) in 0..1


def rgb(colour: Colour) -> tuple[float, float, float]:
    """(r, g, b) in 0..1."""
    if not isinstance(colour, str):
        return (colour[0], colour[1], colour[2])
    if colour in _NAMED:
        return _NAMED[colour]
    digits = colour.removeprefix("#")
    return (int(digits[0:2], 16) / 255, int(digits[2:4], 16) / 255, int(digits[4:6], 16) / 255)


def rgb255(colour: Colour) -> tuple[int, int, int]:
    """(r, g, b) in 0..255, as Pillow draws."""
    r, g, b = rgb(colour)
    return (round(r * 255), round(g * 255), round(b * 255))


def lighten(colour: Colour, amount: float) -> tuple[float, float, float]:
    """``colour`` moved ``amount`` (0..1) of the way to white."""
    r, g, b = rgb(colour)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _union(a: Box | None, b: Box) -> Box:
    return b if a is None else (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# -- text ------------------------------------------------------------------------------------------


@cache
def font_files() -> tuple[str, str] | None:
    """DejaVu Sans, regular and bold, from matplotlib's package data (its folder is looked up,
    matplotlib is not imported); None without it."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        ttf = Path(folder, "mpl-data", "fonts", "ttf")
        files = (ttf / "DejaVuSans.ttf", ttf / "DejaVuSans-Bold.ttf")
        if all(f.is_file() for f in files):
            return (str(files[0]), str(files[1]))
    return None


@cache
def font_at(points: float, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font at ``points`` on the fine grid (whole pixels, the same sizes everywhere)."""
    size = round(points * PX * FINE)
    files = font_files()
    if files is None:
        return ImageFont.load_default(size)
    # The basic layout: the same glyph positions with libraqm or without it.
    return ImageFont.truetype(files[bold], size, layout_engine=ImageFont.Layout.BASIC)


_MEASURE = ImageDraw.Draw(Image.new("L", (1, 1)))


def _spacing(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    return round(getattr(font, "size", 10) * _LINESPACING)


def _ink_box(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, anchor: str = "la") -> Box:
    """The box of ``text``'s ink on the fine grid, relative to its anchor (lines centred)."""
    if "\n" in text:
        return _MEASURE.multiline_textbbox((0, 0), text, font, anchor, _spacing(font), align="center")
    return _MEASURE.textbbox((0, 0), text, font, anchor)


@cache
def extent(text: str, points: float, bold: bool = False) -> tuple[float, float]:
    """Width in saved pixels of ``text``'s ink, and height of its lines: from the first one's
    ascender to the last one's descender, whatever letters they hold (as matplotlib's text boxes
    were measured: a label that fits keeps clear of its wedge's edges)."""
    font = font_at(points, bold)
    left, _, right, _ = _ink_box(text, font)
    lines = text.count("\n")
    pitch = _ink_box("A\nA", font)[3] - _ink_box("A", font)[3] if lines else 0
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (font.getbbox("Ag")[3], 0)
    return (right - left) / FINE, (ascent + descent + lines * pitch) / FINE


# -- a figure --------------------------------------------------------------------------------------


class Figure:
    """What a figure draws, in saved pixels (floats, y down, any origin), kept until ``save``
    knows the box of it all. Curves (``smooth``) go on a layer drawn at ``FINE`` that holds
    just them, reduced and laid on a white canvas; straight shapes on the canvas, each edge on
    the nearest pixel's; then the text. ``texts`` lists every text drawn, in order."""

    def __init__(self, smooth: bool = True) -> None:
        self._smooth = smooth
        self._curves: list[tuple] = []  # on the fine layer
        self._straight: list[tuple] = []  # on the canvas
        self._labels: list[tuple[tuple[int, int], Image.Image, tuple[int, int, int]]] = []
        self._curve_box: Box | None = None
        self.box: Box | None = None  # of everything drawn
        self.texts: list[str] = []

    def _shape(self, shape: tuple, box: Box, curve: bool = True) -> None:
        if curve and self._smooth:
            self._curves.append(shape)
            self._curve_box = _union(self._curve_box, box)
        else:
            self._straight.append(shape)
        self.box = _union(self.box, box)

    def sector(self, radii: tuple[float, float], angles: tuple[float, float], fill: Colour) -> None:
        """A sector of the ring round (0, 0) between ``radii`` and ``angles`` (degrees,
        counter-clockwise from 3 o'clock, the higher first)."""
        high, low = angles
        steps = max(1, math.ceil(high - low))  # a point a degree: the chords stray < 0.1 px
        arc = [math.radians(low + (high - low) * i / steps) for i in range(steps + 1)]
        points = [(radii[1] * math.cos(a), -radii[1] * math.sin(a)) for a in arc]
        points += [(radii[0] * math.cos(a), -radii[0] * math.sin(a)) for a in reversed(arc)]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        self._shape(("polygon", points, rgb255(fill)), (min(xs), min(ys), max(xs), max(ys)))

    def circle(self, radius: float, width: float, colour: Colour) -> None:
        """A circle round (0, 0), its line ``width`` wide centred on ``radius``."""
        r = radius + width / 2
        self._shape(("circle", (-r, -r, r, r), width, rgb255(colour)), (-r, -r, r, r))

    def line(self, points: list[tuple[float, float]], width: float, colour: Colour) -> None:
        """A polyline through ``points``, ``width`` wide."""
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        box = (min(xs) - width / 2, min(ys) - width / 2, max(xs) + width / 2, max(ys) + width / 2)
        self._shape(("line", points, width, rgb255(colour)), box)

    def rectangle(self, box: Box, fill: Colour) -> None:
        """A filled rectangle, its edges on whole pixels (not smoothed)."""
        self._shape(("rectangle", box, rgb255(fill)), box, curve=False)

    def text(self, xy: tuple[float, float], text: str, points: float, fill: Colour = "black", *,
             bold: bool = False, anchor: str = "mm", rotation: float = 0.0) -> None:  # fmt: skip
        """``text`` at ``xy``: ``anchor`` as Pillow's (``la``, ``mm``, ``rd``, ...) or ``ink``,
        the middle of its ink; ``rotation`` in degrees counter-clockwise, about ``xy``; lines
        centred on each other."""
        font = font_at(points, bold)
        pillow_anchor = "la" if anchor == "ink" else anchor
        left, top, right, bottom = _ink_box(text, font, pillow_anchor)
        pad = FINE
        mask = Image.new("L", (math.ceil(right - left) + 2 * pad, math.ceil(bottom - top) + 2 * pad))
        ax, ay = pad - left, pad - top  # the anchor on the mask
        draw = ImageDraw.Draw(mask)
        if "\n" in text:
            draw.multiline_text((ax, ay), text, 255, font, pillow_anchor, _spacing(font), align="center")
        else:
            draw.text((ax, ay), text, 255, font, pillow_anchor)
        if anchor == "ink":
            ax, ay = ax + (left + right) / 2, ay + (top + bottom) / 2
        # One affine map turns the mask about its anchor onto a piece of the fine grid whose
        # corners are saved pixels' corners, so that its reduction lands where the fine mask
        # would. The nearest fine pixel: the reduction smooths as well as bilinear sampling.
        c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
        x, y = xy[0] * FINE, xy[1] * FINE
        corners = [(u - ax, v - ay) for u in (0, mask.width) for v in (0, mask.height)]
        xs = [x + u * c + v * s for u, v in corners]
        ys = [y - u * s + v * c for u, v in corners]
        gx, gy = math.floor(min(xs) / FINE), math.floor(min(ys) / FINE)  # in saved pixels
        size = (math.ceil(max(xs) / FINE) - gx, math.ceil(max(ys) / FINE) - gy)
        ox, oy = gx * FINE - x, gy * FINE - y  # the piece's corner from the anchor
        affine = (c, -s, ax + ox * c - oy * s, s, c, ay + ox * s + oy * c)
        fine = (size[0] * FINE, size[1] * FINE)
        small = mask.transform(fine, Image.Transform.AFFINE, affine, Image.Resampling.NEAREST).reduce(FINE)
        ink = small.getbbox()
        if ink is None:
            return
        self._labels.append(((gx, gy), small, rgb255(fill)))
        self.box = _union(self.box, (gx + ink[0], gy + ink[1], gx + ink[2], gy + ink[3]))
        self.texts.append(text)

    def save(self, path: Path) -> None:
        """Draw it all on a canvas that holds it and ``PAD`` round it; write the PNG."""
        assert self.box is not None
        x0, y0 = math.floor(self.box[0] - PAD), math.floor(self.box[1] - PAD)
        x1, y1 = math.ceil(self.box[2] + PAD), math.ceil(self.box[3] + PAD)
        canvas = Image.new("RGB", (x1 - x0, y1 - y0), "white")
        if self._curve_box is not None:
            lx0, ly0 = math.floor(self._curve_box[0]) - 1, math.floor(self._curve_box[1]) - 1
            lx1, ly1 = math.ceil(self._curve_box[2]) + 1, math.ceil(self._curve_box[3]) + 1
            layer = Image.new("RGB", ((lx1 - lx0) * FINE, (ly1 - ly0) * FINE), "white")
            _draw_shapes(ImageDraw.Draw(layer), self._curves, (lx0, ly0), FINE)
            canvas.paste(layer.reduce(FINE), (lx0 - x0, ly0 - y0))
        _draw_shapes(ImageDraw.Draw(canvas), self._straight, (x0, y0), 1)
        for (gx, gy), mask, colour in self._labels:
            canvas.paste(colour, (gx - x0, gy - y0, gx - x0 + mask.width, gy - y0 + mask.height), mask)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(canvas))


def _draw_shapes(draw: ImageDraw.ImageDraw, shapes: list[tuple], origin: tuple[int, int], k: int) -> None:
    """``shapes`` (in saved pixels) drawn at ``k`` pixels a saved pixel, ``origin`` at (0, 0);
    at ``k == 1`` each edge on the nearest pixel's."""

    def px(x: float, y: float) -> tuple[float, float]:
        if k == 1:
            return (round(x - origin[0]), round(y - origin[1]))
        return ((x - origin[0]) * k, (y - origin[1]) * k)

    for kind, *args in shapes:
        if kind == "polygon":
            draw.polygon([px(*p) for p in args[0]], fill=args[1])
        elif kind == "circle":
            bounds, width, colour = args
            draw.ellipse((*px(*bounds[:2]), *px(*bounds[2:])), outline=colour, width=max(1, round(width * k)))
        elif kind == "line":
            points, width, colour = args
            draw.line([px(*p) for p in points], fill=colour, width=max(1, round(width * k)))
        else:  # the pixels whose middles it covers, at least one column (Pillow's last is in)
            (left, top, right, bottom), fill = args
            (left, top), (right, bottom) = px(left, top), px(right, bottom)
            draw.rectangle((left, top, max(left, right - 1), max(top, bottom - 1)), fill=fill)


def png_bytes(image: Image.Image) -> bytes:
    """An RGB image as PNG: rows unfiltered, zlib level 3, no chunk but the image's. Pillow's
    encoder tries PNG's five filters on every row, which costs more than the compression (30
    of 40 ms for the sunburst) and, on these flat colours, compresses worse than no filter."""
    width, height = image.size
    raw = image.tobytes()
    stride = 3 * width
    rows = b"".join(b"\0" + raw[i : i + stride] for i in range(0, len(raw), stride))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    idat = zlib.compress(rows, 3)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
