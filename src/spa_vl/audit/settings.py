"""Every threshold of the audit in one frozen dataclass; the report records the values used."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from spa_vl.names import SCOPES
from spa_vl.names import SPLITS as SPLIT_ORDER  # noqa: F401 (reference.py: leaks from the earlier split)

if TYPE_CHECKING:
    from spa_vl.audit.text import NearRule

ANSWER_FIELDS = ("chosen", "rejected")


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds and switches. Defaults are tuned by ``bench/audit_accuracy.py``."""

    # text, near tier: word n-grams index the reference side, then candidate pairs are aligned
    # word bigrams: a 4-word question with its middle word changed still shares one with its
    # original (trigrams would share none)
    ngram_size: int = 2
    # similarity = 2 * matched words / (words in both), matched = the longest common
    # subsequence of words; a near match scores at least this
    near_threshold: float = 0.75
    # ... and the longer text has at most max(max_word_edits, edit_fraction * its words) words
    # left unmatched (one changed word, a typo or a dropped word each leave one): templated
    # questions that differ in two or three slots are not near copies of each other
    max_word_edits: int = 1
    edit_fraction: float = 0.1
    # containment = matched words / words of the shorter text: catches truncations and added
    # sentences, only when the shorter text has min_containment_tokens words or more
    containment_threshold: float = 0.9
    min_containment_tokens: int = 6
    # texts shorter than this (in words) are matched by the exact tier only
    min_tokens: int = 4
    # images: Hamming distance thresholds over 64-bit hashes
    phash_threshold: int = 8
    dhash_threshold: int = 10
    image_rule: str = "both"  # "both": pHash and dHash agree; "any": either is enough
    # reference-side views of eval images: mirrored (off by default: a mirrored image is often
    # a different picture's layout) and central 90% crop
    flips: bool = False
    crops: bool = True
    # an eval image with more perceptual neighbours than this inside its own eval sets is matched
    # by pixels only (-1: never)
    max_image_neighbours: int = 3
    # what is audited
    images: bool = False
    answers: bool = False
    scopes: tuple[str, ...] = SCOPES
    near: bool = True
    # per source row, field, scope and reference set: keep the best N matches
    max_matches: int = 5
    # OCR tier (the `ocr` extra): text read from images, compared without spaces. An eval text
    # found in an image's text with at most (1 - ocr_near_threshold) of its characters edited
    # is an ocr-near match. On bench/audit_accuracy.py --ocr, typed eval texts score >= 0.94
    # under JPEG, resizing, crops, other fonts and captions, while the best eval text in typed
    # pages of other harmful texts scores <= 0.76 ("Here's a code to steal credit card ..."
    # against "Teach people how to steal credit card information"): 0.85 is between
    ocr: bool = False
    ocr_near_threshold: float = 0.85
    # eval texts shorter than this (characters, spaces left out) are not looked for in images
    ocr_min_chars: int = 16
    # the gate: images whose densest band of thumbnail rows is crossed by fewer thin strokes
    # (per pixel of its extent; see ocr.stroke_band_share) skip the text detector and
    # recognition (0: detect on every image)
    ocr_gate: float = 0.15
    # a JSON lines file of recognised texts by image hash, read and extended by each audit
    ocr_cache: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s) {sorted(unknown)}; scopes: {', '.join(SCOPES)}")
        if self.image_rule not in ("both", "any"):
            raise ValueError("image_rule must be 'both' or 'any'")
        if self.ngram_size < 1:
            raise ValueError("ngram_size must be at least 1")
        if not 0 < self.ocr_near_threshold <= 1:
            raise ValueError("ocr_near_threshold must be in (0, 1]")

    def source_fields(self) -> tuple[str, ...]:
        """Text fields of the audited rows."""
        return ("question", *ANSWER_FIELDS) if self.answers else ("question",)

    def image_variants(self) -> tuple[str, ...]:
        """Which reference views the image search compares with."""
        views = ["original"]
        views += ["flip"] if self.flips else []
        views += ["crop"] if self.crops else []
        views += ["crop+flip"] if self.flips and self.crops else []
        return tuple(views)

    def near_rule(self) -> NearRule:
        """The near tier's thresholds."""
        from spa_vl.audit.text import NearRule

        # NearRule's fields are these settings' names, but for n (ngram_size)
        return NearRule(n=self.ngram_size, **{f.name: getattr(self, f.name) for f in fields(NearRule)[1:]})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scopes"] = list(self.scopes)
        return d
