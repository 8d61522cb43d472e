"""The audit's core: two pure functions over a batch of rows (a dict of columns).

``fingerprint_batch`` decodes and hashes images and normalises texts; ``match_batch`` matches a
fingerprinted batch against a read-only ``AuditIndex`` and returns match rows as columns. Both
are what an engine maps over batches: the local engine in-process, a Ray engine with
``map_batches`` and the index shared by ``ray.put``.

Batch columns: ``id``, ``split``, ``question``; optional ``chosen``, ``rejected``,
``image_name`` and ``image`` (encoded bytes, or a ``{"bytes", "path"}`` dict, or None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from spa_vl.audit.frame import IMAGES, METHODS, OCR_IMAGES, TEXTS, Frame, best, objects, reference, round4
from spa_vl.audit.image import VARIANTS, hash_image
from spa_vl.audit.normalize import normalize_texts
from spa_vl.audit.reference import AuditIndex, split_rank
from spa_vl.audit.scopes import SCOPE_NAMES, scope_codes
from spa_vl.audit.settings import AuditSettings
from spa_vl.audit.text import PairScope

__all__ = ["MATCH_COLUMNS", "SCOPE_NAMES", "fingerprint_batch", "match_batch", "match_order", "match_rows"]

MATCH_COLUMNS = (
    "scope",
    "source_id",
    "source_split",
    "field",
    "eval_set",
    "eval_id",
    "eval_field",
    "method",
    "score",
    "rule",
    "similarity",
    "containment",
    "phash_distance",
    "dhash_distance",
    "variant",
    "source_text",
    "eval_text",
    "source_image",
    "eval_image",
    "ocr_text",
)
# a stronger method wins when one pair matches several ways
METHOD_RANK = {
    "exact": 0,
    "image-exact": 0,
    "ocr-exact": 0,
    "near": 1,
    "image-phash": 1,
    "ocr-near": 1,
    "image-dhash": 2,
}


def columns(batch: Any) -> dict[str, list]:
    """A dict of columns from a dict of sequences or an Arrow table/record batch."""
    if hasattr(batch, "to_pydict"):
        return batch.to_pydict()
    return {k: list(v) for k, v in batch.items()}


def _image_bytes(value: Any) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def fingerprint_batch(batch: Any, settings: AuditSettings) -> dict[str, list]:
    """Add ``norm_<field>`` for each audited text field and, with images, ``image_exact``,
    ``image_phash``, ``image_dhash`` (uint64), ``image_ok`` and ``image_error``; with OCR,
    ``ocr_text`` (what the image reads, "" for none), ``ocr_key`` and ``ocr_state`` (see
    ``ocr.read_images``). The ``image`` column is dropped: later stages need only these."""
    cols = columns(batch)
    n = len(cols["id"])
    for fld in settings.source_fields():
        cols[f"norm_{fld}"] = normalize_texts(cols.get(fld) or [None] * n)
    images = cols.pop("image", None)
    if settings.images:
        exact, phash, dhash = np.zeros(n, np.uint64), np.zeros(n, np.uint64), np.zeros(n, np.uint64)
        ok, errors = np.zeros(n, bool), [None] * n
        for i, value in enumerate(images or [None] * n):
            data = _image_bytes(value)
            if data is None:
                errors[i] = "no image bytes"
                continue
            try:
                h = hash_image(data)
            except Exception as exc:  # PIL raises many types for a damaged image
                errors[i] = f"undecodable image: {exc}"
                continue
            exact[i], phash[i], dhash[i], ok[i] = h.exact, h.phash, h.dhash, True
        cols.update(image_exact=exact, image_phash=phash, image_dhash=dhash, image_ok=ok)
        cols["image_error"] = errors
    if settings.ocr:
        from spa_vl.audit.ocr import read_images

        data = [_image_bytes(v) for v in images or [None] * n]
        cols["ocr_text"], cols["ocr_key"], cols["ocr_state"] = read_images(
            data, settings.ocr_gate, settings.ocr_cache
        )
    return cols


def match_batch(batch: Any, index: AuditIndex) -> dict[str, list]:
    """Match a batch of rows against the index; returns ``MATCH_COLUMNS`` as lists."""
    s = index.settings
    cols = columns(batch)
    if not any(f"norm_{f}" in cols for f in s.source_fields()):
        cols = fingerprint_batch(cols, s)
    ranks = {x: split_rank(x) for x in set(cols["split"])}
    src_rank = np.array([ranks[x] for x in cols["split"]], np.int64)
    if index.id_rank:
        pairs = zip(cols["split"], cols["id"], strict=True)
        src_order = np.array([index.row_order(sp, i) for sp, i in pairs], np.int64)
    else:  # the eval scope alone: no audited row is indexed
        src_order = np.full(len(src_rank), -1, np.int64)
    found: list[Frame] = []
    for fld in s.source_fields():
        norms = cols.get(f"norm_{fld}")
        if norms is None:
            continue
        found += _match_texts(cols, fld, norms, src_rank, src_order, index)
    if s.images and "image_ok" in cols and len(index.images):
        found.append(_match_images(cols, src_rank, src_order, index))
    if s.ocr and "eval" in s.scopes and "ocr_text" in cols and index.ocr is not None:
        found.append(_match_ocr(cols, index))
    return best(found, cols, index, s.max_matches, MATCH_COLUMNS)


def _text_filter(src_rank, src_order, index: AuditIndex, answer_field: bool):
    def keep(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        scope = scope_codes(
            src_rank[rows],
            src_order[rows],
            index.text_rank[items],
            index.text_id_rank[items],
            index.settings.scopes,
        )
        ok = scope >= 0
        if not answer_field:  # a question is compared with questions; answers with both
            ok &= ~index.text_is_answer[items]
        return ok

    return keep


def _text_frame(src, fld, rows, items, index, method, score, rule, sim, cont) -> Frame:
    """A text tier's frame; ``src``: the batch's split ranks and orders (for the scopes)."""
    rows, items = np.asarray(rows, np.int64), np.asarray(items, np.int64)
    src_rank, src_order = src
    scope = scope_codes(src_rank[rows], src_order[rows], index.text_rank[items], index.text_id_rank[items],
                        index.settings.scopes)  # fmt: skip
    return Frame(
        fld,
        rows,
        np.full(len(rows), TEXTS, np.int8),
        items,
        scope,
        np.full(len(rows), METHODS.index(method), np.int8),
        round4(score),
        rule,
        {"similarity": round4(sim).astype(object), "containment": round4(cont).astype(object)},
    )


def _match_texts(cols, fld, norms, src_rank, src_order, index: AuditIndex) -> list[Frame]:
    s, ref = index.settings, index.texts
    present = np.fromiter(map(bool, norms), bool, len(norms))
    keep = _text_filter(src_rank, src_order, index, fld != "question")
    enc = index.ngrams.encode(norms)
    rows, items = index.exact.lookup(enc.text_hash, present)
    mask = keep(rows, items) if len(rows) else np.zeros(0, bool)
    rows, items = rows[mask], items[mask]
    raw = cols[fld]
    # a 64-bit hash collision is vanishingly rare, but never reported
    pairs = [(r, it) for r, it in zip(rows.tolist(), items.tolist(), strict=True)
             if norms[r] == index.text_norm[it]]  # fmt: skip
    rule = objects(["identical" if raw[r] == ref.text[it] else "normalised-equal" for r, it in pairs])
    ones = np.ones(len(pairs))
    r_it = np.array(pairs, np.int64).reshape(-1, 2)
    out = [
        _text_frame(
            (src_rank, src_order), fld, r_it[:, 0], r_it[:, 1], index, "exact", ones, rule, ones, ones
        )
    ]
    if not s.near:
        return out
    scope = PairScope(
        src_rank,
        src_order,
        index.text_rank,
        index.text_id_rank,
        index.text_is_answer,
        index.text_group,
        s.scopes,
        answers_too=fld != "question",
        item_tiebreak=reference(index).key_rank[TEXTS],  # the report's order of eval ids
    )
    near = index.ngrams.near_pairs(enc, scope, s.max_matches)
    out.append(_text_frame((src_rank, src_order), fld, near.rows, near.items, index, "near", near.score,
                           objects(near.rule), near.similarity, near.containment))  # fmt: skip
    return out


def _match_images(cols, src_rank, src_order, index: AuditIndex) -> Frame:
    s = index.settings
    rows = np.flatnonzero(np.asarray(cols["image_ok"], bool))
    r, items, dp, dd, same, variant = index.image_index.search(
        np.asarray(cols["image_exact"], np.uint64)[rows],
        np.asarray(cols["image_phash"], np.uint64)[rows],
        np.asarray(cols["image_dhash"], np.uint64)[rows],
        s.phash_threshold,
        s.dhash_threshold,
        s.image_rule,
        s.image_variants(),
    )
    r = rows[r]
    scope = scope_codes(
        src_rank[r], src_order[r], index.image_rank[items], index.image_id_rank[items], s.scopes
    )
    k = np.flatnonzero(scope >= 0)
    r, items, scope, same, variant = r[k], items[k], scope[k], same[k].astype(bool), variant[k]
    p, d = dp[k].astype(np.int64), dd[k].astype(np.int64)
    ok_p, ok_d = p <= s.phash_threshold, d <= s.dhash_threshold
    rule = np.where(ok_p & ok_d, "phash+dhash", np.where(ok_p, "phash", "dhash")).astype(object)
    rule[same] = "pixels"
    method = np.where(same, METHODS.index("image-exact"),
                      np.where(ok_p, METHODS.index("image-phash"), METHODS.index("image-dhash")))  # fmt: skip
    score = np.where(same, 1.0, 1 - np.where(ok_p, p, d) / 64)
    return Frame(
        "image",
        r.astype(np.int64),
        np.full(len(r), IMAGES, np.int8),
        np.asarray(items, np.int64),
        scope,
        method.astype(np.int8),
        round4(score),
        rule,
        {
            "phash_distance": p.astype(object),
            "dhash_distance": d.astype(object),
            "variant": objects(VARIANTS)[np.asarray(variant, np.int64)],
        },
    )


def _match_ocr(cols, index: AuditIndex) -> Frame:
    """Source images' recognised text against eval texts and eval images' recognised text
    (the eval scope only: the OCR index holds eval items alone)."""
    from spa_vl.audit.ocr_match import compact_text

    ocr, texts = index.ocr, cols["ocr_text"]
    hits = ocr.search(texts, index.settings.ocr_near_threshold)
    rows = np.array([h.row for h in hits], np.int64)
    kind = np.array([ocr.ref_kind[h.entry] for h in hits], np.int8)  # 0: an eval text
    eval_text = [index.texts.text[ocr.ref_pos[h.entry]] if ocr.ref_kind[h.entry] == 0 else ocr.raw[h.entry]
                 for h in hits]  # fmt: skip
    rule = ["character-edits" if not h.exact else
            "normalised-equal" if ocr.compact[h.entry] == compact_text(texts[h.row]) else "containment"
            for h in hits]  # fmt: skip
    score = np.array([h.score for h in hits], np.float64)
    return Frame(
        "image",
        rows,
        np.where(kind == 0, TEXTS, OCR_IMAGES).astype(np.int8),
        np.array([ocr.ref_pos[h.entry] for h in hits], np.int64),
        np.full(len(hits), 2, np.int8),
        np.array([METHODS.index("ocr-exact" if h.exact else "ocr-near") for h in hits], np.int8),
        score,
        objects(rule),
        {
            "similarity": score.astype(object),
            "eval_text": objects(eval_text),
            "ocr_text": objects([texts[r] for r in rows.tolist()]),
        },
    )


def match_order(m: dict) -> tuple:
    """The one order of match rows: by source row, field, scope and set, strongest first."""
    return (
        m["source_split"],
        m["source_id"],
        m["field"],
        m["scope"],
        m["eval_set"],
        METHOD_RANK[m["method"]],
        -m["score"],
        m["eval_id"],
        m["eval_field"],
    )


def match_rows(matches: Mapping[str, Sequence]) -> list[dict]:
    """Match columns back to a list of row dicts."""
    names = list(matches)
    return [
        dict(zip(names, values, strict=True)) for values in zip(*(matches[c] for c in names), strict=True)
    ]
