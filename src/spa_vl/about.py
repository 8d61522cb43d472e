"""What spa-vl publishes about SPA-VL with every release: description, homepage, licence,
citation, data version, and the card's fixed YAML. Plain values: this module imports nothing,
so the release build, the card and the builder can all use it without importing each other."""

from __future__ import annotations

__version__ = "0.1.0"  # of spa-vl itself (pyproject.toml reads it from here)
DATA_VERSION = "1.0.0"
# The authors' Hub dataset (raw layout): what `spa_vl.load()` builds by default, and the
# lineage (`source_datasets`) every release declares.
UPSTREAM_REPO = "sqrti/SPA-VL"
# The paper's title exactly as on arXiv 2406.12030 ("Model", singular): the card's body and
# its BibTeX both take it from here, so they cannot disagree.
TITLE = "SPA-VL: A Comprehensive Safety Preference Alignment Dataset for Vision Language Model"
HOMEPAGE = "https://sqrti.github.io/SPA-VL/"
LICENSE = "cc-by-4.0"
CITATION = f"""\
@inproceedings{{zhang2025spavl,
  title     = {{{TITLE}}},
  author    = {{Zhang, Yongting and Chen, Lu and Zheng, Guodong and Gao, Yifeng and Zheng, Rui and
               Fu, Jinlan and Yin, Zhenfei and Jin, Senjie and Qiao, Yu and Huang, Xuanjing and
               Zhao, Feng and Gui, Tao and Shao, Jing}},
  booktitle = {{Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)}},
  year      = {{2025}},
  eprint    = {{2406.12030}},
  archivePrefix = {{arXiv}}
}}
"""
DESCRIPTION = (
    "SPA-VL: a safety preference alignment dataset for vision-language models. Each row is a "
    "question about an image with a chosen (safer) and a rejected response, labelled with a "
    "6-domain / 15-category / 53-subcategory harm taxonomy. The test split holds HarmEval and "
    "HelpEval (eval_set), which have questions only."
)
PRETTY_NAME = "SPA-VL"
TASK_CATEGORIES = ["visual-question-answering", "image-text-to-text"]
# Lineage in the Hub's card vocabulary (`original`, or `extended|<source>`): every release is
# the authors' data re-typed and relabelled, so it extends `sqrti/SPA-VL`.
SOURCE_DATASETS = [f"extended|{UPSTREAM_REPO}"]
TAGS = ["safety", "preference", "dpo", "rlhf", "vision-language", "harmlessness"]


def base_metadata() -> dict:
    """The card YAML that does not depend on the data."""
    return {
        "license": LICENSE,
        "language": ["en"],
        "pretty_name": PRETTY_NAME,
        "task_categories": list(TASK_CATEGORIES),
        "tags": list(TAGS),
        "source_datasets": list(SOURCE_DATASETS),
    }
