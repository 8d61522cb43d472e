"""Release rows to TRL's conversational preference format.

``to_trl`` turns a release split into TRL's columns: ``prompt`` (the user turn: image part +
question), ``chosen`` and ``rejected`` (one assistant turn each) and ``images`` (a list holding
the row's one image), without copying the image bytes. ``preference_dataset`` adds what the
reference script needs: pairs longer than ``max_length`` tokens (image tokens included) are
dropped and counted, never truncated: TRL truncates from the end, which would cut answers
mid-way or, for a long prompt, image tokens, and the pair would train on something the data
never said. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
from PIL import Image

_PART = {"type": datasets.Value("string"), "text": datasets.Value("string")}
_MESSAGES = [{"role": datasets.Value("string"), "content": [_PART]}]
CONVERSATION_FEATURES = datasets.Features({"prompt": _MESSAGES, "chosen": _MESSAGES, "rejected": _MESSAGES})
# The n_tokens value of a pair that cannot be split into prompt and answer tokens (not a length).
BOUNDARY_MERGED = -2


def load_split(data_dir: str | Path, config: str = "default", split: str = "train") -> datasets.Dataset:
    """One split of a release folder, through ``datasets.load_dataset`` and the card's configs
    (typed features, PIL images); ``split`` may be sliced (``train[:1000]``)."""
    return datasets.load_dataset(str(data_dir), config, split=split)


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


def _conversations(batch: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {"prompt": [], "chosen": [], "rejected": []}
    for q, c, r in zip(batch["question"], batch["chosen"], batch["rejected"], strict=True):
        example = to_preference({"question": q, "chosen": c, "rejected": r})
        for key in out:
            out[key].append(example[key] if example else [])
    return out


def _image_lists(dataset: datasets.Dataset) -> datasets.Dataset:
    """The ``image`` column as ``images``, a list of one image per row, over the same buffers.

    A list column over the struct column is offsets only (0, 1, 2, ...): the image bytes are
    neither decoded nor copied, where ``map`` would write every image again into a cache file
    (gigabytes on the real data).
    """
    chunks = []
    for chunk in dataset.data.column("image").chunks:
        offsets = pa.array(np.arange(len(chunk) + 1, dtype=np.int32))
        chunks.append(pa.ListArray.from_arrays(offsets, chunk))
    table = pa.table({"images": pa.chunked_array(chunks, type=pa.list_(dataset.data.column("image").type))})
    features = datasets.Features({"images": [dataset.features["image"]]})
    return datasets.Dataset(
        datasets.table.InMemoryTable(table),
        info=datasets.DatasetInfo(features=features),
        fingerprint=f"{dataset._fingerprint}-spa-vl-images",
    )


def _pairs(dataset: datasets.Dataset) -> list[int]:
    """Rows that have both a chosen and a rejected answer (test rows have neither)."""
    answers = dataset.select_columns(["chosen", "rejected"])
    return [i for i, (c, r) in enumerate(zip(answers["chosen"], answers["rejected"], strict=True)) if c and r]


def _map_text(
    dataset: datasets.Dataset,
    columns: list[str],
    fn: Callable[[dict[str, list]], dict[str, list]],
    batch_size: int,
    features: datasets.Features,
    desc: str,
) -> datasets.Dataset:
    """``fn`` over batches of the text ``columns`` only (images are never decoded), giving a
    dataset of ``features`` alone."""
    text = dataset.select_columns(columns)
    return text.map(
        fn,
        batched=True,
        batch_size=batch_size,
        remove_columns=text.column_names,
        features=features,
        desc=desc,
    )


def to_trl(dataset: datasets.Dataset) -> datasets.Dataset:
    """A release split as TRL's conversational preference dataset.

    Columns ``prompt`` (a user turn: an image part, then the question), ``chosen`` and
    ``rejected`` (one assistant turn each) and ``images`` (a list holding the row's image), as
    ``trl.DPOTrainer`` reads them with a vision model's processor. Rows without a chosen/rejected
    pair (the test split) are left out. Image bytes are shared with ``dataset``, not copied.
    """
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(
            f"to_trl takes one split as a datasets.Dataset, not a {type(dataset).__name__} "
            "(load it with split='train'; streaming is not supported)"
        )
    missing = [c for c in ("question", "chosen", "rejected", "image") if c not in dataset.column_names]
    if missing:
        raise ValueError(f"not a SPA-VL split: no column {', '.join(missing)}")
    if dataset._indices is not None:  # a selected or shuffled view: the image view needs the rows in order
        dataset = dataset.flatten_indices()
    conversations = _map_text(
        dataset, ["question", "chosen", "rejected"], _conversations, 1000, CONVERSATION_FEATURES,
        "Rendering pairs as conversations",
    )  # fmt: skip
    joined = datasets.concatenate_datasets([conversations, _image_lists(dataset)], axis=1)
    return joined.select(_pairs(dataset))


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
    dropped_boundary: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        merged = (
            f", {self.dropped_boundary} whose answer's first token merges with the prompt's last"
            if self.dropped_boundary
            else ""
        )
        return (
            f"{self.kept} of {self.rows} pairs kept; dropped {self.dropped_too_long} longer than "
            f"{self.max_length} tokens (with {self.image_tokens} image tokens) and "
            f"{self.dropped_no_pair} without a chosen/rejected pair{merged}; longest pair "
            f"{self.longest_pair} tokens"
        )


def count_tokens(examples: list[dict[str, Any]], processing_class: Any, image_tokens: int) -> list[int]:
    """Tokens each pair takes as DPO trains on it: the longer of prompt + chosen and prompt +
    rejected, each tokenised as one text, every image placeholder counted as the
    ``image_tokens`` the processor expands it to.

    ``BOUNDARY_MERGED`` for a pair whose prompt tokens are not a prefix of prompt + answer (the
    answer's first characters merge with the prompt's last token): no split of such a sequence
    into prompt and answer tokens is right, so the pair cannot be trained on as it is.
    """
    from trl.data_utils import apply_chat_template

    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    image_token = getattr(processing_class, "image_token", "<image>")
    image_id = tokenizer.convert_tokens_to_ids(image_token)
    rendered = [apply_chat_template(ex, processing_class) for ex in examples]

    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False)["input_ids"]

    prompts = ids([r["prompt"] for r in rendered])
    chosen = ids([r["prompt"] + r["chosen"] for r in rendered])
    rejected = ids([r["prompt"] + r["rejected"] for r in rendered])
    counts = []
    for p, c, r in zip(prompts, chosen, rejected, strict=True):
        if c[: len(p)] != p or r[: len(p)] != p:
            counts.append(BOUNDARY_MERGED)
            continue
        counts.append(max(len(c), len(r)) + p.count(image_id) * (image_tokens - 1))
    return counts


def preference_dataset(
    rows: datasets.Dataset,
    processing_class: Any,
    max_length: int,
    image_tokens: int,
    limit: int | None = None,
) -> tuple[datasets.Dataset, LengthReport]:
    """``to_trl(rows)`` with an ``n_tokens`` column, less the pairs that do not fit ``max_length``.

    ``limit`` keeps the first N usable pairs.
    """
    pairs = to_trl(rows)

    def measure(batch: dict[str, list]) -> dict[str, list]:
        examples = [
            {"prompt": p, "chosen": c, "rejected": r}
            for p, c, r in zip(batch["prompt"], batch["chosen"], batch["rejected"], strict=True)
        ]
        return {"n_tokens": count_tokens(examples, processing_class, image_tokens) if examples else []}

    lengths = _map_text(
        pairs, ["prompt", "chosen", "rejected"], measure, 256,
        datasets.Features({"n_tokens": datasets.Value("int32")}), "Measuring pairs",
    )  # fmt: skip
    n_tokens = lengths["n_tokens"] if len(pairs) else []  # map drops the column on no rows
    measured = [n for n in n_tokens if n >= 0]
    kept = [i for i, n in enumerate(n_tokens) if 0 <= n <= max_length]
    if limit is not None:
        kept = kept[:limit]
    report = LengthReport(
        rows=len(rows),
        kept=len(kept),
        dropped_no_pair=len(rows) - len(pairs),
        dropped_too_long=sum(n > max_length for n in measured),
        max_length=max_length,
        image_tokens=image_tokens,
        longest_pair=max(measured, default=0),
        dropped_boundary=n_tokens.count(BOUNDARY_MERGED),
    )
    return datasets.concatenate_datasets([pairs, lengths], axis=1).select(kept), report


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
