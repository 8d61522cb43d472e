"""``make demo``: the main job on the built-in sample, end to end.

sample (Hub layout) -> validate -> build the release into ./spa_vl -> card and its check ->
contamination audit against the shared AdvBench and FigStep files and the sample's own splits.
Run as ``python -m spa_vl.demo``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from spa_vl.cli import main as cli
from spa_vl.errors import UsageError
from spa_vl.outputs import check_output_dir, resolved
from spa_vl.release.build import check_build_paths
from spa_vl.sample import is_sample_folder

EVALSETS = Path(__file__).resolve().parents[3] / "shared" / "evalsets"


# Everything the demo writes in its working folder: a folder holding only these is an earlier
# demo's, which the next one may clear.
DEMO_FILES = ("validation.json", "quarantine.jsonl", "build.quarantine.jsonl", "audit.md")


def is_demo_folder(folder: Path) -> bool:
    """Whether ``folder`` holds only what an earlier demo wrote there."""
    for p in folder.iterdir():
        if p.name == "raw_hub" and p.is_dir() and not p.is_symlink() and is_sample_folder(p):
            continue
        if p.name not in DEMO_FILES or not p.is_file():
            return False
    return True


def step(title: str, argv: list[str]) -> int:
    print(f"\n== {title}: spa-vl {' '.join(argv)}", flush=True)
    rc = cli(argv)
    if rc:
        print(f"   (exit code {rc})")
    return rc


def print_counts(release: Path) -> None:
    """Rows per config and split, and train rows without labels."""
    import pyarrow.parquet as pq

    from spa_vl.release.metadata import data_files

    print(f"\n{'config':<26}{'train':>8}{'validation':>12}{'test':>7}{'unlabeled train':>18}")
    for config, splits in sorted(data_files(release).items(), key=lambda kv: kv[0] != "default"):
        rows = {s: sum(pq.ParquetFile(p).metadata.num_rows for p in paths) for s, paths in splits.items()}
        unlabeled = sum(
            pq.read_table(p, columns=["domain"]).column("domain").to_pylist().count(-1)
            for p in splits.get("train", [])
        )
        counts = f"{rows.get('train', 0):>8}{rows.get('validation', 0):>12}{rows.get('test', 0):>7}"
        print(f"{config:<26}{counts}{unlabeled:>18}")


def _check_outputs(out: Path, release: Path) -> None:
    """The same output rules as every command: the working folder is new, empty or an earlier
    demo's (only then is it cleared); the release folder is checked by ``build``, which replaces
    an earlier release whole and refuses anything else. UsageError otherwise."""
    check_output_dir(out, option="--out", accept=is_demo_folder, what="spa-vl demo folder")
    if resolved(out) in resolved(release).parents:
        raise UsageError(f"--release {release}: is inside --out {out}, which the demo clears first")
    check_build_paths(out / "raw_hub", release, out / "build.quarantine.jsonl")


def _audit_command(release: Path, out: Path, evals: Path) -> list[str]:
    """``spa-vl audit`` of the release against the eval sets found under ``evals``."""
    (release / "audit").mkdir(exist_ok=True)
    audit = ["audit", str(release), "--out", str(release / "audit" / "report.json")]
    audit += ["--markdown", str(out / "audit.md")]
    for name, rel in (
        ("advbench", "advbench/harmful_behaviors.csv"),
        ("figstep", "figstep_safebench/safebench.csv"),
    ):
        if (evals / rel).exists():
            audit += ["--eval", f"{name}={evals / rel}"]
    return audit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="demo_out", help="working folder (recreated)")
    parser.add_argument("--release", default="spa_vl", help="release folder (default ./spa_vl)")
    parser.add_argument(
        "--evalsets", default=str(EVALSETS), help="folder with advbench/ and figstep_safebench/"
    )
    args = parser.parse_args(argv)
    out, release = Path(args.out), Path(args.release)
    try:
        _check_outputs(out, release)
    except UsageError as exc:
        print(f"spa-vl demo: error: {exc}", file=sys.stderr)
        return 2
    shutil.rmtree(out, ignore_errors=True)
    raw = out / "raw_hub"
    if step("sample", ["sample", str(raw), "--layout", "hub", "--quiet"]):
        return 2
    validate = ["validate", str(raw), "--report", str(out / "validation.json")]
    rc = step("validate", [*validate, "--quarantine", str(out / "quarantine.jsonl"), "--quiet"])
    report = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    print(f"   read {report['read']} = accepted {report['accepted']} + quarantined {report['quarantined']}")
    build = ["build", str(raw), "--out", str(release), "--version", "1.0.0"]
    if rc or step("build", [*build, "--quarantine", str(out / "build.quarantine.jsonl"), "--quiet"]):
        return 1
    print_counts(release)
    if (
        step("audit", _audit_command(release, out, Path(args.evalsets)))
        or step("card", ["card", str(release), "--quiet"])
        or step("card check", ["card", str(release), "--check"])
        or step("verify", ["verify", str(release)])
    ):
        return 1
    print(f"\nrelease ready in ./{release} — try: datasets.load_dataset({str(release)!r}, 'malicious_use')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
