"""The forward audit: fingerprint the source, build the index once, match batch by batch.

The steps are the pure functions of ``core``, mapped by an executor (``executor``): the local
one here, the Ray one in ``ray_engine``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tqdm import tqdm

from spa_vl.audit.core import MATCH_COLUMNS, fingerprint_batch, match_batch
from spa_vl.audit.evalsets import EvalSet
from spa_vl.audit.executor import Executor, LocalExecutor
from spa_vl.audit.image import hash_image
from spa_vl.audit.reference import EVAL_RANK, AuditIndex, ReferenceBuilder
from spa_vl.audit.settings import AuditSettings


@dataclass
class AuditRun:
    """What one audit produced: match columns, the index statistics, counts and timings."""

    matches: dict[str, list]
    index_stats: dict
    rows_audited: int
    images_hashed: int
    eval_image_errors: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # the OCR tier: source images per state (gated, read, cached) and with text
    ocr: dict[str, int] = field(default_factory=dict)

    @classmethod
    def collect(
        cls,
        matches: dict[str, list],
        index: AuditIndex,
        rows: int,
        hashed: int,
        errors: dict[str, int],
        marks: tuple[float, float, float, float],
        ocr_batches: Iterable[Mapping] | None,
    ) -> AuditRun:
        """The run from what an executor gathered; ``marks``: perf_counter at the start, before the
        index, before matching and at the end; ``ocr_batches``: fingerprinted batches (OCR on)."""
        t0, t1, t2, t3 = marks
        seconds = {"fingerprint": t1 - t0, "index": t2 - t1, "match": t3 - t2}
        ocr = ocr_counts(ocr_batches) if ocr_batches is not None else {}
        return cls(
            matches, index.stats(), rows, hashed, errors, {k: round(v, 3) for k, v in seconds.items()}, ocr
        )


def ocr_counts(fingerprinted: Iterable[Mapping]) -> dict[str, int]:
    """What the OCR step did with the source images of fingerprinted batches."""
    counts = dict.fromkeys(("gated", "read", "cached", "with_text"), 0)
    for fb in fingerprinted:
        for state, text in zip(fb.get("ocr_state") or [], fb.get("ocr_text") or [], strict=True):
            if state in counts:
                counts[state] += 1
                counts["with_text"] += bool(text)
    return counts


def save_ocr_cache(settings: AuditSettings, fingerprinted: Iterable[Mapping]) -> None:
    """Append what this run read to ``settings.ocr_cache`` (when set)."""
    if settings.ocr and settings.ocr_cache:
        from spa_vl.audit.ocr import save_cache

        keys, texts = [], []
        for fb in fingerprinted:
            keys += list(fb.get("ocr_key") or [])
            texts += list(fb.get("ocr_text") or [])
        save_cache(settings.ocr_cache, keys, texts)


def add_eval_sets(builder: ReferenceBuilder, eval_sets: Iterable[EvalSet]) -> dict[str, int]:
    """Put eval-set items into the reference side; returns undecodable images per set."""
    s = builder.settings
    errors: dict[str, int] = {}
    read: list[dict] = []  # eval images' OCR, for the cache file
    for es in eval_sets:
        for item in es.items:
            if item.image is not None:
                if s.images:
                    try:
                        hashes = hash_image(item.image, variants=True)
                    except Exception:  # a damaged eval image is counted, not fatal
                        errors[es.name] = errors.get(es.name, 0) + 1
                        continue
                    builder.add_image(es.name, EVAL_RANK, item.id, hashes, item.image_label, item.text)
                if s.ocr:
                    from spa_vl.audit.ocr import read_images

                    texts, keys, _ = read_images([item.image], s.ocr_gate, s.ocr_cache)
                    if texts[0] is None and not s.images:
                        errors[es.name] = errors.get(es.name, 0) + 1
                    builder.add_ocr_image(es.name, item.id, item.image_label, item.text, texts[0] or "")
                    read.append({"ocr_key": keys, "ocr_text": texts})
            elif not item.is_answer or s.answers:
                builder.add_text(es.name, EVAL_RANK, item.id, item.field, item.text, item.is_answer)
    save_ocr_cache(s, read)
    return errors


def build_index(
    fingerprinted: Iterable[dict], eval_sets: Iterable[EvalSet], settings: AuditSettings
) -> tuple[AuditIndex, dict[str, int]]:
    """The reference index: eval sets, plus the audited rows for the duplicate/leak scopes."""
    builder = ReferenceBuilder(settings)
    errors = add_eval_sets(builder, eval_sets)
    if {"duplicate", "leak"} & set(settings.scopes):
        for batch in fingerprinted:
            builder.add_source_batch(batch)
    return builder.build(), errors


def eval_images(eval_sets: Iterable[EvalSet]) -> list[bytes]:
    """The encoded images of the eval sets' items."""
    return [it.image for es in eval_sets for it in es.items if it.image is not None]


def _read_chunk(images: list[bytes], gate: float) -> tuple[list, list, list]:
    from spa_vl.audit.ocr import read_images

    # no cache file in the workers: a cluster's nodes need not share this file system
    return read_images(images, gate, None)


def prefetch_eval_ocr(executor: Executor, eval_sets: list[EvalSet], settings: AuditSettings) -> None:
    """Read the eval images' text with ``executor`` (8 images a part) into this process's OCR
    cache, where building the index finds it (recognition is ~0.5 s a typed page: too slow for
    one process)."""
    from spa_vl.audit.ocr import missing, remember

    images = missing(eval_images(eval_sets), settings.ocr_gate, settings.ocr_cache)
    chunks = [images[i : i + 8] for i in range(0, len(images), 8)]
    for texts, keys, _ in executor.map(_read_chunk, chunks, shared=settings.ocr_gate):
        remember(keys, texts)


def run_local(
    batches: Iterable[dict],
    eval_sets: list[EvalSet],
    settings: AuditSettings,
    progress: bool = True,
    workers: int = 1,
) -> AuditRun:
    """Audit ``batches`` (dicts of columns) in this process, or with ``workers`` > 1 in a pool
    of processes (each gets the settings, then the index, once, at start-up)."""
    t0 = time.perf_counter()
    executor = LocalExecutor(workers)
    fingerprinted, rows, hashed = [], 0, 0
    with tqdm(desc="fingerprint", unit=" rows", disable=not progress) as bar:
        for fb in executor.map(fingerprint_batch, batches, shared=settings):
            fingerprinted.append(fb)
            n = len(fb["id"])
            rows += n
            hashed += int(sum(fb.get("image_ok", [])))
            bar.update(n)
    t1 = time.perf_counter()
    if settings.ocr and workers > 1:
        prefetch_eval_ocr(executor, eval_sets, settings)
    index, errors = build_index(fingerprinted, eval_sets, settings)
    save_ocr_cache(settings, fingerprinted)
    t2 = time.perf_counter()
    matches: dict[str, list] = {c: [] for c in MATCH_COLUMNS}
    with tqdm(total=rows, desc="match", unit=" rows", disable=not progress) as bar:
        found_all = executor.map(match_batch, fingerprinted, shared=index)
        for fb, found in zip(fingerprinted, found_all, strict=True):
            for c in MATCH_COLUMNS:
                matches[c].extend(found[c])
            bar.update(len(fb["id"]))
    t3 = time.perf_counter()
    return AuditRun.collect(
        matches, index, rows, hashed, errors, (t0, t1, t2, t3), fingerprinted if settings.ocr else None
    )
