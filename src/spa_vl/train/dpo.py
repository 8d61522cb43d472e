"""DPO fine-tuning of a LLaVA-1.5-shaped model on a SPA-VL release, with ``trl.DPOTrainer``.

The recipe is the SPA-VL paper's (see ``settings.DPOSettings``): the vision tower is frozen, the
projector and the language model are trained (or, with ``lora``, LoRA adapters on the language
model's layers plus the projector in full), images are padded to square with the processor's
mean colour, and the LLaVA-1.5 chat template closes answers with EOS. The output folder holds the
model (or adapter), the processor, ``metrics.jsonl`` (one line per log) and ``run_card.json``.

The pieces are transformers' and TRL's where they do the job: the image processor pads to square
(``do_pad``), TRL's trainer and chat-template rendering. The batch is ours
(``collate.PreferenceCollator``): TRL's vision collator tokenises prompt and answer apart, which
puts an extra ``▁`` token at their boundary with SentencePiece-style Llama tokenizers.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import transformers
from PIL import Image
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    PreTrainedModel,
    PrinterCallback,
    ProcessorMixin,
    TrainerCallback,
)
from trl import DPOConfig, DPOTrainer

from spa_vl.about import __version__ as spa_vl_version
from spa_vl.train.collate import PreferenceCollator
from spa_vl.train.data import LengthReport, load_split, preference_dataset, release_info
from spa_vl.train.settings import LORA_MODULES_TO_SAVE, LORA_TARGET_MODULES, DPOSettings
from spa_vl.train.template import use_llava_template

VISION_TOWER, PROJECTOR = "vision_tower", "multi_modal_projector"
PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "pyarrow")


class NoTrainingData(ValueError):
    """No pair of the split fits the length limit (or the split has no pairs at all)."""


def resolve_bf16(flag: bool | None) -> bool:
    """bf16 if asked; by default where the GPU supports it (fp32 on CPU, where it is slow)."""
    if flag is not None:
        return flag
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def square_image_processor(image_processor: Any) -> Any:
    """The image processor, padding to square itself where transformers can (LLaVA-1.5's
    ``expand2square``: centred on the processor's mean colour, before resizing).

    A LLaVA image processor gets ``do_pad=True``. LLaVA-1.5 checkpoints ship CLIP's, which
    centre-crops and would cut off the sides of wide or tall images, where a harmful detail can
    sit: it is rebuilt as the LLaVA one with the same settings, which is CLIP's processing plus
    the padding. Any other is returned as it is, and the collator pads by hand.
    """
    if hasattr(image_processor, "pad_to_square") and hasattr(image_processor, "do_pad"):
        image_processor.do_pad = True
        return image_processor
    name = type(image_processor).__name__
    if name in ("CLIPImageProcessor", "CLIPImageProcessorPil"):
        llava = getattr(transformers, name.replace("CLIP", "Llava"))
        settings = {k: v for k, v in image_processor.to_dict().items() if k != "image_processor_type"}
        return llava(**settings, do_pad=True)
    return image_processor


def pads_to_square(processor: ProcessorMixin) -> bool:
    """Whether the processor's image processor pads to square itself."""
    image_processor = processor.image_processor
    return bool(getattr(image_processor, "do_pad", False)) and hasattr(image_processor, "pad_to_square")


def load_processor(name_or_path: str) -> ProcessorMixin:
    """The model's processor, padding images to square, with the LLaVA-1.5 chat template."""
    processor = AutoProcessor.from_pretrained(name_or_path)
    processor.image_processor = square_image_processor(processor.image_processor)
    return use_llava_template(processor)


def image_tokens(processor: ProcessorMixin) -> int:
    """How many tokens the processor expands one image placeholder to (576 for LLaVA-1.5)."""
    probe = Image.new("RGB", (64, 64))
    ids = processor(text=processor.image_token, images=[probe], add_special_tokens=False)
    return len(ids["input_ids"][0])


def image_fill(processor: ProcessorMixin) -> tuple[int, int, int]:
    """The processor's mean colour in 0-255, LLaVA's padding colour."""
    mean = getattr(processor.image_processor, "image_mean", None) or (0.0, 0.0, 0.0)
    return tuple(int(x * 255) for x in mean)  # type: ignore[return-value]


def preference_collator(processor: ProcessorMixin) -> PreferenceCollator:
    """Whole-conversation batches; images padded by hand only where the processor cannot."""
    return PreferenceCollator(processor, None if pads_to_square(processor) else image_fill(processor))


def load_policy(name_or_path: str) -> PreTrainedModel:
    """The model in fp32 (the master weights under bf16 autocast), vision tower frozen."""
    model = AutoModelForImageTextToText.from_pretrained(name_or_path, dtype=torch.float32)
    names = [name for name, _ in model.named_parameters()]
    if not any(VISION_TOWER in n for n in names) or not any(PROJECTOR in n for n in names):
        raise ValueError(
            f"{name_or_path}: not a LLaVA-shaped model (needs a {VISION_TOWER} and a {PROJECTOR})"
        )
    for name, param in model.named_parameters():
        if VISION_TOWER in name:
            param.requires_grad_(False)
    return model


def lora_config(settings: DPOSettings) -> Any:
    """LoRA on the language model's layers only; the projector trained in full and saved with it."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=LORA_TARGET_MODULES,
        modules_to_save=list(LORA_MODULES_TO_SAVE),
        task_type="CAUSAL_LM",
    )


def dpo_config(settings: DPOSettings) -> DPOConfig:
    # transformers 5.x renamed gradient_checkpointing to activation_checkpointing.
    names = {f.name for f in fields(DPOConfig)}
    checkpointing = (
        "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    )
    return DPOConfig(
        output_dir=settings.output_dir,
        beta=settings.beta,
        loss_type=["sigmoid"],
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_steps,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        # Pairs over the limit are already dropped, so TRL's truncation never fires.
        max_length=settings.max_length,
        bf16=resolve_bf16(settings.bf16),
        seed=settings.seed,
        logging_steps=settings.logging_steps,
        # A 7B checkpoint with optimizer state is ~80 GB: none unless asked for.
        save_strategy="steps" if settings.save_steps else "no",
        save_steps=settings.save_steps or 500,
        report_to=settings.report_to,
        disable_tqdm=settings.quiet,
        dataloader_pin_memory=torch.cuda.is_available(),
        **{checkpointing: settings.gradient_checkpointing},
    )


class MetricsFile(TrainerCallback):
    """Appends every log (loss, rewards/accuracies, margins, logps) to ``metrics.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if logs and state.is_world_process_zero:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")


def build_trainer(settings: DPOSettings) -> tuple[DPOTrainer, LengthReport]:
    """Load model, processor and data; return the ready trainer and what the mapping dropped."""
    processor = load_processor(settings.model)
    n_image_tokens = image_tokens(processor)
    rows = load_split(settings.data, settings.config, settings.split)
    train_set, report = preference_dataset(
        rows, processor, settings.max_length, n_image_tokens, limit=settings.limit
    )
    if report.kept == 0:
        where = f"{settings.data} [{settings.config}/{settings.split}]"
        raise NoTrainingData(f"{where}: no pair to train on: {report.summary()}")
    model = load_policy(settings.model)
    collator = preference_collator(processor)
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)
    trainer = DPOTrainer(
        model=model,
        args=dpo_config(settings),
        data_collator=collator,
        train_dataset=train_set,
        processing_class=processor,
        peft_config=lora_config(settings) if settings.lora else None,
        callbacks=[MetricsFile(out / "metrics.jsonl")],
    )
    if settings.quiet:
        trainer.remove_callback(PrinterCallback)
    return trainer, report


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "spa-vl": spa_vl_version,
    }
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_card(settings: DPOSettings, trainer: DPOTrainer, report: LengthReport) -> dict[str, Any]:
    """Data version and config, hyperparameters, package versions and final metrics of a run."""
    args = trainer.args
    params = list(trainer.model.parameters())
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    summary = next((e for e in reversed(trainer.state.log_history) if "train_runtime" in e), {})
    return {
        "task": "dpo",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "model": {
            "name_or_path": settings.model,
            "parameters": sum(p.numel() for p in params),
            "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
            "frozen": [VISION_TOWER],
            "lora": None
            if not settings.lora
            else {
                "r": settings.lora_r,
                "alpha": settings.lora_alpha,
                "dropout": settings.lora_dropout,
                "target_modules": LORA_TARGET_MODULES,
                "modules_to_save": list(LORA_MODULES_TO_SAVE),
            },
            "chat_template": "llava-1.5 (spa_vl.train.template)",
            "image_preprocessing": "pad to square with the processor mean ("
            + ("the image processor's do_pad" if pads_to_square(trainer.processing_class) else "by hand")
            + "), then the processor",
        },
        "data": {
            "path": str(Path(settings.data).resolve()),
            "config": settings.config,
            "split": settings.split,
            "release": release_info(settings.data),
            **report.to_dict(),
        },
        "hyperparameters": {
            "loss": "sigmoid (DPO)",
            "beta": args.beta,
            "learning_rate": args.learning_rate,
            "lr_scheduler": getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type),
            "warmup_steps": args.warmup_steps,
            "epochs": args.num_train_epochs,
            "max_steps": args.max_steps,
            "per_device_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "world_size": args.world_size,
            "effective_batch_size": args.per_device_train_batch_size
            * args.gradient_accumulation_steps
            * args.world_size,
            "max_length": args.max_length,
            "bf16": args.bf16,
            "master_weights": "fp32",
            "gradient_checkpointing": args.gradient_checkpointing,
            "seed": args.seed,
        },
        "packages": package_versions(),
        "results": {
            "global_step": trainer.state.global_step,
            "first_loss": logs[0]["loss"] if logs else None,
            "last_log": logs[-1] if logs else None,
            **{k: v for k, v in summary.items() if k.startswith("train_")},
        },
        "settings": settings.to_dict(),
    }


def train(settings: DPOSettings) -> dict[str, Any]:
    """Run DPO; save the model (or adapter + projector), processor and run card; return the card."""
    trainer, report = build_trainer(settings)
    if not settings.quiet:
        print(f"spa-vl train dpo: {report.summary()}", file=sys.stderr)
    trainer.train()
    out = Path(settings.output_dir)
    trainer.save_model(str(out))
    card = run_card(settings, trainer, report)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(out))
        (out / "run_card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    return card
