"""Text normalisation shared by both sides of the audit.

Two strings that a reader would call "the same question" must normalise to the same string:
Unicode compatibility forms, case, punctuation, spacing, and the wrappers that safety datasets
put around questions ("Rewritten Question:", "Human:", "<image>", surrounding quotes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
from numba import njit

# Placeholders that chat formats put into the question text (LLaVA's "<image>", etc.).
_PLACEHOLDERS = re.compile(r"<\s*/?\s*(?:image|img|video)\s*>", re.IGNORECASE)
# Role and field labels seen at the start of questions in safety data sets; applied repeatedly
# ("Human: Question: ...").
_LEADING = re.compile(
    r"^\s*(?:rewritten question|rephrased question|changed question|original question|question"
    r"|q|user|human|prompt|instruction|query|input|request)\s*\d*\s*[:：]\s*",
    re.IGNORECASE,
)
# A trailing role turn left by a chat template ("... Assistant:").
_TRAILING = re.compile(r"\s*(?:assistant|gpt|answer|response)\s*[:：]\s*$", re.IGNORECASE)
# Apostrophes and hyphens inside a word join it ("what's" = "whats", "step-by-step" =
# "stepbystep"): copies with punctuation stripped must still match.
_JOINERS = re.compile(r"(?<=\w)['’‘`\-‐‑–]+(?=\w)")
# Dotted abbreviations are one word: "U.S." = "US" = "us", "e.g." = "eg" (single letters joined
# by dots, the last dot optional); otherwise "U.S." would be two one-letter words.
_ABBREVIATION = re.compile(r"\b[A-Za-z](?:\.[A-Za-z])+\b\.?")
_DOT_LETTER = re.compile(r"\.[A-Za-z]")  # a cheap test first: a sentence's end is ". " or "."
# Everything else that is not a letter or digit separates words; "_" counts as punctuation.
_NON_WORD = re.compile(r"[\W_]+")


def _join_abbreviations(text: str) -> str:
    if not _DOT_LETTER.search(text):
        return text
    return _ABBREVIATION.sub(lambda m: m.group().replace(".", ""), text)


def strip_wrappers(text: str) -> str:
    """Remove placeholders and leading/trailing role or field labels."""
    if "<" in text:
        text = _PLACEHOLDERS.sub(" ", text)
    while True:
        stripped = _LEADING.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return _TRAILING.sub("", text) if ":" in text or "：" in text else text


# The same mapping for pure-ASCII text, as one bytes.translate: letters lower-cased, joiners
# deleted, every other punctuation mark or control character a space. Deleting a joiner that
# is not inside a word changes nothing once whitespace is collapsed, so both paths give the
# same result (tests/audit/test_normalize.py).
_ASCII_TABLE = bytes(c if c >= 128 else ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(256))
_ASCII_JOINERS = b"'-`"


def normalize_text(text: str | None) -> str:
    """NFKC, wrappers removed, dotted abbreviations joined, case-folded, punctuation to
    spaces, whitespace collapsed."""
    if not text:
        return ""
    if text.isascii():  # the common case: NFKC is the identity and the table does the rest
        if ":" in text or "<" in text:  # every wrapper has one
            text = strip_wrappers(text)
        if "." in text:
            text = _join_abbreviations(text)
        return b" ".join(text.encode().translate(_ASCII_TABLE, _ASCII_JOINERS).split()).decode()
    return _normalize_unicode(text)


def _normalize_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _JOINERS.sub("", _join_abbreviations(strip_wrappers(text)).casefold())
    return " ".join(_NON_WORD.sub(" ", text).split())


# the ASCII table as int16 for the compiled batch pass: -1 deletes (a joiner)
_BATCH_TABLE = np.array([-1 if c in _ASCII_JOINERS else t for c, t in enumerate(_ASCII_TABLE)], np.int16)


@njit(cache=True, nogil=True)
def _collapse(data: np.ndarray, table: np.ndarray, sep: int, n: int):
    """Texts joined by ``sep``, through ``table`` (-1 deletes), runs of spaces collapsed and
    stripped at each text's ends: the bytes without separators, and where each text ends."""
    out = np.empty(len(data), np.uint8)
    ends = np.empty(n, np.int64)
    j = start = t = 0
    pending = False
    for b in data:
        if b == sep:
            ends[t] = j
            t += 1
            start = j
            pending = False
            continue
        c = table[b]
        if c < 0:
            continue
        if c == 32:
            pending = j > start
            continue
        if pending:
            out[j] = 32
            j += 1
            pending = False
        out[j] = c
        j += 1
    ends[t] = j
    return out[:j], ends


def normalize_texts(texts: Sequence[str | None]) -> list[str]:
    """``normalize_text`` of each text. The ASCII ones (the common case), their wrappers
    stripped, are joined by a NUL that no text holds; the abbreviations are joined and the
    table applied over the whole batch at once (the latter in one compiled pass): a call per
    text cost ~0.7 us more than the work (issue 16)."""
    out = [""] * len(texts)
    at, parts = [], []
    for k, text in enumerate(texts):
        if not text:
            continue
        if not text.isascii():
            out[k] = _normalize_unicode(text)
            continue
        if ":" in text or "<" in text:
            text = strip_wrappers(text)
        at.append(k)
        parts.append(text)
    if not parts:
        return out
    joined = "\0".join(parts)
    if joined.count("\0") != len(parts) - 1:  # a text holds a NUL itself
        for k in at:
            out[k] = normalize_text(texts[k])
        return out
    if "." in joined:  # the NUL is a word boundary, as a text's ends are: the same joins
        joined = _join_abbreviations(joined)
    data, ends = _collapse(np.frombuffer(joined.encode(), np.uint8), _BATCH_TABLE, 0, len(parts))
    flat = data.tobytes().decode()
    start = 0
    for k, end in zip(at, ends.tolist(), strict=True):
        out[k] = flat[start:end]
        start = end
    return out
