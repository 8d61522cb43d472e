"""Eval-set adapters: each turns one published file layout into ``EvalItem``s.

Formats are those the sets' authors publish (each adapter names the files and the
columns it reads). An adapter reads every question variant a set has
(FigStep's question and instruction, MM-SafetyBench's four phrasings, ...). A file without the
columns an adapter needs raises ``EvalSetError`` naming the expected and the found columns.
Images are resolved against the file's folder (or ``image_root``); a missing image is counted,
not fatal, so a text-only copy of a set can still be audited.

This module holds the registry, the format detection and the loading; the items and the raw
readers live in ``evalset_items``, the adapters in ``evalset_formats`` and ``spa_vl_set``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from spa_vl.audit.evalset_formats import (
    read_advbench,
    read_figstep,
    read_generic,
    read_jailbreakv,
    read_mm_safetybench,
    read_siuo,
    read_vlguard,
    read_vlsbench,
)
from spa_vl.audit.evalset_items import EvalItem, EvalSet, EvalSetError, _Options, _read_csv, _read_json
from spa_vl.audit.spa_vl_set import read_spa_vl

__all__ = ["ADAPTERS", "FORMATS", "EvalItem", "EvalSet", "EvalSetError", "detect_format", "load_eval_set",
           "load_eval_spec", "parse_eval_spec"]  # fmt: skip


Adapter = Callable[[Path, _Options], list[EvalItem]]
ADAPTERS: dict[str, Adapter] = {
    "advbench": read_advbench,
    "figstep": read_figstep,
    "mm-safetybench": read_mm_safetybench,
    "vlguard": read_vlguard,
    "siuo": read_siuo,
    "vlsbench": read_vlsbench,
    "jailbreakv": read_jailbreakv,
    "spa-vl": read_spa_vl,
    "csv": lambda p, o: read_generic(p, o, "csv"),
    "json": lambda p, o: read_generic(p, o, "json"),
    "jsonl": lambda p, o: read_generic(p, o, "jsonl"),
}
FORMATS = tuple(ADAPTERS)
EXPECTED = {
    "advbench": "CSV with columns goal,target",
    "figstep": "CSV with columns dataset,category_id,task_id,category_name,question,instruction",
    "mm-safetybench": "processed_questions/NN-<Scenario>.json: {id: {Question, ...}}",
    "vlguard": "JSON list of {id, image, safe, harmful_category, instr-resp}",
    "siuo": "JSON list of {question_id, image, question, safety_warning, reference_answer}",
    "vlsbench": "JSON list of {instruction_id, instruction, image_path, ...}",
    "jailbreakv": "CSV with columns jailbreak_query, redteam_query, image_path, policy, ...",
    "spa-vl": "release folder (data/<folder>/test-*.parquet) or Hub-layout folder (test/*.parquet)",
    "csv": "CSV with --text-field columns",
    "json": "JSON list of objects with --text-field fields",
    "jsonl": "JSON Lines objects with --text-field fields",
}


def detect_format(path: Path) -> str:
    """Guess the adapter from the file's columns or the folder's layout."""
    if path.is_dir():
        from spa_vl.release.layout import ReleaseLayout, is_release

        if (is_release(path) and ReleaseLayout.of(path).files("default", "test")) or any(
            path.glob("test/*.parquet")
        ):
            return "spa-vl"
        if (path / "processed_questions").is_dir() or any(path.glob("[0-9][0-9]-*.json")):
            return "mm-safetybench"
    elif path.suffix.lower() == ".csv":
        cols, _ = _read_csv(path)
        if "goal" in cols or cols == ["target"]:
            return "advbench"
        if {"question", "instruction", "task_id"} <= set(cols):
            return "figstep"
        if "redteam_query" in cols:
            return "jailbreakv"
        return "csv"
    elif path.suffix.lower() in (".json", ".jsonl"):
        data = _read_json(path)
        if (
            isinstance(data, dict)
            and data
            and all(isinstance(v, dict) and "Question" in v for v in data.values())
        ):
            return "mm-safetybench"
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        if "instr-resp" in first:
            return "vlguard"
        if "question_id" in first and "question" in first:
            return "siuo"
        if "instruction_id" in first:
            return "vlsbench"
        return path.suffix.lower().lstrip(".")
    raise EvalSetError(
        f"{path}: unknown eval-set layout; name a format (NAME=PATH:FORMAT), one of: "
        + "; ".join(f"{k} ({v})" for k, v in EXPECTED.items())
    )


def load_eval_set(
    name: str,
    path: str | Path,
    format: str = "auto",
    *,
    text_fields: Iterable[str] = (),
    image_field: str | None = None,
    id_field: str | None = None,
    image_root: str | Path | None = None,
    load_images: bool = True,
) -> EvalSet:
    """Read one eval set with the named adapter (``auto`` guesses it)."""
    path = Path(path)
    if not path.exists():
        raise EvalSetError(f"{path}: no such file or folder (eval set {name!r})")
    if not path.is_dir() and not path.is_file():  # a FIFO or a device would block or never end
        raise EvalSetError(f"{path}: not a regular file or folder (eval set {name!r})")
    if format == "auto":
        format = detect_format(path)
    if format not in ADAPTERS:
        raise EvalSetError(f"unknown eval-set format {format!r}; formats: {', '.join(FORMATS)}")
    opts = _Options(
        tuple(text_fields),
        image_field,
        id_field,
        Path(image_root) if image_root else None,
        load_images,
    )
    try:
        items = ADAPTERS[format](path, opts)
    except (KeyError, TypeError, AttributeError) as exc:
        raise EvalSetError(f"{path}: not a {format} file ({EXPECTED[format]}): {exc!r}") from None
    return EvalSet(name, format, path, items, opts.missing_images)


# what a ":FORMAT" suffix looks like, as opposed to a colon inside a path
_FORMAT_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def parse_eval_spec(spec: str) -> tuple[str, str, str]:
    """``NAME=PATH[:FORMAT]`` (or just ``PATH``, if it exists) to (name, path, format).

    A bare word that is no file (``--eval advbench``) and a ``:FORMAT`` that names no adapter
    are refused with what was expected, rather than read as a path that does not exist."""
    expected = f"expected NAME=PATH[:FORMAT] (formats: {', '.join(FORMATS)})"
    name, sep, rest = spec.partition("=")
    if not sep:
        if not Path(spec).exists():
            raise EvalSetError(f"--eval {spec!r}: {expected}; {spec!r} is no file or folder either")
        name, rest = "", spec
    if not name.strip() and sep:
        raise EvalSetError(f"--eval {spec!r}: the NAME before '=' is empty; {expected}")
    path, fmt = rest, "auto"
    head, colon, tail = rest.rpartition(":")
    if colon and tail in FORMATS:
        path, fmt = head, tail
    elif colon and head and _FORMAT_LIKE.fullmatch(tail) and not Path(rest).exists():
        raise EvalSetError(f"--eval {spec!r}: unknown format {tail!r}; formats: {', '.join(FORMATS)}")
    if not path:
        raise EvalSetError(f"--eval {spec!r}: no PATH after '='; {expected}")
    return name, path, fmt


def load_eval_spec(
    spec: str,
    *,
    text_fields: Iterable[str] = (),
    image_field: str | None = None,
    id_field: str | None = None,
    image_roots: dict[str, str] | None = None,
    load_images: bool = True,
) -> EvalSet:
    """The eval set of one ``--eval NAME=PATH[:FORMAT]`` option; without a NAME it is named
    after its format. ``image_roots`` maps set names to their image folders."""
    name, path, fmt = parse_eval_spec(spec)
    es = load_eval_set(
        name or fmt,
        path,
        fmt,
        text_fields=text_fields,
        image_field=image_field,
        id_field=id_field,
        image_root=(image_roots or {}).get(name),
        load_images=load_images,
    )
    if not name:
        es.name = es.format
    return es
