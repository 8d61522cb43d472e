"""Fixtures for the release tests: hand-made release folders and the local Hub stand-in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import spa_vl.release.hub as hub_module

from .hub_standin import READ_TOKEN, WRITE_TOKEN, HubStandin
from .release_fixture import v2_rows, write_release


@pytest.fixture(scope="session")
def _built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # Written once per session (datasets is slow to write); tests get their own copy.
    base = tmp_path_factory.mktemp("releases")
    return {
        "1.0.0": write_release(base / "v1", "1.0.0"),
        "1.1.0": write_release(base / "v2", "1.1.0", v2_rows()),
    }


@pytest.fixture
def release_v1(_built: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(_built["1.0.0"], tmp_path / "release-v1"))


@pytest.fixture
def release_v2(_built: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(_built["1.1.0"], tmp_path / "release-v2"))


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_HOME, caches and the token file in tmp; huggingface_hub read them at import, so patch."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    if hasattr(constants, "AGENT_HARNESSES_PATH"):
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / "agents.json"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    return home


@pytest.fixture
def hub(hf_home: Path, monkeypatch: pytest.MonkeyPatch):
    """A running stand-in, selected through HF_ENDPOINT (also patched in the imported client)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    standin = HubStandin({WRITE_TOKEN: "write", READ_TOKEN: "read"}).start()
    monkeypatch.setenv("HF_ENDPOINT", standin.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    monkeypatch.setattr(constants, "ENDPOINT", standin.endpoint)
    # hf_hub_download builds its URLs from this template, fixed at import time
    template = standin.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    disable_progress_bars()
    try:
        yield standin
    finally:
        enable_progress_bars()
        standin.stop()


@pytest.fixture
def no_card_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The push tests are about the Hub: a hand-made fixture's card is not a rendered one, and
    the card's own rules (tests/card, test_release_checks.py) must not decide what is pushed."""
    monkeypatch.setattr(hub_module, "_card_problems", lambda folder: [])
