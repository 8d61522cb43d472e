"""The Hub layout of ``sqrti/SPA-VL`` as a local folder (parquet with embedded images).

    data/train-0000K-of-00008.parquet       image, question, chosen, rejected, image_name
    validation/validation-00000-of-00001.parquet  image, question, chosen, rejected, class1..3
    test/harm-00000-of-00001.parquet        image, question, class1..3   (HarmEval)
    test/help-00000-of-00001.parquet        image, question, class1..3   (HelpEval)

The columns differ per split; the reader absorbs that into the canonical record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from spa_vl.sources.base import SourceRow, display_path, fingerprint_files, recover_labels

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
        return self._file_rows(part.file, part.split, part.eval_set, part.prefix, part.expected, part.start)

    def _file_rows(self, file, split, eval_set, prefix, expected, start) -> Iterator[SourceRow]:
        name = display_path(file)
        try:
            pf = pq.ParquetFile(file)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            yield SourceRow(name, 0, None, raw=None).with_problem(
                "<file>", "unreadable-file", f"not a readable parquet file: {exc}"
            )
            return
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
        read_cols = [c for c in expected if c in columns]
        i = start
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=read_cols):
            # Column by column into Python lists: about twice as fast as batch.to_pylist(),
            # which builds a dict per row first.
            cols = dict(zip(batch.schema.names, (c.to_pylist() for c in batch.columns), strict=True))
            absent = [None] * batch.num_rows
            values = [cols.get(c, absent) for c in _FIELDS]
            for image, image_name, question, chosen, rejected, c1, c2, c3 in zip(*values, strict=True):
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
                row = SourceRow(name, i - start + 1, record)
                for code, fld, msg in file_problems:
                    row.problems.append(row.problem(fld, code, msg))
                yield row
                i += 1


def _num_rows(file: Path) -> int:
    try:
        return pq.ParquetFile(file).metadata.num_rows
    except Exception:
        return 0
