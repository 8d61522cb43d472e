"""The DPO batch: prompt + answer tokenised as one conversation, the loss on the answer only.

TRL's ``DataCollatorForVisionPreference`` tokenises the rendered prompt (``... ASSISTANT:``)
and the rendered answer (`` A cat.</s>``) apart and concatenates the ids. With a tokenizer
that marks word starts with ``▁`` and prepends one to every text it is given (SentencePiece,
and the ``tokenizer.json`` that transformers' converter wrote for Llama checkpoints), the
answer alone starts ``▁▁ A`` where the whole conversation has ``▁A``: DPO would train on a
token sequence the model never sees at generation time. Here each sequence is the processor's
tokenisation of the whole rendered conversation (image tokens expanded by the processor
itself), and the completion mask starts where the prompt's own tokens end; a prompt whose
tokens are not a prefix of the conversation's is an error, never a silent misalignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from trl.data_utils import apply_chat_template

from spa_vl.train.data import pad_to_square


class PromptBoundaryError(ValueError):
    """The prompt's tokens are not a prefix of prompt + answer: no mask would be right."""


def prompt_length(prompt_ids: list[int], ids: list[int], image_id: int) -> int:
    """How many of ``ids`` (a whole conversation, image placeholders expanded) are the prompt.

    ``prompt_ids`` is the prompt tokenised alone, one id per image placeholder; each placeholder
    is expanded as the processor expanded it in ``ids`` before the two are compared.
    """
    placeholders = prompt_ids.count(image_id)
    expanded = prompt_ids
    if placeholders:
        per_image, extra = divmod(ids.count(image_id), placeholders)
        if extra or not per_image:
            raise PromptBoundaryError(
                f"{ids.count(image_id)} image tokens for {placeholders} image placeholders"
            )
        expanded = []
        for token in prompt_ids:
            expanded.extend([token] * per_image if token == image_id else [token])
    if ids[: len(expanded)] != expanded:
        raise PromptBoundaryError(
            "the prompt's tokens are not a prefix of the conversation's (the answer's first "
            "characters merged with the prompt's last token)"
        )
    return len(expanded)


def _images(example: dict[str, Any]) -> list[Image.Image]:
    if "images" in example:
        return list(example["images"] or [])
    return [example["image"]] if example.get("image") is not None else []


@dataclass
class PreferenceCollator:
    """Batches of TRL's conversational preference examples for ``trl.DPOTrainer``.

    Returns what TRL's vision collator returns (``input_ids``, ``attention_mask``,
    ``pixel_values``, ``completion_mask``; chosen rows first, then rejected), right-padded.
    ``pad_fill``: pad images to square with this colour first, for processors that cannot
    (None when the image processor pads itself).
    """

    processor: Any
    pad_fill: tuple[int, int, int] | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        tokenizer = self.processor.tokenizer
        image_id = tokenizer.convert_tokens_to_ids(getattr(self.processor, "image_token", "<image>"))
        images = [_images(example) for example in examples]
        if self.pad_fill is not None:
            images = [[pad_to_square(i, self.pad_fill) for i in row] for row in images]
        rendered = [
            apply_chat_template({k: ex[k] for k in ("prompt", "chosen", "rejected")}, self.processor)
            for ex in examples
        ]
        texts = [r["prompt"] + r["chosen"] for r in rendered]
        texts += [r["prompt"] + r["rejected"] for r in rendered]
        batch = self.processor(
            images=images + images if any(images) else None,
            text=texts,
            padding=True,
            padding_side="right",
            add_special_tokens=False,  # the template writes BOS itself
            return_tensors="pt",
        )
        prompts = tokenizer([r["prompt"] for r in rendered], add_special_tokens=False)["input_ids"]
        completion_mask = torch.zeros_like(batch["input_ids"])
        for row, prompt_ids in enumerate(prompts + prompts):
            length = int(batch["attention_mask"][row].sum())
            ids = batch["input_ids"][row, :length].tolist()
            completion_mask[row, prompt_length(prompt_ids, ids, image_id) : length] = 1
        batch["completion_mask"] = completion_mask
        return dict(batch)
