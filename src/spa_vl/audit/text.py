"""Text matching: an exact tier on normalised text and a near tier for short questions.

The near tier follows the n-gram decontamination of GPT-3 / datatrove, adapted to short
questions, with the prefix filter of set-similarity joins: word n-grams of the reference side
(eval sets, other splits) go into an inverted index; each source text probes only as many of
its rarest n-grams as a near copy could lose, plus the reference texts' own rarest n-grams (an
eval text inside a longer source). Candidates are then cut by an exact count of shared n-grams
and aligned word by word, in compiled code (``near_kernel``). Hashes are stable (FNV-1a with a
splitmix64 finish), never Python's salted ``hash``, so an index built in one process answers
queries from another.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from spa_vl.audit import near_kernel as K
from spa_vl.audit.settings import SCOPES, AuditSettings


def text_hash(normalized: str) -> int:
    """A stable 64-bit hash of a normalised text (the exact tier's key)."""
    return int(text_hashes([normalized])[0])


def text_hashes(normalized: Sequence[str]) -> np.ndarray:
    """``text_hash`` of each text, in one compiled pass (``encode_texts``)."""
    return encode_texts(normalized, 2).text_hash


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
        counts = np.zeros(len(hashes), np.int64)
        if len(self.keys):  # the right bounds only where a key is equal: few rows
            at = np.flatnonzero(present & (self.keys[np.minimum(lo, len(self.keys) - 1)] == hashes))
            counts[at] = np.searchsorted(self.keys, hashes[at], side="right") - lo[at]
        rows = np.repeat(np.arange(len(hashes)), counts)
        return rows, self.items[_expand(lo, counts)]


@dataclass(frozen=True)
class NearRule:
    """When two normalised texts are near copies (defaults: ``AuditSettings``).

    similarity = 2 * matched / (words of both), matched = the longest common subsequence of
    words; a pair is near by *similarity* when that is at least ``near_threshold`` and the
    longer text has at most max(``max_word_edits``, ``edit_fraction`` * its words) unmatched
    words, or by *containment* (texts of clearly different lengths, the shorter with at least
    ``min_containment_tokens`` words) when matched / words of the shorter text is at least
    ``containment_threshold``, or by the *phrase* rule (``near_kernel.phrase_rule``: a word
    replaced by up to three in one place, "how" -> "in what way"; reported as similarity,
    scored matched / words of the shorter text). Texts under ``min_tokens`` words are left to
    the exact tier.
    Built from ``AuditSettings``, which holds the defaults (``from_settings``).
    """

    n: int
    near_threshold: float
    max_word_edits: int
    edit_fraction: float
    containment_threshold: float
    min_containment_tokens: int
    min_tokens: int

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> NearRule:
        """The near tier's thresholds of ``settings``."""
        # here, not in settings.py: settings imports nothing of the audit package (no cycle).
        # The fields are the settings' names, but for n (ngram_size)
        return cls(n=settings.ngram_size, **{f.name: getattr(settings, f.name) for f in fields(cls)[1:]})

    def thresholds(self) -> tuple[float, int, float, float, int, int]:
        """Everything but ``n``, in the order the kernel's rule functions take them."""
        return (float(self.near_threshold), self.max_word_edits, float(self.edit_fraction),
                float(self.containment_threshold), self.min_containment_tokens, self.min_tokens)  # fmt: skip

    def judge(self, score: PairScore) -> str | None:
        """Which rule makes the pair a near match ("similarity", "containment"), or None."""
        near, edits, fraction, contained, min_cont, min_tokens = self.thresholds()
        a, b, m = score.source_words, score.reference_words, score.matched
        code = K.near_rule_code(m, a, b, near, edits, fraction, contained, min_cont, min_tokens)
        if code == K.RULE_NONE and score.words and K.phrase_possible(m, a, b, near, edits, fraction,
                                                                     min_tokens):  # fmt: skip
            ga, gb = (_ngrams(w, self.n) for w in score.words)
            shared = len(ga & gb)
            if K.phrase_rule(m, a, b, len(ga) - shared, len(gb) - shared, self.n, near, edits,
                             fraction, min_tokens):  # fmt: skip
                code = K.RULE_PHRASE
        return RULE_NAMES[code]

    def prefix_sizes(self, words: np.ndarray, similarity: bool = True) -> np.ndarray:
        """How many n-grams a text of ``words`` words must probe (``near_kernel.prefix_size``)."""
        near, edits, fraction, contained, _, _ = self.thresholds()
        return K.prefix_sizes(
            np.asarray(words, np.int64), self.n, near, edits, fraction, contained, similarity
        )


RULE_NAMES = (None, "similarity", "containment", "similarity")  # by rule code; phrase: similarity


def _ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass
class Encoded:
    """Normalised texts as the kernel takes them (CSR): words and sorted distinct n-grams,
    each a stable 64-bit hash, and a hash of each whole text for the exact tier."""

    text_hash: np.ndarray  # uint64 per text
    tok_off: np.ndarray  # int64, len(texts) + 1
    tok: np.ndarray  # uint64 word hashes
    key_off: np.ndarray  # int64, len(texts) + 1
    keys: np.ndarray  # uint64 n-gram keys, sorted and distinct within each text
    own: np.ndarray  # int64: distinct n-grams per text

    @property
    def words(self) -> np.ndarray:
        return np.diff(self.tok_off)


@dataclass
class NearPairs:
    """Near pairs of a batch, one entry each."""

    rows: np.ndarray
    items: np.ndarray
    rule: list[str]
    matched: np.ndarray
    similarity: np.ndarray
    containment: np.ndarray
    score: np.ndarray  # the similarity or the containment, by rule
    work: dict[str, int]  # candidates found, pairs whose shared n-grams were counted, aligned


@dataclass
class PairScope:
    """What the kernel needs to drop pairs outside the audited scopes, before aligning them.

    Per source row its split rank and order among the audited rows; per reference item the
    same, whether it is an answer, and its group (reference set) for the per-set cap."""

    src_rank: np.ndarray
    src_order: np.ndarray
    item_rank: np.ndarray
    item_order: np.ndarray
    item_answer: np.ndarray
    item_group: np.ndarray
    scopes: Sequence[str] = SCOPES
    answers_too: bool = False
    # per reference item, which of two equal scores the per-group cap keeps (the lower);
    # None: the lower item
    item_tiebreak: np.ndarray | None = None

    def allow(self) -> np.ndarray:
        return np.array([s in self.scopes for s in SCOPES], np.bool_)  # near_kernel._scope's order


@dataclass
class NGramIndex:
    """Inverted index from word n-gram keys to the reference texts holding them, with the
    reference texts themselves as word ids and sorted n-gram keys (for exact shared counts and
    the word alignment) and each text's rarest n-grams (its prefix)."""

    rule: NearRule
    texts: Encoded
    keys: np.ndarray  # uint64, sorted, unique
    # postings of keys[i] are items[offsets[i]:offsets[i + 1]]
    offsets: np.ndarray  # int64, len(keys) + 1
    items: np.ndarray  # int32
    # the reference side's own prefixes (each text's k + 1 rarest n-grams, k its containment
    # losses): an eval text inside a longer source shares all of them but k. Postings of
    # keys[i] are prefix_items[prefix_offsets[p]:prefix_offsets[p + 1]], p = key_prefix[i]
    # (-1: in no prefix), shortest text first
    key_prefix: np.ndarray  # int64, len(keys)
    prefix_offsets: np.ndarray  # int64
    prefix_items: np.ndarray  # int32
    prefix_need: np.ndarray  # int64 per text: prefix n-grams a longer source must hold
    # open-addressing map key -> position in keys (near_kernel.hash_table)
    table: tuple[np.ndarray, np.ndarray, int]
    # the reference words' vocabulary: a map word hash -> id, and each reference word's id
    # (the bit-parallel alignment reads a source text's match vectors by id)
    vocab_table: tuple[np.ndarray, np.ndarray, int]
    tok_id: np.ndarray  # int32, one per reference word
    word_sig: np.ndarray  # uint64, two per text (near_encode.word_signatures)

    @property
    def n(self) -> int:
        return self.rule.n

    @property
    def nbytes(self) -> int:
        t = self.texts
        arrays = (self.keys, self.offsets, self.items, self.key_prefix, self.prefix_offsets,
                  self.prefix_items, self.prefix_need, *self.table[:2], t.tok_off, t.tok, t.key_off,
                  t.keys, *self.vocab_table[:2], self.tok_id, self.word_sig)  # fmt: skip
        return int(sum(a.nbytes for a in arrays))

    @classmethod
    def build(cls, normalized: Sequence[str], rule: NearRule) -> NGramIndex:
        """Index the normalised reference texts."""
        enc = encode_texts(normalized, rule.n)
        words = enc.words
        owners = np.repeat(np.arange(len(normalized)), np.diff(enc.key_off))
        order = np.argsort(enc.keys, kind="stable")
        keys, owners = enc.keys[order], owners[order]
        keys, counts = np.unique(keys, return_counts=True)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # each text's rarest n-grams (by document frequency), then grouped by key, shortest
        # text first
        key_idx = np.repeat(np.arange(len(keys)), counts)
        order = np.lexsort((counts[key_idx], owners))
        p_idx, p_owners = key_idx[order], owners[order]
        rank = np.arange(len(p_owners)) - np.searchsorted(p_owners, p_owners, side="left")
        # k + 1 rarest plus EXTRA_PROBES - 1 more: a text inside a longer source misses at
        # most k of them, so holds at least (kept - k) (near_kernel.near_join). Only texts
        # long enough for the containment rule: shorter ones would be scanned by every longer
        # source that shares a common phrase, and dropped by length each time.
        k_loss = rule.prefix_sizes(words, similarity=False) - 1
        containable = words >= max(rule.min_containment_tokens, rule.min_tokens)
        keep = (rank < (k_loss + K.EXTRA_PROBES)[p_owners]) & containable[p_owners]
        p_idx, p_owners = p_idx[keep], p_owners[keep]
        kept = np.bincount(p_owners, minlength=len(words))
        prefix_need = np.maximum(1, kept - k_loss)
        order = np.lexsort((words[p_owners], p_idx))
        p_idx, p_owners = p_idx[order], p_owners[order]
        p_keys, p_counts = np.unique(p_idx, return_counts=True)
        key_prefix = np.full(len(keys), -1, np.int64)
        key_prefix[p_keys] = np.arange(len(p_keys))
        vocab, tok_id = np.unique(enc.tok, return_inverse=True)
        tok_id = tok_id.astype(np.int32)
        return cls(
            rule,
            enc,
            keys,
            offsets,
            owners.astype(np.int32),
            key_prefix,
            np.concatenate([[0], np.cumsum(p_counts)]).astype(np.int64),
            p_owners.astype(np.int32),
            prefix_need.astype(np.int64),
            K.hash_table(keys),
            K.hash_table(vocab),
            tok_id,
            K.word_signatures(enc.tok_off, tok_id),
        )

    def encode(self, normalized: Sequence[str]) -> Encoded:
        """The source side's texts, hashed as the reference side's were."""
        return encode_texts(normalized, self.n)

    def near_pairs(self, src: Encoded, scope: PairScope, max_matches: int) -> NearPairs:
        """Every near pair of the encoded texts with the reference side, within ``scope``; at
        most ``max_matches`` per text and reference group, the best first."""
        ref, r = self.texts, self.rule
        tiebreak = scope.item_tiebreak
        if tiebreak is None:
            tiebreak = np.arange(len(ref.tok_off) - 1)
        # The reference side goes in read-only, the batch writable, wherever they come from
        # (Ray hands out the shared index read-only): one compiled signature for every engine.
        rows, items, codes, matched, score, work = K.near_join(
            (src.tok_off, src.tok, src.key_off, src.keys, src.own,
             np.array(scope.src_rank, np.int64), np.array(scope.src_order, np.int64)),
            (*map(_frozen, self.table[:2]), self.table[2],
             *map(_frozen, (self.offsets, self.items, self.key_prefix, self.prefix_offsets,
                            self.prefix_items, self.prefix_need, ref.tok_off, ref.tok, ref.key_off,
                            ref.keys)), *map(_frozen, self.vocab_table[:2]), self.vocab_table[2],
             _frozen(self.tok_id), _frozen(self.word_sig)),
            (_frozen(scope.item_rank, np.int64), _frozen(scope.item_order, np.int64),
             _frozen(scope.item_answer, np.bool_), _frozen(scope.item_group, np.int64),
             scope.allow(), scope.answers_too, _frozen(tiebreak, np.int64)),
            (r.n, *r.thresholds()),
            max_matches,
        )  # fmt: skip
        la = np.diff(src.tok_off)[rows]
        lb = np.diff(ref.tok_off)[items]
        return NearPairs(
            rows,
            items,
            _RULE_OBJECTS[codes].tolist(),
            matched,
            2 * matched / np.maximum(la + lb, 1),
            matched / np.maximum(np.minimum(la, lb), 1),
            score,
            dict(zip(("candidates", "counted", "aligned"), work.tolist(), strict=True)),
        )


_RULE_OBJECTS = np.array(RULE_NAMES, object)


def _frozen(a: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """A read-only view (no copy when ``a`` has the dtype already)."""
    view = np.asarray(a, dtype).view()
    view.flags.writeable = False
    return view


def encode_texts(normalized: Sequence[str], n: int) -> Encoded:
    """Hash the words, n-grams and whole texts of normalised texts (``near_kernel.encode_texts``)."""
    if not len(normalized):
        empty = np.zeros(0, np.uint64)
        return Encoded(
            empty, np.zeros(1, np.int64), empty, np.zeros(1, np.int64), empty, np.zeros(0, np.int64)
        )
    data = "\n".join(normalized).encode()
    if data.count(b"\n") != max(len(normalized) - 1, 0):  # the kernel splits texts at newlines
        raise ValueError("encode_texts takes normalised texts (see normalize_text): one has a newline")
    return Encoded(*K.encode_texts(np.frombuffer(data, np.uint8), len(normalized), n))


def warm_up(on_slow: Callable[[], None] | None = None, after: float = 1.0) -> float:
    """Load the near tier's compiled kernels, or compile them on a machine's first audit
    (~30 s, then cached); returns the seconds it took. The CLI calls it before its progress
    bars, so that a first-run compile is not read as a slow audit.

    ``on_slow`` is called (from a timer thread) once ``after`` seconds have passed and the
    kernels are not ready: loading cached ones takes well under a second, so the caller can
    say that a compile is under way while it runs, not once it is over."""
    t0 = time.perf_counter()
    timer = None
    if on_slow is not None:
        timer = threading.Timer(after, on_slow)
        timer.daemon = True
        timer.start()
    try:
        index = NGramIndex.build(["a b c d e"], NearRule.from_settings(AuditSettings()))
        scope = PairScope(np.zeros(1, np.int64), np.full(1, -1), np.full(1, -1), np.full(1, -1),
                          np.zeros(1, bool), np.zeros(1, np.int64))  # fmt: skip
        index.near_pairs(index.encode(["a b c d e f"]), scope, 1)
    finally:
        if timer is not None:
            timer.cancel()
    return time.perf_counter() - t0


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
    # the words themselves, for the phrase rule's n-gram test (``NearRule.judge``)
    words: tuple[tuple[str, ...], tuple[str, ...]] | None = field(default=None, repr=False, compare=False)


def score_pair(source: str, reference: str, align: bool = True) -> PairScore:
    """Word overlap of two normalised texts: the longest common subsequence of their words, or
    with ``align=False`` the shared bag of words, an upper bound that is much cheaper.

    Plain Python, independent of the compiled kernel: the reference the kernel is tested
    against, and the all-pairs baseline of ``bench/audit_speed.py``."""
    a, b = source.split(), reference.split()
    if not a or not b:
        return PairScore(0.0, 0.0, 0, len(a), len(b))
    if align:
        matched = _lcs(a, b)
    else:
        sa, sb = set(a), set(b)
        if len(sa) == len(a) and len(sb) == len(b):  # no repeated word: sets are bags
            matched = len(sa & sb)
        else:
            matched = sum((Counter(a) & Counter(b)).values())
    return PairScore(2 * matched / (len(a) + len(b)), matched / min(len(a), len(b)), matched, len(a), len(b),
                     (tuple(a), tuple(b)))  # fmt: skip


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]
