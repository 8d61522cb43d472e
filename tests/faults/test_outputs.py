"""Fault injection (issue 12, items 1-2): outputs never destroy what the tool did not write, and
side files are never inputs.

One test per fault kind. Each asserts the exit code, that the one-line error names the path, that
no traceback is printed, and that nothing is lost: the input's bytes, the previous release (it
still verifies) and no debris beside ``--out`` for the next run to trip over.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from spa_vl.release.verify import verify_release
from spa_vl.sample import SampleSpec, write_sample

from .conftest import World as FaultWorld
from .conftest import snapshot


class World(FaultWorld):
    """The fault tests' world, with the checks these tests share."""

    def assert_nothing_lost(self) -> None:
        """Inputs and the previous release byte for byte; the release verifies; no debris."""
        for path, digest in self.before.items():
            assert snapshot(path) == digest, path
        assert verify_release(self.rel) == []
        assert debris(self.root) == []


def debris(folder: Path) -> list[str]:
    """Hidden leftovers of ours: staging and old folders, lock and aside files."""
    return sorted(p.name for p in folder.rglob(".*") if ".cache" not in p.parts)


@pytest.fixture
def world(base: tuple[Path, Path], tmp_path: Path) -> World:
    return World(base, tmp_path)


# -- build --out --------------------------------------------------------------------------------


def test_build_out_is_the_source(cli, world: World) -> None:
    run = cli("build", world.src, "--out", world.src, "--quiet")
    run.assert_one_line_error(2, f"--out {world.src}", "is the input")
    world.assert_nothing_lost()


def test_build_out_inside_the_source(cli, world: World) -> None:
    out = world.src / "release"
    run = cli("build", world.src, "--out", out, "--quiet")
    run.assert_one_line_error(2, f"--out {out}", "is inside the input")
    assert not out.exists()
    world.assert_nothing_lost()


def test_build_out_containing_the_source(cli, world: World) -> None:
    run = cli("build", world.src, "--out", world.root, "--quiet")
    run.assert_one_line_error(2, f"--out {world.root}")
    world.assert_nothing_lost()


def test_build_out_dot_from_inside_the_source(cli, world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.src)
    run = cli("build", ".", "--out", ".", "--quiet")
    run.assert_one_line_error(2, "--out .")
    world.assert_nothing_lost()


def test_build_default_out_from_inside_the_source(cli, world: World, monkeypatch) -> None:
    # The default --out ./spa_vl would be a folder inside the source.
    monkeypatch.chdir(world.src)
    run = cli("build", ".", "--quiet")
    run.assert_one_line_error(2, "--out spa_vl", "is inside the input")
    assert not (world.src / "spa_vl").exists()
    world.assert_nothing_lost()


def test_build_out_is_the_current_empty_folder(cli, world: World, monkeypatch) -> None:
    # The swap replaces the folder whole: a shell standing in it would be left in a removed one.
    here = world.root / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    run = cli("build", world.src, "--out", ".", "--quiet")
    run.assert_one_line_error(2, "--out .", "current folder")
    assert list(here.iterdir()) == []


def test_build_out_holding_the_users_data_files(cli, world: World) -> None:
    out = world.root / "mine"
    (out / "data" / "default").mkdir(parents=True)
    (out / "data" / "default" / "train-00000-of-00001.parquet").write_bytes(b"my own shard")
    (out / "notes.txt").write_text("my notes", encoding="utf-8")
    before = snapshot(out)
    run = cli("build", world.src, "--out", out, "--quiet")
    run.assert_one_line_error(2, f"--out {out}", "not a spa-vl release")
    assert snapshot(out) == before
    world.assert_nothing_lost()


def test_build_out_a_release_holding_a_user_file(cli, world: World) -> None:
    # A release the user added a file to: the swap would delete it, so it is refused by name.
    extra = world.rel / "data" / "my_notes.md"
    extra.write_text("keep me", encoding="utf-8")
    world.before[world.rel] = snapshot(world.rel)
    run = cli("build", world.src, "--out", world.rel, "--quiet")
    run.assert_one_line_error(2, f"--out {world.rel}", "data/my_notes.md", "not in its MANIFEST.json")
    extra.unlink()
    world.before[world.rel] = snapshot(world.rel)
    world.assert_nothing_lost()


def test_build_out_is_a_file(cli, world: World) -> None:
    out = world.root / "release.txt"
    out.write_text("a file", encoding="utf-8")
    run = cli("build", world.src, "--out", out, "--quiet")
    run.assert_one_line_error(2, f"--out {out}", "is not a folder")
    assert out.read_text(encoding="utf-8") == "a file"
    world.assert_nothing_lost()


def test_build_out_below_a_file(cli, world: World) -> None:
    parent = world.root / "plain"
    parent.write_text("a file", encoding="utf-8")
    run = cli("build", world.src, "--out", parent / "rel", "--quiet")
    run.assert_one_line_error(2, f"--out {parent / 'rel'}", "is not a folder")
    assert parent.read_text(encoding="utf-8") == "a file"
    world.assert_nothing_lost()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_build_out_in_an_unwritable_folder(cli, world: World) -> None:
    locked = world.root / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        run = cli("build", world.src, "--out", locked / "rel", "--quiet")
    finally:
        locked.chmod(0o755)
    run.assert_one_line_error(2, f"--out {locked / 'rel'}", "permission denied")
    world.assert_nothing_lost()


def test_build_out_an_empty_folder_is_fine(cli, world: World) -> None:
    out = world.root / "empty"
    out.mkdir()
    run = cli("build", world.src, "--out", out, "--quarantine", world.root / "q.jsonl", "--quiet")
    assert run.code == 0, run.err
    assert verify_release(out) == []
    world.assert_nothing_lost()


def test_build_out_a_symlink_to_a_release_keeps_the_link(cli, world: World) -> None:
    link = world.root / "current"
    link.symlink_to(world.rel, target_is_directory=True)
    run = cli(
        "build", world.src, "--out", link, "--quarantine", world.quarantine, "--version", "2.0.0", "--quiet"
    )
    assert run.code == 0, run.err
    assert link.is_symlink() and json.loads((link / "MANIFEST.json").read_text())["version"] == "2.0.0"
    assert verify_release(world.rel) == [] and debris(world.root) == []


# -- build --quarantine and --previous ------------------------------------------------------------


def test_build_quarantine_is_an_input_file(cli, world: World) -> None:
    target = world.src / "train.jsonl"
    run = cli("build", world.src, "--out", world.rel, "--quarantine", target, "--quiet")
    run.assert_one_line_error(2, f"--quarantine {target}", "is inside the input")
    world.assert_nothing_lost()


def test_build_quarantine_is_the_source_file(cli, world: World) -> None:
    # An RLHF JSON source may be one file: the quarantine may not be that file.
    raw = write_sample(
        world.root / "rlhf", "rlhf-json", SampleSpec(train=5, validation_per_sub=0, test_per_sub=0)
    )
    before = snapshot(raw)
    target = raw / "train.json"
    run = cli("build", target, "--out", world.rel, "--quarantine", target, "--quiet")
    run.assert_one_line_error(2, f"--quarantine {target}", "is the input")
    assert snapshot(raw) == before
    world.assert_nothing_lost()


def test_build_quarantine_is_a_folder(cli, world: World) -> None:
    folder = world.root / "rejects"
    folder.mkdir()
    run = cli("build", world.src, "--out", world.rel, "--quarantine", folder, "--quiet")
    run.assert_one_line_error(2, f"--quarantine {folder}", "is a folder")
    assert list(folder.iterdir()) == []
    world.assert_nothing_lost()


def test_build_quarantine_inside_the_source(cli, world: World) -> None:
    target = world.src / "rejected.jsonl"  # a .jsonl there would be read as data next time
    run = cli("build", world.src, "--out", world.rel, "--quarantine", target, "--quiet")
    run.assert_one_line_error(2, f"--quarantine {target}", "is inside the input")
    assert not target.exists()
    world.assert_nothing_lost()


def test_build_quarantine_inside_out(cli, world: World) -> None:
    target = world.rel / "quarantine.jsonl"
    run = cli("build", world.src, "--out", world.rel, "--quarantine", target, "--quiet")
    run.assert_one_line_error(2, f"--quarantine {target}", "inside --out")
    assert not target.exists()
    world.assert_nothing_lost()


def test_build_previous_is_not_a_release(cli, world: World) -> None:
    run = cli("build", world.src, "--out", world.rel, "--previous", world.src, "--quiet")
    run.assert_one_line_error(2, f"--previous {world.src}", "not a spa-vl release")
    world.assert_nothing_lost()


def test_build_previous_missing(cli, world: World) -> None:
    gone = world.root / "v0"
    run = cli("build", world.src, "--out", world.rel, "--previous", gone, "--quiet")
    run.assert_one_line_error(2, f"--previous {gone}", "no such release folder")
    world.assert_nothing_lost()


def test_build_previous_equal_to_out_describes_the_real_difference(cli, world: World) -> None:
    # Drop three train rows: the changelog of the rebuilt release must say so, though the
    # release it compares with is the very folder being replaced.
    train = world.src / "train.jsonl"
    lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
    train.write_text("".join(lines[3:]), encoding="utf-8")
    run = cli(
        "build", world.src, "--out", world.rel, "--previous", world.rel, "--version", "1.1.0",
        "--quarantine", world.quarantine, "--quiet",
    )  # fmt: skip
    assert run.code == 0, run.err
    changelog = (world.rel / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## v1.1.0" in changelog and "Compared with v1.0.0" in changelog
    assert "No rows added, removed or changed" not in changelog.split("## v1.0.0")[0]
    assert "3" in changelog.split("## v1.0.0")[0]  # three rows removed from train
    assert verify_release(world.rel) == [] and debris(world.root) == []


def test_build_failing_midway_leaves_the_previous_release(cli, world: World, monkeypatch) -> None:
    import spa_vl.release.build as build

    real = build.write_data

    def disk_full(records, out, *args, **kwargs):
        real(records, out, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "data" / "default"))

    monkeypatch.setattr(build, "write_data", disk_full)
    run = cli("build", world.src, "--out", world.rel, "--quarantine", world.quarantine, "--quiet")
    run.assert_one_line_error(
        2, f"--out {world.rel}", "No space left on device", "previous release is unchanged"
    )
    world.assert_nothing_lost()


def test_build_interrupted_in_process_leaves_the_previous_release(cli, world: World, monkeypatch) -> None:
    import spa_vl.card.render as render

    def ctrl_c(folder, stats):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "render_build_card", ctrl_c)
    run = cli("build", world.src, "--out", world.rel, "--quarantine", world.quarantine, "--quiet")
    assert run.code == 130 and "Traceback" not in run.err
    world.assert_nothing_lost()


def test_build_that_does_not_verify_is_not_swapped_in(cli, world: World, monkeypatch) -> None:
    import spa_vl.release.build as build
    from spa_vl.release.verify import FileProblem

    monkeypatch.setattr(
        build, "verify_release", lambda folder, **_: [FileProblem("x.parquet", "altered", "test")]
    )
    run = cli("build", world.src, "--out", world.rel, "--quarantine", world.quarantine, "--quiet")
    run.assert_one_line_error(1, "does not verify", "x.parquet", "previous one is unchanged")
    world.assert_nothing_lost()


def test_build_refused_while_another_holds_the_lock(cli, world: World) -> None:
    from spa_vl.release.staging import OutputLock

    lock = OutputLock(world.rel)
    lock.acquire()  # flock is per open file: a second open in this process conflicts too
    try:
        run = cli("build", world.src, "--out", world.rel, "--quarantine", world.quarantine, "--quiet")
    finally:
        lock.release()
    run.assert_one_line_error(
        2, f"--out {world.rel}", "another spa-vl build is writing it", f"pid {os.getpid()}"
    )
    world.assert_nothing_lost()


def test_build_recovers_from_a_crash_between_the_two_renames(cli, world: World) -> None:
    # What a SIGKILL between "old release aside" and "new release in place" leaves behind, on a
    # filesystem without an atomic exchange; plus a dead run's staging folder and lock file.
    old = world.root / ".rel.old-999999"
    world.rel.rename(old)
    (world.root / ".rel.staging-999998" / "data").mkdir(parents=True)
    (world.root / ".rel.lock").write_text("999999\n", encoding="utf-8")
    run = cli(
        "build", world.src, "--out", world.rel, "--previous", world.rel, "--version", "1.0.1",
        "--quarantine", world.quarantine, "--quiet",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "Compared with v1.0.0" in (world.rel / "CHANGELOG.md").read_text(encoding="utf-8")
    assert verify_release(world.rel) == [] and debris(world.root) == []


def test_build_swaps_by_two_renames_where_exchange_is_unavailable(cli, world: World, monkeypatch) -> None:
    import spa_vl.release.staging as staging

    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    run = cli(
        "build",
        world.src,
        "--out",
        world.rel,
        "--version",
        "1.2.0",
        "--quarantine",
        world.quarantine,
        "--quiet",
    )
    assert run.code == 0, run.err
    assert json.loads((world.rel / "MANIFEST.json").read_text())["version"] == "1.2.0"
    assert verify_release(world.rel) == [] and debris(world.root) == []


def test_build_rewrites_the_quarantine_only_when_the_build_succeeds(cli, world: World) -> None:
    run = cli("build", world.src, "--out", world.rel, "--quarantine", world.quarantine, "--quiet")
    assert run.code == 0, run.err
    assert world.quarantine.read_text(encoding="utf-8") == ""  # no rejected rows now
    assert debris(world.root) == []


# -- validate --report / --quarantine ------------------------------------------------------------


def test_validate_report_is_an_input_file(cli, world: World) -> None:
    target = world.src / "validation.jsonl"
    run = cli("validate", world.src, "--report", target, "--quiet")
    run.assert_one_line_error(2, f"--report {target}", "is inside the input")
    world.assert_nothing_lost()


def test_validate_report_is_a_folder(cli, world: World) -> None:
    folder = world.root / "reports"
    folder.mkdir()
    run = cli("validate", world.src, "--report", folder, "--quiet")
    run.assert_one_line_error(2, f"--report {folder}", "is a folder")
    assert list(folder.iterdir()) == []
    world.assert_nothing_lost()


def test_validate_quarantine_inside_the_source(cli, world: World) -> None:
    target = world.src / "bad.jsonl"
    run = cli("validate", world.src, "--quarantine", target, "--quiet")
    run.assert_one_line_error(2, f"--quarantine {target}", "is inside the input")
    assert not target.exists()
    world.assert_nothing_lost()


def test_validate_quarantine_and_report_are_one_file(cli, world: World) -> None:
    same = world.root / "out.json"
    run = cli("validate", world.src, "--report", same, "--quarantine", same, "--quiet")
    run.assert_one_line_error(2, f"--quarantine {same}", "--report")
    assert not same.exists()
    world.assert_nothing_lost()


def test_validate_interrupted_keeps_the_old_quarantine(cli, world: World, monkeypatch) -> None:
    import spa_vl.commands.validate as command

    def ctrl_c(*args, **kwargs):
        Path(kwargs["quarantine"]).write_text("half\n", encoding="utf-8")  # what a run had written
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "validate_source", ctrl_c)
    run = cli("validate", world.src, "--quarantine", world.quarantine, "--quiet")
    assert run.code == 130 and "Traceback" not in run.err
    world.assert_nothing_lost()


def test_validate_report_in_a_new_folder(cli, world: World) -> None:
    report = world.root / "reports" / "v.json"
    run = cli("validate", world.src, "--report", report, "--quiet")
    assert run.code == 0, run.err
    assert json.loads(report.read_text(encoding="utf-8"))["reconciles"] is True
    world.assert_nothing_lost()


# -- sample OUT and the demo ---------------------------------------------------------------------


def test_sample_out_holding_user_files(cli, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "train.jsonl").write_text('{"my": "data"}\n', encoding="utf-8")
    before = snapshot(out)
    run = cli("sample", out, "--layout", "jsonl", "--train", "5", "--quiet")
    run.assert_one_line_error(2, f"OUT {out}", "not a sample written by spa-vl sample")
    assert snapshot(out) == before and debris(tmp_path) == []


def test_sample_out_is_a_file(cli, tmp_path: Path) -> None:
    out = tmp_path / "s.txt"
    out.write_text("a file", encoding="utf-8")
    run = cli("sample", out, "--train", "5", "--quiet")
    run.assert_one_line_error(2, f"OUT {out}", "is not a folder")
    assert out.read_text(encoding="utf-8") == "a file"


def test_sample_out_is_the_current_folder(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = cli("sample", ".", "--train", "5", "--quiet")
    run.assert_one_line_error(2, "OUT .", "current folder")
    assert list(tmp_path.iterdir()) == []


def test_sample_replaces_an_earlier_sample_whole(cli, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert cli("sample", out, "--layout", "rlhf-json", "--train", "5", "--quiet").code == 0
    assert cli("sample", out, "--layout", "jsonl", "--train", "5", "--quiet").code == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"README.md", "images", "train.jsonl", "validation.jsonl", "test.jsonl"}
    assert debris(tmp_path) == []


def test_sample_with_a_user_file_added_is_refused(cli, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert cli("sample", out, "--layout", "hub", "--train", "5", "--quiet").code == 0
    (out / "my_analysis.ipynb").write_text("{}", encoding="utf-8")
    before = snapshot(out)
    run = cli("sample", out, "--train", "5", "--quiet")
    run.assert_one_line_error(2, f"OUT {out}")
    assert snapshot(out) == before


def test_demo_refuses_a_release_folder_holding_user_files(tmp_path: Path, capsys) -> None:
    from spa_vl.demo import main as demo

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work", encoding="utf-8")
    assert demo(["--out", str(tmp_path / "work"), "--release", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"--out {mine}" in err and "Traceback" not in err
    assert (mine / "thesis.tex").read_text(encoding="utf-8") == "years of work"
    assert not (tmp_path / "work").exists()


def test_demo_refuses_a_working_folder_holding_user_files(tmp_path: Path, capsys) -> None:
    from spa_vl.demo import main as demo

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.md").write_text("mine", encoding="utf-8")
    assert demo(["--out", str(work), "--release", str(tmp_path / "rel")]) == 2
    assert f"--out {work}" in capsys.readouterr().err
    assert (work / "notes.md").read_text(encoding="utf-8") == "mine"


def test_build_allow_partial_records_the_missing_shard_in_the_manifest(cli, tmp_path: Path) -> None:
    raw = write_sample(tmp_path / "hub", "hub", SampleSpec(train=16, validation_per_sub=1, test_per_sub=1))
    (raw / "data" / "train-00003-of-00008.parquet").unlink()
    out = tmp_path / "rel"
    refused = cli("build", raw, "--out", out, "--quiet")
    refused.assert_one_line_error(1, "train-00003-of-00008.parquet")
    assert not out.exists() and debris(tmp_path) == []
    run = cli("build", raw, "--out", out, "--allow-partial", "--quiet")
    assert run.code == 0, run.err
    partial = json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))["counts"]["partial"]
    assert [p["file"] for p in partial] == ["data/train-00003-of-00008.parquet"]
    assert verify_release(out) == []


def test_atomic_text_file_gets_the_plain_open_mode(tmp_path) -> None:
    """write_text_atomic writes through mkstemp (0600): the result must have open()'s mode."""
    from spa_vl.outputs import write_text_atomic

    write_text_atomic(tmp_path / "a.json", "{}")
    (tmp_path / "b.json").write_text("{}")
    assert (tmp_path / "a.json").stat().st_mode == (tmp_path / "b.json").stat().st_mode
    assert (tmp_path / "a.json").read_text() == "{}"
