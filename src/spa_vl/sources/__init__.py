"""Source readers: one per raw shape of SPA-VL, each yielding ``SourceRow``s with provenance.

``open_source(path)`` picks the reader from the layout it finds, or from ``format``, and refuses
a source that is incomplete or inconsistent (a shard set with a shard missing, an index past its
count or two counts; a file in a layout folder that matches no name of the layout; a FIFO,
device or folder where a data file belongs) with a ``DataError`` naming the files, unless
``allow_partial``: then the reader reads what there is and keeps the list in ``.partial``.
"""

from __future__ import annotations

from pathlib import Path

from spa_vl.errors import DataError
from spa_vl.names import SPLITS
from spa_vl.problems import SourceError
from spa_vl.sources.base import (
    RECORD_FIELDS,
    LayoutProblem,
    Source,
    SourceRow,
    display_path,
    incomplete_source_message,
    not_a_file,
)
from spa_vl.sources.hub_parquet import HubParquetReader
from spa_vl.sources.images import ImageLoadError
from spa_vl.sources.jsonl import JsonlReader
from spa_vl.sources.release import ReleaseReader, is_release
from spa_vl.sources.rlhf_json import RlhfJsonReader

READERS = {
    "release": ReleaseReader,
    "hub": HubParquetReader,
    "rlhf-json": RlhfJsonReader,
    "jsonl": JsonlReader,
}
FORMATS = ("auto", *READERS)

__all__ = [
    "FORMATS",
    "READERS",
    "RECORD_FIELDS",
    "SPLITS",
    "ImageLoadError",
    "LayoutProblem",
    "Source",
    "SourceError",
    "SourceRow",
    "detect_format",
    "is_release",
    "open_source",
]


def detect_format(path: str | Path) -> str:
    """Name of the reader whose layout ``path`` has; SourceError when none matches."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    for name, reader in READERS.items():
        if reader.detect(path):
            return name
    raise SourceError(
        f"{path}: not a SPA-VL source. Expected one of: a spa-vl release folder "
        "(MANIFEST.json, data/<folder>/*.parquet), a Hub-layout folder "
        "(data/train-*.parquet, validation/*.parquet, test/harm-*.parquet), "
        "the authors' RLHF JSON (*.json list with an images/ folder or images.zip), "
        "or canonical JSON Lines (*.jsonl with an images/ folder)"
    )


def open_source(path: str | Path, format: str = "auto", *, allow_partial: bool = False, **options) -> Source:
    """Open a raw source; ``format`` is ``auto`` or one of ``READERS``.

    An incomplete or inconsistent source raises ``DataError`` naming every file concerned;
    with ``allow_partial`` it is read as it is and the reader's ``.partial`` lists them."""
    path = Path(path)
    if path.exists() and not path.is_dir() and (what := not_a_file(path)):
        # stat, never open: a FIFO would block the reader until something writes to it
        raise DataError(f"{display_path(path)}: is {what}, not a data file or a folder")
    if format == "auto":
        format = detect_format(path)
    elif format not in READERS:
        raise SourceError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
    elif not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    source = READERS[format](path, **options)
    problems = source.layout_problems()
    if problems and not allow_partial:
        raise DataError(incomplete_source_message(path, problems))
    source.partial = problems
    return source
