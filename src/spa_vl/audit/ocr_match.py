"""The OCR tier's matching: recognised text against eval texts on the compact form (see
``ocr``): ``substring_distance`` (approximate substring edit distance, bit-parallel) and
``CharIndex`` (a character 4-gram index of the eval side that finds the candidates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spa_vl.audit.normalize import normalize_text

NGRAM = 4  # characters per n-gram of the candidate index
MAX_CANDIDATES = 64  # entries aligned per recognised text, at most (see CharIndex.search)


def compact_text(text: str | None) -> str:
    """The normalised text without spaces: what OCR output and typed text have in common."""
    return normalize_text(text).replace(" ", "")


def substring_distance(pattern: str, text: str) -> int:
    """Fewest character edits that turn ``pattern`` into some substring of ``text`` (Sellers'
    approximate matching, computed bit-parallel after Myers 1999 on Python integers)."""
    m = len(pattern)
    if m == 0:
        return 0
    peq: dict[str, int] = {}
    for i, c in enumerate(pattern):
        peq[c] = peq.get(c, 0) | (1 << i)
    mask, high = (1 << m) - 1, 1 << (m - 1)
    pv, mv, score = mask, 0, m
    best = m
    for c in text:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        # a match may start anywhere in the text: no carry into the first row
        ph = (ph << 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
        if score < best:
            best = score
    return best


@dataclass(frozen=True)
class OcrHit:
    """One match of a recognised text with a reference entry of a ``CharIndex``."""

    row: int
    entry: int
    exact: bool
    edits: int
    score: float


@dataclass
class CharIndex:
    """Reference texts in compact form, indexed by character 4-grams.

    Entry ``i`` is reference text ``ref_pos[i]`` of the ``AuditIndex`` (``ref_kind`` 0) or the
    recognised text of its reference image ``ref_pos[i]`` (``ref_kind`` 1, text in ``raw``).
    Keys are the n-gram strings themselves (Python's string hash differs between processes)."""

    compact: list[str]
    ref_kind: np.ndarray
    ref_pos: np.ndarray
    raw: list[str | None]
    postings: dict[str, np.ndarray] = field(default_factory=dict)
    grams: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def build(cls, entries: Sequence[tuple[int, int, str, str | None]], min_chars: int) -> CharIndex:
        """``entries``: (kind, position, text, recognised text or None); texts whose compact
        form is shorter than ``min_chars`` are left out (they would match by accident)."""
        compact, kinds, pos, raw = [], [], [], []
        for kind, p, text, rec in entries:
            c = compact_text(text)
            if len(c) >= max(min_chars, NGRAM):
                compact.append(c)
                kinds.append(kind)
                pos.append(p)
                raw.append(rec)
        lists: dict[str, list[int]] = {}
        grams = np.zeros(len(compact), np.int64)
        for i, c in enumerate(compact):
            gs = {c[k : k + NGRAM] for k in range(len(c) - NGRAM + 1)}
            grams[i] = len(gs)
            for g in gs:
                lists.setdefault(g, []).append(i)
        return cls(
            compact,
            np.array(kinds, np.int8),
            np.array(pos, np.int64),
            raw,
            {g: np.array(v, np.int32) for g, v in lists.items()},
            grams,
        )

    def __len__(self) -> int:
        return len(self.compact)

    def search(self, texts: Sequence[str | None], near_threshold: float) -> list[OcrHit]:
        """Every entry found in each recognised text, exactly or within the edit budget."""
        out: list[OcrHit] = []
        if not len(self):
            return out
        lengths = np.array([len(c) for c in self.compact], np.int64)
        budget = np.floor((1.0 - near_threshold) * lengths + 1e-9).astype(np.int64)
        # an entry found with d edits keeps all but at most NGRAM * d of its n-grams
        need = np.maximum(1, self.grams - NGRAM * budget)
        for row, text in enumerate(texts):
            c = compact_text(text)
            if len(c) < NGRAM:
                continue
            hits = [self.postings[g] for g in {c[k : k + NGRAM] for k in range(len(c) - NGRAM + 1)}
                    if g in self.postings]  # fmt: skip
            if not hits:
                continue
            shared = np.bincount(np.concatenate(hits), minlength=len(self))
            candidates = np.flatnonzero(shared >= need)
            if len(candidates) > MAX_CANDIDATES:
                # a page of text shares n-grams with most entries somewhere: check those with
                # the most of their n-grams present first (an entry in the text has them all)
                share = shared[candidates] / self.grams[candidates]
                candidates = candidates[np.argsort(-share, kind="stable")[:MAX_CANDIDATES]]
            for e in candidates.tolist():
                pattern = self.compact[e]
                if len(pattern) > len(c) + budget[e]:
                    continue
                if pattern in c:
                    out.append(OcrHit(row, e, True, 0, 1.0))
                    continue
                d = substring_distance(pattern, c)
                if d <= budget[e]:
                    out.append(OcrHit(row, e, False, d, round(1.0 - d / len(pattern), 4)))
        return out
