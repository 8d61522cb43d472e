"""Reference DPO fine-tuning on SPA-VL with TRL (the ``train`` extra).

``spa_vl.train.to_trl(split)`` maps a release split to TRL's conversational preference columns
(``prompt``, ``chosen``, ``rejected``, ``images``) for your own TRL script; it needs no torch.

Submodules: ``settings`` (plain dataclasses, no heavy imports), ``checks`` (argument checks made
before any model loads), ``template`` (the LLaVA-1.5 chat template), ``data`` (release rows to
TRL's format), ``collate`` (whole-conversation DPO batches), ``dpo`` (training) and ``generate``
(answers on HarmEval/HelpEval for a judge). Only ``collate``, ``dpo`` and ``generate`` import
torch, transformers, trl or peft; nothing outside this package does.
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "pip install 'spa-vl[train]'"

__all__ = ["INSTALL_HINT", "to_trl"]


def __getattr__(name: str) -> Any:
    # Lazy: `spa-vl --help` imports this package and must not pay for importing datasets.
    if name == "to_trl":
        from spa_vl.train.data import to_trl

        return to_trl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
