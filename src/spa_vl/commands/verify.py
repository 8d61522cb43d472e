"""``spa-vl verify DIR``: recompute every checksum against MANIFEST.json."""

from __future__ import annotations

import argparse
import sys

from spa_vl.cli import EXIT_DATA, EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="release folder holding MANIFEST.json")


def run(args: argparse.Namespace) -> int:
    from spa_vl.release.manifest import ReleaseManifest
    from spa_vl.release.verify import verify_release

    problems = verify_release(args.dir)  # FileNotFoundError -> exit 2 in cli.main
    if problems:
        print(f"{args.dir}: {len(problems)} file(s) do not match MANIFEST.json:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_DATA
    manifest = ReleaseManifest.load(args.dir)
    print(f"{args.dir}: v{manifest.version}, {len(manifest.files)} files match MANIFEST.json")
    return EXIT_OK
