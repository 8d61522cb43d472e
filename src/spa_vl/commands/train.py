"""``spa-vl train dpo|generate``: reference DPO fine-tuning and test-split generation.

Needs the ``train`` extra; this module imports none of it until ``run`` has checked that it is
installed, so ``spa-vl --help`` stays fast and works without torch. ``--data``, ``--config``,
``--split``, the output and ``--model`` are checked before torch is imported or a model loads.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spa_vl.commands.settings_args import add_settings_arguments, settings_from_args
from spa_vl.errors import UsageError
from spa_vl.outputs import check_output_dir, check_output_file
from spa_vl.train import INSTALL_HINT
from spa_vl.train.checks import check_model, check_release, is_run_folder
from spa_vl.train.settings import DPOSettings, GenerateSettings

EXTRA_MODULES = ("torch", "transformers", "trl", "peft", "accelerate")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``dpo`` and ``generate``, their options made from ``DPOSettings`` and ``GenerateSettings``."""
    sub = p.add_subparsers(dest="train_command", metavar="{dpo,generate}", required=True)
    dpo = sub.add_parser(
        "dpo",
        help="DPO on a release with the SPA-VL paper's defaults",
        description="DPO fine-tuning of a LLaVA-1.5-shaped model on a SPA-VL release folder "
        "(paper defaults: beta 0.1, lr 1e-6, cosine, 10 warmup steps, 1 epoch, batch 1 x 8, "
        "bf16, max length 2048, vision tower frozen, projector trained).",
    )
    add_settings_arguments(dpo, DPOSettings)
    gen = sub.add_parser(
        "generate",
        help="answer the test split (HarmEval, HelpEval) to JSONL for a judge",
        description="Greedy answers of a model (or a LoRA output folder) on a release split, "
        "one JSON line per row: id, eval_set, labels, question, response.",
    )
    add_settings_arguments(gen, GenerateSettings)


def missing_extra() -> str | None:
    """Name of the first module of the ``train`` extra that is not installed, or None.

    Looks the modules up without importing them, so the hint comes without a 10 s import.
    """
    for name in EXTRA_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # ValueError: present in sys.modules as None
            return name
    return None


def _install_hint(missing: str) -> int:
    print(
        f"spa-vl train: needs the `train` extra ({missing} is not installed): {INSTALL_HINT}",
        file=sys.stderr,
    )
    return 2


def check_arguments(args: argparse.Namespace) -> None:
    """Every check that needs no model and no torch, cheapest first; UsageError on the first."""
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    check_release(args.data, args.config, args.split)
    if args.train_command == "dpo":
        # Never write over (or into) the model being trained; answers may go beside a model.
        model = [args.model] if Path(args.model).expanduser().exists() else []
        check_output_dir(
            args.output_dir,
            option="--output-dir",
            inputs=[args.data, *model],
            accept=is_run_folder,
            what="`spa-vl train dpo` run folder",
        )
    else:
        check_output_file(args.out, option="--out", inputs=[args.data])
    check_model(args.model)


def run(args: argparse.Namespace) -> int:
    missing = missing_extra()
    if missing:
        return _install_hint(missing)
    check_arguments(args)

    try:  # a module that is found but fails to import is as good as missing
        import spa_vl.train.dpo
        import spa_vl.train.generate  # noqa: F401
    except ImportError as exc:
        if (exc.name or "").startswith("spa_vl"):
            raise  # our bug, not a missing extra
        return _install_hint(exc.name or str(exc))

    with _silenced(args.quiet):
        if args.train_command == "generate":
            return _generate(args)
        return _dpo(args)


@contextmanager
def _silenced(quiet: bool) -> Iterator[None]:
    """With --quiet, the loaders' own progress bars and warnings too; restored afterwards."""
    if not quiet:
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.enable_progress_bars()
        hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(level)


def _generate(args: argparse.Namespace) -> int:
    from spa_vl.train.generate import generate

    n = generate(settings_from_args(GenerateSettings, args))
    if not args.quiet:
        print(f"wrote {n} answers to {args.out}")
    return 0


def _dpo(args: argparse.Namespace) -> int:
    from spa_vl.train.dpo import NoTrainingData, train

    settings = settings_from_args(DPOSettings, args)
    try:
        card = train(settings)
    except NoTrainingData as exc:
        print(f"spa-vl train dpo: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        res = card["results"]
        print(f"trained {res['global_step']} steps; model and run card in {args.output_dir}")
    return 0
