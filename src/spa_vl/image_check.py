"""Image sanity checks: format, size, truncation and decompression bombs.

The default reads only headers plus the last bytes of the file (a JPEG must end in EOI, a PNG
in IEND), which catches truncation without decoding; ``deep`` decodes every pixel.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

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


def check_image(
    data: bytes, limits: ImageLimits = ImageLimits(), deep: bool = False
) -> list[tuple[str, str]]:
    """Return (code, message) pairs for what is wrong with an encoded image; [] when sound."""
    if not data:
        return [("empty-image", "the image is empty (0 bytes)")]
    fmt = sniff_format(data)
    if fmt is None:
        return [
            ("unknown-image-format", f"not a known image format (first bytes {data[:8].hex()})")
        ]
    if fmt not in limits.formats:
        return [("image-format", f"{fmt} is not an accepted format ({', '.join(limits.formats)})")]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        return [("decompression-bomb", str(exc))]
    except UnidentifiedImageError:
        # PIL's message names the BytesIO object by address: not stable, so not repeated.
        return [("corrupt-image", f"{fmt} header cannot be read: PIL cannot identify the image")]
    except (OSError, SyntaxError, ValueError) as exc:
        return [("corrupt-image", f"{fmt} header cannot be read: {exc}")]
    w, h = img.size
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
    if deep and not problems:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
        except Exception as exc:  # PIL raises many types for bad pixel data
            problems.append(("corrupt-image", f"{fmt} pixel data cannot be decoded: {exc}"))
    return problems
