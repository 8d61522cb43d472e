"""Validation benchmark: ``validate_source`` (default checks) on the Hub-layout sample with 256-px
JPEGs, against the floor, a plain ``pyarrow.parquet`` read of the same files (all columns,
iterating the record batches). ``rows`` is the row path (``fast=False``), for comparison.

    python bench/validate.py [--rows 100000] [--memory-rows 10000] [--repeat 3]

Each measurement runs in a fresh process, so each has its own peak RSS (``ru_maxrss``); the
``--repeat`` runs are interleaved and the best of them is kept (the machine is shared). The
sample is written once under bench/_data/ (git-ignored) and reused. Aim (issue 2): validation
at >= 0.5 of the floor's rows/s, peak memory < 1 GB and flat from 10k to 100k rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hub_sample, machine, measure, report_peak


def parquet_files(src: Path) -> list[Path]:
    patterns = ("data/train-*.parquet", "validation/*.parquet", "test/*.parquet")
    return [f for pattern in patterns for f in sorted(src.glob(pattern))]


def run_floor(src: Path) -> dict:
    import pyarrow.parquet as pq

    t = time.perf_counter()
    rows = 0
    for f in parquet_files(src):
        for batch in pq.ParquetFile(f).iter_batches():  # all columns
            rows += batch.num_rows
    return {"seconds": time.perf_counter() - t, "rows": rows}


def run_ours(src: Path, workers: int = 1, fast: bool = True) -> dict:
    """``validate_source(src)`` with its defaults: default checks, one process, the Arrow
    fast path (column batches)."""
    from spa_vl.validate import validate_source

    t = time.perf_counter()
    report = validate_source(src, workers=workers, fast=fast)
    assert report.reconciles and report.ok, report.summary()
    return {"seconds": time.perf_counter() - t, "rows": report.read, **_cpu_seconds()}


def run_rows(src: Path) -> dict:
    """The row path (``fast=False``): one Python record per row, the reference."""
    return run_ours(src, fast=False)


def run_workers(src: Path) -> dict:
    """``workers`` = one process per core (at most 4; ``spa-vl validate --workers 0``), one
    parquet file each at a time."""
    return run_ours(src, workers=min(os.cpu_count() or 1, 4))


def _cpu_seconds() -> dict:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return {"cpu_seconds": cpu, "children_peak_rss_mb": children.ru_maxrss / 1024}


WHICH = ("floor", "ours", "rows", "pool")


def best_of(src: Path, repeat: int) -> dict[str, dict]:
    """Each measurement ``repeat`` times, interleaved (floor, ours, rows, pool, floor, ...) so
    that the load of the shared machine falls alike on all; per measurement the fastest run,
    with the slowest time (the spread) and the highest peak RSS."""
    runs: dict[str, list[dict]] = {which: [] for which in WHICH}
    for _ in range(repeat):
        for which in WHICH:
            runs[which].append(measure(__file__, which, str(src)))
    return {which: best(r) for which, r in runs.items()}


def best(runs: list[dict]) -> dict:
    fastest = min(runs, key=lambda r: r["seconds"])
    slowest = max(r["seconds"] for r in runs)
    return {**fastest, "slowest": slowest, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="train rows of the big sample")
    p.add_argument("--memory-rows", type=int, default=10_000, help="train rows of the small one")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    p.add_argument("--_measure", nargs=2, metavar=("WHICH", "SRC"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._measure:
        which, src = args._measure
        runs = {"floor": run_floor, "ours": run_ours, "rows": run_rows, "pool": run_workers}
        report_peak(runs[which](Path(src)))
        return

    print(f"machine: {machine()}")
    print(f"command: python bench/validate.py --rows {args.rows} --memory-rows {args.memory_rows}")
    results = {}
    for n in (args.memory_rows, args.rows):
        measured = best_of(hub_sample(n), args.repeat)
        for which in WHICH:
            results[(which, n)] = r = measured[which]
            print(
                f"  {which:<5} {n:>7,} train rows: {r['rows']:>7,} rows in {r['seconds']:6.2f} s"
                f" (slowest {r['slowest']:.2f} s)"
                f" = {r['rows'] / r['seconds']:>9,.0f} rows/s, peak RSS {r['peak_rss_mb']:5.0f} MB"
                + (
                    f", CPU {r['cpu_seconds']:.1f} s"
                    + (
                        f", workers' peak {r['children_peak_rss_mb']:.0f} MB"
                        if r["children_peak_rss_mb"]
                        else ""
                    )
                    if "cpu_seconds" in r
                    else ""
                )
            )
    floor, ours = results[("floor", args.rows)], results[("ours", args.rows)]
    ratio = (ours["rows"] / ours["seconds"]) / (floor["rows"] / floor["seconds"])
    pool = results[("pool", args.rows)]
    ratio_pool = (pool["rows"] / pool["seconds"]) / (floor["rows"] / floor["seconds"])
    print(f"ratio pool/floor at {args.rows:,} rows: {ratio_pool:.2f}")
    growth = results[("ours", args.rows)]["peak_rss_mb"] / results[("ours", args.memory_rows)]["peak_rss_mb"]
    print(f"ratio ours/floor at {args.rows:,} rows: {ratio:.2f} (aim >= 0.5)")
    rows = results[("rows", args.rows)]
    ratio_rows = (rows["rows"] / rows["seconds"]) / (floor["rows"] / floor["seconds"])
    print(f"ratio rows/floor at {args.rows:,} rows: {ratio_rows:.2f} (the row path)")
    print(
        f"peak RSS ours: {results[('ours', args.memory_rows)]['peak_rss_mb']:.0f} MB at "
        f"{args.memory_rows:,} -> {ours['peak_rss_mb']:.0f} MB at {args.rows:,} "
        f"(x{growth:.2f}; aim < 1024 MB, flat)"
    )
    workers = min(os.cpu_count() or 1, 4)
    for n in (args.memory_rows, args.rows):
        r = results[("pool", n)]
        bound = r["peak_rss_mb"] + workers * r["children_peak_rss_mb"]
        print(f"peak RSS pool at {n:,}: at most {bound:.0f} MB (parent + {workers} workers)")


if __name__ == "__main__":
    main()
