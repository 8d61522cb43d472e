"""``spa-vl release --gated auto|manual``: the repository is gated exactly when the card says so.

The stand-in answers the ``PUT /api/datasets/{id}/settings`` that huggingface_hub's
``HfApi.update_repo_settings(repo_id, gated=..., repo_type="dataset")`` sends, and reports the
setting in the repo info that ``HfApi.repo_info`` reads back: the real Hub call is tested at the
HfApi boundary (the real client, its real request). What the Hub then does for users (the access
form, the review of requests) is the Hub's own and is not reproduced.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import spa_vl.release.hub as hub_module
from spa_vl.cli import main
from spa_vl.release.hub import ReleaseError, ReleaseRefused, plan_release, push_release
from spa_vl.release.manifest import refresh_manifest

from .hub_standin import FAST, HUB_WARNINGS, REAL_CARD_CHECK, REPO, HubStandin

pytestmark = [HUB_WARNINGS, pytest.mark.usefixtures("no_card_rules")]


def say_in_card(folder: Path, gated: str | None, repo_id: str = REPO) -> Path:
    """Give the fixture's README the marker `spa-vl card` writes (repository and access)."""
    from spa_vl.card.content import CardSettings

    readme = folder / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + CardSettings(repo_id, gated).marker() + "\n")
    refresh_manifest(folder, ["README.md"])
    return folder


def push(folder: Path, gated: str | None = None):
    return push_release(plan_release(folder, REPO, gated=gated), retry=FAST, echo=lambda _: None)


def first_index(hub: HubStandin, method: str, fragment: str) -> int:
    return next(i for i, (m, p) in enumerate(hub.requests) if m == method and fragment in p)


@pytest.mark.parametrize("mode", ["auto", "manual"])
def test_gated_release_gates_the_repo_before_any_upload(hub: HubStandin, release_v1: Path, mode: str) -> None:
    result = push(say_in_card(release_v1, mode), gated=mode)
    assert hub.repo(REPO).gated == mode and result.gated == mode
    assert hub.settings_calls == [(REPO, {"gated": mode})]
    settings = first_index(hub, "PUT", "/settings")
    # Gated before a single data file could be downloaded: before LFS uploads and the commit.
    assert settings < first_index(hub, "PUT", "/__lfs/")
    assert settings < first_index(hub, "POST", "/commit/main")
    assert hub.repo(REPO).tags.keys() == {"v1.0.0"}


def test_without_gated_the_repo_is_left_open(hub: HubStandin, release_v1: Path) -> None:
    result = push(say_in_card(release_v1, None))
    assert hub.settings_calls == [] and hub.repo(REPO).gated is False and result.gated is None
    assert hub.count("GET", rf"^/api/datasets/{REPO}$") >= 1  # the gating was read back


@pytest.mark.parametrize(
    ("card", "flag", "words"),
    [
        ("manual", None, "the card says the repository is gated (manual), but without --gated"),
        (None, "auto", "the card says anyone can download it, but --gated auto gates it"),
        ("auto", "manual", "the card says the repository is gated (auto), but --gated manual"),
    ],
)
def test_card_and_flag_must_agree_before_anything_is_sent(
    hub: HubStandin, release_v1: Path, card: str | None, flag: str | None, words: str
) -> None:
    say_in_card(release_v1, card)
    with pytest.raises(ReleaseRefused, match="nothing was sent") as err:
        plan_release(release_v1, REPO, gated=flag)
    assert any(words in p for p in err.value.problems), err.value.problems
    assert f"--gated {flag or 'no'}" in str(err.value)  # the command that fixes the card
    assert hub.requests == []


def test_repo_gated_by_hand_under_an_open_card_is_refused(hub: HubStandin, release_v1: Path) -> None:
    say_in_card(release_v1, None)
    hub.create_repo(REPO, private=False)
    hub.repo(REPO).gated = "manual"  # set in the Hub's settings page
    with pytest.raises(ReleaseRefused, match=r"is gated \(manual\) on the Hub, but the card says anyone"):
        push(release_v1)
    assert hub.settings_calls == [] and hub.repo(REPO).gated == "manual"  # not changed behind the user
    assert hub.count("POST", "/commit/") == 0 and hub.count("PUT", "/__lfs/") == 0


def test_rerun_after_a_failed_upload_keeps_the_gate(hub: HubStandin, release_v1: Path) -> None:
    say_in_card(release_v1, "manual")
    hub.fail("POST", r"/commit/main$", 500, times=FAST.attempts)
    with pytest.raises(ReleaseError):
        push(release_v1, gated="manual")
    assert hub.repo(REPO).gated == "manual" and hub.repo(REPO).tags == {}  # gated, nothing tagged
    push(release_v1, gated="manual")
    assert hub.repo(REPO).tags.keys() == {"v1.0.0"} and hub.repo(REPO).gated == "manual"


@pytest.mark.parametrize("value", ["yes", "true", "none", "Manual", ""])
def test_refused_values(release_v1: Path, capsys: pytest.CaptureFixture, value: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["release", str(release_v1), "--repo-id", REPO, "--gated", value, "--dry-run"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ReleaseError, match="choose one of auto, manual"):
        plan_release(release_v1, REPO, gated=value)


def test_cli_gates_and_dry_run_says_so(
    hub: HubStandin, release_v1: Path, capsys: pytest.CaptureFixture
) -> None:
    say_in_card(release_v1, "auto")
    assert main(["release", str(release_v1), "--repo-id", REPO, "--gated", "auto", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "access:  gated (auto: requests granted once the form is filled in)" in out
    assert hub.requests == []
    assert main(["release", str(release_v1), "--repo-id", REPO, "--gated", "auto", "--quiet"]) == 0
    assert "access gated (auto" in capsys.readouterr().out
    assert hub.repo(REPO).gated == "auto"


@pytest.mark.slow
def test_maintainers_gated_flow_end_to_end(
    hub: HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """build, card for a gated repo, release: with the real card check, the card pushed says
    "gated" and the repository is gated; a push that would make the card false is refused."""
    from spa_vl.sample import SampleSpec, write_sample

    monkeypatch.setattr(hub_module, "_card_problems", REAL_CARD_CHECK)
    raw = write_sample(tmp_path / "raw", "jsonl", SampleSpec(train=53, validation_per_sub=1, test_per_sub=1))
    out = tmp_path / "spa_vl"
    assert main(["build", str(raw), "--out", str(out), "--version", "1.0.0", "--quiet"]) == 0
    assert main(["card", str(out), "--repo-id", REPO, "--gated", "manual", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["release", str(out), "--repo-id", REPO, "--quiet"]) == 1  # card says gated
    assert "the card says the repository is gated (manual)" in capsys.readouterr().err
    assert hub.requests == []
    assert main(["release", str(out), "--repo-id", REPO, "--gated", "manual", "--quiet"]) == 0
    repo = hub.repo(REPO)
    assert repo.gated == "manual" and repo.tags.keys() == {"v1.0.0"}
    card = hub.read(repo.commits[repo.tags["v1.0.0"]].files["README.md"]).decode()
    assert "**Access is gated.**" in card and "extra_gated_prompt:" in card
