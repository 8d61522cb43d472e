"""``spa-vl diff OLD NEW``: rows added, removed and changed, and label shifts, per config/split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spa_vl.cli import EXIT_OK, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="the previous release folder")
    parser.add_argument("new", metavar="NEW", help="the new release folder")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--changelog", action="store_true", help="print a CHANGELOG.md entry for NEW's version")
    out.add_argument("--json", action="store_true", help="print the diff as JSON")


def run(args: argparse.Namespace) -> int:
    from spa_vl.release.diff import diff_releases, render_changelog, render_text
    from spa_vl.release.manifest import MANIFEST_NAME
    from spa_vl.release.verify import refuse_untrusted_data

    for given in (args.old, args.new):
        folder = Path(given)
        if not folder.is_dir():
            raise UsageError(f"{given}: {'not a folder' if folder.exists() else 'no such folder'}")
        # A diff of damaged data would be noise or a crash: the data files must verify first.
        if (folder / MANIFEST_NAME).exists():
            refuse_untrusted_data(folder, "nothing is compared")
    diff = diff_releases(args.old, args.new)  # OLD without MANIFEST.json: exit 2 in cli.main
    if args.changelog:
        print(render_changelog(diff, diff.new_version), end="")
    elif args.json:
        print(json.dumps(diff.to_dict(), indent=2, sort_keys=True))
    else:
        print(render_text(diff), end="")
    return EXIT_OK
