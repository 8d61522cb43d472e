"""How much of a new release version Xet stores again: the new-bytes fraction of v1.1's parquet
against v1.0's under Xet-style content-defined chunking of the file bytes.

    python bench/release_dedup.py [--rows 3000] [--cases a,b,c]

v1.0 is ``build_release`` of the Hub-layout sample with photo-like images (``--texture photo``:
incompressible JPEGs, ~38 KB per row as the real train split). Each v1.1 is the build (with
``previous=v1.0``, as ``spa-vl build --previous``) of that source changed as the issue's cases:
(a) 1% of the train rows edited (a word added to the question), (b) 0.5% of the train rows
removed and 0.5% of the questions edited, (c) 5% more train rows appended (new photo-like rows at
the end of the last shard). Every parquet file of each release is cut with FastCDC (gear hash,
8 / 64 / 128 KiB, Xet's sizes); "new" is the bytes of v1.1's distinct chunks that no v1.0 file
holds, over the bytes of all of v1.1's distinct chunks: what an upload to a Xet store holding
v1.0 sends. The release code is whichever ``spa_vl`` is imported (its path is printed): run with
``PYTHONPATH=<an older checkout>/src`` to measure an older writer.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, hub_sample, load, machine, new_bytes

CASES = {
    "a": "1% of rows edited",
    "b": "0.5% of train rows removed, 0.5% of questions edited",
    "c": "5% rows appended",
}


def _edit(question: str) -> str:
    return question.replace(" ", " really ", 1)  # a small edit inside the text


def _rewrite(path: Path, table: pa.Table) -> None:
    # As the sample writes its shards (spa_vl.sample._write_parquet).
    pq.write_table(table, path, row_group_size=100, compression="snappy")


def derive(src: Path, out: Path, case: str, seed: int = 13) -> None:
    """Copy the Hub-layout sample ``src`` to ``out`` changed as ``case``."""
    shutil.copytree(src, out)
    shards = sorted(out.glob("data/train-*.parquet"))
    tables = [pq.read_table(p) for p in shards]
    n = sum(t.num_rows for t in tables)
    rng = random.Random(f"{seed}/{case}")
    if case == "c":
        from spa_vl.sample import _HUB_COLUMNS, SampleSpec, _hub_table, generate

        spec = SampleSpec(train=n // 20, seed=1, validation_per_sub=0, test_per_sub=0, texture="photo")
        extra = list(generate(spec))
        for r in extra:  # new file names (the folders carry the labels), as new images would have
            folder, name = r.image_name.rsplit("/", 1)
            r.image_name = f"{folder}/new-{name}"
        new = _hub_table(extra, _HUB_COLUMNS["train"]).cast(tables[-1].schema)
        _rewrite(shards[-1], pa.concat_tables([tables[-1], new]))
        return
    k = n // 100 if case == "a" else n // 200
    dropped = set(rng.sample(range(n), k)) if case == "b" else set()
    edited = set(rng.sample(sorted(set(range(n)) - dropped), k))
    start = 0
    for path, table in zip(shards, tables, strict=True):
        rows = range(start, start + table.num_rows)
        start += table.num_rows
        if not (dropped | edited) & set(rows):
            continue  # an untouched shard stays byte-identical, as in a real edit
        q = table.column("question").to_pylist()
        q = [_edit(x) if i in edited else x for i, x in zip(rows, q, strict=True)]
        table = table.set_column(
            table.schema.get_field_index("question"), "question", pa.array(q, pa.string())
        )
        keep = [j for j, i in enumerate(rows) if i not in dropped]
        _rewrite(path, table.take(pa.array(keep, pa.int64())))


def parquet_files(release: Path) -> list[Path]:
    return sorted(release.rglob("*.parquet"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=3000, help="train rows of v1.0")
    p.add_argument("--cases", default="a,b,c")
    p.add_argument("--keep", action="store_true", help="keep the releases under bench/_data/release_dedup")
    args = p.parse_args()
    import datasets

    import spa_vl
    from spa_vl.release.build import build_release

    datasets.disable_progress_bars()
    print(f"machine: {machine()}; {load()}")
    print(f"spa_vl from {Path(spa_vl.__file__).parent}")
    src = hub_sample(args.rows, image_size=None, texture="photo")
    work = DATA / "release_dedup"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        t = time.perf_counter()
        v10 = work / "v1.0"
        build_release(src, v10)
        old = parquet_files(v10)
        old_bytes = sum(f.stat().st_size for f in old)
        print(
            f"v1.0: {args.rows} train rows, {len(old)} parquet files, {old_bytes / 1e6:.1f} MB "
            f"(built in {time.perf_counter() - t:.0f} s)"
        )
        print(f"{'case':<58} {'v1.1 MB':>8} {'new MB':>8} {'new':>7}")
        for case in args.cases.split(","):
            changed = work / f"src_{case}"
            derive(src, changed, case)
            v11 = work / f"v1.1{case}"
            build_release(changed, v11, previous=v10)
            fresh, total = new_bytes(old, parquet_files(v11))
            label = f"({case}) {CASES[case]}"
            print(f"{label:<58} {total / 1e6:8.1f} {fresh / 1e6:8.1f} {fresh / total:7.1%}", flush=True)
            if not args.keep:
                shutil.rmtree(changed)
                shutil.rmtree(v11)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"({load()})")


if __name__ == "__main__":
    main()
