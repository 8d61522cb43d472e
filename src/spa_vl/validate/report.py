"""What a validation run is given and what it gives back: the options, the report (counts per
split, problems, examples) and the accepted records; ``tally`` counts one checked row into it.

The counts reconcile: read = accepted + quarantined, per split and in total.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from spa_vl.image_check import ImageLimits
from spa_vl.names import SPLITS
from spa_vl.problems import Problem
from spa_vl.sources import SourceRow
from spa_vl.validate.quarantine import Quarantine

MAX_EXAMPLES = 20


@dataclass(frozen=True)
class ValidationOptions:
    """How a source is checked; ``deep`` and ``allow_partial`` are options of ``spa-vl validate``
    and ``spa-vl build`` (help in their metadata)."""

    # decode every image fully instead of reading headers
    deep: bool = field(default=False, metadata={"help": "decode every image fully (slower)"})
    check_images: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)
    # Read an incomplete source (a shard missing, stray files) instead of refusing it; the
    # report's ``partial`` then lists what is missing or was not read.
    allow_partial: bool = field(
        default=False,
        metadata={
            "help": "accept an incomplete source (a shard missing, stray files); the report "
            "(and a release's MANIFEST.json) lists what was missing"
        },
    )


@dataclass
class SplitCounts:
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    unlabeled: int = 0  # accepted rows whose class labels are unknown


@dataclass
class ValidationReport:
    source: str = ""
    format: str = ""
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    problems: Counter = field(default_factory=Counter)  # code -> number of problems
    examples: list[str] = field(default_factory=list)  # the first problems, as text
    quarantine: str | None = None
    # An allow_partial run: [{file, problem}] for each missing shard, stray or special file.
    partial: list[dict] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)  # files left out on purpose, and why
    notes: list[str] = field(default_factory=list)  # how the counts were made, where unusual

    @property
    def ok(self) -> bool:
        return self.quarantined == 0

    @property
    def reconciles(self) -> bool:
        return self.read == self.accepted + self.quarantined and all(
            s.read == s.accepted + s.quarantined for s in self.splits.values()
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = dict(sorted(self.problems.items()))
        d["reconciles"] = self.reconciles
        return d

    def summary(self) -> str:
        lines = [
            f"source   {self.source} ({self.format})",
            f"records  read {self.read:,} = accepted {self.accepted:,} + quarantined {self.quarantined:,}",
        ]
        for name, s in self.splits.items():
            lines.append(
                f"  {name:<10} read {s.read:>7,}  accepted {s.accepted:>7,}  "
                f"quarantined {s.quarantined:>5,}  unlabeled {s.unlabeled:>5,}"
            )
        if self.problems:
            lines.append("problems " + ", ".join(f"{c} x{n}" for c, n in sorted(self.problems.items())))
            lines += [f"  {e}" for e in self.examples]
        if self.partial:
            lines.append("partial source (allowed): what is missing or was not read:")
            lines += [f"  {p['file']}: {p['problem']}" for p in self.partial]
        if self.ignored:
            lines.append("not read: " + "; ".join(f"{p['file']} ({p['problem']})" for p in self.ignored))
        lines += [f"note     {n}" for n in self.notes]
        if self.quarantine:
            lines.append(f"quarantine {self.quarantine}")
        return "\n".join(lines)


@dataclass
class ValidRecord:
    """An accepted record with its image bytes, as read (never re-encoded)."""

    record: dict
    image: bytes
    file: str
    row: int


def tally(
    report: ValidationReport, row: SourceRow, problems: list[Problem], quarantine: Quarantine | None
) -> bool:
    """Count one checked row in ``report`` (and quarantine it when it has problems); True when
    it is accepted."""
    split = (row.record or {}).get("split")
    counts = report.splits.setdefault(split if split in SPLITS else "unknown", SplitCounts())
    report.read += 1
    counts.read += 1
    unreadable = row.record is None and any(p.field == "<file>" for p in problems)
    if unreadable and UNREADABLE_NOTE not in report.notes:
        report.notes.append(UNREADABLE_NOTE)
    if problems:
        report.quarantined += 1
        counts.quarantined += 1
        for p in problems:
            report.problems[p.code] += 1
            if len(report.examples) < MAX_EXAMPLES:
                report.examples.append(str(p))
        if quarantine:
            quarantine.write(row, problems)
        return False
    report.accepted += 1
    counts.accepted += 1
    if row.record.get("class3") is None:
        counts.unlabeled += 1
    return True


# Said in the report whenever a file (or its rest) could not be read: its problem is on <file>.
UNREADABLE_NOTE = (
    "rows that cannot be read (an unreadable file, or the unreadable rest of a file) cannot be "
    "counted: each such file or rest counts as one read and quarantined record, at the row "
    "where reading stopped (row 0: the file could not be opened)"
)
