"""Locate the language-neutral resources (``schema/``, ``dataset_card/``).

In a source checkout they are the top-level folders; in a wheel, setup.py copies them into
``spa_vl/_resources/``. Looking in both keeps editable installs and wheels equivalent.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def resource_dir(name: str) -> Path:
    """Return the folder of resource ``name`` (``"schema"`` or ``"dataset_card"``)."""
    for candidate in (_HERE / "_resources" / name, _HERE.parents[1] / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"spa-vl resource folder {name!r} is missing from the installation")


def schema_path(filename: str) -> Path:
    return resource_dir("schema") / filename
