"""The one problem type: where it is, a stable code, and a message.

``Issue`` is what validation (``Problem``: ``file:row > field``), ``spa-vl verify``
(``spa_vl.release.verify.FileProblem``), the card check (``spa_vl.card.check.CardProblem``) and
the release checks report, so every command can print a one-line error, a report, or ``--json``
(``issues_json``) from the same objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from spa_vl.errors import DataError


class Issue:
    """One problem: ``where`` (a file and a place in it), ``code`` (stable, for scripts) and
    ``message`` (for people). Subclasses are frozen dataclasses that provide the three."""

    __slots__ = ()
    where: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_dict(self) -> dict:
        return {"where": self.where, "code": self.code, "message": self.message}


def issues_json(issues: Iterable[Issue]) -> str:
    """``[{"where", "code", "message"}, ...]`` as indented JSON (``--json`` of every command).

    ASCII with escapes: a file name that is not valid UTF-8 (kept by Python as lone surrogates)
    would otherwise fail to print."""
    return json.dumps([Issue.to_dict(i) for i in issues], indent=2)


@dataclass(frozen=True)
class Problem(Issue):
    """One defect of one record. ``row`` is the 1-based record number in ``file`` (the line
    number for JSON Lines); ``field`` is a dotted path inside the record, or ``<record>``."""

    file: str
    row: int
    field: str
    code: str
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.row} > {self.field}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_dict(self) -> dict:
        """A quarantine reason: the quarantine line itself names the file and row."""
        return {"field": self.field, "code": self.code, "message": self.message}


class SourceError(DataError, ValueError):
    """The source as a whole cannot be read (unknown layout, unreadable file): exit 1, the data
    is at fault. Still a ValueError, as it always was."""


class SourceNotFoundError(SourceError):
    """The source path does not exist: a usage error (exit 2), not a data failure."""

    exit_code = 2
