"""The near tier's inner loop, compiled with numba: candidates, bounds and word alignment.

For each source text the kernel probes the n-gram postings of the reference side (its own
rarest n-grams, then every n-gram against the reference texts' own prefixes), drops pairs by
scope, length and an exact count of shared n-grams, aligns the survivors word by word (longest
common subsequence of word ids) and applies the near rule. Everything a pair needs is an array;
nothing is allocated per pair. ``cache=True`` keeps the compiled code beside this file (or in
numba's user cache when that is read-only), so only the first process pays the compile.

The scalar rules here (``near_rule_code``, ``required_shared``, ``prefix_size``) are the one
definition of the near rule: ``spa_vl.audit.text`` calls them from Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EVAL_RANK = -1  # split rank of eval-set items (spa_vl.audit.reference.EVAL_RANK)
# similarity and containment thresholds are compared with a little slack so that 9/10 >= 0.9
# holds in floating point
_EPS = 1e-9

RULE_NONE, RULE_SIMILARITY, RULE_CONTAINMENT, RULE_PHRASE = 0, 1, 2, 3
# the phrase rule: a replaced word may come back as up to 1 + PHRASE_EXTRA words ("how can I
# ..." -> "in what way can I ..."), which the similarity rule counts as that many edits
PHRASE_EXTRA = 2
NEVER = 1 << 62
EXTRA_PROBES = 2  # n-grams probed beyond each prefix (see near_join)
# a candidate's hits: through the row's n-grams in the low 32 bits, through its own prefix
# above (either count is at most the row's n-grams, far below 2 ** 31)
_PREFIX_HIT = 1 << 32
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# odd 64-bit multipliers that mix word ids into one n-gram key (wrapping arithmetic)
MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9],
    dtype=np.uint64,
)  # fmt: skip


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


@njit(cache=True)
def _mix64(h: np.uint64) -> np.uint64:
    """splitmix64's finaliser: every input bit moves every output bit."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_NEWLINE, _SPACE = 10, 32


@njit(cache=True)
def encode_texts(data: np.ndarray, n_texts: int, n: int):
    """Normalised texts, UTF-8, joined by newlines (normalised text has none; words are
    single-spaced), to what the near tier works on: (text hashes, word offsets, word hashes,
    n-gram key offsets, keys, own). Words are 64-bit hashes of their bytes, so both sides
    need no vocabulary; each text's distinct n-gram keys come sorted, and ``own`` counts them.
    Hashes are FNV-1a with a splitmix64 finish: stable across processes and machines."""
    text_hash = np.empty(n_texts, np.uint64)
    tok_off = np.zeros(n_texts + 1, np.int64)
    tok = np.empty(len(data) // 2 + 1, np.uint64)
    r = 0
    w = 0
    th = _FNV_OFFSET
    wh = _FNV_OFFSET
    in_word = False
    # one newline past the end closes the last text (none when there is no text)
    for i in range(len(data) + (n_texts > 0)):
        c = data[i] if i < len(data) else _NEWLINE
        if c in (_SPACE, _NEWLINE):
            if in_word:
                tok[w] = _mix64(wh)
                w += 1
                in_word = False
                wh = _FNV_OFFSET
        else:
            wh = (wh ^ np.uint64(c)) * _FNV_PRIME
            in_word = True
        if c == _NEWLINE:
            text_hash[r] = _mix64(th)
            tok_off[r + 1] = w
            r += 1
            th = _FNV_OFFSET
        else:
            th = (th ^ np.uint64(c)) * _FNV_PRIME
    key_off, keys, own = ngram_keys(tok_off, tok[:w], n)
    return text_hash, tok_off, tok[:w].copy(), key_off, keys, own


@njit(cache=True)
def ngram_keys(tok_off: np.ndarray, tok: np.ndarray, n: int):
    """Distinct n-gram keys of each text, sorted: (key offsets, keys, distinct per text)."""
    n_rows = len(tok_off) - 1
    total = 0
    for r in range(n_rows):
        total += max(tok_off[r + 1] - tok_off[r] - n + 1, 0)
    keys = np.empty(total, np.uint64)
    key_off = np.zeros(n_rows + 1, np.int64)
    own = np.zeros(n_rows, np.int64)
    w = 0
    for r in range(n_rows):
        start = w
        for i in range(tok_off[r], tok_off[r + 1] - n + 1):
            key = np.uint64(0)
            for k in range(n):
                key += tok[i + k] * MIX[k % len(MIX)] + np.uint64(k)
            keys[w] = _mix64(key)
            w += 1
        keys[start:w] = np.sort(keys[start:w])
        m = start
        for j in range(start, w):
            if j == start or keys[j] != keys[j - 1]:
                keys[m] = keys[j]
                m += 1
        w = m
        key_off[r + 1] = w
        own[r] = w - start
    return key_off, keys[:w].copy(), own


@njit(cache=True)
def _slot(key: np.uint64, mask: int) -> int:
    return int((key * _GOLDEN) >> np.uint64(32)) & mask


@njit(cache=True)
def hash_table(keys: np.ndarray):
    """An open-addressing map from each of the distinct ``keys`` to its position:
    (slot keys, slot values, mask); value -1 marks an empty slot."""
    size = 16
    while size < 2 * len(keys):
        size *= 2
    tkeys = np.zeros(size, np.uint64)
    tvals = np.empty(size, np.int64)
    return tkeys, tvals, _fill_set(keys, tkeys, tvals)


@njit(cache=True)
def _get(tkeys: np.ndarray, tvals: np.ndarray, mask: int, key: np.uint64) -> int:
    slot = _slot(key, mask)
    while tvals[slot] != -1:
        if tkeys[slot] == key:
            return tvals[slot]
        slot = (slot + 1) & mask
    return -1


@njit(cache=True)
def _fill_set(keys: np.ndarray, tkeys: np.ndarray, tvals: np.ndarray) -> int:
    """Map distinct keys to their positions in an open-addressing table (value -1: empty);
    returns its mask. The table holds at least twice as many slots as keys."""
    size = 16
    while size < 2 * len(keys):
        size *= 2
    mask = size - 1
    tvals[:size] = -1
    for k in range(len(keys)):
        slot = _slot(keys[k], mask)
        while tvals[slot] != -1:
            slot = (slot + 1) & mask
        tkeys[slot] = keys[k]
        tvals[slot] = k
    return mask


@njit(cache=True)
def _shared_count(tkeys, tvals, mask: int, keys: np.ndarray, start: int, end: int, need: int) -> int:
    """How many of ``keys[start:end]`` (distinct) the set holds; stops once ``need`` is out of
    reach. (Index ranges, not slices: a slice costs reference counting in the inner loop.)"""
    shared = 0
    left = end - start
    for k in range(start, end):
        left -= 1
        if _get(tkeys, tvals, mask, keys[k]) >= 0:
            shared += 1
        elif shared + left < need:
            break
    return shared


@njit(cache=True)
def _merge_shared(a: np.ndarray, b: np.ndarray, b0: int, b1: int) -> int:
    """How many keys the sorted distinct ``a`` and ``b[b0:b1]`` have in common."""
    i, j, shared = 0, b0, 0
    while i < len(a) and j < b1:
        if a[i] == b[j]:
            shared += 1
            i += 1
            j += 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return shared


@njit(cache=True)
def lcs_length(a: np.ndarray, b: np.ndarray, work: np.ndarray) -> int:
    """Longest common subsequence of two word-hash arrays by dynamic programming. ``work``
    holds at least len(b) + 1 ints."""
    m = len(b)
    for j in range(m + 1):
        work[j] = 0
    for i in range(len(a)):
        ai = a[i]
        diag = 0
        left = 0
        for j in range(m):
            up = work[j + 1]
            if ai == b[j]:
                cur = diag + 1
            elif left > up:
                cur = left
            else:
                cur = up
            work[j + 1] = cur
            diag = up
            left = cur
    return work[m]


@njit(cache=True)
def _mark_words(tok: np.ndarray, vkeys, vvals, vmask: int, masks: np.ndarray, ids: np.ndarray) -> None:
    """For a text of at most 64 words: set ``masks[id]`` to the bit mask of the positions of
    each of its words that the reference vocabulary has (``ids[i]``: word i's id, -1 if none):
    the bit-parallel LCS's match vectors, read by vocabulary id, one load a word."""
    for i in range(len(tok)):
        v = _get(vkeys, vvals, vmask, tok[i])
        ids[i] = v
        if v >= 0:
            masks[v] |= np.uint64(1) << np.uint64(i)


@njit(cache=True)
def _unmark_words(la: int, masks: np.ndarray, ids: np.ndarray) -> None:
    for i in range(la):
        if ids[i] >= 0:
            masks[ids[i]] = 0


@njit(cache=True)
def _lcs_bits(la: int, b_ids: np.ndarray, start: int, end: int, masks: np.ndarray) -> int:
    """Bit-parallel LCS length (Hyyro 2004) of a text of la <= 64 words, given as its match
    vectors by vocabulary id (``_mark_words``), and the reference words ``b_ids[start:end]``
    (vocabulary ids): one word per step."""
    v = ~np.uint64(0)
    for k in range(start, end):
        u = v & masks[b_ids[k]]  # 0 for a word the text lacks
        v = (v + u) | (v - u)
    # the LCS is the number of 0 bits among the text's la bits
    low = ~np.uint64(0) if la == 64 else (np.uint64(1) << np.uint64(la)) - np.uint64(1)
    return la - _popcount(v & low)


@njit(cache=True)
def _popcount(x: np.uint64) -> int:
    """Set bits of a 64-bit word (SWAR: no loop over the bits)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def _scope(src_rank: int, src_order: int, ref_rank: int, ref_order: int, allow: np.ndarray) -> int:
    """0 duplicate, 1 leak, 2 eval, -1 not reported (as ``spa_vl.audit.core._scopes``)."""
    if ref_rank == EVAL_RANK:
        return 2 if allow[2] else -1
    if allow[0] and ref_rank == src_rank and 0 <= ref_order < src_order:
        return 0
    if allow[1] and src_rank < ref_rank:
        return 1
    return -1


@njit(cache=True)
def _grow(a: np.ndarray, size: int) -> np.ndarray:
    out = np.empty(max(size, 2 * len(a)), a.dtype)
    out[: len(a)] = a
    return out


@njit(cache=True)
def near_join(src, ref, scope, rule, max_matches: int):
    """Every near pair of a batch: (rows, items, rule codes, matched words, scores, and the
    work done: candidates, pairs past the hit count and scope, pairs aligned).

    ``src`` = (text offsets, word hashes, key offsets, sorted distinct keys, own, split rank,
    order): the source rows, CSR. ``ref`` = the arrays of ``text.NGramIndex`` (key table,
    postings, prefix postings and hits needed, the texts' words and keys). ``scope`` = (item
    rank, item order, item is an answer, item group, allowed scopes, answers too, tie-break
    rank). ``rule`` =
    the thresholds of ``NearRule``. Identical texts are left to the exact tier. Per row and
    item group (reference set) at most ``max_matches`` pairs are kept, the best first.
    """
    tok_off, tok, key_off, skeys, own, src_rank, src_order = src
    (tkeys, tvals, tmask, offsets, post_items, key_prefix, prefix_offsets, prefix_items, prefix_need,
     item_tok_off, item_tok, item_key_off, item_keys, vkeys, vvals, vmask, item_tok_id) = ref  # fmt: skip
    item_rank, item_order, item_answer, item_group, allow, answers_too, item_tiebreak = scope
    n, near_threshold, max_word_edits, edit_fraction, containment_threshold, min_cont, min_tokens = rule
    n_rows = len(tok_off) - 1
    hits = np.zeros(len(item_tok_off) - 1, np.int64)  # of the current row's candidates only
    cand = np.empty(1024, np.int64)
    longest = 1
    for i in range(len(item_tok_off) - 1):
        longest = max(longest, item_tok_off[i + 1] - item_tok_off[i])
    for i in range(len(tok_off) - 1):
        longest = max(longest, tok_off[i + 1] - tok_off[i])
    work = np.zeros(longest + 1, np.int64)
    row_keys = np.zeros(4 * (longest + 16), np.uint64)
    row_vals = np.zeros(4 * (longest + 16), np.int64)
    vocab = 0
    for k in range(len(item_tok_id)):
        vocab = max(vocab, item_tok_id[k] + 1)
    masks = np.zeros(vocab + 1, np.uint64)  # by vocabulary id: zero but for the current row
    ids = np.empty(longest + 1, np.int64)
    pos = np.empty(longest + 1, np.int64)
    df = np.empty(longest + 1, np.int64)
    out_rows = np.empty(256, np.int64)
    out_items = np.empty(256, np.int64)
    out_rule = np.empty(256, np.int8)
    out_matched = np.empty(256, np.int64)
    out_score = np.empty(256, np.float64)
    n_out = 0
    stats = np.zeros(3, np.int64)
    for r in range(n_rows):
        words = tok[tok_off[r] : tok_off[r + 1]]
        la = len(words)
        rkeys = skeys[key_off[r] : key_off[r + 1]]
        if la < min_tokens or len(rkeys) == 0:
            continue
        # postings of the row's n-grams, the rarest first; absent ones cannot be shared
        m = 0
        for k in range(len(rkeys)):
            i = _get(tkeys, tvals, tmask, rkeys[k])
            if i >= 0:
                pos[m] = i
                df[m] = offsets[i + 1] - offsets[i]
                m += 1
        order = np.argsort(df[:m], kind="mergesort")
        # 1. A pair that the rule can accept, other than a shorter reference text inside the
        # row, misses at most k of the row's n-grams (k + 1 = prefix_size): it holds one of
        # any k + 1 of them, and at least t of any k + t. Probing EXTRA_PROBES more postings
        # lets the hit count drop most chance candidates before a reference text is read; the
        # row's n-grams that no reference text has are misses too, and raise the count needed.
        k_strict = prefix_size(la, n, near_threshold, max_word_edits, edit_fraction,
                               containment_threshold, True) - 1  # fmt: skip
        # a reference text shorter than the row may be a phrase pair, which costs the row more
        k_loss = max(k_strict, phrase_loss(la, n, max_word_edits, edit_fraction))
        absent = own[r] - m
        probed = min(m, max(0, k_loss - absent) + EXTRA_PROBES)
        min_hits = max(1, probed - k_loss + absent)
        if min_hits > probed:
            probed = 0
        min_hits_strict = max(1, probed - k_strict + absent)
        n_cand = 0
        for o in range(probed):
            i = pos[order[o]]
            if n_cand + offsets[i + 1] - offsets[i] > len(cand):
                cand = _grow(cand, n_cand + offsets[i + 1] - offsets[i])
            for q in range(offsets[i], offsets[i + 1]):
                it = post_items[q]
                if hits[it] == 0:
                    cand[n_cand] = it
                    n_cand += 1
                hits[it] += 1
        # 2. Reference texts shorter than the row, through their own rarest n-grams (an eval
        # text inside a longer source, which the row's losses do not bound); the same count
        # applies with the text's own k (``prefix_need``). Postings are by length, and stop
        # where the containment rule stops (a length difference within ``allowed``): the
        # other rules' pairs miss few of the row's n-grams, so step 1 finds them.
        cut = la - allowed_edits(la, max_word_edits, edit_fraction)
        for o in range(m):
            p = key_prefix[pos[o]]
            if p < 0:
                continue
            if n_cand + prefix_offsets[p + 1] - prefix_offsets[p] > len(cand):
                cand = _grow(cand, n_cand + prefix_offsets[p + 1] - prefix_offsets[p])
            for q in range(prefix_offsets[p], prefix_offsets[p + 1]):
                it = prefix_items[q]
                if item_tok_off[it + 1] - item_tok_off[it] >= cut:
                    break
                if hits[it] == 0:
                    cand[n_cand] = it
                    n_cand += 1
                hits[it] += _PREFIX_HIT
        stats[0] += n_cand
        # 3. Align what survives: bit-parallel for rows of up to 64 words (as cheap as
        # counting shared n-grams); longer rows first count them against ``required_shared``
        bits = la <= 64
        wm = 0
        marked = False  # the row's match vectors, made at its first alignment: most rows have none
        if not bits:
            wm = _fill_set(rkeys, row_keys, row_vals)
        row_start = n_out
        for c in range(n_cand):
            it = cand[c]
            h = hits[it]
            hits[it] = 0
            low = h & (_PREFIX_HIT - 1)
            # most candidates fail even the looser count, and came through step 1 alone: they
            # are dropped before any other array of theirs is read
            if low < min_hits and (h < _PREFIX_HIT or h >> 32 < prefix_need[it]):
                continue
            lb = item_tok_off[it + 1] - item_tok_off[it]
            if low < min_hits_strict and lb >= la and (h < _PREFIX_HIT or h >> 32 < prefix_need[it]):
                continue
            if not answers_too and item_answer[it]:
                continue
            if _scope(src_rank[r], src_order[r], item_rank[it], item_order[it], allow) < 0:
                continue
            k0, k1 = item_key_off[it], item_key_off[it + 1]
            need = required_shared(own[r] if la <= lb else k1 - k0, la, lb, n, near_threshold,
                                   max_word_edits, edit_fraction, containment_threshold, min_cont,
                                   min_tokens)  # fmt: skip
            if need == NEVER:
                continue
            stats[1] += 1
            # The probed postings give the shared count of the probed n-grams exactly, so the
            # hits plus the present n-grams left unprobed bound the shared count from above:
            # against a true lower bound this drops most templated siblings (same frame, other
            # slot words, whose rare n-grams are the probed ones) before their alignment.
            if low + m - probed < shared_floor(need, own[r] if la <= lb else k1 - k0, la, lb, n,
                                               max_word_edits, edit_fraction, containment_threshold,
                                               min_cont):  # fmt: skip
                continue
            if (
                not bits
                and need > 0
                and _shared_count(row_keys, row_vals, wm, item_keys, k0, k1, need) < need
            ):
                continue
            stats[2] += 1
            t0, t1 = item_tok_off[it], item_tok_off[it + 1]
            if bits:
                if not marked:
                    _mark_words(words, vkeys, vvals, vmask, masks, ids)
                    marked = True
                matched = _lcs_bits(la, item_tok_id, t0, t1, masks)
            else:
                matched = lcs_length(words, item_tok[t0:t1], work)
            if matched == la and matched == lb:
                continue  # identical: the exact tier's
            code = near_rule_code(matched, la, lb, near_threshold, max_word_edits, edit_fraction,
                                  containment_threshold, min_cont, min_tokens)  # fmt: skip
            if code == RULE_NONE and phrase_possible(matched, la, lb, near_threshold, max_word_edits,
                                                     edit_fraction, min_tokens):  # fmt: skip
                shared = _merge_shared(rkeys, item_keys, k0, k1)
                if phrase_rule(matched, la, lb, len(rkeys) - shared, k1 - k0 - shared, n,
                               near_threshold, max_word_edits, edit_fraction, min_tokens):  # fmt: skip
                    code = RULE_PHRASE
            if code == RULE_NONE:
                continue
            if n_out == len(out_rows):
                out_rows = _grow(out_rows, n_out + 1)
                out_items = _grow(out_items, n_out + 1)
                out_rule = _grow(out_rule, n_out + 1)
                out_matched = _grow(out_matched, n_out + 1)
                out_score = _grow(out_score, n_out + 1)
            out_rows[n_out] = r
            out_items[n_out] = it
            out_rule[n_out] = code
            out_matched[n_out] = matched
            # the phrase rule's score is the similarity with the phrase counted as one word
            out_score[n_out] = 2.0 * matched / (la + lb) if code == RULE_SIMILARITY else matched / min(la, lb)
            n_out += 1
        if marked:
            _unmark_words(la, masks, ids)
        if n_out - row_start > max_matches:
            n_out = row_start + _keep_best(
                out_items[row_start:n_out],
                out_rule[row_start:n_out],
                out_matched[row_start:n_out],
                out_score[row_start:n_out],
                item_group,
                item_tiebreak,
                max_matches,
            )
    return (
        out_rows[:n_out],
        out_items[:n_out],
        out_rule[:n_out],
        out_matched[:n_out],
        out_score[:n_out],
        stats,
    )


@njit(cache=True)
def _keep_best(items, rule, matched, score, item_group, item_tiebreak, max_matches) -> int:
    """Keep the ``max_matches`` best pairs of each reference group, in place; returns how many
    remain. Among equal scores the lower ``item_tiebreak`` wins (``frame.best`` passes the
    report's order of eval ids), so which pairs are kept does not depend on the probing."""
    m = len(items)
    tie = np.empty(m, np.int64)
    for k in range(m):
        tie[k] = item_tiebreak[items[k]]
    first = np.argsort(tie, kind="mergesort")
    key = np.empty(m, np.float64)
    for k in range(m):
        # group first, then best score (scores lie in [0, 1]); the stable sort keeps the tie order
        key[k] = item_group[items[first[k]]] * 4.0 + (2.0 - score[first[k]])
    order = first[np.argsort(key, kind="mergesort")]
    it, ru, ma, sc = items[order], rule[order], matched[order], score[order]
    kept = 0
    run = 0
    for k in range(m):
        run = run + 1 if k > 0 and item_group[it[k]] == item_group[it[k - 1]] else 1
        if run <= max_matches:
            items[kept], rule[kept], matched[kept], score[kept] = it[k], ru[k], ma[k], sc[k]
            kept += 1
    return kept
