"""Write the script-free release folder in one pass over the source.

Each accepted row goes to ``default`` and to its domain's config; every (config, split) has
its own stream of parquet shards, cut at ``max_shard_size`` bytes. Shards are written under
temporary names and renamed once their count is known. Nothing time-dependent is written, so
the same input gives byte-identical files.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from spa_vl.features import COLUMNS, spa_vl_features, to_example
from spa_vl.sources import SPLITS
from spa_vl.taxonomy import CONFIGS, load_taxonomy
from spa_vl.validate import ValidRecord

DEFAULT_MAX_SHARD_SIZE = 500 * 1024**2  # what the Hub uses when it converts to parquet
ROW_GROUP_ROWS = 100  # as datasets writes image data: small groups stream well
# Encoded images never repeat: dictionary pages on them cost time for nothing. Snappy stays
# on (the datasets/Hub default): image headers repeat within a page, and users download these.
PARQUET_OPTIONS = {
    "compression": "snappy",
    "use_dictionary": ["domain", "category", "subcategory", "eval_set", "image.path"],
}


def parse_size(text: str | int) -> int:
    """``500MB``, ``1.5GB``, ``800KB`` or a number of bytes."""
    if isinstance(text, int):
        return text
    units = {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "B": 1}
    t = text.strip().upper()
    for unit, factor in units.items():
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * factor)
    return int(t)


@dataclass
class _ShardStream:
    """The shards of one (config, split)."""

    folder: Path
    split: str
    schema: pa.Schema
    max_bytes: int
    shards: list[Path] = field(default_factory=list)
    rows_per_shard: list[int] = field(default_factory=list)
    nbytes: int = 0  # Arrow size of all rows, as datasets reports num_bytes
    _writer: pq.ParquetWriter | None = None
    _shard_bytes: int = 0
    _buffer: list[dict] = field(default_factory=list)

    def add(self, example: dict, size: int) -> None:
        if self._writer is not None and self._shard_bytes + size > self.max_bytes:
            self._flush()
            self._close()
        self._buffer.append(example)
        self._shard_bytes += size
        if len(self._buffer) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            path = self.folder / f".{self.split}-{len(self.shards):05d}.parquet.tmp"
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, **PARQUET_OPTIONS)
            self.shards.append(path)
            self.rows_per_shard.append(0)
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows_per_shard[-1] += len(self._buffer)
        self.nbytes += table.nbytes
        self._buffer.clear()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._shard_bytes = 0

    def finish(self) -> list[tuple[Path, int]]:
        self._flush()
        self._close()
        if not self.shards:  # an empty split gets no file: datasets cannot read an empty one
            return []
        n = len(self.shards)
        final = []
        for k, (tmp, rows) in enumerate(zip(self.shards, self.rows_per_shard, strict=True)):
            dest = self.folder / f"{self.split}-{k:05d}-of-{n:05d}.parquet"
            tmp.replace(dest)
            final.append((dest, rows))
        return final


@dataclass
class WrittenData:
    files: list[tuple[str, str, Path, int]]  # (config, split, path, rows)
    nbytes: dict[tuple[str, str], int]  # (config, split) -> Arrow bytes


def write_data(
    records: Iterable[ValidRecord],
    out: Path,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
) -> WrittenData:
    """Write ``data/<config>/<split>-NNNNN-of-MMMMM.parquet`` for every config and split."""
    data_dir = out / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    schema = spa_vl_features().arrow_schema
    tax = load_taxonomy()
    domain_configs = [tax.config_of_domain(d) for d in tax.names("domain")]
    streams = {
        (config, split): _ShardStream(data_dir / config, split, schema, max_shard_size)
        for config in CONFIGS
        for split in SPLITS
    }
    for valid in records:
        example = to_example(valid.record, valid.image)
        split = valid.record["split"]
        size = len(valid.image) + sum(len(example[k] or "") for k in ("question", "chosen", "rejected"))
        row = {c: example[c] for c in COLUMNS}
        streams[("default", split)].add(row, size)
        if example["domain"] >= 0:
            streams[(domain_configs[example["domain"]], split)].add(row, size)
    files = []
    for (config, split), stream in streams.items():
        files += [(config, split, path, rows) for path, rows in stream.finish()]
    return WrittenData(files, {key: s.nbytes for key, s in streams.items()})
