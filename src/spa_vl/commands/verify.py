"""``spa-vl verify DIR``: recompute every checksum against MANIFEST.json."""

from __future__ import annotations

import argparse
import sys

from spa_vl.cli import EXIT_DATA, EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="release folder holding MANIFEST.json")
    parser.add_argument(
        "--json", action="store_true", help="print the problems as JSON ([] when it verifies)"
    )
    parser.add_argument("--quiet", action="store_true", help="no summary line when it verifies")


def _printable(text: str) -> str:
    # A file name that is not UTF-8 (lone surrogates) is shown escaped, not a crash.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def run(args: argparse.Namespace) -> int:
    from spa_vl.problems import issues_json
    from spa_vl.release.manifest import ReleaseManifest
    from spa_vl.release.verify import verify_release

    problems = verify_release(args.dir)  # no folder or no manifest: UsageError, exit 2
    if args.json:
        print(issues_json(problems))
        return EXIT_DATA if problems else EXIT_OK
    if problems:
        print(f"{args.dir}: {len(problems)} file(s) do not match MANIFEST.json:", file=sys.stderr)
        for problem in problems:
            print(f"  {_printable(str(problem))}", file=sys.stderr)
        return EXIT_DATA
    if not args.quiet:
        manifest = ReleaseManifest.load(args.dir)
        print(f"{args.dir}: v{manifest.version}, {len(manifest.files)} files match MANIFEST.json")
    return EXIT_OK
