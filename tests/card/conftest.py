"""Fixtures for the card tests: one release built from the Hub-layout sample, copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from spa_vl.release.build import build_release


@pytest.fixture(scope="session")
def card_release(sample_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's release with its rendered card (read-only: copy it to change it)."""
    root = tmp_path_factory.mktemp("card")
    return build_release(sample_dirs["hub"], root / "release", quarantine=root / "quarantine.jsonl").out


@pytest.fixture
def release_copy(card_release: Path, tmp_path: Path) -> Callable[[], Path]:
    """A factory: each call copies the built release into this test's ``tmp_path``."""
    count = 0

    def copy() -> Path:
        nonlocal count
        count += 1
        return Path(shutil.copytree(card_release, tmp_path / f"release{count}"))

    return copy
