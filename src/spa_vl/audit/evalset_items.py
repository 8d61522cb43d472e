"""Eval sets' items and the readers of raw files the adapters share: text, CSV, JSON, image
folders, each failing with ``EvalSetError`` naming the file and what was expected."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from spa_vl.sources.images import FolderImages, ImageLoadError


class EvalSetError(ValueError):
    """An eval-set file that cannot be read in the requested format."""


@dataclass
class EvalItem:
    id: str
    field: str  # the set's own name for the text (goal, question, instruction, ...) or "image"
    text: str | None
    is_answer: bool = False  # a reference answer or target, not a prompt
    image: bytes | None = None
    image_label: str | None = None


@dataclass
class EvalSet:
    name: str
    format: str
    path: Path
    items: list[EvalItem]
    missing_images: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_texts(self) -> int:
        """Prompts (questions, instructions, goals)."""
        return sum(1 for it in self.items if it.text and it.field != "image" and not it.is_answer)

    @property
    def n_answers(self) -> int:
        """Reference answers and targets (audited with ``--answers``)."""
        return sum(1 for it in self.items if it.text and it.is_answer)

    @property
    def n_images(self) -> int:
        return sum(1 for it in self.items if it.image is not None)


@dataclass
class _Options:
    text_fields: tuple[str, ...] = ()
    image_field: str | None = None
    id_field: str | None = None
    image_root: Path | None = None
    load_images: bool = True
    missing_images: int = 0  # counted by the adapters as they go


def _read_text(path: Path) -> str:
    """The file as text: UTF-8 (a BOM dropped), not empty, or ``EvalSetError`` saying where."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvalSetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EvalSetError(
            f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} "
            f"(offset {exc.start}); re-save the file as UTF-8"
        ) from None
    if not text.strip():
        raise EvalSetError(f"{path}: the file is empty")
    return text


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    # newline="" lets csv accept CRLF files
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise EvalSetError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    return [c.strip() for c in reader.fieldnames or []], rows


def _read_json(path: Path) -> object:
    text = _read_text(path)
    if path.suffix.lower() == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvalSetError(f"{path}: malformed JSON at line {lineno}: {exc.msg}") from None
        return records
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvalSetError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise EvalSetError(f"{path}: JSON nested too deeply to read") from None


def _text(path: Path, where: str, value: object) -> str | None:
    """A text field's value: a string or null; anything else names its place."""
    if value is None or isinstance(value, str):
        return value
    raise EvalSetError(f"{path}: {where}: expected text, found {type(value).__name__} {value!r:.40}")


def _objects(path: Path, fmt: str, data: object, needed: str) -> list[dict]:
    """``data`` as a list of objects, or ``EvalSetError`` naming the first record that is not."""
    if not isinstance(data, list):
        raise EvalSetError(
            f"{path}: not a {fmt} file: expected a JSON list of objects{needed}, "
            f"found a JSON {type(data).__name__}"
        )
    for i, x in enumerate(data):
        if not isinstance(x, dict):
            raise EvalSetError(
                f"{path}: record {i + 1}: expected an object{needed}, found {type(x).__name__}"
            )
    return data


def _require(
    path: Path, fmt: str, found: Iterable[str], needed: Iterable[str], where: str = "columns"
) -> None:
    found, needed = list(found), list(needed)
    missing = [c for c in needed if c not in found]
    if missing:
        raise EvalSetError(
            f"{path}: not a {fmt} file: expected {where} {', '.join(needed)}; "
            f"missing {', '.join(missing)} (found: {', '.join(map(str, found)) or 'none'})"
        )


def _list_of_objects(path: Path, fmt: str, needed: list[str]) -> list[dict]:
    data = _objects(path, fmt, _read_json(path), f" with fields {', '.join(needed)}")
    if data:
        _require(path, fmt, data[0].keys(), needed, "fields")
    return data


class _Images:
    """Finds an eval set's images by relative path under a few likely roots."""

    def __init__(self, roots: list[Path], opts: _Options):
        self.stores = [FolderImages(r) for r in roots if r.is_dir()]
        self.opts = opts

    def read(self, rel: str | None, count_missing: bool = True) -> bytes | None:
        if not rel or not self.opts.load_images:
            return None
        for store in self.stores:
            try:
                return store.read(rel)
            except ImageLoadError:
                continue
        self.opts.missing_images += count_missing
        return None


def _image_roots(path: Path, opts: _Options, extra: Iterable[str] = ()) -> list[Path]:
    base = opts.image_root or (path if path.is_dir() else path.parent)
    return [base, *(base / e for e in ("images", "imgs", *extra))]


def _add_image(items: list[EvalItem], images: _Images, id_: str, rel, text) -> None:
    if isinstance(rel, str):
        data = images.read(rel)
        if data is not None:
            items.append(EvalItem(id_, "image", text, image=data, image_label=rel))


def _add_bytes(items: list[EvalItem], id_: str, image, text, opts: _Options) -> None:
    """An image item from parquet bytes: a ``{bytes, path}`` struct (labelled by its path) or
    bytes (by the row id)."""
    data = image.get("bytes") if isinstance(image, dict) else image
    if data and opts.load_images:
        label = image.get("path") if isinstance(image, dict) else None
        items.append(EvalItem(id_, "image", text, image=bytes(data), image_label=label or id_))
