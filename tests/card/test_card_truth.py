"""The card says only what is true, as a new user would check it: access (gated or not), one
paper title, the audit's eval-set and in-dataset matches told apart, the lineage to the
authors' dataset, and one spelling of "unlabeled"."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from spa_vl.about import CITATION, TITLE, UPSTREAM_REPO
from spa_vl.card.check import check_release
from spa_vl.card.content import card_settings
from spa_vl.card.render import render_card
from spa_vl.cli import main as cli
from spa_vl.release.metadata import read_front_matter

ROOT = Path(__file__).resolve().parents[2]


def gating_keys(meta: dict) -> list[str]:
    return sorted(k for k in meta if k.startswith("extra_gated"))


def test_a_new_card_does_not_claim_a_gate(card_release: Path) -> None:
    meta, body = read_front_matter(card_release / "README.md")
    assert gating_keys(meta) == []
    assert "**Access is not gated.** Anyone can download this repository" in body
    assert "gated behind" not in body
    croissant = json.loads((card_release / "croissant.json").read_text(encoding="utf-8"))
    assert "not gated" in croissant["rai:dataSocialImpact"]
    assert card_settings(card_release).gated is None


@pytest.mark.parametrize(
    ("mode", "words"), [("auto", "requests are granted"), ("manual", "review each request")]
)
def test_card_for_a_gated_repo(release_copy, mode: str, words: str) -> None:
    folder = release_copy()
    assert cli(["card", str(folder), "--repo-id", "acme/spa-vl", "--gated", mode, "--quiet"]) == 0
    meta, body = read_front_matter(folder / "README.md")
    assert gating_keys(meta) == [
        "extra_gated_button_content",
        "extra_gated_fields",
        "extra_gated_heading",
        "extra_gated_prompt",
    ]
    assert "harmful" in meta["extra_gated_prompt"]
    assert set(meta["extra_gated_fields"].values()) <= {"text", "checkbox"}
    assert "**Access is gated.**" in body and words in body and "not gated" not in body
    assert card_settings(folder) == type(card_settings(folder))("acme/spa-vl", mode)
    assert check_release(folder) == []  # the check renders again with the card's own choice
    render_card(folder)  # no --gated: the card keeps its choice
    assert card_settings(folder).gated == mode and check_release(folder) == []
    assert cli(["card", str(folder), "--gated", "no", "--quiet"]) == 0
    meta, body = read_front_matter(folder / "README.md")
    assert gating_keys(meta) == [] and "**Access is not gated.**" in body
    assert card_settings(folder).repo_id == "acme/spa-vl" and check_release(folder) == []


def test_gating_options_refused(release_copy, capsys: pytest.CaptureFixture) -> None:
    folder = release_copy()
    with pytest.raises(SystemExit) as exit_:
        cli(["card", str(folder), "--gated", "yes"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert cli(["card", str(folder), "--check", "--gated", "auto"]) == 2
    assert "--gated renders the card" in capsys.readouterr().err


def test_one_paper_title(card_release: Path) -> None:
    meta, body = read_front_matter(card_release / "README.md")
    in_body = re.search(r"introduced by Zhang et al\. in \*([^*]+)\*", body).group(1)
    in_bibtex = re.search(r"title\s*=\s*\{(.+)\},", body).group(1)
    in_yaml = re.search(r"title\s*=\s*\{(.+)\},", meta["citation"]).group(1)
    assert in_body == in_bibtex == in_yaml == TITLE
    assert TITLE.endswith("for Vision Language Model")  # as on arXiv 2406.12030
    assert TITLE in CITATION


def test_lineage_to_the_authors_dataset(card_release: Path) -> None:
    meta, _ = read_front_matter(card_release / "README.md")
    assert meta["source_datasets"] == [f"extended|{UPSTREAM_REPO}"] == ["extended|sqrti/SPA-VL"]
    assert check_release(card_release) == []  # valid against schema/card_metadata.schema.json


def _match(scope: str, split: str, row: str, eval_set: str = "spa-vl") -> dict:
    return {"scope": scope, "source_split": split, "source_id": row, "eval_set": eval_set}


def _write_audit(folder: Path, matches: list[dict], eval_sets: list[str], scopes: list[str]) -> None:
    groups: dict[tuple, dict] = {}
    for m in matches:
        g = groups.setdefault((m["scope"], m["eval_set"]), {"n": 0, "rows": set()})
        g["n"] += 1
        g["rows"].add((m["source_split"], m["source_id"]))
    report = {
        "source": {"path": str(folder), "format": "release", "rows": 747},
        "eval_sets": [{"name": n, "format": "csv", "path": n, "texts": 10, "images": 0} for n in eval_sets],
        "summary": {
            "matches": len(matches),
            "source_rows_matched": len({(m["source_split"], m["source_id"]) for m in matches}),
            "by_scope": dict(sorted(Counter(m["scope"] for m in matches).items())),
            "groups": [
                {"scope": s, "eval_set": e, "method": "exact", "matches": g["n"],
                 "source_rows": len(g["rows"]), "eval_items": 1}
                for (s, e), g in sorted(groups.items())
            ],
            "settings": {"scopes": scopes},
        },
        "matches": matches,
    }  # fmt: skip
    (folder / "audit").mkdir(exist_ok=True)
    (folder / "audit/report.json").write_text(json.dumps(report), encoding="utf-8")


def test_audit_with_no_eval_set_match_says_zero(release_copy) -> None:
    folder = release_copy()
    matches = [
        _match("duplicate", "train", "train/000001"),
        _match("duplicate", "train", "train/000002"),
        _match("leak", "train", "train/000001"),
        _match("leak", "validation", "validation/000007"),
    ]
    _write_audit(folder, matches, ["advbench", "figstep"], ["duplicate", "leak", "eval"])
    render_card(folder)
    body = (folder / "README.md").read_text(encoding="utf-8")
    assert "**Against evaluation sets: 0 matches**." in body
    assert "**Inside the dataset: 4 matches** on 3 rows (duplicates within a split and leaks" in body
    assert "| against the evaluation sets | 0 | 0 |" in body
    assert "| inside the dataset: duplicates within a split | 2 | 2 |" in body
    assert "| inside the dataset: leaks between train, validation and test | 2 | 2 |" in body
    assert "| **all scopes** | 4 | 3 |" in body
    assert check_release(folder) == []


def test_audit_without_eval_sets_says_not_checked(release_copy) -> None:
    folder = release_copy()
    _write_audit(folder, [], [], ["duplicate", "leak", "eval"])
    render_card(folder)
    body = (folder / "README.md").read_text(encoding="utf-8")
    assert "overlap with evaluation sets was\n**not checked**" in body
    assert "| against the evaluation sets | not checked | not checked |" in body
    assert "Against evaluation sets:" not in body  # never "0" for a check that did not run
    assert "**Inside the dataset: 0 matches** (duplicates within a split" in body
    assert check_release(folder) == []


def _own_text_files() -> list[Path]:
    card = ROOT / "src/spa_vl/card"
    return [
        ROOT / "dataset_card/README.md.j2",
        ROOT / "src/spa_vl/about.py",
        ROOT / "src/spa_vl/builder.py",
        ROOT / "src/spa_vl/loading.py",
        ROOT / "src/spa_vl/release/hub.py",
        ROOT / "src/spa_vl/commands/card.py",
        ROOT / "src/spa_vl/commands/release.py",
        *(card / n for n in ("content.py", "plots.py", "croissant.py", "published.py", "check.py")),
    ]


def test_unlabeled_is_spelt_one_way(card_release: Path) -> None:
    """American "unlabeled", as the datasets library and the release's folder spell it."""
    texts = {p: p.read_text(encoding="utf-8") for p in _own_text_files() if p.is_file()}
    for name in ("README.md", "croissant.json"):
        texts[card_release / name] = (card_release / name).read_text(encoding="utf-8")
    assert [str(p) for p, text in texts.items() if re.search(r"unlabell", text, re.I)] == []


def test_published_facts_import_nothing_heavy() -> None:
    """The citation, licence, homepage, data version and upstream repo id live in one module
    that the builder, the card and the release build import without pulling each other in."""
    import subprocess
    import sys

    code = (
        "import sys, spa_vl.about, spa_vl.card.published\n"
        "heavy = {'datasets', 'pyarrow', 'matplotlib', 'jinja2', 'huggingface_hub', 'spa_vl.release',"
        " 'spa_vl.builder', 'spa_vl.card.content'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import spa_vl.about as about
    import spa_vl.builder as builder

    for name in ("CITATION", "DATA_VERSION", "DESCRIPTION", "HOMEPAGE", "LICENSE"):
        assert getattr(builder, name) is getattr(about, name)  # still importable from the builder
