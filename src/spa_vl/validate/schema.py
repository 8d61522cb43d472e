"""The record schema (schema/record.schema.json): a hand-written pre-check and the wording.

The schema file is the authority. ``fast_schema_ok`` implements the same rules so that the common
case (a valid record) skips jsonschema, which is ~50x slower; only records the pre-check doubts
are run through jsonschema, and ``schema_problems`` words its errors as problems with their place.
"""

from __future__ import annotations

import json
import re
from functools import cache

import jsonschema

from spa_vl._resources import schema_path
from spa_vl.names import EVAL_SETS
from spa_vl.problems import Problem
from spa_vl.sources import SourceRow


@cache
def record_schema() -> dict:
    """schema/record.schema.json, parsed once."""
    return json.loads(schema_path("record.schema.json").read_text(encoding="utf-8"))


@cache
def schema_validator() -> jsonschema.Draft202012Validator:
    """The schema's validator (the schema itself checked first, once)."""
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


def text_ok(value: object, max_len: int = 65536) -> bool:
    """A text field as the schema wants it: 1..max_len characters, not only whitespace, no NUL."""
    return (
        isinstance(value, str) and 0 < len(value) <= max_len and not value.isspace() and "\x00" not in value
    )


def fast_schema_ok(r: dict) -> bool:
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
    if not text_ok(r["question"], 16384):
        return False
    for key in ("class1", "class2", "class3"):
        v = r.get(key)
        if v is not None and not (isinstance(v, str) and v):
            return False
    chosen, rejected, eval_set = r.get("chosen"), r.get("rejected"), r.get("eval_set")
    if split in ("train", "validation"):
        return text_ok(chosen) and text_ok(rejected) and eval_set is None
    if split == "test":
        return chosen is None and rejected is None and eval_set in EVAL_SETS
    return False


def unicode_problems(row: SourceRow, record: dict) -> list[Problem]:
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


def json_view(record: dict) -> dict:
    """The record as jsonschema sees it: embedded bytes stand in as a base64 string."""
    image = record.get("image")
    if isinstance(image, dict) and isinstance(image.get("bytes"), (bytes, bytearray)):
        return {**record, "image": {**image, "bytes": ""}}
    return record


def short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_problems(row: SourceRow, record: dict) -> list[Problem]:
    """jsonschema's errors for ``record``, worded as problems with their field."""
    problems = []
    split = record.get("split")
    for err in schema_validator().iter_errors(json_view(record)):
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
            inst = record.get("image")  # the original, not the base64 stand-in of json_view
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
        return "wrong-type", f"must be {want}, got {type(inst).__name__} {short(inst)}"
    if validator == "minLength":
        return "empty-text", "must not be empty"
    if validator == "maxLength":
        return "too-long", f"is {len(inst):,} characters, over the limit of {err.validator_value:,}"
    if validator == "pattern":
        if "\\S" in err.validator_value:
            return "empty-text", "must hold text, not only whitespace"
        if "u0000" in err.validator_value or "\\x00" in err.validator_value:
            return "nul-byte", "must not contain NUL bytes"
        return "bad-value", f"{short(inst)} does not match {err.validator_value!r}"
    if validator == "const" and err.validator_value is None:
        if path in ("chosen", "rejected"):
            return "answer-on-test", f"must be absent on {split} rows, got {short(inst)}"
        return "bad-value", f"must be absent (null) on {split} rows, got {short(inst)}"
    if validator in ("enum", "const"):
        allowed = err.validator_value if validator == "enum" else [err.validator_value]
        return "bad-value", f"must be one of {allowed}, got {short(inst)}"
    if path == "id" and validator == "not":
        return "bad-id", f"{short(inst)} must not contain whitespace or NUL bytes"
    if path == "image" and validator in ("oneOf", "not"):
        if isinstance(inst, str) and len(inst) > 4096:
            return "too-long", f"is {len(inst):,} characters, over the limit of 4,096"
        if isinstance(inst, str):
            return "bad-image-ref", (
                f"{short(inst)} must be a relative path inside the image root (not empty, "
                "no '..', not absolute, no NUL)"
            )
        if isinstance(inst, dict):
            got = ", ".join(f"{k}: {type(x).__name__}" for k, x in inst.items())
            return "bad-image-ref", (
                f"an embedded image must be {{bytes: bytes or null, path: string or null}}, got {{{got}}}"
            )
        return "wrong-type", (
            "must be a relative path or an embedded {bytes, path} object, "
            f"got {type(inst).__name__} {short(inst)}"
        )
    return "schema", f"{short(inst)}: {err.message[:200]}"
