"""The ``spa-vl`` command.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``;
this file only wires them up, so heavy imports (datasets, torch, ray) happen only for the
subcommand that needs them. Exit codes: 0 success, 1 the data failed a check, 2 usage or
environment errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spa_vl import __version__
from spa_vl.errors import UsageError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("spa_vl.commands.sample", "write the synthetic mini SPA-VL in one of three layouts"),
    "validate": ("spa_vl.commands.validate", "validate a raw source; quarantine bad records"),
    "build": ("spa_vl.commands.build", "build the script-free release folder from a raw source"),
    "card": ("spa_vl.commands.card", "render (or --check) the dataset card of a release"),
    "verify": ("spa_vl.commands.verify", "check a release folder against its MANIFEST.json"),
    "diff": ("spa_vl.commands.diff", "compare two release folders"),
    "release": ("spa_vl.commands.release", "push a release folder to the Hub and tag the version"),
    "audit": ("spa_vl.commands.audit", "audit contamination: duplicates, split leaks, eval sets"),
    "train": ("spa_vl.commands.train", "reference DPO fine-tuning (needs the `train` extra)"),
}

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2
__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spa-vl", description="Load, validate, release, audit and fine-tune on SPA-VL."
    )
    parser.add_argument("--version", action="version", version=f"spa-vl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # One broken subcommand must not take the others down: it reports itself when used.
            p = sub.add_parser(name, help=f"{help_text} (unavailable)", add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(_run=_unavailable(name, exc))
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _unavailable(name: str, exc: ImportError):
    def run(args: argparse.Namespace) -> int:
        raise UsageError(f"this installation cannot run `spa-vl {name}`: {exc}")

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"spa-vl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"spa-vl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
