"""Reference DPO fine-tuning on SPA-VL with TRL (the ``train`` extra).

Submodules: ``settings`` (plain dataclasses, no heavy imports), ``template`` (the LLaVA-1.5 chat
template), ``data`` (release rows to TRL's conversational preference format), ``dpo`` (training)
and ``generate`` (answers on HarmEval/HelpEval for a judge). Only ``dpo`` and ``generate`` import
torch, transformers, trl or peft; nothing outside this package does.
"""

from __future__ import annotations

TRAIN_EXTRA = "train"
INSTALL_HINT = "pip install 'spa-vl[train]'"
