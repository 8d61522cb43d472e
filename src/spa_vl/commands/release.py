"""``spa-vl release DIR --repo-id ORG/NAME``: push a release folder to the Hub and tag it."""

from __future__ import annotations

import argparse

from spa_vl.cli import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="release folder written by `spa-vl build`")
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="dataset repo on the Hub")
    parser.add_argument(
        "--dry-run", action="store_true", help="check the folder and print the plan; send nothing"
    )
    parser.add_argument("--private", action="store_true", help="create the repo private if missing")
    parser.add_argument(
        "--gated",
        choices=["auto", "manual"],
        help="gate the repository before any file is uploaded: users must accept the card's "
        "notice (auto: granted at once; manual: you review each request). The card must say "
        "the same (`spa-vl card DIR --gated MODE`). Without it the repository must not be gated",
    )
    parser.add_argument("--message", metavar="TEXT", help="commit description (default: none)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    # A ReleaseError is a SpaVLError: cli.main prints it (one line, then its problems) and
    # returns its exit code: 1 when the folder or the tag fails a check, 2 for the Hub.
    from spa_vl.release.hub import plan_release, push_release, token_source

    plan = plan_release(args.dir, args.repo_id, private=args.private, message=args.message, gated=args.gated)
    if args.dry_run:
        from huggingface_hub import constants

        print(f"spa-vl release plan (dry run: nothing is sent) for {plan.folder}")
        print(plan.render(constants.ENDPOINT))
        print(f"token:   {token_source()}")
        return EXIT_OK
    if args.quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    push_release(plan)
    return EXIT_OK
