"""``spa-vl verify``: every missing, extra and altered file is named; a clean folder passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from spa_vl.cli import main
from spa_vl.release.verify import verify_release

SHARD = "data/malicious_use/train-00000-of-00001.parquet"


def test_a_clean_release_verifies(release_v1: Path, capsys: pytest.CaptureFixture) -> None:
    assert verify_release(release_v1) == []
    assert main(["verify", str(release_v1)]) == 0
    assert "v1.0.0, 20 files match MANIFEST.json" in capsys.readouterr().out


def test_missing_extra_and_altered_files_are_each_named(
    release_v1: Path, capsys: pytest.CaptureFixture
) -> None:
    (release_v1 / "CHANGELOG.md").unlink()
    (release_v1 / "data/malicious_use/notes.txt").write_text("not in the manifest")
    shard = release_v1 / SHARD
    data = bytearray(shard.read_bytes())
    data[-20] ^= 0x01  # same size, other bytes: only the sha256 can tell
    shard.write_bytes(bytes(data))
    readme = release_v1 / "README.md"
    readme.write_text(readme.read_text() + "\nappended\n")  # other size

    problems = {(p.path, p.kind) for p in verify_release(release_v1)}
    assert problems == {
        ("CHANGELOG.md", "missing"),
        ("data/malicious_use/notes.txt", "extra"),
        (SHARD, "altered"),
        ("README.md", "altered"),
    }
    assert main(["verify", str(release_v1)]) == 1
    err = capsys.readouterr().err
    assert "4 file(s) do not match" in err
    for line in (
        "CHANGELOG.md: missing",
        "data/malicious_use/notes.txt: extra",
        f"{SHARD}: altered: sha256",
        "README.md: altered:",
    ):
        assert line in err


def test_caches_left_by_datasets_are_not_extra(release_v1: Path) -> None:
    (release_v1 / ".cache" / "huggingface").mkdir(parents=True)
    (release_v1 / ".cache" / "huggingface" / "lock").write_text("")
    assert verify_release(release_v1) == []


def test_no_manifest_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["verify", str(tmp_path)]) == 2
    assert "no manifest" in capsys.readouterr().err
