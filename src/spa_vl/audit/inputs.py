"""From what the user points at to batches of columns, the only input the core knows.

A release folder (its ``default`` config's shards, as ``spa_vl.release.layout`` lists them) is
read with pyarrow directly; any other path goes through ``spa_vl.sources.open_source``. Rows a
reader cannot parse are counted and skipped: the validator, not the audit, is where they are
reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from spa_vl.errors import DataError
from spa_vl.release.layout import ReleaseLayout, is_release, shard_split

BATCH_COLUMNS = ("id", "split", "question", "chosen", "rejected", "image_name", "image")
__all__ = ["BATCH_COLUMNS", "SourceBatches", "is_release"]


@dataclass
class SourceBatches:
    """Iterates a source as dicts of columns; counts what it read."""

    path: Path
    format: str = "auto"
    batch_size: int = 1024
    images: bool = False
    rows_read: int = 0
    rows_unreadable: int = 0
    image_errors: int = 0
    per_split: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict:
        """Format and fingerprint of the source, for the report."""
        if is_release(self.path):
            manifest = self.path / "MANIFEST.json"
            return {"path": str(self.path), "format": "release", "manifest": manifest.is_file()}
        from spa_vl.sources import open_source

        source = open_source(self.path, self.format)
        return {
            "path": str(self.path),
            "format": source.format,
            "fingerprint": source.fingerprint(),
        }

    def __iter__(self) -> Iterator[dict[str, list]]:
        rows = self._release_rows() if is_release(self.path) else self._source_rows()
        batch: dict[str, list] = {c: [] for c in BATCH_COLUMNS}
        for record in rows:
            self.rows_read += 1
            split = record.get("split") or "unknown"
            self.per_split[split] = self.per_split.get(split, 0) + 1
            for c in BATCH_COLUMNS:
                batch[c].append(record.get(c))
            if len(batch["id"]) >= self.batch_size:
                yield batch
                batch = {c: [] for c in BATCH_COLUMNS}
        if batch["id"]:
            yield batch

    def _release_rows(self) -> Iterator[dict]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted = ["id", "question", "chosen", "rejected", "image_name"]
        wanted += ["image"] if self.images else []
        for file in ReleaseLayout.of(self.path).files("default"):
            try:
                pf = pq.ParquetFile(file)
                columns = [c for c in wanted if c in pf.schema_arrow.names]
                parts = pf.iter_batches(batch_size=self.batch_size, columns=columns)
                for part in parts:
                    for record in part.to_pylist():
                        record["split"] = shard_split(file)
                        yield record
            except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
                # A release is checked as a whole (its manifest): a damaged file is a data failure,
                # and an audit that skipped it would report fewer matches than there are.
                raise DataError(
                    f"{file}: cannot read this release file ({exc}); `spa-vl verify {self.path}` "
                    "tells what changed since the build"
                ) from None

    def _source_rows(self) -> Iterator[dict]:
        from spa_vl.sources import open_source

        for row in open_source(self.path, self.format).rows():
            if row.record is None or not row.record.get("id"):
                self.rows_unreadable += 1
                continue
            record = dict(row.record)
            question = record.get("question")
            if isinstance(question, list):  # the authors' list of turns: audit the human turns
                record["question"] = "\n".join(
                    t.get("value", "")
                    for t in question
                    if isinstance(t, dict) and t.get("from") != "Assistant"
                )
            record["image"] = None
            if self.images:
                try:
                    record["image"] = row.image_bytes()
                except Exception:  # a missing or unreadable image: counted, the text is audited
                    self.image_errors += 1
            yield record
