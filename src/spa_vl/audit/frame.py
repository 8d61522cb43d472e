"""Match rows as columns: what each tier of ``core.match_batch`` returns, ordered and capped
in numpy, and turned into Python values only for the rows kept.

A tier builds one ``Frame``: per match its source row, reference kind and item, scope,
method, score and rule as arrays, plus any value the reference columns do not hold (an OCR
match's text). ``best`` concatenates the frames, sorts them once by integer ranks that order
as ``core.match_order`` orders the strings, caps each group and only then reads the strings
of the rows it keeps. (One dict per match cost more than the near join itself on templated
text: issue 16.)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spa_vl.audit.scopes import SCOPE_NAMES

# reference kinds: the index's texts, images and eval images read by OCR
TEXTS, IMAGES, OCR_IMAGES = 0, 1, 2
SCOPE_SORT = np.argsort(np.argsort(SCOPE_NAMES))  # scope code -> rank of its name
METHODS = ("exact", "image-exact", "ocr-exact", "near", "image-phash", "ocr-near", "image-dhash")
# a stronger method wins when one pair matches several ways (core.METHOD_RANK)
METHOD_SORT = np.array([0, 0, 0, 1, 1, 1, 2])
_REF_COLUMNS = ("set_name", "ids", "field_name", "text", "image")
PACK_LIMIT = 1 << 62  # the integer sort keys are packed into one int64 while they fit


def objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (``np.array`` would nest tuples and lists)."""
    out = np.empty(len(values), object)
    out[:] = values
    return out


def round4(x: np.ndarray) -> np.ndarray:
    """``round(v, 4)`` of each value, as Python rounds (correctly, from the exact binary value),
    in numpy: ``np.round`` scales first, which can differ only next to a half, so those few are
    rounded by Python."""
    x = np.asarray(x, np.float64)
    out = np.round(x, 4)
    scaled = x * 1e4
    near_half = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    for k in near_half.tolist():
        out[k] = round(float(x[k]), 4)
    return out


@dataclass
class Frame:
    """One tier's matches of a batch, as columns (see the module docstring). ``values`` holds
    object arrays for output columns the reference kind does not give (``best`` fills the rest:
    None, or from the reference columns and the batch)."""

    field: str  # the source field matched
    rows: np.ndarray  # int64 source row in the batch
    kind: np.ndarray  # int8 reference kind
    items: np.ndarray  # int64 position in that kind's reference columns
    scope: np.ndarray  # int8 scope code
    method: np.ndarray  # int8 index into METHODS
    score: np.ndarray  # float64, as reported
    rule: np.ndarray  # object: the rule's name
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class _Reference:
    """The index's reference columns as object arrays, and ranks that order them as strings:
    one table over every reference kind, so tiers that share a group sort alike."""

    columns: list[dict[str, np.ndarray]]  # by kind
    set_rank: list[np.ndarray]  # by kind: rank of the set name
    key_rank: list[np.ndarray]  # by kind: rank of (id, field)


def reference(index: Any) -> _Reference:
    """The index's reference columns and ranks, built once per process and index (an index
    pickled to a worker builds its own)."""
    cached = index.__dict__.get("_frame_reference")
    if cached is not None:
        return cached
    kinds = (index.texts, index.images, index.ocr_images)
    names = sorted({x for k in kinds for x in k.set_name})
    keys = sorted({x for k in kinds for x in zip(k.ids, k.field_name, strict=True)})
    name_rank = {x: n for n, x in enumerate(names)}
    key_rank = {x: n for n, x in enumerate(keys)}
    ref = _Reference(
        [{c: objects(getattr(k, c)) for c in _REF_COLUMNS} for k in kinds],
        [np.array([name_rank[x] for x in k.set_name], np.int64) for k in kinds],
        [np.array([key_rank[x] for x in zip(k.ids, k.field_name, strict=True)], np.int64) for k in kinds],
    )
    index.__dict__["_frame_reference"] = ref
    return ref


def _by_kind(kind: np.ndarray, items: np.ndarray, tables: list[np.ndarray], dtype: Any) -> np.ndarray:
    """``tables[kind[k]][items[k]]`` for every k."""
    if len(kind) and kind.min() == kind.max():  # one kind, as a text-only audit has
        return tables[int(kind[0])][items].astype(dtype, copy=False)
    out = np.empty(len(kind), dtype)
    for k, table in enumerate(tables):
        at = np.flatnonzero(kind == k)
        if len(at):
            out[at] = table[items[at]]
    return out


def _source_ranks(cols: Mapping[str, Sequence], rows: np.ndarray) -> np.ndarray:
    """Rank of each row's (split, id), equal rows equal. Python's sort, once per matched row:
    quick on the sorted ids a batch usually has."""
    split, ids = cols["split"], cols["id"]
    distinct, at = np.unique(rows, return_inverse=True)
    rows_kept = distinct.tolist()
    keys = list(zip(map(split.__getitem__, rows_kept), map(ids.__getitem__, rows_kept), strict=True))
    if all(map(operator.lt, keys[:-1], keys[1:])):  # a batch's rows in order, as most come
        return at.ravel().astype(np.int64, copy=False)
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ordered = [keys[k] for k in order]
    step = np.fromiter(map(operator.ne, ordered[1:], ordered[:-1]), bool, len(keys) - 1 if keys else 0)
    rank = np.empty(len(keys), np.int64)
    rank[order] = np.concatenate([[0], np.cumsum(step)]) if keys else []
    return rank[at.ravel()]


def best(frames: Sequence[Frame], cols: Mapping[str, Sequence], index: Any, max_matches: int,
         columns: Sequence[str]) -> dict[str, list]:  # fmt: skip
    """At most ``max_matches`` per (source row, field, scope, reference set), in
    ``core.match_order``; returns ``columns`` as lists."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return {c: [] for c in columns}
    ref = reference(index)
    rows = np.concatenate([f.rows for f in frames])
    kind = np.concatenate([f.kind for f in frames]).astype(np.int64)
    items = np.concatenate([f.items for f in frames])
    scope = np.concatenate([f.scope for f in frames]).astype(np.int64)
    method = np.concatenate([f.method for f in frames]).astype(np.int64)
    score = np.concatenate([f.score for f in frames])
    fields = sorted({f.field for f in frames})
    field_code = np.concatenate([np.full(len(f), fields.index(f.field), np.int64) for f in frames])
    src = _source_ranks(cols, rows)
    set_rank = _by_kind(kind, items, ref.set_rank, np.int64)
    key_rank = _by_kind(kind, items, ref.key_rank, np.int64)
    # lexsort: the last key is the first compared; a stable sort, so exact ties keep the tiers'
    # order, as the list sort of dicts did. The integer keys before the score go in one
    # (mixed radix) when they fit in 63 bits: 3 passes instead of 7
    ints = (src, field_code, SCOPE_SORT[scope], set_rank, METHOD_SORT[method])
    bases = [int(k.max()) + 1 for k in ints]
    if math.prod(bases) < PACK_LIMIT:
        packed = ints[0].copy()
        for k, base in zip(ints[1:], bases[1:], strict=True):
            packed = packed * base + k
        order = np.lexsort((key_rank, -score, packed))
    else:
        order = np.lexsort((key_rank, -score, *ints[::-1]))
    group = np.stack([src, field_code, scope, set_rank])[:, order]
    starts = np.ones(len(order), bool)
    starts[1:] = (group[:, 1:] != group[:, :-1]).any(axis=0)
    first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    keep = order[np.arange(len(order)) - first < max_matches]
    return _materialise(frames, cols, ref, fields, field_code, kind, items, keep, columns)


def _materialise(frames, cols, ref, fields, field_code, kind, items, keep, columns) -> dict[str, list]:
    """The kept rows' values, column by column."""
    n = len(cols["id"])
    rows = np.concatenate([f.rows for f in frames])[keep]
    kind, items = kind[keep], items[keep]
    out: dict[str, np.ndarray] = {
        "scope": objects(SCOPE_NAMES)[np.concatenate([f.scope for f in frames])[keep]],
        "source_id": objects(cols["id"])[rows],
        "source_split": objects(cols["split"])[rows],
        "field": objects(fields)[field_code[keep]],
        "eval_set": _by_kind(kind, items, [c["set_name"] for c in ref.columns], object),
        "eval_id": _by_kind(kind, items, [c["ids"] for c in ref.columns], object),
        "eval_field": _by_kind(kind, items, [c["field_name"] for c in ref.columns], object),
        "method": objects(METHODS)[np.concatenate([f.method for f in frames])[keep]],
        "score": np.concatenate([f.score for f in frames])[keep].astype(object),
        "rule": np.concatenate([f.rule for f in frames])[keep],
        "eval_text": _by_kind(kind, items, [c["text"] for c in ref.columns], object),
        "eval_image": _by_kind(kind, items, [c["image"] for c in ref.columns], object),
    }
    # a text match's source text is its field's; an image's is the row's question
    text_fields = [cols.get(f) if f != "image" else cols.get("question") for f in fields]
    out["source_text"] = _by_kind(field_code[keep], rows,
                                  [objects(t if t is not None else [None] * n) for t in text_fields],
                                  object)  # fmt: skip
    names = objects(cols.get("image_name") or [None] * n)
    out["source_image"] = np.where(out["field"] == "image", names[rows], None)
    for c in columns:
        if c in out:
            continue
        if not any(c in f.values for f in frames):  # no tier has it: None throughout
            out[c] = np.full(len(keep), None, object)
            continue
        parts = [f.values.get(c, np.full(len(f), None, object)) for f in frames]
        out[c] = np.concatenate(parts)[keep]
    # values a tier gives itself win over the reference columns (an OCR'd eval image's text)
    for c in ("eval_text", "eval_image"):
        if any(c in f.values for f in frames):
            given = np.concatenate([np.full(len(f), c in f.values) for f in frames])[keep]
            parts = [f.values.get(c, np.full(len(f), None, object)) for f in frames]
            out[c][given] = np.concatenate(parts)[keep][given]
    return {c: out[c].tolist() for c in columns}
