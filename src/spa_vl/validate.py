"""Record validation: the JSON Schema, the taxonomy, the image and unique ids.

Every problem of every record is collected with its place (``file:row > field``); validation
never stops at the first. Rejected records go to a quarantine JSONL with their reasons, and the
report's counts reconcile: read = accepted + quarantined.

The schema file is the authority. A hand-written pre-check that implements the same rules lets
the common case (a valid record) skip jsonschema, which is ~50x slower; only records the
pre-check doubts are run through jsonschema, which then words the errors.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import jsonschema

from spa_vl._resources import schema_path
from spa_vl.image_check import ImageLimits, check_image
from spa_vl.problems import Problem
from spa_vl.sources import SPLITS, SourceRow, open_source
from spa_vl.sources.hub_parquet import HubParquetReader
from spa_vl.sources.images import ImageLoadError
from spa_vl.taxonomy import Taxonomy, load_taxonomy

MAX_EXAMPLES = 20


@dataclass(frozen=True)
class ValidationOptions:
    deep: bool = False  # decode every image fully instead of reading headers
    check_images: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)
    # Read an incomplete source (a shard missing, stray files) instead of refusing it; the
    # report's ``partial`` then lists what is missing or was not read.
    allow_partial: bool = False


@dataclass
class SplitCounts:
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    unlabeled: int = 0  # accepted rows whose class labels are unknown


@dataclass
class ValidationReport:
    source: str = ""
    format: str = ""
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    problems: Counter = field(default_factory=Counter)  # code -> number of problems
    examples: list[str] = field(default_factory=list)  # the first problems, as text
    quarantine: str | None = None
    # An allow_partial run: [{file, problem}] for each missing shard, stray or special file.
    partial: list[dict] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)  # files left out on purpose, and why
    notes: list[str] = field(default_factory=list)  # how the counts were made, where unusual

    @property
    def ok(self) -> bool:
        return self.quarantined == 0

    @property
    def reconciles(self) -> bool:
        return self.read == self.accepted + self.quarantined and all(
            s.read == s.accepted + s.quarantined for s in self.splits.values()
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = dict(sorted(self.problems.items()))
        d["reconciles"] = self.reconciles
        return d

    def summary(self) -> str:
        lines = [
            f"source   {self.source} ({self.format})",
            f"records  read {self.read:,} = accepted {self.accepted:,} + quarantined {self.quarantined:,}",
        ]
        for name, s in self.splits.items():
            lines.append(
                f"  {name:<10} read {s.read:>7,}  accepted {s.accepted:>7,}  "
                f"quarantined {s.quarantined:>5,}  unlabeled {s.unlabeled:>5,}"
            )
        if self.problems:
            lines.append("problems " + ", ".join(f"{c} x{n}" for c, n in sorted(self.problems.items())))
            lines += [f"  {e}" for e in self.examples]
        if self.partial:
            lines.append("partial source (allowed): what is missing or was not read:")
            lines += [f"  {p['file']}: {p['problem']}" for p in self.partial]
        if self.ignored:
            lines.append("not read: " + "; ".join(f"{p['file']} ({p['problem']})" for p in self.ignored))
        lines += [f"note     {n}" for n in self.notes]
        if self.quarantine:
            lines.append(f"quarantine {self.quarantine}")
        return "\n".join(lines)


@dataclass
class ValidRecord:
    """An accepted record with its image bytes, as read (never re-encoded)."""

    record: dict
    image: bytes
    file: str
    row: int


# -- the schema ----------------------------------------------------------------------------


@cache
def record_schema() -> dict:
    return json.loads(schema_path("record.schema.json").read_text(encoding="utf-8"))


@cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    schema = record_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


_ID = re.compile(r"[^\x00\s]+")
_BAD_PATH = re.compile(r"^/|^[A-Za-z]:|(^|[/\\])\.\.([/\\]|$)|\x00")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_FIELDS = ("id", "image", "image_name", "question", "chosen", "rejected")
_TEXT_FIELDS += ("class1", "class2", "class3")
_FIELDS = frozenset(record_schema()["properties"])
_REQUIRED = frozenset(record_schema()["required"])


def _text_ok(value: object, max_len: int = 65536) -> bool:
    return (
        isinstance(value, str) and 0 < len(value) <= max_len and not value.isspace() and "\x00" not in value
    )


def _fast_schema_ok(r: dict) -> bool:
    """True only when the record surely satisfies record.schema.json (tests hold the two equal)."""
    if not r.keys() >= _REQUIRED or not r.keys() <= _FIELDS:
        return False
    rid, split, image = r["id"], r["split"], r["image"]
    if not (isinstance(rid, str) and len(rid) <= 256 and _ID.fullmatch(rid)):
        return False
    if isinstance(image, str):
        if not (0 < len(image) <= 4096) or _BAD_PATH.search(image):
            return False
    elif isinstance(image, dict):
        if "bytes" not in image or not image.keys() <= {"bytes", "path"}:
            return False
        if not isinstance(image["bytes"], (bytes, type(None))):
            return False
        if not isinstance(image.get("path"), (str, type(None))):
            return False
    else:
        return False
    name = r.get("image_name")
    if name is not None and not (isinstance(name, str) and len(name) <= 4096):
        return False
    if not _text_ok(r["question"], 16384):
        return False
    for key in ("class1", "class2", "class3"):
        v = r.get(key)
        if v is not None and not (isinstance(v, str) and v):
            return False
    chosen, rejected, eval_set = r.get("chosen"), r.get("rejected"), r.get("eval_set")
    if split in ("train", "validation"):
        return _text_ok(chosen) and _text_ok(rejected) and eval_set is None
    if split == "test":
        return chosen is None and rejected is None and eval_set in ("harm", "help")
    return False


def _unicode_problems(row: SourceRow, record: dict) -> list[Problem]:
    """Lone surrogates (from JSON escapes such as ``\\ud800``) pass the schema but are not
    Unicode: no UTF-8 writer (parquet, JSON) accepts them. ``image.path`` is text too."""
    image = record.get("image")
    values = [(key, record.get(key)) for key in _TEXT_FIELDS]
    if isinstance(image, dict):
        values.append(("image.path", image.get("path")))
    return [
        row.problem(key, "bad-unicode", "holds a lone surrogate (U+D800..U+DFFF): not valid text")
        for key, v in values
        if isinstance(v, str) and not v.isascii() and _SURROGATE.search(v)
    ]


def _json_view(record: dict) -> dict:
    """The record as jsonschema sees it: embedded bytes stand in as a base64 string."""
    image = record.get("image")
    if isinstance(image, dict) and isinstance(image.get("bytes"), (bytes, bytearray)):
        return {**record, "image": {**image, "bytes": ""}}
    return record


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _schema_problems(row: SourceRow, record: dict) -> list[Problem]:
    problems = []
    split = record.get("split")
    for err in _schema_validator().iter_errors(_json_view(record)):
        path = ".".join(str(p) for p in err.absolute_path) or "<record>"
        v, inst = err.validator, err.instance
        if v == "required":
            missing = [k for k in err.validator_value if k not in (inst if isinstance(inst, dict) else {})]
            for key in missing:
                needed = (
                    f" on {split} rows"
                    if path == "<record>" and err.relative_schema_path[0] == "allOf"
                    else ""
                )
                problems.append(
                    row.problem(key, "missing-field", f"required field {key!r} is missing{needed}")
                )
            continue
        if v == "additionalProperties":
            extra = sorted(set(inst) - set(err.schema.get("properties", {})))
            for key in extra:
                prefix = "" if path == "<record>" else path + "."
                problems.append(row.problem(prefix + key, "unexpected-field", f"unexpected field {key!r}"))
            continue
        if path == "image":
            inst = record.get("image")  # the original, not the base64 stand-in of _json_view
        code, message = _describe(path, v, err, inst, split)
        problems.append(row.problem(path, code, message))
    # A rule stated twice (a text's own limit and the split's) gives two errors of one kind on
    # one field; keep the last, which comes from the more specific rule.
    unique = {(p.field, p.code): p for p in problems}
    return [p for p in problems if unique[(p.field, p.code)] is p]


def _describe(path: str, validator: str, err, inst: object, split) -> tuple[str, str]:
    if validator == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return "wrong-type", f"must be {want}, got {type(inst).__name__} {_short(inst)}"
    if validator == "minLength":
        return "empty-text", "must not be empty"
    if validator == "maxLength":
        return "too-long", f"is {len(inst):,} characters, over the limit of {err.validator_value:,}"
    if validator == "pattern":
        if "\\S" in err.validator_value:
            return "empty-text", "must hold text, not only whitespace"
        if "u0000" in err.validator_value or "\\x00" in err.validator_value:
            return "nul-byte", "must not contain NUL bytes"
        return "bad-value", f"{_short(inst)} does not match {err.validator_value!r}"
    if validator == "const" and err.validator_value is None:
        if path in ("chosen", "rejected"):
            return "answer-on-test", f"must be absent on {split} rows, got {_short(inst)}"
        return "bad-value", f"must be absent (null) on {split} rows, got {_short(inst)}"
    if validator in ("enum", "const"):
        allowed = err.validator_value if validator == "enum" else [err.validator_value]
        return "bad-value", f"must be one of {allowed}, got {_short(inst)}"
    if path == "id" and validator == "not":
        return "bad-id", f"{_short(inst)} must not contain whitespace or NUL bytes"
    if path == "image" and validator in ("oneOf", "not"):
        if isinstance(inst, str) and len(inst) > 4096:
            return "too-long", f"is {len(inst):,} characters, over the limit of 4,096"
        if isinstance(inst, str):
            return "bad-image-ref", (
                f"{_short(inst)} must be a relative path inside the image root (not empty, "
                "no '..', not absolute, no NUL)"
            )
        if isinstance(inst, dict):
            got = ", ".join(f"{k}: {type(x).__name__}" for k, x in inst.items())
            return "bad-image-ref", (
                f"an embedded image must be {{bytes: bytes or null, path: string or null}}, got {{{got}}}"
            )
        return "wrong-type", (
            "must be a relative path or an embedded {bytes, path} object, "
            f"got {type(inst).__name__} {_short(inst)}"
        )
    return "schema", f"{_short(inst)}: {err.message[:200]}"


# -- record checks -------------------------------------------------------------------------


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
        if not _fast_schema_ok(record):
            # The pre-check is stricter than the schema in a few corners (e.g. embedded bytes
            # given as text); the schema is the authority, so only its errors count.
            problems += _schema_problems(row, record)
        problems += _unicode_problems(row, record)
        labels = (record.get("class1"), record.get("class2"), record.get("class3"))
        if not all(isinstance(x, (str, type(None))) for x in labels) or labels not in self._paths:
            problems += self._label_problems(row, record)
        chosen, rejected = record.get("chosen"), record.get("rejected")
        if _text_ok(chosen) and _text_ok(rejected) and chosen.strip() == rejected.strip():
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
                problems.append(row.problem(key, "unknown-label", f"{_short(value)} is not a SPA-VL {level}"))
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


# -- streams -------------------------------------------------------------------------------


class Quarantine:
    """Rejected records, one JSON line each, with their reasons. Embedded images are kept as
    base64, so a quarantined record can be fixed and fed back as canonical JSONL."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._fh = None

    def __enter__(self) -> Quarantine:
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # backslashreplace: a lone surrogate from a JSON escape is written back as the
            # same escape instead of crashing the run.
            self._fh = open(self.path, "w", encoding="utf-8", errors="backslashreplace")
        return self

    def __exit__(self, *exc) -> None:
        if self._fh:
            self._fh.close()

    def write(self, row: SourceRow, problems: list[Problem]) -> None:
        if not self._fh:
            return
        line = {
            "file": row.file,
            "row": row.row,
            "id": (row.record or {}).get("id"),
            "reasons": [p.to_dict() for p in problems],
            "record": None if row.record is None else dict(row.record),
            "raw": row.raw,
        }
        self._fh.write(json.dumps(line, ensure_ascii=False, default=_b64) + "\n")


def _b64(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return repr(value)


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


def tally(
    report: ValidationReport, row: SourceRow, problems: list[Problem], quarantine: Quarantine | None
) -> bool:
    """Count one checked row in ``report`` (and quarantine it when it has problems); True when
    it is accepted."""
    split = (row.record or {}).get("split")
    counts = report.splits.setdefault(split if split in SPLITS else "unknown", SplitCounts())
    report.read += 1
    counts.read += 1
    unreadable = row.record is None and any(p.field == "<file>" for p in problems)
    if unreadable and UNREADABLE_NOTE not in report.notes:
        report.notes.append(UNREADABLE_NOTE)
    if problems:
        report.quarantined += 1
        counts.quarantined += 1
        for p in problems:
            report.problems[p.code] += 1
            if len(report.examples) < MAX_EXAMPLES:
                report.examples.append(str(p))
        if quarantine:
            quarantine.write(row, problems)
        return False
    report.accepted += 1
    counts.accepted += 1
    if row.record.get("class3") is None:
        counts.unlabeled += 1
    return True


# Said in the report whenever a file (or its rest) could not be read: its problem is on <file>.
UNREADABLE_NOTE = (
    "rows that cannot be read (an unreadable file, or the unreadable rest of a file) cannot be "
    "counted: each such file or rest counts as one read and quarantined record, at the row "
    "where reading stopped (row 0: the file could not be opened)"
)
PARALLEL_MIN_ROWS = 20_000  # below this, starting worker processes costs more than it saves


def validate_source(
    path: str | Path,
    format: str = "auto",
    options: ValidationOptions | None = None,
    quarantine: str | Path | None = None,
    progress: bool = False,
    workers: int = 1,
    fast: bool = True,
) -> ValidationReport:
    """Validate a whole raw source and return the report (consumes the stream).

    ``workers`` > 1: a Hub-layout source of at least PARALLEL_MIN_ROWS rows is validated by
    that many processes, one file at a time each. The report and the quarantine are the same
    as with one process (files are merged in reading order; ids are unique by construction in
    that layout, so no cross-file id check is lost). Opt-in: on a busy 2-core machine the
    workers' start-up cost more than they saved (bench/README.md).

    ``fast``: a source with ``batches()`` (Hub layout, release folder) is checked column batch
    by column batch (``spa_vl.fastpath``), with the same report and quarantine as row by row.

    An incomplete source raises ``spa_vl.errors.DataError`` unless ``options.allow_partial``;
    then ``report.partial`` lists what is missing or was not read.
    """
    options = options or ValidationOptions()
    source = open_source(path, format, allow_partial=options.allow_partial)
    report = ValidationReport(
        source=str(path), format=source.format, quarantine=str(quarantine) if quarantine else None
    )
    report.partial = [p.to_dict() for p in source.partial]
    report.ignored = [p.to_dict() for p in source.ignored()]
    parts = source.parts() if workers > 1 and isinstance(source, HubParquetReader) else []
    if len(parts) > 1 and sum(p.rows or 0 for p in parts) >= PARALLEL_MIN_ROWS:
        workers = min(workers, len(parts))
        from spa_vl.validate_parallel import validate_parts

        validate_parts(source, parts, report, options, quarantine, progress, workers, fast)
        return report
    if fast and hasattr(source, "batches"):
        from tqdm import tqdm

        from spa_vl.fastpath import validate_batches

        with Quarantine(quarantine) as q, tqdm(desc="validate", unit=" rows", disable=not progress) as bar:
            for _ in validate_batches(source.batches(), report, options, q, progress=bar):
                pass
        return report
    rows = source.rows()
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc="validate", unit=" rows")
    with Quarantine(quarantine) as q:
        for _ in validate_rows(rows, report, options, q):
            pass
    return report
