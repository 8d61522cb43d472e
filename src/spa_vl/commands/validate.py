"""``spa-vl validate SRC``: check every record; quarantine the bad ones; exit 1 if any."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from spa_vl.sources import FORMATS, SourceError
from spa_vl.validate import ValidationOptions, validate_source


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="raw source: Hub-layout folder, RLHF JSON, or JSONL")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--report", metavar="FILE", help="write the report as JSON")
    p.add_argument("--quarantine", metavar="FILE", help="write rejected records here (JSONL)")
    p.add_argument("--deep", action="store_true", help="decode every image fully (slower)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes for a Hub-layout source of 20,000+ rows, one file each at a time; "
        "0: one per CPU core, at most 4 (default 1)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from spa_vl.cli import UsageError

    if args.workers < 0:
        raise UsageError("--workers must be >= 0")
    workers = args.workers or min(os.cpu_count() or 1, 4)

    # Beside the source, named after it; resolve first so that "." has a name.
    src = Path(args.src).resolve()
    quarantine = args.quarantine or str(src.with_name(src.name + ".quarantine.jsonl"))
    try:
        report = validate_source(
            args.src,
            args.format,
            ValidationOptions(deep=args.deep),
            quarantine=quarantine,
            progress=not args.quiet,
            workers=workers,
        )
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if not args.quiet:
        print(report.summary(), file=sys.stderr if report.quarantined else sys.stdout)
    if report.read == 0:
        # Nothing to check is not a pass: most likely the wrong --format or folder.
        print(f"spa-vl validate: no records found in {args.src} ({report.format})", file=sys.stderr)
        return 1
    return 0 if report.ok else 1
