"""A spa-vl release folder read back as canonical records (for audits and rebuilds).

Reads the ``default`` config, which holds every row; ClassLabel ids become names again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spa_vl.sources.base import SPLITS, SourceRow, display_path, fingerprint_files
from spa_vl.sources.columns import BATCH_COLUMNS, IMAGE_TYPES, ColumnBatch, is_text
from spa_vl.taxonomy import load_taxonomy

EVAL_SETS = ("harm", "help")
LEVELS = ("domain", "category", "subcategory")
BATCH_ROWS = 256
FAST_BATCH_ROWS = 2048  # column batches: see sources.hub_parquet


def is_release(path: Path) -> bool:
    return path.is_dir() and ((path / "MANIFEST.json").exists() or any(path.glob("data/default/*.parquet")))


@dataclass
class ReleaseReader:
    path: Path
    config: str = "default"
    format: str = "release"

    detect = staticmethod(is_release)

    def files(self) -> list[Path]:
        return [f for s in SPLITS for f in sorted(self.path.glob(f"data/{self.config}/{s}-*.parquet"))]

    def fingerprint(self) -> str:
        return fingerprint_files(self.path, self.files())

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]:
        for file, split in self._files(splits):
            name = display_path(file)
            n = 1
            for batch in pq.ParquetFile(file, pre_buffer=False).iter_batches(batch_size=BATCH_ROWS):
                yield from _records(batch, name, split, n)
                n += batch.num_rows

    def batches(self, splits: tuple[str, ...] | None = None) -> Iterator[ColumnBatch | SourceRow]:
        """The rows of ``rows()`` as column batches (see sources.columns); a file whose
        columns are not the release schema's goes row by row."""
        for file, split in self._files(splits):
            name = display_path(file)
            pf = pq.ParquetFile(file, pre_buffer=False)  # see sources.hub_parquet
            if not _schema_ok(pf.schema_arrow):
                n = 1
                for batch in pf.iter_batches(batch_size=BATCH_ROWS):
                    yield from _records(batch, name, split, n)
                    n += batch.num_rows
                continue
            n = 1
            for batch in pf.iter_batches(batch_size=FAST_BATCH_ROWS):
                try:
                    yield _column_batch(batch, name, split, n)
                except (pa.ArrowInvalid, pa.ArrowIndexError, IndexError):
                    # invalid UTF-8 or a label id past the names: the row path decides
                    yield from _records(batch, name, split, n)
                n += batch.num_rows

    def _files(self, splits: tuple[str, ...] | None) -> Iterator[tuple[Path, str]]:
        for file in self.files():
            split = file.name.split("-", 1)[0]
            if splits is None or split in splits:
                yield file, split


def _label(level: str, i: int | None) -> str | None:
    return _label_names()[level][i] if i is not None and i >= 0 else None


@cache
def _label_names() -> dict[str, list[str]]:
    tax = load_taxonomy()
    return {lvl: tax.names(lvl) for lvl in LEVELS}


def _records(
    batch: pa.RecordBatch, name: str, split: str, first: int, positions: Sequence[int] | None = None
) -> Iterator[SourceRow]:
    """The SourceRows of ``batch`` (its first row is row ``first`` of the file), or of the
    rows at ``positions`` only."""
    if positions is None:
        positions = range(batch.num_rows)
    else:
        batch = batch.take(pa.array(positions, pa.int64()))
    for k, v in zip(positions, batch.to_pylist(), strict=True):
        ev = v.get("eval_set")
        record = {
            "id": v["id"],
            "split": split,
            "image": v["image"],
            "image_name": v.get("image_name"),
            "question": v["question"],
            "chosen": v.get("chosen"),
            "rejected": v.get("rejected"),
            "class1": _label("domain", v.get("domain")),
            "class2": _label("category", v.get("category")),
            "class3": _label("subcategory", v.get("subcategory")),
            "eval_set": EVAL_SETS[ev] if ev is not None and ev >= 0 else None,
        }
        yield SourceRow(name, first + k, record)


_TEXT = ("id", "image_name", "question", "chosen", "rejected")
_LABELS = (("class1", "domain"), ("class2", "category"), ("class3", "subcategory"))


def _schema_ok(schema: pa.Schema) -> bool:
    """The release schema's columns and types (any order): the fast path reads them as
    ``rows()`` does."""
    want = {*_TEXT, "image", *LEVELS, "eval_set"}
    if set(schema.names) != want or len(schema.names) != len(want):
        return False
    return (
        schema.field("image").type in IMAGE_TYPES
        and all(is_text(schema.field(c).type) for c in _TEXT)
        and all(pa.types.is_integer(schema.field(c).type) for c in (*LEVELS, "eval_set"))
    )


def _names_of(ids: pa.Array, names: list[str] | tuple[str, ...]) -> pa.Array:
    """Label ids to names as ``_label`` does: None for null or negative ids; an id past the
    names raises (as the row path does)."""
    ids = ids.cast(pa.int64())
    if len(ids) and (pc.max(ids).as_py() or -1) >= len(names):
        raise IndexError("label id out of range")
    kept = pc.if_else(pc.greater_equal(ids, 0), ids, pa.scalar(None, pa.int64()))
    return pc.take(pa.array(list(names), pa.string()), kept)


def _column_batch(batch: pa.RecordBatch, name: str, split: str, first: int) -> ColumnBatch:
    cols = {c: batch.column(c) for c in batch.schema.names}
    for c in _TEXT:
        cols[c].validate(full=True)  # raises on invalid UTF-8, before any string kernel
    text = {c: cols[c] if cols[c].type == pa.string() else cols[c].cast(pa.string()) for c in _TEXT}
    labels = {c: _names_of(cols[level], _label_names()[level]) for c, level in _LABELS}
    table = pa.table(
        {**text, "image": cols["image"], **labels, "eval_set": _names_of(cols["eval_set"], EVAL_SETS)}
    ).select(list(BATCH_COLUMNS))
    return ColumnBatch(
        name, split, first, table, lambda positions: list(_records(batch, name, split, first, positions))
    )
