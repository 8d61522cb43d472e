"""The rendered card: golden file, determinism, content and the manifest refresh.

Regenerate the golden files after a reviewed change with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/card -k golden`` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from spa_vl.card.render import render_card
from spa_vl.cli import main as cli
from spa_vl.release.manifest import ReleaseManifest
from spa_vl.release.verify import verify_release

GOLDEN = Path(__file__).parent / "golden"
CARD_FILES = [
    "README.md",
    "images/taxonomy_sunburst.png",
    "images/rows_per_split_domain.png",
    "croissant.json",
]


@pytest.mark.parametrize("name", ["README.md", "croissant.json"])
def test_golden(card_release: Path, name: str) -> None:
    got = (card_release / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(got, encoding="utf-8")
        pytest.skip(f"golden {name} rewritten")
    assert got == golden.read_text(encoding="utf-8"), (
        f"{name} differs from tests/card/golden/{name}; if the change is intended, rerun with "
        "UPDATE_GOLDEN=1 and review the diff"
    )


def test_rendering_twice_gives_identical_bytes(release_copy) -> None:
    a, b = release_copy(), release_copy()
    render_card(b)  # a second rendering over the build's one
    render_card(b)
    for rel in [*CARD_FILES, "MANIFEST.json"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_card_files_are_in_the_manifest(card_release: Path) -> None:
    manifest = ReleaseManifest.load(card_release)
    for rel in CARD_FILES:
        assert manifest.entry(rel) is not None, rel
    assert verify_release(card_release) == []


def test_rendering_refreshes_the_manifest(release_copy) -> None:
    folder = release_copy()
    shutil.rmtree(folder / "images")
    (folder / "croissant.json").unlink()
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    manifest["files"] = [f for f in manifest["files"] if f["path"] not in CARD_FILES]
    (folder / "MANIFEST.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert cli(["card", str(folder), "--quiet"]) == 0
    assert verify_release(folder) == []  # new files added, README re-hashed


def test_body_tells_the_facts(card_release: Path) -> None:
    body = (card_release / "README.md").read_text(encoding="utf-8")
    # The sample is synthetic, and the card says so.
    assert "**This release is synthetic.**" in body
    # Loading: real config names, a split, streaming and a pinned revision.
    assert 'spa_vl.load("malicious_use", "train", source="ORG/NAME", revision="v1.0.0")' in body
    assert 'load_dataset("ORG/NAME", "malicious_use", revision="v1.0.0")' in body
    assert "streaming=True" in body
    # Taxonomy: 6/15/53, the 13-vs-15 discrepancy, the preserved typos beside display names.
    assert "6 domains,\n15 categories and 53 subcategories" in body
    assert "**13 or 15 categories?**" in body
    assert "| `disablity discrimination` | Disability discrimination |" in body
    assert "| `scamns` | Scams |" in body
    assert "`false beliefs` (False Beliefs)" in body
    # Counts the sample is known to have (SampleSpec defaults: 10 train rows per subcategory,
    # 5 unlabeled, 2 validation and 1 HarmEval + 1 HelpEval per subcategory).
    assert "| train | 535 | 530 | 5 | 0 | 0 |" in body
    assert "| test | 106 | 106 | 0 | 53 | 53 |" in body
    assert "| `malicious_use` | Malicious Use | 220 | 44 | 44 | 308 | 3 |" in body
    assert "|  |  | `harass` | Harassment | 10 | 2 | 2 |" in body
    # Datasheet sections, quarantine counts, changelog and BibTeX.
    for heading in [
        "### Motivation",
        "### Composition",
        "### Collection process",
        "### Preprocessing",
        "### Uses",
        "### Out-of-scope uses",
        "### Risks and biases",
        "### Distribution and licence",
        "### Maintenance and versioning",
    ]:
        assert f"\n{heading}\n" in body, heading
    assert "747 records read = 747 accepted + 0 quarantined" in body
    assert "#### v1.0.0" in body
    assert "@inproceedings{zhang2025spavl," in body
    assert "## Contamination audit" not in body  # no audit report in the folder


def test_yaml_metadata(card_release: Path) -> None:
    from spa_vl.release.metadata import read_front_matter

    meta, _ = read_front_matter(card_release / "README.md")
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["n<1K"]
    assert "visual-question-answering" in meta["task_categories"]
    assert meta["source_datasets"] == ["extended|sqrti/SPA-VL"]  # the lineage to the authors' data
    # A new card describes an open repository: no access form (tests/card/test_card_truth.py).
    assert not [key for key in meta if key.startswith("extra_gated")]
    assert meta["citation"].startswith("@inproceedings{zhang2025spavl,")
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == ["default"]


def test_repo_id_is_kept_across_renderings(release_copy) -> None:
    from spa_vl.card.check import check_release

    folder = release_copy()
    assert cli(["card", str(folder), "--repo-id", "acme/spa-vl", "--quiet"]) == 0
    render_card(folder)  # no repo id given: the card keeps acme/spa-vl
    body = (folder / "README.md").read_text(encoding="utf-8")
    assert 'load_dataset("acme/spa-vl", "malicious_use", revision="v1.0.0")' in body
    assert "ORG/NAME" not in body
    croissant = json.loads((folder / "croissant.json").read_text(encoding="utf-8"))
    assert croissant["url"] == "https://huggingface.co/datasets/acme/spa-vl"
    assert check_release(folder) == []


def test_audit_summary_is_shown(release_copy) -> None:
    from spa_vl.card.check import check_release

    folder = release_copy()
    (folder / "audit").mkdir()
    report = {
        "source": {"path": str(folder), "rows": 747},
        "eval_sets": [{"name": "advbench"}, {"name": "figstep"}],
        "summary": {
            "matches": 12,
            "source_rows_matched": 9,
            "groups": [
                {"scope": "eval", "eval_set": "advbench", "method": "exact",
                 "matches": 7, "source_rows": 5, "eval_items": 4},
                {"scope": "leak", "eval_set": "spa-vl", "method": "near",
                 "matches": 5, "source_rows": 4, "eval_items": 3},
            ],
        },
        "matches": [],
    }  # fmt: skip
    (folder / "audit/report.json").write_text(json.dumps(report), encoding="utf-8")
    assert check_release(folder)  # the card does not show the audit yet
    render_card(folder)
    body = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Contamination audit" in body
    assert "checked 747 rows" in body
    assert "2 public evaluation sets (advbench, figstep)" in body
    assert "**Against evaluation sets: 7 matches** on 5 rows." in body
    assert "**Inside the dataset: 5 matches** on 4 rows" in body
    assert "| **all scopes** | 12 | 9 |" in body
    assert "| eval | advbench | exact | 7 | 5 | 4 |" in body
    assert check_release(folder) == []


def test_a_config_without_rows_is_left_out(release_copy) -> None:
    """The build writes no files for an empty config; the card must not declare it."""
    from spa_vl.card.check import check_release
    from spa_vl.release.metadata import read_front_matter

    folder = release_copy()
    shutil.rmtree(folder / "data/socioeconomic")
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    manifest["files"] = [f for f in manifest["files"] if f.get("config") != "socioeconomic"]
    (folder / "MANIFEST.json").write_text(json.dumps(manifest), encoding="utf-8")
    render_card(folder)
    meta, body = read_front_matter(folder / "README.md")
    assert "socioeconomic" not in [c["config_name"] for c in meta["configs"]]
    assert "socioeconomic" not in [i["config_name"] for i in meta["dataset_info"]]
    assert "\n| `socioeconomic` |" not in body  # the per-config table
    croissant = json.loads((folder / "croissant.json").read_text(encoding="utf-8"))
    assert "parquet-socioeconomic" not in [d["@id"] for d in croissant["distribution"]]
    assert check_release(folder) == []
