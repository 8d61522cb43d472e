"""Shared fixtures for the whole test suite.

``sample_dirs`` (session scope) is the default synthetic sample (``SampleSpec()``: 535 train,
106 validation, 53 HarmEval and 53 HelpEval rows, 747 in all) written once in each raw layout:

    {"hub": Path, "rlhf-json": Path, "jsonl": Path}

Treat those folders as read-only: they are shared by every test in the session. A test that
needs to change a sample takes ``sample_copy(layout)``, which copies one layout into the test's
own ``tmp_path`` and returns the copy.
"""

from __future__ import annotations

import os
import tempfile

# Before anything imports datasets or huggingface_hub: tests never read or write the user's
# Hugging Face cache or token.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="spa_vl_tests_hf_")
os.environ.pop("HF_TOKEN", None)

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from spa_vl.sample import LAYOUTS, SampleSpec, write_sample


@pytest.fixture(scope="session")
def sample_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The default sample in each of the three layouts (read-only; see the module docstring)."""
    root = tmp_path_factory.mktemp("sample")
    return {layout: write_sample(root / layout, layout, SampleSpec()) for layout in LAYOUTS}


@pytest.fixture
def sample_copy(sample_dirs: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    """A factory: ``sample_copy("jsonl")`` copies that layout to ``tmp_path/<layout>``."""

    def copy(layout: str) -> Path:
        dest = tmp_path / layout
        shutil.copytree(sample_dirs[layout], dest)
        return dest

    return copy
