"""``spa-vl validate SRC``: check every record; quarantine the bad ones; exit 1 if any."""

from __future__ import annotations

import argparse
import json
import os
import sys

from spa_vl.commands.settings_args import add_settings_arguments, settings_from_args
from spa_vl.sources import FORMATS, SourceError
from spa_vl.validate import ValidationOptions, validate_source


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="raw source: Hub-layout folder, RLHF JSON, or JSONL")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--report", metavar="FILE", help="write the report as JSON")
    p.add_argument(
        "--quarantine", metavar="FILE", help="write rejected records here (JSONL); none written without it"
    )
    add_settings_arguments(p, ValidationOptions, names=["deep", "allow_partial"])
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
    from spa_vl.outputs import check_output_file, write_text_atomic
    from spa_vl.release.staging import aside_file, terminate_as_interrupt

    if args.workers < 0:
        raise UsageError("--workers must be >= 0")
    workers = args.workers or min(os.cpu_count() or 1, 4)

    # Outputs first, before anything is read: a file, not an input, not inside the source.
    # Nothing is written beside the source unless asked: no --quarantine, no quarantine file.
    report_path = quarantine = None
    if args.report:
        report_path = check_output_file(args.report, option="--report", inputs=[args.src])
    if args.quarantine:
        quarantine = check_output_file(args.quarantine, option="--quarantine", inputs=[args.src])
        if quarantine == report_path:
            raise UsageError(f"--quarantine {args.quarantine}: is also the --report file; give two names")
    aside = aside_file(quarantine) if quarantine else None
    try:
        with terminate_as_interrupt():
            report = validate_source(
                args.src,
                args.format,
                settings_from_args(ValidationOptions, args),
                quarantine=aside,
                progress=not args.quiet,
                workers=workers,
            )
            if quarantine is not None and aside is not None:
                # Written aside, renamed into place once complete: a failed run leaves the old one.
                os.replace(aside, quarantine)
                report.quarantine = args.quarantine
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    finally:
        if aside is not None:
            aside.unlink(missing_ok=True)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(report_path, json.dumps(report.to_dict(), indent=2) + "\n")
    if not args.quiet:
        print(report.summary(), file=sys.stderr if report.quarantined else sys.stdout)
        if report.quarantined and quarantine is None:
            print(
                f"rejected records not written: add --quarantine FILE to keep them ({report.quarantined:,})",
                file=sys.stderr,
            )
    if report.read == 0:
        # Nothing to check is not a pass: most likely the wrong --format or folder.
        print(f"spa-vl validate: no records found in {args.src} ({report.format})", file=sys.stderr)
        return 1
    return 0 if report.ok else 1
