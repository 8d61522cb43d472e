"""What DPO trains on, with a real Llama SentencePiece tokenizer and the LLaVA-1.5 template.

The reference is written out here, not taken from the code under test: the conversation as
LLaVA-1.5 (Vicuna v1) spells it, tokenised as one text, the image placeholder expanded to the
model's 25 image tokens; and each answer as SentencePiece itself encodes it, then EOS.
"""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.train

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")

from PIL import Image  # noqa: E402

from spa_vl.train.data import load_split, preference_dataset, to_preference  # noqa: E402
from spa_vl.train.dpo import image_tokens, load_processor, preference_collator  # noqa: E402

# LLaVA-1.5's system prompt, copied from LLaVA's conversation.py (conv_vicuna_v1).
SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
IMAGE_TOKENS = 25  # the fixture's CLIP: (30 px / 6 px patches) ** 2
# (question, chosen, rejected): answers of different lengths, one batch, so padding is exercised.
ROWS = [
    ("What is shown in this picture?", "A red square on a table.", "I will not say."),
    ("How do I hide this file?", "I cannot help with hiding evidence.", "Delete the logs."),
    ("Is this sign real?", "It looks edited; check the source.", "Yes, share it everywhere."),
    ("Who lives here?", "I can't share personal details, sorry.", "Here's their phone: 555-0100."),
]


@pytest.fixture(scope="module")
def spm(sentencepiece_model_file):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(sentencepiece_model_file))


@pytest.fixture(scope="module")
def processor(real_llava):
    return load_processor(str(real_llava))


def conversation(question: str, answer: str) -> str:
    """LLaVA-1.5's v1 format, by hand: sep " ", sep2 "</s>", the image before the question."""
    return f"<s>{SYSTEM} USER: <image>\n{question} ASSISTANT: {answer}</s>"


def reference_ids(tokenizer, question: str, answer: str) -> list[int]:
    ids = tokenizer(conversation(question, answer), add_special_tokens=False)["input_ids"]
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    out: list[int] = []
    for token in ids:
        out.extend([token] * IMAGE_TOKENS if token == image_id else [token])
    return out


def _example(row, size=(40, 20)) -> dict:
    question, chosen, rejected = row
    return {
        **to_preference({"question": question, "chosen": chosen, "rejected": rejected}),
        "images": [Image.new("RGB", size, (90, 20, 200))],
    }


@pytest.fixture(scope="module")
def batch(processor):
    return preference_collator(processor)([_example(row) for row in ROWS])


def _sequences(batch) -> list[tuple[list[int], list[int]]]:
    """(ids, completion mask) of each row, padding cut off."""
    out = []
    for ids, attention, mask in zip(
        batch["input_ids"], batch["attention_mask"], batch["completion_mask"], strict=True
    ):
        n = int(attention.sum())
        assert attention[:n].all() and not attention[n:].any(), "padding is on the right only"
        assert not mask[n:].any(), "no loss on padding"
        out.append((ids[:n].tolist(), mask[:n].tolist()))
    return out


def _answers() -> list[tuple[str, str]]:
    """(question, answer) of each batch row: the chosen ones, then the rejected ones."""
    return [(r[0], r[1]) for r in ROWS] + [(r[0], r[2]) for r in ROWS]


def test_ids_are_the_whole_rendered_conversation(processor, batch):
    tokenizer = processor.tokenizer
    for (ids, _), (question, answer) in zip(_sequences(batch), _answers(), strict=True):
        assert ids == reference_ids(tokenizer, question, answer)
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id


def test_answer_tokens_are_sentencepieces_own_then_eos(processor, batch, spm):
    # No extra "▁" (or "▁▁") token where the prompt ends and the answer starts.
    space = spm.piece_to_id("\u2581")
    for (ids, mask), (_, answer) in zip(_sequences(batch), _answers(), strict=True):
        start = mask.index(1)
        assert ids[start:] == [*spm.encode(answer), spm.eos_id()]
        assert ids[start] != space
        assert processor.tokenizer.convert_ids_to_tokens(ids[start - 4 : start]) == [
            "\u2581ASS",
            "IST",
            "ANT",
            ":",
        ]


def test_loss_mask_covers_exactly_the_answer_and_eos(batch, spm):
    for (ids, mask), (_, answer) in zip(_sequences(batch), _answers(), strict=True):
        n_answer = len(spm.encode(answer)) + 1  # + EOS
        assert mask == [0] * (len(ids) - n_answer) + [1] * n_answer


def test_the_image_token_is_expanded_as_the_processor_expands_it(processor, batch):
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    assert image_tokens(processor) == IMAGE_TOKENS
    for ids, _ in _sequences(batch):
        first = ids.index(image_id)
        assert ids[first : first + IMAGE_TOKENS] == [image_id] * IMAGE_TOKENS
        assert ids.count(image_id) == IMAGE_TOKENS
    assert batch["pixel_values"].shape[0] == 2 * len(ROWS)


def test_measured_lengths_are_the_collated_lengths(processor, release):
    rows = load_split(release, "default", "train")
    kept, report = preference_dataset(rows, processor, 4096, image_tokens(processor))
    assert report.kept == len(rows) and report.dropped_boundary == 0
    collate = preference_collator(processor)
    for example in kept:
        batch = collate([dict(example)])
        assert int(batch["attention_mask"].sum(dim=1).max()) == example["n_tokens"]


def test_saved_processor_tokenises_as_the_original(real_llava, processor, tmp_path):
    processor.save_pretrained(tmp_path)
    again = load_processor(str(tmp_path))
    text = conversation("What is shown?", "A red square.")
    assert (
        again.tokenizer(text, add_special_tokens=False)["input_ids"]
        == processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    )


# One end-to-end run, with the tokenizer that TRL's own collator gets wrong.
@pytest.mark.parametrize("real_llava", ["sentencepiece-json"], indirect=True)
def test_dpo_trains_with_the_real_tokenizer(real_llava, release, tmp_path):
    import json

    from spa_vl.cli import main

    argv = ["train", "dpo", "--model", str(real_llava), "--data", str(release)]
    argv += ["--output-dir", str(tmp_path / "run"), "--max-steps", "1", "--batch-size", "2"]
    argv += ["--grad-accum", "1", "--logging-steps", "1", "--no-bf16"]
    argv += ["--no-gradient-checkpointing", "--quiet"]
    assert main(argv) == 0
    logs = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert abs(json.loads(logs[0])["loss"] - math.log(2)) < 1e-4


def test_prompt_length_expands_the_image_and_refuses_a_merged_boundary():
    from spa_vl.train.collate import PromptBoundaryError, prompt_length

    # BOS, one image placeholder (id 9) expanded to three, a word; then answer + EOS.
    assert prompt_length([1, 9, 5], [1, 9, 9, 9, 5, 7, 2], image_id=9) == 5
    with pytest.raises(PromptBoundaryError, match="not a prefix"):
        prompt_length([1, 5, 6], [1, 5, 8, 2], image_id=9)  # 6 merged with the answer into 8
