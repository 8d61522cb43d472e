"""``spa-vl diff``: rows added, removed, changed and label shifts between two folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spa_vl.cli import main
from spa_vl.release.diff import ReleaseDiff, changelog_entry, diff_releases, render_changelog


def by_key(diff) -> dict:
    return {(s.config, s.split): s for s in diff.splits}


def test_counts_per_config_and_split(release_v1: Path, release_v2: Path) -> None:
    diff = diff_releases(release_v1, release_v2)
    assert (diff.old_version, diff.new_version) == ("1.0.0", "1.1.0")
    s = by_key(diff)
    assert len(s) == 21
    train = s[("default", "train")]
    assert (train.old_rows, train.new_rows) == (6, 8)
    assert train.added == ["train/000100", "train/000101", "train/000102"]
    assert train.removed == ["train/000005"]
    assert train.changed == []
    assert s[("default", "validation")].changed == ["validation/000001"]
    assert s[("malicious_use", "train")].added == ["train/000100"]
    assert s[("socioeconomic", "train")].removed == ["train/000005"]
    assert s[("socioeconomic", "train")].added == ["train/000102"]
    assert s[("default", "test")].is_empty and s[("misinformation", "test")].is_empty
    assert train.labels["domain"] == {"Malicious Use": (1, 2), "Human Autonomy & IntegrityHarms": (1, 2)}
    assert "domain" not in s[("socioeconomic", "train")].labels  # re-keyed, same label
    assert "eval_set" not in train.labels  # unchanged (all unknown on train)


def test_identical_folders_have_no_changes(release_v1: Path) -> None:
    assert all(s.is_empty for s in diff_releases(release_v1, release_v1).splits)
    assert "No rows added, removed or changed." in changelog_entry(release_v1, release_v1, "1.0.1")


def test_changelog_entry(release_v1: Path, release_v2: Path) -> None:
    entry = changelog_entry(release_v1, release_v2, "1.1.0")
    assert entry.startswith("## v1.1.0\n\nCompared with v1.0.0.\n")
    assert "| default | train | 6 → 8 | 3 | 1 | 0 |" in entry
    assert "| default | validation | 6 → 6 | 0 | 0 | 1 |" in entry
    assert "| default | test |" not in entry  # unchanged splits stay out of the table
    assert "- `default/train` domain: " in entry and "Malicious Use 1 → 2 (+1)" in entry


def test_new_folder_without_manifest(release_v1: Path, release_v2: Path) -> None:
    # The builder writes CHANGELOG.md before MANIFEST.json, so the new side may have none yet...
    (release_v2 / "MANIFEST.json").unlink()
    entry = changelog_entry(release_v1, release_v2, "v1.1.0")
    assert entry.startswith("## v1.1.0\n") and "| default | train | 6 → 8 | 3 | 1 | 0 |" in entry


def test_changelog_ignores_a_stale_manifest_in_the_new_folder(release_v1: Path, release_v2: Path) -> None:
    # ...or a stale one from an earlier build into the same folder, listing other shards.
    manifest = json.loads((release_v2 / "MANIFEST.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if "train" not in f["path"]]
    (release_v2 / "MANIFEST.json").write_text(json.dumps(manifest))
    assert "| default | train | 6 → 8 | 3 | 1 | 0 |" in changelog_entry(release_v1, release_v2, "1.1.0")


def test_cli_outputs(release_v1: Path, release_v2: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["diff", str(release_v1), str(release_v2)]) == 0
    out = capsys.readouterr().out
    assert (
        "default/train: 6 → 8 rows, +3 -1 ~0" in out and "+ train/000100, train/000101, train/000102" in out
    )
    assert main(["diff", str(release_v1), str(release_v2), "--changelog"]) == 0
    assert capsys.readouterr().out.startswith("## v1.1.0")
    assert main(["diff", str(release_v1), str(release_v2), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["splits"][0]["config"] == "default" and len(data["splits"][0]["added"]) == 3
    assert main(["diff", str(release_v1), str(release_v2 / "nope")]) == 2


def test_changelog_compares_source_fingerprints_only_when_taken_with_one_hash() -> None:
    """Releases built before the xxh3 fingerprint recorded a bare sha256: a change of hash is
    not a change of source, and the changelog must not claim one."""

    def line(old: str, new: str) -> str:
        text = render_changelog(ReleaseDiff("1.0.0", "1.1.0", old, new, []), "1.1.0")
        return next(x for x in text.splitlines() if x.startswith("Source fingerprint"))

    a, b = "xxh3_128:" + "a" * 32, "xxh3_128:" + "b" * 32
    assert line(a, a) == "Source fingerprint: unchanged."
    assert a in line(a, b) and b in line(a, b)
    assert line("f" * 64, a) == "Source fingerprint: not comparable (taken with another hash)."
