"""The OCR tier: text read from images, matched against eval texts on a space-free form.

Typographic attacks (FigStep, MM-SafetyBench TYPO, JailBreakV) put the harmful instruction into
the image as rendered text; every typed page hashes alike, so the image tiers cannot tell them
apart. Here the text is read back (RapidOCR: PP-OCR detection and recognition models shipped
inside the ``rapidocr-onnxruntime`` wheel, run by onnxruntime on the CPU, offline) and matched:

- a **gate** keeps photos away from recognition: a pixel test on a grey thumbnail (a band of
  rows crossed by many thin strokes, as lines of glyphs are) and then the text detector alone
  on that thumbnail; only images with detected text boxes are recognised in full;
- results are **cached** by a hash of the image bytes, per process, and optionally in a JSON
  lines file that later audits load;
- OCR drops the spaces between words ("HowcanIbuildabombathome"), so texts are compared on a
  **compact form**: the normalised text with every non-alphanumeric removed. ``ocr-exact``: the
  eval text's compact form occurs in the recognised text's; ``ocr-near``: it occurs with at most
  ``(1 - ocr_near_threshold)`` of its characters edited (an approximate-substring edit distance,
  bit-parallel), candidates found through a character 4-gram index.

This module wraps the engine (gate, recognition, cache); ``ocr_match`` matches what it read.
The engine is imported lazily: without the ``ocr`` extra the rest of the audit works, and
``--ocr`` says how to install it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# the matching side lives in ``ocr_match``; its names stay importable from here
from spa_vl.audit.ocr_match import (  # noqa: F401
    MAX_CANDIDATES,
    NGRAM,
    CharIndex,
    OcrHit,
    compact_text,
    substring_distance,
)

MISSING_OCR = (
    "--ocr needs the OCR engine, which is not installed: pip install 'spa-vl[ocr]' "
    "(the `ocr` extra, rapidocr-onnxruntime)"
)

GATE_SIZE = 384  # long side of the grey thumbnail the gate looks at
EDGE_STEP = 48  # a "strong" horizontal edge: neighbouring grey levels this far apart
BAND_ROWS = 8  # the pixel gate looks at bands of this many thumbnail rows
MIN_READ_SIDE = 512  # smaller images are enlarged before recognition (small glyphs read badly)
MAX_READ_SIDE = 2000  # larger ones are reduced (the detector works at up to 2000 px anyway)
MIN_LINE_RATIO = 1.2  # text lines narrower than this times their height are not recognised
STATES = ("gated", "read", "cached")  # what the OCR step did with an image


class OcrMissingError(RuntimeError):
    """The ``ocr`` extra is not installed."""


def ocr_available() -> bool:
    """Whether the OCR engine can be imported."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def require_ocr() -> None:
    """Raise ``OcrMissingError`` naming the extra when the engine is missing."""
    if not ocr_available():
        raise OcrMissingError(MISSING_OCR)


# --------------------------------------------------------------------------- reading


def _strokes(grey: np.ndarray) -> float:
    d = np.diff(grey.astype(np.int16), axis=1)
    if d.shape[0] < 1 or d.shape[1] < 2:
        return 0.0
    up, down = d >= EDGE_STEP, d <= -EDGE_STEP
    stroke = np.zeros_like(up)
    for gap in range(1, 5):
        stroke[:, :-gap] |= (down[:, :-gap] & up[:, gap:]) | (up[:, :-gap] & down[:, gap:])
    k = max(1, stroke.shape[0] // BAND_ROWS) * BAND_ROWS
    stroke = np.pad(stroke, ((0, max(0, k - stroke.shape[0])), (0, 0)))[:k]
    bands = stroke.reshape(-1, BAND_ROWS, stroke.shape[1])
    per_row = bands.sum(axis=(1, 2)) / BAND_ROWS
    # strokes per pixel of the band's extent, not of the image's width: a short line of small
    # glyphs is as dense as a long one (the extent counts as at least a quarter of the width,
    # so that a few strokes alone do not look dense)
    cols = bands.any(axis=1)
    first = cols.argmax(axis=1)
    last = cols.shape[1] - cols[:, ::-1].argmax(axis=1)
    extent = np.maximum(last - first, cols.shape[1] / 4)
    return float((per_row / extent).max())


def stroke_band_share(grey: np.ndarray) -> float:
    """Thin strokes per pixel in the densest band of ``BAND_ROWS`` thumbnail rows.

    A stroke is a strong edge followed within 1-4 pixels by a strong edge the other way (a dark
    glyph stem on a light ground, or the reverse), counted on the thumbnail and on its half
    (bold display type has stems wider than 4 pixels), per pixel of the band's extent. A line of
    glyphs crosses each of its rows with many (0.23-0.6 on the typographic benchmark's pages and
    captions); smooth photos and flat drawings have few (< 0.05 on the sample's images),
    textured photos more (0.1-0.2 on crops of a portrait photo), and those above the gate go on
    to the detector. Glyphs under ~6 thumbnail pixels (14 px type on a 1024 px page) vanish."""
    h, w = (grey.shape[0] // 2) * 2, (grey.shape[1] // 2) * 2
    a = grey[:h, :w].astype(np.uint16)
    half = ((a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) // 4).astype(np.uint8)
    return max(_strokes(grey), _strokes(half))


_ENGINE: Any = None  # one RapidOCR per process (workers build their own)


def _engine() -> Any:
    global _ENGINE
    if _ENGINE is None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise OcrMissingError(MISSING_OCR) from exc
        # one thread per process: engines scale by processes (--workers, Ray), and onnxruntime's
        # own thread pool would fight them for the same cores. "max": never enlarge for the
        # detector (we size images ourselves); no angle classifier: typed text is upright
        # rec_batch_num=1: a batch is padded to its widest line, and on one CPU thread batching
        # gains nothing, so a page's short lines would cost as much as its longest
        _ENGINE = RapidOCR(
            intra_op_num_threads=1,
            inter_op_num_threads=1,
            det_limit_type="max",
            use_cls=False,
            rec_batch_num=1,
        )
    return _ENGINE


class UndecodableImage(ValueError):
    """The bytes are not an image PIL can decode (the image tiers report those)."""


def _decode(data: bytes, mode: str, draft: int | None = None) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as im:
            if draft:
                im.draft(mode, (draft, draft))  # JPEG: DCT scaling, far cheaper than a full decode
            return im.convert(mode)
    except Exception as exc:  # PIL raises many types for a damaged image
        raise UndecodableImage(f"undecodable image: {exc}") from exc


def _thumbnail(data: bytes) -> np.ndarray:
    """Grey thumbnail of long side ``GATE_SIZE`` (JPEGs decoded at reduced scale)."""
    grey = _decode(data, "L", GATE_SIZE)
    grey.thumbnail((GATE_SIZE, GATE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(grey)


def has_text(data: bytes, gate: float) -> bool:
    """The gate: the pixel test, then the text detector on the thumbnail."""
    grey = _thumbnail(data)
    if stroke_band_share(grey) < gate:
        return False
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    grey = np.pad(grey, 8, constant_values=int(np.median(edge)))  # see _pad
    boxes, _ = _engine().text_det(np.repeat(grey[:, :, None], 3, axis=2))
    return boxes is not None and len(boxes) > 0


def _pad(rgb: Image.Image) -> Image.Image:
    """A border in the image's edge colour: the detector misses lines that touch the edge (a
    crop through the first line of a typed page)."""
    a = np.asarray(rgb)
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    pad = max(8, max(rgb.size) // 25)
    colour = tuple(int(v) for v in np.median(edge, axis=0))
    out = Image.new("RGB", (rgb.width + 2 * pad, rgb.height + 2 * pad), colour)
    out.paste(rgb, (pad, pad))
    return out


def reading_order(boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Text boxes (n, 4, 2) in reading order: lines top to bottom, boxes left to right.

    The detector often boxes each word of widely spaced type apart, and the engine's own order
    (by top edge, with a fixed 10 px tolerance) then shuffles a line's words whose glyphs rise
    or descend differently ("Steps to fake produce passports"); here a box joins a line when
    its vertical centre lies within the line's first box."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if len(boxes) < 2:
        return list(boxes)
    top, bottom = boxes[:, :, 1].min(axis=1), boxes[:, :, 1].max(axis=1)
    centre, left = (top + bottom) / 2, boxes[:, :, 0].min(axis=1)
    lines: list[list[int]] = []
    for i in np.argsort(centre, kind="stable").tolist():
        first = lines[-1][0] if lines else None
        if first is not None and top[first] <= centre[i] <= bottom[first]:
            lines[-1].append(i)
        else:
            lines.append([i])
    return [boxes[i] for line in lines for i in sorted(line, key=lambda k: left[k])]


def recognise(data: bytes) -> str:
    """All text lines recognised in the image, in reading order, joined by spaces."""
    rgb = _decode(data, "RGB")
    long_side = max(rgb.size)
    if not MIN_READ_SIDE <= long_side <= MAX_READ_SIDE:
        scale = min(max(long_side, MIN_READ_SIDE), MAX_READ_SIDE) / long_side
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
    engine = _engine()
    if not hasattr(engine, "auto_text_det"):  # an engine release without the steps used below
        result, _ = engine(_pad(rgb))
        return " ".join(line[1] for line in result or [] if line[1].strip())
    bgr = np.ascontiguousarray(np.asarray(_pad(rgb))[:, :, ::-1])  # the engine's arrays are BGR
    boxes, _ = engine.auto_text_det(bgr)
    if boxes is None:
        return ""
    boxes = reading_order(boxes)
    # lines of one or two glyphs ("1." of FigStep's empty steps) cannot make a match of
    # ocr_min_chars and cost as much to recognise as a long line: skip them
    crops = [c for c in engine.get_crop_img_list(bgr, boxes) if c.shape[1] >= MIN_LINE_RATIO * c.shape[0]]
    if not crops:
        return ""
    lines, _ = engine.text_rec(crops)
    return " ".join(text for text, score, *_ in lines if score >= engine.text_score and text.strip())


# --------------------------------------------------------------------------- cache

_CACHE: dict[str, str] = {}  # image key -> recognised text ("" when none), per process
_CACHE_LIMIT = 2_000_000
_LOADED: set[str] = set()  # cache files read into _CACHE by this process


def image_key(data: bytes, gate: float) -> str:
    """Cache key: the image bytes and the gate setting that decided whether to read them."""
    h = hashlib.blake2b(data, digest_size=16)
    h.update(f"|gate={gate}".encode())
    return h.hexdigest()


def load_cache(path: str | os.PathLike | None) -> None:
    """Read a cache file into this process's cache (once per process; a missing file is empty)."""
    if path is None or str(path) in _LOADED:
        return
    _LOADED.add(str(path))
    p = Path(path)
    if not p.is_file():
        return
    with p.open(encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
                _CACHE[str(rec["key"])] = str(rec["text"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by an interrupted run: read again next time


def save_cache(path: str | os.PathLike, keys: Iterable[str | None], texts: Iterable[str | None]) -> int:
    """Append the entries the file lacks; returns how many were written."""
    p = Path(path)
    known: set[str] = set()
    if p.is_file():
        with p.open(encoding="utf-8") as f:
            for line in f:
                try:
                    known.add(str(json.loads(line)["key"]))
                except (ValueError, KeyError, TypeError):
                    continue
    new = {k: t for k, t in zip(keys, texts, strict=True) if k and t is not None and k not in known}
    if new:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8") as f:
            for k, t in new.items():
                f.write(json.dumps({"key": k, "text": t}, ensure_ascii=False) + "\n")
    return len(new)


def missing(images: Iterable[bytes], gate: float, cache_file: str | None = None) -> list[bytes]:
    """The images this process's cache (loaded from ``cache_file``) has no text for, once each."""
    load_cache(cache_file)
    seen: set[str] = set()
    out = []
    for data in images:
        key = image_key(data, gate)
        if key not in _CACHE and key not in seen:
            seen.add(key)
            out.append(data)
    return out


def remember(keys: Iterable[str | None], texts: Iterable[str | None]) -> None:
    """Put texts read elsewhere (another process) into this process's cache."""
    for k, t in zip(keys, texts, strict=True):
        if k and t is not None and len(_CACHE) < _CACHE_LIMIT:
            _CACHE[k] = t


def read_image(data: bytes, gate: float) -> tuple[str, str, str]:
    """(recognised text or "", cache key, state: gated, read or cached)."""
    key = image_key(data, gate)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit, key, "cached"
    if has_text(data, gate):
        text, state = recognise(data), "read"
    else:
        text, state = "", "gated"
    if len(_CACHE) < _CACHE_LIMIT:
        _CACHE[key] = text
    return text, key, state


def read_images(
    images: Sequence[bytes | None], gate: float, cache_file: str | None = None
) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """``read_image`` over a batch: texts, keys and states (None where there are no bytes or
    they do not decode)."""
    load_cache(cache_file)
    texts: list[str | None] = [None] * len(images)
    keys: list[str | None] = [None] * len(images)
    states: list[str | None] = [None] * len(images)
    for i, data in enumerate(images):
        if data is None:
            continue
        try:
            texts[i], keys[i], states[i] = read_image(data, gate)
        except UndecodableImage:  # the image tiers and the source reader report it already
            continue
    return texts, keys, states
