"""``spa_vl.names``: the one home of the shared names and small rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import spa_vl.names as names
from spa_vl.names import EVAL_SETS, LEVELS, SCOPES, SPLITS, is_repo_id, is_version


def test_imports_nothing_of_spa_vl_and_nothing_heavy() -> None:
    tree = ast.parse(Path(names.__file__).read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in top if isinstance(n, ast.ImportFrom)}
    assert modules <= {"__future__", "re"}, modules


def test_every_copy_is_the_one() -> None:
    from spa_vl.audit.settings import SCOPES as audit_scopes
    from spa_vl.audit.settings import SPLIT_ORDER
    from spa_vl.features import EVAL_SETS as feature_eval_sets
    from spa_vl.release.layout import SPLITS as layout_splits
    from spa_vl.sources import SPLITS as source_splits
    from spa_vl.taxonomy import LEVELS as taxonomy_levels

    assert feature_eval_sets is EVAL_SETS == ("harm", "help")
    assert taxonomy_levels is LEVELS == ("domain", "category", "subcategory")
    assert layout_splits is source_splits is SPLIT_ORDER is SPLITS == ("train", "validation", "test")
    assert audit_scopes is SCOPES == ("duplicate", "leak", "eval")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1.0.0", True),
        ("10.20.30", True),
        ("1.0", False),
        ("v1.0.0", False),
        ("1.0.0-rc1", False),
        ("1.0.0\n", False),
    ],
)
def test_is_version(text: str, ok: bool) -> None:
    assert is_version(text) is ok


@pytest.mark.parametrize(
    ("text", "ok", "bare_ok"),
    [
        ("org/name", True, True),
        ("spa-org/spa-vl.v2", True, True),
        ("gpt2", False, True),  # a bare model name: fine for --model, not for a dataset
        ("org/na me", False, False),
        ("org/../name", False, False),
        ("org/name--x", False, False),
        ("a/b/c", False, False),
        ("", False, False),
    ],
)
def test_is_repo_id(text: str, ok: bool, bare_ok: bool) -> None:
    assert is_repo_id(text) is ok
    assert is_repo_id(text, namespace=False) is bare_ok


def test_copies_left_in_place_agree() -> None:
    # The card's scope labels (its own order) and the audit's scope-code names (audit internals,
    # not moved here) must name exactly the scopes of spa_vl.names.
    from spa_vl.audit.core import SCOPE_NAMES
    from spa_vl.card.content import AUDIT_SCOPES

    assert set(AUDIT_SCOPES) == set(SCOPES)
    assert SCOPE_NAMES == SCOPES
