"""The near rule's scalar definitions, compiled with numba: what a pair must satisfy, and the
bounds on shared n-grams and probes derived from it.

These are the one definition of the near rule: the join (``near_kernel``) and
``spa_vl.audit.text`` (from Python) call them. Split from ``near_kernel`` to keep each module
small; ``near_kernel`` re-exports every name.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# similarity and containment thresholds are compared with a little slack so that 9/10 >= 0.9
# holds in floating point
_EPS = 1e-9

RULE_NONE, RULE_SIMILARITY, RULE_CONTAINMENT, RULE_PHRASE = 0, 1, 2, 3
# the phrase rule: a replaced word may come back as up to 1 + PHRASE_EXTRA words ("how can I
# ..." -> "in what way can I ..."), which the similarity rule counts as that many edits
PHRASE_EXTRA = 2
NEVER = 1 << 62
EXTRA_PROBES = 2  # n-grams probed beyond each prefix (see near_join)


@njit(cache=True)
def allowed_edits(longer: int, max_word_edits: int, edit_fraction: float) -> int:
    """Unmatched words the similarity rule allows in the longer text."""
    return max(max_word_edits, int(edit_fraction * longer + _EPS))


@njit(cache=True)
def unmatched_in_contained(shorter: int, containment_threshold: float) -> int:
    """Unmatched words of the shorter text that the containment rule allows."""
    return int((1.0 - containment_threshold) * shorter + _EPS)


@njit(cache=True)
def near_rule_code(
    matched: int,
    source_words: int,
    reference_words: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    min_containment_tokens: int,
    min_tokens: int,
) -> int:
    """RULE_SIMILARITY, RULE_CONTAINMENT or RULE_NONE for a pair with ``matched`` aligned words."""
    shorter = min(source_words, reference_words)
    if shorter < min_tokens or shorter == 0:
        return RULE_NONE
    longer = max(source_words, reference_words)
    allowed = allowed_edits(longer, max_word_edits, edit_fraction)
    similarity = 2.0 * matched / (source_words + reference_words)
    if similarity + _EPS >= near_threshold and longer - matched <= allowed:
        return RULE_SIMILARITY
    # containment is for texts of clearly different lengths (a truncation, an added sentence);
    # between texts of about the same length the similarity rule is the judge
    if (
        shorter >= min_containment_tokens
        and longer - shorter > allowed
        and matched / shorter + _EPS >= containment_threshold
    ):
        return RULE_CONTAINMENT
    return RULE_NONE


@njit(cache=True)
def phrase_possible(
    matched: int,
    source_words: int,
    reference_words: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    min_tokens: int,
) -> bool:
    """Whether the lengths and aligned words allow the phrase rule (``phrase_rule`` adds its
    n-gram test): the shorter text keeps all but ``allowed`` words and ``near_threshold`` of
    them, and the longer has at most PHRASE_EXTRA more words per allowed edit. Every
    condition is monotone in ``matched``, so an upper bound on it can only widen the set."""
    shorter = min(source_words, reference_words)
    if shorter < min_tokens or shorter == 0:
        return False
    longer = max(source_words, reference_words)
    allowed = allowed_edits(longer, max_word_edits, edit_fraction)
    # between texts of one length the rule would accept only what the similarity rule does
    return (
        shorter < longer <= shorter + PHRASE_EXTRA * allowed
        and shorter - matched <= allowed
        and matched / shorter + _EPS >= near_threshold
    )


@njit(cache=True)
def phrase_rule(
    matched: int,
    source_words: int,
    reference_words: int,
    source_missing: int,
    reference_missing: int,
    n: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    min_tokens: int,
) -> bool:
    """The phrase rule, for pairs the similarity and containment rules reject: one word (per
    allowed edit) replaced by a phrase of up to 1 + PHRASE_EXTRA words, in one place. The
    place is what the n-grams tell: ``*_missing`` are each text's distinct n-grams the other
    lacks; a replacement in one place costs the shorter text at most n of them and the longer
    n + PHRASE_EXTRA, while the same words changed in scattered places cost more."""
    if not phrase_possible(matched, source_words, reference_words, near_threshold, max_word_edits,
                           edit_fraction, min_tokens):  # fmt: skip
        return False
    allowed = allowed_edits(max(source_words, reference_words), max_word_edits, edit_fraction)
    if source_words < reference_words:
        short_missing, long_missing = source_missing, reference_missing
    else:
        short_missing, long_missing = reference_missing, source_missing
    return short_missing <= n * allowed and long_missing <= (n + PHRASE_EXTRA) * allowed


@njit(cache=True)
def least_matched(
    source_words: int,
    reference_words: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    min_containment_tokens: int,
    min_tokens: int,
) -> int:
    """The fewest aligned words with which a rule could accept a pair of these lengths (the
    similarity or containment rule, or the phrase rule's length and word conditions); more
    than either length when none can. Each rule is monotone in the aligned words."""
    m = min(source_words, reference_words)
    while m >= 0 and (
        near_rule_code(m, source_words, reference_words, near_threshold, max_word_edits, edit_fraction,
                       containment_threshold, min_containment_tokens, min_tokens) != RULE_NONE
        or phrase_possible(m, source_words, reference_words, near_threshold, max_word_edits,
                           edit_fraction, min_tokens)
    ):  # fmt: skip
        m -= 1
    return m + 1


@njit(cache=True)
def required_shared(
    own: int,
    source_words: int,
    reference_words: int,
    n: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    min_containment_tokens: int,
    min_tokens: int,
) -> int:
    """The fewest shared n-grams with which ``near_rule_code`` could accept a pair, judged
    from lengths alone; ``NEVER`` when no rule can.

    ``own`` is the number of distinct n-grams of the shorter text. It loses at most n n-grams
    per unmatched word of its own and n - 1 per gap where the longer text has words in
    between. Under the similarity rule both texts have at most ``allowed`` unmatched words, so
    shared >= own - (2n - 1) * allowed. The containment rule allows any text before or after
    the shorter one and up to ``max_word_edits + 1`` insertions inside it: shared >= own -
    n * unmatched - (n - 1) * (max_word_edits + 1). More scattered insertions than that are
    missed: the price of not aligning every pair that shares an n-gram. The phrase rule bounds
    the shorter text's losses itself: n * allowed. The fewest of the rules that apply.
    """
    shorter = min(source_words, reference_words)
    longer = max(source_words, reference_words)
    if shorter < min_tokens:
        return NEVER
    allowed = allowed_edits(longer, max_word_edits, edit_fraction)
    need = NEVER
    if longer - shorter <= allowed and 2.0 * shorter + _EPS >= near_threshold * (shorter + longer):
        need = own - (2 * n - 1) * allowed
    elif shorter >= min_containment_tokens and longer - shorter > allowed:
        need = (
            own - n * unmatched_in_contained(shorter, containment_threshold) - (n - 1) * (max_word_edits + 1)
        )
    if shorter < longer <= shorter + PHRASE_EXTRA * allowed:  # one length: similarity's
        need = min(need, own - n * allowed)
    return need


@njit(cache=True)
def shared_floor(
    need: int,
    own: int,
    source_words: int,
    reference_words: int,
    n: int,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    min_containment_tokens: int,
) -> int:
    """``need`` (``required_shared`` of the pair) made a true lower bound under every rule:
    the containment rule's insertion points inside the shorter text are counted from the
    lengths (at most the longer text's unmatched words, at most one per gap between two
    words), not assumed few. Used against an upper bound of the shared n-grams."""
    shorter = min(source_words, reference_words)
    longer = max(source_words, reference_words)
    allowed = allowed_edits(longer, max_word_edits, edit_fraction)
    if shorter >= min_containment_tokens and longer - shorter > allowed:
        lost = unmatched_in_contained(shorter, containment_threshold)
        gaps = min(shorter - 1, longer - shorter + lost)
        need = min(need, own - n * lost - (n - 1) * gaps)
    return need


@njit(cache=True)
def prefix_size(
    words: int,
    n: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    similarity: bool,
) -> int:
    """How many of its n-grams a text of ``words`` words must probe: one more than it can lose
    to a pair that the near rule accepts (see ``required_shared`` for the losses).

    Under the similarity rule the other text has at most words / (1 - edit_fraction) +
    max_word_edits words, which bounds ``allowed``. ``similarity=False``: the containment bound
    only, with this text the shorter one (the reference-side prefixes, which serve the eval
    text inside a longer source). The phrase rule's larger loss, for a text longer than the
    other, is ``phrase_loss``.
    """
    longest = int(words / max(1.0 - edit_fraction, 1e-9)) + max_word_edits + 1
    contained = n * unmatched_in_contained(words, containment_threshold) + (n - 1) * (max_word_edits + 1)
    if not similarity:
        return contained + 1
    similar = (2 * n - 1) * allowed_edits(longest, max_word_edits, edit_fraction)
    return max(similar, contained) + 1


@njit(cache=True)
def phrase_loss(words: int, n: int, max_word_edits: int, edit_fraction: float) -> int:
    """The most n-grams a text of ``words`` words can miss in a pair that only the phrase rule
    accepts, where it is the longer text: n + PHRASE_EXTRA per allowed edit. (As the shorter
    text it misses at most n per edit, within ``prefix_size``; between texts of one length the
    phrase rule accepts nothing the similarity rule does not.)"""
    return (n + PHRASE_EXTRA) * allowed_edits(words, max_word_edits, edit_fraction)


@njit(cache=True)
def prefix_sizes(
    words: np.ndarray,
    n: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    similarity: bool,
) -> np.ndarray:
    """``prefix_size`` of each text."""
    out = np.empty(len(words), np.int64)
    for i in range(len(words)):
        out[i] = prefix_size(words[i], n, near_threshold, max_word_edits, edit_fraction,
                             containment_threshold, similarity)  # fmt: skip
    return out
