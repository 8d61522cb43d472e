"""Image fingerprints: a pixel-exact hash and two 64-bit perceptual hashes, searched in bulk.

- exact: xxh3-128 of the decoded pixels (R, G, B and a constant 255 per pixel, row by row, size
  included), so a PNG and a BMP of the same picture match while the file bytes differ; any
  pixel that differs changes it;
- pHash: sign of the 8x8 lowest DCT frequencies of a 32x32 grey thumbnail against their median;
- dHash: whether each pixel of a 9x8 grey thumbnail is brighter than its right neighbour.
The pixel-exact key needs every pixel, so a full decode (~0.3 ms for a 512 px JPEG; a colour
JPEG is decoded by ``audit.jpeg`` straight to the words the key hashes, the same pixels as
Pillow's, ~0.1 ms less a image than through Pillow). Otherwise the key reads Pillow's own
pixel memory through its Arrow export (4 bytes a pixel, no copy) and hashes
it with xxh3 (~0.08 ms with the padding check); blake2b over a ``tobytes`` copy cost ~0.8 ms,
more than the decode (``IMAGE_KEY_VERSION`` 1). The perceptual hashes, from a grey 32x32 box
thumbnail of the same decode, add ~0.2 ms (its horizontal pass by ``Image.reduce`` where that
rounds as the resize does: ``_thumbnail``). Reducing before the thumbnail (a ``draft`` decode,
or ``reduce`` over both axes) would be cheaper but rounds differently and moves the dHash of
smooth images by many bits (bench/audit_speed.py prints each part; figures in
bench/README.md).
On the reference side, variants make flipped and cropped copies findable: a horizontal flip is
derived without decoding again (it negates the DCT coefficients of odd horizontal frequency and
mirrors the dHash thumbnail); the central crop is hashed once more.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import xxhash
from numba import njit
from PIL import Image

from spa_vl.audit.jpeg import decode_rgbx, jpeg_size

_N = 32
_k = np.arange(_N)
# orthonormal DCT-II matrix: coefficients = D @ X @ D.T
_DCT = np.sqrt(2.0 / _N) * np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * _N))
_DCT[0] /= np.sqrt(2.0)
_FLIP_SIGNS = np.where(np.arange(8) % 2 == 1, -1.0, 1.0)[None, :]  # odd horizontal frequency


VARIANTS = ("original", "flip", "crop", "crop+flip")
# bumped when the exact key's bytes change (1: blake2b of RGB bytes; 2: xxh3-128 of RGBX):
# what stores results computed with it (the reverse scan's parts) keys on it
IMAGE_KEY_VERSION = 2
CROP_KEEP = 0.9  # the crop variant keeps the central 90% of width and height


@dataclass(frozen=True)
class ImageHashes:
    """Hashes of one image; ``variants`` maps a variant name to its (pHash, dHash)."""

    exact: int
    phash: int
    dhash: int
    variants: dict[str, tuple[int, int]] = field(default_factory=dict)


def _pack(bits: np.ndarray) -> int:
    # bit i of the result is element i (row-major): little-endian bytes of little-endian bits
    return int.from_bytes(np.packbits(bits.ravel(), bitorder="little").tobytes(), "little")


@cache
def _reduce_is_exact(f: int) -> bool:
    """Whether ``reduce((f, 1))`` rounds each run of f pixels as the horizontal pass of a BOX
    ``resize`` by f does (both depend on the run's sum alone; it depends on f: true for
    2, 4, 8, 12, 16 ..., not for 3, 5 ...). Checked once per process on every sum, in every
    column, against this Pillow's own resize."""
    sums = np.arange(255 * f + 1)
    q, r = np.divmod(sums, f)
    run = (q[:, None] + (np.arange(f)[None, :] < r[:, None])).astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(np.tile(run, (1, _N))), "L")
    return im.reduce((f, 1)).tobytes() == im.resize((_N, im.height), Image.Resampling.BOX).tobytes()


def _thumbnail(grey: Image.Image) -> Image.Image:
    """``grey.resize((32, 32), BOX)``, bit for bit. Pillow's resize makes a horizontal pass then
    a vertical one; when the width is a multiple of 32 whose rounding ``reduce`` shares, the
    horizontal pass is that ``reduce`` (Pillow's integer fast path, ~3x cheaper), and the resize
    makes only the vertical pass, on the same intermediate rows."""
    f = grey.width // _N
    if f > 1 and grey.width == f * _N and _reduce_is_exact(f):
        grey = grey.reduce((f, 1))
    return grey.resize((_N, _N), Image.Resampling.BOX)


@cache
def _reduce_table(f: int) -> np.ndarray:
    """What ``reduce((f, 1))`` makes of a run of f grey pixels, by the run's sum (uint8), read
    from this Pillow itself."""
    run = np.zeros((255 * f + 1, f), np.uint8)
    for k in range(f):  # each sum spread over the run as evenly as bytes allow
        run[:, k] = (np.arange(255 * f + 1) + k) // f
    return np.asarray(Image.fromarray(run, "L").reduce((f, 1)), np.uint8)[:, 0].copy()


def _grey_of(rgb: np.ndarray) -> np.ndarray:
    """Pillow's RGB -> L (ITU-R 601-2 in 16-bit fixed point, ``L24`` in Convert.c)."""
    r, g, b = (rgb[..., c].astype(np.int64) for c in range(3))
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


@cache
def _grey_is_exact() -> bool:
    """Whether this Pillow's ``convert("L")`` is ``_grey_of``: checked once per process on
    every value of each channel and random colours (tests check all 2 ** 24)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for c in range(3):
        rgb[c, :, c] = np.arange(256)  # one channel alone, the others random
    rgb[3] = np.arange(256)[:, None]  # greys
    got = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    return bool((got == _grey_of(rgb)).all())


@njit(cache=True, nogil=True)
def _grey_runs(
    words: np.ndarray, width: int, height: int, f: int, table: np.ndarray, fv: int, vtable: np.ndarray
):
    """From RGBX words: ``rgb.convert("L").reduce((f, 1))`` (32 columns, ``table`` by run
    sum), and the AND of every word (the padding check of ``_rgbx``), in one pass. With
    ``fv`` > 1 the vertical pass too: each run of ``fv`` rows becomes one (``vtable`` by the
    column's sum), as the resize's vertical pass rounds where ``_reduce_is_exact(fv)``."""
    out = np.empty((height // fv, 32), np.uint8)
    col = np.zeros(32, np.uint32)
    grey = np.zeros(width + 4, np.uint16)
    quads = grey.view(np.uint64)  # 4 grey values a word: a run of f = 4q sums in q adds
    packed = f % 4 == 0 and f <= 1024  # a 16-bit lane sums at most 256 values
    acc = np.uint32(0xFFFFFFFF)
    low = np.uint32(0xFF)
    lane = np.uint64(0xFFFF)
    for y in range(height):
        row = words[y * width : (y + 1) * width]
        # a row's grey values first, in 32-bit lanes (the sum stays under 2 ** 24): the
        # compiler vectorises this loop, not one that sums runs as it goes
        for i in range(width):
            w = row[i]
            acc &= w
            grey[i] = (
                (w & low) * np.uint32(19595)
                + ((w >> np.uint32(8)) & low) * np.uint32(38470)
                + ((w >> np.uint32(16)) & low) * np.uint32(7471)
                + np.uint32(0x8000)
            ) >> np.uint32(16)
        if packed:
            q = f // 4
            for x in range(32):
                t = np.uint64(0)
                for k in range(x * q, (x + 1) * q):
                    t += quads[k]
                s = (t & lane) + ((t >> np.uint64(16)) & lane)
                s += ((t >> np.uint64(32)) & lane) + (t >> np.uint64(48))
                col[x] += table[s]
        else:
            for x in range(32):
                s = 0
                for k in range(x * f, (x + 1) * f):
                    s += grey[k]
                col[x] += table[s]
        if (y + 1) % fv == 0:
            for x in range(32):
                out[y // fv, x] = vtable[col[x]] if fv > 1 else col[x]
                col[x] = 0
    return out, acc


def _arrow_words(rgb: Image.Image) -> np.ndarray | None:
    """Pillow's own RGB memory as uint32 words through its Arrow export (no copy), or None
    (no export, an image in several blocks, an odd layout)."""
    import pyarrow as pa

    try:
        return np.frombuffer(pa.array(rgb).buffers()[-1], "<u4", count=rgb.width * rgb.height)
    except (ValueError, TypeError, pa.ArrowException):
        return None


def _fast_thumbnail(words: np.ndarray | None, width: int, height: int) -> tuple[Image.Image, bool] | None:
    """``_thumbnail(rgb.convert("L"))`` of the RGBX ``words`` of a ``width`` x ``height`` image,
    and whether every padding byte is 255, with the grey conversion and the horizontal pass
    fused in one compiled loop over the pixels (the full grey image is never made: ~0.1 ms less
    a 512 px image). None where that does not apply: the fused pass is ``reduce``'s, so the
    same widths as ``_thumbnail``'s shortcut."""
    if words is None or not _fast_applies(width):
        return None
    f = width // _N
    fv = height // _N
    if fv > 1 and height == fv * _N and _reduce_is_exact(fv):
        # the vertical pass fused too (Pillow's vertical pass rounds as its horizontal one)
        thumb, acc = _grey_runs(words, width, height, f, _reduce_table(f), fv, _reduce_table(fv))
        return Image.frombuffer("L", (_N, _N), thumb, "raw", "L", 0, 1), int(acc) >> 24 == 0xFF
    runs, acc = _grey_runs(words, width, height, f, _reduce_table(f), 1, _reduce_table(f))
    thumb = Image.frombuffer("L", (_N, height), runs, "raw", "L", 0, 1)
    return thumb.resize((_N, _N), Image.Resampling.BOX), int(acc) >> 24 == 0xFF


def _fast_applies(width: int) -> bool:
    f = width // _N
    return f > 1 and width == f * _N and _reduce_is_exact(f) and _grey_is_exact()


def _perceptual(grey: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 low DCT frequencies of a 32x32 thumbnail, and the 9x8 dHash thumbnail (made from
    the 32x32 one: one pass over the full image, not two)."""
    return _from_thumbnail(_thumbnail(grey))


def _from_thumbnail(thumb: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """``_perceptual`` of the grey 32x32 thumbnail."""
    small = np.asarray(thumb, dtype=np.float64)
    low = (_DCT @ small @ _DCT.T)[:8, :8]
    return low, np.asarray(thumb.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)


def _median(x: np.ndarray) -> float:
    """``np.median`` of an even count, the mean of the middle two, without its overhead."""
    s = np.sort(x, axis=None)
    m = s.size // 2
    return (s[m - 1] + s[m]) / 2


def _bits(low: np.ndarray, d: np.ndarray) -> tuple[int, int]:
    return _pack(low > _median(low)), _pack(d[:, 1:] > d[:, :-1])


def _rgbx(rgb: Image.Image) -> np.ndarray:
    """The pixels as little-endian uint32 R | G << 8 | B << 16 | 255 << 24, row by row: Pillow's
    own memory when its Arrow export gives it (one block, padding byte 255, as a decoder and
    most conversions leave it), else a copy made so."""
    words = _arrow_words(rgb)
    if words is not None and (len(words) == 0 or int(np.bitwise_and.reduce(words)) >> 24 == 0xFF):
        return words
    return _rgbx_copy(rgb)


def _rgbx_copy(rgb: Image.Image) -> np.ndarray:
    """The words of ``_rgbx``, copied (padding 255)."""
    out = np.full((rgb.height, rgb.width, 4), 255, np.uint8)
    out[..., :3] = np.asarray(rgb).reshape(rgb.height, rgb.width, 3)
    return out.reshape(-1).view("<u4")


def pixel_key(rgb: Image.Image) -> int:
    """The pixel-exact key of an image as RGB: 64 bits of xxh3-128 over its pixels and size."""
    rgb = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    return _key_of(_rgbx(rgb), rgb.width, rgb.height)


def _key_of(words: np.ndarray, width: int, height: int) -> int:
    h = xxhash.xxh3_128(words)
    h.update(f"{width}x{height}".encode())
    return int.from_bytes(h.digest()[:8], "little")


def hash_image(data: bytes, variants: bool = False) -> ImageHashes:
    """Fingerprint encoded image bytes (raises PIL's errors on undecodable data).

    With ``variants``, also hash the mirrored image, the central crop and the mirrored crop:
    reference-side views that let a flipped or cropped copy on the source side match.
    """
    if not variants:
        # the common case: a colour JPEG 32k px wide, decoded straight to RGBX words; the grey
        # thumbnail in one pass over the words that the exact key then hashes
        size = jpeg_size(data)
        if size is not None and _fast_applies(size[0]):
            words = decode_rgbx(data, size)
            fast = _fast_thumbnail(words, *size)
            if fast is not None and fast[1]:  # the decoder wrote every padding byte
                low, d = _from_thumbnail(fast[0])
                return ImageHashes(_key_of(words, *size), *_bits(low, d))
    # no ``with``: the bytes are in memory, and a closed image drops its pixels, which a grey
    # image still serves below
    im = Image.open(io.BytesIO(data))
    im.load()
    rgb = im if im.mode == "RGB" else im.convert("RGB")  # convert() copies even RGB
    # an RGB image 32k px wide, no variants: as above, over Pillow's own pixel memory
    words = None if variants or im.mode == "L" else _arrow_words(rgb)
    fast = _fast_thumbnail(words, rgb.width, rgb.height)
    if fast is not None:
        thumb, padded = fast
        exact = _key_of(words if padded else _rgbx_copy(rgb), rgb.width, rgb.height)
        low, d = _from_thumbnail(thumb)
    else:
        exact = pixel_key(rgb)
        # a grey image is its own "L" (Pillow's RGB -> L weights sum to 1 exactly): no round trip
        grey = im if im.mode == "L" else rgb.convert("L")
        low, d = _perceptual(grey)
    p, h = _bits(low, d)
    views: dict[str, tuple[int, int]] = {}
    if variants:
        views["flip"] = _bits(low * _FLIP_SIGNS, d[:, ::-1])
        dx, dy = round(grey.width * (1 - CROP_KEEP) / 2), round(grey.height * (1 - CROP_KEEP) / 2)
        if dx or dy:
            clow, cd = _perceptual(grey.crop((dx, dy, grey.width - dx, grey.height - dy)))
            views["crop"] = _bits(clow, cd)
            views["crop+flip"] = _bits(clow * _FLIP_SIGNS, cd[:, ::-1])
    return ImageHashes(exact, p, h, views)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between uint64 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b))


@dataclass
class ImageIndex:
    """The reference side's image hashes: ``phash[v]``/``dhash[v]`` hold variant ``VARIANTS[v]``
    of every image (the original's hashes where a variant was not computed)."""

    items: np.ndarray  # int64 reference item of each image
    exact: np.ndarray  # uint64 [images]
    phash: np.ndarray  # uint64 [variants, images]
    dhash: np.ndarray
    # images with many perceptual neighbours among the reference images themselves (FigStep's
    # typed pages all hash alike): a perceptual match to one of them says nothing, so they are
    # matched by pixels only
    crowded: np.ndarray | None = None

    @classmethod
    def build(cls, items: np.ndarray, hashes: Iterable[ImageHashes]) -> ImageIndex:
        hashes = list(hashes)
        p = np.array(
            [[h.variants.get(v, (h.phash, h.dhash))[0] for h in hashes] for v in VARIANTS[1:]],
            np.uint64,
        ).reshape(len(VARIANTS) - 1, len(hashes))
        d = np.array(
            [[h.variants.get(v, (h.phash, h.dhash))[1] for h in hashes] for v in VARIANTS[1:]],
            np.uint64,
        ).reshape(len(VARIANTS) - 1, len(hashes))
        return cls(
            np.asarray(items, np.int64),
            np.array([h.exact for h in hashes], np.uint64),
            np.vstack([np.array([h.phash for h in hashes], np.uint64)[None, :], p]),
            np.vstack([np.array([h.dhash for h in hashes], np.uint64)[None, :], d]),
        )

    def mark_crowded(
        self,
        candidates: np.ndarray,
        phash_threshold: int,
        dhash_threshold: int,
        rule: str,
        max_neighbours: int,
        variants: tuple[str, ...] = ("original",),
        chunk: int = 1 << 22,
    ) -> None:
        """Flag the ``candidates`` (a boolean mask) that have more than ``max_neighbours``
        other candidates within the thresholds, comparing each variant with the same variant."""
        idx = np.flatnonzero(candidates)
        crowded = np.zeros(len(idx), bool)
        step = max(1, chunk // max(len(idx), 1))
        for v in (VARIANTS.index(name) for name in variants):
            p, d = self.phash[v][idx], self.dhash[v][idx]
            for lo in range(0, len(idx), step):
                ok_p = hamming(p[lo : lo + step, None], p[None, :]) <= phash_threshold
                ok_d = hamming(d[lo : lo + step, None], d[None, :]) <= dhash_threshold
                close = (ok_p & ok_d) if rule == "both" else (ok_p | ok_d)
                crowded[lo : lo + step] |= close.sum(axis=1) - 1 > max_neighbours  # not itself
        self.crowded = np.zeros(len(self.items), bool)
        self.crowded[idx[crowded]] = True

    def search(
        self,
        exact: np.ndarray,
        phash: np.ndarray,
        dhash: np.ndarray,
        phash_threshold: int,
        dhash_threshold: int,
        rule: str,
        variants: tuple[str, ...] = ("original",),
        chunk: int = 1 << 22,
    ) -> tuple[np.ndarray, ...]:
        """(source row, reference item, pHash distance, dHash distance, exact, variant index)
        for every pair within the thresholds under one of ``variants`` (the first that fits).

        Brute force over uint64 arrays, chunked so one block of distances stays small: for
        reference sides of thousands of images this is faster than any banding scheme.
        """
        out: list[tuple[np.ndarray, ...]] = []
        use = [VARIANTS.index(v) for v in variants]
        n_ref = max(len(self.items), 1)
        step = max(1, chunk // (n_ref * len(use)))
        for lo in range(0, len(exact), step):
            sl = slice(lo, lo + step)
            same = exact[sl, None] == self.exact[None, :]
            best_p = np.full(same.shape, 64, np.uint8)
            best_d = np.full(same.shape, 64, np.uint8)
            which = np.full(same.shape, -1, np.int8)
            for v in use:
                dp = hamming(phash[sl, None], self.phash[v][None, :])
                dd = hamming(dhash[sl, None], self.dhash[v][None, :])
                ok_p, ok_d = dp <= phash_threshold, dd <= dhash_threshold
                close = ((ok_p & ok_d) if rule == "both" else (ok_p | ok_d)) & (which < 0)
                if self.crowded is not None:
                    close &= ~self.crowded[None, :]
                best_p = np.where(close | (v == 0), dp, best_p)
                best_d = np.where(close | (v == 0), dd, best_d)
                which[close] = v
            which[same] = 0
            r, c = np.nonzero(which >= 0)
            out.append((r + lo, self.items[c], best_p[r, c], best_d[r, c], same[r, c], which[r, c]))
        if not out:
            z = np.zeros(0, np.int64)
            return z, z, z, z, z.astype(bool), z
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))
