"""``spa-vl build SRC``: validate a raw source and write the release folder.

Every output is checked before the source is read; the release is written beside ``--out``
and swapped in whole (``spa_vl.release.build.build_release``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spa_vl.about import DATA_VERSION
from spa_vl.commands.settings_args import add_settings_arguments, settings_from_args
from spa_vl.sources import FORMATS, SourceError
from spa_vl.validate import ValidationOptions


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="raw source: Hub-layout folder, RLHF JSON, or JSONL")
    p.add_argument("--out", default="spa_vl", help="release folder (default ./spa_vl)")
    p.add_argument("--version", default=DATA_VERSION, help=f"data version X.Y.Z (default {DATA_VERSION})")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument(
        "--max-shard-size", default="500MB", help="cut parquet shards at this size (default 500MB)"
    )
    p.add_argument(
        "--quarantine", metavar="FILE", help="rejected rows (default: OUT.quarantine.jsonl beside OUT)"
    )
    p.add_argument("--previous", metavar="OLD", help="previous release: write CHANGELOG.md from the diff")
    add_settings_arguments(p, ValidationOptions, names=["deep", "allow_partial"])
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from spa_vl.cli import UsageError
    from spa_vl.names import is_version
    from spa_vl.outputs import resolved
    from spa_vl.release.build import build_release
    from spa_vl.release.parquet_settings import parse_size
    from spa_vl.release.staging import terminate_as_interrupt

    if not is_version(args.version):
        raise UsageError(f"--version must look like X.Y.Z, got {args.version!r}")
    try:
        max_shard = parse_size(args.max_shard_size)
    except ValueError as exc:
        raise UsageError(f"--max-shard-size: {exc} (try 500MB)") from None
    out = Path(args.out)
    # Beside the release, never inside it (the build replaces that folder whole).
    beside = out if out.name not in ("", ".", "..") else resolved(out)
    quarantine = args.quarantine or str(beside.with_name(beside.name + ".quarantine.jsonl"))
    try:
        with terminate_as_interrupt():
            result = build_release(
                args.src,
                out,
                version=args.version,
                format=args.format,
                max_shard_size=max_shard,
                quarantine=quarantine,
                previous=args.previous,
                options=settings_from_args(ValidationOptions, args),
                progress=not args.quiet,
            )
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    if not args.quiet:
        print(result.report.summary(), file=sys.stderr if result.report.quarantined else sys.stdout)
        print(f"release v{args.version} written to {out} ({len(result.manifest.files)} files)")
    # Quarantined rows are reported, not fatal: the release holds the accepted rows.
    return 0
