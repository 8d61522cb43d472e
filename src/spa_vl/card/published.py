"""What is known about SPA-VL as its authors publish it (arXiv 2406.12030 and the Hub
dataset ``sqrti/SPA-VL``: rows per split, files, taxonomy).

These numbers describe the upstream publication, not a release: the card quotes them to
compare a release against, and every number about the release itself is computed.
"""

from __future__ import annotations

# One source for the title and the repo id (spa_vl.about); the card template reads them here.
from spa_vl.about import TITLE, UPSTREAM_REPO  # noqa: F401

VENUE = "CVPR 2025"
ARXIV = "2406.12030"
PAPER = f"arXiv {ARXIV} ({VENUE})"
PAPER_URL = "https://arxiv.org/abs/2406.12030"
ROWS = 100_788
# The authors' Hub splits, in our split names (HarmEval and HelpEval form our `test`).
SPLIT_ROWS = {"train": 93_258, "validation": 7_000, "test": 265 + 265}
EVAL_ROWS = {"harm": 265, "help": 265}
RESPONSE_MODELS = 12
ABSTRACT_CATEGORIES = 13  # what the abstract and the Hub card say; the data has 15
HARMEVAL_PER_SUBCATEGORY = 5

# The authors' Hub layout: (config, split, rows, columns). Their card's configs changed over
# time (`evalharm`/`evalhelp` configs once; validation once inside `default`).
UPSTREAM_LAYOUT = [
    ("default", "train", SPLIT_ROWS["train"], "image, question, chosen, rejected, image_name"),
    ("validation", "validation", SPLIT_ROWS["validation"],
     "image, question, chosen, rejected, class1, class2, class3"),
    ("test", "harm", EVAL_ROWS["harm"], "image, question, class1, class2, class3"),
    ("test", "help", EVAL_ROWS["help"], "image, question, class1, class2, class3"),
]  # fmt: skip
