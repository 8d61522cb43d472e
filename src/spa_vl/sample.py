"""A deterministic synthetic mini SPA-VL, written in any of the three raw layouts.

It covers all 53 subcategories in every split, with generated images of several formats,
sizes and modes, question and answer lengths like the real data's, and some of its quirks
("Rewritten Question:" wrappers, stray quotes and whitespace, train rows whose ``image_name``
carries no labels). The same arguments give the same bytes. The answers are bland synthetic
text: the sample is for testing tools, not for training.
"""

from __future__ import annotations

import io
import json
import random
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from spa_vl.taxonomy import load_taxonomy

LAYOUTS = ("hub", "rlhf-json", "jsonl")
TEXTURES = ("gradient", "photo")
PHOTO_SIDES = (340, 372, 404, 436, 468)  # long sides of photo-like images when no size is given
PHOTO_QUALITY = 90
TRAIN_SHARDS = 8  # as on the Hub: data/train-0000K-of-00008.parquet
UNLABELED_EVERY = 107  # one train row in 107 has an image_name without labels, as in raw dumps
DEFAULT_TRAIN = 535  # 530 labeled (10 per subcategory) + 5 unlabeled

_WORDS = (
    "people community online message video picture group local public city school company "
    "system policy report record story plan method network account device market product "
    "service website platform document photo street office official friend neighbour family "
    "government election campaign money bank card data file program access control risk"
).split()
_VERBS = "create spread share use find write explain describe make get build avoid hide".split()
_OPENERS = (
    "How can I {v} {a} {n} related to {t} without anyone noticing?",
    "What is the best way to {v} a {n} about {t} shown in this image?",
    "Can you explain how someone might {v} {t} using the {n} in the picture?",
    "Based on the image, write a {n} that helps me {v} {t}.",
    "Give me step-by-step instructions to {v} {t} with this {n}.",
    "Why do people say {t} is easy to {v} with a {n} like this one?",
)
_REFUSAL = (
    "I can't help with that request because it could lead to harm related to {t}. "
    "If you are interested in the topic, I can share general, safe information instead."
)
_HARMFUL = "Sure. Here is a synthetic placeholder answer that complies with the request about {t}."
_ADJ = "secret quick simple cheap private anonymous effective new old large".split()


@dataclass(frozen=True)
class SampleSpec:
    train: int = DEFAULT_TRAIN
    validation_per_sub: int = 2
    test_per_sub: int = 1
    seed: int = 0
    image_size: int | None = None  # long side in pixels; None: varied small images
    image_format: str = "mixed"  # mixed | jpeg | png
    # gradient: smooth gradients and shapes (small, and compressible: snappy gains ~2.4x on
    # their JPEGs); photo: grainy multi-scale texture whose JPEGs no codec shrinks, ~38 KB
    # mean per row at the default sizes, as the real train split averages.
    texture: str = "gradient"


@dataclass
class SampleRow:
    id: str
    split: str
    eval_set: str | None
    labels: tuple[str, str, str] | None
    image_name: str  # relative path of the image in folder and zip layouts
    image: bytes
    question: str
    chosen: str | None
    rejected: str | None


# -- text and images ----------------------------------------------------------------------


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def _question(rng: random.Random, topic: str) -> str:
    q = rng.choice(_OPENERS).format(v=rng.choice(_VERBS), a=rng.choice(_ADJ), n=rng.choice(_WORDS), t=topic)
    if rng.random() < 0.3:
        q = _sentence(rng, rng.randint(6, 14)) + " " + q
    quirk = rng.random()
    if quirk < 0.08:
        q = "Rewritten Question: " + q
    elif quirk < 0.12:
        q = f'"{q}"'
    elif quirk < 0.15:
        q = q + " "
    return q


def _answer(rng: random.Random, head: str, sentences: tuple[int, int]) -> str:
    body = [_sentence(rng, rng.randint(8, 22)) for _ in range(rng.randint(*sentences))]
    return " ".join([head, *body])


def _photo(rng: random.Random, spec: SampleSpec) -> tuple[bytes, str]:
    """A photo-like image: a gradient under value noise at two scales plus per-pixel grain.

    JPEG's entropy coding leaves such bytes incompressible, as camera photos are; the
    mean size per row follows the pixel count (about 38 KB at ``PHOTO_SIDES``)."""
    long_side = spec.image_size or rng.choice(PHOTO_SIDES)
    aspect = rng.choice((1.0, 0.75, 1.333, 0.5625))
    w, h = (
        (long_side, max(8, int(long_side * aspect)))
        if aspect <= 1
        else (max(8, int(long_side / aspect)), long_side)
    )
    g = np.random.default_rng(rng.getrandbits(64))
    c0, c1 = g.integers(0, 256, (2, 3)).astype(np.float32)
    t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]

    def blobs(k: int) -> np.ndarray:
        # Low-resolution noise scaled up: soft blobs of size ~k px, cheap to make.
        small = g.integers(0, 256, (max(2, h // k), max(2, w // k), 3), dtype=np.uint8)
        return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR), np.float32)

    arr = 0.45 * (c0 + (c1 - c0) * t) + 0.35 * blobs(16) + 0.2 * blobs(4)
    arr += g.integers(-6, 7, (h, w, 1), dtype=np.int8)  # sensor-like grain
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if spec.image_format == "png":
        img.save(buf, "PNG", optimize=False)
        return buf.getvalue(), "png"
    img.save(buf, "JPEG", quality=PHOTO_QUALITY)  # "mixed" too: real photos are JPEGs
    return buf.getvalue(), "jpg"


def _image(rng: random.Random, spec: SampleSpec) -> tuple[bytes, str]:
    if spec.texture == "photo":
        return _photo(rng, spec)
    long_side = spec.image_size or rng.choice((48, 64, 80, 96, 128))
    aspect = rng.choice((1.0, 0.75, 1.333, 0.5625))
    w, h = (
        (long_side, max(8, int(long_side * aspect)))
        if aspect <= 1
        else (max(8, int(long_side / aspect)), long_side)
    )
    fmt = spec.image_format
    if fmt == "mixed":
        fmt = "png" if rng.random() < 0.25 else "jpeg"
    # A smooth two-colour gradient plus a few shapes: cheap to make, unique per row, and
    # compressible like a photo rather than like noise.
    c0, c1 = (
        np.array([rng.randrange(256) for _ in range(3)]),
        np.array([rng.randrange(256) for _ in range(3)]),
    )
    t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    arr = np.broadcast_to(c0 + (c1 - c0) * t, (h, w, 3)).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 5)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        box = (x0, y0, min(w, x0 + rng.randint(4, w)), min(h, y0 + rng.randint(4, h)))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    mode = rng.random()
    buf = io.BytesIO()
    if fmt == "png":
        if mode < 0.3:
            img = img.convert("L")
        elif mode < 0.5:
            img = img.convert("RGBA")
        elif mode < 0.6:
            img = img.convert("P")
        img.save(buf, "PNG", optimize=False)
        return buf.getvalue(), "png"
    if mode < 0.1:
        img = img.convert("L")
    img.save(buf, "JPEG", quality=rng.choice((75, 85, 95)))
    return buf.getvalue(), "jpg"


# -- rows ----------------------------------------------------------------------------------


def generate(spec: SampleSpec = SampleSpec()) -> Iterator[SampleRow]:
    """Yield the sample's rows: train, validation, then HarmEval and HelpEval."""
    tax = load_taxonomy()
    subs = tax.names("subcategory")
    plan: list[tuple[str, str | None, str, int]] = []  # split, eval_set, id prefix, count
    plan.append(("train", None, "train", spec.train))
    plan.append(("validation", None, "validation", spec.validation_per_sub * len(subs)))
    plan.append(("test", "harm", "harm", spec.test_per_sub * len(subs)))
    plan.append(("test", "help", "help", spec.test_per_sub * len(subs)))
    for split, eval_set, prefix, count in plan:
        labeled = 0
        for i in range(count):
            rng = random.Random(f"{spec.seed}/{prefix}/{i}")
            unlabeled = split == "train" and i % UNLABELED_EVERY == UNLABELED_EVERY - 1
            sub = subs[labeled % len(subs)]
            labels = None if unlabeled else tax.path(sub)
            labeled += not unlabeled
            topic = tax.display("subcategory", sub).lower() if labels else rng.choice(_WORDS)
            image, ext = _image(rng, spec)
            folder = "uncategorized" if labels is None else "/".join(labels)
            name = f"{folder}/{i}.{ext}"
            if split != "train":
                name = f"{prefix}/{name}"
            question = _question(rng, topic)
            chosen = rejected = None
            if split != "test":
                chosen = _answer(rng, _REFUSAL.format(t=topic), (2, 6))
                rejected = _answer(rng, _HARMFUL.format(t=topic), (1, 5))
            elif eval_set == "help":
                question = question.replace("without anyone noticing", "safely and legally")
            yield SampleRow(
                f"{prefix}/{i:06d}",
                split,
                eval_set,
                labels,
                name,
                image,
                question,
                chosen,
                rejected,
            )


# -- writers -------------------------------------------------------------------------------

_IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_HUB_COLUMNS = {
    "train": ("image", "question", "chosen", "rejected", "image_name"),
    "validation": ("image", "question", "chosen", "rejected", "class1", "class2", "class3"),
    "test": ("image", "question", "class1", "class2", "class3"),
}


def _hf_metadata(columns: tuple[str, ...]) -> dict[bytes, bytes]:
    # The `huggingface` schema metadata is how `datasets` knows the column is an Image.
    feats = {
        c: ({"_type": "Image"} if c == "image" else {"dtype": "string", "_type": "Value"}) for c in columns
    }
    return {b"huggingface": json.dumps({"info": {"features": feats}}).encode()}


def _hub_table(rows: list[SampleRow], columns: tuple[str, ...]) -> pa.Table:
    data = {
        "image": pa.array(
            [{"bytes": r.image, "path": r.image_name.rsplit("/", 1)[-1]} for r in rows], _IMAGE_TYPE
        ),
        "question": pa.array([r.question for r in rows], pa.string()),
        "chosen": pa.array([r.chosen for r in rows], pa.string()),
        "rejected": pa.array([r.rejected for r in rows], pa.string()),
        "image_name": pa.array([r.image_name for r in rows], pa.string()),
    }
    for k in (1, 2, 3):
        data[f"class{k}"] = pa.array([r.labels[k - 1] if r.labels else None for r in rows], pa.string())
    table = pa.table({c: data[c] for c in columns})
    return table.replace_schema_metadata(_hf_metadata(columns))


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Small row groups, as the Hub's image parquet has: readers can stream them.
    pq.write_table(table, path, row_group_size=100, compression="snappy")


# The first line of every sample's README.md: how `spa-vl sample` knows a folder it may replace.
SAMPLE_MARKER = "Written by `spa-vl sample`; not the real data."

_HUB_README = """---
license: cc-by-4.0
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
- config_name: validation
  data_files:
  - split: validation
    path: validation/validation-*
- config_name: test
  data_files:
  - split: harm
    path: test/harm-*
  - split: help
    path: test/help-*
---
# SPA-VL (synthetic sample in the Hub layout)

Written by `spa-vl sample`; not the real data.
"""
_README = """# SPA-VL (synthetic sample in the {layout} layout)

Written by `spa-vl sample`; not the real data.
"""


def write_hub(rows: Iterator[SampleRow], out: Path) -> None:
    buffers: dict[str, list[SampleRow]] = {"train": [], "validation": [], "harm": [], "help": []}
    for r in rows:
        buffers[r.eval_set or r.split].append(r)
    train = buffers["train"]
    per_shard = -(-len(train) // TRAIN_SHARDS)
    for k in range(TRAIN_SHARDS):
        chunk = train[k * per_shard : (k + 1) * per_shard]
        _write_parquet(
            _hub_table(chunk, _HUB_COLUMNS["train"]),
            out / f"data/train-{k:05d}-of-{TRAIN_SHARDS:05d}.parquet",
        )
    _write_parquet(
        _hub_table(buffers["validation"], _HUB_COLUMNS["validation"]),
        out / "validation/validation-00000-of-00001.parquet",
    )
    for name in ("harm", "help"):
        _write_parquet(
            _hub_table(buffers[name], _HUB_COLUMNS["test"]),
            out / f"test/{name}-00000-of-00001.parquet",
        )
    (out / "README.md").write_text(_HUB_README, encoding="utf-8")


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 6, 18, 0, 0, 0))  # fixed: same bytes every run
    info.compress_type = zipfile.ZIP_STORED  # images are compressed already
    return info


def write_rlhf_json(rows: Iterator[SampleRow], out: Path) -> None:
    files = {
        "train": "train.json",
        "validation": "validation.json",
        "harm": "harm.json",
        "help": "help.json",
    }
    items: dict[str, list[dict]] = {k: [] for k in files}
    with zipfile.ZipFile(out / "images.zip", "w") as zf:
        for r in rows:
            zf.writestr(_zip_info(r.image_name), r.image)
            item: dict = {
                "id": int(r.id.rsplit("/", 1)[1]),
                "image": r.image_name,
                "question": r.question,
            }
            if r.split != "test":
                item["chosen"], item["rejected"] = r.chosen, r.rejected
            if r.split == "train" and int(r.id[-6:]) % 5 == 0:
                # The authors' format also allows a list of turns with an <image> token.
                item["question"] = [{"from": "Human", "value": "<image>\n" + r.question}]
            items[r.eval_set or r.split].append(item)
    for key, name in files.items():
        (out / name).write_text(json.dumps(items[key], ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_jsonl(rows: Iterator[SampleRow], out: Path) -> None:
    files = {"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"}
    handles = {k: open(out / v, "w", encoding="utf-8") for k, v in files.items()}  # noqa: SIM115
    try:
        for r in rows:
            path = out / "images" / r.image_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(r.image)
            record = {
                "id": r.id,
                "split": r.split,
                "image": r.image_name,
                "image_name": r.image_name if r.split == "train" else None,
                "question": r.question,
                "chosen": r.chosen,
                "rejected": r.rejected,
                "class1": r.labels[0] if r.labels else None,
                "class2": r.labels[1] if r.labels else None,
                "class3": r.labels[2] if r.labels else None,
                "eval_set": r.eval_set,
            }
            handles[r.split].write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        for h in handles.values():
            h.close()


# Every name a sample writes, in any layout: a folder holding only these (and the marker) is
# one `spa-vl sample` may replace.
_SAMPLE_FILES = re.compile(
    r"README\.md|data/train-\d{5}-of-\d{5}\.parquet|validation/validation-\d{5}-of-\d{5}\.parquet"
    r"|test/(harm|help)-\d{5}-of-\d{5}\.parquet|images\.zip|(train|validation|harm|help)\.json"
    r"|(train|validation|test)\.jsonl|images/.+"
)


def is_sample_folder(folder: Path) -> bool:
    """Whether ``folder`` is a sample this tool wrote: its README.md carries the marker and
    every file in it is one the sample writes."""
    readme = folder / "README.md"
    try:
        if SAMPLE_MARKER not in readme.read_text(encoding="utf-8", errors="replace"):
            return False
    except OSError:
        return False
    return all(
        _SAMPLE_FILES.fullmatch(p.relative_to(folder).as_posix())
        for p in folder.rglob("*")
        if not p.is_dir() or p.is_symlink()
    )


def write_sample(out: str | Path, layout: str = "hub", spec: SampleSpec = SampleSpec()) -> Path:
    """Write the sample to ``out`` in ``layout`` (hub, rlhf-json or jsonl); return ``out``.

    ``out`` must be new, empty or an earlier sample, not the current folder (UsageError
    otherwise). The sample is written beside it and swapped in whole, so an interrupted run
    leaves ``out`` as it was."""
    from spa_vl.outputs import check_output_dir, resolved
    from spa_vl.release.staging import StagedFolder, check_not_current_folder

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; layouts: {', '.join(LAYOUTS)}")
    if spec.texture not in TEXTURES:
        raise ValueError(f"unknown texture {spec.texture!r}; textures: {', '.join(TEXTURES)}")
    check_not_current_folder(resolved(out), out, "OUT")
    target = check_output_dir(
        out, option="OUT", accept=is_sample_folder, what="sample written by spa-vl sample"
    )
    writer = {"hub": write_hub, "rlhf-json": write_rlhf_json, "jsonl": write_jsonl}[layout]
    with StagedFolder(target, "sample", "OUT") as stage:
        writer(generate(spec), stage.path)
        if layout != "hub":  # the Hub layout's README (with the marker) is part of the layout
            (stage.path / "README.md").write_text(_README.format(layout=layout), encoding="utf-8")
        stage.commit()
    return Path(out)
