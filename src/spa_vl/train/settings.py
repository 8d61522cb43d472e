"""Settings of ``spa-vl train``: plain frozen dataclasses, importable without the extra.

The DPO defaults are the SPA-VL paper's (authors' scripts, LLaVA-1.5-7B): beta 0.1, lr 1e-6,
cosine schedule, 10 warmup steps, 1 epoch, batch 1 per GPU x 8, bf16 with fp32 master weights,
max length 2048 tokens including the 576 image tokens, vision tower frozen, projector trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Sub-layers of the language model that `--lora` adapts. CLIP's attention layers use the same
# q/k/v names, so the pattern is anchored on `language_model` to keep the vision tower out.
LORA_TARGET_MODULES = r".*language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# Trained in full and saved inside the adapter, as in LLaVA's own LoRA recipe.
LORA_MODULES_TO_SAVE = ("multi_modal_projector",)


@dataclass(frozen=True)
class DPOSettings:
    """Everything one ``spa-vl train dpo`` run needs."""

    model: str
    data: str
    output_dir: str
    config: str = "default"
    split: str = "train"
    beta: float = 0.1
    learning_rate: float = 1e-6
    lr_scheduler: str = "cosine"
    warmup_steps: int = 10
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 1
    grad_accum: int = 8
    max_length: int = 2048
    bf16: bool | None = None  # None: bf16 where the GPU supports it, fp32 elsewhere
    gradient_checkpointing: bool = True
    lora: bool = False
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    limit: int | None = None
    seed: int = 42
    logging_steps: int = 10
    save_steps: int | None = None
    report_to: str = "none"
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerateSettings:
    """Everything one ``spa-vl train generate`` run needs."""

    model: str
    data: str
    out: str
    config: str = "default"
    split: str = "test"
    max_new_tokens: int = 512
    batch_size: int = 8
    temperature: float = 0.0  # 0: greedy
    limit: int | None = None
    seed: int = 42
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
