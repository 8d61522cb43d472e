"""Release rows to TRL's preference format (``to_trl``); long pairs dropped and counted;
square padding by transformers' image processor, and by hand where it cannot."""

from __future__ import annotations

import pytest
from PIL import Image

from spa_vl.train.data import load_split, pad_to_square, to_preference, to_trl


def test_a_pair_becomes_a_conversational_preference_example():
    row = {"question": "Q?", "chosen": "good", "rejected": "bad", "image": object()}
    example = to_preference(row)
    assert example == {
        "prompt": [
            {
                "role": "user",
                "content": [{"type": "image", "text": None}, {"type": "text", "text": "Q?"}],
            }
        ],
        "chosen": [{"role": "assistant", "content": [{"type": "text", "text": "good"}]}],
        "rejected": [{"role": "assistant", "content": [{"type": "text", "text": "bad"}]}],
    }


@pytest.mark.parametrize("chosen, rejected", [(None, None), ("good", None), ("", "bad")])
def test_a_row_without_a_pair_gives_none(chosen, rejected):
    assert to_preference({"question": "Q?", "chosen": chosen, "rejected": rejected}) is None


def test_pad_to_square_centres_the_image_on_the_fill_colour():
    wide = Image.new("RGB", (40, 20), (10, 20, 30))
    wide.putpixel((0, 0), (255, 255, 255))
    square = pad_to_square(wide, (1, 2, 3))
    assert square.size == (40, 40)
    assert square.getpixel((0, 0)) == (1, 2, 3)  # band above
    assert square.getpixel((39, 39)) == (1, 2, 3)  # band below
    assert square.getpixel((0, 10)) == (255, 255, 255)  # the original corner, moved down 10
    assert square.getpixel((20, 20)) == (10, 20, 30)
    tall = pad_to_square(Image.new("L", (20, 50)), (1, 2, 3))
    assert tall.size == (50, 50) and tall.mode == "RGB"
    assert tall.getpixel((0, 0)) == (1, 2, 3) and tall.getpixel((15, 0)) == (0, 0, 0)


def test_a_release_split_loads_with_typed_features(release):
    rows = load_split(release, "default", "test")
    assert rows.features["eval_set"].names == ["harm", "help"]
    assert len(rows.features["subcategory"].names) == 53
    assert isinstance(rows[0]["image"], Image.Image)
    assert len(load_split(release, "default", "train[:2]")) == 2
    with pytest.raises(ValueError, match="validation"):
        load_split(release, "default", "validation")


def test_to_trl_gives_trls_conversational_columns_with_the_image_in_a_list(release):
    rows = load_split(release, "default", "train")
    pairs = to_trl(rows)
    assert pairs.column_names == ["prompt", "chosen", "rejected", "images"]
    assert len(pairs) == len(rows)
    for pair, row in zip(pairs, rows, strict=True):
        assert {k: pair[k] for k in ("prompt", "chosen", "rejected")} == to_preference(row)
        assert len(pair["images"]) == 1
        assert pair["images"][0].tobytes() == row["image"].tobytes()
    # A shuffled view maps its own rows, in its own order.
    shuffled = rows.shuffle(seed=1).select(range(3))
    assert [p["prompt"] for p in to_trl(shuffled)] == [to_preference(r)["prompt"] for r in shuffled]


def test_to_trl_shares_the_image_bytes_instead_of_copying_them(release):
    rows = load_split(release, "default", "train")
    images = to_trl(rows).data.column("images").chunks[0].values

    def data_buffer(struct):
        return struct.field("bytes").buffers()[2]  # validity, offsets, data

    assert data_buffer(images).address == data_buffer(rows.data.column("image").chunks[0]).address


def test_to_trl_leaves_out_rows_without_a_pair(release):
    assert len(to_trl(load_split(release, "default", "test"))) == 0


def test_to_trl_wants_one_split(release):
    import datasets

    with pytest.raises(TypeError, match="split='train'"):
        to_trl(datasets.load_dataset(str(release), "default"))


def test_to_trl_imports_no_torch(release):
    import subprocess
    import sys

    code = (
        "import sys, spa_vl.train as t, datasets\n"
        f"ds = t.to_trl(datasets.load_dataset({str(release)!r}, 'default', split='train'))\n"
        "print(len(ds), [m for m in ('torch', 'transformers', 'trl') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "[]"


def _collator_lengths(rows, processor) -> list[int]:
    """Real (unpadded) length of each pair's longer sequence in the training batch."""
    from spa_vl.train.dpo import preference_collator

    collator = preference_collator(processor)
    lengths = []
    for row in rows:
        example = {**to_preference(row), "images": [row["image"]]}
        batch = collator([example])
        lengths.append(int(batch["attention_mask"].sum(dim=1).max()))
    return lengths


@pytest.mark.train
def test_long_pairs_are_dropped_and_counted_not_truncated(release, tiny_llava):
    pytest.importorskip("trl")
    from spa_vl.train.data import preference_dataset
    from spa_vl.train.dpo import image_tokens, load_processor

    processor = load_processor(str(tiny_llava))
    rows = load_split(release, "default", "train")
    lengths = _collator_lengths(rows, processor)
    longest = max(range(len(rows)), key=lengths.__getitem__)
    limit = sorted(lengths)[-2]  # every pair fits but the longest
    assert lengths[longest] > limit

    kept, report = preference_dataset(rows, processor, limit, image_tokens(processor))
    assert (report.rows, report.kept, report.dropped_too_long, report.dropped_no_pair) == (
        len(rows),
        len(rows) - 1,
        1,
        0,
    )
    assert report.longest_pair == lengths[longest]
    dropped_question = rows[longest]["question"]
    assert dropped_question not in [ex["prompt"][0]["content"][1]["text"] for ex in kept]
    # What is kept goes through the collator at this limit untouched: same lengths as without one.
    assert sorted(ex["n_tokens"] for ex in kept) == sorted(n for n in lengths if n <= limit)
    assert all(isinstance(ex["images"][0], Image.Image) for ex in kept)


@pytest.mark.train
def test_rows_without_pairs_are_counted_apart(release, tiny_llava):
    pytest.importorskip("trl")
    from spa_vl.train.data import preference_dataset
    from spa_vl.train.dpo import image_tokens, load_processor

    processor = load_processor(str(tiny_llava))
    test_rows = load_split(release, "default", "test")
    kept, report = preference_dataset(test_rows, processor, 2048, image_tokens(processor))
    assert len(kept) == 0
    assert (report.kept, report.dropped_no_pair, report.dropped_too_long) == (0, len(test_rows), 0)


@pytest.mark.train
def test_the_image_processor_pads_to_square_as_llava_did(tiny_llava):
    """A checkpoint's CLIP processor (which centre-crops) becomes transformers' LLaVA one with
    ``do_pad``: the same pixels as padding by hand (LLaVA's expand2square) then CLIP."""
    pytest.importorskip("trl")
    import numpy as np
    from transformers import AutoProcessor

    from spa_vl.train.dpo import image_fill, load_processor, pads_to_square

    clip = AutoProcessor.from_pretrained(str(tiny_llava))
    assert not pads_to_square(clip)
    processor = load_processor(str(tiny_llava))
    assert pads_to_square(processor)
    rng = np.random.default_rng(0)
    for size in [(50, 20), (20, 51), (30, 30)]:
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        by_hand = clip.image_processor(pad_to_square(image, image_fill(clip)), return_tensors="np")
        padded = processor.image_processor(image, return_tensors="np")
        assert np.array_equal(by_hand["pixel_values"], padded["pixel_values"])


@pytest.mark.train
def test_a_processor_that_cannot_pad_is_padded_by_hand_to_the_same_batch(tiny_llava):
    pytest.importorskip("trl")
    import torch
    from transformers import AutoProcessor

    from spa_vl.train.dpo import image_fill, load_processor, preference_collator
    from spa_vl.train.template import use_llava_template

    clip = use_llava_template(AutoProcessor.from_pretrained(str(tiny_llava)))  # centre-crops
    by_hand = preference_collator(clip)
    assert by_hand.pad_fill == image_fill(clip)
    by_processor = preference_collator(load_processor(str(tiny_llava)))
    assert by_processor.pad_fill is None

    def example():
        image = Image.new("RGB", (50, 20), (10, 200, 30))
        image.putpixel((0, 0), (255, 255, 255))
        row = {"question": "Q?", "chosen": "good", "rejected": "bad"}
        return {**to_preference(row), "images": [image]}

    a, b = by_hand([example()]), by_processor([example()])
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["pixel_values"], b["pixel_values"])
