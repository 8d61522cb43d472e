"""Image fingerprints: pixel-exact tier, perceptual hashes, variants and the bulk search."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from spa_vl.audit.image import VARIANTS, ImageIndex, hamming, hash_image

PHASH, DHASH = 8, 10  # the default thresholds


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like test image: noise texture, gradient and random shapes."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    im = Image.fromarray(base, "RGB").resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x, y = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        box = (x, y, x + int(rng.integers(10, w // 2)), y + int(rng.integers(10, h // 2)))
        draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return im


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def dist(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def test_exact_hash_is_about_pixels_not_bytes() -> None:
    im = picture(1)
    png, bmp = encode(im, "PNG"), encode(im, "BMP")
    assert png != bmp
    assert hash_image(png).exact == hash_image(bmp).exact
    assert hash_image(encode(picture(2))).exact != hash_image(png).exact


@pytest.mark.parametrize(
    "transform",
    [
        lambda im: encode(im, "JPEG", quality=50),
        lambda im: encode(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)),
        lambda im: encode(im.convert("L")),
    ],
    ids=["jpeg-q50", "half-size", "grayscale"],
)
def test_perceptual_hashes_survive_reencoding_resizing_grayscale(transform) -> None:
    im = picture(3)
    h0, h1 = hash_image(encode(im)), hash_image(transform(im))
    assert dist(h0.phash, h1.phash) <= PHASH
    assert dist(h0.dhash, h1.dhash) <= DHASH


def test_crop_and_flip_match_through_reference_variants() -> None:
    im = picture(4)
    ref = hash_image(encode(im), variants=True)
    assert set(ref.variants) == {"flip", "crop", "crop+flip"}
    dx, dy = round(im.width * 0.05), round(im.height * 0.05)
    cropped = hash_image(encode(im.crop((dx, dy, im.width - dx, im.height - dy))))
    flipped = hash_image(encode(ImageOps.mirror(im)))
    # the originals are far apart ...
    assert dist(ref.phash, flipped.phash) > PHASH
    # ... the variants are close
    assert dist(ref.variants["crop"][0], cropped.phash) <= 2
    assert dist(ref.variants["flip"][0], flipped.phash) <= 2
    assert dist(ref.variants["flip"][1], flipped.dhash) <= 2


def test_unrelated_pictures_are_far_apart() -> None:
    hashes = [hash_image(encode(picture(seed))) for seed in range(20)]
    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            far_p = dist(hashes[i].phash, hashes[j].phash) > PHASH
            far_d = dist(hashes[i].dhash, hashes[j].dhash) > DHASH
            assert far_p or far_d


def test_hamming_matches_python_popcount() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, 50, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, 50, dtype=np.uint64)
    d = hamming(a[:, None], b[None, :])
    assert d.shape == (50, 50)
    assert all(d[i, j] == dist(int(a[i]), int(b[j])) for i in range(50) for j in range(50))


def test_search_returns_pairs_under_the_first_variant_that_fits() -> None:
    ims = [picture(s) for s in range(5)]
    ref = [hash_image(encode(im), variants=True) for im in ims]
    index = ImageIndex.build(np.arange(5) + 100, ref)
    queries = [
        hash_image(encode(ims[0], "JPEG", quality=50)),
        hash_image(encode(ImageOps.mirror(ims[1]))),
        hash_image(encode(picture(99))),
        hash_image(encode(ims[2])),
    ]
    args = (
        np.array([q.exact for q in queries], np.uint64),
        np.array([q.phash for q in queries], np.uint64),
        np.array([q.dhash for q in queries], np.uint64),
        PHASH,
        DHASH,
        "both",
    )
    rows, items, _dp, _dd, same, variant = index.search(*args, variants=("original",))
    found = {(r, i): (bool(s), VARIANTS[v]) for r, i, s, v in zip(rows, items, same, variant, strict=True)}
    assert found == {(0, 100): (False, "original"), (3, 102): (True, "original")}
    rows, items, *_, variant = index.search(*args, variants=("original", "flip"))
    assert (1, 101) in set(zip(rows.tolist(), items.tolist(), strict=True))
    assert VARIANTS[variant[rows.tolist().index(1)]] == "flip"


def test_crowded_reference_images_are_marked() -> None:
    # FigStep-like typed pages: the same layout, a different word on each
    blank = [Image.new("RGB", (200, 200), "white") for _ in range(6)]
    for k, im in enumerate(blank):
        lines = [f"Steps to do thing number {k}.", "1.", "2.", "3."]
        ImageDraw.Draw(im).multiline_text((10, 10), "\n".join(lines), fill="black", spacing=12)
    photos = [picture(s) for s in range(3)]
    hashes = [hash_image(encode(im), variants=True) for im in blank + photos]
    index = ImageIndex.build(np.arange(9), hashes)
    index.mark_crowded(np.ones(9, bool), PHASH, DHASH, "both", max_neighbours=3)
    assert index.crowded.tolist() == [True] * 6 + [False] * 3


def test_undecodable_bytes_raise() -> None:
    with pytest.raises(Exception):  # noqa: B017 - PIL raises UnidentifiedImageError or OSError
        hash_image(b"not an image")


def test_exact_key_changes_with_any_one_pixel_and_ignores_pillows_padding() -> None:
    im = picture(4)
    changed = im.copy()
    r, g, b = changed.getpixel((17, 5))
    changed.putpixel((17, 5), (r, g, b ^ 1))
    assert hash_image(encode(changed)).exact != hash_image(encode(im)).exact
    # Pillow's RGB pixels are 4 bytes; from LA (or YCbCr) the 4th is 0, from a decoder 255:
    # the key is the pixels', not the padding's
    grey = im.convert("L")
    la = Image.merge("LA", (grey, Image.new("L", grey.size, 255)))
    assert hash_image(encode(la)).exact == hash_image(encode(grey.convert("RGB"))).exact
    assert hash_image(encode(grey)).exact == hash_image(encode(grey.convert("RGB"))).exact


def test_exact_key_without_pillows_arrow_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow before 11.2, or an image stored in several blocks: the copied pixels give the
    same key."""
    import pyarrow as pa

    data = [encode(picture(5)), encode(picture(5).convert("L")), encode(picture(6), "JPEG")]
    keys = [hash_image(d).exact for d in data]

    def no_export(obj, *args, **kwargs):
        raise ValueError("Image rows are not contiguous in memory")

    monkeypatch.setattr(pa, "array", no_export)
    assert [hash_image(d).exact for d in data] == keys


@pytest.mark.parametrize(
    "size", [(512, 384), (384, 512), (96, 64), (160, 100), (520, 300), (32, 40), (640, 40)]
)
def test_thumbnail_is_pillows_box_resize_bit_for_bit(size: tuple[int, int]) -> None:
    from spa_vl.audit.image import _thumbnail

    rng = np.random.default_rng(size[0])
    smooth = picture(7, size).convert("L")
    noise = Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), "L")
    for grey in (smooth, noise):
        want = grey.resize((32, 32), Image.Resampling.BOX)
        assert _thumbnail(grey).tobytes() == want.tobytes()


def test_fused_grey_thumbnail_is_pillows_bit_for_bit() -> None:
    """The compiled grey conversion + horizontal pass, and the vertical one where the height
    allows (``_fast_thumbnail``), against Pillow's ``convert("L")`` and BOX resize, on every
    RGB colour and on pictures of several widths and heights."""
    from spa_vl.audit.image import _arrow_words, _fast_thumbnail, _grey_of, _reduce_is_exact, _thumbnail

    every = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([every & 255, (every >> 8) & 255, every >> 16], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    assert (np.asarray(Image.fromarray(rgb, "RGB").convert("L")) == _grey_of(rgb)).all()
    rng = np.random.default_rng(0)
    sizes = [
        (512, 384),
        (384, 512),
        (96, 64),
        (640, 40),
        (160, 100),
        (1024, 50),
        (512, 512),
        (128, 96),
        (64, 1024),
    ]
    for size in sizes:
        noise = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8), "RGB")
        for im in (picture(8, size), noise):
            fast = _fast_thumbnail(_arrow_words(im), im.width, im.height)
            if fast is None:  # only where reduce rounds otherwise than the resize (_thumbnail)
                assert size[0] % 32 or not _reduce_is_exact(size[0] // 32)
                continue
            assert fast[0].tobytes() == _thumbnail(im.convert("L")).tobytes()
