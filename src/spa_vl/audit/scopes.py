"""The audit's scope rule, in one place: which pair of rows is a duplicate, a leak or an eval match.

A pair is (source row, reference item); each side has a split rank (train < validation < test,
``EVAL_RANK`` for eval-set items) and an order among the audited rows (-1: not indexed).

- eval: the reference is an eval-set item;
- duplicate: same split rank, the reference row earlier (reported once, from its later row);
- leak: the source's split is earlier than the reference's (reported once, from the earlier
  split's row);
- otherwise the pair is not reported (-1).

The scope code is the position of the scope's name in ``names.SCOPES``. ``scope_code`` is the
rule for one pair, compiled (the near join calls it per candidate pair); ``scope_codes`` is the
same rule over arrays, in numpy, for the exact and image tiers. ``tests/audit/test_scopes.py``
checks that the two agree on every case.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from spa_vl.names import SCOPES

SCOPE_NAMES = SCOPES  # by scope code
DUPLICATE, LEAK, EVAL = (SCOPES.index(s) for s in ("duplicate", "leak", "eval"))
NOT_REPORTED = -1
EVAL_RANK = -1  # split rank of eval-set items


def allowed_mask(scopes: Sequence[str]) -> np.ndarray:
    """Which scopes are audited, by scope code (what ``scope_code`` takes)."""
    return np.array([s in scopes for s in SCOPES], np.bool_)


@njit(cache=True)
def scope_code(src_rank: int, src_order: int, ref_rank: int, ref_order: int, allow: np.ndarray) -> int:
    """The scope code of one pair, or NOT_REPORTED (the module docstring's rule)."""
    if ref_rank == EVAL_RANK:
        return EVAL if allow[EVAL] else NOT_REPORTED
    if allow[DUPLICATE] and ref_rank == src_rank and 0 <= ref_order < src_order:
        return DUPLICATE
    if allow[LEAK] and src_rank < ref_rank:
        return LEAK
    return NOT_REPORTED


def scope_codes(
    src_rank: np.ndarray,
    src_order: np.ndarray,
    ref_rank: np.ndarray,
    ref_order: np.ndarray,
    scopes: Sequence[str],
) -> np.ndarray:
    """``scope_code`` of each pair, vectorised (int8)."""
    allow = allowed_mask(scopes)
    code = np.full(len(src_rank), NOT_REPORTED, np.int8)
    internal = ref_rank != EVAL_RANK
    if allow[EVAL]:
        code[~internal] = EVAL
    # leak first, duplicate last: where both could hold, the compiled rule's order wins (they
    # cannot both hold: a leak needs src_rank < ref_rank, a duplicate equal ranks)
    if allow[LEAK]:
        code[internal & (src_rank < ref_rank)] = LEAK
    if allow[DUPLICATE]:
        code[internal & (ref_rank == src_rank) & (ref_order < src_order) & (ref_order >= 0)] = DUPLICATE
    return code
