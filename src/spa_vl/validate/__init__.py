"""Record validation: the JSON Schema, the taxonomy, the image and unique ids.

Every problem of every record is collected with its place (``file:row > field``); validation
never stops at the first. Rejected records go to a quarantine JSONL with their reasons, and the
report's counts reconcile: read = accepted + quarantined.

The package, each module importing only those listed before it:

- ``schema``: the record schema, its hand-written pre-check and the wording of its errors;
- ``quarantine``: the rejected records' JSONL;
- ``report``: options, the report and its counts, accepted records (``tally``);
- ``records``: ``RecordValidator`` (one record) and ``validate_rows`` (the row path);
- ``batches``: the column-batch path (``validate_batches``), the row path's vectorised twin;
- ``parallel``: the process pool for ``validate_source(..., workers=N)``;
- here: ``validate_source``, which picks among them.
"""

from __future__ import annotations

from pathlib import Path

from spa_vl.sources import open_source
from spa_vl.sources.hub_parquet import HubParquetReader
from spa_vl.validate.batches import AcceptedBatch, BatchChecker, validate_batches
from spa_vl.validate.parallel import validate_parts
from spa_vl.validate.quarantine import Quarantine
from spa_vl.validate.records import RecordValidator, validate_rows
from spa_vl.validate.report import (
    MAX_EXAMPLES,
    UNREADABLE_NOTE,
    SplitCounts,
    ValidationOptions,
    ValidationReport,
    ValidRecord,
    tally,
)
from spa_vl.validate.schema import record_schema

__all__ = [
    "MAX_EXAMPLES",
    "PARALLEL_MIN_ROWS",
    "UNREADABLE_NOTE",
    "AcceptedBatch",
    "BatchChecker",
    "Quarantine",
    "RecordValidator",
    "SplitCounts",
    "ValidRecord",
    "ValidationOptions",
    "ValidationReport",
    "record_schema",
    "tally",
    "validate_batches",
    "validate_rows",
    "validate_source",
]

PARALLEL_MIN_ROWS = 20_000  # below this, starting worker processes costs more than it saves


def validate_source(
    path: str | Path,
    format: str = "auto",
    options: ValidationOptions | None = None,
    quarantine: str | Path | None = None,
    progress: bool = False,
    workers: int = 1,
    fast: bool = True,
) -> ValidationReport:
    """Validate a whole raw source and return the report (consumes the stream).

    ``workers`` > 1: a Hub-layout source of at least PARALLEL_MIN_ROWS rows is validated by
    that many processes, one file at a time each. The report and the quarantine are the same
    as with one process (files are merged in reading order; ids are unique by construction in
    that layout, so no cross-file id check is lost). Opt-in: on a busy 2-core machine the
    workers' start-up cost more than they saved (bench/README.md).

    ``fast``: a source with ``batches()`` (Hub layout, release folder) is checked column batch
    by column batch (``spa_vl.validate.batches``), with the same report and quarantine as row by row.

    An incomplete source raises ``spa_vl.errors.DataError`` unless ``options.allow_partial``;
    then ``report.partial`` lists what is missing or was not read.
    """
    options = options or ValidationOptions()
    source = open_source(path, format, allow_partial=options.allow_partial)
    report = ValidationReport(
        source=str(path), format=source.format, quarantine=str(quarantine) if quarantine else None
    )
    report.partial = [p.to_dict() for p in source.partial]
    report.ignored = [p.to_dict() for p in source.ignored()]
    parts = source.parts() if workers > 1 and isinstance(source, HubParquetReader) else []
    if len(parts) > 1 and sum(p.rows or 0 for p in parts) >= PARALLEL_MIN_ROWS:
        workers = min(workers, len(parts))
        validate_parts(source, parts, report, options, quarantine, progress, workers, fast)
        return report
    if fast and hasattr(source, "batches"):
        from tqdm import tqdm

        with Quarantine(quarantine) as q, tqdm(desc="validate", unit=" rows", disable=not progress) as bar:
            for _ in validate_batches(source.batches(), report, options, q, progress=bar):
                pass
        return report
    rows = source.rows()
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc="validate", unit=" rows")
    with Quarantine(quarantine) as q:
        for _ in validate_rows(rows, report, options, q):
            pass
    return report
