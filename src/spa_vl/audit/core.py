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

from spa_vl.audit.image import VARIANTS, hash_image
from spa_vl.audit.normalize import normalize_text
from spa_vl.audit.reference import EVAL_RANK, AuditIndex, split_rank
from spa_vl.audit.settings import AuditSettings
from spa_vl.audit.text import PairScope

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
        cols[f"norm_{fld}"] = [normalize_text(t) for t in cols.get(fld) or [None] * n]
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


def _scopes(
    src_rank: np.ndarray,
    src_order: np.ndarray,
    ref_rank: np.ndarray,
    ref_order: np.ndarray,
    allowed: Sequence[str],
) -> np.ndarray:
    """Scope code per pair: 0 duplicate, 1 leak, 2 eval, -1 not reported.

    A duplicate pair is reported once, from its later row; a leak once, from the row of the
    earlier split (train before validation before test)."""
    scope = np.full(len(src_rank), -1, np.int8)
    if "eval" in allowed:
        scope[ref_rank == EVAL_RANK] = 2
    internal = ref_rank != EVAL_RANK
    if "duplicate" in allowed:
        scope[internal & (ref_rank == src_rank) & (ref_order < src_order) & (ref_order >= 0)] = 0
    if "leak" in allowed:
        scope[internal & (src_rank < ref_rank)] = 1
    return scope


SCOPE_NAMES = ("duplicate", "leak", "eval")


def match_batch(batch: Any, index: AuditIndex) -> dict[str, list]:
    """Match a batch of rows against the index; returns ``MATCH_COLUMNS`` as lists."""
    s = index.settings
    cols = columns(batch)
    if not any(f"norm_{f}" in cols for f in s.source_fields()):
        cols = fingerprint_batch(cols, s)
    n = len(cols["id"])
    src_rank = np.array([split_rank(x) for x in cols["split"]], np.int64)
    src_order = np.array(
        [index.row_order(sp, i) for sp, i in zip(cols["split"], cols["id"], strict=True)], np.int64
    )
    found: list[dict] = []
    for fld in s.source_fields():
        norms = cols.get(f"norm_{fld}")
        if norms is None:
            continue
        found += _match_texts(cols, fld, norms, src_rank, src_order, index)
    if s.images and "image_ok" in cols and len(index.images):
        found += _match_images(cols, src_rank, src_order, index)
    if s.ocr and "eval" in s.scopes and "ocr_text" in cols and index.ocr is not None:
        found += _match_ocr(cols, index)
    return _best(found, s.max_matches) if n else {c: [] for c in MATCH_COLUMNS}


def _text_filter(src_rank, src_order, index: AuditIndex, answer_field: bool):
    def keep(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        scope = _scopes(
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


def _match_texts(cols, fld, norms, src_rank, src_order, index: AuditIndex) -> list[dict]:
    s, ref = index.settings, index.texts
    present = np.array([bool(x) for x in norms], bool)
    keep = _text_filter(src_rank, src_order, index, fld != "question")
    enc = index.ngrams.encode(norms)
    rows, items = index.exact.lookup(enc.text_hash, present)
    mask = keep(rows, items) if len(rows) else np.zeros(0, bool)
    rows, items = rows[mask], items[mask]
    raw = cols[fld]
    out = []
    for r, it in zip(rows.tolist(), items.tolist(), strict=True):
        if norms[r] != index.text_norm[it]:
            continue  # a 64-bit hash collision: vanishingly rare, but never report it
        identical = raw[r] == ref.text[it]
        out.append(
            _text_row(
                cols,
                fld,
                r,
                index,
                it,
                "exact",
                1.0,
                "identical" if identical else "normalised-equal",
                1.0,
                1.0,
            )
        )
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
    )
    near = index.ngrams.near_pairs(enc, scope, s.max_matches)
    for k, (r, it) in enumerate(zip(near.rows.tolist(), near.items.tolist(), strict=True)):
        sim, cont = float(near.similarity[k]), float(near.containment[k])
        out.append(_text_row(cols, fld, r, index, it, "near", near.score[k], near.rule[k], sim, cont))
    return out


def _scope_of(src_split: str, rank: int, ref_split: str) -> str:
    if rank == EVAL_RANK:
        return "eval"
    return "duplicate" if ref_split == src_split else "leak"


def _text_row(cols, fld, r, index: AuditIndex, it, method, score, rule, sim, cont) -> dict:
    ref = index.texts
    return {
        "scope": _scope_of(cols["split"][r], ref.rank[it], ref.set_name[it]),
        "source_id": cols["id"][r],
        "source_split": cols["split"][r],
        "field": fld,
        "eval_set": ref.set_name[it],
        "eval_id": ref.ids[it],
        "eval_field": ref.field_name[it],
        "method": method,
        "score": round(float(score), 4),
        "rule": rule,
        "similarity": round(float(sim), 4),
        "containment": round(float(cont), 4),
        "phash_distance": None,
        "dhash_distance": None,
        "variant": None,
        "source_text": cols[fld][r],
        "eval_text": ref.text[it],
        "source_image": None,
        "eval_image": None,
        "ocr_text": None,
    }


def _match_images(cols, src_rank, src_order, index: AuditIndex) -> list[dict]:
    s, ref = index.settings, index.images
    ok = np.asarray(cols["image_ok"], bool)
    rows = np.flatnonzero(ok)
    if not len(rows):
        return []
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
    scope = _scopes(src_rank[r], src_order[r], index.image_rank[items], index.image_id_rank[items], s.scopes)
    names = cols.get("image_name") or [None] * len(cols["id"])
    questions = cols.get("question") or [None] * len(cols["id"])
    out = []
    for k in np.flatnonzero(scope >= 0).tolist():
        i, it = int(r[k]), int(items[k])
        p, d = int(dp[k]), int(dd[k])
        ok_p, ok_d = p <= s.phash_threshold, d <= s.dhash_threshold
        rule = "phash+dhash" if ok_p and ok_d else ("phash" if ok_p else "dhash")
        if same[k]:
            method, score, rule = "image-exact", 1.0, "pixels"
        elif ok_p:
            method, score = "image-phash", 1 - p / 64
        else:
            method, score = "image-dhash", 1 - d / 64
        out.append(
            {
                "scope": SCOPE_NAMES[int(scope[k])],
                "source_id": cols["id"][i],
                "source_split": cols["split"][i],
                "field": "image",
                "eval_set": ref.set_name[it],
                "eval_id": ref.ids[it],
                "eval_field": "image",
                "method": method,
                "score": round(float(score), 4),
                "rule": rule,
                "similarity": None,
                "containment": None,
                "phash_distance": p,
                "dhash_distance": d,
                "variant": VARIANTS[int(variant[k])],
                "source_text": questions[i],
                "eval_text": ref.text[it],
                "source_image": names[i],
                "eval_image": ref.image[it],
                "ocr_text": None,
            }
        )
    return out


def _match_ocr(cols, index: AuditIndex) -> list[dict]:
    """Source images' recognised text against eval texts and eval images' recognised text
    (the eval scope only: the OCR index holds eval items alone)."""
    from spa_vl.audit.ocr import compact_text

    ocr, texts = index.ocr, cols["ocr_text"]
    n = len(cols["id"])
    names = cols.get("image_name") or [None] * n
    questions = cols.get("question") or [None] * n
    out = []
    for h in ocr.search(texts, index.settings.ocr_near_threshold):
        pos = int(ocr.ref_pos[h.entry])
        if ocr.ref_kind[h.entry] == 0:  # an eval text
            ref, eval_text, eval_image = index.texts, index.texts.text[pos], None
        else:  # an eval image's recognised text
            ref, eval_text, eval_image = index.ocr_images, ocr.raw[h.entry], index.ocr_images.image[pos]
        if h.exact:
            whole = ocr.compact[h.entry] == compact_text(texts[h.row])
            method, rule = "ocr-exact", "normalised-equal" if whole else "containment"
        else:
            method, rule = "ocr-near", "character-edits"
        out.append(
            {
                "scope": "eval",
                "source_id": cols["id"][h.row],
                "source_split": cols["split"][h.row],
                "field": "image",
                "eval_set": ref.set_name[pos],
                "eval_id": ref.ids[pos],
                "eval_field": ref.field_name[pos],
                "method": method,
                "score": h.score,
                "rule": rule,
                "similarity": h.score,
                "containment": None,
                "phash_distance": None,
                "dhash_distance": None,
                "variant": None,
                "source_text": questions[h.row],
                "eval_text": eval_text,
                "source_image": names[h.row],
                "eval_image": eval_image,
                "ocr_text": texts[h.row],
            }
        )
    return out


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


def _best(found: list[dict], max_matches: int) -> dict[str, list]:
    """At most ``max_matches`` per (source row, field, scope, reference set), strongest first."""
    found.sort(key=match_order)
    out: dict[str, list] = {c: [] for c in MATCH_COLUMNS}
    group, count = None, 0
    for m in found:
        g = (m["source_split"], m["source_id"], m["field"], m["scope"], m["eval_set"])
        count = count + 1 if g == group else 1
        group = g
        if count <= max_matches:
            for c in MATCH_COLUMNS:
                out[c].append(m[c])
    return out


def match_rows(matches: Mapping[str, Sequence]) -> list[dict]:
    """Match columns back to a list of row dicts."""
    names = list(matches)
    return [
        dict(zip(names, values, strict=True)) for values in zip(*(matches[c] for c in names), strict=True)
    ]
