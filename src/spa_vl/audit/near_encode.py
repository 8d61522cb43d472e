"""Hashing for the near tier, compiled with numba: normalised texts to word and n-gram hashes
(stable FNV-1a with a splitmix64 finish), and the open-addressing tables the join probes."""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# odd 64-bit multipliers that mix word ids into one n-gram key (wrapping arithmetic)
MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9],
    dtype=np.uint64,
)  # fmt: skip


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
        if w - start <= 32:  # insertion sort in place: no allocation for the short texts most are
            for j in range(start + 1, w):
                x = keys[j]
                b = j
                while b > start and keys[b - 1] > x:
                    keys[b] = keys[b - 1]
                    b -= 1
                keys[b] = x
        else:
            keys[start:w].sort()
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


# Word signatures: 128 bits a text, one bit (of a hash of the word's vocabulary id) set per
# word. A bit of a reference text's signature that the source text's lacks is a reference word
# the source does not have: the count of such bits bounds the aligned words from above without
# reading the reference text's words (near_join drops most templated siblings so).
@njit(cache=True)
def _signature_bit(word_id) -> int:
    return int((np.uint64(word_id) * _GOLDEN) >> np.uint64(57))  # the top 7 bits: 0..127


@njit(cache=True)
def word_signatures(tok_off: np.ndarray, tok_id: np.ndarray) -> np.ndarray:
    """Each text's signature as two uint64 words (its words ``tok_id[tok_off[i]:tok_off[i + 1]]``)."""
    n = len(tok_off) - 1
    out = np.zeros(2 * n, np.uint64)
    for i in range(n):
        for k in range(tok_off[i], tok_off[i + 1]):
            b = _signature_bit(tok_id[k])
            out[2 * i + (b >> 6)] |= np.uint64(1) << np.uint64(b & 63)
    return out


@njit(cache=True)
def row_signature(
    words: np.ndarray, vkeys: np.ndarray, vvals: np.ndarray, vmask: int, ids: np.ndarray
) -> tuple:
    """The signature of a source text (word hashes) over the reference vocabulary (a word the
    reference side lacks has no bit: no reference word can match it); ``ids[i]`` is set to
    word i's vocabulary id, -1 if none (the alignment's match vectors are made from them)."""
    low = np.uint64(0)
    high = np.uint64(0)
    for i in range(len(words)):
        v = _get(vkeys, vvals, vmask, words[i])
        ids[i] = v
        if v >= 0:
            b = _signature_bit(v)
            if b < 64:
                low |= np.uint64(1) << np.uint64(b)
            else:
                high |= np.uint64(1) << np.uint64(b - 64)
    return low, high
