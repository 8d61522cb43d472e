"""What every source reader yields: a ``SourceRow`` with the record and where it came from."""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import xxhash

from spa_vl.problems import Problem
from spa_vl.release.layout import (  # the shard numbering of the Hub and of releases
    numbered_name,
    numbered_pattern,
    shard_index,
)
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


class HugeNumber:
    """A JSON number literal too long for ``int()`` (Python refuses more than 4,300 digits):
    kept as a marker, so that the record is rejected with its place (the schema wants a string
    or an integer there) instead of the whole file failing with a ValueError."""

    __slots__ = ("digits",)

    def __init__(self, literal: str):
        self.digits = len(literal.lstrip("-"))

    def __repr__(self) -> str:
        return f"<a number of {self.digits:,} digits>"


def parse_int(literal: str) -> int | HugeNumber:
    """``json``'s ``parse_int`` hook: ``int()``, or a ``HugeNumber`` past Python's limit."""
    try:
        return int(literal)
    except ValueError:
        return HugeNumber(literal)


class Source(Protocol):
    format: str
    path: Path
    partial: list[LayoutProblem]  # what an allow_partial open accepted (see open_source)

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]: ...

    def files(self) -> list[Path]: ...

    def layout_problems(self) -> list[LayoutProblem]: ...

    def ignored(self) -> list[LayoutProblem]: ...


def recover_labels(record: dict) -> None:
    """Fill class1..class3 from ``image_name`` (``class1/class2/class3/<n>.<ext>``) when absent."""
    if record.get("class1") is not None or record.get("class3") is not None:
        return
    labels = load_taxonomy().recover_from_path(record.get("image_name"))
    if labels is not None:
        record["class1"], record["class2"], record["class3"] = labels


FINGERPRINT = "xxh3_128"  # as datasets fingerprints (xxhash): ~15x sha256's speed


def fingerprint_files(root: Path, files: Iterable[Path]) -> str:
    """``xxh3_128:<hex>`` over the relative names and contents of a source's files: the same
    input, the same fingerprint, wherever it lies on disk. A change detector, not a checksum
    against tampering (the release's own files get sha256 in MANIFEST.json); xxh3 keeps it to
    a few hundredths of a second per GB where sha256 took ~0.8 s, a sixth of a build."""
    h = xxhash.xxh3_128()
    # One buffer read into again and again: a fresh 4 MiB bytes object per read cost more
    # (allocation and page faults) than hashing it.
    buf = bytearray(1 << 22)
    view = memoryview(buf)
    for f in sorted(files):
        rel = f.relative_to(root).as_posix() if f != root else f.name
        h.update(rel.encode() + b"\0")
        if not_a_file(f):  # never open a FIFO or a device: it could block or never end
            h.update(b"<not a regular file>\0")
            continue
        with open(f, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                h.update(view[:n])
        h.update(b"\0")
    return f"{FINGERPRINT}:{h.hexdigest()}"


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- the layout's files: complete, consistent, nothing skipped in silence ---------------------------

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def not_a_file(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file ("a FIFO (named pipe)", "a folder", ...),
    or None. ``stat`` never blocks, where ``open`` on a FIFO waits for a writer forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


@dataclass(frozen=True)
class LayoutProblem:
    """A file (or a missing one) that makes the source incomplete or inconsistent."""

    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"

    def to_dict(self) -> dict:
        return {"file": self.file, "problem": self.problem}


def shard_set_problems(files: Iterable[Path]) -> list[LayoutProblem]:
    """Every numbered set among ``files`` must be whole: one count, each index below it, no
    index missing. A missing shard is named by the file name it would have."""
    sets: dict[tuple[Path, str, str], list[tuple[int, int, Path]]] = defaultdict(list)
    for f in files:
        if (found := shard_index(f)) is not None:
            name, index, count = found
            sets[(f.parent, name, f.suffix)].append((index, count, f))
    problems = []
    for (folder, name, suffix), members in sorted(sets.items()):
        counts = sorted({c for _, c, _ in members})
        pattern = display_path(folder / numbered_pattern(name, suffix))
        if len(counts) > 1:
            files_by_count = "; ".join(
                f"{c}: " + ", ".join(display_path(f) for _, k, f in sorted(members) if k == c) for c in counts
            )
            problems.append(
                LayoutProblem(pattern, f"the set has {len(counts)} different shard counts ({files_by_count})")
            )
        for index, count, f in sorted(members):
            if index >= count:
                problems.append(
                    LayoutProblem(display_path(f), f"shard index {index} is at or past the count {count}")
                )
        present = {i for i, _, _ in members}
        for count in counts:
            for i in range(count):
                if i not in present:
                    missing = folder / numbered_name(name, i, count, suffix)
                    problems.append(
                        LayoutProblem(display_path(missing), f"missing: shard {i} of {count} of {pattern}")
                    )
    return problems


def special_file_problems(files: Iterable[Path]) -> list[LayoutProblem]:
    """Names the layout would read that are not regular files (FIFOs, devices, folders)."""
    return [
        LayoutProblem(display_path(f), f"is {what}, not a regular file; it is not read")
        for f in files
        if (what := not_a_file(f))
    ]


@dataclass
class NamedDataFiles:
    """For readers of a file or a folder of named data files: ``files`` and ``layout_problems``
    follow from ``_named`` (the paths the layout would read, whatever they turn out to be)."""

    path: Path
    partial: list[LayoutProblem] = field(default_factory=list)  # accepted by allow_partial

    def _named(self) -> list[Path]:
        raise NotImplementedError

    def files(self) -> list[Path]:
        """The named paths that are regular files (the others are layout problems)."""
        return [p for p in self._named() if not not_a_file(p)]

    def layout_problems(self) -> list[LayoutProblem]:
        named = self._named()
        return [*special_file_problems(named), *shard_set_problems(named)]


MAX_NAMED = 50  # problems named in the one-line error (an allow_partial report lists them all)


def incomplete_source_message(path: Path, problems: list[LayoutProblem]) -> str:
    """The one-line error for an incomplete source, naming every file."""
    shown = "; ".join(map(str, problems[:MAX_NAMED]))
    if len(problems) > MAX_NAMED:
        shown += f"; and {len(problems) - MAX_NAMED:,} more"
    return (
        f"{display_path(path)}: the source is incomplete or inconsistent: {shown}. "
        "Fix the files, or accept a partial source explicitly (allow_partial, --allow-partial)"
    )
