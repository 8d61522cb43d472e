"""``spa-vl release`` against the local Hub stand-in, with the real huggingface_hub client.

Where a test depends on a Hub behaviour (LFS dedup, 409 on an existing tag, 412 on a stale
parent), that behaviour is the stand-in's reproduction of it; see hub_standin's docstring.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import spa_vl.release.hub as hub_module
from spa_vl.cli import main
from spa_vl.release.hub import (
    HubFailure,
    ReleaseRefused,
    RetryPolicy,
    plan_release,
    push_release,
)

from .hub_standin import FAST, HUB_WARNINGS, READ_TOKEN, REAL_CARD_CHECK, REPO, WRITE_TOKEN, HubStandin

pytestmark = [HUB_WARNINGS, pytest.mark.usefixtures("no_card_rules")]


def push(folder: Path, retry: RetryPolicy = FAST, **kwargs):
    return push_release(plan_release(folder, REPO, **kwargs), retry=retry, echo=lambda _: None)


def releases(hub: HubStandin) -> list[str]:
    """Titles of the commits on main after the repo's initial commit, oldest first."""
    return [c.title for c in reversed(hub.repo(REPO).history("main"))][1:]


def test_first_release_commits_once_tags_and_reads_back(hub: HubStandin, release_v1: Path) -> None:
    result = push(release_v1)
    repo = hub.repo(REPO)
    assert releases(hub) == ["Release v1.0.0"]
    assert repo.tags == {"v1.0.0": result.commit} and repo.branches["main"] == result.commit
    assert result.new_commit and not result.already_released and result.files_checked == 21
    files = repo.commits[result.commit].files
    assert set(files) - {".gitattributes"} == {
        p.relative_to(release_v1).as_posix() for p in release_v1.rglob("*") if p.is_file()
    }
    parquet = "data/malicious_use/train-00000-of-00001.parquet"
    assert files[parquet].sha256 is not None  # stored through LFS
    assert hub.read(files[parquet]) == (release_v1 / parquet).read_bytes()
    assert hub.count("GET", r"/tree/v1\.0\.0$") == 1  # read back at the tag


def test_second_version_keeps_the_first_tag_and_drops_stale_files(
    hub: HubStandin, release_v1: Path, release_v2: Path
) -> None:
    first = push(release_v1)
    (release_v2 / "data/malicious_use/extra-00000-of-00001.parquet").write_bytes(b"x")
    with pytest.raises(ReleaseRefused):  # an unlisted file never leaves the machine
        push(release_v2)
    (release_v2 / "data/malicious_use/extra-00000-of-00001.parquet").unlink()
    # Someone adds a file by hand on main: the next release must not carry it along.
    stray = base64.b64encode(b"stray").decode()
    hub.commit(
        hub.repo(REPO),
        "main",
        [
            {"key": "header", "value": {"summary": "manual upload"}},
            {"key": "file", "value": {"path": "stale.txt", "content": stray, "encoding": "base64"}},
        ],
    )
    second = push(release_v2)
    repo = hub.repo(REPO)
    assert releases(hub) == ["Release v1.0.0", "manual upload", "Release v1.1.0"]
    assert repo.tags == {"v1.0.0": first.commit, "v1.1.0": second.commit}
    assert "stale.txt" not in repo.commits[second.commit].files  # older files are removed
    v1_manifest = json.loads(hub.read(repo.commits[first.commit].files["MANIFEST.json"]))
    assert v1_manifest["version"] == "1.0.0"  # the old tag still serves the old release


def test_rerelease_of_an_existing_tag(hub: HubStandin, release_v1: Path, release_v2: Path) -> None:
    first = push(release_v1)
    again = push(release_v1)  # same version, same files: nothing to do, nothing pushed
    assert again.already_released and again.commit == first.commit
    # Same version number, other content: refused, main and the tag untouched.
    manifest = json.loads((release_v2 / "MANIFEST.json").read_text())
    manifest["version"] = "1.0.0"
    (release_v2 / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ReleaseRefused, match="a released version never changes") as err:
        push(release_v2)
    assert any("data/malicious_use/train" in p for p in err.value.problems)
    assert releases(hub) == ["Release v1.0.0"]
    assert hub.repo(REPO).tags == {"v1.0.0": first.commit}


def test_transient_500_and_429_are_retried_within_the_run(hub: HubStandin, release_v1: Path) -> None:
    hub.fail("POST", r"/commit/main$", 500, times=1)
    hub.fail("POST", r"/tag/", 429, times=1)
    result = push(release_v1)
    assert hub.count("POST", r"/commit/main$") == 2 and hub.count("POST", r"/tag/") == 2
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags == {"v1.0.0": result.commit}


def test_persistent_500_fails_then_rerun_completes(hub: HubStandin, release_v1: Path) -> None:
    hub.fail("POST", r"/commit/main$", 500, times=FAST.attempts)
    with pytest.raises(HubFailure, match=r"after 3 attempts .*HTTP 500.*run the same command again"):
        push(release_v1)
    assert releases(hub) == [] and hub.repo(REPO).tags == {}
    puts = hub.count("PUT", r"^/__lfs/")
    result = push(release_v1)
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags == {"v1.0.0": result.commit}
    assert hub.count("PUT", r"^/__lfs/") == puts  # LFS objects were already up: not re-sent


def test_dropped_connection_mid_upload_then_rerun(hub: HubStandin, release_v1: Path) -> None:
    # The commit request (carrying README, CHANGELOG, MANIFEST) dies halfway, on every attempt.
    hub.fail("POST", r"/commit/main$", "drop", times=FAST.attempts)
    with pytest.raises(HubFailure, match="upload the files"):
        push(release_v1)
    assert hub.repo(REPO).tags == {}
    result = push(release_v1)
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags == {"v1.0.0": result.commit}


def test_dropped_lfs_upload_is_resumed_by_the_client(hub: HubStandin, release_v1: Path) -> None:
    # huggingface_hub retries an LFS PUT itself (1 s backoff): one PUT more, one commit.
    hub.fail("PUT", r"^/__lfs/", "drop", times=1)
    result = push(release_v1)
    assert hub.count("PUT", r"^/__lfs/") == 19  # 18 parquet files + the one cut short
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags == {"v1.0.0": result.commit}


def test_commit_answer_lost_is_not_committed_twice(hub: HubStandin, release_v1: Path) -> None:
    hub.fail("POST", r"/commit/main$", "drop_after", times=1)  # committed, then the answer is lost
    result = push(release_v1)
    assert not result.new_commit  # the retry found main already holding the release
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags == {"v1.0.0": result.commit}


def test_killed_after_commit_rerun_only_tags(hub: HubStandin, release_v1: Path) -> None:
    hub.fail("POST", r"/commit/main$", "drop_after", times=1)
    hub.fail("POST", r"/tag/", 503, times=FAST.attempts)
    with pytest.raises(HubFailure, match=r"create the tag v1\.0\.0"):
        push(release_v1)
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags == {}  # not half-tagged
    result = push(release_v1)
    assert not result.new_commit
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags == {"v1.0.0": result.commit}


def test_tag_answer_lost_is_accepted_on_retry(hub: HubStandin, release_v1: Path) -> None:
    hub.fail("POST", r"/tag/", "drop_after", times=1)  # tagged, answer lost; the retry gets 409
    result = push(release_v1)
    assert hub.repo(REPO).tags == {"v1.0.0": result.commit}


@pytest.mark.parametrize(
    ("setup", "sentence"),
    [
        ("bad-token", "The Hub rejected the token (401)"),
        ("read-token", f"The token may not write to {REPO} (403)"),
        ("404", f"{REPO} was not found on the Hub (404)"),
        ("409", f"The Hub reported a conflict on {REPO} (409)"),
    ],
)
def test_http_errors_become_one_sentence(
    hub: HubStandin,
    release_v1: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    setup: str,
    sentence: str,
) -> None:
    token = {"bad-token": "hf_not_a_real_SECRET", "read-token": READ_TOKEN}.get(setup, WRITE_TOKEN)
    monkeypatch.setenv("HF_TOKEN", token)
    if setup == "404":
        hub.fail("POST", r"^/api/repos/create$", 404)
    if setup == "409":
        hub.fail("POST", r"/commit/main$", 409)
    code = main(["release", str(release_v1), "--repo-id", REPO, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert sentence in err and err.count("\n") == 1, err
    assert token not in err
    assert any(token in a for a in hub.auth_seen)  # it was sent, never shown


def test_token_never_printed_logged_or_pushed(
    hub: HubStandin, release_v1: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hub.fail("POST", r"/commit/main$", 500, times=1)
    assert main(["release", str(release_v1), "--repo-id", REPO, "--quiet", "--message", "notes"]) == 0
    out = capsys.readouterr()
    assert "tagged v1.0.0" in out.out
    assert WRITE_TOKEN not in out.out + out.err + caplog.text
    repo = hub.repo(REPO)
    assert all(
        WRITE_TOKEN.encode() not in hub.read(b) for c in repo.commits.values() for b in c.files.values()
    )
    assert any(WRITE_TOKEN in a for a in hub.auth_seen)


def test_no_token_is_an_environment_error(
    hub: HubStandin, release_v1: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    assert main(["release", str(release_v1), "--repo-id", REPO]) == 2
    assert "No Hugging Face token" in capsys.readouterr().err
    assert hub.requests == []


def test_tampered_file_is_refused_before_upload(
    hub: HubStandin, release_v1: Path, capsys: pytest.CaptureFixture
) -> None:
    shard = release_v1 / "data/malicious_use/train-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert main(["release", str(release_v1), "--repo-id", REPO]) == 1
    err = capsys.readouterr().err
    assert "data/malicious_use/train-00000-of-00001.parquet: altered" in err
    assert "nothing was sent" in err
    assert hub.requests == []


def test_dry_run_prints_the_plan_and_sends_nothing(
    hub: HubStandin, release_v1: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["release", str(release_v1), "--repo-id", REPO, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{hub.endpoint}/datasets/{REPO}" in out
    assert "tag:     v1.0.0" in out and "21 files" in out
    assert "data/malicious_use/train-00000-of-00001.parquet" in out and "MANIFEST.json" in out
    assert "token:   HF_TOKEN" in out and WRITE_TOKEN not in out
    assert hub.requests == []


def test_bad_repo_id_is_a_usage_error(release_v1: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["release", str(release_v1), "--repo-id", "no-namespace", "--dry-run"]) == 2
    assert "ORG/NAME" in capsys.readouterr().err


_READER = """
import json, sys
import datasets
import spa_vl
out = {}
for rev in sys.argv[3:]:
    ds = datasets.load_dataset(sys.argv[1], sys.argv[2], revision=rev)
    ours = spa_vl.load(sys.argv[2], source=sys.argv[1], revision=rev)
    assert {s: ours[s]["id"] for s in ours} == {s: ds[s]["id"] for s in ds}
    out[rev] = {s: sorted(ds[s]["id"]) for s in ds}
    out["domain"] = ds["train"].features["domain"].int2str(ds["train"][0]["domain"])
print(json.dumps(out))
"""


def read_back(hf_home: Path, config: str, *revisions: str) -> dict:
    """Load ``revisions`` of REPO in a fresh process that finds the stand-in through
    HF_ENDPOINT alone, as a user's script would find the Hub."""
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env.update(HF_DATASETS_CACHE=str(hf_home / "datasets"), HF_HUB_DISABLE_PROGRESS_BARS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _READER, REPO, config, *revisions],
        env=env,
        cwd=hf_home,  # no folder named like the repo id here
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_load_reads_each_pinned_version_back(
    hub: HubStandin, release_v1: Path, release_v2: Path, hf_home: Path
) -> None:
    """``datasets.load_dataset(repo, config, revision=tag)`` and ``spa_vl.load(config,
    source=repo, revision=tag)`` give each pushed version, not main's."""
    push(release_v1)
    push(release_v2)
    got = read_back(hf_home, "malicious_use", "v1.0.0", "v1.1.0")
    assert got["v1.0.0"] == {
        "train": ["train/000003"],
        "validation": ["validation/000003"],
        "test": ["test/000003"],
    }
    assert got["v1.1.0"]["train"] == ["train/000003", "train/000100"]
    assert got["domain"] == "Malicious Use"
    assert hub.count("GET", r"/resolve/") > 0


@pytest.mark.slow
def test_built_release_end_to_end(hub: HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The maintainer's flow on a small sample: spa-vl build, verify, release, with the real
    card check (53 train rows, so that every domain config has train rows)."""
    from spa_vl.sample import SampleSpec, write_sample

    raw = write_sample(tmp_path / "raw", "jsonl", SampleSpec(train=53, validation_per_sub=1, test_per_sub=1))
    out = tmp_path / "spa_vl"
    monkeypatch.setattr(hub_module, "_card_problems", REAL_CARD_CHECK)  # the real card check
    assert main(["build", str(raw), "--out", str(out), "--version", "1.0.0", "--quiet"]) == 0
    assert main(["verify", str(out)]) == 0
    # The card still names the placeholder repository: refused until it is rendered for REPO.
    assert main(["release", str(out), "--repo-id", REPO, "--quiet"]) == 1
    assert main(["card", str(out), "--repo-id", REPO, "--quiet"]) == 0
    assert main(["release", str(out), "--repo-id", REPO, "--quiet"]) == 0
    assert releases(hub) == ["Release v1.0.0"] and hub.repo(REPO).tags.keys() == {"v1.0.0"}


def test_token_from_the_saved_login(
    hub: HubStandin,
    hf_home: Path,
    release_v1: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    (hf_home / "token").write_text(WRITE_TOKEN)  # what `hf auth login` saves
    assert main(["release", str(release_v1), "--repo-id", REPO, "--dry-run"]) == 0
    assert "token:   the saved login" in capsys.readouterr().out
    assert main(["release", str(release_v1), "--repo-id", REPO, "--quiet"]) == 0
    assert WRITE_TOKEN not in capsys.readouterr().out
    assert hub.repo(REPO).tags.keys() == {"v1.0.0"}
