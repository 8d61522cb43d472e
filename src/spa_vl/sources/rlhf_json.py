"""The authors' RLHF JSON (github.com/EchoseChen/SPA-VL-RLHF): a JSON list of
``{"id": int, "image": "<relative path>", "question": str | [turns], "chosen": str, "rejected": str}``
with an image folder or a zip read in place.

The file name gives the split: ``train*.json``, ``val*.json``/``validation*.json``, and for the
test split ``harm*.json``/``help*.json`` (or ``test*.json`` with an ``eval_set`` key per item).
The list is parsed incrementally with ``json``, so memory stays bounded by the largest item.

Ids have one canonical form: an integer ``7``, or a string of digits ``"7"``, is
``<split prefix>/000007``; any other non-empty string ``s`` is ``<prefix>/s``. So ``7`` and
``"7"`` are one id (a duplicate when both occur); floats, NaN, booleans, lists, objects, null and
the empty string are refused with their place.

Pathological files: a UTF-8 byte-order mark is accepted; nesting too deep for the parser and
number literals too long for ``int()`` are reported at their item, never raised.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from spa_vl.problems import SourceError
from spa_vl.sources.base import (
    RECORD_FIELDS,
    LayoutProblem,
    NamedDataFiles,
    SourceRow,
    display_path,
    fingerprint_files,
    parse_int,
    recover_labels,
)
from spa_vl.sources.images import FolderImages, ZipImages, open_image_store

_SPLIT_OF_NAME = (
    (re.compile(r"^train"), "train", None, "train"),
    (re.compile(r"^val"), "validation", None, "validation"),
    (re.compile(r"^harm"), "test", "harm", "harm"),
    (re.compile(r"^help"), "test", "help", "help"),
    (re.compile(r"^test"), "test", None, "test"),
)
_IMAGE_TOKEN = re.compile(r"^\s*<image>\s*\n?|\n?\s*<image>\s*$")
_CHUNK = 1 << 16  # the first read; doubled while an item does not fit in the buffer
_INT_TEXT = re.compile(r"-?[0-9]{1,100}")  # an id spelled as digits is that integer


def split_of(file: Path) -> tuple[str, str | None, str]:
    for pattern, split, eval_set, prefix in _SPLIT_OF_NAME:
        if pattern.match(file.stem.lower()):
            return split, eval_set, prefix
    raise SourceError(
        f"{file}: cannot tell the split from the file name; name it train*.json, "
        "validation*.json, harm*.json, help*.json or test*.json"
    )


def _names_a_split(file: Path) -> bool:
    return any(pattern.match(file.stem.lower()) for pattern, *_ in _SPLIT_OF_NAME)


def find_image_root(folder: Path) -> FolderImages | ZipImages:
    for candidate in ("images", "images.zip", "train.zip"):
        if (folder / candidate).exists():
            return open_image_store(folder / candidate)
    return FolderImages(folder)


def question_text(question: object) -> object:
    """A list of turns becomes one string; ``<image>`` placeholders are dropped."""
    if isinstance(question, list) and all(isinstance(t, dict) for t in question):
        turns = [(t.get("from"), t.get("value")) for t in question]
        if not all(isinstance(v, str) for _, v in turns):
            return question  # leave it to the schema check to report
        humans = [v for who, v in turns if who in ("Human", "human", "user")]
        if len(turns) == 1 or len(humans) == len(turns):
            question = "\n".join(humans)
        else:
            question = "\n\n".join(f"{who}: {v}" for who, v in turns)
    if isinstance(question, str) and "<image>" in question:
        # The substring test first: the regex's `\s*` scans a 16 MB question for 1.5 s.
        return _IMAGE_TOKEN.sub("", question)
    return question


def iter_json_array(fh: BinaryIO, chunk: int | None = None) -> Iterator[tuple[int, object, str | None]]:
    """Yield (index, item, error) for the items of a top-level JSON list read from a binary
    stream: the items and errors are ``json``'s (``JSONDecoder.raw_decode``, big integers as
    ``parse_int`` reads them). A syntax error ends the file with one error item; bytes that are
    not UTF-8 raise ``UnicodeDecodeError`` (naming the byte's offset) after the items before
    them.

    The first read is ``chunk`` bytes (64 KiB by default); while an item does not fit in the
    buffer, each further read doubles, so an item of n bytes is decoded O(log n) times, not once
    per chunk.
    """
    yield from _items(Utf8Text(fh), chunk or _CHUNK)


def _maybe_cut(exc: json.JSONDecodeError, buffered: int) -> bool:
    """Whether a decode error may come from the buffer ending mid-item (then read more) rather
    than from bad JSON (then report it now, without buffering the rest of the file)."""
    # An unterminated string reports where the string starts; other errors where they are,
    # which is within a token's length (``-Infinity``, ``\\uXXXX``) of the end when cut.
    return exc.msg.startswith("Unterminated string") or exc.pos >= buffered - 16


def _items(fh, chunk: int) -> Iterator[tuple[int, object, str | None]]:
    """``iter_json_array`` over a text stream."""
    decoder = json.JSONDecoder(parse_int=parse_int)
    buf = fh.read(chunk)
    pos, index, eof, size = 0, 0, False, chunk

    def fill() -> bool:
        nonlocal buf, pos, eof, size
        if eof:
            return False
        more = fh.read(size)
        if not more:
            eof = True
            return False
        buf, pos = buf[pos:] + more, 0
        size *= 2  # the item (or the whitespace) still does not fit: read twice as much next
        return True

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or not fill():
                return buf[pos] if pos < len(buf) else ""

    if skip_ws() != "[":
        yield 0, None, "the file is not a JSON list (it must start with '[')"
        return
    pos += 1
    if skip_ws() == "]":
        return
    while True:
        skip_ws()
        while True:
            try:
                item, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if _maybe_cut(exc, len(buf)) and fill():
                    continue
                yield index, None, f"malformed JSON in item {index + 1}: {exc.msg}"
                return
            except RecursionError:
                # e.g. 100,000 "[": the parser gives up; nothing after it can be found again
                yield index, None, f"item {index + 1} is nested too deeply to be read"
                return
            if isinstance(item, (int, float)) and end > len(buf) - 32 and fill():
                continue  # a number cut by the chunk end decodes as its prefix: read on
            break
        pos, size = end, chunk  # the next item starts with an ordinary read again
        yield index, item, None
        index += 1
        sep = skip_ws()
        if sep == ",":
            pos += 1
        elif sep == "]":
            return
        else:
            yield index, None, f"malformed JSON after item {index}: expected ',' or ']'"
            return


class Utf8Text:
    """A binary file read as UTF-8 text chunk by chunk, like ``open(encoding="utf-8-sig")``
    (a byte-order mark at the start is dropped), except at an invalid byte: the text before it
    is returned first (so the items before it are read), then the error names the byte's offset
    in the file, not in the chunk."""

    def __init__(self, fh):
        self._fh = fh
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self._done = 0  # bytes handed to the decoder so far
        self._error: UnicodeDecodeError | None = None
        self._eof = False

    def read(self, size: int) -> str:
        # "" means the end of the file to the reader: read on while the bytes so far make no
        # character yet (a byte-order mark or a character cut by a small read).
        while not (text := self._read(size)) and not self._eof:
            pass
        return text

    def _read(self, size: int) -> str:
        if self._error is not None:
            raise self._error
        data = self._fh.read(size)
        self._eof = not data
        pending = len(self._decoder.getstate()[0])  # bytes of a character cut by the last chunk
        try:
            return self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            at = self._done - pending + exc.start
            bad = exc.object[exc.start]
            self._error = UnicodeDecodeError(
                "utf-8", exc.object, exc.start, exc.end, f"byte 0x{bad:02x} at offset {at:,}"
            )
            before = exc.object[: exc.start].decode("utf-8", errors="replace")
            if before:  # never "": to the reader that means the end of the file
                return before
            raise self._error from None
        finally:
            self._done += len(data)


@dataclass
class RlhfJsonReader(NamedDataFiles):
    format: str = "rlhf-json"

    @staticmethod
    def detect(path: Path) -> bool:
        if path.is_file():
            return path.suffix.lower() == ".json"
        return path.is_dir() and any(_names_a_split(p) for p in path.glob("*.json"))

    def _named(self) -> list[Path]:
        if not self.path.is_dir():
            return [self.path]
        return sorted(p for p in self.path.glob("*.json") if _names_a_split(p))

    def ignored(self) -> list[LayoutProblem]:
        """JSON files in the folder whose names give no split: side files, not data."""
        if not self.path.is_dir():
            return []
        return [
            *(
                LayoutProblem(display_path(p), "its name gives no split (train*, validation*, ...); not read")
                for p in sorted(self.path.glob("*.json"))
                if not _names_a_split(p)
            ),
            *(
                LayoutProblem(display_path(p), "a .jsonl file in an RLHF JSON source; not read")
                for p in sorted(self.path.glob("*.jsonl"))
            ),
        ]

    def _image_files(self) -> list[Path]:
        store = find_image_root(self.path if self.path.is_dir() else self.path.parent)
        if isinstance(store, ZipImages):
            return [store.path]
        if store.root == (self.path if self.path.is_dir() else self.path.parent).resolve():
            return []  # images beside the JSON: the JSON alone names the content
        return sorted(p for p in store.root.rglob("*") if p.is_file())

    def fingerprint(self) -> str:
        # Resolve both sides: the image store's paths are absolute, ``self.path`` may not be.
        root = (self.path if self.path.is_dir() else self.path.parent).resolve()
        files = [p.resolve() for p in (*self.files(), *self._image_files())]
        return fingerprint_files(root, files)

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]:
        folder = self.path if self.path.is_dir() else self.path.parent
        images = find_image_root(folder)
        for file in self.files():
            split, eval_set, prefix = split_of(file)
            if splits is not None and split not in splits:
                continue
            yield from self._file_rows(file, split, eval_set, prefix, images)

    def _file_rows(self, file, split, eval_set, prefix, images) -> Iterator[SourceRow]:
        name = display_path(file)
        with open(file, "rb") as fh:
            items = iter_json_array(fh)
            while True:
                try:
                    index, item, error = next(items)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:
                    yield SourceRow(name, 0, None).with_problem(
                        "<file>",
                        "not-utf8",
                        f"the file is not UTF-8 ({exc.reason}); the items before it were read, "
                        "the rest of the file counts as this one quarantined record",
                    )
                    return
                if error is not None:
                    # The parser cannot find the next item again: the rest is this one record.
                    rest = "; the rest of the file cannot be read and counts as this one quarantined record"
                    yield SourceRow(name, index + 1, None).with_problem(
                        "<record>", "malformed-json", error + rest
                    )
                    return
                row = SourceRow(name, index + 1, None, images=images)
                if not isinstance(item, dict):
                    yield row.with_problem("<record>", "not-an-object", "the item is not a JSON object")
                    continue
                yield self._record(row, item, split, eval_set, prefix)

    @staticmethod
    def _record(row: SourceRow, item: dict, split: str, eval_set, prefix: str) -> SourceRow:
        rid = _canonical_id(row, item.get("id"), prefix)
        known = set(RECORD_FIELDS) - {"split", "image_name"}  # split and name come from the file
        for extra in sorted(set(item) - known):
            row.problems.append(row.problem(extra, "unexpected-field", f"unexpected field {extra!r}"))
        image = item.get("image")
        record = {
            "id": rid,
            "split": split,
            "image": image,
            "image_name": image if isinstance(image, str) else None,
            "question": question_text(item.get("question")),
            "chosen": item.get("chosen"),
            "rejected": item.get("rejected"),
            "class1": item.get("class1"),
            "class2": item.get("class2"),
            "class3": item.get("class3"),
            "eval_set": item.get("eval_set", eval_set) if split == "test" else item.get("eval_set"),
        }
        if "image" not in item:
            del record["image"]
        recover_labels(record)
        row.record = record
        return row


def _canonical_id(row: SourceRow, raw: object, prefix: str) -> str:
    """The id's one canonical form (see the module docstring); a placeholder, with a problem
    on ``id``, when the value is not an id."""
    if isinstance(raw, str) and _INT_TEXT.fullmatch(raw):
        raw = int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return f"{prefix}/{raw:06d}"
    if isinstance(raw, str) and raw:
        return f"{prefix}/{raw}"
    if raw is None:
        row.problems.append(row.problem("id", "missing-field", "'id' is missing"))
    elif raw == "":
        row.problems.append(row.problem("id", "bad-id", "'id' must not be empty"))
    else:
        shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:57] + "..."
        row.problems.append(
            row.problem(
                "id",
                "wrong-type",
                f"'id' must be an integer or a non-empty string, got {type(raw).__name__} {shown}",
            )
        )
    return f"{prefix}/row{row.row}"
