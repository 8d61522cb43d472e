"""Iteration benchmark: the loaded release with image decoding, against raw pyarrow + PIL
decoding of the same parquet files (the floor).

    python bench/iterate.py [--rows 100000] [--limit 20000]

Both sides decode every image fully (``Image.load()``), so the comparison is of overheads.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, hub_sample, machine, measure, report_peak


def release_for(n: int) -> Path:
    out = DATA / f"release_{n}_256px"
    if not (out / "MANIFEST.json").exists():
        from spa_vl.release.build import build_release

        build_release(hub_sample(n), out)
    return out


def files(release: Path) -> list[str]:
    return sorted(str(p) for p in release.glob("data/default/train-*.parquet"))


def run_ours(release: Path, limit: int) -> dict:
    import datasets

    import spa_vl

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        ds = spa_vl.load("default", "train", source=release, cache_dir=cache)
        ds = ds.select(range(min(limit, ds.num_rows)))
        t = time.perf_counter()
        n = 0
        for row in ds:
            row["image"].load()
            n += 1
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "rows": n}


def run_floor(release: Path, limit: int) -> dict:
    import pyarrow.parquet as pq
    from PIL import Image

    t = time.perf_counter()
    n = 0
    for path in files(release):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=100):
            for row in batch.to_pylist():
                Image.open(io.BytesIO(row["image"]["bytes"])).load()
                n += 1
                if n >= limit:
                    return {"seconds": time.perf_counter() - t, "rows": n}
    return {"seconds": time.perf_counter() - t, "rows": n}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000, help="train rows in the sample")
    p.add_argument("--limit", type=int, default=20_000, help="rows to iterate")
    p.add_argument("--_measure", nargs=3)
    args = p.parse_args()
    if args._measure:
        which, release, limit = args._measure
        fn = run_ours if which == "ours" else run_floor
        report_peak(fn(Path(release), int(limit)))
        return
    print(f"machine: {machine()}")
    release = release_for(args.rows)
    res = {}
    for which in ("floor", "ours"):
        r = measure(__file__, which, str(release), str(args.limit))
        r["rows_per_s"] = r["rows"] / r["seconds"]
        res[which] = r
        print(
            f"{which:<6} {r['rows']:>7} rows in {r['seconds']:6.2f} s = {r['rows_per_s']:8.0f} rows/s, "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB"
        )
    print(f"ratio ours/floor = {res['ours']['rows_per_s'] / res['floor']['rows_per_s']:.2f}")


if __name__ == "__main__":
    main()
