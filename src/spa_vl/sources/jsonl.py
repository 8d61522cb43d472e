"""Canonical JSON Lines: one record per line (the fields of docs/CONTRACTS.md), with an image
folder (``images/`` beside the files, or ``images.zip``). ``image`` is a path relative to that
folder, or ``{"bytes": <base64>, "path": ...}`` for an embedded image.

A line that is not UTF-8, nests too deeply for the parser, or is not JSON is one quarantined
record with its line number; a number literal too long for ``int()`` is a wrong-type value at
its field. A UTF-8 byte-order mark at the start of a file is accepted."""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spa_vl.sources import base
from spa_vl.sources.rlhf_json import find_image_root


@dataclass
class JsonlReader(base.NamedDataFiles):
    format: str = "jsonl"

    @staticmethod
    def detect(path: Path) -> bool:
        if path.is_file():
            return path.suffix.lower() == ".jsonl"
        return path.is_dir() and any(path.glob("*.jsonl"))

    def _named(self) -> list[Path]:
        if not self.path.is_dir():
            return [self.path]
        # Our own quarantine files are outputs, not inputs (listed by ``ignored``).
        return sorted(p for p in self.path.glob("*.jsonl") if "quarantine" not in p.name)

    def ignored(self) -> list[base.LayoutProblem]:
        if not self.path.is_dir():
            return []
        quarantines = [
            base.LayoutProblem(base.display_path(p), "named as a quarantine file (a spa-vl output); not read")
            for p in sorted(self.path.glob("*.jsonl"))
            if "quarantine" in p.name
        ]
        others = [
            base.LayoutProblem(base.display_path(p), "a .json file in a JSON Lines source; not read")
            for p in sorted(self.path.glob("*.json"))
        ]
        return quarantines + others

    def fingerprint(self) -> str:
        root = self.path if self.path.is_dir() else self.path.parent
        store = find_image_root(root)
        images = [store.path] if hasattr(store, "path") else []
        if not images and store.root != root.resolve():
            images = sorted(p for p in store.root.rglob("*") if p.is_file())
        return base.fingerprint_files(root.resolve(), [p.resolve() for p in (*self.files(), *images)])

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[base.SourceRow]:
        """All rows; ``splits`` is a hint (records carry their split, so callers still filter)."""
        folder = self.path if self.path.is_dir() else self.path.parent
        images = find_image_root(folder)
        for file in self.files():
            name = base.display_path(file)
            with open(file, "rb") as fh:
                for line_no, line in enumerate(fh, start=1):
                    if line_no == 1 and line.startswith(codecs.BOM_UTF8):
                        line = line[len(codecs.BOM_UTF8) :]  # a byte-order mark, not text
                    if not line.strip():
                        continue  # blank lines are layout, not records
                    yield _parse_line(name, line_no, line, images)


def _parse_line(name: str, line_no: int, line: bytes, images) -> base.SourceRow:
    row = base.SourceRow(name, line_no, None, images=images)
    try:
        # Without its line break, so that JSON errors point at a column of this line.
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        row.raw = line.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
        return row.with_problem(
            "<record>",
            "not-utf8",
            f"the line is not UTF-8 (byte 0x{line[exc.start]:02x} at offset {exc.start})",
        )
    try:
        item = json.loads(text, parse_int=base.parse_int)
    except RecursionError:
        row.raw = text
        return row.with_problem("<record>", "malformed-json", "the line nests too deeply to be read")
    except json.JSONDecodeError as exc:
        row.raw = text
        return row.with_problem(
            "<record>",
            "malformed-json",
            # some messages end in "at" ("Invalid control character at"): do not say it twice
            f"malformed JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}",
        )
    if not isinstance(item, dict):
        row.raw = text
        return row.with_problem("<record>", "not-an-object", "the line is not a JSON object")
    for extra in sorted(set(item) - set(base.RECORD_FIELDS)):
        row.problems.append(row.problem(extra, "unexpected-field", f"unexpected field {extra!r}"))
    record = {k: item[k] for k in base.RECORD_FIELDS if k in item}
    image = record.get("image")
    if isinstance(image, dict) and isinstance(image.get("bytes"), str):
        try:
            record["image"] = {**image, "bytes": base64.b64decode(image["bytes"], validate=True)}
        except (binascii.Error, ValueError):
            row.problems.append(
                row.problem("image.bytes", "bad-base64", "embedded image is not valid base64")
            )
    if record.get("split") == "train":
        base.recover_labels(record)
    row.record = record
    return row
