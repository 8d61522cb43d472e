"""A spa-vl release folder read back as canonical records (for audits and rebuilds).

Reads the ``default`` config, which holds every row (in layout v2 every data folder, in v1
``data/default/``; ``spa_vl.release.layout`` knows which); ClassLabel ids become names again.
Each data folder must hold whole shard sets (``<split>-NNNNN-of-MMMMM.parquet``), and ``data/``
nothing else (``layout_problems()``). Unreadable files and rows count as in
``sources.hub_parquet``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from spa_vl.names import EVAL_SETS, LEVELS
from spa_vl.release.layout import ReleaseLayout, is_release, shard_split
from spa_vl.sources import columns
from spa_vl.sources.base import (
    LayoutProblem,
    SourceRow,
    display_path,
    fingerprint_files,
    not_a_file,
    shard_set_problems,
    special_file_problems,
)
from spa_vl.taxonomy import load_taxonomy

BATCH_ROWS = 256
FAST_BATCH_ROWS = 2048  # column batches: see sources.hub_parquet


@dataclass
class ReleaseReader:
    path: Path
    config: str = "default"
    format: str = "release"
    partial: list[LayoutProblem] = field(default_factory=list)  # accepted by allow_partial

    detect = staticmethod(is_release)

    @property
    def layout(self) -> ReleaseLayout:
        return ReleaseLayout.of(self.path)

    def _named(self) -> list[Path]:
        """Entries of the config's data folders named as shards, in reading order."""
        return self.layout.named(self.config)

    def files(self) -> list[Path]:
        return [f for f in self._named() if not not_a_file(f)]

    def layout_problems(self) -> list[LayoutProblem]:
        """Incomplete shard sets, special files, and entries of ``data/`` that are no shard of
        a data folder of the layout."""
        named = self._named()
        stray = [
            LayoutProblem(display_path(f), "matches no file name of a release; it is not read")
            for f in self.layout.strays()
        ]
        return [*special_file_problems(named), *shard_set_problems(named), *stray]

    def ignored(self) -> list[LayoutProblem]:
        return []

    def fingerprint(self) -> str:
        return fingerprint_files(self.path, self.files())

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]:
        for file, split in self._files(splits):
            yield from self._file_rows(file, split)

    def _file_rows(self, file: Path, split: str, skip: int = 0) -> Iterator[SourceRow]:
        name = display_path(file)
        pf = columns.open_parquet(file, name)
        if isinstance(pf, SourceRow):
            yield pf
            return
        k = 0
        for batch in columns.safe_batches(pf.iter_batches(batch_size=BATCH_ROWS)):
            if isinstance(batch, str):
                yield columns.unreadable_rest(name, max(k, skip), pf.metadata.num_rows, batch)
                return
            if k >= skip:
                yield from _records(batch, name, split, k + 1)
            k += batch.num_rows

    def batches(self, splits: tuple[str, ...] | None = None) -> Iterator[columns.ColumnBatch | SourceRow]:
        """The rows of ``rows()`` as column batches (see sources.columns); a file whose
        columns are not the release schema's goes row by row."""
        for file, split in self._files(splits):
            name = display_path(file)
            pf = columns.open_parquet(file, name)
            if isinstance(pf, SourceRow) or not _schema_ok(pf.schema_arrow):
                yield from self._file_rows(file, split)
                continue
            k = 0
            for batch in columns.safe_batches(pf.iter_batches(batch_size=FAST_BATCH_ROWS)):
                if isinstance(batch, str):  # the row path decides (see sources.hub_parquet)
                    yield from self._file_rows(file, split, skip=k)
                    break
                try:
                    yield _column_batch(batch, name, split, k + 1)
                except (pa.ArrowInvalid, pa.ArrowIndexError, IndexError):
                    # invalid UTF-8 or a label id past the names: the row path decides
                    yield from _records(batch, name, split, k + 1)
                k += batch.num_rows

    def _files(self, splits: tuple[str, ...] | None) -> Iterator[tuple[Path, str]]:
        for file in self.files():
            split = shard_split(file) or ""
            if splits is None or split in splits:
                yield file, split


def _label(level: str, i: int | None, bad: list[tuple[str, str]] | None = None) -> str | None:
    if i is None or i < 0:
        return None
    names = _label_names()[level] if level in LEVELS else EVAL_SETS
    if i >= len(names):
        if bad is not None:
            bad.append((level, f"label id {i} is past the {len(names)} names of the ClassLabel"))
        return None
    return names[i]


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
    cols, bad = columns.checked_columns(batch)
    for j, k in enumerate(positions):
        v = {c: values[j] for c, values in cols.items()}
        found = list(bad.get(j, ()))
        record = {
            "id": v.get("id"),
            "split": split,
            "image": v.get("image"),
            "image_name": v.get("image_name"),
            "question": v.get("question"),
            "chosen": v.get("chosen"),
            "rejected": v.get("rejected"),
            "class1": _label("domain", v.get("domain"), found),
            "class2": _label("category", v.get("category"), found),
            "class3": _label("subcategory", v.get("subcategory"), found),
            "eval_set": _label("eval_set", v.get("eval_set"), found),
        }
        row = SourceRow(name, first + k, record)
        for fld, msg in found:
            code = "not-utf8" if msg.startswith("is not valid UTF-8") else "bad-value"
            row.problems.append(row.problem(fld, code, msg))
        yield row


_TEXT = ("id", "image_name", "question", "chosen", "rejected")
_LABELS = (("class1", "domain"), ("class2", "category"), ("class3", "subcategory"))


def _schema_ok(schema: pa.Schema) -> bool:
    """The release schema's columns and types (any order): the fast path reads them as
    ``rows()`` does."""
    want = {*_TEXT, "image", *LEVELS, "eval_set"}
    if set(schema.names) != want or len(schema.names) != len(want):
        return False
    return (
        schema.field("image").type in columns.IMAGE_TYPES
        and all(columns.is_text(schema.field(c).type) for c in _TEXT)
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


def _column_batch(batch: pa.RecordBatch, name: str, split: str, first: int) -> columns.ColumnBatch:
    cols = {c: batch.column(c) for c in batch.schema.names}
    columns.validate_utf8(batch)  # raises on invalid UTF-8 (image.path too), before any string kernel
    text = {c: cols[c] if cols[c].type == pa.string() else cols[c].cast(pa.string()) for c in _TEXT}
    labels = {c: _names_of(cols[level], _label_names()[level]) for c, level in _LABELS}
    table = pa.table(
        {**text, "image": cols["image"], **labels, "eval_set": _names_of(cols["eval_set"], EVAL_SETS)}
    ).select(list(columns.CANONICAL_COLUMNS))
    return columns.ColumnBatch(
        name, split, first, table, lambda positions: list(_records(batch, name, split, first, positions))
    )
