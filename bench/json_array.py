"""Reading an RLHF JSON list (``spa_vl.sources.rlhf_json``): one item of 16 MB, and a file of
many ordinary items. Prints seconds (best of ``--repeat``) per file.

    PYTHONPATH=src python bench/json_array.py [--items 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import load, machine
from spa_vl.sources import open_source


def item(i: int, question: str) -> dict:
    return {
        "id": i,
        "image": f"train/{i}.jpg",
        "question": question,
        "chosen": "I can't help with that.\nHere is some safe context. " * 18,
        "rejected": "Sure, here is a detailed answer to your question, café.\n" * 20,
    }


def write(folder: Path, items: int) -> dict[str, Path]:
    big = folder / "big" / "train.json"
    big.parent.mkdir()
    huge = item(1, "q" * (16 * 1024 * 1024))
    big.write_text(json.dumps([item(0, "What is shown?"), huge, item(2, "And here?")]), encoding="utf-8")
    many = folder / "many" / "train.json"
    many.parent.mkdir()
    rows = [item(i, f"What does picture {i} show, and is it safe to describe?") for i in range(items)]
    many.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return {"one 16 MB item": big, f"{items:,} ordinary items": many}


def best(path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        rows = list(open_source(path).rows())
        times.append(time.perf_counter() - t)
        assert rows and not any(r.problems for r in rows)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{machine()}; {load()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in write(Path(tmp), args.items).items():
            size = path.stat().st_size / 1e6
            print(f"{name:<24} {size:6.1f} MB  {best(path, args.repeat):6.2f} s")


if __name__ == "__main__":
    main()
