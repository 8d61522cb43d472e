"""Settings of ``spa-vl train``: plain frozen dataclasses, importable without the extra.

The DPO defaults are the SPA-VL paper's (authors' scripts, LLaVA-1.5-7B): beta 0.1, lr 1e-6,
cosine schedule, 10 warmup steps, 1 epoch, batch 1 per GPU x 8, bf16 with fp32 master weights,
max length 2048 tokens including the 576 image tokens, vision tower frozen, projector trained.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field
from typing import Any

# Sub-layers of the language model that `--lora` adapts. CLIP's attention layers use the same
# q/k/v names, so the pattern is anchored on `language_model` to keep the vision tower out.
LORA_TARGET_MODULES = r".*language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# Trained in full and saved inside the adapter, as in LLaVA's own LoRA recipe.
LORA_MODULES_TO_SAVE = ("multi_modal_projector",)


def _opt(help: str, default: object = MISSING, **meta: object) -> Any:
    """A field with its ``spa-vl train`` option's help (``commands.settings_args``); no default:
    a required option."""
    return field(default=default, metadata={"help": help, **meta})


# the help of the options both subcommands have
MODEL = "local folder or Hub id of a LLaVA-1.5-shaped model"
DATA = "release folder (spa-vl build)"
CONFIG = "release config"
SEED = "random seed"
QUIET = "no progress bars, warnings or summary"


@dataclass(frozen=True)
class DPOSettings:
    """Everything one ``spa-vl train dpo`` run needs; each field's help is its option's."""

    model: str = _opt(MODEL)
    data: str = _opt(DATA, metavar="DIR")
    output_dir: str = _opt("where the model and run card go")
    config: str = _opt(CONFIG, "default")
    split: str = _opt("split to train on", "train")
    beta: float = _opt("DPO beta: how far the policy may move from the reference model", 0.1)
    learning_rate: float = _opt("peak learning rate", 1e-6)
    lr_scheduler: str = _opt("learning-rate schedule (transformers' names: cosine, linear, ...)", "cosine")
    warmup_steps: int = _opt("steps of linear warmup", 10)
    epochs: float = _opt("passes over the split", 1.0)
    max_steps: int = _opt("stop after this many steps; overrides --epochs if > 0", -1)
    batch_size: int = _opt("pairs per device and step", 1)
    grad_accum: int = _opt("gradient accumulation steps", 8)
    max_length: int = _opt(
        "tokens per pair, image tokens included; longer pairs are dropped, not truncated", 2048
    )
    # None: decided when the GPU is known (dpo.resolve_bf16)
    bf16: bool | None = _opt("bf16 autocast over fp32 weights (default: on where the GPU supports it)", None)
    gradient_checkpointing: bool = _opt("recompute activations in the backward pass: less memory", True)
    lora: bool = _opt("LoRA on the language model; projector trained in full", False)
    lora_r: int = _opt("LoRA rank", 128)
    lora_alpha: int = _opt("LoRA alpha (the update is scaled by alpha / rank)", 256)
    lora_dropout: float = _opt("dropout on the LoRA layers' input", 0.05)
    limit: int | None = _opt("train on the first N usable pairs", None, metavar="N")
    seed: int = _opt(SEED, 42)
    logging_steps: int = _opt("log every N steps", 10, metavar="N")
    save_steps: int | None = _opt(
        "checkpoint every N steps (default: the final model only)", None, metavar="N"
    )
    report_to: str = _opt("wandb, tensorboard, ... or none", "none")
    quiet: bool = _opt(QUIET, False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerateSettings:
    """Everything one ``spa-vl train generate`` run needs; each field's help is its option's."""

    model: str = _opt(MODEL)
    data: str = _opt(DATA, metavar="DIR")
    out: str = _opt("JSONL file to write")
    config: str = _opt(CONFIG, "default")
    split: str = _opt("split to answer", "test")
    max_new_tokens: int = _opt("most tokens per answer", 512)
    batch_size: int = _opt("prompts per batch", 8)
    temperature: float = _opt("0: greedy; above 0: sampled at this temperature", 0.0)
    limit: int | None = _opt("answer the first N rows only", None, metavar="N")
    seed: int = _opt(SEED, 42)
    quiet: bool = _opt(QUIET, False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
