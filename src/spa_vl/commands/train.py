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

from spa_vl.errors import UsageError
from spa_vl.outputs import check_output_dir, check_output_file
from spa_vl.train import INSTALL_HINT
from spa_vl.train.checks import check_model, check_release, is_run_folder
from spa_vl.train.settings import DPOSettings, GenerateSettings

EXTRA_MODULES = ("torch", "transformers", "trl", "peft", "accelerate")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="train_command", metavar="{dpo,generate}", required=True)
    d = DPOSettings("", "", "")
    dpo = sub.add_parser(
        "dpo",
        help="DPO on a release with the SPA-VL paper's defaults",
        description="DPO fine-tuning of a LLaVA-1.5-shaped model on a SPA-VL release folder "
        "(paper defaults: beta 0.1, lr 1e-6, cosine, 10 warmup steps, 1 epoch, batch 1 x 8, "
        "bf16, max length 2048, vision tower frozen, projector trained).",
    )
    _common(dpo)
    dpo.add_argument("--output-dir", required=True, help="where the model and run card go")
    dpo.add_argument("--split", default=d.split, help=f"split to train on (default {d.split})")
    dpo.add_argument("--beta", type=float, default=d.beta)
    dpo.add_argument("--learning-rate", type=float, default=d.learning_rate)
    dpo.add_argument("--lr-scheduler", default=d.lr_scheduler)
    dpo.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    dpo.add_argument("--epochs", type=float, default=d.epochs)
    dpo.add_argument("--max-steps", type=int, default=d.max_steps, help="overrides --epochs if > 0")
    dpo.add_argument("--batch-size", type=int, default=d.batch_size, help="per device")
    dpo.add_argument("--grad-accum", type=int, default=d.grad_accum)
    dpo.add_argument(
        "--max-length",
        type=int,
        default=d.max_length,
        help="tokens per pair, image tokens included; longer pairs are dropped, not truncated",
    )
    dpo.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast over fp32 weights (default: on where the GPU supports it)",
    )
    dpo.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=d.gradient_checkpointing,
    )
    dpo.add_argument(
        "--lora", action="store_true", help="LoRA on the language model; projector trained in full"
    )
    dpo.add_argument("--lora-r", type=int, default=d.lora_r)
    dpo.add_argument("--lora-alpha", type=int, default=d.lora_alpha)
    dpo.add_argument("--lora-dropout", type=float, default=d.lora_dropout)
    dpo.add_argument("--logging-steps", type=int, default=d.logging_steps)
    dpo.add_argument("--save-steps", type=int, default=None, help="checkpoint every N steps")
    dpo.add_argument("--report-to", default=d.report_to, help="wandb, tensorboard, ... or none")
    dpo.add_argument("--limit", type=int, default=None, help="train on the first N usable pairs")

    g = GenerateSettings("", "", "")
    gen = sub.add_parser(
        "generate",
        help="answer the test split (HarmEval, HelpEval) to JSONL for a judge",
        description="Greedy answers of a model (or a LoRA output folder) on a release split, "
        "one JSON line per row: id, eval_set, labels, question, response.",
    )
    _common(gen)
    gen.add_argument("--out", required=True, help="JSONL file to write")
    gen.add_argument("--split", default=g.split, help=f"split to answer (default {g.split})")
    gen.add_argument("--max-new-tokens", type=int, default=g.max_new_tokens)
    gen.add_argument("--batch-size", type=int, default=g.batch_size)
    gen.add_argument("--temperature", type=float, default=g.temperature, help="0 (default): greedy")
    gen.add_argument("--limit", type=int, default=None, help="answer the first N rows only")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="local folder or Hub id of a LLaVA-1.5-shaped model")
    p.add_argument("--data", required=True, metavar="DIR", help="release folder (spa-vl build)")
    p.add_argument("--config", default="default", help="release config (default: default)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quiet", action="store_true")


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

    n = generate(
        GenerateSettings(
            model=args.model,
            data=args.data,
            out=args.out,
            config=args.config,
            split=args.split,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            temperature=args.temperature,
            limit=args.limit,
            seed=args.seed,
            quiet=args.quiet,
        )
    )
    if not args.quiet:
        print(f"wrote {n} answers to {args.out}")
    return 0


def _dpo(args: argparse.Namespace) -> int:
    from spa_vl.train.dpo import NoTrainingData, train

    settings = DPOSettings(
        model=args.model,
        data=args.data,
        output_dir=args.output_dir,
        config=args.config,
        split=args.split,
        beta=args.beta,
        learning_rate=args.learning_rate,
        lr_scheduler=args.lr_scheduler,
        warmup_steps=args.warmup_steps,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_length=args.max_length,
        bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing,
        lora=args.lora,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        limit=args.limit,
        seed=args.seed,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        report_to=args.report_to,
        quiet=args.quiet,
    )
    try:
        card = train(settings)
    except NoTrainingData as exc:
        print(f"spa-vl train dpo: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        res = card["results"]
        print(f"trained {res['global_step']} steps; model and run card in {args.output_dir}")
    return 0
