"""The card check run before a push: ``spa_vl.card.check`` when present, else a minimal one."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import spa_vl.release.hub as hub_module
from spa_vl.cli import main
from spa_vl.release.hub import ReleaseRefused, _card_problems, _minimal_card_problems, plan_release
from spa_vl.release.manifest import refresh_manifest


def _edit_card(folder: Path, old: str, new: str) -> None:
    readme = folder / "README.md"
    text = readme.read_text()
    assert old in text
    readme.write_text(text.replace(old, new, 1))
    refresh_manifest(folder, ["README.md"])  # checksums stay right: only the card check can tell


def test_fixture_passes_the_minimal_check(release_v1: Path) -> None:
    assert _minimal_card_problems(release_v1) == []


def test_minimal_check_names_each_card_problem(release_v1: Path) -> None:
    _edit_card(release_v1, "path: data/malicious_use/test-*", "path: data/malicious_use/tst-*")
    _edit_card(release_v1, "num_examples: 6", "num_examples: 5")
    _edit_card(release_v1, "default: true", "default: false")
    problems = _minimal_card_problems(release_v1)
    assert problems == [
        "README.md: config malicious_use split test: data/malicious_use/tst-* matches no file",
        "README.md: exactly one config needs `default: true`, found []",
        "README.md: dataset_info default/train says 5 rows, the manifest 6",
    ]


def test_unparsable_yaml(release_v1: Path) -> None:
    _edit_card(release_v1, "license: cc-by-4.0", "license: [cc-by-4.0")
    [problem] = _minimal_card_problems(release_v1)
    assert problem.startswith("README.md: the YAML front matter does not parse")


def test_card_problems_refuse_the_push_before_any_network(
    release_v1: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: must not be reached
    # The fixture has no croissant.json or rendered body: judge it by the minimal check only.
    monkeypatch.setattr(hub_module, "_card_problems", _minimal_card_problems)
    _edit_card(release_v1, "num_examples: 6", "num_examples: 5")
    with pytest.raises(ReleaseRefused, match="nothing was sent"):
        plan_release(release_v1, "org/name")
    assert main(["release", str(release_v1), "--repo-id", "org/name"]) == 1
    assert "says 5 rows, the manifest 6" in capsys.readouterr().err


def test_uses_spa_vl_card_check_when_it_exists(release_v1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def check_release(folder: Path) -> list[str]:
        seen.append(Path(folder))
        return ["README.md: a rule only the card module knows"]

    card = types.ModuleType("spa_vl.card")
    check = types.ModuleType("spa_vl.card.check")
    check.check_release = check_release  # type: ignore[attr-defined]
    card.check = check  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spa_vl.card", card)
    monkeypatch.setitem(sys.modules, "spa_vl.card.check", check)
    assert _card_problems(release_v1) == ["README.md: a rule only the card module knows"]
    assert seen == [release_v1]
