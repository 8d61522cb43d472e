"""Fault injection (issue 12): helpers shared by the fault suite.

``cli(*argv)`` runs ``spa-vl`` in this process and returns ``Run(code, out, err)``; an exception
that escapes ``spa_vl.cli.main`` fails the test (it would be a traceback for the user).
``cli_subprocess`` runs it in a child process, for signals and concurrency.
``snapshot(path)`` maps every file under ``path`` to its bytes' sha256, to prove inputs unchanged.
``base`` (module scope) is a small raw JSONL source and the release built from it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from spa_vl.cli import main
from spa_vl.release.build import build_release
from spa_vl.sample import SampleSpec, write_sample

SMALL = SampleSpec(train=20, validation_per_sub=1, test_per_sub=1)  # 179 rows: fast to build


@dataclass
class Run:
    code: int
    out: str
    err: str

    def assert_one_line_error(self, code: int, *needles: str) -> None:
        """Exit ``code``, no traceback, and every needle in stderr."""
        assert self.code == code, (self.code, self.out, self.err)
        assert "Traceback" not in self.err, self.err
        for needle in needles:
            assert needle in self.err, (needle, self.err)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    def run(*argv: str | os.PathLike) -> Run:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def cli_subprocess(*argv: str | os.PathLike, timeout: float = 300, **kw) -> subprocess.Popen:
    """Start ``spa-vl ARGV`` in a child process (stdout/stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "spa_vl.cli", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def snapshot(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``path`` (or of ``path`` itself)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {
        (p.relative_to(path).as_posix() if p != path else p.name): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(raw JSONL source, release built from it), shared by a module's tests: copy before changing."""
    root = tmp_path_factory.mktemp("base")
    raw = write_sample(root / "raw", "jsonl", SMALL)
    rel = build_release(raw, root / "rel", quarantine=root / "rel.quarantine.jsonl").out
    return raw, rel


class World:
    """A copy of ``base`` in the test's own folder: raw source, release, an old quarantine file,
    and their bytes before the test (``before``), to prove nothing was lost."""

    def __init__(self, base: tuple[Path, Path], tmp_path: Path) -> None:
        self.root = tmp_path
        self.src = Path(shutil.copytree(base[0], tmp_path / "raw"))
        self.rel = Path(shutil.copytree(base[1], tmp_path / "rel"))
        self.quarantine = tmp_path / "rel.quarantine.jsonl"
        self.quarantine.write_text('{"old": "quarantine"}\n', encoding="utf-8")
        self.before = {p: snapshot(p) for p in (self.src, self.rel, self.quarantine)}
