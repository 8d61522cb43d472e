"""Write a release's data in one pass over the source: each row once, as the Hub stores parquet.

Each accepted row goes to the folder of its harm domain (``spa_vl.release.layout``); every
(folder, split) has its own stream of parquet shards, cut at ``max_shard_size`` bytes. The
parquet is written as ``datasets`` 5 writes it for the Hub (``ParquetSettings``): content-defined
chunking and a page index, so that a new version shares most of its bytes with the last one in
the Hub's Xet storage. While the rows pass, the writer also records what later steps would
otherwise read the files again for: each file's sha256 and size (hashed as it is written), rows
and Arrow bytes per file, and the label counts the card shows (``ReleaseStats``).

Shards are written under hidden temporary names and renamed once their count is known. ``out``
is a new folder (the build's staging folder): nothing in it is ever deleted. Nothing
time-dependent is written, so the same input gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spa_vl.features import COLUMNS, EVAL_SETS, arrow_schema, to_example, to_table
from spa_vl.release import layout
from spa_vl.release.parquet_settings import ParquetSettings
from spa_vl.release.shards import ShardStream, WriteLanes, WrittenFile
from spa_vl.release.stats import ReleaseStats, stats_from_counts
from spa_vl.taxonomy import LEVELS, load_taxonomy
from spa_vl.validate import AcceptedBatch, ValidRecord

_Streams = dict[tuple[str, str], ShardStream]  # (folder, split) -> its stream

__all__ = ["WrittenData", "WrittenFile", "write_data"]


class _LabelCounts:
    """Rows per split and ClassLabel id, counted as the rows pass (for the card)."""

    def __init__(self) -> None:
        tax = load_taxonomy()
        self.sizes = {**{level: len(tax.names(level)) for level in LEVELS}, "eval_set": len(EVAL_SETS)}
        # id + 1, so that -1 (unknown) is bin 0
        self.bins = {
            (level, s): np.zeros(n + 1, np.int64) for level, n in self.sizes.items() for s in layout.SPLITS
        }

    def add_row(self, split: str, example: dict) -> None:
        for level in self.sizes:
            i = example[level]
            self.bins[(level, split)][i + 1 if 0 <= i < self.sizes[level] else 0] += 1

    def add_table(self, split: str, table: pa.Table) -> None:
        for level, n in self.sizes.items():
            ids = np.asarray(table.column(level).to_numpy(), np.int64)
            ids = np.where((ids >= 0) & (ids < n), ids + 1, 0)
            self.bins[(level, split)] += np.bincount(ids, minlength=n + 1)

    def as_lists(self) -> dict[str, dict[str, list[int]]]:
        return {level: {s: self.bins[(level, s)].tolist() for s in layout.SPLITS} for level in self.sizes}


@dataclass
class WrittenData:
    files: list[WrittenFile]
    stats: ReleaseStats
    settings: ParquetSettings


def write_data(
    records: Iterable[ValidRecord | AcceptedBatch],
    out: Path,
    settings: ParquetSettings | None = None,
    *,
    is_sample_answer: Callable[[pa.Array], bool] | None = None,
) -> WrittenData:
    """Write ``data/<folder>/<split>-NNNNN-of-MMMMM.parquet``, each row once under its domain's
    folder. ``records`` may mix accepted rows and accepted column batches (``spa_vl.validate.batches``);
    the files are the same whichever way a row comes. ``is_sample_answer`` tells, from the first
    row group's ``rejected`` answers, whether the data is the synthetic sample (the card says so)."""
    settings = settings or ParquetSettings()
    data_dir = out / layout.DATA
    # Never empty a folder here: the build writes into a new staging folder, and whatever is
    # already under data/ was not written by this call (it could be the user's, or the source).
    if data_dir.exists() and any(data_dir.iterdir()):
        raise FileExistsError(f"{data_dir}: already holds files; the release is written into a new folder")
    schema = arrow_schema()
    folders = layout.data_folders()
    lanes = WriteLanes()
    keys = [(folder, split) for folder in folders for split in layout.SPLITS]
    streams = {key: ShardStream(data_dir / key[0], key[1], schema, settings, lanes) for key in keys}
    labels = _LabelCounts()
    files: list[WrittenFile] = []
    try:
        for valid in records:
            if isinstance(valid, AcceptedBatch):
                _add_batch(streams, valid, labels)
                continue
            example = to_example(valid.record, valid.image)
            split = valid.record["split"]
            size = len(valid.image) + sum(len(example[k] or "") for k in ("question", "chosen", "rejected"))
            row = {c: example[c] for c in COLUMNS}
            streams[(layout.folder_of_domain(example["domain"]), split)].add(row, size)
            labels.add_row(split, example)
        # the largest rows first, each to the lane with less to write, all handed over at once:
        # the lanes end together
        lanes.bounded = False
        for stream in sorted(streams.values(), key=ShardStream.buffered_bytes, reverse=True):
            stream.end()
        lanes.wait()
        for stream in streams.values():
            files += stream.finish()
    except BaseException:
        lanes.close(cancel=True)  # no write runs while the files are closed
        for stream in streams.values():
            stream.abort()
        raise
    finally:
        lanes.close()
    synthetic = False
    first = next((streams[(f, "train")] for f in folders if streams[(f, "train")].shards), None)
    if first is not None and first.first_group is not None and is_sample_answer is not None:
        synthetic = is_sample_answer(first.first_group.column("rejected").combine_chunks())
    stats = stats_from_counts(
        [(f.path.relative_to(out).as_posix(), f.folder, f.split, f.rows, f.size, f.nbytes) for f in files],
        labels.as_lists(),
        synthetic=synthetic,
    )
    return WrittenData(files, stats, settings)


def _add_batch(
    streams: dict[tuple[str, str], ShardStream], batch: AcceptedBatch, labels: _LabelCounts
) -> None:
    """An accepted column batch, row by domain, to the folders' streams."""
    table = to_table(batch.table)
    labels.add_table(batch.split, table)
    # The size add() is given: image bytes plus the characters of the three texts.
    size = pc.binary_length(pc.struct_field(table.column("image"), "bytes"))
    for c in ("question", "chosen", "rejected"):
        size = pc.add(size, pc.fill_null(pc.utf8_length(table.column(c)), 0))
    sizes = np.asarray(size.to_numpy(zero_copy_only=False), dtype=np.int64)
    domain = np.asarray(table.column("domain").to_numpy(), np.int64)
    if (domain == domain[0]).all():
        streams[(layout.folder_of_domain(int(domain[0])), batch.split)].add_rows(table, None, sizes)
        return
    # Each folder's rows, in reading order: a stable sort by domain, cut where it changes.
    order = np.argsort(domain, kind="stable")
    ordered = domain[order]
    starts = np.flatnonzero(np.diff(ordered)) + 1
    for rows in np.split(order, starts):
        d = int(domain[rows[0]])
        streams[(layout.folder_of_domain(d), batch.split)].add_rows(table, rows, sizes[rows])
