"""The ``spa-vl`` command.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``;
this file only wires them up, so heavy imports (datasets, torch, ray) happen only for the
subcommand that needs them. Exit codes: 0 success, 1 the data failed a check, 2 usage or
environment errors, 130 interrupted.

``main`` is the one error boundary: every expected failure (``spa_vl.errors.expected_failure``)
becomes one line ``spa-vl CMD: error: MESSAGE`` and its exit code, with the traceback only when
``--debug`` or ``SPA_VL_DEBUG=1`` asks. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from spa_vl.about import __version__
from spa_vl.errors import UsageError, expected_failure

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

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEBUG_ENV = "SPA_VL_DEBUG"
__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spa-vl", description="Load, validate, release, audit and fine-tune on SPA-VL."
    )
    parser.add_argument("--version", action="version", version=f"spa-vl {__version__}")
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks (or set {DEBUG_ENV}=1)")
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
        _add_common_flags(p)
    return parser


def _add_common_flags(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--debug`` on every (sub)command that does not define them itself."""
    nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in nested:
        for child in set(action.choices.values()):
            _add_common_flags(child)
    dests = {a.dest for a in parser._actions}
    if "quiet" not in dests and not nested:
        parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    if "debug" not in dests:
        # SUPPRESS: an unset subcommand flag must not hide `spa-vl --debug CMD`.
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def _unavailable(name: str, exc: ImportError):
    def run(args: argparse.Namespace) -> int:
        raise UsageError(f"this installation cannot run `spa-vl {name}`: {exc}")

    return run


def debug_requested(args: argparse.Namespace | None = None) -> bool:
    """``--debug`` was given, or ``SPA_VL_DEBUG`` is set to anything but ``0``/empty."""
    if args is not None and getattr(args, "debug", False):
        return True
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def main(argv: list[str] | None = None) -> int:
    """Run ``spa-vl ARGV``; return the exit code (an unexpected exception propagates)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"spa-vl {args.command}"
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        if debug_requested(args):
            traceback.print_exc()
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        failure = expected_failure(exc)
        if failure is None:
            raise  # a bug: its traceback is what a bug report needs
        code, message = failure
        if debug_requested(args):
            traceback.print_exc()
        # A file name that is not UTF-8 (lone surrogates) must not turn the message into a crash.
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
