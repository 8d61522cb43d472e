"""Answers on the test split (HarmEval and HelpEval) as JSONL, ready for a judge such as MD-Judge.

One line per row: ``{"id", "eval_set", "labels": {"domain", "category", "subcategory"},
"question", "response"}``. Greedy decoding by default; the prompt is the same LLaVA-1.5 template
and square padding the training used. ``model`` may be a full model or a LoRA output folder:
transformers' PEFT integration loads the base model the adapter names, then the adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForImageTextToText, PreTrainedModel, ProcessorMixin

from spa_vl.names import LEVELS
from spa_vl.train.data import load_split, pad_to_square, prompt_messages
from spa_vl.train.dpo import image_fill, load_processor, pads_to_square
from spa_vl.train.settings import GenerateSettings


def load_for_generation(
    name_or_path: str, device: str, dtype: torch.dtype
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """A model (or base model + LoRA adapter) in eval mode on ``device``, and its processor.

    The processor comes from ``name_or_path`` (a training run saves it there), else, for an
    adapter saved without one, from the adapter's base model.
    """
    model = AutoModelForImageTextToText.from_pretrained(name_or_path, dtype=dtype)
    source = name_or_path
    folder = Path(name_or_path)
    if folder.is_dir() and not (folder / "tokenizer_config.json").is_file():
        from peft import PeftConfig

        if (folder / "adapter_config.json").is_file():
            source = PeftConfig.from_pretrained(str(folder)).base_model_name_or_path
    return model.to(device).eval(), load_processor(source)


def _label(features: Any, column: str, value: int | None) -> str | None:
    if value is None or value < 0:
        return None
    return features[column].int2str(value)


def generate(settings: GenerateSettings) -> int:
    """Write one JSONL line per test row to ``settings.out``; return the number written."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    torch.manual_seed(settings.seed)
    model, processor = load_for_generation(settings.model, device, dtype)
    tokenizer = processor.tokenizer
    pad_id = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    fill = None if pads_to_square(processor) else image_fill(processor)
    rows = load_split(settings.data, settings.config, settings.split)
    if settings.limit is not None:
        rows = rows.select(range(min(settings.limit, len(rows))))
    features = rows.features
    sampling: dict[str, Any] = {"do_sample": False}
    if settings.temperature > 0:
        sampling = {"do_sample": True, "temperature": settings.temperature}

    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    starts = range(0, len(rows), settings.batch_size)
    with out.open("w", encoding="utf-8") as f:
        for start in tqdm(starts, desc="Generating", unit="batch", disable=settings.quiet):
            batch = rows[start : start + settings.batch_size]
            texts = [
                processor.apply_chat_template(prompt_messages(q), tokenize=False, add_generation_prompt=True)
                for q in batch["question"]
            ]
            images = [image if fill is None else pad_to_square(image, fill) for image in batch["image"]]
            inputs = processor(
                text=texts,
                images=images,
                padding=True,
                padding_side="left",
                add_special_tokens=False,  # the template already starts with BOS
                return_tensors="pt",
            ).to(device)
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
            with torch.inference_mode():
                output = model.generate(
                    **inputs,
                    max_new_tokens=settings.max_new_tokens,
                    pad_token_id=pad_id,
                    eos_token_id=tokenizer.eos_token_id,
                    **sampling,
                )
            answers = tokenizer.batch_decode(
                output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
            for i, answer in enumerate(answers):
                record = {
                    "id": batch["id"][i],
                    "eval_set": _label(features, "eval_set", batch["eval_set"][i]),
                    "labels": {lv: _label(features, lv, batch[lv][i]) for lv in LEVELS},
                    "question": batch["question"][i],
                    "response": answer.strip(),
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
    return written
