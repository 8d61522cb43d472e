"""Problems found in input data, each with its place: ``file:row > field: message``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One defect of one record. ``row`` is the 1-based record number in ``file`` (the line
    number for JSON Lines); ``field`` is a dotted path inside the record, or ``<record>``."""

    file: str
    row: int
    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row} > {self.field}: {self.message}"

    def to_dict(self) -> dict:
        return {"field": self.field, "code": self.code, "message": self.message}


class SourceError(ValueError):
    """The source as a whole cannot be read (unknown layout, unreadable file)."""
