"""Decode a plain colour JPEG straight to RGBX words, the same pixels as Pillow's decode.

Pillow and simplejpeg both decode with libjpeg-turbo at its defaults (the accurate integer DCT,
smooth chroma upsampling), so the pixels are the same bit for bit (tests/audit/test_jpeg.py
compares them over subsamplings, progressive files, restart markers and odd sizes). simplejpeg
skips Pillow's Python-level open and load (~55 us of ~340 for a 512 px JPEG here) and writes
the padding byte of each pixel itself, into a buffer reused by each thread: a fresh 1 MiB
array an image is memory the kernel has to map, page by page.

Anything else (grey, CMYK or Adobe RGB files, damaged data, a decoder warning) is left to
Pillow, which decodes it or raises its usual error.
"""

from __future__ import annotations

import threading

import numpy as np
import simplejpeg
from PIL import Image

_SOI = b"\xff\xd8\xff"
_REUSE = 1 << 22  # pixels (16 MiB): a larger image gets an array of its own, not kept
_local = threading.local()


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a YCbCr JPEG that ``decode_rgbx`` takes, else None. A JPEG past
    Pillow's decompression-bomb limit is left to Pillow, which warns or refuses as it does."""
    if not data.startswith(_SOI):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colorspace != "YCbCr" or not width or not height:
        return None
    if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
        return None
    return (width, height)


def decode_rgbx(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """The pixels of a JPEG of ``size`` (from ``jpeg_size``) as little-endian uint32 words
    R | G << 8 | B << 16 | 255 << 24, row by row; None where libjpeg-turbo reports an error or
    a warning (a truncated or damaged file). The array is this thread's buffer: it holds the
    pixels until the thread's next call."""
    width, height = size
    need = width * height
    if need > _REUSE:
        out = np.empty(need, "<u4")
    else:
        if getattr(_local, "buf", None) is None:
            _local.buf = np.empty(_REUSE, "<u4")
        out = _local.buf[:need]
    try:
        simplejpeg.decode_jpeg(
            data,
            colorspace="RGBX",
            fastdct=False,  # libjpeg-turbo's defaults, as Pillow decodes
            fastupsample=False,
            buffer=out,
            strict=True,  # a warning (corrupt data) is an error: Pillow then decides
        )
    except ValueError:
        return None
    return out
