"""The release contract's Features (docs/CONTRACTS.md, "Parquet columns"), typed here rather than
imported from ``spa_vl.features``: tests that write releases by hand use it, and tests of what the
code writes or loads compare against it, so a change to the code's Features cannot pass unnoticed.
Only the label names come from the taxonomy (``schema/taxonomy.json``, the frozen order)."""

from __future__ import annotations

import datasets

from spa_vl.taxonomy import load_taxonomy

# The configs: `default` and one per harm domain, in taxonomy order (docs/CONTRACTS.md)
DOMAIN_CONFIGS = (
    "representation_toxicity",
    "misinformation",
    "information_safety",
    "malicious_use",
    "human_autonomy_integrity",
    "socioeconomic",
)
CONFIGS = ("default", *DOMAIN_CONFIGS)

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


def contract_features() -> datasets.Features:
    tax = load_taxonomy()
    features = datasets.Features(
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
            "eval_set": datasets.ClassLabel(names=["harm", "help"]),
        }
    )
    assert tuple(features) == COLUMNS
    return features
