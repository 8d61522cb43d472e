"""Seeded fuzz (issue 12): random byte flips and truncations of sample files, through ``validate``,
``build``, ``verify``, ``card`` (``--check`` and rendering), ``diff`` and ``audit``, in this
process via ``spa_vl.cli.main``.

Every run must exit 0, 1 or 2 with no traceback; an exception escaping ``main`` is a traceback
the user would see. Each lane (a command on one layout) runs its own seeded cases and collects
every failure with its reproducer (lane, seed, file, mutation) before failing, so one run of the
test lists every finding. About 300 runs in all, in well under a minute of CPU.
"""

from __future__ import annotations

import random
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from spa_vl.cli import main
from spa_vl.release.build import build_release
from spa_vl.sample import SampleSpec, write_sample

TINY = SampleSpec(train=12, validation_per_sub=1, test_per_sub=1, image_size=16)
ADVBENCH = Path("/work/shared/evalsets/advbench/harmful_behaviors.csv")
SEED = 20261130


@dataclass(frozen=True)
class Mutation:
    """Flip ``flips`` random bytes, then cut the file at ``cut`` (None: keep its length)."""

    flips: tuple[tuple[int, int], ...]  # (offset, xor mask)
    cut: int | None

    def apply(self, data: bytes) -> bytes:
        out = bytearray(data)
        for offset, mask in self.flips:
            if offset < len(out):
                out[offset] ^= mask
        return bytes(out if self.cut is None else out[: self.cut])

    @classmethod
    def random(cls, rng: random.Random, size: int) -> Mutation:
        kind = rng.choice(["flip", "flip", "truncate", "both"])
        flips: tuple[tuple[int, int], ...] = ()
        if kind in ("flip", "both") and size:
            flips = tuple(
                (rng.randrange(size), 1 << rng.randrange(8)) for _ in range(rng.choice([1, 1, 2, 8]))
            )
        cut = rng.randrange(size + 1) if kind in ("truncate", "both") else None
        return cls(flips, cut)


@dataclass(frozen=True)
class Lane:
    command: str
    layout: str  # a raw layout, or "release"
    runs: int
    targets: tuple[str, ...] = ()  # glob patterns of files to mutate (all files when empty)


RELEASE_TARGETS = ("MANIFEST.json", "data/*/*.parquet", "README.md", "croissant.json")
LANES = [
    Lane("validate", "hub", 50),
    Lane("validate", "rlhf-json", 50),
    Lane("validate", "jsonl", 50),
    Lane("build", "hub", 3, ("**/*.parquet",)),
    Lane("build", "rlhf-json", 3, ("*.json",)),
    Lane("build", "jsonl", 3, ("*.jsonl",)),
    Lane("verify", "release", 50, RELEASE_TARGETS),
    Lane("card-check", "release", 24, RELEASE_TARGETS),
    Lane("card", "release", 10, RELEASE_TARGETS),
    Lane("diff", "release", 24, ("MANIFEST.json", "data/*/*.parquet")),
    Lane("audit", "jsonl", 4, ("*.jsonl",)),
    # A release is a source too: validate and audit read its default config.
    Lane("validate", "release", 30, ("data/*/*.parquet", "MANIFEST.json", "README.md")),
    Lane("build", "release", 3, ("data/*/*.parquet",)),
    Lane("audit", "release", 3, ("data/*/*.parquet",)),
]
# Lanes whose findings are in code this suite does not own, with the reproducer; see the report
# of issue 12. Empty when every lane is clean.
KNOWN: dict[str, str] = {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    dirs = {layout: write_sample(root / layout, layout, TINY) for layout in ("hub", "rlhf-json", "jsonl")}
    dirs["release"] = build_release(dirs["hub"], root / "release", quarantine=root / "q.jsonl").out
    return dirs


def _argv(lane: Lane, src: Path, work: Path, pristine: Path) -> list[str]:
    if lane.command == "validate":
        return ["validate", str(src), "--quiet"]
    if lane.command == "build":
        return ["build", str(src), "--out", str(work / "out"), "--quiet"]
    if lane.command == "verify":
        return ["verify", str(src), "--quiet"]
    if lane.command == "card-check":
        return ["card", str(src), "--check", "--quiet"]
    if lane.command == "card":
        return ["card", str(src), "--quiet"]
    if lane.command == "diff":
        return ["diff", str(pristine), str(src), "--quiet"]
    return ["audit", str(src), "--eval", f"advbench={ADVBENCH}", "--out", str(work / "a.json"), "--quiet"]


def _targets(src: Path, lane: Lane) -> list[list[Path]]:
    """Groups of files to mutate, one per pattern, so that one MANIFEST.json weighs as much as
    all the parquet shards together."""
    if not lane.targets:
        return [sorted(p for p in src.rglob("*") if p.is_file())]
    groups = [[p for p in sorted(src.glob(pattern)) if p.is_file()] for pattern in lane.targets]
    return [g for g in groups if g]


def _run_lane(
    lane: Lane, src: Path, work: Path, pristine: Path, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    rng = random.Random(f"{SEED}:{lane.command}:{lane.layout}")
    targets = _targets(src, lane)
    assert targets, f"{lane}: nothing to mutate"
    findings = []
    for case in range(lane.runs):
        target = rng.choice(rng.choice(targets))
        original = target.read_bytes()
        mutation = Mutation.random(rng, len(original))
        target.write_bytes(mutation.apply(original))
        where = f"{lane.command} {lane.layout} case {case}: {target.relative_to(src)} {mutation}"
        try:
            code = main(_argv(lane, src, work, pristine))
            err = capsys.readouterr().err
            if code not in (0, 1, 2) or "Traceback" in err:
                findings.append(f"{where}: exit {code}, stderr {err[-300:]!r}")
        except Exception as exc:  # any escape is a finding, recorded with its place
            capsys.readouterr()
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            findings.append(
                f"{where}: {type(exc).__name__}: {str(exc)[:200]} at {frame.filename}:{frame.lineno}"
            )
        finally:
            target.write_bytes(original)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
    return findings


def _lane_id(lane: Lane) -> str:
    return f"{lane.command}-{lane.layout}"


def _param(lane: Lane):
    known = KNOWN.get(_lane_id(lane))
    marks = [pytest.mark.xfail(strict=True, reason=known)] if known else []
    return pytest.param(lane, id=_lane_id(lane), marks=marks)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lane", [_param(lane) for lane in LANES])
def test_fuzz_finds_no_traceback(
    lane: Lane, corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if lane.command == "audit" and not ADVBENCH.is_file():
        pytest.skip(f"{ADVBENCH} is not on this machine")
    # A private copy: mutations are undone after each case, but a failing case must not leak.
    src = Path(shutil.copytree(corpus[lane.layout], tmp_path / "src"))
    work = tmp_path / "work"
    work.mkdir()
    findings = _run_lane(lane, src, work, corpus[lane.layout], capsys)
    assert not findings, f"{len(findings)} of {lane.runs} runs failed:\n" + "\n".join(findings)
