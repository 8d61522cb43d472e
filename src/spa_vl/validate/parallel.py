"""``validate_source(..., workers=N)``: a Hub-layout source validated by N processes, one
parquet file each at a time, with the same report and quarantine as one process."""

from __future__ import annotations

import io
from pathlib import Path

from spa_vl.names import SPLITS
from spa_vl.sources.hub_parquet import FilePart, HubParquetReader
from spa_vl.validate.batches import validate_batches
from spa_vl.validate.quarantine import Quarantine
from spa_vl.validate.records import validate_rows
from spa_vl.validate.report import MAX_EXAMPLES, SplitCounts, ValidationOptions, ValidationReport


def _validate_part(
    source: HubParquetReader, part: FilePart, options: ValidationOptions | None, fast: bool = True
) -> tuple[ValidationReport, str]:
    """One file in a worker process: its report and its quarantine lines."""
    report, q = ValidationReport(), Quarantine(None)
    q._fh = io.StringIO()
    if fast:
        checked = validate_batches(source.part_batches(part), report, options, q)
    else:
        checked = validate_rows(source.part_rows(part), report, options, q)
    for _ in checked:
        pass
    return report, q._fh.getvalue()


def validate_parts(
    source: HubParquetReader,
    parts: list[FilePart],
    report: ValidationReport,
    options: ValidationOptions | None,
    quarantine: str | Path | None,
    progress: bool,
    workers: int,
    fast: bool = True,
) -> None:
    """``validate_source`` with ``workers`` processes, one file each at a time; the files'
    reports and quarantine lines are merged in reading order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    for split in SPLITS:
        report.splits.setdefault(split, SplitCounts())
    # spawn: a forked child would inherit pyarrow's thread pools in an undefined state
    ctx = multiprocessing.get_context("spawn")
    bar = tqdm(total=sum(p.rows or 0 for p in parts), desc="validate", unit=" rows", disable=not progress)
    with (
        ProcessPoolExecutor(workers, mp_context=ctx) as pool,
        Quarantine(quarantine) as q,
        bar,
    ):
        futures = [pool.submit(_validate_part, source, part, options, fast) for part in parts]
        for future in futures:  # in reading order
            part_report, lines = future.result()
            _merge(report, part_report)
            if q._fh:
                q._fh.write(lines)
            bar.update(part_report.read)


def _merge(into: ValidationReport, part: ValidationReport) -> None:
    into.read += part.read
    into.accepted += part.accepted
    into.quarantined += part.quarantined
    for name, counts in part.splits.items():
        total = into.splits.setdefault(name, SplitCounts())
        total.read += counts.read
        total.accepted += counts.accepted
        total.quarantined += counts.quarantined
        total.unlabeled += counts.unlabeled
    into.problems.update(part.problems)
    into.examples += part.examples[: MAX_EXAMPLES - len(into.examples)]
    into.notes += [n for n in part.notes if n not in into.notes]
