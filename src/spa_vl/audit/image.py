"""Image fingerprints: a pixel-exact hash and two 64-bit perceptual hashes, searched in bulk.

- exact: blake2b of the decoded pixels (RGB, size included), so a PNG and a BMP of the same
  picture match while the file bytes differ;
- pHash: sign of the 8x8 lowest DCT frequencies of a 32x32 grey thumbnail against their median;
- dHash: whether each pixel of a 9x8 grey thumbnail is brighter than its right neighbour.
A horizontal flip is derived on the reference side without decoding again: it negates the DCT
coefficients of odd horizontal frequency, and mirrors the dHash thumbnail.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image

_N = 32
_k = np.arange(_N)
# orthonormal DCT-II matrix: coefficients = D @ X @ D.T
_DCT = np.sqrt(2.0 / _N) * np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * _N))
_DCT[0] /= np.sqrt(2.0)
_FLIP_SIGNS = np.where(np.arange(8) % 2 == 1, -1.0, 1.0)[None, :]  # odd horizontal frequency
_BITS = (np.uint64(1) << np.arange(64, dtype=np.uint64)).astype(np.uint64)


@dataclass(frozen=True)
class ImageHashes:
    exact: int
    phash: int
    dhash: int
    phash_flip: int
    dhash_flip: int


def _pack(bits: np.ndarray) -> int:
    return int(np.bitwise_or.reduce(np.where(bits.ravel(), _BITS, np.uint64(0))))


def hash_image(data: bytes) -> ImageHashes:
    """Fingerprint encoded image bytes (raises PIL's errors on undecodable data)."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        rgb = im.convert("RGB")
    exact = hashlib.blake2b(
        f"{rgb.width}x{rgb.height}".encode() + rgb.tobytes(), digest_size=8
    ).digest()
    grey = rgb.convert("L")
    small = np.asarray(grey.resize((_N, _N), Image.Resampling.BOX), dtype=np.float64)
    low = (_DCT @ small @ _DCT.T)[:8, :8]
    low_flip = low * _FLIP_SIGNS
    d = np.asarray(grey.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    dflip = d[:, ::-1]
    return ImageHashes(
        exact=int.from_bytes(exact, "little"),
        phash=_pack(low > np.median(low)),
        dhash=_pack(d[:, 1:] > d[:, :-1]),
        phash_flip=_pack(low_flip > np.median(low_flip)),
        dhash_flip=_pack(dflip[:, 1:] > dflip[:, :-1]),
    )


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between uint64 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b))


@dataclass
class ImageIndex:
    """The reference side's image hashes, as uint64 arrays aligned with ``items``."""

    items: np.ndarray  # int64 reference item of each image
    exact: np.ndarray
    phash: np.ndarray
    dhash: np.ndarray
    phash_flip: np.ndarray
    dhash_flip: np.ndarray

    @classmethod
    def build(cls, items: np.ndarray, hashes: Iterable[ImageHashes]) -> ImageIndex:
        hashes = list(hashes)

        def column(name: str) -> np.ndarray:
            return np.array([getattr(h, name) for h in hashes], dtype=np.uint64)

        return cls(
            np.asarray(items, np.int64), *(column(f) for f in ImageHashes.__dataclass_fields__)
        )

    def search(
        self,
        exact: np.ndarray,
        phash: np.ndarray,
        dhash: np.ndarray,
        phash_threshold: int,
        dhash_threshold: int,
        rule: str,
        flips: bool,
        chunk: int = 1 << 22,
    ) -> tuple[np.ndarray, ...]:
        """(source row, reference item, pHash distance, dHash distance, exact, flipped) per pair.

        Brute force over uint64 arrays, chunked so one block of distances stays small: for
        reference sides of thousands of images this is faster than any banding scheme.
        """
        out: list[tuple[np.ndarray, ...]] = []
        n_ref = max(len(self.items), 1)
        step = max(1, chunk // n_ref)
        for lo in range(0, len(exact), step):
            e, p, d = (
                exact[lo : lo + step, None],
                phash[lo : lo + step, None],
                dhash[lo : lo + step, None],
            )
            dp, dd = hamming(p, self.phash[None, :]), hamming(d, self.dhash[None, :])
            flipped = np.zeros(dp.shape, bool)
            if flips:
                fp, fd = hamming(p, self.phash_flip[None, :]), hamming(d, self.dhash_flip[None, :])
                flipped = (fp + fd) < (dp + dd)
                dp, dd = np.where(flipped, fp, dp), np.where(flipped, fd, dd)
            same = e == self.exact[None, :]
            ok_p, ok_d = dp <= phash_threshold, dd <= dhash_threshold
            close = (ok_p & ok_d) if rule == "both" else (ok_p | ok_d)
            r, c = np.nonzero(same | close)
            out.append(
                (r + lo, self.items[c], dp[r, c], dd[r, c], same[r, c], flipped[r, c] & ~same[r, c])
            )
        if not out:
            z = np.zeros(0, np.int64)
            return z, z, z, z, z.astype(bool), z.astype(bool)
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))
