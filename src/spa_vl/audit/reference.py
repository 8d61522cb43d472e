"""The reference side of the audit: every text and image a source row may match.

It holds eval-set items and, for the duplicate and leak scopes, the audited rows themselves.
``ReferenceBuilder`` collects them; ``AuditIndex`` is the read-only result that the matching
function takes (picklable, so an engine can build it once and ship it to workers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from spa_vl.audit.image import ImageHashes, ImageIndex
from spa_vl.audit.normalize import normalize_text
from spa_vl.audit.scopes import EVAL_RANK
from spa_vl.audit.settings import SPLIT_ORDER, AuditSettings
from spa_vl.audit.text import ExactIndex, NearRule, NGramIndex

if TYPE_CHECKING:
    from spa_vl.audit.ocr_match import CharIndex


def split_rank(split: str | None) -> int:
    """Position of a split in train < validation < test; unknown splits come last."""
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


@dataclass
class _Columns:
    """Columns of one reference kind (texts or images), aligned by position."""

    set_name: list[str] = field(default_factory=list)
    rank: list[int] = field(default_factory=list)  # split rank, EVAL_RANK for eval sets
    ids: list[str] = field(default_factory=list)
    field_name: list[str] = field(default_factory=list)
    is_answer: list[bool] = field(default_factory=list)
    text: list[str | None] = field(default_factory=list)
    image: list[str | None] = field(default_factory=list)  # an image's name or path, for reports

    def add(self, set_name, rank, id_, fld, is_answer, text, image) -> None:
        self.set_name.append(set_name)
        self.rank.append(rank)
        self.ids.append(id_)
        self.field_name.append(fld)
        self.is_answer.append(is_answer)
        self.text.append(text)
        self.image.append(image)

    def __len__(self) -> int:
        return len(self.ids)


class ReferenceBuilder:
    """Collects reference texts and images, then builds the ``AuditIndex``."""

    def __init__(self, settings: AuditSettings):
        self.settings = settings
        self.texts = _Columns()
        self.images = _Columns()
        self.image_hashes: list[ImageHashes] = []
        # eval images that the OCR tier read text from, with that text
        self.ocr_images = _Columns()
        self.ocr_texts: list[str] = []

    def add_text(
        self,
        set_name: str,
        rank: int,
        id_: str,
        fld: str,
        text: str | None,
        is_answer: bool = False,
    ) -> None:
        if text:
            self.texts.add(set_name, rank, id_, fld, is_answer, text, None)

    def add_image(
        self,
        set_name: str,
        rank: int,
        id_: str,
        hashes: ImageHashes,
        label: str | None,
        text: str | None,
    ) -> None:
        self.images.add(set_name, rank, id_, "image", False, text, label)
        self.image_hashes.append(hashes)

    def add_ocr_image(
        self, set_name: str, id_: str, label: str | None, text: str | None, recognised: str
    ) -> None:
        """An eval image's recognised text (``recognised``; ``text`` is the item's own text)."""
        if recognised:
            self.ocr_images.add(set_name, EVAL_RANK, id_, "image", False, text, label)
            self.ocr_texts.append(recognised)

    def add_source_batch(self, batch: Mapping[str, Sequence]) -> None:
        """Add fingerprinted source rows (see ``core.fingerprint_batch``) as reference items."""
        n = len(batch["id"])
        for fld in self.settings.source_fields():
            values = batch.get(fld)
            if values is None:
                continue
            for i in range(n):
                self.add_text(
                    batch["split"][i],
                    split_rank(batch["split"][i]),
                    batch["id"][i],
                    fld,
                    values[i],
                    fld != "question",
                )
        if self.settings.images and "image_ok" in batch:
            names = batch.get("image_name") or [None] * n
            for i in np.flatnonzero(np.asarray(batch["image_ok"], bool)):
                h = ImageHashes(
                    int(batch["image_exact"][i]),
                    int(batch["image_phash"][i]),
                    int(batch["image_dhash"][i]),
                )
                self.add_image(
                    batch["split"][i],
                    split_rank(batch["split"][i]),
                    batch["id"][i],
                    h,
                    names[i],
                    batch["question"][i],
                )

    def build(self) -> AuditIndex:
        s = self.settings
        norms = [normalize_text(t) for t in self.texts.text]
        present = np.array([bool(x) for x in norms], bool)
        images = ImageIndex.build(np.arange(len(self.images)), self.image_hashes)
        if s.max_image_neighbours >= 0:
            eval_images = np.array([r == EVAL_RANK for r in self.images.rank], bool)
            images.mark_crowded(
                eval_images,
                s.phash_threshold,
                s.dhash_threshold,
                s.image_rule,
                s.max_image_neighbours,
                s.image_variants(),
            )
        ids_rank = _id_ranks(self.texts, self.images)
        ngrams = NGramIndex.build(norms, NearRule.from_settings(s))
        ocr = None
        if s.ocr:
            from spa_vl.audit.ocr_match import CharIndex

            texts = self.texts
            entries = [
                (0, i, texts.text[i], None)
                for i in range(len(texts))
                if texts.rank[i] == EVAL_RANK and not texts.is_answer[i]
            ]
            entries += [(1, j, t, t) for j, t in enumerate(self.ocr_texts)]
            ocr = CharIndex.build(entries, s.ocr_min_chars)
        return AuditIndex(
            settings=s,
            texts=self.texts,
            text_norm=norms,
            text_rank=np.array(self.texts.rank, np.int64),
            text_is_answer=np.array(self.texts.is_answer, bool),
            text_group=_groups(self.texts.set_name, self.texts.rank),
            exact=ExactIndex.build(ngrams.texts.text_hash, present),
            ngrams=ngrams,
            images=self.images,
            image_rank=np.array(self.images.rank, np.int64),
            image_index=images,
            text_id_rank=ids_rank[0],
            image_id_rank=ids_rank[1],
            id_rank=ids_rank[2],
            ocr=ocr,
            ocr_images=self.ocr_images,
        )


def _groups(names: Sequence[str], ranks: Sequence[int]) -> np.ndarray:
    """A number per reference set, eval sets apart from splits of the same name (the near
    tier caps its matches per group, as ``frame.best`` does per scope and set)."""
    codes: dict[tuple[bool, str], int] = {}
    keys = [(r == EVAL_RANK, x) for x, r in zip(names, ranks, strict=True)]
    return np.array([codes.setdefault(k, len(codes)) for k in keys], np.int64)


def _id_ranks(texts: _Columns, images: _Columns) -> tuple[np.ndarray, np.ndarray, dict]:
    """Order the audited rows by (split, id) so a duplicate pair is reported once, from the
    later row; eval items get -1."""
    keys = sorted(
        {(r, i) for r, i in zip(texts.rank, texts.ids, strict=True) if r != EVAL_RANK}
        | {(r, i) for r, i in zip(images.rank, images.ids, strict=True) if r != EVAL_RANK}
    )
    rank = {k: n for n, k in enumerate(keys)}
    t = np.array([rank.get((r, i), -1) for r, i in zip(texts.rank, texts.ids, strict=True)], np.int64)
    m = np.array([rank.get((r, i), -1) for r, i in zip(images.rank, images.ids, strict=True)], np.int64)
    return t, m, rank


@dataclass
class AuditIndex:
    """Read-only reference index (see module docstring)."""

    settings: AuditSettings
    texts: _Columns
    text_norm: list[str]
    text_rank: np.ndarray
    text_is_answer: np.ndarray
    text_group: np.ndarray
    exact: ExactIndex
    ngrams: NGramIndex
    images: _Columns
    image_rank: np.ndarray
    image_index: ImageIndex
    text_id_rank: np.ndarray
    image_id_rank: np.ndarray
    id_rank: dict
    # the OCR tier's reference side: eval texts and eval images' recognised texts (with --ocr)
    ocr: CharIndex | None = None
    ocr_images: _Columns = field(default_factory=_Columns)

    def row_order(self, split: str, id_: str) -> int:
        """Position of an audited row among all audited rows, or -1 if it is not indexed."""
        return self.id_rank.get((split_rank(split), id_), -1)

    def stats(self) -> dict:
        """Sizes for the report: items per set, index bytes."""
        per_set: dict[str, dict[str, int]] = {}
        for name, rank in zip(self.texts.set_name, self.texts.rank, strict=True):
            if rank == EVAL_RANK:
                per_set.setdefault(name, {"texts": 0, "images": 0})["texts"] += 1
        for name, rank in zip(self.images.set_name, self.images.rank, strict=True):
            if rank == EVAL_RANK:
                per_set.setdefault(name, {"texts": 0, "images": 0})["images"] += 1
        ng = self.ngrams
        return {
            "reference_texts": len(self.texts),
            "reference_images": len(self.images),
            "ngram_keys": len(ng.keys),
            "index_bytes": int(
                ng.nbytes
                + self.exact.keys.nbytes
                + self.exact.items.nbytes
                + self.image_index.phash.nbytes * 2
                + self.image_index.exact.nbytes
            ),
            "eval_items": per_set,
            "crowded_eval_images": int(self.image_index.crowded.sum())
            if self.image_index.crowded is not None
            else 0,
            **(
                {"ocr_reference_texts": len(self.ocr), "ocr_eval_images_with_text": len(self.ocr_images)}
                if self.ocr is not None
                else {}
            ),
        }
