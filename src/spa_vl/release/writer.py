"""Write the script-free release folder in one pass over the source.

Each accepted row goes to ``default`` and to its domain's config; every (config, split) has
its own stream of parquet shards, cut at ``max_shard_size`` bytes. Shards are written under
temporary names and renamed once their count is known. ``out`` is a new folder (the
build's staging folder): nothing in it is ever deleted. Nothing time-dependent is written, so
the same input gives byte-identical files.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spa_vl.fastpath import AcceptedBatch
from spa_vl.features import COLUMNS, spa_vl_features, to_example, to_table
from spa_vl.sources import SPLITS
from spa_vl.taxonomy import CONFIGS, load_taxonomy
from spa_vl.validate import ValidRecord

DEFAULT_MAX_SHARD_SIZE = 500 * 1024**2  # what the Hub uses when it converts to parquet
ROW_GROUP_ROWS = 100  # as datasets writes image data: small groups stream well
# Encoded images never repeat: dictionary pages on them cost time for nothing. Snappy stays
# on (the datasets/Hub default): image headers repeat within a page, and users download these.
PARQUET_OPTIONS = {
    "compression": "snappy",
    "use_dictionary": ["domain", "category", "subcategory", "eval_set", "image.path"],
}


def parse_size(text: str | int) -> int:
    """``500MB``, ``1.5GB``, ``800KB`` or a number of bytes."""
    if isinstance(text, int):
        return text
    units = {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "B": 1}
    t = text.strip().upper()
    for unit, factor in units.items():
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * factor)
    return int(t)


class _Background:
    """One thread that runs the parquet writes (encoding, compression, I/O; pyarrow releases
    the GIL) while the caller reads and checks the next rows. One thread and FIFO order: each
    file gets the same calls in the same order as if they ran inline, so the same bytes."""

    MAX_PENDING = 32  # bounds the tables waiting to be written (~0.5 MB each)

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="spa-vl-write")
        self._pending: deque[Future] = deque()

    def run(self, fn: Callable[[], object]) -> None:
        self._pending.append(self._pool.submit(fn))
        while len(self._pending) > self.MAX_PENDING or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()  # re-raises a failed write here

    def wait(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class _ShardStream:
    """The shards of one (config, split)."""

    folder: Path
    split: str
    schema: pa.Schema
    max_bytes: int
    background: _Background
    shards: list[Path] = field(default_factory=list)
    rows_per_shard: list[int] = field(default_factory=list)
    nbytes: int = 0  # Arrow size of all rows, as datasets reports num_bytes
    _writer: pq.ParquetWriter | None = None
    _shard_bytes: int = 0
    _buffer: list[dict | pa.Table] = field(default_factory=list)  # rows, or tables of rows
    _buffered: int = 0  # rows in _buffer

    def add(self, example: dict, size: int) -> None:
        if self._writer is not None and self._shard_bytes + size > self.max_bytes:
            self._flush()
            self._close()
        self._buffer.append(example)
        self._buffered += 1
        self._shard_bytes += size
        if self._buffered >= ROW_GROUP_ROWS:
            self._flush()

    def add_table(self, table: pa.Table, sizes: list[int]) -> None:
        """``add`` for each row of ``table`` (of ``schema``), cutting row groups and shards
        at the same rows; ``sizes`` are the rows' sizes as ``add`` takes them."""
        start = 0
        for i, size in enumerate(sizes):
            if self._writer is not None and self._shard_bytes + size > self.max_bytes:
                self._take(table.slice(start, i - start))
                start = i
                self._flush()
                self._close()
            self._buffered += 1
            self._shard_bytes += size
            if self._buffered >= ROW_GROUP_ROWS:
                self._take(table.slice(start, i + 1 - start))
                start = i + 1
                self._flush()
        self._take(table.slice(start))

    def _take(self, table: pa.Table) -> None:
        """Buffer rows already counted in ``_buffered``."""
        if table.num_rows:
            self._buffer.append(table)

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            path = self.folder / f".{self.split}-{len(self.shards):05d}.parquet.tmp"
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, **PARQUET_OPTIONS)
            self.shards.append(path)
            self.rows_per_shard.append(0)
        table = self._table()
        writer = self._writer
        self.background.run(lambda: writer.write_table(table, row_group_size=ROW_GROUP_ROWS))
        self.rows_per_shard[-1] += table.num_rows
        if all(isinstance(x, dict) for x in self._buffer):
            self.nbytes += table.nbytes
        else:  # the same figure for the same rows, however the table was assembled
            self.nbytes += sum(_arrow_size(c.chunk(0)) for c in table.columns)
        self._buffer.clear()
        self._buffered = 0

    def _table(self) -> pa.Table:
        """The buffered rows as one contiguous table: row dicts through ``from_pylist`` (the
        row path), tables as they are; then one chunk, so that the bytes written do not
        depend on which path the rows took."""
        if all(isinstance(x, dict) for x in self._buffer):
            return pa.Table.from_pylist(self._buffer, schema=self.schema)
        parts: list[pa.Table] = []
        rows: list[dict] = []
        for x in self._buffer:
            if isinstance(x, dict):
                rows.append(x)
                continue
            if rows:
                parts.append(pa.Table.from_pylist(rows, schema=self.schema))
                rows = []
            parts.append(x)
        if rows:
            parts.append(pa.Table.from_pylist(rows, schema=self.schema))
        return pa.concat_tables(parts).combine_chunks()

    def _close(self) -> None:
        if self._writer is not None:
            self.background.run(self._writer.close)
            self._writer = None
            self._shard_bytes = 0

    def finish(self) -> list[tuple[Path, int]]:
        self._flush()
        self._close()
        self.background.wait()
        if not self.shards:  # an empty split gets no file: datasets cannot read an empty one
            return []
        n = len(self.shards)
        final = []
        for k, (tmp, rows) in enumerate(zip(self.shards, self.rows_per_shard, strict=True)):
            dest = self.folder / f"{self.split}-{k:05d}-of-{n:05d}.parquet"
            tmp.replace(dest)
            final.append((dest, rows))
        return final


@dataclass
class WrittenData:
    files: list[tuple[str, str, Path, int]]  # (config, split, path, rows)
    nbytes: dict[tuple[str, str], int]  # (config, split) -> Arrow bytes


def write_data(
    records: Iterable[ValidRecord | AcceptedBatch],
    out: Path,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
) -> WrittenData:
    """Write ``data/<config>/<split>-NNNNN-of-MMMMM.parquet`` for every config and split.
    ``records`` may mix accepted rows and accepted column batches (``spa_vl.fastpath``); the
    files are the same whichever way a row comes."""
    data_dir = out / "data"
    # Never empty a folder here: the build writes into a new staging folder, and whatever is
    # already under data/ was not written by this call (it could be the user's, or the source).
    if data_dir.exists() and any(data_dir.iterdir()):
        raise FileExistsError(f"{data_dir}: already holds files; the release is written into a new folder")
    schema = spa_vl_features().arrow_schema
    tax = load_taxonomy()
    domain_configs = [tax.config_of_domain(d) for d in tax.names("domain")]
    background = _Background()
    streams = {
        (config, split): _ShardStream(data_dir / config, split, schema, max_shard_size, background)
        for config in CONFIGS
        for split in SPLITS
    }
    try:
        for valid in records:
            if isinstance(valid, AcceptedBatch):
                _add_batch(streams, domain_configs, valid)
                continue
            example = to_example(valid.record, valid.image)
            split = valid.record["split"]
            size = len(valid.image) + sum(len(example[k] or "") for k in ("question", "chosen", "rejected"))
            row = {c: example[c] for c in COLUMNS}
            streams[("default", split)].add(row, size)
            if example["domain"] >= 0:
                streams[(domain_configs[example["domain"]], split)].add(row, size)
        files = []
        for (config, split), stream in streams.items():
            files += [(config, split, path, rows) for path, rows in stream.finish()]
    finally:
        background.close()
    return WrittenData(files, {key: s.nbytes for key, s in streams.items()})


def _add_batch(streams: dict, domain_configs: list[str], batch: AcceptedBatch) -> None:
    """An accepted column batch to ``default`` and, row by domain, to the domain configs."""
    table = to_table(batch.table)
    image = table.column("image").combine_chunks()
    # The size add() is given: image bytes plus the characters of the three texts.
    size = pc.binary_length(pc.struct_field(image, "bytes"))
    for c in ("question", "chosen", "rejected"):
        size = pc.add(size, pc.fill_null(pc.utf8_length(table.column(c)), 0))
    sizes = np.asarray(size.to_numpy(zero_copy_only=False), dtype=np.int64)
    streams[("default", batch.split)].add_table(table, sizes.tolist())
    domain = table.column("domain").to_numpy()
    # One take groups the rows by domain, in reading order within each (a stable sort).
    order = np.argsort(domain, kind="stable")
    grouped = table.take(pa.array(order, pa.int64()))
    ordered, sizes = domain[order], sizes[order]
    bounds = np.flatnonzero(np.diff(ordered)) + 1
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(ordered)], strict=True):
        d = int(ordered[lo])
        if d >= 0:
            streams[(domain_configs[d], batch.split)].add_table(
                grouped.slice(lo, hi - lo), sizes[lo:hi].tolist()
            )


def _arrow_size(arr: pa.Array) -> int:
    """The ``nbytes`` of ``arr`` as ``from_pylist`` lays it out (exact buffers, a validity
    bitmap only where there are nulls), whatever its actual layout (slices, spare bitmaps)."""
    n = len(arr)
    size = (n + 7) // 8 if arr.null_count else 0
    t = arr.type
    if pa.types.is_struct(t):
        # StructArray.field applies the parent's offset and length to the child
        return size + sum(_arrow_size(arr.field(i)) for i in range(t.num_fields))
    if pa.types.is_string(t) or pa.types.is_binary(t):
        # pyarrow counts n offsets (not n + 1) in nbytes; the buffer is the whole of a slice's
        offsets = memoryview(arr.buffers()[1]).cast("i")
        return size + 4 * n + offsets[arr.offset + n] - offsets[arr.offset]
    return size + n * t.bit_width // 8
