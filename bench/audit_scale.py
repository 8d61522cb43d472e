"""The audit at scale: a synthetic corpus of short texts scanned for SPA-VL's test + validation
questions (the reverse scan, ``spa_vl.audit.scan``), with the local engine (1 and 2 processes)
and Ray Data (2 CPUs). Reports rows/s, the 1 -> 2 worker scaling, peak memory (RSS of the whole
process tree, Ray's workers included) and the eval index's bytes per eval item; checks that the
planted questions are all found and nothing else.

The corpus is generated into bench/_data/ (git-ignored) at run time: parquet shards of
``--shard-rows`` rows of 6-14 word sentences drawn from a 5,000-word vocabulary, with
``--plant`` eval questions written in (half verbatim, half with one word changed).

    python bench/audit_scale.py [--rows 2000000] [--shard-rows 100000] [--engines local1,local2,ray2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, machine

ROOT = DATA / "audit_scale"


def release() -> Path:
    """A sample release (212 test + validation questions), built once."""
    out = ROOT / "release"
    if not (out / "MANIFEST.json").exists():
        from spa_vl.release.build import build_release
        from spa_vl.sample import write_sample

        raw = write_sample(ROOT / "raw", "hub")
        build_release(raw, out)
    return out


def corpus(rows: int, shard_rows: int, plant: int) -> tuple[Path, set[tuple[str, str]]]:
    """The corpus folder and the planted (row id, eval id) pairs; reused when it exists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = ROOT / f"corpus_{rows}_{shard_rows}_{plant}"
    truth = out / "planted.json"
    if truth.exists():
        return out, {tuple(x) for x in json.loads(truth.read_text())}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rng = np.random.default_rng(7)
    # a vocabulary of pronounceable non-words: corpus n-grams collide with eval n-grams only
    # by the few common English words mixed in, as in real web text
    syll = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "ga", "vu", "zo"]
    vocab = np.array(
        ["".join(rng.choice(syll, rng.integers(2, 4))) for _ in range(4900)]
        + "the a of to and in is how what can you for with on this that".split() * 7
    )
    tests = []
    for split in ("test", "validation"):
        from spa_vl.release.layout import ReleaseLayout

        for batch in ReleaseLayout.of(release()).read_split(split, ["id", "question"]):
            tests += batch.to_pylist()
    n_shards = -(-rows // shard_rows)
    where = rng.choice(rows, plant, replace=False)
    picks = rng.choice(len(tests), plant, replace=False)
    planted: dict[int, tuple[str, str]] = {}
    for k, (row, pick) in enumerate(zip(where.tolist(), picks.tolist(), strict=True)):
        q = tests[pick]["question"]
        words = q.split()
        if k % 2 and len(words) >= 8:  # one word changed: found by the near tier
            words[len(words) // 2] = "zebra"
            q = " ".join(words)
        planted[row] = (q, tests[pick]["id"])
    expected = set()
    for s in range(n_shards):
        lo, hi = s * shard_rows, min(rows, (s + 1) * shard_rows)
        lengths = rng.integers(6, 15, hi - lo)
        flat = vocab[rng.integers(0, len(vocab), int(lengths.sum()))]
        ends = np.cumsum(lengths)
        texts = [" ".join(flat[e - n : e]) for e, n in zip(ends.tolist(), lengths.tolist(), strict=True)]
        ids = [f"r{i}" for i in range(lo, hi)]
        for row in range(lo, hi):
            if row in planted:
                texts[row - lo] = planted[row][0]
                expected.add((f"r{row}", planted[row][1]))
        pq.write_table(pa.table({"text": texts, "id": ids}), out / f"shard-{s:05d}.parquet")
    truth.write_text(json.dumps(sorted(expected)))
    return out, expected


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += q.memory_info().rss
    return total


def run_one(engine: str, corpus_dir: Path, rel: Path, out: Path) -> dict:
    """One CLI run in a fresh process; peak RSS of its process tree sampled every 0.2 s."""
    shutil.rmtree(out.with_name(out.name + ".parts"), ignore_errors=True)
    kind, n = engine.rstrip("0123456789"), int(engine[-1])
    cli = "import sys; from spa_vl.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", cli, "audit", str(corpus_dir), "--against", f"spa_vl={rel}"]
    cmd += ["--id-column", "id", "--out", str(out), "--quiet", "--batch-size", "8192"]
    cmd += ["--workers", str(n)] if kind == "local" else ["--engine", "ray", "--num-cpus", str(n)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(err[-3000:])
    rep = json.loads(out.read_text())
    scan_s = rep["summary"]["seconds"]["scan"]
    return {
        "engine": engine,
        "rows": rep["source"]["rows"],
        "wall_s": round(wall, 1),
        "scan_s": scan_s,
        "rows_per_s": round(rep["source"]["rows"] / scan_s),
        "peak_rss_mb": round(peak[0] / 2**20),
        "found": {(m["source_id"], m["eval_id"]) for m in rep["matches"]},
        "index": rep["summary"]["index"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--shard-rows", type=int, default=100_000)
    ap.add_argument("--plant", type=int, default=40)
    ap.add_argument("--engines", default="local1,local2,ray2")
    args = ap.parse_args()
    t = time.perf_counter()
    rel = release()
    corpus_dir, expected = corpus(args.rows, args.shard_rows, args.plant)
    print(f"corpus: {args.rows:,} rows in {corpus_dir} ({time.perf_counter() - t:.0f} s to prepare)")
    print(f"machine: {machine()}")
    results = []
    for engine in args.engines.split(","):
        r = run_one(engine, corpus_dir, rel, ROOT / f"report_{engine}.json")
        missed = expected - r["found"]
        planted_rows = {row for row, _ in expected}
        r["recall"] = f"{len(expected) - len(missed)}/{len(expected)}"
        # a match on a background row is a false positive; a planted question that also
        # matches a near twin inside SPA-VL (the sample's questions are templated) is not
        r["unexpected"] = sum(1 for row, _ in r["found"] if row not in planted_rows)
        r["twins"] = len(r["found"] - expected) - r["unexpected"]
        results.append(r)
        print(
            f"  {engine:<7} {r['rows_per_s']:>9,} rows/s  scan {r['scan_s']:>7.1f} s  wall "
            f"{r['wall_s']:>7.1f} s  peak {r['peak_rss_mb']:>5} MB  found {r['recall']}, "
            f"{r['unexpected']} on background rows, {r['twins']} eval twins",
            flush=True,
        )
    idx = results[0]["index"]
    print(
        f"eval index: {idx['eval_items_total']} eval items, {idx['index_bytes']:,} bytes, "
        f"{idx['index_bytes_per_reference_item']} bytes per eval item"
    )
    by = {r["engine"]: r["rows_per_s"] for r in results}
    if "local1" in by and "local2" in by:
        print(f"scaling local 1 -> 2 processes: {by['local2'] / by['local1']:.2f}x")
    if "local1" in by and "ray2" in by:
        print(f"Ray (2 CPUs) / local (1 process): {by['ray2'] / by['local1']:.2f}x")


if __name__ == "__main__":
    main()
