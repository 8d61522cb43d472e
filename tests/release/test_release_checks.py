"""The card check run before a push: ``spa_vl.card.check``'s rules, before any network."""

from __future__ import annotations

from pathlib import Path

import pytest

import spa_vl.card.check as card_check
from spa_vl.cli import main
from spa_vl.release.hub import ReleaseRefused, _card_problems, plan_release
from spa_vl.release.manifest import refresh_manifest


def _edit_card(folder: Path, old: str, new: str) -> None:
    readme = folder / "README.md"
    text = readme.read_text()
    assert old in text
    readme.write_text(text.replace(old, new, 1))
    refresh_manifest(folder, ["README.md"])  # checksums stay right: only the card check can tell


def test_card_problems_refuse_the_push_before_any_network(
    release_v1: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: must not be reached
    _edit_card(release_v1, "num_examples: 6", "num_examples: 5")
    with pytest.raises(ReleaseRefused, match="nothing was sent"):
        plan_release(release_v1, "org/name")
    assert main(["release", str(release_v1), "--repo-id", "org/name"]) == 1
    assert "num_examples is 5, but the files hold 6 rows" in capsys.readouterr().err


def test_uses_the_card_check(release_v1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def check_release(folder: Path) -> list[str]:
        seen.append(Path(folder))
        return ["README.md: a rule only the card module knows"]

    monkeypatch.setattr(card_check, "check_release", check_release)
    assert _card_problems(release_v1) == ["README.md: a rule only the card module knows"]
    assert seen == [release_v1]
