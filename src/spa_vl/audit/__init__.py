"""Contamination audit: text and image fingerprints, eval-set adapters, scopes, reports.

The core is two pure functions over a batch of columns, ``fingerprint_batch`` and
``match_batch``, and a read-only, picklable ``AuditIndex`` built once (``build_index``); an
engine maps them over batches (``run_local`` here; a Ray engine the same way).
"""

from __future__ import annotations

import importlib

# name -> module; imported on first use so that `spa-vl --help` stays light
_EXPORTS = {
    "AuditSettings": "spa_vl.audit.settings",
    "AuditIndex": "spa_vl.audit.reference",
    "fingerprint_batch": "spa_vl.audit.core",
    "match_batch": "spa_vl.audit.core",
    "match_rows": "spa_vl.audit.core",
    "build_index": "spa_vl.audit.engine",
    "run_local": "spa_vl.audit.engine",
    "load_eval_set": "spa_vl.audit.evalsets",
    "EvalSetError": "spa_vl.audit.evalsets",
    "build_report": "spa_vl.audit.report",
    "validate_report": "spa_vl.audit.report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spa_vl.audit' has no attribute {name!r}")
