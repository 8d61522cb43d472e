"""The one ``Features`` of every SPA-VL split and config (ARCHITECTURE.md, contract)."""

from __future__ import annotations

from functools import cache

import datasets

from spa_vl.taxonomy import load_taxonomy

EVAL_SETS = ("harm", "help")
COLUMNS = (
    "id",
    "image",
    "image_name",
    "question",
    "chosen",
    "rejected",
    "domain",
    "category",
    "subcategory",
    "eval_set",
)


@cache
def spa_vl_features() -> datasets.Features:
    """Typed columns: Image with embedded bytes, ClassLabels over the frozen taxonomy order
    (-1 where unknown), nullable answers (None on test rows), and eval_set for test rows."""
    tax = load_taxonomy()
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "image": datasets.Image(),
            "image_name": datasets.Value("string"),
            "question": datasets.Value("string"),
            "chosen": datasets.Value("string"),
            "rejected": datasets.Value("string"),
            "domain": datasets.ClassLabel(names=tax.names("domain")),
            "category": datasets.ClassLabel(names=tax.names("category")),
            "subcategory": datasets.ClassLabel(names=tax.names("subcategory")),
            "eval_set": datasets.ClassLabel(names=list(EVAL_SETS)),
        }
    )


def to_example(record: dict, image: bytes) -> dict:
    """A validated canonical record as a row of the unified schema (labels as ids)."""
    tax = load_taxonomy()
    image_ref = record.get("image")
    path = image_ref.get("path") if isinstance(image_ref, dict) else image_ref
    eval_set = record.get("eval_set")
    return {
        "id": record["id"],
        # Bytes pass through untouched: no decode and re-encode on the way to the release.
        "image": {"bytes": image, "path": path.rsplit("/", 1)[-1] if path else None},
        "image_name": record.get("image_name"),
        "question": record["question"],
        "chosen": record.get("chosen"),
        "rejected": record.get("rejected"),
        "domain": tax.index("domain", record.get("class1")),
        "category": tax.index("category", record.get("class2")),
        "subcategory": tax.index("subcategory", record.get("class3")),
        "eval_set": EVAL_SETS.index(eval_set) if eval_set in EVAL_SETS else -1,
    }
