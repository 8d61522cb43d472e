"""Text matching: an exact tier on normalised text and a near tier for short questions.

The near tier follows the n-gram decontamination of GPT-3 / datatrove, adapted to short
questions: word n-grams of the reference side (eval sets, other splits) go into an inverted
index; a source text's n-grams are looked up in bulk with numpy to find candidates, and only
candidates are scored word by word. Hashes are stable (blake2b, fixed multipliers), never
Python's salted ``hash``, so an index built in one process answers queries from another.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

# Odd 64-bit multipliers that mix word ids into one n-gram key (wrapping arithmetic).
_MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x94D049BB133111EB,
        0xBF58476D1CE4E5B9,
    ],
    dtype=np.uint64,
)

PairFilter = Callable[[np.ndarray, np.ndarray], np.ndarray]
Plausible = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def text_hash(normalized: str) -> int:
    """A stable 64-bit hash of a normalised text (the exact tier's key)."""
    return int.from_bytes(hashlib.blake2b(normalized.encode(), digest_size=8).digest(), "little")


def text_hashes(normalized: Sequence[str]) -> np.ndarray:
    return np.fromiter((text_hash(s) for s in normalized), dtype=np.uint64, count=len(normalized))


@dataclass
class ExactIndex:
    """Sorted hashes of the reference texts; empty texts are left out."""

    keys: np.ndarray  # uint64, sorted
    items: np.ndarray  # int64, the reference item of each key

    @classmethod
    def build(cls, hashes: np.ndarray, present: np.ndarray) -> ExactIndex:
        items = np.flatnonzero(present)
        order = np.argsort(hashes[items], kind="stable")
        return cls(hashes[items][order], items[order])

    def lookup(self, hashes: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All (source row, reference item) pairs with equal hashes."""
        lo = np.searchsorted(self.keys, hashes, side="left")
        hi = np.searchsorted(self.keys, hashes, side="right")
        counts = np.where(present, hi - lo, 0)
        rows = np.repeat(np.arange(len(hashes)), counts)
        return rows, self.items[_expand(lo, counts)]


@dataclass
class NGramIndex:
    """Inverted index from word n-gram keys to the reference items holding them.

    Candidate search is a prefix filter (as in set-similarity joins): a pair that can pass the
    near rule shares all but a bounded number ``k`` of the source text's n-grams, so probing
    any ``k + 1`` of them finds it. A source text probes its ``k + 1`` rarest n-grams, plus all
    of those in at most ``max_df`` reference texts (for the eval text inside a longer source);
    n-grams it does not probe are counted for the candidates only, through hashed
    (item, n-gram) pairs, so the shared counts stay exact while template phrases in thousands
    of texts are never expanded.
    """

    n: int
    vocab: dict[str, int]
    keys: np.ndarray  # uint64, sorted, unique
    # postings of keys[i] are items[offsets[i]:offsets[i + 1]]
    offsets: np.ndarray  # int64, len(keys) + 1
    items: np.ndarray  # int32
    item_words: np.ndarray  # int32: words per reference item
    item_ngrams: np.ndarray  # int32: distinct n-grams per reference item
    pairs: np.ndarray  # uint64, sorted: _pair_code(item, key) of every (item, n-gram)
    max_df: int
    # the reference side's own prefixes (each item's k + 1 rarest n-grams): an eval text inside
    # a longer source shares all of them but k, so probing every source n-gram here finds it
    prefix_keys: np.ndarray  # uint64, sorted, unique
    prefix_offsets: np.ndarray  # int64
    prefix_items: np.ndarray  # int32

    @property
    def pruned(self) -> int:
        """N-grams too frequent to be probed unless they are among a text's rarest."""
        return int((np.diff(self.offsets) > self.max_df).sum())

    @classmethod
    def build(
        cls,
        normalized: Sequence[str],
        n: int,
        max_df: int,
        prefix: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> NGramIndex:
        """Index ``normalized`` texts; ``prefix(words)`` sizes the reference-side prefixes
        (None: every n-gram, the safe and slow choice)."""
        vocab: dict[str, int] = {}
        for text in normalized:
            for tok in text.split():
                vocab.setdefault(tok, len(vocab))
        empty_u, empty_i = np.zeros(0, np.uint64), np.zeros(0, np.int32)
        index = cls(n, vocab, empty_u, np.zeros(1, np.int64), empty_i, empty_i, empty_i,
                    empty_u, max_df, empty_u, np.zeros(1, np.int64), empty_i)  # fmt: skip
        keys, owners, words, distinct = index.encode(normalized)
        index.item_words = words.astype(np.int32)
        index.item_ngrams = distinct.astype(np.int32)
        index.pairs = np.sort(_pair_code(owners, keys))
        order = np.argsort(keys, kind="stable")
        keys, owners = keys[order], owners[order]
        index.keys, counts = np.unique(keys, return_counts=True)
        index.items = owners.astype(np.int32)
        index.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # each item's rarest n-grams
        df = np.repeat(counts, counts)
        order = np.lexsort((df, owners))
        p_keys, p_owners = keys[order], owners[order]
        rank = np.arange(len(p_owners)) - np.searchsorted(p_owners, p_owners, side="left")
        sizes = prefix(words) if prefix is not None else words
        keep = rank < sizes[p_owners]
        p_keys, p_owners = p_keys[keep], p_owners[keep]
        order = np.argsort(p_keys, kind="stable")
        index.prefix_keys, p_counts = np.unique(p_keys[order], return_counts=True)
        index.prefix_items = p_owners[order].astype(np.int32)
        index.prefix_offsets = np.concatenate([[0], np.cumsum(p_counts)]).astype(np.int64)
        return index

    def encode(self, normalized: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Distinct n-gram keys of each text: (keys, owner row, words per row, distinct n-grams
        per row, unknown ones included).

        Words outside the reference vocabulary make n-grams that cannot match: no key.
        """
        get = self.vocab.get
        # normalised texts are single-spaced: counting spaces is cheaper than splitting each
        lengths = np.fromiter((s.count(" ") + 1 if s else 0 for s in normalized), np.int64, len(normalized))
        flat = np.array([get(t, -1) for t in " ".join(normalized).split()], np.int64)
        n = self.n
        per_row = np.maximum(lengths - n + 1, 0)
        if per_row.sum() == 0:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64), lengths, per_row
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        owner = np.repeat(np.arange(len(lengths)), per_row)
        pos = starts[owner] + (np.arange(len(owner)) - np.repeat(np.cumsum(per_row) - per_row, per_row))
        padded = np.concatenate([flat, np.full(n, -1, np.int64)])
        known = np.ones(len(pos), bool)
        keys = np.zeros(len(pos), np.uint64)
        for k in range(n):
            ids = padded[pos + k]
            known &= ids >= 0
            keys += ids.astype(np.uint64) * _MIX[k % len(_MIX)] + np.uint64(k)
        unknown = np.bincount(owner[~known], minlength=len(lengths))
        keys, owner = keys[known], owner[known]
        # distinct (owner, key) pairs: a repeated phrase counts once
        order = np.lexsort((keys, owner))
        keys, owner = keys[order], owner[order]
        first = np.ones(len(keys), bool)
        first[1:] = (keys[1:] != keys[:-1]) | (owner[1:] != owner[:-1])
        keys, owner = keys[first], owner[first]
        distinct = np.bincount(owner, minlength=len(lengths)) + unknown
        return keys, owner, lengths, distinct

    def candidates(
        self,
        normalized: Sequence[str],
        plausible: Plausible,
        prefix: Callable[[np.ndarray], np.ndarray],
        max_candidates: int,
        pair_filter: PairFilter | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source row, reference item, shared n-grams) for the best candidates of each row.

        ``prefix(words)`` is how many n-grams a row must probe (k + 1, see the class
        docstring); ``plausible(shared, source_words, reference_words, own)`` (own: distinct
        n-grams of the shorter text) drops pairs that cannot pass the scoring rules, in bulk,
        before any pair is scored in Python.
        """
        keys, owner, words, distinct = self.encode(normalized)
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        if len(keys) == 0 or len(self.keys) == 0:
            return empty
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        hit = self.keys[pos] == keys
        keys, owner, pos = keys[hit], owner[hit], pos[hit]
        df = self.offsets[pos + 1] - self.offsets[pos]
        # the rarest first within each row
        order = np.lexsort((df, owner))
        keys, owner, pos, df = keys[order], owner[order], pos[order], df[order]
        rank = np.arange(len(owner)) - np.searchsorted(owner, owner, side="left")
        probe = (df <= self.max_df) | (rank < prefix(words)[owner])
        rows = np.repeat(owner[probe], df[probe])
        items = self.items[_expand(self.offsets[pos[probe]], df[probe])].astype(np.int64)
        # ... and every n-gram against the reference-side prefixes
        ppos = np.minimum(np.searchsorted(self.prefix_keys, keys), max(len(self.prefix_keys) - 1, 0))
        phit = self.prefix_keys[ppos] == keys if len(self.prefix_keys) else np.zeros(len(keys), bool)
        pcount = self.prefix_offsets[ppos[phit] + 1] - self.prefix_offsets[ppos[phit]]
        prows = np.repeat(owner[phit], pcount)
        pitems = self.prefix_items[_expand(self.prefix_offsets[ppos[phit]], pcount)].astype(np.int64)
        # the prefixes serve one case: the reference text the shorter one, inside the source
        ref_len = self.item_words[pitems].astype(np.int64)
        big = np.full(len(prows), 1 << 30)
        keep = (ref_len < words[prows]) & plausible(big, words[prows], ref_len, big)
        prows, pitems = prows[keep], pitems[keep]
        if pair_filter is not None:
            if len(rows):
                keep = pair_filter(rows, items)
                rows, items = rows[keep], items[keep]
            if len(prows):
                keep = pair_filter(prows, pitems)
                prows, pitems = prows[keep], pitems[keep]
        if len(rows) == 0 and len(prows) == 0:
            return empty
        n_items = len(self.item_words)
        codes, shared = np.unique(rows * n_items + items, return_counts=True)
        # pairs found only through the prefixes share none of the probed n-grams (the probe
        # would have found them): their count starts at 0
        extra = np.setdiff1d(prows * n_items + pitems, codes)
        codes = np.concatenate([codes, extra])
        shared = np.concatenate([shared, np.zeros(len(extra), shared.dtype)])
        rows, items = codes // n_items, codes % n_items
        src_words, ref_words = words[rows], self.item_words[items].astype(np.int64)
        own = np.where(src_words <= ref_words, distinct[rows], self.item_ngrams[items])
        rest_keys, rest_owner = keys[~probe], owner[~probe]  # sorted by owner
        if len(rest_keys):
            # first with every unprobed n-gram of the row counted as shared (an upper bound,
            # free), then exactly for the pairs that survive
            n_rest = np.bincount(rest_owner, minlength=len(words))[rows]
            keep = plausible(shared + n_rest, src_words, ref_words, own)
            rows, items, shared = rows[keep], items[keep], shared[keep]
            src_words, ref_words, own = src_words[keep], ref_words[keep], own[keep]
            shared = shared + self._shared_rest(rows, items, rest_keys, rest_owner, len(words))
        keep = plausible(shared, src_words, ref_words, own)
        rows, items, shared = rows[keep], items[keep], shared[keep]
        # best first within each row, then at most max_candidates per row
        order = np.lexsort((-shared, rows))
        rows, items, shared = rows[order], items[order], shared[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
        keep = rank < max_candidates
        return rows[keep], items[keep], shared[keep]

    def _shared_rest(self, rows, items, rest_keys, rest_owner, n_rows) -> np.ndarray:
        """For each candidate pair, how many of the row's unprobed n-grams the item holds."""
        per_row = np.bincount(rest_owner, minlength=n_rows)
        starts = np.concatenate([[0], np.cumsum(per_row)[:-1]])
        counts = per_row[rows]
        pair = np.repeat(np.arange(len(rows)), counts)
        codes = _pair_code(items[pair], rest_keys[_expand(starts[rows], counts)])
        pos = np.minimum(np.searchsorted(self.pairs, codes), len(self.pairs) - 1)
        return np.bincount(pair[self.pairs[pos] == codes], minlength=len(rows))


def _pair_code(items: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """One 64-bit code per (item, n-gram key); a collision only adds a candidate to score."""
    return keys ^ (items.astype(np.uint64) * np.uint64(0xA24BAED4963EE407) + np.uint64(1))


def _expand(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate the ranges [starts[i], starts[i] + counts[i]) without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total)


@dataclass(frozen=True)
class PairScore:
    """How two normalised texts overlap, word by word."""

    similarity: float  # 2 * matched / (len(a) + len(b))
    containment: float  # matched / min(len(a), len(b))
    matched: int
    source_words: int
    reference_words: int


def score_pair(source: str, reference: str, align: bool = True) -> PairScore:
    """Word overlap of two normalised texts: the aligned words (difflib's matching blocks), or
    with ``align=False`` the shared bag of words, an upper bound that is ten times cheaper."""
    a, b = source.split(), reference.split()
    if not a or not b:
        return PairScore(0.0, 0.0, 0, len(a), len(b))
    if align:
        blocks = SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
        matched = sum(block.size for block in blocks)
    else:
        sa, sb = set(a), set(b)
        if len(sa) == len(a) and len(sb) == len(b):  # no repeated word: sets are bags
            matched = len(sa & sb)
        else:
            matched = sum((Counter(a) & Counter(b)).values())
    return PairScore(2 * matched / (len(a) + len(b)), matched / min(len(a), len(b)), matched, len(a), len(b))


def plausible_pairs(
    shared: np.ndarray,
    source_words: np.ndarray,
    reference_words: np.ndarray,
    own: np.ndarray,
    n: int,
    candidate_fraction: float,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    min_containment_tokens: int,
    min_tokens: int,
) -> np.ndarray:
    """Pairs that ``near_rule`` could accept, judged from lengths and shared n-grams alone.

    ``own`` is the number of distinct n-grams of the shorter text. It loses at most n n-grams
    per unmatched word of its own, and n - 1 per gap
    where the longer text has words in between. Under the similarity rule both texts have at
    most ``allowed`` unmatched words, so shared >= own - (2n - 1) * allowed. The containment
    rule allows any text before or after the shorter one (it breaks nothing) and up to
    ``max_word_edits + 1`` insertions inside it: shared >= own - n * unmatched -
    (n - 1) * (max_word_edits + 1); and at least ``candidate_fraction`` of its n-grams.
    More scattered insertions than that may be missed: the price of not scoring every pair
    that shares an n-gram.
    """
    short = np.minimum(source_words, reference_words)
    long = np.maximum(source_words, reference_words)
    allowed = np.maximum(max_word_edits, (edit_fraction * long).astype(np.int64))
    similar = (
        (long - short <= allowed)
        & (2 * short >= near_threshold * (short + long))
        & (shared >= own - (2 * n - 1) * allowed)
    )
    unmatched = ((1 - containment_threshold) * short).astype(np.int64)
    contained = (
        (short >= min_containment_tokens)
        & (long - short > allowed)
        & (shared >= candidate_fraction * own)
        & (shared >= own - n * unmatched - (n - 1) * (max_word_edits + 1))
    )
    return (short >= min_tokens) & (similar | contained)


def prefix_sizes(
    words: np.ndarray,
    n: int,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    similarity: bool = True,
) -> np.ndarray:
    """How many n-grams a source text of ``words`` words must probe: one more than it can
    lose to a pair that ``near_rule`` accepts (see ``plausible_pairs`` for the losses).

    Under the similarity rule the other text has at most words / (1 - edit_fraction) +
    max_word_edits words, which bounds ``allowed``; under the containment rule with this text
    the shorter one, it loses n per unmatched word and n - 1 per inner gap. With
    ``similarity=False`` only the containment bound counts (the reference-side prefixes, which
    serve the eval text inside a longer source).
    """
    # long - short <= allowed ~ edit_fraction * long, so long <= words / (1 - edit_fraction) + edits
    longest = (words / max(1 - edit_fraction, 1e-9)).astype(np.int64) + max_word_edits + 1
    allowed = np.maximum(max_word_edits, (edit_fraction * longest).astype(np.int64))
    similar = (2 * n - 1) * allowed
    unmatched = ((1 - containment_threshold) * words).astype(np.int64)
    contained = n * unmatched + (n - 1) * (max_word_edits + 1)
    return (np.maximum(similar, contained) if similarity else contained) + 1


def near_rule(
    score: PairScore,
    near_threshold: float,
    max_word_edits: int,
    edit_fraction: float,
    containment_threshold: float,
    min_containment_tokens: int,
    min_tokens: int,
) -> str | None:
    """Which rule makes the pair a near match ("similarity", "containment"), or None."""
    shorter = min(score.source_words, score.reference_words)
    if shorter < min_tokens:
        return None
    longer = max(score.source_words, score.reference_words)
    allowed = max(max_word_edits, int(edit_fraction * longer))
    if score.similarity >= near_threshold and longer - score.matched <= allowed:
        return "similarity"
    # containment is for texts of clearly different lengths (a truncation, an added sentence);
    # between texts of about the same length the similarity rule is the judge
    if (
        shorter >= min_containment_tokens
        and longer - shorter > allowed
        and score.containment >= containment_threshold
    ):
        return "containment"
    return None
