"""Release rows to TRL's conversational preference format.

A row becomes ``{"prompt": [user turn: image part + question], "chosen": [assistant turn],
"rejected": [assistant turn]}`` beside its ``image`` column, which TRL's vision collator reads.
Pairs longer than ``max_length`` tokens (image tokens included) are dropped and counted, never
truncated: TRL truncates from the end, which would cut answers mid-way or, for a long prompt,
image tokens, and the pair would train on something the data never said.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from glob import glob
from pathlib import Path
from typing import Any

import datasets
from PIL import Image

_PART = {"type": datasets.Value("string"), "text": datasets.Value("string")}
_MESSAGES = [{"role": datasets.Value("string"), "content": [_PART]}]
PREFERENCE_FEATURES = datasets.Features(
    {
        "prompt": _MESSAGES,
        "chosen": _MESSAGES,
        "rejected": _MESSAGES,
        "n_tokens": datasets.Value("int32"),
    }
)


def split_files(data_dir: str | Path, config: str, split: str) -> list[str]:
    """Parquet shards of one config and split of a release folder (sorted)."""
    pattern = f"{data_dir}/data/{config}/{split}-*.parquet"
    files = sorted(glob(pattern))
    if not files:
        raise FileNotFoundError(f"{data_dir}: no parquet shard matches data/{config}/{split}-*.parquet")
    return files


def load_split(data_dir: str | Path, config: str = "default", split: str = "train") -> datasets.Dataset:
    """One split of a release folder, read with plain ``datasets`` (typed features, PIL images)."""
    return datasets.load_dataset("parquet", data_files=split_files(data_dir, config, split), split="train")


def release_info(data_dir: str | Path) -> dict[str, Any]:
    """Version and source fingerprint of a release, from its MANIFEST.json ({} without one)."""
    path = Path(data_dir) / "MANIFEST.json"
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    source = manifest.get("source") or {}
    return {
        "version": manifest.get("version"),
        "package_version": manifest.get("package_version"),
        "source_format": source.get("format"),
        "source_fingerprint": source.get("fingerprint"),
        "counts": manifest.get("counts"),
    }


def prompt_messages(question: str) -> list[dict[str, Any]]:
    """The user turn: one image part, then the question (LLaVA puts the image first)."""
    return [
        {
            "role": "user",
            "content": [{"type": "image", "text": None}, {"type": "text", "text": question}],
        }
    ]


def answer_messages(answer: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": [{"type": "text", "text": answer}]}]


def to_preference(row: dict[str, Any]) -> dict[str, Any] | None:
    """A row as a conversational preference example; None when it has no chosen/rejected pair."""
    if not row.get("chosen") or not row.get("rejected"):
        return None
    return {
        "prompt": prompt_messages(row["question"]),
        "chosen": answer_messages(row["chosen"]),
        "rejected": answer_messages(row["rejected"]),
    }


@dataclass(frozen=True)
class LengthReport:
    """What the mapping kept and dropped, for the log and the run card."""

    rows: int
    kept: int
    dropped_no_pair: int
    dropped_too_long: int
    max_length: int
    image_tokens: int
    longest_pair: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.kept} of {self.rows} pairs kept; dropped {self.dropped_too_long} longer than "
            f"{self.max_length} tokens (with {self.image_tokens} image tokens) and "
            f"{self.dropped_no_pair} without a chosen/rejected pair; longest pair "
            f"{self.longest_pair} tokens"
        )


def count_tokens(examples: list[dict[str, Any]], processing_class: Any, image_tokens: int) -> list[int]:
    """Tokens each pair takes in TRL's vision collator: prompt + the longer of the two answers.

    Renders exactly as the collator does (``trl.data_utils.apply_chat_template``), tokenises
    without special tokens as it does, and counts every image placeholder as the
    ``image_tokens`` the processor expands it to.
    """
    from trl.data_utils import apply_chat_template

    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    image_token = getattr(processing_class, "image_token", "<image>")
    image_id = tokenizer.convert_tokens_to_ids(image_token)
    rendered = [apply_chat_template(ex, processing_class) for ex in examples]

    def ids(key: str) -> list[list[int]]:
        texts = [r[key] for r in rendered]
        return tokenizer(texts, add_special_tokens=False)["input_ids"]

    counts = []
    for p, c, r in zip(ids("prompt"), ids("chosen"), ids("rejected"), strict=True):
        n_images = p.count(image_id)
        counts.append(len(p) + n_images * (image_tokens - 1) + max(len(c), len(r)))
    return counts


def preference_dataset(
    rows: datasets.Dataset,
    processing_class: Any,
    max_length: int,
    image_tokens: int,
    limit: int | None = None,
) -> tuple[datasets.Dataset, LengthReport]:
    """Map a release split to TRL's format; drop (and count) pairs that do not fit ``max_length``.

    The image column is joined back untouched rather than mapped, so images are never
    re-encoded into a cache file. ``limit`` keeps the first N usable pairs.
    """

    def measure(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"prompt": [], "chosen": [], "rejected": [], "n_tokens": []}
        examples, positions = [], []
        for i, (q, c, r) in enumerate(
            zip(batch["question"], batch["chosen"], batch["rejected"], strict=True)
        ):
            example = to_preference({"question": q, "chosen": c, "rejected": r})
            for key in ("prompt", "chosen", "rejected"):
                out[key].append(example[key] if example else [])
            out["n_tokens"].append(-1)
            if example:
                examples.append(example)
                positions.append(i)
        if examples:
            for i, n in zip(positions, count_tokens(examples, processing_class, image_tokens), strict=True):
                out["n_tokens"][i] = n
        return out

    text = rows.select_columns(["question", "chosen", "rejected"])
    mapped = text.map(
        measure,
        batched=True,
        batch_size=256,
        remove_columns=text.column_names,
        features=PREFERENCE_FEATURES,
        desc="Rendering and measuring pairs",
    )
    n_tokens = mapped["n_tokens"]
    pairs = [n for n in n_tokens if n >= 0]
    kept = [i for i, n in enumerate(n_tokens) if 0 <= n <= max_length]
    if limit is not None:
        kept = kept[:limit]
    joined = datasets.concatenate_datasets([mapped, rows.select_columns(["image"])], axis=1)
    report = LengthReport(
        rows=len(n_tokens),
        kept=len(kept),
        dropped_no_pair=len(n_tokens) - len(pairs),
        dropped_too_long=sum(n > max_length for n in pairs),
        max_length=max_length,
        image_tokens=image_tokens,
        longest_pair=max(pairs, default=0),
    )
    return joined.select(kept), report


def pad_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """LLaVA-1.5's ``expand2square``: centre the image on a square of the processor's mean colour.

    The CLIP processor would otherwise centre-crop and cut off the sides of wide or tall images,
    which is where a harmful detail can sit.
    """
    image = image.convert("RGB")
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new("RGB", (side, side), fill)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square
