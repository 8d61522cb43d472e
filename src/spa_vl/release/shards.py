"""The parquet shards of one (folder, split) of a release, written off the caller's thread.

A ``ShardStream`` takes rows (row dicts, or rows of column tables), cuts them into row groups of
about ``row_group_bytes`` and shards of at most ``max_shard_size``, and hands the heavy work to
``WriteLanes``: gathering each folder's rows out of the source batches (``take``), assembling a
row group into one contiguous table, parquet encoding with content-defined chunking, sha256 and
disk I/O. That work is Arrow's and hashlib's, outside the GIL, so it runs on the other core
while the caller reads and checks the next rows.

Where a row group and a shard end depends only on the rows and their sizes, and each file's
calls run in order on one lane, so the same rows give byte-identical files whichever path
(row dicts or column tables) they came by.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spa_vl.release import layout
from spa_vl.release.parquet_settings import ParquetSettings


class WriteLanes:
    """Threads for the writes. Each file keeps to one lane, a thread of its own run in FIFO
    order: the file gets the same calls in the same order as if they ran inline, so the same
    bytes; files of different lanes are written at once. A new file takes the lane with the
    fewest bytes still to write, so the lanes finish together. A separate thread gathers rows
    out of the caller's batches as soon as they are given, so that no batch is held longer than
    that (a folder that fills its row group slowly holds only its own rows)."""

    LANES = 2
    MAX_PENDING = 16  # bounds the calls waiting to run...
    MAX_PENDING_BYTES = 160 * 10**6  # ...and the bytes of the row groups waiting to be written
    MAX_GATHERS = 64  # takes queued on the gathering thread

    def __init__(self) -> None:
        self._lanes = [ThreadPoolExecutor(1, thread_name_prefix="spa-vl-write") for _ in range(self.LANES)]
        self._gatherer = ThreadPoolExecutor(1, thread_name_prefix="spa-vl-gather")
        self._pending: deque[tuple[Future, int]] = deque()
        self._gathers: deque[Future] = deque()
        self._bytes = 0
        self._queued = [0] * self.LANES  # bytes submitted to each lane and not yet written
        self._lock = threading.Lock()
        # Bounded while rows are still read (each call holds a row group in memory); the last
        # calls, whose rows are all in memory already, are handed over at once.
        self.bounded = True

    def gather(self, fn: Callable[[], pa.Table]) -> Future:
        """Run ``fn`` (a take out of a batch) on the gathering thread; its future."""
        while len(self._gathers) >= self.MAX_GATHERS or (self._gathers and self._gathers[0].done()):
            self._gathers.popleft().result()
        future = self._gatherer.submit(fn)
        self._gathers.append(future)
        return future

    def run(self, fn: Callable[[], object], nbytes: int = 0, lane: int | None = None) -> int:
        """Run ``fn`` on ``lane`` (None: the least loaded one); the lane it runs on."""
        with self._lock:
            if lane is None:
                lane = min(range(self.LANES), key=self._queued.__getitem__)
            self._queued[lane] += nbytes
        future = self._lanes[lane].submit(fn)
        future.add_done_callback(lambda _: self._done(lane, nbytes))
        self._pending.append((future, nbytes))
        self._bytes += nbytes
        while self._pending and (
            (self.bounded and len(self._pending) > self.MAX_PENDING)
            or (self.bounded and self._bytes > self.MAX_PENDING_BYTES and len(self._pending) > 1)
            or self._pending[0][0].done()
        ):
            self._pop()
        return lane

    def _done(self, lane: int, nbytes: int) -> None:
        with self._lock:
            self._queued[lane] -= nbytes

    def _pop(self) -> None:
        future, nbytes = self._pending.popleft()
        self._bytes -= nbytes
        future.result()  # re-raises a failed write here

    def wait(self) -> None:
        while self._pending:
            self._pop()

    def close(self, cancel: bool = False) -> None:
        """Wait for the running work; with ``cancel``, drop what has not started (a failed or
        interrupted build, whose staging folder is removed anyway)."""
        self._gatherer.shutdown(wait=True, cancel_futures=cancel)
        for lane in self._lanes:
            lane.shutdown(wait=True, cancel_futures=cancel)


class HashingFile:
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
    sink: HashingFile
    writer: pq.ParquetWriter
    rows: int = 0
    nbytes: int = 0  # set on its lane
    lane: int | None = None  # the lane all of its writes run on, chosen with the first


# A buffered piece of a row group: a row dict, or a future table of rows (a take on the
# gathering thread), or a table.
_Piece = dict | Future | pa.Table


@dataclass
class ShardStream:
    """The shards of one (folder, split)."""

    folder: Path
    split: str
    schema: pa.Schema
    settings: ParquetSettings
    lanes: WriteLanes
    shards: list[_Shard] = field(default_factory=list)
    first_group: pa.Table | None = None  # the first row group's `rejected` (set on its lane)
    _open: _Shard | None = None
    _shard_bytes: int = 0
    _shard_rows: int = 0  # rows of the current shard, written or buffered
    _group_bytes: int = 0
    _buffer: list[_Piece] = field(default_factory=list)
    _buffered: int = 0  # rows in _buffer

    def add(self, example: dict, size: int) -> None:
        """One row dict of ``size`` (image bytes plus the characters of the three texts)."""
        if self._shard_rows and self._shard_bytes + size > self.settings.max_shard_size:
            self._flush()
            self._close()
        self._buffer.append(example)
        self._buffered += 1
        self._shard_bytes += size
        self._shard_rows += 1
        self._group_bytes += size
        if self._group_bytes >= self.settings.row_group_bytes:
            self._flush()

    def add_rows(self, table: pa.Table, rows: np.ndarray | None, sizes: np.ndarray) -> None:
        """``add`` for each of ``rows`` of ``table`` (all of it when None), in that order,
        with the same cuts; ``sizes`` are those rows' sizes as ``add`` takes them. The cuts
        are found with cumulative sums: row groups and shards end rarely, so this loops once
        per cut, not once per row."""
        n, pos = len(sizes), 0
        max_shard, group = self.settings.max_shard_size, self.settings.row_group_bytes
        while pos < n:
            total = np.cumsum(sizes[pos:])
            # add(): a shard ends before a row that would take it past max_shard_size, unless
            # the shard is empty; a row group ends after the row that fills it
            over = np.flatnonzero(self._shard_bytes + total > max_shard)
            over = over[over > 0] if not self._shard_rows else over
            full = np.flatnonzero(self._group_bytes + total >= group)
            cut = int(over[0]) if len(over) else n - pos
            end = int(full[0]) + 1 if len(full) else n - pos
            take = min(cut, end)
            if take:
                self._take(table, rows, pos, pos + take)
                added = int(total[take - 1])
                self._shard_bytes += added
                self._group_bytes += added
                self._shard_rows += take
                pos += take
            if take == end and len(full) and end <= cut:
                self._flush()
            elif take == cut and len(over):
                self._flush()
                self._close()

    def _take(self, table: pa.Table, rows: np.ndarray | None, start: int, stop: int) -> None:
        self._buffered += stop - start
        if rows is None:
            self._buffer.append(table.slice(start, stop - start))
        else:
            picked = pa.array(rows[start:stop], pa.int64())
            self._buffer.append(self.lanes.gather(lambda: table.take(picked)))

    def _flush(self) -> None:
        """Hand the buffered rows to this stream's lane as one row group."""
        nbytes, self._group_bytes = self._group_bytes, 0
        if not self._buffer:
            return
        if self._open is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / layout.pending_shard_name(self.split, len(self.shards))
            sink = HashingFile(tmp)
            writer = pq.ParquetWriter(sink, self.schema, **self.settings.writer_options(self.schema))
            self._open = _Shard(tmp, sink, writer)
            self.shards.append(self._open)
        shard, pieces, schema = self._open, self._buffer, self.schema
        keep_first = self.first_group is None and self.split == "train" and not shard.rows

        def write() -> None:
            table, nbytes = _row_group(pieces, schema, self.settings.piecewise_columns)
            if keep_first and self.first_group is None:
                self.first_group = table.select(["rejected"])
            shard.writer.write_table(table, row_group_size=table.num_rows)
            shard.nbytes += nbytes

        shard.lane = self.lanes.run(write, nbytes, shard.lane)
        shard.rows += self._buffered
        self._buffer = []
        self._buffered = 0

    def _close(self) -> None:
        shard = self._open
        if shard is not None:
            cdc = self.settings.content_defined_chunking

            def close() -> None:
                if cdc is not None:  # as datasets marks the files it writes with CDC
                    shard.writer.add_key_value_metadata({"content_defined_chunking": json.dumps(cdc)})
                shard.writer.close()
                shard.sink.close()

            self.lanes.run(close, 0, shard.lane)
            self._open = None
        self._shard_bytes = 0
        self._shard_rows = 0

    def buffered_bytes(self) -> int:
        """Bytes of the rows waiting for their row group (as ``add`` counts them)."""
        return self._group_bytes

    def end(self) -> None:
        """Hand the last rows to the lane and close the shard (without waiting)."""
        self._flush()
        self._close()

    def finish(self) -> list[WrittenFile]:
        """After ``end`` and the lanes' ``wait``: give the shards their final names."""
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


def _row_group(
    pieces: list[_Piece], schema: pa.Schema, piecewise: frozenset[str] = frozenset()
) -> tuple[pa.Table, int]:
    """The buffered rows as one table (row dicts through ``from_pylist``, the row path; tables
    as they are), and its Arrow size as datasets counts ``num_bytes``. Each column is made one
    contiguous piece, so that the bytes written do not depend on which path the rows took or
    where the source's batches ended; except the ``piecewise`` columns, whose pages the settings
    end by content alone: copying the images (nearly all the bytes) would change nothing."""
    if all(isinstance(x, dict) for x in pieces):
        table = pa.Table.from_pylist(pieces, schema=schema)
        return table, table.nbytes
    parts: list[pa.Table] = []
    rows: list[dict] = []
    for x in pieces:
        if isinstance(x, dict):
            rows.append(x)
            continue
        if rows:
            parts.append(pa.Table.from_pylist(rows, schema=schema))
            rows = []
        parts.append(x.result() if isinstance(x, Future) else x)
    if rows:
        parts.append(pa.Table.from_pylist(rows, schema=schema))
    table = pa.concat_tables(parts)
    columns = [
        c if name in piecewise else c.combine_chunks()
        for name, c in zip(table.column_names, table.columns, strict=True)
    ]
    table = pa.Table.from_arrays(columns, schema=table.schema)
    # the same figure for the same rows, however the table was assembled
    return table, sum(_arrow_size(c.chunks) for c in table.columns)


def _arrow_size(pieces: list[pa.Array]) -> int:
    """The ``nbytes`` of ``pieces`` (arrays of one type) as ``from_pylist`` lays out their rows in
    one array (exact buffers, a validity bitmap only where there are nulls), whatever their
    actual layout (pieces, slices, spare bitmaps)."""
    if not pieces:
        return 0
    n = sum(len(a) for a in pieces)
    size = (n + 7) // 8 if any(a.null_count for a in pieces) else 0
    t = pieces[0].type
    if pa.types.is_struct(t):
        # StructArray.field applies the parent's offset and length to the child
        return size + sum(_arrow_size([a.field(i) for a in pieces]) for i in range(t.num_fields))
    if pa.types.is_string(t) or pa.types.is_binary(t):
        # pyarrow counts n offsets (not n + 1) in nbytes; the buffer is the whole of a slice's
        data = 0
        for a in pieces:
            offsets = memoryview(a.buffers()[1]).cast("i")
            data += offsets[a.offset + len(a)] - offsets[a.offset]
        return size + 4 * n + data
    return size + n * t.bit_width // 8
