"""Record checks, one record at a time: the schema, Unicode, the taxonomy, identical answers,
unique ids and the image; ``validate_rows`` runs them over a stream of rows (the row path).

Every problem of a record is collected with its place (``file:row > field``); checking never
stops at the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from spa_vl.image_check import check_image
from spa_vl.names import SPLITS
from spa_vl.problems import Problem
from spa_vl.sources import SourceRow
from spa_vl.sources.images import ImageLoadError
from spa_vl.taxonomy import Taxonomy, load_taxonomy
from spa_vl.validate.quarantine import Quarantine
from spa_vl.validate.report import SplitCounts, ValidationOptions, ValidationReport, ValidRecord, tally
from spa_vl.validate.schema import fast_schema_ok, schema_problems, short, text_ok, unicode_problems


class RecordValidator:
    """Checks one record at a time; remembers ids to catch duplicates across the stream."""

    def __init__(self, options: ValidationOptions | None = None, taxonomy: Taxonomy | None = None):
        self.options = options or ValidationOptions()
        self.taxonomy = taxonomy or load_taxonomy()
        self._seen: dict[str, str] = {}
        # The 53 valid (class1, class2, class3) triples: the common case is one set lookup.
        self._paths = frozenset(self.taxonomy.path(s) for s in self.taxonomy.names("subcategory"))

    def check(self, row: SourceRow) -> tuple[list[Problem], bytes | None]:
        """All problems of ``row`` and, when the image could be read, its bytes."""
        problems = list(row.problems)
        record = row.record
        if record is None:
            return problems or [row.problem("<record>", "unreadable", "the record could not be read")], None
        if not fast_schema_ok(record):
            # The pre-check is stricter than the schema in a few corners (e.g. embedded bytes
            # given as text); the schema is the authority, so only its errors count.
            problems += schema_problems(row, record)
        problems += unicode_problems(row, record)
        labels = (record.get("class1"), record.get("class2"), record.get("class3"))
        if not all(isinstance(x, (str, type(None))) for x in labels) or labels not in self._paths:
            problems += self._label_problems(row, record)
        chosen, rejected = record.get("chosen"), record.get("rejected")
        if text_ok(chosen) and text_ok(rejected) and chosen.strip() == rejected.strip():
            problems.append(row.problem("rejected", "identical-answers", "chosen and rejected are identical"))
        rid = record.get("id")
        # A reader's placeholder for an unusable id (its problem is on `id`) is no id to keep.
        if isinstance(rid, str) and not any(p.field == "id" for p in row.problems):
            here = f"{row.file}:{row.row}"
            first = self._seen.setdefault(rid, here)
            if first != here:
                problems.append(row.problem("id", "duplicate-id", f"id {rid!r} was already used at {first}"))
        image = None
        if self.options.check_images or not problems:
            image, image_problems = self._image(row)
            problems += image_problems
        return problems, image

    def _image(self, row: SourceRow) -> tuple[bytes | None, list[Problem]]:
        try:
            data = row.image_bytes()
        except ImageLoadError as exc:
            return None, [row.problem("image", exc.code, str(exc))]
        if not self.options.check_images:
            return data, []
        found = check_image(data, self.options.limits, deep=self.options.deep)
        return data, [row.problem("image", code, msg) for code, msg in found]

    def _label_problems(self, row: SourceRow, r: dict) -> list[Problem]:
        labels = [r.get("class1"), r.get("class2"), r.get("class3")]
        if all(x is None for x in labels) or not all(isinstance(x, str) for x in labels if x is not None):
            return []  # unlabeled, or a type error the schema already reports
        tax, problems = self.taxonomy, []
        if None in labels:
            missing = [f"class{i + 1}" for i, x in enumerate(labels) if x is None]
            return [
                row.problem(m, "incomplete-labels", "some class labels are set, this one is not")
                for m in missing
            ]
        c1, c2, c3 = labels
        for key, level, value in (
            ("class1", "domain", c1),
            ("class2", "category", c2),
            ("class3", "subcategory", c3),
        ):
            if not tax.contains(level, value):
                problems.append(row.problem(key, "unknown-label", f"{short(value)} is not a SPA-VL {level}"))
        if problems:
            return problems
        if tax.parent("subcategory", c3) != c2:
            problems.append(
                row.problem(
                    "class3",
                    "label-mismatch",
                    f"{c3!r} belongs under {tax.parent('subcategory', c3)!r}, not {c2!r}",
                )
            )
        if tax.parent("category", c2) != c1:
            problems.append(
                row.problem(
                    "class2",
                    "label-mismatch",
                    f"{c2!r} belongs under {tax.parent('category', c2)!r}, not {c1!r}",
                )
            )
        return problems


def validate_rows(
    rows: Iterable[SourceRow],
    report: ValidationReport,
    options: ValidationOptions | None = None,
    quarantine: Quarantine | None = None,
    validator: RecordValidator | None = None,
) -> Iterator[ValidRecord]:
    """Validate a stream; yield accepted records, quarantine the rest, fill ``report``.
    Pass one ``validator`` to several calls to keep ids unique across them."""
    validator = validator or RecordValidator(options)
    for split in SPLITS:
        report.splits.setdefault(split, SplitCounts())
    for row in rows:
        problems, image = validator.check(row)
        if tally(report, row, problems, quarantine):
            yield ValidRecord(row.record, image, row.file, row.row)
