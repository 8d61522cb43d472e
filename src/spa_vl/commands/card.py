"""``spa-vl card DIR``: render the dataset card, plots and croissant.json; ``--check`` checks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="release folder (written by `spa-vl build`)")
    p.add_argument(
        "--check",
        action="store_true",
        help="only check the card against the data; exit 1 listing every problem",
    )
    p.add_argument("--json", action="store_true", help="with --check: print the problems as JSON")
    p.add_argument(
        "--repo-id",
        metavar="ORG/NAME",
        help="Hub repository shown in the loading examples (default: the card's current one)",
    )
    p.add_argument(
        "--gated",
        choices=["auto", "manual", "no"],
        help="whether the card says the Hub repository is gated (auto: requests granted at once, "
        "manual: reviewed; no: anyone can download); push with the same `spa-vl release --gated` "
        "(default: the card's current choice; a new card says no)",
    )
    p.add_argument("--quiet", action="store_true")


# What rendering rewrites; each must be writable (or absent in a writable folder) before work.
_WRITTEN = ("README.md", "croissant.json", "MANIFEST.json", "images")


def check_release_folder(folder: Path, *, writable: bool) -> None:
    """Refuse (UsageError, exit 2) a DIR that is not an existing release folder, or, when the
    card is to be written, one where the card's files cannot be written."""
    from spa_vl.cli import UsageError
    from spa_vl.release.layout import ReleaseLayout
    from spa_vl.release.manifest import MANIFEST_NAME

    if not folder.exists():
        raise UsageError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    if not (folder / MANIFEST_NAME).exists() or not ReleaseLayout.of(folder).all_named():
        raise UsageError(
            f"{folder}: no {MANIFEST_NAME} and data/<folder>/*.parquet files; "
            "is it a release folder (written by `spa-vl build`)?"
        )
    if not writable:
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{folder}: cannot write in this folder (permission denied)")
    for name in _WRITTEN:
        path = folder / name
        if name == "images" and path.exists() and not path.is_dir():
            raise UsageError(f"{path}: is not a folder; the card's plots go there")
        if name != "images" and path.is_dir():
            raise UsageError(f"{path}: is a folder; the card writes a file there")
        if path.exists() and not os.access(path, os.W_OK):
            raise UsageError(f"{path}: cannot write (permission denied)")


def run(args: argparse.Namespace) -> int:
    from spa_vl.cli import UsageError
    from spa_vl.names import is_repo_id

    folder = Path(args.dir)
    if args.json and not args.check:
        raise UsageError("--json goes with --check")
    if args.repo_id and not is_repo_id(args.repo_id):
        raise UsageError(f"--repo-id must look like ORG/NAME, got {args.repo_id!r}")
    if args.check and args.gated:
        raise UsageError("--gated renders the card; it does not go with --check")
    check_release_folder(folder, writable=not args.check)
    if args.check:
        from spa_vl.card.check import card_problems
        from spa_vl.problems import issues_json

        problems = card_problems(folder)
        if args.json:
            print(issues_json(problems))
            return 1 if problems else 0
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"card check: {len(problems)} problem(s) in {folder}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"card check: {folder}/README.md agrees with the data")
        return 0
    from spa_vl.release.verify import refuse_untrusted_data

    refuse_untrusted_data(folder, "no card is written")  # the card must not describe bad data
    from contextlib import nullcontext

    from spa_vl.card.content import card_access
    from spa_vl.card.render import render_card

    access = nullcontext() if args.gated is None else card_access(None if args.gated == "no" else args.gated)
    with access:
        written = render_card(folder, repo_id=args.repo_id)
    if not args.quiet:
        print(f"card written to {folder}: {', '.join(written)} (MANIFEST.json refreshed)")
    return 0
