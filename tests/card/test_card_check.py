"""``check_release`` passes on a freshly rendered card and names the field of each planted fault."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from spa_vl.card.check import check_release
from spa_vl.cli import main as cli


def _replace(folder: Path, old: str, new: str, name: str = "README.md") -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"the fixture changed: {old!r} is not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


SOCIOECONOMIC_FILES = """- config_name: socioeconomic
  data_files:
  - split: train
    path: data/socioeconomic/train-*
  - split: validation
    path: data/socioeconomic/validation-*
  - split: test
    path: data/socioeconomic/test-*"""

# name -> (how to plant the fault, substrings the problem must contain: the field it names)
FAULTS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "stale count": (
        lambda d: _replace(d, "    num_examples: 535\n", "    num_examples: 536\n"),
        ["dataset_info[default].splits[train].num_examples is 536", "535 rows"],
    ),
    "missing data file": (
        lambda d: (d / "data/misinformation/validation-00000-of-00001.parquet").unlink(),
        ["configs[misinformation].data_files[validation]", "no file matches"],
    ),
    "wrong feature type": (
        lambda d: _replace(
            d, "  - name: question\n    dtype: string", "  - name: question\n    dtype: int64"
        ),
        ["dataset_info[default].features[question]", "int64", "string"],
    ),
    "bad licence id": (
        lambda d: _replace(d, "license: cc-by-4.0\n", "license: cc-by-4\n"),
        ["license: 'cc-by-4' is not an allowed value", "cc-by-4.0"],
    ),
    "config without files": (
        lambda d: _replace(d, SOCIOECONOMIC_FILES, "- config_name: socioeconomic\n  data_files: []"),
        ["configs[socioeconomic].data_files: is empty"],
    ),
    "body number edited by hand": (
        lambda d: _replace(
            d, "| `malicious_use` | Malicious Use | 220 |", "| `malicious_use` | Malicious Use | 230 |"
        ),
        ["body, section 'Counts'", "230 -> 220"],
    ),
    "broken YAML": (
        lambda d: _replace(d, "pretty_name: SPA-VL\n", "pretty_name: [SPA-VL\n"),
        ["YAML front matter does not parse", "line"],
    ),
    "missing default config": (
        lambda d: _replace(d, "  default: true\n", ""),
        ["configs: no config is marked `default: true`"],
    ),
    "unknown task category": (
        lambda d: _replace(d, "- visual-question-answering\n", "- visual-qa\n"),
        ["task_categories[0]: 'visual-qa' is not an allowed value"],
    ),
    "wrong size category": (
        lambda d: _replace(d, "- n<1K\n", "- 1K<n<10K\n"),
        ["size_categories", "747 rows"],
    ),
    "config missing from dataset_info": (
        lambda d: _replace(
            d, "- config_name: socioeconomic\n  features:", "- config_name: other\n  features:"
        ),
        ["dataset_info: config 'socioeconomic' is missing"],
    ),
    "stale croissant": (
        lambda d: _replace(d, '"version": "1.0.0"', '"version": "0.9.0"', name="croissant.json"),
        ["croissant.json: version disagrees with the data"],
    ),
    "missing plot": (
        lambda d: (d / "images/taxonomy_sunburst.png").unlink(),
        ["images/taxonomy_sunburst.png: shown in README.md but missing"],
    ),
    "quarantine count edited": (
        lambda d: _replace(
            d,
            "747 records read = 747 accepted + 0 quarantined",
            "747 records read = 740 accepted + 7 quarantined",
        ),
        ["section 'Preprocessing'", "740 -> 747"],
    ),
}


def test_fresh_card_passes(card_release: Path) -> None:
    assert check_release(card_release) == []


@pytest.mark.parametrize("fault", list(FAULTS))
def test_planted_fault_is_caught(fault: str, release_copy) -> None:
    folder = release_copy()
    plant, expected = FAULTS[fault]
    plant(folder)
    problems = check_release(folder)
    assert problems, f"{fault}: not caught"
    assert any(all(s in p for s in expected) for p in problems), (
        f"{fault}: no problem names {expected}; got:\n" + "\n".join(problems)
    )


def test_every_problem_names_the_file(release_copy) -> None:
    folder = release_copy()
    FAULTS["stale count"][0](folder)
    FAULTS["missing data file"][0](folder)
    problems = check_release(folder)
    assert len(problems) >= 2
    assert all(str(folder) in p for p in problems)


def test_check_command_exit_codes(release_copy, capsys) -> None:
    folder = release_copy()
    assert cli(["card", str(folder), "--check"]) == 0
    FAULTS["bad licence id"][0](folder)
    assert cli(["card", str(folder), "--check"]) == 1
    err = capsys.readouterr().err
    assert "license: 'cc-by-4' is not an allowed value" in err
    assert "1 problem(s)" in err
    assert cli(["card", str(folder / "nowhere"), "--check"]) == 2


def test_rendering_repairs_a_stale_card(release_copy) -> None:
    folder = release_copy()
    FAULTS["body number edited by hand"][0](folder)
    FAULTS["stale croissant"][0](folder)
    assert check_release(folder)
    assert cli(["card", str(folder), "--quiet"]) == 0
    assert check_release(folder) == []


def test_manifest_missing_file_is_named(release_copy) -> None:
    folder = release_copy()
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    listed = [f["path"] for f in manifest["files"] if f["rows"] is not None]
    (folder / listed[0]).unlink()
    problems = check_release(folder)
    assert any(listed[0] in p and "MANIFEST.json" in p for p in problems)
