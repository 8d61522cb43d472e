"""Image sanity checks: format, size, truncation and decompression bombs.

The default reads only headers plus the last bytes of the file (a JPEG must end in EOI, a PNG
in IEND), which catches truncation without decoding; ``deep`` decodes every pixel.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


@dataclass(frozen=True)
class ImageLimits:
    min_side: int = 8
    max_side: int = 16384
    # Guard against decompression bombs before any decoding: 64 Mpx is far above SPA-VL's images.
    max_pixels: int = 64_000_000
    formats: tuple[str, ...] = FORMATS


def sniff_format(data: bytes) -> str | None:
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


# JPEG start-of-frame markers (they hold the size); C4, C8 and CC are other segments.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOF_ARRAY = np.array(sorted(_SOF))


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first SOF segment, or None when the markers do not lead to
    one (then PIL reads the header and words the error)."""
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame
            return None
        if marker in _SOF:
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return (w, h) if w and h else None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _fast_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """The size read straight from a JPEG or PNG header: PIL's ``Image.open`` costs more than
    the rest of the validation of a record."""
    if fmt == "JPEG":
        return _jpeg_size(data)
    if fmt == "PNG" and len(data) >= 33 and data[12:16] == b"IHDR":
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return (w, h) if w and h else None
    return None


def check_image(
    data: bytes, limits: ImageLimits = ImageLimits(), deep: bool = False
) -> list[tuple[str, str]]:
    """Return (code, message) pairs for what is wrong with an encoded image; [] when sound."""
    if not data:
        return [("empty-image", "the image is empty (0 bytes)")]
    fmt = sniff_format(data)
    if fmt is None:
        return [("unknown-image-format", f"not a known image format (first bytes {data[:8].hex()})")]
    if fmt not in limits.formats:
        return [("image-format", f"{fmt} is not an accepted format ({', '.join(limits.formats)})")]
    size = None if deep else _fast_size(fmt, data)
    img = None
    if size is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            return [("decompression-bomb", str(exc))]
        except UnidentifiedImageError:
            # PIL's message names the BytesIO object by address: not stable, not repeated.
            return [("corrupt-image", f"{fmt} header cannot be read: PIL cannot identify the image")]
        except (OSError, SyntaxError, ValueError) as exc:
            return [("corrupt-image", f"{fmt} header cannot be read: {exc}")]
        size = img.size
    w, h = size
    if w * h > limits.max_pixels:
        return [
            (
                "decompression-bomb",
                f"{w}x{h} = {w * h} pixels exceeds the limit of {limits.max_pixels}",
            )
        ]
    problems = []
    if min(w, h) < limits.min_side or max(w, h) > limits.max_side:
        problems.append(
            (
                "image-size",
                f"{w}x{h} is outside {limits.min_side}..{limits.max_side} pixels per side",
            )
        )
    if fmt == "JPEG" and b"\xff\xd9" not in data[-64:]:
        problems.append(("truncated-image", "JPEG data is truncated (no end-of-image marker)"))
    elif fmt == "PNG" and b"IEND" not in data[-16:]:
        problems.append(("truncated-image", "PNG data is truncated (no IEND chunk)"))
    if deep and not problems and img is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
        except Exception as exc:  # PIL raises many types for bad pixel data
            problems.append(("corrupt-image", f"{fmt} pixel data cannot be decoded: {exc}"))
    return problems


# -- many images at once ---------------------------------------------------------------------

_MAX_SEGMENTS = 64  # markers walked before the SOF; further ones are left to check_image


def jpeg_sound(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, limits: ImageLimits) -> np.ndarray:
    """For images ``data[starts[k]:ends[k]]``: True where ``check_image(image, limits)`` (no
    ``deep``) surely returns []: a JPEG whose SOF size (read as ``_jpeg_size`` reads it, all
    images in lock-step with numpy) is within ``limits``, with an end marker in its last 64
    bytes. False means "not sure": call ``check_image`` on that image, which words the problem."""
    n = len(starts)
    starts, ends = starts.astype(np.int64), ends.astype(np.int64)
    lengths = ends - starts
    sure = np.zeros(n, dtype=bool)
    if n == 0 or "JPEG" not in limits.formats or len(data) == 0:
        return sure

    last = len(data) - 1
    head = data[np.minimum(starts[:, None] + np.arange(3), last)].astype(np.int64)
    # sniff_format: b"\xff\xd8\xff" comes first among the magics.
    active = (lengths >= 3) & (head[:, 0] == 0xFF) & (head[:, 1] == 0xD8) & (head[:, 2] == 0xFF)
    rel = np.full(n, 2, dtype=np.int64)
    width, height = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    window = np.arange(9)
    for _ in range(_MAX_SEGMENTS):
        active &= rel + 9 < lengths  # the loop's condition; leaving it means None
        if not active.any():
            break
        # The 9 bytes at each image's position (one gather); only active rows are read from.
        b = data[np.minimum((starts + rel)[:, None] + window, last)].astype(np.int64)
        marker = b[:, 1]
        active &= b[:, 0] == 0xFF
        fill = active & (marker == 0xFF)
        bare = active & ~fill & ((marker == 0x01) | ((marker >= 0xD0) & (marker <= 0xD8)))
        stop = active & ~fill & ~bare & ((marker == 0xD9) | (marker == 0xDA))
        sof = active & ~fill & ~bare & ~stop & np.isin(marker, _SOF_ARRAY)
        other = active & ~fill & ~bare & ~stop & ~sof
        height = np.where(sof, b[:, 5] * 256 + b[:, 6], height)
        width = np.where(sof, b[:, 7] * 256 + b[:, 8], width)
        sure |= sof & (width > 0) & (height > 0)
        rel += np.where(fill, 1, 0) + np.where(bare, 2, 0) + np.where(other, 2 + b[:, 2] * 256 + b[:, 3], 0)
        active &= ~stop & ~sof
    sure &= width * height <= limits.max_pixels
    sure &= (np.minimum(width, height) >= limits.min_side) & (np.maximum(width, height) <= limits.max_side)
    # b"\xff\xd9" in image[-64:]: a pair of bytes inside the last 64 (or the whole image).
    # Nearly every JPEG ends with it; only the others are searched (the search is most of
    # the time of this function when it covers every image).
    at_end = (
        (lengths >= 2)
        & (data[np.clip(ends - 2, 0, last)] == 0xFF)
        & (data[np.clip(ends - 1, 0, last)] == 0xD9)
    )
    search = np.flatnonzero(sure & ~at_end)
    if len(search):
        idx = ends[search, None] - 64 + np.arange(64)
        inside = idx >= starts[search, None]
        tail = data[np.clip(idx, 0, last)]
        pair = inside[:, :-1] & (tail[:, :-1] == 0xFF) & (tail[:, 1:] == 0xD9)
        at_end[search] = pair.any(axis=1)
    return sure & at_end
