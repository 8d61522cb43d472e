"""Column batches: a source's rows as Arrow columns in the canonical record's shape.

Readers of columnar sources (the Hub layout, release folders) offer ``batches()`` beside
``rows()``: it yields a ``ColumnBatch`` for each batch of a file whose columns have the
expected types, and plain ``SourceRow``s for files the row path must handle (file-level
problems, unexpected types). ``ColumnBatch.rows(positions)`` rebuilds exactly the
``SourceRow``s that ``rows()`` yields for those rows, so doubtful rows can be checked, worded
and quarantined by the row path.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spa_vl.sources.base import RECORD_FIELDS, SourceRow
from spa_vl.taxonomy import load_taxonomy

T = TypeVar("T")


def open_parquet(file: Path, name: str) -> pq.ParquetFile | SourceRow:
    """A source's parquet file, or the row that quarantines it whole when it cannot be opened.

    ``pre_buffer=False``: with it, pyarrow reads the whole file ahead (memory grows with the
    shard size, ~58 MB per 12.5k-row shard of the benchmark), and it was slower. Page checksums,
    where the writer stored them, catch flipped bytes that would otherwise decode as other text."""
    try:
        return pq.ParquetFile(file, pre_buffer=False, page_checksum_verification=True)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        return SourceRow(name, 0, None, raw=None).with_problem(
            "<file>",
            "unreadable-file",
            f"not a readable parquet file: {exc} (its rows cannot be counted: the file counts "
            "as one quarantined record)",
        )


def contiguous(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``col`` as one array; without a copy when it is one chunk already (``combine_chunks``
    copies even then: for image columns that is every JPEG byte)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


# Canonical columns of a ColumnBatch, in this order; `split` is constant and kept apart. (Not
# spa_vl.audit.inputs.BATCH_COLUMNS: the audit's batches carry `split` and no labels.)
CANONICAL_COLUMNS = tuple(f for f in RECORD_FIELDS if f != "split")
IMAGE_TYPES = (
    pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    pa.struct([("bytes", pa.large_binary()), ("path", pa.large_string())]),
    pa.struct([("bytes", pa.large_binary()), ("path", pa.string())]),
    pa.struct([("bytes", pa.binary()), ("path", pa.large_string())]),
)


def is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


@dataclass
class ColumnBatch:
    """Rows ``first_row`` .. of ``file`` (all of one split) as canonical Arrow columns."""

    file: str  # as SourceRow.file
    split: str
    first_row: int  # SourceRow.row of the first row
    table: pa.Table  # CANONICAL_COLUMNS; text as string, image as struct<bytes, path>
    rows: Callable[[Sequence[int]], list[SourceRow]]  # the row path's SourceRows at positions

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def nulls(n: int) -> pa.Array:
    return pa.nulls(n, pa.string())


def recover_label_columns(names: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``Taxonomy.recover_from_path`` over a column of image names: the folder part is cut
    with string kernels as the method cuts it, and each distinct folder is looked up once."""
    tax = load_taxonomy()
    s = pc.utf8_trim(pc.replace_substring(names, "\\", "/"), "/")
    # rpartition("/")[0]: everything before the last "/", or "" without one.
    folder = pc.replace_substring_regex(s, "^[^/]*$|/[^/]*$", "")
    enc = pc.dictionary_encode(folder)
    # folder + "/x" has exactly this folder for recover_from_path (and shares its cache).
    found = [tax.recover_from_path(f + "/x") for f in enc.dictionary.to_pylist()]
    return tuple(pc.take(string_array([t[k] if t else None for t in found]), enc.indices) for k in range(3))


# -- text that is not UTF-8 ----------------------------------------------------------------------
# Parquet writers do not check that a string column holds UTF-8 (pyarrow writes whatever bytes a
# string array holds), and ``to_pylist`` then raises UnicodeDecodeError. The row path reads such
# a column as bytes instead, and names each bad value with its row and field.


def _bytes_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every string (nested ones included) as binary: a cast that never decodes."""
    if pa.types.is_string(t):
        return pa.binary()
    if pa.types.is_large_string(t):
        return pa.large_binary()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _bytes_type(f.type), f.nullable) for f in t])
    return t


def _decode(value: object, t: pa.DataType, where: str, bad: list[tuple[str, str]]) -> object:
    if value is None:
        return None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append((where, f"is not valid UTF-8 (byte 0x{value[exc.start]:02x} at offset {exc.start})"))
            return value.decode("utf-8", errors="backslashreplace")
    if pa.types.is_struct(t):
        return {f.name: _decode(value[f.name], f.type, f"{where}.{f.name}", bad) for f in t}
    return value


def checked_pylist(col: pa.Array, name: str) -> tuple[list, dict[int, list[tuple[str, str]]]]:
    """``col.to_pylist()``, and the values that are not valid UTF-8 as {position: [(field,
    message)]}; those values are decoded with backslash escapes, for the quarantine."""
    try:
        col.validate(full=True)  # UTF-8 of every string, nested struct fields included
    except pa.ArrowInvalid:
        pass
    else:
        return col.to_pylist(), {}
    values, bad = [], {}
    for k, value in enumerate(col.cast(_bytes_type(col.type)).to_pylist()):
        found: list[tuple[str, str]] = []
        values.append(_decode(value, col.type, name, found))
        if found:
            bad[k] = found
    return values, bad


def checked_columns(batch: pa.RecordBatch) -> tuple[dict[str, list], dict[int, list[tuple[str, str]]]]:
    """Every column of ``batch`` as a Python list (``checked_pylist``), and the bad values."""
    cols, bad = {}, {}
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        cols[name], found = checked_pylist(col, name)
        for k, problems in found.items():
            bad.setdefault(k, []).extend(problems)
    return cols, bad


def validate_utf8(batch: pa.RecordBatch) -> None:
    """Raise ``pa.ArrowInvalid`` when any string of ``batch`` (struct fields included, so
    ``image.path``) is not valid UTF-8: the fast path then leaves the batch to the row path."""
    for col in batch.columns:
        if pa.types.is_struct(col.type):
            for i, f in enumerate(col.type):
                if not (pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)):
                    col.field(i).validate(full=True)  # image bytes need no UTF-8 check
        else:
            col.validate(full=True)


# -- reading parquet without a traceback ----------------------------------------------------------


def safe_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch | str]:
    """The batches of a parquet reader; a batch that cannot be read (a page that fails to
    decompress, a cut file) ends the stream with the error's text instead of raising."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # pyarrow raises OSError, ArrowInvalid, ... for damaged data
            yield f"{type(exc).__name__}: {exc}".strip()
            return
        yield batch


_END = object()


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, each one produced by a thread of its own while the caller works on the one
    before: pyarrow decodes parquet outside the GIL, and ``iter_batches`` decodes only when
    asked, so without this the decoding and the caller's checks take turns. An exception of
    ``items`` is raised in the caller where it would have been; closing this iterator (or
    leaving a loop over it) stops the thread after the item it is producing."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the caller and raised there
            put((None, exc))

    thread = threading.Thread(target=produce, name="spa-vl-read", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def unreadable_rest(name: str, k: int, total: int, error: str) -> SourceRow:
    """The row standing for rows ``k`` (from 0) to the end of a file that fails there."""
    return SourceRow(name, k + 1, None).with_problem(
        "<file>",
        "unreadable-rows",
        f"rows {k + 1:,} to {total:,} (as the footer counts them) cannot be read: {error}; "
        "they count as this one quarantined record",
    )


# -- arrays without pandas ------------------------------------------------------------------------
# pa.array and pa.scalar (and so any compute call given a Python value) import pandas on first
# use, ~0.5 s here, which reading and checking batches never needs: the fast path builds its
# few arrays from buffers instead.


def string_array(values: Sequence[str | None]) -> pa.Array:
    """``pa.array(values, pa.string())``, built from buffers."""
    n = len(values)
    if None not in values:
        data = "".join(values).encode("utf-8")
        lengths = np.fromiter(map(len, values), np.int64, n)
        if len(data) != lengths.sum():  # not all ASCII: count bytes, not characters
            lengths = np.fromiter((len(v.encode("utf-8")) for v in values), np.int64, n)
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(lengths, out=offsets[1:])
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    valid = np.fromiter((v is not None for v in values), bool, n)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)), bitmap, n - int(valid.sum())
    )


def repeat_string(value: str, n: int) -> pa.Array:
    """``n`` times ``value`` as a string array, built from buffers."""
    data = value.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int32) * len(data)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))


def int_array(values: Sequence[int] | np.ndarray) -> pa.Array:
    """``pa.array(values, pa.int64())``, built from a buffer."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bool_array(values: np.ndarray) -> pa.Array:
    """``pa.array(values)`` for a numpy bool array, built from a buffer."""
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
