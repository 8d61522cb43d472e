"""The column-batch path of validation (the Arrow fast path): each batch is checked with
``pyarrow.compute``.

Rows that pass every vectorised check are accepted without building a Python record. The checks
are at least as strict as the row path's (``RecordValidator.check``): any row they doubt, and any
row whose image or id fails, goes through ``RecordValidator.check`` on its ``SourceRow``, in
reading order, so problems, messages, examples and quarantine lines are the row path's, and the
report is identical. Doubting a valid row costs time, never correctness; accepting an invalid
one would be a bug, so every check below errs on the side of doubt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spa_vl.image_check import check_image, jpeg_sound
from spa_vl.names import EVAL_SETS, SPLITS
from spa_vl.sources import SourceRow
from spa_vl.sources.columns import (
    ColumnBatch,
    bool_array,
    contiguous,
    int_array,
    repeat_string,
    string_array,
)
from spa_vl.validate.quarantine import Quarantine
from spa_vl.validate.records import RecordValidator
from spa_vl.validate.report import SplitCounts, ValidationOptions, ValidationReport, ValidRecord, tally


@dataclass
class AcceptedBatch:
    """The accepted rows of one column batch, in reading order (canonical columns)."""

    split: str
    table: pa.Table


# An ASCII letter or digit anywhere: then the text is surely not whitespace-only, whatever
# Unicode whitespace means to Python. Texts without one (rare: only punctuation, emoji, other
# scripts) are doubted and checked by the row path. ASCII classes, not \pL: RE2 compiles the
# pattern on every call, and the Unicode tables cost more than the match.
_HAS_WORD = r"[0-9A-Za-z]"


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy, null as False (Kleene: null and false is false)."""
    values = contiguous(pc.and_kleene(values, pc.is_valid(values)))  # no nulls left
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    # Unpacked from the bitmap: to_numpy() on booleans goes through pandas (see string_array).
    bits = np.frombuffer(values.buffers()[1], np.uint8)
    n, at = len(values), values.offset
    return np.unpackbits(bits, count=at + n, bitorder="little")[at:].astype(bool)


def _lengths(col: pa.Array) -> np.ndarray:
    """Byte length of each value (0 for null)."""
    _, starts, ends = _buffers(col)
    return np.asarray(ends - starts, dtype=np.int64)


def _buffers(col: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A string or binary array's values buffer and each value's start and end in it."""
    wide = pa.types.is_large_string(col.type) or pa.types.is_large_binary(col.type)
    _, offsets, values = col.buffers()
    offsets = np.frombuffer(offsets, np.int64 if wide else np.int32)[col.offset : col.offset + len(col) + 1]
    data = np.frombuffer(values, np.uint8) if values is not None else np.zeros(0, np.uint8)
    return data, offsets[:-1], offsets[1:]


def _printable(byte: np.ndarray) -> np.ndarray:
    """Bytes that are a whole printable ASCII character other than space (in UTF-8 no
    multi-byte character holds one): str.strip() surely keeps such a first or last character."""
    return (byte >= 0x21) & (byte <= 0x7E)


def _text_ok(col: pa.Array, max_len: int) -> np.ndarray:
    """``schema.text_ok`` over a column, erring on doubt: set, 1..max_len bytes (so at most
    max_len characters), an ASCII word character, no NUL."""
    n = _lengths(col)
    ok = _mask(pc.is_valid(col)) & (n > 0) & (n <= max_len)
    ok &= _mask(pc.match_substring_regex(col, _HAS_WORD))
    data, starts, ends = _buffers(col)
    if np.any(data[starts[0] : ends[-1]] == 0) if len(col) else False:
        ok &= ~_mask(pc.match_substring(col, "\x00"))  # only when some NUL is in the buffer
    return ok


def _same_after_strip(chosen: pa.Array, rejected: pa.Array) -> np.ndarray:
    """``chosen.strip() == rejected.strip()`` per row, exactly: plain equality where both ends
    of both texts are printable ASCII (strip() changes nothing), Python's strip() elsewhere."""
    solid = np.ones(len(chosen), dtype=bool)
    for col in (chosen, rejected):
        data, starts, ends = _buffers(col)
        filled = ends > starts
        first = data[np.clip(starts, 0, max(len(data) - 1, 0))] if len(data) else np.zeros(len(col), np.uint8)
        last = data[np.clip(ends - 1, 0, max(len(data) - 1, 0))] if len(data) else first
        solid &= filled & _printable(first) & _printable(last)
    same = _mask(pc.equal(chosen, rejected))
    both = _mask(pc.and_(pc.is_valid(chosen), pc.is_valid(rejected)))
    unsure = np.flatnonzero(~solid & both)
    if len(unsure):
        idx = int_array(unsure)
        for k, c, r in zip(unsure, chosen.take(idx).to_pylist(), rejected.take(idx).to_pylist(), strict=True):
            same[k] = c.strip() == r.strip()
    return same


class BatchChecker:
    """The vectorised twin of ``RecordValidator.check`` for column batches; shares the
    validator's taxonomy, options and id set."""

    def __init__(self, validator: RecordValidator):
        self.validator = validator
        self._keys = string_array(["\x1f".join(p) for p in sorted(validator._paths)])
        self._eval_sets = string_array(list(EVAL_SETS))

    def sure(self, cb: ColumnBatch) -> np.ndarray:
        """Rows that surely pass every check but the id's uniqueness (which needs the stream)."""
        t, split, opts = cb.table, cb.split, self.validator.options
        col = {name: contiguous(t.column(name)) for name in t.column_names}
        if split not in SPLITS:
            return np.zeros(t.num_rows, dtype=bool)
        image, ids = col["image"], col["id"]
        data = pc.struct_field(image, "bytes")
        ok = pc.and_(pc.is_valid(image), pc.is_valid(data))
        # An id of printable ASCII but space surely matches schema._ID; others are doubted.
        ok = pc.and_(ok, pc.match_substring_regex(ids, r"^[!-~]+$"))
        c1, c2, c3 = col["class1"], col["class2"], col["class3"]
        unlabeled = pc.and_(pc.and_(pc.is_null(c1), pc.is_null(c2)), pc.is_null(c3))
        key = pc.binary_join_element_wise(c1, c2, c3, repeat_string("\x1f", len(c1)))
        ok = pc.and_(ok, pc.or_(unlabeled, pc.is_in(key, value_set=self._keys)))
        if split == "test":
            ok = pc.and_(ok, pc.and_(pc.is_null(col["chosen"]), pc.is_null(col["rejected"])))
            ok = pc.and_(ok, pc.is_in(col["eval_set"], value_set=self._eval_sets))
        else:
            ok = pc.and_(ok, pc.is_null(col["eval_set"]))
        sure = _mask(ok) & (_lengths(ids) <= 256) & _text_ok(col["question"], 16384)
        sure &= _mask(pc.is_null(col["image_name"])) | (_lengths(col["image_name"]) <= 4096)
        if split != "test":
            sure &= _text_ok(col["chosen"], 65536) & _text_ok(col["rejected"], 65536)
            sure &= ~_same_after_strip(col["chosen"], col["rejected"])
        if opts.check_images:
            sure &= self._images_sound(contiguous(data), sure)
        return sure

    def _images_sound(self, data: pa.Array, candidates: np.ndarray) -> np.ndarray:
        opts = self.validator.options
        sound = np.zeros(len(data), dtype=bool)
        if not opts.deep:
            buf, starts, ends = _buffers(data)
            sound = jpeg_sound(buf, starts, ends, opts.limits)
        # The rest (PNG, unusual JPEG markers, --deep) image by image, as the row path does.
        rest = np.flatnonzero(candidates & ~sound)
        if len(rest):
            values = data.take(int_array(rest)).to_pylist()
            for k, value in zip(rest, values, strict=True):
                sound[k] = not check_image(value, opts.limits, deep=opts.deep)
        return sound


def validate_batches(
    items: Iterable[ColumnBatch | SourceRow],
    report: ValidationReport,
    options: ValidationOptions | None = None,
    quarantine: Quarantine | None = None,
    validator: RecordValidator | None = None,
    progress=None,
) -> Iterator[AcceptedBatch | ValidRecord]:
    """``validate_rows`` for a stream of column batches (and plain rows): the same report and
    quarantine, the accepted rows as one ``AcceptedBatch`` per column batch."""
    validator = validator or RecordValidator(options)
    checker = BatchChecker(validator)
    seen = validator._seen
    for split in SPLITS:
        report.splits.setdefault(split, SplitCounts())
    for item in items:
        if isinstance(item, SourceRow):
            problems, image = validator.check(item)
            if tally(report, item, problems, quarantine):
                yield ValidRecord(item.record, image, item.file, item.row)
            if progress is not None:
                progress.update(1)
            continue
        keep = _check_batch(item, checker, seen, report, quarantine)
        if progress is not None:
            progress.update(item.num_rows)
        if keep.any():
            table = item.table if keep.all() else item.table.filter(bool_array(keep))
            yield AcceptedBatch(item.split, table)


def _check_batch(
    cb: ColumnBatch,
    checker: BatchChecker,
    seen: dict[str, str],
    report: ValidationReport,
    quarantine: Quarantine | None,
) -> np.ndarray:
    """Count and quarantine the rows of ``cb`` as the row path would; return which are accepted."""
    validator = checker.validator
    sure = checker.sure(cb)
    ids = cb.table.column("id").to_pylist()
    first = cb.first_row
    doubtful = np.flatnonzero(~sure).tolist()
    rows = dict(zip(doubtful, cb.rows(doubtful), strict=True))
    keep = sure.copy()

    def row_path(k: int) -> None:
        row = rows[k] if k in rows else cb.rows([k])[0]
        problems, _ = validator.check(row)
        keep[k] = tally(report, row, problems, quarantine)

    if len(set(ids)) == len(ids) and seen.keys().isdisjoint(ids):
        # No id of the batch repeats one seen before or another of the batch: the order in
        # which ids enter the seen-set changes nothing, so the sure rows go in at once.
        at = np.flatnonzero(sure)
        places = map(f"{cb.file}:{{}}".format, (at + first).tolist())
        seen.update(zip(map(ids.__getitem__, at.tolist()), places, strict=True))
        for k in doubtful:
            row_path(k)
    else:
        for k in range(cb.num_rows):  # in reading order: the first use of an id wins
            if not sure[k]:
                row_path(k)
            elif seen.setdefault(ids[k], here := f"{cb.file}:{first + k}") != here:
                keep[k] = False
                row_path(k)  # check() words the duplicate
    accepted = sure & keep
    counts = report.splits.setdefault(cb.split, SplitCounts())
    n_sure = int(accepted.sum())
    report.read += n_sure
    report.accepted += n_sure
    counts.read += n_sure
    counts.accepted += n_sure
    counts.unlabeled += int((accepted & _mask(pc.is_null(cb.table.column("class3")))).sum())
    return keep
