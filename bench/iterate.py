"""Iteration benchmark: the loaded release with image decoding, against raw pyarrow + PIL
decoding of the same parquet files (the floor).

    python bench/iterate.py [--rows 100000] [--limit 20000] [--photo]

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
from _common import DATA, hub_sample, load, machine, measure, report_peak


def _layout_tag() -> str:
    try:
        from spa_vl.release.layout import FORMAT

        return FORMAT.rsplit("/", 1)[-1]
    except ImportError:  # before the layout module: the v1 release (a default copy of every row)
        return "1"


def release_for(n: int, photo: bool = False) -> Path:
    """The release of the sample, built once per layout version and kept."""
    out = DATA / f"release_{n}_{'photo' if photo else '256px'}_v{_layout_tag()}"
    if not (out / "MANIFEST.json").exists():
        from spa_vl.release.build import build_release

        build_release(hub_sample(n, None, "photo") if photo else hub_sample(n), out)
    return out


def files(release: Path) -> list[str]:
    """The train files of ``default`` in reading order, as the release's layout names them."""
    try:
        from spa_vl.release.layout import ReleaseLayout
    except ImportError:
        return sorted(str(p) for p in release.glob("data/default/train-*.parquet"))
    return [str(p) for p in ReleaseLayout.of(release).files("default", "train")]


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
    p.add_argument("--photo", action="store_true", help="photo-like ~38 KB JPEGs, not 256-px gradients")
    p.add_argument("--_measure", nargs=3)
    p.add_argument("--_build", action="store_true")
    args = p.parse_args()
    if args._measure:
        which, release, limit = args._measure
        fn = run_ours if which == "ours" else run_floor
        report_peak(fn(Path(release), int(limit)))
        return
    if args._build:
        release_for(args.rows, args.photo)
        return
    print(f"machine: {machine()}; {load()}")
    # Built in a child: Linux keeps ru_maxrss across fork and exec, so a parent that had built
    # the release would hand its peak to the measured children.
    import subprocess

    photo = ["--photo"] if args.photo else []
    subprocess.run([sys.executable, __file__, "--_build", "--rows", str(args.rows), *photo], check=True)
    release = release_for(args.rows, args.photo)
    res = {}
    for which in ("floor", "ours"):
        r = measure(__file__, which, str(release), str(args.limit))
        r["rows_per_s"] = r["rows"] / r["seconds"]
        res[which] = r
        print(
            f"{which:<6} {r['rows']:>7} rows in {r['seconds']:6.2f} s = {r['rows_per_s']:8.0f} rows/s, "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB; {load()}"
        )
    print(f"ratio ours/floor = {res['ours']['rows_per_s'] / res['floor']['rows_per_s']:.2f}")


if __name__ == "__main__":
    main()
