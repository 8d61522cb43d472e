"""The names every part of spa-vl shares, and the small rules over them, in one place.

Split, label-level, eval-set and audit-scope names, and the checks of a version and of a Hub
repo id. Plain values and standard-library code only: this module imports nothing of spa_vl
and nothing heavy (``huggingface_hub`` only inside ``is_repo_id``), so the validator, the
sources, the release build, the card, the audit and the CLI can all import it without loading
``datasets`` or importing each other.
"""

from __future__ import annotations

import re

# The splits of every release, in their order (train before validation before test: a leak is
# reported from the earlier split's side).
SPLITS = ("train", "validation", "test")
# The taxonomy's levels and the release columns that hold them (the data's class1/2/3).
LEVELS = ("domain", "category", "subcategory")
# The test split's two question sets, HarmEval and HelpEval; their order is the ClassLabel order
# of released data and must never change.
EVAL_SETS = ("harm", "help")
# The contamination audit's scopes; their order is the scope code of its matches (0, 1, 2).
SCOPES = ("duplicate", "leak", "eval")

# A release version (semantic version, no pre-release part); tags are ``v`` + this.
VERSION_PATTERN = r"\d+\.\d+\.\d+"
_VERSION = re.compile(VERSION_PATTERN)


def is_version(text: str) -> bool:
    """True when ``text`` is a release version ``X.Y.Z``."""
    return _VERSION.fullmatch(text) is not None


def is_repo_id(text: str, *, namespace: bool = True) -> bool:
    """True when the Hub would take ``text`` as a repo id (``huggingface_hub``'s own rule);
    with ``namespace`` (datasets we push or load) it must also be ``ORG/NAME``, not a bare
    name."""
    # Imported here: huggingface_hub.utils loads an HTTP client, which `spa-vl --help` and the
    # validator never need.
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return "/" in text or not namespace
