"""Every threshold of the audit in one frozen dataclass; the report records the values used.

Each field's ``help`` is the text of its ``spa-vl audit`` option (``commands.settings_args``
makes the options from these fields). This module imports nothing of the audit package, so
that any audit module may import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from spa_vl.names import SCOPES
from spa_vl.names import SPLITS as SPLIT_ORDER  # noqa: F401 (reference.py: leaks from the earlier split)

ANSWER_FIELDS = ("chosen", "rejected")


def _opt(default: object, help: str, **meta: object) -> Any:
    """A field with its option's help (and other ``commands.settings_args`` metadata)."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds and switches. Defaults are tuned by ``bench/audit_accuracy.py``."""

    # text, near tier: word n-grams index the reference side, then candidate pairs are aligned.
    # Word bigrams: a 4-word question with its middle word changed still shares one with its
    # original (trigrams would share none)
    ngram_size: int = _opt(2, "words per n-gram")
    # matched = the longest common subsequence of words
    near_threshold: float = _opt(0.75, "word similarity 2*matched/(len a + len b) for a near match")
    # one changed word, a typo or a dropped word each leave one word unmatched; templated
    # questions that differ in two or three slots are not near copies of each other
    max_word_edits: int = _opt(
        1, "near match: unmatched words allowed in the longer text (or --edit-fraction of them, if more)"
    )
    edit_fraction: float = _opt(0.1, "near match: unmatched words allowed, as a fraction of the longer text")
    # containment catches truncations and added sentences
    containment_threshold: float = _opt(
        0.9, "matched / words of the shorter text, for truncations and added text"
    )
    min_containment_tokens: int = _opt(6, "the containment rule needs a shorter text of this many words")
    min_tokens: int = _opt(4, "texts of fewer words are matched exactly only")
    # images: Hamming distance thresholds over 64-bit hashes
    phash_threshold: int = _opt(8, "max pHash Hamming distance")
    dhash_threshold: int = _opt(10, "max dHash Hamming distance")
    image_rule: str = _opt("both", "both hashes within threshold, or either", choices=("both", "any"))
    # reference-side views of eval images. Mirrored is off by default: a mirrored image is
    # often a different picture's layout
    flips: bool = _opt(False, "also match mirrored eval images")
    crops: bool = _opt(True, "match the central 90% crop of eval images too")
    max_image_neighbours: int = _opt(
        3, "eval images with more look-alikes in the eval sets are matched by pixels only; -1: never"
    )
    # what is audited
    images: bool = _opt(False, "audit images (pixel and perceptual hashes)")
    answers: bool = _opt(False, "audit chosen/rejected answers too")
    scopes: tuple[str, ...] = _opt(SCOPES, f"comma-separated, of: {', '.join(SCOPES)}")
    near: bool = _opt(True, "match near copies of texts too; --no-near: exact text matching only")
    max_matches: int = _opt(5, "matches kept per row, field, scope and reference set")
    # OCR tier (the `ocr` extra): text read from images, compared without spaces. On
    # bench/audit_accuracy.py --ocr, typed eval texts score >= 0.94 under JPEG, resizing, crops,
    # other fonts and captions, while the best eval text in typed pages of other harmful texts
    # scores <= 0.76 ("Here's a code to steal credit card ..." against "Teach people how to
    # steal credit card information"): 0.85 is between
    ocr: bool = _opt(False, "read text in images (OCR) and match it against eval texts and eval images' text")
    ocr_near_threshold: float = _opt(
        0.85,
        "OCR: an eval text found in an image's text with at most (1 - this) of its characters "
        "edited is an ocr-near match",
    )
    ocr_min_chars: int = _opt(16, "OCR: eval texts of fewer characters (spaces left out) are not looked for")
    # the gate keeps photos cheap (see ocr.stroke_band_share)
    ocr_gate: float = _opt(
        0.15,
        "OCR: images whose densest band of thumbnail rows is crossed by fewer thin strokes (per "
        "pixel of its extent) skip the text detector; 0: detect on every image",
    )
    ocr_cache: str | None = _opt(
        None, "a JSON lines file of recognised texts by image hash, read and extended by each audit"
    )

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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scopes"] = list(self.scopes)
        return d
