"""The Hub layout of ``sqrti/SPA-VL`` as a local folder (parquet with embedded images).

    data/train-0000K-of-00008.parquet       image, question, chosen, rejected, image_name
    validation/validation-00000-of-00001.parquet  image, question, chosen, rejected, class1..3
    test/harm-00000-of-00001.parquet        image, question, class1..3   (HarmEval)
    test/help-00000-of-00001.parquet        image, question, class1..3   (HelpEval)

The columns differ per split; the reader absorbs that into the canonical record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spa_vl.sources.base import SourceRow, display_path, fingerprint_files, recover_labels
from spa_vl.sources.columns import (
    BATCH_COLUMNS,
    IMAGE_TYPES,
    ColumnBatch,
    int_array,
    is_text,
    nulls,
    recover_label_columns,
    repeat_string,
    string_array,
)

LABELS = ("class1", "class2", "class3")
# (glob, split, eval_set, id prefix, expected columns)
LAYOUT = (
    (
        "data/train-*.parquet",
        "train",
        None,
        "train",
        ("image", "question", "chosen", "rejected", "image_name"),
    ),
    (
        "validation/validation-*.parquet",
        "validation",
        None,
        "validation",
        ("image", "question", "chosen", "rejected", *LABELS),
    ),
    ("test/harm-*.parquet", "test", "harm", "harm", ("image", "question", *LABELS)),
    ("test/help-*.parquet", "test", "help", "help", ("image", "question", *LABELS)),
)
_FIELDS = ("image", "image_name", "question", "chosen", "rejected", *LABELS)
BATCH_ROWS = 256  # rows per Arrow batch: bounded memory whatever the shard size
# Column batches are larger: each compute call has a fixed cost (RE2 compiles its pattern on
# every call), and a batch never becomes Python rows. ~30 MB of 256-px JPEGs.
FAST_BATCH_ROWS = 2048


@dataclass(frozen=True)
class FilePart:
    """One parquet file of the layout and where its rows stand in the split."""

    file: Path
    split: str
    eval_set: str | None
    prefix: str
    expected: tuple[str, ...]
    start: int  # number of the file's first row within the split (its first id)
    rows: int  # rows in the file's metadata (0 when unreadable)


@dataclass
class HubParquetReader:
    path: Path
    allow_extra_columns: bool = False
    format: str = "hub"

    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and any(any(path.glob(g)) for g, *_ in LAYOUT)

    def files(self) -> list[Path]:
        return [f for g, *_ in LAYOUT for f in sorted(self.path.glob(g))]

    def fingerprint(self) -> str:
        return fingerprint_files(self.path, self.files())

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]:
        for part in self.parts(splits):
            yield from self.part_rows(part)

    def parts(self, splits: tuple[str, ...] | None = None) -> list[FilePart]:
        """One entry per file, in reading order, with the number of its first id: files can
        then be read independently (e.g. by several processes) and give the same rows."""
        parts = []
        for pattern, split, eval_set, prefix, expected in LAYOUT:
            if splits is not None and split not in splits:
                continue
            n = 0  # ids number rows across shards, in shard order
            for file in sorted(self.path.glob(pattern)):
                rows = _num_rows(file)
                parts.append(FilePart(file, split, eval_set, prefix, expected, n, rows))
                n += rows
        return parts

    def part_rows(self, part: FilePart) -> Iterator[SourceRow]:
        name = display_path(part.file)
        opened = self._open(part, name)
        if isinstance(opened, SourceRow):
            yield opened
            return
        pf, read_cols, file_problems = opened
        first = part.start
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=read_cols):
            yield from self._batch_rows(batch, name, part, first, file_problems)
            first += batch.num_rows

    def batches(self, splits: tuple[str, ...] | None = None) -> Iterator[ColumnBatch | SourceRow]:
        """The rows of ``rows()`` as column batches where the file allows (see sources.columns)."""
        for part in self.parts(splits):
            yield from self.part_batches(part)

    def part_batches(self, part: FilePart) -> Iterator[ColumnBatch | SourceRow]:
        name = display_path(part.file)
        opened = self._open(part, name)
        if isinstance(opened, SourceRow) or opened[2] or not _types_ok(opened[0].schema_arrow, opened[1]):
            yield from self.part_rows(part)  # file-level problems: the row path words them
            return
        pf, read_cols, _ = opened
        first = part.start
        for batch in pf.iter_batches(batch_size=FAST_BATCH_ROWS, columns=read_cols):
            try:
                yield self._column_batch(batch, name, part, first)
            except pa.ArrowInvalid:  # e.g. text that is not valid UTF-8: the row path decides
                yield from self._batch_rows(batch, name, part, first, [])
            first += batch.num_rows

    def _open(self, part: FilePart, name: str) -> SourceRow | tuple[pq.ParquetFile, list[str], list]:
        """The open file, the columns to read and the file's problems; or the row saying why
        the file cannot be read."""
        try:
            # pre_buffer=False: with it, pyarrow reads the whole file ahead (memory grows with
            # the shard size, ~58 MB per 12.5k-row shard of the benchmark), and it was slower.
            pf = pq.ParquetFile(part.file, pre_buffer=False)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            return SourceRow(name, 0, None, raw=None).with_problem(
                "<file>", "unreadable-file", f"not a readable parquet file: {exc}"
            )
        expected = part.expected
        columns = pf.schema_arrow.names
        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        file_problems = [("missing-column", c, f"column {c!r} is missing from the file") for c in missing]
        if extra and not self.allow_extra_columns:
            file_problems += [
                (
                    "unexpected-column",
                    c,
                    f"unexpected column {c!r} (expected {', '.join(expected)})",
                )
                for c in extra
            ]
        return pf, [c for c in expected if c in columns], file_problems

    def _batch_rows(
        self,
        batch: pa.RecordBatch,
        name: str,
        part: FilePart,
        first: int,
        file_problems: list,
        positions: Sequence[int] | None = None,
    ) -> Iterator[SourceRow]:
        """SourceRows of ``batch`` (whose first row has id number ``first``), or of the rows at
        ``positions`` only."""
        if positions is None:
            positions = range(batch.num_rows)
        else:
            batch = batch.take(int_array(positions))
        split, eval_set, prefix = part.split, part.eval_set, part.prefix
        # Column by column into Python lists: about twice as fast as batch.to_pylist(),
        # which builds a dict per row first.
        cols = dict(zip(batch.schema.names, (c.to_pylist() for c in batch.columns), strict=True))
        absent = [None] * batch.num_rows
        values = [cols.get(c, absent) for c in _FIELDS]
        for k, image, image_name, question, chosen, rejected, c1, c2, c3 in zip(
            positions, *values, strict=True
        ):
            i = first + k
            record = {
                "id": f"{prefix}/{i:06d}",
                "split": split,
                "image": image,
                "image_name": image_name,
                "question": question,
                "chosen": chosen,
                "rejected": rejected,
                "class1": c1,
                "class2": c2,
                "class3": c3,
                "eval_set": eval_set,
            }
            if split == "train":
                recover_labels(record)
            row = SourceRow(name, i - part.start + 1, record)
            for code, fld, msg in file_problems:
                row.problems.append(row.problem(fld, code, msg))
            yield row

    def _column_batch(self, batch: pa.RecordBatch, name: str, part: FilePart, first: int) -> ColumnBatch:
        n = batch.num_rows
        cols = {c: batch.column(c) for c in batch.schema.names}
        for c, col in cols.items():
            if c != "image":
                col.validate(full=True)  # raises on invalid UTF-8, before any string kernel
        ids = string_array([f"{part.prefix}/{i:06d}" for i in range(first, first + n)])
        text = {c: _string(cols[c]) if c in cols else nulls(n) for c in _FIELDS[1:]}
        if part.split == "train":
            # Train rows carry no class columns in this layout; recover_labels fills them
            # from image_name wherever class1 and class3 are both absent.
            recovered = recover_label_columns(text["image_name"])
            absent = pc.and_(pc.is_null(text["class1"]), pc.is_null(text["class3"]))
            for c, r in zip(LABELS, recovered, strict=True):
                text[c] = pc.if_else(absent, r, text[c])
        eval_set = repeat_string(part.eval_set, n) if part.eval_set else nulls(n)
        columns = {"id": ids, "image": cols["image"], **text, "eval_set": eval_set}
        table = pa.Table.from_arrays([columns[c] for c in BATCH_COLUMNS], names=list(BATCH_COLUMNS))
        return ColumnBatch(
            name,
            part.split,
            first - part.start + 1,
            table,
            lambda positions: list(self._batch_rows(batch, name, part, first, [], positions)),
        )


def _string(col: pa.Array) -> pa.Array:
    return col if col.type == pa.string() else col.cast(pa.string())


def _types_ok(schema: pa.Schema, read_cols: list[str]) -> bool:
    """Column types the fast path reads as the row path does; other types go row by row."""
    for c in read_cols:
        t = schema.field(c).type
        if not (t in IMAGE_TYPES if c == "image" else is_text(t)):
            return False
    return True


def _num_rows(file: Path) -> int:
    try:
        return pq.ParquetFile(file).metadata.num_rows
    except Exception:
        return 0
