"""The synthetic mini SPA-VL: coverage, determinism, scaling, images and quirks."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from spa_vl.sample import SampleSpec, generate, write_sample

HUB_FILES = [
    "README.md",
    "data/train-00000-of-00008.parquet",
    "data/train-00001-of-00008.parquet",
    "data/train-00002-of-00008.parquet",
    "data/train-00003-of-00008.parquet",
    "data/train-00004-of-00008.parquet",
    "data/train-00005-of-00008.parquet",
    "data/train-00006-of-00008.parquet",
    "data/train-00007-of-00008.parquet",
    "test/harm-00000-of-00001.parquet",
    "test/help-00000-of-00001.parquet",
    "validation/validation-00000-of-00001.parquet",
]


@pytest.fixture(scope="module")
def rows():
    return list(generate(SampleSpec()))


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_default_counts(rows) -> None:
    counts = Counter(r.eval_set or r.split for r in rows)
    assert counts == {"train": 535, "validation": 106, "harm": 53, "help": 53}


def test_every_subcategory_in_every_split(rows) -> None:
    for part in ("train", "validation", "harm", "help"):
        subs = Counter(r.labels[2] for r in rows if (r.eval_set or r.split) == part and r.labels)
        assert len(subs) == 53, part
        assert min(subs.values()) == {"train": 10, "validation": 2, "harm": 1, "help": 1}[part]


def test_test_rows_have_no_answers_and_others_differ(rows) -> None:
    for r in rows:
        if r.split == "test":
            assert r.chosen is None and r.rejected is None and r.eval_set in ("harm", "help")
        else:
            assert r.chosen and r.rejected and r.chosen != r.rejected and r.eval_set is None


def test_images_vary_in_format_size_and_mode(rows) -> None:
    formats, sizes, modes = Counter(), set(), Counter()
    for r in rows[:300]:
        img = Image.open(io.BytesIO(r.image))
        formats[img.format] += 1
        sizes.add(img.size)
        modes[img.mode] += 1
    assert set(formats) == {"JPEG", "PNG"}
    assert len(sizes) >= 10
    assert {"RGB", "L"} <= set(modes) and len(modes) >= 3


def test_real_data_quirks_are_present(rows) -> None:
    questions = [r.question for r in rows]
    assert any(q.startswith("Rewritten Question: ") for q in questions)
    assert any(q.startswith('"') and q.endswith('"') for q in questions)
    assert any(q != q.strip() for q in questions)
    assert sum(r.labels is None for r in rows) == 5  # train rows without labels
    lengths = sorted(len(r.chosen) for r in rows if r.chosen)
    assert lengths[len(lengths) // 2] > 200  # answers are paragraphs, not words


@pytest.mark.parametrize("layout", ["hub", "rlhf-json", "jsonl"])
def test_same_seed_same_bytes(tmp_path: Path, sample_dirs, layout: str) -> None:
    again = write_sample(tmp_path / "again", layout, SampleSpec())
    assert _digest(again) == _digest(sample_dirs[layout])


def test_another_seed_other_bytes(tmp_path: Path) -> None:
    spec = SampleSpec(train=20, validation_per_sub=0, test_per_sub=0)
    a = write_sample(tmp_path / "a", "jsonl", spec)
    b = write_sample(
        tmp_path / "b", "jsonl", SampleSpec(train=20, seed=1, validation_per_sub=0, test_per_sub=0)
    )
    assert (a / "train.jsonl").read_bytes() != (b / "train.jsonl").read_bytes()


def test_hub_layout_files_and_columns(sample_dirs) -> None:
    hub = sample_dirs["hub"]
    assert sorted(_digest(hub)) == HUB_FILES
    schema = pq.read_schema(hub / "validation/validation-00000-of-00001.parquet")
    assert schema.names == ["image", "question", "chosen", "rejected", "class1", "class2", "class3"]
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert b"huggingface" in schema.metadata
    assert pq.read_schema(hub / "test/harm-00000-of-00001.parquet").names == [
        "image",
        "question",
        "class1",
        "class2",
        "class3",
    ]
    rows_per_shard = [
        pq.ParquetFile(hub / f"data/train-0000{k}-of-00008.parquet").metadata.num_rows for k in range(8)
    ]
    assert rows_per_shard == [67, 67, 67, 67, 67, 67, 67, 66]


def test_scaling_and_image_options(tmp_path: Path) -> None:
    spec = SampleSpec(train=1000, validation_per_sub=0, test_per_sub=0, image_size=64, image_format="png")
    out = write_sample(tmp_path / "big", "hub", spec)
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in out.glob("data/train-*.parquet"))
    assert total == 1000
    first = pq.read_table(out / "data/train-00000-of-00008.parquet").column("image")[0].as_py()
    img = Image.open(io.BytesIO(first["bytes"]))
    assert img.format == "PNG" and max(img.size) == 64


def test_unknown_layout() -> None:
    with pytest.raises(ValueError, match="unknown layout 'csv'; layouts: hub, rlhf-json, jsonl"):
        write_sample("/nonexistent", "csv")


def test_photo_texture_is_incompressible_and_sized_like_the_real_data() -> None:
    import pyarrow as pa

    spec = SampleSpec(train=120, validation_per_sub=0, test_per_sub=0, texture="photo")
    images = [r.image for r in generate(spec)]
    blob = b"".join(images)
    assert 30_000 < len(blob) / len(images) < 47_000  # the real train split: ~38 KB per row
    assert len(pa.compress(blob, codec="snappy", asbytes=True)) > 0.98 * len(blob)
    assert {Image.open(io.BytesIO(b)).format for b in images} == {"JPEG"}
    assert [r.image for r in generate(spec)][:5] == images[:5]  # deterministic
    assert images[:5] != [r.image for r in generate(SampleSpec(train=5, texture="photo", seed=1))][:5]


def test_photo_texture_from_the_command_line(tmp_path: Path) -> None:
    from spa_vl.cli import main

    out = tmp_path / "photo"
    argv = ["sample", str(out), "--train", "8", "--texture", "photo", "--image-size", "64", "--quiet"]
    assert main(argv) == 0
    first = pq.read_table(out / "data/train-00000-of-00008.parquet").column("image")[0].as_py()
    img = Image.open(io.BytesIO(first["bytes"]))
    assert img.format == "JPEG" and max(img.size) == 64
    with pytest.raises(ValueError, match="unknown texture 'noise'"):
        write_sample(tmp_path / "x", "hub", SampleSpec(train=1, texture="noise"))
