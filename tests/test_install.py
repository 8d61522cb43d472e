"""The installed package wins over a release folder ``./spa_vl`` in the working directory.

``spa-vl build --out spa_vl`` and ``make demo`` write a release to ``./spa_vl`` (so that the
literal ``datasets.load_dataset("spa_vl", ...)`` works); it has no ``__init__.py``, so Python
would import it as a namespace package if the install put ``spa_vl`` behind an import hook
(setuptools' finder-based editable installs) rather than on ``sys.path``. These tests run a fresh
interpreter without ``PYTHONPATH``: they check the install itself (``make``'s editable install or
a wheel), not the test run's path.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = "import json, spa_vl; print(json.dumps([spa_vl.__file__, getattr(spa_vl, '__version__', None)]))"


def _import_spa_vl(cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _release_like(folder: Path) -> None:
    """What ``spa-vl build`` leaves: data folders of parquet files and a card, no Python."""
    for rel in (
        "data/malicious_use/train-00000-of-00001.parquet",
        "data/socioeconomic/test-00000-of-00001.parquet",
    ):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"PAR1")
    (folder / "README.md").write_text("---\nconfigs: []\n---\n# SPA-VL\n", encoding="utf-8")
    (folder / "MANIFEST.json").write_text("{}", encoding="utf-8")


def test_release_folder_in_cwd_does_not_shadow_the_installed_package(tmp_path: Path) -> None:
    try:
        importlib.metadata.distribution("spa-vl")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("spa-vl is not installed in this interpreter (only on PYTHONPATH)")
    work = tmp_path / "work"
    _release_like(work / "spa_vl")

    result = _import_spa_vl(work)
    assert result.returncode == 0, result.stderr[-3000:]
    file, version = json.loads(result.stdout.strip().splitlines()[-1])
    assert file is not None, "imported ./spa_vl as a namespace package"
    path = Path(file).resolve()
    assert not path.is_relative_to(tmp_path.resolve()), path
    assert path.name == "__init__.py" and path.parent.name == "spa_vl", path
    assert path.parent.parent.name in ("src", "site-packages"), path
    assert version is not None
