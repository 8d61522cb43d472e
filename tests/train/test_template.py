"""The LLaVA-1.5 chat template: the original format, answers closed with EOS."""

from __future__ import annotations

import jinja2.sandbox
import pytest

from spa_vl.train.template import LLAVA_15_CHAT_TEMPLATE

# LLaVA-1.5's system prompt, copied from LLaVA's conversation.py (conv_vicuna_v1).
SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


def render(messages: list[dict], add_generation_prompt: bool = False) -> str:
    # The environment transformers renders chat templates with.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(LLAVA_15_CHAT_TEMPLATE).render(
        messages=messages,
        bos_token="<s>",
        eos_token="</s>",
        add_generation_prompt=add_generation_prompt,
    )


USER = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}
ANSWER = {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}


def test_prompt_is_the_llava_v1_format():
    # Written out by hand from LLaVA's conv_vicuna_v1 (sep " ", sep2 "</s>").
    expected = "<s>" + SYSTEM + " USER: <image>\nWhat is it? ASSISTANT:"
    assert render([USER], add_generation_prompt=True) == expected


def test_every_answer_ends_with_eos():
    follow_up = {"role": "user", "content": "And the colour?"}
    second = {"role": "assistant", "content": "Black."}
    text = render([USER, ANSWER, follow_up, second])
    expected = (
        "<s>" + SYSTEM + " USER: <image>\nWhat is it? ASSISTANT: A cat.</s>"
        "USER: And the colour? ASSISTANT: Black.</s>"
    )
    assert text == expected


def test_prompt_is_a_prefix_of_prompt_and_answer():
    # TRL cuts the answer off prompt+answer at len(prompt); anything else would misalign it.
    prompt = render([USER], add_generation_prompt=True)
    full = render([USER, ANSWER])
    assert full.startswith(prompt)
    assert full[len(prompt) :] == " A cat.</s>"


def test_a_system_turn_replaces_the_default_system_prompt():
    text = render([{"role": "system", "content": "Be safe."}, USER], add_generation_prompt=True)
    assert text == "<s>Be safe. USER: <image>\nWhat is it? ASSISTANT:"


@pytest.mark.train
def test_tokenized_answer_ends_with_the_eos_id(tiny_llava):
    pytest.importorskip("trl")
    from trl.data_utils import apply_chat_template

    from spa_vl.train.dpo import load_processor

    processor = load_processor(str(tiny_llava))
    tokenizer = processor.tokenizer
    example = {"prompt": [USER], "chosen": [ANSWER], "rejected": [ANSWER]}
    # The processor (what TRL's collator uses) and the tokenizer render the same text.
    by_processor = apply_chat_template(example, processor)
    assert by_processor == apply_chat_template(example, tokenizer)
    ids = tokenizer(by_processor["chosen"], add_special_tokens=False)["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer(by_processor["prompt"], add_special_tokens=False)["input_ids"][0] == (
        tokenizer.bos_token_id
    )
