"""Corpus listing through fsspec, at the boundary: a local folder and an in-memory file system
(``hf://`` takes the same path through ``fsspec.core.url_to_fs`` but cannot be reached here)."""

from __future__ import annotations

import io
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spa_vl.audit.against import ScanError
from spa_vl.audit.scan import list_shards, open_shard, shard_identity


def _parquet(rows: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": [f"row {k}" for k in range(rows)]}), buf)
    return buf.getvalue()


def test_local_folder_glob_and_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.parquet", "sub/a.parquet"):
        (tmp_path / name).write_bytes(_parquet(2))
    (tmp_path / "notes.txt").write_text("x")
    want = [str(tmp_path / "b.parquet"), str(tmp_path / "sub" / "a.parquet")]
    assert list_shards(str(tmp_path)) == want
    assert list_shards(str(tmp_path / "**" / "*.parquet")) == want
    assert list_shards(str(tmp_path / "b.parquet")) == [str(tmp_path / "b.parquet")]
    with pytest.raises(ScanError, match="no such corpus"):
        list_shards(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScanError, match="no parquet shards found"):
        list_shards(str(tmp_path / "empty"))


def test_memory_file_system() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe({"/corpus/x/1.parquet": _parquet(3), "/corpus/2.parquet": _parquet(1), "/corpus/r.md": b"-"})
    try:
        shards = list_shards("memory://corpus")
        assert shards == ["memory:///corpus/2.parquet", "memory:///corpus/x/1.parquet"]
        assert [open_shard(s).metadata.num_rows for s in shards] == [1, 3]
        assert shard_identity(shards[0]).endswith("\0")  # remote: named by its URL alone
        with pytest.raises(ScanError, match="not a readable parquet file"):
            open_shard("memory:///corpus/r.md")
    finally:
        fs.rm("/corpus", recursive=True)
