"""The quarantine: rejected records, one JSON line each, with their reasons."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from spa_vl.problems import Problem
from spa_vl.sources import SourceRow


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
