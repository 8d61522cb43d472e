"""The JPEG shortcut of the image tiers: the same pixels and hashes as Pillow's decode, and
everything it does not take left to Pillow."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image
from test_image import encode, picture

from spa_vl.audit import image as image_mod
from spa_vl.audit.image import hash_image
from spa_vl.audit.jpeg import decode_rgbx, jpeg_size


def pillow_words(data: bytes) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    out = np.full((*rgb.shape[:2], 4), 255, np.uint8)
    out[..., :3] = rgb
    return out.reshape(-1).view("<u4")


def noisy(size: tuple[int, int], seed: int) -> Image.Image:
    """Full-band noise over a picture: every DCT coefficient and chroma sample matters."""
    rng = np.random.default_rng(seed)
    base = picture(seed, size) if min(size) >= 64 else Image.linear_gradient("L").convert("RGB").resize(size)
    px = np.asarray(base).astype(np.int16) + rng.integers(-40, 40, (size[1], size[0], 3))
    return Image.fromarray(np.clip(px, 0, 255).astype(np.uint8), "RGB")


SAVES = {
    "4:4:4": {"subsampling": 0, "quality": 95},
    "4:2:2": {"subsampling": 1, "quality": 75},
    "4:2:0": {"subsampling": 2, "quality": 50},
    "progressive": {"progressive": True, "quality": 80},
    "optimized": {"optimize": True, "quality": 30},
    "restart markers": {"restart_marker_blocks": 3, "quality": 85},
}


@pytest.mark.parametrize("size", [(512, 384), (17, 33), (333, 250), (64, 2000)])
@pytest.mark.parametrize("save", list(SAVES), ids=list(SAVES))
def test_pixels_are_pillows_bit_for_bit(size: tuple[int, int], save: str) -> None:
    data = encode(noisy(size, sum(size)), "JPEG", **SAVES[save])
    if save == "restart markers" and b"\xff\xdd" not in data:
        pytest.skip("this Pillow writes no restart markers (the option came in Pillow 11.1)")
    assert jpeg_size(data) == size
    got = decode_rgbx(data, size)
    assert got is not None
    assert np.array_equal(got, pillow_words(data))


def test_what_it_does_not_take_is_left_to_pillow() -> None:
    pic = picture(3)
    assert jpeg_size(encode(pic.convert("L"), "JPEG")) is None  # grey
    assert jpeg_size(encode(pic.convert("CMYK"), "JPEG")) is None
    assert jpeg_size(encode(pic, "PNG")) is None
    assert jpeg_size(b"\xff\xd8\xff" + b"\x00" * 50) is None  # a JPEG start, no header
    data = encode(noisy((512, 512), 1), "JPEG", quality=90)
    cut = data[: len(data) // 2]  # the header intact, the scan cut short
    assert jpeg_size(cut) == (512, 512)
    assert decode_rgbx(cut, (512, 512)) is None  # libjpeg's warning is an error here
    with pytest.raises(OSError, match="truncated"):
        hash_image(cut)  # Pillow's own error, as without the shortcut


@pytest.mark.parametrize("size", [(512, 512), (512, 288), (256, 300), (500, 500)])
def test_hashes_are_those_of_the_pillow_path(size: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    datas = [encode(noisy(size, s), "JPEG", quality=q) for s, q in ((1, 90), (2, 50), (3, 75))]
    datas.append(encode(picture(4, size), "JPEG", quality=85, subsampling=0))
    fast = [hash_image(d) for d in datas]
    calls: list[bytes] = []
    monkeypatch.setattr(image_mod, "decode_rgbx", lambda d, s: calls.append(d))  # now None: Pillow
    assert [hash_image(d) for d in datas] == fast
    # the shortcut was taken where the width allows the fused thumbnail, and only there
    assert len(calls) == (len(datas) if size[0] in (512, 256) else 0)


def test_a_decompression_bomb_is_left_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past Pillow's pixel limit the shortcut steps aside: Pillow's own check warns or refuses
    (the header alone could ask for gigabytes of pixels)."""
    data = encode(noisy((512, 512), 2), "JPEG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 512 * 512 // 4)  # the file is 4x the limit
    assert jpeg_size(data) is None
    with pytest.raises(Image.DecompressionBombError):
        hash_image(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # no limit set: nothing to defer to
    assert jpeg_size(data) == (512, 512)


def test_threads_do_not_share_pixels() -> None:
    """Each thread decodes into a buffer of its own: hashes made side by side in threads are
    the ones made one after another."""
    datas = [encode(noisy((512, 384), s), "JPEG", quality=80) for s in range(8)]
    want = [hash_image(d) for d in datas]
    got: dict[int, list] = {}

    def work(k: int) -> None:
        got[k] = [hash_image(d) for d in datas[k:] + datas[:k] for _ in range(3)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert got[k] == [h for h in want[k:] + want[:k] for _ in range(3)]


def test_large_images_get_an_array_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from spa_vl.audit import jpeg

    monkeypatch.setattr(jpeg, "_REUSE", 100 * 100)
    small = encode(noisy((64, 64), 1), "JPEG")
    big = encode(noisy((128, 128), 2), "JPEG")
    a = decode_rgbx(small, (64, 64))
    b = decode_rgbx(big, (128, 128))
    assert np.array_equal(a, pillow_words(small))  # the big one did not overwrite it
    assert np.array_equal(b, pillow_words(big))
