"""spa-vl: the canonical loader and tooling for the SPA-VL safety preference dataset."""

from __future__ import annotations

from spa_vl.about import __version__
from spa_vl.taxonomy import CONFIGS, Taxonomy, load_taxonomy

__all__ = ["CONFIGS", "Taxonomy", "__version__", "load", "load_taxonomy"]


def __getattr__(name: str):
    # `load` pulls in `datasets`; import it only when asked for.
    if name == "load":
        from spa_vl.loading import load

        return load
    raise AttributeError(f"module 'spa_vl' has no attribute {name!r}")
