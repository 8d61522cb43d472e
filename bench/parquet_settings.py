"""Which parquet settings for release files: size, write, read and streaming speed, and how
much of a new version Xet stores again, for photo-like rows.

    python bench/parquet_settings.py [--rows 3000] [--repeat 2] [--grid]

One table of photo-like train rows (the Hub-layout ``spa-vl sample --texture photo``:
incompressible JPEGs, ~38 KB per row as the real train split) is written with
``pyarrow.parquet.ParquetWriter`` under each candidate setting, and so is its v1.1 for the
issue's case (b): 0.5% of the rows removed and 0.5% of the questions edited. For each setting:
file size, write time, full read time (``pq.read_table``), streaming time (``iter_batches`` of
100 rows, each batch's image bytes touched) and the new-bytes fraction of v1.1 against v1.0
under Xet-style content-defined chunking of the file bytes (FastCDC gear hash, 8 / 64 / 128
KiB). Times are the best of ``--repeat``.

Without ``--grid`` each setting differs from ``datasets`` 5's own (``to_parquet``: image bytes
uncompressed and PLAIN, other columns snappy, row groups of ~100MB of Arrow data, CDC with
``config.DEFAULT_CDC_OPTIONS``, page index) in one thing, plus the v1 release writer's; with
``--grid``, every combination.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, hub_sample, load, machine, new_bytes

WORK = DATA / "parquet_settings"
IMAGE_LEAVES = ("image.bytes", "image.path")  # datasets: an embedded Image's whole struct


@dataclass(frozen=True)
class Setting:
    name: str
    image_compression: str = "none"  # none | snappy | zstd
    row_group: int | str = "100MB"  # rows per group, or datasets' sizing by Arrow bytes
    cdc: bool = True  # use_content_defined_chunking with datasets' DEFAULT_CDC_OPTIONS
    cdc_kib: tuple[int, int] | None = None  # other min / max page sizes for CDC, in KiB
    page_index: bool = True
    v1: bool = False  # the v1 release writer: snappy everywhere, dictionaries on text columns
    # rows: every group but the last holds rows_per_group rows; content: a group ends after a row
    # whose image's hash says so (between 1/4 and 1 of rows_per_group rows, ~2/3 on average), so
    # that removing or adding a row moves no other group's bounds.
    cut: str = "rows"
    page_size: int | None = None  # data_page_size (None: pyarrow's 1 MiB, as datasets leaves it)

    def rows_per_group(self, table: pa.Table) -> int:
        if isinstance(self.row_group, int):
            return self.row_group
        from datasets.arrow_writer import get_writer_batch_size_from_data_size

        # The same arithmetic as Dataset.to_parquet: MAX_ROW_GROUP_SIZE of Arrow bytes.
        return get_writer_batch_size_from_data_size(table.num_rows, table.nbytes)

    def writer_options(self, schema: pa.Schema) -> dict:
        from datasets import config

        leaves = [f"{f.name}.{s.name}" for f in schema if pa.types.is_struct(f.type) for s in f.type]
        leaves += [f.name for f in schema if not pa.types.is_struct(f.type)]
        image = [leaf for leaf in leaves if leaf in IMAGE_LEAVES]
        if self.v1:
            options: dict = {"compression": "snappy", "use_dictionary": ["image.path"]}
        else:
            options = {
                "compression": {
                    leaf: (self.image_compression if leaf in image else "snappy") for leaf in leaves
                },
                "use_dictionary": [leaf for leaf in leaves if leaf not in image],
                "column_encoding": dict.fromkeys(image, "PLAIN"),
            }
        options["write_page_index"] = self.page_index
        if self.page_size is not None:
            options["data_page_size"] = self.page_size
        if self.cdc:
            options["use_content_defined_chunking"] = dict(config.DEFAULT_CDC_OPTIONS)
            if self.cdc_kib:
                lo, hi = self.cdc_kib
                options["use_content_defined_chunking"].update(
                    min_chunk_size=lo * 1024, max_chunk_size=hi * 1024
                )
        return options


DATASETS5 = Setting("datasets 5 (to_parquet)")
ONE_AT_A_TIME = [
    DATASETS5,
    Setting("image snappy", image_compression="snappy"),
    Setting("image zstd", image_compression="zstd"),
    Setting("row groups 100 rows", row_group=100),
    Setting("row groups 1000 rows", row_group=1000),
    Setting("no CDC", cdc=False),
    Setting("no page index", page_index=False),
    Setting("CDC pages 64 to 256 KiB", cdc_kib=(64, 256)),
    Setting("CDC pages 1 to 4 MiB", cdc_kib=(1024, 4096)),
    Setting("pages end only where CDC chunks end (data_page_size 1 GiB)", page_size=2**30),
    Setting("row groups cut by content", cut="content"),
    Setting("no CDC, row groups cut by content", cdc=False, cut="content"),
    Setting("no CDC, image snappy", image_compression="snappy", cdc=False),
    Setting("no CDC, row groups 100 rows", row_group=100, cdc=False),
    Setting("v1 writer (snappy, 100 rows, no CDC/index)", "snappy", 100, False, False, v1=True),
]


def grid() -> list[Setting]:
    out = []
    for comp, rg, cdc, idx in itertools.product(
        ("none", "snappy", "zstd"), (100, 1000, "100MB"), (1, 0), (1, 0)
    ):
        name = f"{comp}/{rg}/{'cdc' if cdc else 'no-cdc'}/{'index' if idx else 'no-index'}"
        out.append(Setting(name, comp, rg, bool(cdc), bool(idx)))
    return out


def tables(n: int) -> tuple[pa.Table, pa.Table]:
    """v1.0: the ``n`` photo-like train rows of the Hub-layout sample (shared with the other
    benchmarks); v1.1: case (b), 0.5% removed, 0.5% questions edited."""
    src = hub_sample(n, None, "photo")
    v10 = pa.concat_tables(pq.read_table(p) for p in sorted(src.glob("data/train-*.parquet")))
    return v10.combine_chunks(), derive_b(v10)


def derive_b(table: pa.Table, seed: int = 13) -> pa.Table:
    rng = random.Random(seed)
    n = table.num_rows
    k = max(1, n // 200)  # 0.5%
    dropped = set(rng.sample(range(n), k))
    edited = set(rng.sample(sorted(set(range(n)) - dropped), k))
    questions = table.column("question").to_pylist()
    for i in edited:
        questions[i] = questions[i].replace(" ", " really ", 1)  # a small edit inside the text
    table = table.set_column(table.schema.get_field_index("question"), "question", pa.array(questions))
    keep = [i for i in range(n) if i not in dropped]
    return table.take(pa.array(keep))


def group_bounds(table: pa.Table, s: Setting) -> list[int]:
    """The first row of each row group, and the row count at the end."""
    step = s.rows_per_group(table)
    if s.cut == "rows":
        return [*range(0, table.num_rows, step), table.num_rows]
    import hashlib

    lo, mask = max(1, step // 4), max(1, step // 2)
    bounds, start = [0], 0
    for i, b in enumerate(table.column("image").combine_chunks().field("bytes").to_pylist()):
        n = i + 1 - start
        h = int.from_bytes(hashlib.blake2b(b[-64:], digest_size=8).digest(), "little")
        if n >= step or (n >= lo and h % mask == 0):
            bounds.append(start := i + 1)
    return bounds if bounds[-1] == table.num_rows else [*bounds, table.num_rows]


def write(table: pa.Table, path: Path, s: Setting) -> float:
    t = time.perf_counter()
    bounds = group_bounds(table, s)
    with pq.ParquetWriter(path, table.schema, **s.writer_options(table.schema)) as w:
        for a, b in itertools.pairwise(bounds):  # as to_parquet: one write per group
            w.write_table(table.slice(a, b - a), row_group_size=b - a)
    return time.perf_counter() - t


def read_full(path: Path) -> float:
    t = time.perf_counter()
    pq.read_table(path)
    return time.perf_counter() - t


def stream(path: Path) -> tuple[float, float]:
    """Seconds to stream the whole file in batches of 100 rows, and to its first batch."""
    t = time.perf_counter()
    first = None
    total = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=100):
        total += batch.column("image").field("bytes").nbytes
        first = first or time.perf_counter() - t
    return time.perf_counter() - t, first or 0.0


def measure(s: Setting, v10: pa.Table, v11: pa.Table, repeat: int) -> dict:
    a, b = WORK / "v1.0.parquet", WORK / "v1.1.parquet"
    w = min(write(v10, a, s) for _ in range(repeat))
    write(v11, b, s)
    read_full(a)  # warm: the first read of a new file pays for the page cache and allocator
    full = min(read_full(a) for _ in range(repeat))
    streams = [stream(a) for _ in range(repeat)]
    fresh, total = new_bytes([a], [b])
    md = pq.ParquetFile(a).metadata
    return {
        "setting": s.name,
        "bytes": a.stat().st_size,
        "row_groups": md.num_row_groups,
        "write_s": w,
        "read_s": full,
        "stream_s": min(x[0] for x in streams),
        "first_batch_s": min(x[1] for x in streams),
        "new_fraction": fresh / total,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--grid", action="store_true", help="every combination, not one change at a time")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--only", help="run only the settings whose name contains this")
    args = p.parse_args()
    print(f"machine: {machine()}; {load()}; pyarrow {pa.__version__}")
    v10, v11 = tables(args.rows)
    images = v10.column("image").combine_chunks().field("bytes")
    jpeg = sum(len(b) for b in images.to_pylist())
    snappy = len(pa.compress(b"".join(images.to_pylist()), codec="snappy", asbytes=True))
    print(
        f"{v10.num_rows} rows, {jpeg / v10.num_rows / 1000:.1f} KB of JPEG per row; snappy on the "
        f"image bytes: {jpeg / snappy:.3f}x; v1.1 (case b) {v11.num_rows} rows"
    )
    WORK.mkdir(parents=True, exist_ok=True)
    results = []
    print(
        f"{'setting':<44} {'MB':>7} {'x ds5':>6} {'RGs':>4} {'write s':>8} {'read s':>7} "
        f"{'stream s':>8} {'1st ms':>6} {'new b':>6}"
    )
    try:
        chosen = grid() if args.grid else ONE_AT_A_TIME
        for s in (
            [DATASETS5] + [x for x in chosen if x is not DATASETS5 and args.only in x.name]
            if args.only
            else chosen
        ):
            r = measure(s, v10, v11, args.repeat)
            results.append(r)
            base = results[0]["bytes"]
            print(
                f"{r['setting']:<44} {r['bytes'] / 1e6:7.1f} {r['bytes'] / base:6.3f} {r['row_groups']:>4} "
                f"{r['write_s']:8.2f} {r['read_s']:7.2f} {r['stream_s']:8.2f} "
                f"{r['first_batch_s'] * 1e3:6.0f} {r['new_fraction']:6.1%}",
                flush=True,
            )
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"({load()})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
