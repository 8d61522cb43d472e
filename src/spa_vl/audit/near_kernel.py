"""The near tier's inner loop, compiled with numba: candidates, bounds and word alignment.

For each source text the kernel probes the n-gram postings of the reference side (its own
rarest n-grams, then every n-gram against the reference texts' own prefixes), drops pairs by
scope, length and an exact count of shared n-grams, aligns the survivors word by word (longest
common subsequence of word ids) and applies the near rule. Everything a pair needs is an array;
nothing is allocated per pair. ``cache=True`` keeps the compiled code beside this file (or in
numba's user cache when that is read-only), so only the first process pays the compile.

The scalar rules (``near_rule_code``, ``required_shared``, ``prefix_size``) are in
``near_rules``, the hashing in ``near_encode``; this module re-exports both.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spa_vl.audit.near_encode import (
    _fill_set,
    _get,
    encode_texts,
    hash_table,
    ngram_keys,
    row_signature,
    word_signatures,
)
from spa_vl.audit.near_rules import (
    EXTRA_PROBES,
    NEVER,
    RULE_CONTAINMENT,
    RULE_NONE,
    RULE_PHRASE,
    RULE_SIMILARITY,
    allowed_edits,
    least_matched,
    near_rule_code,
    phrase_loss,
    phrase_possible,
    phrase_rule,
    prefix_size,
    prefix_sizes,
    required_shared,
    shared_floor,
)
from spa_vl.audit.scopes import scope_code

# a candidate's hits: through the row's n-grams in the low 32 bits, through its own prefix
# above (either count is at most the row's n-grams, far below 2 ** 31)
_PREFIX_HIT = 1 << 32

# the rules and the hashing live apart; their names stay importable from here
__all__ = ["EXTRA_PROBES", "NEVER", "RULE_CONTAINMENT", "RULE_NONE", "RULE_PHRASE", "RULE_SIMILARITY",
           "encode_texts", "hash_table", "lcs_length", "near_join", "near_rule_code", "ngram_keys",
           "phrase_possible", "phrase_rule", "prefix_sizes", "word_signatures"]  # fmt: skip


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
def _mark_words(la: int, ids: np.ndarray, masks: np.ndarray) -> None:
    """For a text of at most 64 words, given its words' vocabulary ids (``row_signature``; -1
    for a word the reference side lacks): set ``masks[id]`` to the bit mask of the positions
    of each word: the bit-parallel LCS's match vectors, read by vocabulary id, one load a word."""
    for i in range(la):
        if ids[i] >= 0:
            masks[ids[i]] |= np.uint64(1) << np.uint64(i)


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
    postings, prefix postings and hits needed, the texts' words, keys and word signatures).
    ``scope`` = (item rank, item order, item is an answer, item group, allowed scopes, answers
    too, tie-break rank). ``rule`` = the thresholds of ``NearRule``. Identical texts are left
    to the exact tier. Per row and item group (reference set) at most ``max_matches`` pairs are
    kept, the best first.

    One long function on purpose: split into per-row helpers (tuples of arrays in and out,
    inlined or not), the same join ran ~25% slower (bench/README.md, issue 16).
    """
    tok_off, tok, key_off, skeys, own, src_rank, src_order = src
    (tkeys, tvals, tmask, offsets, post_items, key_prefix, prefix_offsets, prefix_items, prefix_need,
     item_tok_off, item_tok, item_key_off, item_keys, vkeys, vvals, vmask, item_tok_id,
     item_sig) = ref  # fmt: skip
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
    seen = np.full(longest + 1, -1, np.int64)  # the row whose losses loss_*[lb] hold
    loss_need = np.zeros(longest + 1, np.int64)
    loss_floor = np.zeros(longest + 1, np.int64)
    least = np.zeros(longest + 1, np.int64)  # fewest aligned words a rule accepts, by lb
    pos = np.empty(longest + 1, np.int64)
    df = np.empty(longest + 1, np.int64)
    order_buf = np.empty(longest + 1, np.int64)
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
        # the order a stable sort gives: by insertion into a reused buffer for the short rows
        # that most are (no allocation per row), numpy's merge sort for long ones
        if m <= 64:
            for a in range(m):
                d = df[a]
                b = a
                while b > 0 and df[order_buf[b - 1]] > d:
                    order_buf[b] = order_buf[b - 1]
                    b -= 1
                order_buf[b] = a
            order = order_buf
        else:
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
        signed = False  # the row's word signature, made when first needed
        sig_low = np.uint64(0)
        sig_high = np.uint64(0)
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
            if scope_code(src_rank[r], src_order[r], item_rank[it], item_order[it], allow) < 0:
                continue
            k0, k1 = item_key_off[it], item_key_off[it + 1]
            # both bounds are the shorter text's n-grams less a loss that depends on the two
            # lengths alone: computed once per row and reference length
            if seen[lb] != r:
                seen[lb] = r
                loss_need[lb] = required_shared(0, la, lb, n, near_threshold, max_word_edits,
                                                edit_fraction, containment_threshold, min_cont,
                                                min_tokens)  # fmt: skip
                loss_floor[lb] = shared_floor(loss_need[lb], 0, la, lb, n, max_word_edits,
                                              edit_fraction, containment_threshold, min_cont)  # fmt: skip
                least[lb] = least_matched(la, lb, near_threshold, max_word_edits, edit_fraction,
                                          containment_threshold, min_cont, min_tokens)  # fmt: skip
            if loss_need[lb] >= NEVER // 2:
                continue
            short_own = own[r] if la <= lb else k1 - k0
            need = short_own + loss_need[lb]
            stats[1] += 1
            # The probed postings give the shared count of the probed n-grams exactly, so the
            # hits plus the present n-grams left unprobed bound the shared count from above:
            # against a true lower bound this drops most templated siblings (same frame, other
            # slot words, whose rare n-grams are the probed ones) before their alignment.
            if low + m - probed < short_own + loss_floor[lb]:
                continue
            # The reference words the row lacks, counted by signature bits (a lower bound),
            # cannot be aligned: drops most siblings that differ in two or more words, before
            # their words are read (near_encode.word_signatures)
            if not signed:
                sig_low, sig_high = row_signature(words, vkeys, vvals, vmask, ids)
                signed = True
            lacked = _popcount(item_sig[2 * it] & ~sig_low) + _popcount(item_sig[2 * it + 1] & ~sig_high)
            if lb - lacked < least[lb]:
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
                    _mark_words(la, ids, masks)  # ids: from row_signature, above
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
