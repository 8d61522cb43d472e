"""Fault injection (issue 12, item 1): SIGINT, SIGTERM and SIGKILL at several points of a build,
and two builds to one ``--out`` at once.

Each build runs in a child process. Where a point is brief, the child wraps one function so that
it writes a marker file and waits there (the test sends the signal when the marker appears);
otherwise the test polls the file system. After every fault: the previous release is byte for
byte what it was and verifies, the input is unchanged, and the next build succeeds and leaves no
debris.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spa_vl.cli import main
from spa_vl.release.verify import verify_release

from .conftest import World as FaultWorld
from .conftest import snapshot

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


# The child: `spa-vl ARGV`, with one function wrapped to pause at the point named by HOOK.
CHILD = r"""
import os, signal, sys, time
from pathlib import Path
# Ctrl-C as a terminal gives it, even where the suite runs as a background job (a shell without
# job control starts those with SIGINT ignored, and the child would inherit that)
signal.signal(signal.SIGINT, signal.default_int_handler)

def pause():
    Path(os.environ["MARK"]).write_text(str(os.getpid()))
    go = os.environ.get("GO")
    deadline = time.time() + 60
    while time.time() < deadline and not (go and Path(go).exists()):
        time.sleep(0.02)

hook = os.environ.get("HOOK", "")
import spa_vl.release.build as build
import spa_vl.release.staging as staging
if hook == "shards-written":
    real_write = build.write_data
    def write_data(*a, **k):
        written = real_write(*a, **k)
        pause()
        return written
    build.write_data = write_data
elif hook == "card":
    import spa_vl.card.render as render
    real_card = render.render_build_card
    def render_build_card(folder, stats):
        pause()
        return real_card(folder, stats)
    render.render_build_card = render_build_card
elif hook == "between-renames":
    staging._exchange = lambda a, b: False
    real_rename = os.rename
    def rename(a, b):
        real_rename(a, b)
        if ".old-" in str(b):
            pause()
    staging.os = type(sys)("os_shim")
    staging.os.__dict__.update(os.__dict__)
    staging.os.rename = rename
elif hook == "after-exchange":
    real_remove = staging._remove
    def remove(path):
        if ".staging-" in path.name and (path / "MANIFEST.json").exists():
            pause()  # the staging name now holds the old release
        real_remove(path)
    staging._remove = remove

from spa_vl.cli import main
sys.exit(main(sys.argv[1:]))
"""


class World(FaultWorld):
    """The fault tests' world, plus the files a paused child build signals through."""

    def __init__(self, base: tuple[Path, Path], tmp_path: Path) -> None:
        super().__init__(base, tmp_path)
        self.mark = tmp_path / "mark"
        self.go = tmp_path / "go"
        self.argv = [
            "build",
            self.src,
            "--out",
            self.rel,
            "--quarantine",
            self.quarantine,
            "--version",
            "1.1.0",
        ]

    def start(self, hook: str = "") -> subprocess.Popen:
        env = dict(os.environ, HOOK=hook, MARK=str(self.mark), GO=str(self.go))
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, *map(str, self.argv), "--quiet"],
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for(self, proc: subprocess.Popen, condition, what: str) -> None:
        deadline = time.monotonic() + 120
        while not condition():
            if proc.poll() is not None:
                raise AssertionError(f"the build ended before {what}: {proc.communicate()}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.005)

    def staging(self) -> list[Path]:
        return list(self.root.glob(".rel.staging-*"))

    def assert_previous_intact(self) -> None:
        for path, digest in self.before.items():
            assert snapshot(path) == digest, path
        assert verify_release(self.rel) == []

    def assert_rebuild_succeeds(self) -> None:
        """The next build runs (stale staging, lock and old folders cleared) and leaves no debris."""
        assert main([*map(str, self.argv), "--quiet"]) == 0
        assert verify_release(self.rel) == []
        assert "## v1.1.0" in (self.rel / "CHANGELOG.md").read_text(encoding="utf-8")
        assert debris(self.root) == []
        assert snapshot(self.src) == self.before[self.src]


def debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def world(base: tuple[Path, Path], tmp_path: Path) -> World:
    return World(base, tmp_path)


def _interrupt(world: World, proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigint_as_soon_as_the_staging_folder_appears(world: World) -> None:
    proc = world.start()
    world.wait_for(proc, lambda: bool(world.staging()), "the staging folder")
    code, err = _interrupt(world, proc, signal.SIGINT)
    assert code == 130 and "Traceback" not in err, err
    world.assert_previous_intact()
    assert debris(world.root) == []  # cleaned up on the way out


def test_sigint_during_the_card_step(world: World) -> None:
    proc = world.start("card")
    world.wait_for(proc, world.mark.exists, "the card step")
    code, err = _interrupt(world, proc, signal.SIGINT)
    assert code == 130 and "Traceback" not in err, err
    world.assert_previous_intact()
    assert debris(world.root) == []


def test_sigterm_after_the_shards_are_written_cleans_up_like_ctrl_c(world: World) -> None:
    proc = world.start("shards-written")
    world.wait_for(proc, world.mark.exists, "the last shard")
    code, err = _interrupt(world, proc, signal.SIGTERM)
    assert code == 130 and "Traceback" not in err, err
    world.assert_previous_intact()
    assert debris(world.root) == []


def test_sigkill_while_shards_are_written(world: World) -> None:
    # Polling: the first parquet file in the staging folder, whatever its name.
    proc = world.start()
    world.wait_for(
        proc, lambda: any(p for s in world.staging() for p in s.glob("data/*/*.parquet*")), "a shard"
    )
    code, _ = _interrupt(world, proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    world.assert_previous_intact()
    world.assert_rebuild_succeeds()


def test_sigkill_during_the_card_step(world: World) -> None:
    proc = world.start("card")
    world.wait_for(proc, world.mark.exists, "the card step")
    code, _ = _interrupt(world, proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    world.assert_previous_intact()
    assert world.staging()  # the debris a kill leaves, which the next run clears
    world.assert_rebuild_succeeds()


def test_sigkill_between_the_two_renames_of_a_swap(world: World) -> None:
    # Where the filesystem cannot exchange two folders atomically: the old release is aside and
    # the new one not yet in place. The next build puts the old one back first (its changelog
    # compares with v1.0.0), then replaces it.
    world.argv += ["--previous", world.rel]
    proc = world.start("between-renames")
    world.wait_for(proc, world.mark.exists, "the first rename")
    code, _ = _interrupt(world, proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not world.rel.exists() and list(world.root.glob(".rel.old-*"))
    world.assert_rebuild_succeeds()
    assert "Compared with v1.0.0" in (world.rel / "CHANGELOG.md").read_text(encoding="utf-8")


def test_sigkill_after_the_swap_before_the_old_release_is_removed(world: World) -> None:
    proc = world.start("after-exchange")
    world.wait_for(proc, world.mark.exists, "the exchange")
    code, _ = _interrupt(world, proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    # The new release is in place and complete; the old one lies in the staging name.
    assert verify_release(world.rel) == []
    assert "## v1.1.0" in (world.rel / "CHANGELOG.md").read_text(encoding="utf-8")
    world.assert_rebuild_succeeds()


def test_two_concurrent_builds_to_one_out(world: World, capsys) -> None:
    first = world.start("card")
    world.wait_for(first, world.mark.exists, "the first build's card step")
    assert main([*map(str, world.argv), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--out {world.rel}: another spa-vl build is writing it (pid {first.pid}" in err
    assert "Traceback" not in err
    world.assert_previous_intact()  # the refused build touched nothing
    world.go.write_text("go")
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert verify_release(world.rel) == []
    assert "## v1.1.0" in (world.rel / "CHANGELOG.md").read_text(encoding="utf-8")
    assert debris(world.root) == []


def test_sigkill_while_a_sample_is_written(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert main(["sample", str(out), "--train", "5", "--quiet"]) == 0
    before = snapshot(out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spa_vl.cli", "sample", str(out), "--train", "400", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".s.staging-*/*")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.kill()
    proc.communicate()
    assert snapshot(out) == before
    assert main(["sample", str(out), "--train", "5", "--seed", "1", "--quiet"]) == 0
    assert debris(tmp_path) == []
