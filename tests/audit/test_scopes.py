"""The scope rule's two forms (compiled per pair, numpy over arrays) agree on every case."""

from __future__ import annotations

import itertools

import numpy as np

from spa_vl.audit.scopes import EVAL_RANK, SCOPE_NAMES, allowed_mask, scope_code, scope_codes
from spa_vl.names import SCOPES


def test_scope_codes_agree_with_the_compiled_rule() -> None:
    ranks, orders = [EVAL_RANK, 0, 1, 2, 3], [-1, 0, 1, 2]
    cases = np.array(list(itertools.product(ranks, orders, ranks, orders)), np.int64)
    for k in range(len(SCOPES) + 1):
        for allowed in itertools.combinations(SCOPES, k):
            got = scope_codes(cases[:, 0], cases[:, 1], cases[:, 2], cases[:, 3], allowed)
            mask = allowed_mask(allowed)
            want = [scope_code(int(a), int(b), int(c), int(d), mask) for a, b, c, d in cases]
            assert got.tolist() == want, allowed


def test_the_rule() -> None:
    every = allowed_mask(SCOPES)
    assert SCOPE_NAMES is SCOPES
    assert SCOPE_NAMES[scope_code(0, 5, EVAL_RANK, -1, every)] == "eval"
    assert SCOPE_NAMES[scope_code(0, 5, 0, 2, every)] == "duplicate"  # from the later row
    assert scope_code(0, 2, 0, 5, every) == -1  # ... and only from it
    assert SCOPE_NAMES[scope_code(0, 1, 2, 1, every)] == "leak"  # from the earlier split's row
    assert scope_code(2, 1, 0, 1, every) == -1
    assert scope_code(0, 5, EVAL_RANK, -1, allowed_mask(("duplicate", "leak"))) == -1
