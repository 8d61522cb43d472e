"""The LLaVA-1.5 conversation format as a Jinja chat template.

LLaVA-1.5 was trained on the ``llava_v1`` format (``SeparatorStyle.TWO``)::

    <s>{system} USER: <image>\\n{question} ASSISTANT: {answer}</s>USER: ... ASSISTANT:

The template shipped with ``llava-hf`` checkpoints drops the system prompt and never closes an
answer with EOS, so a model trained on it is not taught to stop. This one renders the original
format, closes every assistant turn with ``eos_token`` and renders the prompt alone as an exact
prefix of prompt + answer, which TRL relies on to split the two.
"""

from __future__ import annotations

from typing import Any

LLAVA_15_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

# Whitespace control (`{%-`) everywhere: the only characters rendered are the ones written out.
LLAVA_15_CHAT_TEMPLATE = (
    "{%- set system = '" + LLAVA_15_SYSTEM.replace("'", "\\'") + "' -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set system = messages[0]['content'] -%}"
    "{%- else -%}{%- set system = messages[0]['content'] | selectattr('type', 'equalto', 'text')"
    " | map(attribute='text') | join('\\n') -%}{%- endif -%}"
    "{%- set messages = messages[1:] -%}"
    "{%- endif -%}"
    "{{- (bos_token or '') + system + ' ' -}}"
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}"
    "{%- set text = message['content'] -%}{%- set n_images = 0 -%}"
    "{%- else -%}"
    "{%- set text = message['content'] | selectattr('type', 'equalto', 'text')"
    " | map(attribute='text') | join('\\n') -%}"
    "{%- set n_images = message['content'] | selectattr('type', 'equalto', 'image')"
    " | list | length -%}"
    "{%- endif -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- 'USER: ' + '<image>\\n' * n_images + text + ' ' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- 'ASSISTANT: ' + text + eos_token -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)


def use_llava_template(processor: Any) -> Any:
    """Install the LLaVA-1.5 template on a processor and its tokenizer; return the processor."""
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no eos_token: answers could not be closed")
    processor.chat_template = LLAVA_15_CHAT_TEMPLATE
    tokenizer.chat_template = LLAVA_15_CHAT_TEMPLATE
    return processor
