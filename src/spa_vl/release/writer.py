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

import contextlib
import hashlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spa_vl.features import COLUMNS, EVAL_SETS, spa_vl_features, to_example, to_table
from spa_vl.release import layout
from spa_vl.release.stats import ReleaseStats, stats_from_counts
from spa_vl.taxonomy import LEVELS, load_taxonomy
from spa_vl.validate import AcceptedBatch, ValidRecord

DEFAULT_MAX_SHARD_SIZE = "500MB"  # datasets' MAX_SHARD_SIZE: 500,000,000 bytes
# datasets 5's content-defined chunking (config.DEFAULT_CDC_OPTIONS), fixed here so that the
# bytes written do not depend on the datasets version installed.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
IMAGE_LEAVES = ("image.bytes", "image.path")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")
_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50,
}  # fmt: skip


def parse_size(text: str | int) -> int:
    """A size as ``datasets`` parses one (``convert_file_size_to_int``): ``500MB`` is
    500,000,000 bytes, ``1GiB`` 2**30, a trailing lower-case ``b`` means bits (``8Mb`` is
    1,000,000 bytes); a plain number is bytes. Decimals are accepted (``1.5GB``).
    ValueError names the text when it is none of these."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"size {text}: must be more than 0 bytes")
        return text
    m = _SIZE.match(str(text))
    unit = m[2] if m else ""
    factor = _UNITS.get(unit.upper()) if m else None
    if factor is None:
        raise ValueError(
            f"size {text!r}: not a number of bytes, nor a number with a unit "
            "(KB, MB, GB, TB; KiB, MiB, GiB, TiB)"
        )
    bits = len(unit) == 2 and unit.endswith("b")  # datasets: "Mb" is megabits
    size = int(float(m[1]) * factor) // (8 if bits else 1)
    if size <= 0:
        raise ValueError(f"size {text!r}: must be more than 0 bytes")
    return size


@dataclass(frozen=True)
class ParquetSettings:
    """How release parquet is written, recorded in MANIFEST.json (``parquet``).

    As ``datasets`` 5 writes for the Hub (``ParquetWriter`` / ``Dataset.to_parquet``): the
    embedded image bytes uncompressed and PLAIN-encoded (JPEG and PNG bytes do not compress, and
    left as they are, Xet finds them again whatever moves around them), the other columns snappy
    with dictionaries; content-defined chunking of pages; a page index; row groups of about
    ``row_group_bytes`` of Arrow data (datasets' ``MAX_ROW_GROUP_SIZE``, 100MB, its sizing of
    image data). See bench/README.md for the measurements behind each choice."""

    max_shard_size: int = parse_size(DEFAULT_MAX_SHARD_SIZE)
    row_group_bytes: int = parse_size("100MB")
    compression: str = "snappy"
    image_compression: str = "none"
    content_defined_chunking: dict | None = field(default_factory=lambda: dict(CDC_OPTIONS))
    write_page_index: bool = True

    def writer_options(self, schema: pa.Schema) -> dict:
        """``pq.ParquetWriter`` options; parquet names struct fields' columns ``image.bytes``."""
        leaves = [f"{c.name}.{sub.name}" for c in schema if pa.types.is_struct(c.type) for sub in c.type] + [
            c.name for c in schema if not pa.types.is_struct(c.type)
        ]
        image = [leaf for leaf in leaves if leaf in IMAGE_LEAVES]
        options: dict = {
            "compression": {
                leaf: (self.image_compression if leaf in image else self.compression) for leaf in leaves
            },
            "use_dictionary": [leaf for leaf in leaves if leaf not in image],
            "column_encoding": dict.fromkeys(image, "PLAIN"),
            "write_page_index": self.write_page_index,
        }
        if self.content_defined_chunking is not None:
            options["use_content_defined_chunking"] = dict(self.content_defined_chunking)
        return options

    def to_dict(self) -> dict:
        return {
            "max_shard_size": self.max_shard_size,
            "row_group_bytes": self.row_group_bytes,
            "compression": self.compression,
            "image_compression": self.image_compression,
            "content_defined_chunking": self.content_defined_chunking,
            "write_page_index": self.write_page_index,
            "pyarrow": pa.__version__,
        }


class _Background:
    """Threads that run the parquet writes (encoding, chunking, hashing, I/O; pyarrow and
    hashlib release the GIL) while the caller reads and checks the next rows. Each file keeps to
    one lane, a thread of its own run in FIFO order: the file gets the same calls in the same
    order as if they ran inline, so the same bytes; files of different lanes are written at
    once."""

    LANES = 2
    MAX_PENDING = 16  # bounds the calls waiting to run...
    MAX_PENDING_BYTES = 160 * 10**6  # ...and the Arrow bytes of the row groups waiting to be written

    def __init__(self) -> None:
        self._lanes = [ThreadPoolExecutor(1, thread_name_prefix="spa-vl-write") for _ in range(self.LANES)]
        self._pending: deque[tuple[Future, int]] = deque()
        self._bytes = 0

    def run(self, fn: Callable[[], object], nbytes: int = 0, lane: int = 0) -> None:
        self._pending.append((self._lanes[lane % len(self._lanes)].submit(fn), nbytes))
        self._bytes += nbytes
        while self._pending and (
            len(self._pending) > self.MAX_PENDING
            or (self._bytes > self.MAX_PENDING_BYTES and len(self._pending) > 1)
            or self._pending[0][0].done()
        ):
            self._pop()

    def _pop(self) -> None:
        future, nbytes = self._pending.popleft()
        self._bytes -= nbytes
        future.result()  # re-raises a failed write here

    def wait(self) -> None:
        while self._pending:
            self._pop()

    def close(self, cancel: bool = False) -> None:
        """Wait for the running writes; with ``cancel``, drop those not started (a failed or
        interrupted build, whose staging folder is removed anyway)."""
        for lane in self._lanes:
            lane.shutdown(wait=True, cancel_futures=cancel)


class _HashingFile:
    """The file a shard is written to: its sha256 and size are taken from the bytes as they
    go to disk, so no step reads the file again to hash it."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self._file.write(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()


@dataclass
class WrittenFile:
    """One shard as written: where, what it holds, and its checksum."""

    path: Path
    folder: str
    split: str
    rows: int
    nbytes: int  # Arrow size of its rows, as datasets reports num_bytes
    sha256: str
    size: int


@dataclass
class _Shard:
    tmp: Path
    sink: _HashingFile
    writer: pq.ParquetWriter
    rows: int = 0
    nbytes: int = 0


@dataclass
class _ShardStream:
    """The shards of one (folder, split)."""

    folder: Path
    split: str
    schema: pa.Schema
    settings: ParquetSettings
    background: _Background
    lane: int = 0
    shards: list[_Shard] = field(default_factory=list)
    first_group: pa.Table | None = None  # the first row group's `rejected` (see stats)
    _open: _Shard | None = None
    _shard_bytes: int = 0
    _shard_rows: int = 0  # rows of the current shard, written or buffered
    _group_bytes: int = 0
    _buffer: list[dict | pa.Table] = field(default_factory=list)  # rows, or tables of rows
    _buffered: int = 0  # rows in _buffer

    def add(self, example: dict, size: int) -> None:
        if self._shard_rows and self._shard_bytes + size > self.settings.max_shard_size:
            self._flush()
            self._close()
        self._buffer.append(example)
        self._buffered += 1
        self._count(size)

    def add_table(self, table: pa.Table, sizes: list[int]) -> None:
        """``add`` for each row of ``table`` (of ``schema``), cutting row groups and shards
        at the same rows; ``sizes`` are the rows' sizes as ``add`` takes them."""
        start = 0
        for i, size in enumerate(sizes):
            if self._shard_rows and self._shard_bytes + size > self.settings.max_shard_size:
                self._take(table.slice(start, i - start))
                start = i
                self._flush()
                self._close()
            self._buffered += 1
            if self._count(size, flush=False):
                self._take(table.slice(start, i + 1 - start))
                start = i + 1
                self._flush()
        self._take(table.slice(start))

    def _count(self, size: int, flush: bool = True) -> bool:
        """Count a buffered row; True (and, with ``flush``, the flush) when the row group is full."""
        self._shard_bytes += size
        self._shard_rows += 1
        self._group_bytes += size
        if self._group_bytes < self.settings.row_group_bytes:
            return False
        if flush:
            self._flush()
        return True

    def _take(self, table: pa.Table) -> None:
        """Buffer rows already counted in ``_buffered``."""
        if table.num_rows:
            self._buffer.append(table)

    def _flush(self) -> None:
        self._group_bytes = 0
        if not self._buffer:
            return
        if self._open is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / layout.pending_shard_name(self.split, len(self.shards))
            sink = _HashingFile(tmp)
            writer = pq.ParquetWriter(sink, self.schema, **self.settings.writer_options(self.schema))
            self._open = _Shard(tmp, sink, writer)
            self.shards.append(self._open)
        table = self._table()
        if self.first_group is None and self.split == "train":
            self.first_group = table.select(["rejected"])
        writer = self._open.writer
        self.background.run(
            lambda: writer.write_table(table, row_group_size=table.num_rows), table.nbytes, self.lane
        )
        self._open.rows += table.num_rows
        if all(isinstance(x, dict) for x in self._buffer):
            self._open.nbytes += table.nbytes
        else:  # the same figure for the same rows, however the table was assembled
            self._open.nbytes += sum(_arrow_size(c.chunk(0)) for c in table.columns)
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
        shard = self._open
        if shard is not None:
            cdc = self.settings.content_defined_chunking

            def close() -> None:
                if cdc is not None:  # as datasets marks the files it writes with CDC
                    shard.writer.add_key_value_metadata({"content_defined_chunking": json.dumps(cdc)})
                shard.writer.close()
                shard.sink.close()

            self.background.run(close, 0, self.lane)
            self._open = None
        self._shard_bytes = 0
        self._shard_rows = 0

    def finish(self) -> list[WrittenFile]:
        self._flush()
        self._close()
        self.background.wait()
        if not self.shards:  # an empty split gets no file: datasets cannot read an empty one
            return []
        n = len(self.shards)
        final = []
        for k, shard in enumerate(self.shards):
            dest = self.folder / layout.shard_name(self.split, k, n)
            shard.tmp.replace(dest)
            final.append(
                WrittenFile(
                    dest,
                    self.folder.name,
                    self.split,
                    shard.rows,
                    shard.nbytes,
                    shard.sink.sha256.hexdigest(),
                    shard.sink.size,
                )
            )
        return final

    def abort(self) -> None:
        """Close what is open after a failure (the staging folder goes with the build)."""
        for shard in self.shards:
            if shard.sink.closed:
                continue
            # else its finaliser writes a footer into a closed file; the failure being raised
            # says what went wrong
            with contextlib.suppress(OSError, ValueError, pa.ArrowException):
                shard.writer.close()
            shard.sink.close()


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
    schema = spa_vl_features().arrow_schema
    folders = layout.data_folders()
    background = _Background()
    keys = [(folder, split) for folder in folders for split in layout.SPLITS]
    streams = {
        key: _ShardStream(data_dir / key[0], key[1], schema, settings, background, lane=i)
        for i, key in enumerate(keys)
    }
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
        for stream in streams.values():
            files += stream.finish()
    except BaseException:
        background.close(cancel=True)  # no write runs while the files are closed
        for stream in streams.values():
            stream.abort()
        raise
    finally:
        background.close()
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


def _add_batch(streams: dict, batch: AcceptedBatch, labels: _LabelCounts) -> None:
    """An accepted column batch, row by domain, to the folders' streams."""
    table = to_table(batch.table)
    labels.add_table(batch.split, table)
    image = table.column("image").combine_chunks()
    # The size add() is given: image bytes plus the characters of the three texts.
    size = pc.binary_length(pc.struct_field(image, "bytes"))
    for c in ("question", "chosen", "rejected"):
        size = pc.add(size, pc.fill_null(pc.utf8_length(table.column(c)), 0))
    sizes = np.asarray(size.to_numpy(zero_copy_only=False), dtype=np.int64)
    domain = table.column("domain").to_numpy()
    # One take per domain, in reading order: each folder's rows in buffers of their own, so a
    # folder that fills its row group slowly holds only its rows, not the whole batch.
    for d in np.unique(domain).tolist():
        rows = np.flatnonzero(domain == d)
        part = table if len(rows) == len(domain) else table.take(pa.array(rows, pa.int64()))
        streams[(layout.folder_of_domain(d), batch.split)].add_table(part, sizes[rows].tolist())


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
