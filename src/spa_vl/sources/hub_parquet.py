"""The Hub layout of ``sqrti/SPA-VL`` as a local folder (parquet with embedded images).

    data/train-0000K-of-00008.parquet       image, question, chosen, rejected, image_name
    validation/validation-00000-of-00001.parquet  image, question, chosen, rejected, class1..3
    test/harm-00000-of-00001.parquet        image, question, class1..3   (HarmEval)
    test/help-00000-of-00001.parquet        image, question, class1..3   (HelpEval)

The columns differ per split; the reader absorbs that into the canonical record.

Completeness: each set (``data/train-*``, ...) must be whole (every ``NNNNN`` below ``MMMMM``,
one ``MMMMM``), and ``data/``, ``validation/`` and ``test/`` hold nothing else but hidden files
(``layout_problems()``; ``open_source`` refuses such a source unless ``allow_partial``).

Ids: ``train/000123`` numbers a split's rows across its shards, in shard order, so a row's id
depends on the row counts of the shards before it. Those counts come from the parquet footers.
When an earlier shard of the set is missing, or its footer is unreadable, the count is unknown
and a positional id would be a guess that gives the row another row's id; such rows get ids
qualified by their file instead: ``train/train-00005-of-00008/000017`` (row 17, from 0, of that
file). They never collide with positional ids, and a complete source never has them.

Unreadable data: a file whose footer cannot be read yields one row without a record (its rows
cannot be counted: the file counts as one quarantined record); a file that fails in the middle
(a page that fails to decompress) yields the rows before the failure, then one such row for
the rest. The column-batch path then goes back to the row path's batches, so both paths give
the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spa_vl.sources.base import (
    LayoutProblem,
    SourceRow,
    display_path,
    fingerprint_files,
    not_a_file,
    recover_labels,
    shard_index,
    shard_set_problems,
    special_file_problems,
)
from spa_vl.sources.columns import (
    CANONICAL_COLUMNS,
    IMAGE_TYPES,
    ColumnBatch,
    checked_columns,
    int_array,
    is_text,
    nulls,
    open_parquet,
    read_ahead,
    recover_label_columns,
    repeat_string,
    safe_batches,
    string_array,
    unreadable_rest,
    validate_utf8,
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
FOLDERS = ("data", "validation", "test")  # the layout's folders: nothing else belongs in them
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
    # Number of the file's first row within the split (its first id); None when it cannot be
    # known (an earlier shard of the set is missing or unreadable; see the module docstring).
    start: int | None
    rows: int | None  # rows in the file's footer; None when the footer is unreadable

    def row_id(self, k: int) -> str:
        """The id of the file's row ``k`` (from 0)."""
        if self.start is not None:
            return f"{self.prefix}/{self.start + k:06d}"
        return f"{self.prefix}/{self.file.name.removesuffix('.parquet')}/{k:06d}"


@dataclass
class HubParquetReader:
    path: Path
    allow_extra_columns: bool = False
    format: str = "hub"
    partial: list[LayoutProblem] = field(default_factory=list)  # accepted by allow_partial

    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and any(any(path.glob(g)) for g, *_ in LAYOUT)

    def _named(self) -> list[tuple[Path, tuple]]:
        """Every entry with a layout name (``NAME-NNNNN-of-MMMMM.parquet``), regular or not."""
        found = []
        for entry in LAYOUT:
            pattern = entry[0]
            stem = pattern.split("/")[1].split("-")[0]
            for f in sorted(self.path.glob(pattern)):
                named = shard_index(f)
                if named is not None and named[0] == stem and f.suffix == ".parquet":
                    found.append((f, entry))
        return found

    def files(self) -> list[Path]:
        return [f for f, _ in self._named() if not not_a_file(f)]

    def layout_problems(self) -> list[LayoutProblem]:
        """What makes the source incomplete: incomplete shard sets, files in the layout's
        folders that match no name of the layout, named entries that are not regular files."""
        named = self._named()
        known = {f for f, _ in named}
        stray = [
            LayoutProblem(display_path(f), "matches no file name of the Hub layout; it is not read")
            for folder in FOLDERS
            if (self.path / folder).is_dir()
            for f in sorted((self.path / folder).iterdir())
            if f not in known and not f.name.startswith(".")
        ]
        return [
            *special_file_problems(f for f, _ in named),
            *shard_set_problems(f for f, _ in named),
            *stray,
        ]

    def ignored(self) -> list[LayoutProblem]:
        """Hidden files in the layout's folders (``.DS_Store``, ``.gitattributes``): not data."""
        return [
            LayoutProblem(display_path(f), "hidden; not read")
            for folder in FOLDERS
            if (self.path / folder).is_dir()
            for f in sorted((self.path / folder).iterdir())
            if f.name.startswith(".")
        ]

    def fingerprint(self) -> str:
        return fingerprint_files(self.path, self.files())

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]:
        for part in self.parts(splits):
            yield from self.part_rows(part)

    def parts(self, splits: tuple[str, ...] | None = None) -> list[FilePart]:
        """One entry per file, in reading order, with the number of its first id: files can
        then be read independently (e.g. by several processes) and give the same rows."""
        parts = []
        named = [(f, e) for f, e in self._named() if not not_a_file(f)]
        for entry in LAYOUT:
            _, split, eval_set, prefix, expected = entry
            if splits is not None and split not in splits:
                continue
            members = sorted((*shard_index(f)[1:], f) for f, e in named if e is entry)
            counts = Counter(count for _, count, _ in members)
            usual = counts.most_common(1)[0][0] if counts else 0
            n: int | None = 0  # ids number rows across shards, in shard order
            expect = 0
            for index, count, file in members:
                # A shard before this one is missing, or this one belongs to a set of another
                # count: the rows before it are unknown, so are its positions.
                if index != expect or count != usual:
                    n = None
                rows = _num_rows(file)
                parts.append(FilePart(file, split, eval_set, prefix, expected, n, rows))
                n = None if n is None or rows is None else n + rows
                expect = index + 1
        return parts

    def part_rows(self, part: FilePart, skip: int = 0) -> Iterator[SourceRow]:
        """The file's rows; ``skip``: from its row ``skip`` (from 0) on."""
        name = display_path(part.file)
        opened = self._open(part, name)
        if isinstance(opened, SourceRow):
            yield opened
            return
        pf, read_cols, file_problems = opened
        k = 0
        for batch in safe_batches(pf.iter_batches(batch_size=BATCH_ROWS, columns=read_cols)):
            if isinstance(batch, str):
                yield unreadable_rest(name, max(k, skip), pf.metadata.num_rows, batch)
                return
            if k >= skip:
                yield from self._batch_rows(batch, name, part, k, file_problems)
            k += batch.num_rows

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
        k = 0
        # read ahead: the next batch decodes while this one is checked and written
        with closing(read_ahead(pf.iter_batches(batch_size=FAST_BATCH_ROWS, columns=read_cols))) as batches:
            for batch in safe_batches(batches):
                if isinstance(batch, str):
                    # The row path's batches are smaller: it may still read rows of this batch
                    # before failing. It decides, so that both paths give the same rows.
                    yield from self.part_rows(part, skip=k)
                    return
                try:
                    yield self._column_batch(batch, name, part, k)
                except pa.ArrowInvalid:  # e.g. text that is not valid UTF-8: the row path decides
                    yield from self._batch_rows(batch, name, part, k, [])
                k += batch.num_rows

    def _open(self, part: FilePart, name: str) -> SourceRow | tuple[pq.ParquetFile, list[str], list]:
        """The open file, the columns to read and the file's problems; or the row saying why
        the file cannot be read."""
        pf = open_parquet(part.file, name)
        if isinstance(pf, SourceRow):
            return pf
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
        """SourceRows of ``batch`` (whose first row is the file's row ``first``, from 0), or of
        the rows at ``positions`` only."""
        if positions is None:
            positions = range(batch.num_rows)
        else:
            batch = batch.take(int_array(positions))
        split, eval_set = part.split, part.eval_set
        # Column by column into Python lists: about twice as fast as batch.to_pylist(),
        # which builds a dict per row first.
        cols, bad = checked_columns(batch)
        absent = [None] * batch.num_rows
        values = [cols.get(c, absent) for c in _FIELDS]
        for j, (k, image, image_name, question, chosen, rejected, c1, c2, c3) in enumerate(
            zip(positions, *values, strict=True)
        ):
            record = {
                "id": part.row_id(first + k),
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
            row = SourceRow(name, first + k + 1, record)
            for code, fld, msg in file_problems:
                row.problems.append(row.problem(fld, code, msg))
            for fld, msg in bad.get(j, ()):
                row.problems.append(row.problem(fld, "not-utf8", msg))
            yield row

    def _column_batch(self, batch: pa.RecordBatch, name: str, part: FilePart, first: int) -> ColumnBatch:
        n = batch.num_rows
        cols = {c: batch.column(c) for c in batch.schema.names}
        validate_utf8(batch)  # raises on invalid UTF-8 (image.path too), before any kernel
        ids = string_array([part.row_id(k) for k in range(first, first + n)])
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
        table = pa.Table.from_arrays([columns[c] for c in CANONICAL_COLUMNS], names=list(CANONICAL_COLUMNS))
        return ColumnBatch(
            name,
            part.split,
            first + 1,
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


def _num_rows(file: Path) -> int | None:
    try:
        return pq.ParquetFile(file).metadata.num_rows
    except Exception:  # a damaged footer: pyarrow raises several types
        return None
