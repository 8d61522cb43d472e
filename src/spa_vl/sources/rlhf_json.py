"""The authors' RLHF JSON (github.com/EchoseChen/SPA-VL-RLHF): a JSON list of
``{"id": int, "image": "<relative path>", "question": str | [turns], "chosen": str, "rejected": str}``
with an image folder or a zip read in place.

The file name gives the split: ``train*.json``, ``val*.json``/``validation*.json``, and for the
test split ``harm*.json``/``help*.json`` (or ``test*.json`` with an ``eval_set`` key per item).
The list is parsed incrementally (with ijson), so memory stays bounded however long the file is.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import ijson
import numpy as np

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
_CHUNK = 1 << 16  # the exact parser's read
# ijson's read: its cost for an item longer than one read grows with the number of reads (a
# 16 MB string: 0.67 s in 64 KiB reads, 0.09 s in 1 MiB reads).
_READ = 1 << 20
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
    if isinstance(question, str):
        return _IMAGE_TOKEN.sub("", question)
    return question


class _Unsure(Exception):
    """ijson might read the bytes ahead differently from ``json``: the exact parser decides."""


# ijson's C backend reads some inputs differently from ``json``; those inputs are spotted on the
# way in (or make ijson fail) and go to the exact parser: a lone surrogate escape (ijson makes it
# "?"), \v and \f between tokens (ijson takes them for whitespace), deep nesting (ijson's prefixes
# grow with the depth squared: 100,000 "[" take gigabytes; ``json`` gives up near 1,000).
_MAX_DEPTH = 100
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_PAIR = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_STRING = re.compile(rb'"[^"]*"')  # once escaped quotes are gone
_NOT_MARKS = bytes(b for b in range(256) if b not in b'"[]{}')


class _CheckedBytes:
    """The bytes of a JSON list for ijson, raising ``_Unsure`` before handing over any that ijson
    might read differently from ``json`` (see above) or that do not start a list. A UTF-8
    byte-order mark is dropped, as ``utf-8-sig`` does. Invalid UTF-8 needs no check here: ijson
    fails on it, and the exact parser then words the error."""

    def __init__(self, fh):
        self._fh = fh
        self._first = True
        self._started = False  # the first non-whitespace byte was seen (and was "[")
        self._carry = b""  # an odd backslash at the end of the last read: it escapes the next byte
        self._tail = b""  # the end of the last read, for an escape cut in two
        self._in_string = False
        self._depth = 0

    def read(self, size: int) -> bytes:
        if size == 0:
            return b""  # ijson asks for nothing first, to tell bytes from text
        data = self._fh.read(size)
        if self._first:
            self._first = False
            while 0 < len(data) < 3 and (more := self._fh.read(size)):
                data += more
            data = data.removeprefix(codecs.BOM_UTF8)
        if not self._started and (text := data.lstrip(b" \t\r\n")):
            self._started = True
            if text[:1] != b"[":
                raise _Unsure
        if b"\x0b" in data or b"\x0c" in data:
            raise _Unsure
        self._check(data)
        return data

    def _check(self, data: bytes) -> None:
        # Escapes first: a run of backslashes pairs up from its start; an odd one escapes the
        # next byte. Then no escaped quote is left, and strings are "..." with no quote inside.
        text = data
        if self._carry or b"\\" in data:  # a one-byte search is fast; most reads have escapes
            text = (self._carry + data).replace(b"\\\\", b"")
            self._carry = b"\\" if text.endswith(b"\\") else b""
            text = text.removesuffix(self._carry).replace(b'\\"', b"")
        window = self._tail + text
        self._tail = window[-11:]
        if b"\\" in window and _lone_surrogate(window):
            raise _Unsure
        marks = text.translate(None, _NOT_MARKS)
        outside = _STRING.sub(b"", b'"' + marks if self._in_string else marks)
        self._in_string = b'"' in outside  # a string left open at the end of the read
        if self._in_string:
            outside = outside[: outside.index(b'"')]
        opens = outside.count(b"[") + outside.count(b"{")
        if self._depth + opens > _MAX_DEPTH:
            steps = np.where(np.isin(np.frombuffer(outside, np.uint8), (0x5B, 0x7B)), 1, -1)
            if self._depth + int(np.cumsum(steps).max()) > _MAX_DEPTH:
                raise _Unsure
        self._depth += 2 * opens - len(outside)


def _lone_surrogate(window: bytes) -> bool:
    """A surrogate escape outside a pair (or a pair cut by the end of the read: rare, and then
    the exact parser decides)."""
    return bool(
        _SURROGATE_ESCAPE.search(window) and _SURROGATE_ESCAPE.search(_SURROGATE_PAIR.sub(b"", window))
    )


def iter_json_array(fh: BinaryIO, chunk: int | None = None) -> Iterator[tuple[int, object, str | None]]:
    """Yield (index, item, error) for the items of a top-level JSON list read from a seekable
    binary stream, ``chunk`` bytes at a time (by default 1 MiB, 64 KiB once read again with
    ``json``). A syntax error ends the file with one error item; bytes that
    are not UTF-8 raise ``UnicodeDecodeError`` (naming the byte's offset) after the items
    before them.

    ijson (its C backend where installed) reads the list: an item of many megabytes is parsed
    once, not again after every chunk. Where ijson fails, or the bytes ahead are ones it might
    read differently, the file is read again with ``json`` (``_exact_items``), which words the
    error; the items ijson already gave are not given twice. So the items and errors are
    ``json``'s, whichever parser read them.
    """
    start, given = fh.tell(), 0
    try:
        for item in ijson.items(_CheckedBytes(fh), "item", use_float=True, buf_size=chunk or _READ):
            yield given, item, None
            given += 1
        return
    except Exception:  # ijson's errors have no common base; the exact parser words them all
        pass
    fh.seek(start)
    for index, item, error in _exact_items(Utf8Text(fh), chunk or _CHUNK):
        if index >= given or error is not None:
            yield index, item, error


def _maybe_cut(exc: json.JSONDecodeError, buffered: int) -> bool:
    """Whether a decode error may come from the buffer ending mid-item (then read more) rather
    than from bad JSON (then report it now, without buffering the rest of the file)."""
    # An unterminated string reports where the string starts; other errors where they are,
    # which is within a token's length (``-Infinity``, ``\\uXXXX``) of the end when cut.
    return exc.msg.startswith("Unterminated string") or exc.pos >= buffered - 16


def _exact_items(fh, chunk: int = _CHUNK) -> Iterator[tuple[int, object, str | None]]:
    """``iter_json_array`` with ``json`` over a text stream: the reference, and the parser for the
    inputs ijson reads differently. An item is decoded again after every chunk until it is
    whole, so a very large item costs time quadratic in its size."""
    decoder = json.JSONDecoder(parse_int=parse_int)
    buf = fh.read(chunk)
    pos, index, eof = 0, 0, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        more = fh.read(chunk)
        if not more:
            eof = True
            return False
        buf, pos = buf[pos:] + more, 0
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
        pos = end
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

    def read(self, size: int) -> str:
        if self._error is not None:
            raise self._error
        data = self._fh.read(size)
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
    path: Path
    format: str = "rlhf-json"
    partial: list[LayoutProblem] = field(default_factory=list)  # accepted by allow_partial

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
