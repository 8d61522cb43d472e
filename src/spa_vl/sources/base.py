"""What every source reader yields: a ``SourceRow`` with the record and where it came from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from spa_vl.problems import Problem
from spa_vl.sources.images import FolderImages, ImageLoadError, ZipImages
from spa_vl.taxonomy import load_taxonomy

RECORD_FIELDS = (
    "id",
    "split",
    "image",
    "image_name",
    "question",
    "chosen",
    "rejected",
    "class1",
    "class2",
    "class3",
    "eval_set",
)
SPLITS = ("train", "validation", "test")


@dataclass
class SourceRow:
    """One input record. ``record`` is None when the input could not even be parsed; then
    ``problems`` says why and ``raw`` keeps the text for the quarantine."""

    file: str
    row: int
    record: dict | None
    problems: list[Problem] = field(default_factory=list)
    images: FolderImages | ZipImages | None = None
    raw: str | None = None

    def problem(self, fld: str, code: str, message: str) -> Problem:
        return Problem(self.file, self.row, fld, code, message)

    def with_problem(self, fld: str, code: str, message: str) -> SourceRow:
        self.problems.append(self.problem(fld, code, message))
        return self

    def image_bytes(self) -> bytes:
        """The image's encoded bytes, whether embedded, in a folder or in a zip."""
        image = (self.record or {}).get("image")
        if isinstance(image, dict):
            data = image.get("bytes")
            if isinstance(data, (bytes, bytearray)):
                return bytes(data)
            if image.get("path") and self.images is not None:
                return self.images.read(image["path"])
            raise ImageLoadError("missing-image", "the record embeds no image bytes")
        if isinstance(image, str):
            if self.images is None:
                raise ImageLoadError("missing-image", "the source has no image folder or zip")
            return self.images.read(image)
        raise ImageLoadError("missing-image", "the record has no image")


class Source(Protocol):
    format: str
    path: Path

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]: ...

    def files(self) -> list[Path]: ...


def recover_labels(record: dict) -> None:
    """Fill class1..class3 from ``image_name`` (``class1/class2/class3/<n>.<ext>``) when absent."""
    if record.get("class1") is not None or record.get("class3") is not None:
        return
    labels = load_taxonomy().recover_from_path(record.get("image_name"))
    if labels is not None:
        record["class1"], record["class2"], record["class3"] = labels


def fingerprint_files(root: Path, files: Iterable[Path]) -> str:
    """sha256 over the relative names and contents of a source's files: the same input, the
    same fingerprint, wherever it lies on disk."""
    h = hashlib.sha256()
    for f in sorted(files):
        rel = f.relative_to(root).as_posix() if f != root else f.name
        h.update(rel.encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
