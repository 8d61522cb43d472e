"""Build benchmark: ``spa-vl build`` of the Hub-layout sample against what a user would run
otherwise, ``datasets.load_dataset("parquet", data_files=...)`` then ``to_parquet``.

    python bench/build.py [--rows 100000] [--memory-rows 10000] [--photo-rows 20000] [--repeat 3]
                          [--rows-path]

``--rows`` and ``--memory-rows``: samples of 256-px gradient JPEGs; ``--photo-rows``: a sample of
photo-like JPEGs (``spa-vl sample --texture photo``, ~38 KB per row as the real train split;
0 skips it). Besides the time and peak RSS, the parquet bytes each side writes: the release's
against one copy of the same rows written by ``Dataset.to_parquet``. Each measurement runs in a
fresh process (cold caches of Python objects, its own peak RSS); with ``--repeat N`` the best of
N is kept and the slowest is shown (the machine is shared; the runs of each side are
interleaved, so that the load falls alike on both).
``data`` is the build without its card step (no README.md, figures, croissant.json).
``--rows-path`` also measures ``build_release(fast=False)``, the row path, for comparison.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hub_sample, load, machine, measure, report_peak


def parquet_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.parquet"))


def run_ours(src: Path, out: Path, fast: bool = True) -> dict:
    from spa_vl.release.build import build_release

    t = time.perf_counter()
    result = build_release(src, out, fast=fast)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "rows": result.report.read, "parquet_bytes": parquet_bytes(out)}


def run_data(src: Path, out: Path) -> dict:
    """The build without its card step (no README.md, figures or croissant.json): what the
    build spends on the data alone, the work the baseline does plus validation and checksums."""
    from spa_vl.release.build import build_release

    t = time.perf_counter()
    result = build_release(src, out, card=lambda folder, stats: [])
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "rows": result.report.read, "parquet_bytes": parquet_bytes(out)}


def run_rows(src: Path, out: Path) -> dict:
    return run_ours(src, out, fast=False)


def run_baseline(src: Path, out: Path) -> dict:
    import datasets

    datasets.disable_progress_bars()
    files = {
        "train": sorted(str(p) for p in src.glob("data/train-*.parquet")),
        "validation": sorted(str(p) for p in src.glob("validation/*.parquet")),
        "harm": sorted(str(p) for p in src.glob("test/harm-*.parquet")),
        "help": sorted(str(p) for p in src.glob("test/help-*.parquet")),
    }
    t = time.perf_counter()
    rows = 0
    with tempfile.TemporaryDirectory() as cache:
        for split, paths in files.items():
            ds = datasets.load_dataset("parquet", data_files={split: paths}, split=split, cache_dir=cache)
            ds.to_parquet(str(out / f"{split}.parquet"))
            rows += ds.num_rows
    return {"seconds": time.perf_counter() - t, "rows": rows, "parquet_bytes": parquet_bytes(out)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--memory-rows", type=int, default=10_000)
    p.add_argument("--photo-rows", type=int, default=20_000, help="photo-like sample (0: none)")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is kept)")
    p.add_argument("--rows-path", action="store_true", help="also measure the row path")
    p.add_argument("--_measure", nargs=3, metavar=("WHICH", "SRC", "OUT"))
    args = p.parse_args()
    if args._measure:
        which, src, out = args._measure
        Path(out).mkdir(parents=True, exist_ok=True)
        fn = {"ours": run_ours, "data": run_data, "rows": run_rows, "baseline": run_baseline}[which]
        report_peak(fn(Path(src), Path(out)))
        return
    print(f"machine: {machine()}; {load()}")
    results = {}
    samples = [(n, "gradient") for n in sorted({args.memory_rows, args.rows}) if n]
    samples += [(args.photo_rows, "photo")] if args.photo_rows else []
    for n, texture in samples:
        src = hub_sample(n) if texture == "gradient" else hub_sample(n, None, "photo")
        label = f"{n:>7} {'photo' if texture == 'photo' else '256px'}"
        kinds = ("baseline", "ours", "data", *(("rows",) if args.rows_path else ()))
        runs: dict[str, list[dict]] = {which: [] for which in kinds}
        for _ in range(args.repeat):  # interleaved, so that the load of a shared machine falls alike
            for which in kinds:
                out = Path(tempfile.mkdtemp(prefix=f"bench_build_{which}_"))
                try:
                    runs[which].append(measure(__file__, which, str(src), str(out)))
                finally:
                    shutil.rmtree(out, ignore_errors=True)
        for which in kinds:
            r = min(runs[which], key=lambda x: x["seconds"])
            r["peak_rss_mb"] = max(x["peak_rss_mb"] for x in runs[which])
            r["rows_per_s"] = r["rows"] / r["seconds"]
            results[(n, texture, which)] = r
            print(
                f"{label}  {which:<8} {r['rows']:>7} rows in {r['seconds']:6.1f} s "
                f"(slowest {max(x['seconds'] for x in runs[which]):.1f} s) = "
                f"{r['rows_per_s']:8.0f} rows/s, peak RSS {r['peak_rss_mb']:6.0f} MB, "
                f"parquet {r['parquet_bytes'] / 1e6:.1f} MB; {load()}",
                flush=True,
            )
        ours, base = results[(n, texture, "ours")], results[(n, texture, "baseline")]
        data = results[(n, texture, "data")]
        print(
            f"{label}  ours/baseline: speed {ours['rows_per_s'] / base['rows_per_s']:.2f} "
            f"(without the card step: {data['rows_per_s'] / base['rows_per_s']:.2f}), "
            f"parquet bytes {ours['parquet_bytes'] / base['parquet_bytes']:.3f}"
        )


if __name__ == "__main__":
    main()
