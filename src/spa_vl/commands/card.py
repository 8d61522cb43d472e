"""``spa-vl card DIR``: render the dataset card, plots and croissant.json; ``--check`` checks."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="release folder (written by `spa-vl build`)")
    p.add_argument(
        "--check",
        action="store_true",
        help="only check the card against the data; exit 1 listing every problem",
    )
    p.add_argument(
        "--repo-id",
        metavar="ORG/NAME",
        help="Hub repository shown in the loading examples (default: the card's current one)",
    )
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from spa_vl.cli import UsageError

    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    if not any(folder.glob("data/*/*.parquet")):
        raise UsageError(f"{folder}: no data/<config>/*.parquet files; is it a release folder?")
    if args.repo_id and not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo_id):
        raise UsageError(f"--repo-id must look like ORG/NAME, got {args.repo_id!r}")
    if args.check:
        from spa_vl.card.check import check_release

        problems = check_release(folder)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"card check: {len(problems)} problem(s) in {folder}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"card check: {folder}/README.md agrees with the data")
        return 0
    from spa_vl.card.render import render_card

    written = render_card(folder, repo_id=args.repo_id)
    if not args.quiet:
        print(f"card written to {folder}: {', '.join(written)} (MANIFEST.json refreshed)")
    return 0
