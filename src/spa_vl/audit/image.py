"""Image fingerprints: a pixel-exact hash and two 64-bit perceptual hashes, searched in bulk.

- exact: blake2b of the decoded pixels (RGB, size included), so a PNG and a BMP of the same
  picture match while the file bytes differ;
- pHash: sign of the 8x8 lowest DCT frequencies of a 32x32 grey thumbnail against their median;
- dHash: whether each pixel of a 9x8 grey thumbnail is brighter than its right neighbour.
The pixel-exact key sets the cost: it needs every pixel, so a full decode (~0.5 ms for a 512 px
JPEG) and a hash of its RGB bytes (~0.6 ms, more than the decode); the perceptual hashes, from a
grey 32x32 box thumbnail, add ~0.3 ms. Decoding a JPEG at 1/8 scale (Pillow's ``draft``) would
give the perceptual hashes in ~0.2 ms in all, but not the pixels the exact key hashes, and
a thumbnail made from a reduced image (rounded on the way) moves the dHash of smooth images by
many bits; bench/audit_speed.py prints each part (figures in bench/README.md).
On the reference side, variants make flipped and cropped copies findable: a horizontal flip is
derived without decoding again (it negates the DCT coefficients of odd horizontal frequency and
mirrors the dHash thumbnail); the central crop is hashed once more.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

_N = 32
_k = np.arange(_N)
# orthonormal DCT-II matrix: coefficients = D @ X @ D.T
_DCT = np.sqrt(2.0 / _N) * np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * _N))
_DCT[0] /= np.sqrt(2.0)
_FLIP_SIGNS = np.where(np.arange(8) % 2 == 1, -1.0, 1.0)[None, :]  # odd horizontal frequency


VARIANTS = ("original", "flip", "crop", "crop+flip")
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


def _perceptual(grey: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 low DCT frequencies of a 32x32 thumbnail, and the 9x8 dHash thumbnail (made from
    the 32x32 one: one pass over the full image, not two)."""
    thumb = grey.resize((_N, _N), Image.Resampling.BOX)
    small = np.asarray(thumb, dtype=np.float64)
    low = (_DCT @ small @ _DCT.T)[:8, :8]
    return low, np.asarray(thumb.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)


def _bits(low: np.ndarray, d: np.ndarray) -> tuple[int, int]:
    return _pack(low > np.median(low)), _pack(d[:, 1:] > d[:, :-1])


def hash_image(data: bytes, variants: bool = False) -> ImageHashes:
    """Fingerprint encoded image bytes (raises PIL's errors on undecodable data).

    With ``variants``, also hash the mirrored image, the central crop and the mirrored crop:
    reference-side views that let a flipped or cropped copy on the source side match.
    """
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        rgb = im if im.mode == "RGB" else im.convert("RGB")  # convert() copies even RGB
        exact = hashlib.blake2b(rgb.tobytes(), digest_size=8)
        exact.update(f"{rgb.width}x{rgb.height}".encode())
        grey = rgb.convert("L")
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
    return ImageHashes(int.from_bytes(exact.digest(), "little"), p, h, views)


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
