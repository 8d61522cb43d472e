"""Release format v2 as built: each row once under its domain, Hub-native parquet recorded in the
manifest, and a build that reads none of its own files back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spa_vl.cli import main
from spa_vl.release.build import build_release
from spa_vl.release.manifest import ReleaseManifest
from spa_vl.release.parquet_settings import ParquetSettings, parse_size

from .conftest import DOMAIN_SLUGS

DOMAINS = list(DOMAIN_SLUGS)  # taxonomy order: ClassLabel id i is DOMAINS[i]


def _parquet(release: Path) -> list[Path]:
    return sorted(release.glob("data/*/*.parquet"))


def test_each_row_is_stored_once_under_its_domain(releases) -> None:
    release = releases["hub"]
    ids: list[str] = []
    for path in _parquet(release):
        table = pq.read_table(path, columns=["id", "domain"])
        ids += table.column("id").to_pylist()
        domains = set(table.column("domain").to_pylist())
        folder = path.parent.name
        if folder == "unlabeled":
            assert domains == {-1}
            assert path.name.startswith("train-")  # validation and test rows all have labels
        else:
            assert domains == {DOMAINS.index(next(d for d, s in DOMAIN_SLUGS.items() if s == folder))}
    assert len(ids) == len(set(ids)) == ReleaseManifest.load(release).counts["accepted"] == 747
    assert sorted(p.name for p in (release / "data").iterdir()) == sorted(
        [*DOMAIN_SLUGS.values(), "unlabeled"]
    )


def test_parquet_is_written_as_datasets_5_writes_it_and_the_manifest_says_so(releases) -> None:
    release = releases["hub"]
    manifest = ReleaseManifest.load(release)
    assert manifest.format == "spa-vl-release/2"
    assert manifest.parquet == {**ParquetSettings().to_dict(), "pyarrow": pa.__version__}
    assert manifest.parquet["max_shard_size"] == 500_000_000 and manifest.parquet["row_group_bytes"] == 10**8
    for path in _parquet(release):
        pf = pq.ParquetFile(path)
        cdc = json.loads(pf.metadata.metadata[b"content_defined_chunking"])
        assert cdc == {"min_chunk_size": 262144, "max_chunk_size": 1048576, "norm_level": 0}
        group = pf.metadata.row_group(0)
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        assert columns["image.bytes"].compression == "UNCOMPRESSED"
        assert "PLAIN" in columns["image.bytes"].encodings
        assert "RLE_DICTIONARY" not in columns["image.bytes"].encodings
        assert columns["question"].compression == "SNAPPY"
        assert all(c.has_offset_index and c.has_column_index for c in columns.values())  # page index
        assert b"huggingface" in pf.schema_arrow.metadata  # the Features, for datasets


def test_row_groups_and_shards_are_cut_by_bytes_and_every_row_kept(sample_dirs, tmp_path: Path) -> None:
    settings = ParquetSettings(row_group_bytes=40_000)
    out = build_release(sample_dirs["hub"], tmp_path / "rel", max_shard_size="150KB", settings=settings).out
    shards = sorted((out / "data" / "malicious_use").glob("train-*.parquet"))
    assert len(shards) >= 2
    assert all(pq.ParquetFile(s).metadata.num_row_groups >= 2 for s in shards[:-1])
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in _parquet(out)) == 747
    assert ReleaseManifest.load(out).parquet["max_shard_size"] == 150_000


def test_a_build_reads_none_of_its_own_files_back(sample_dirs, tmp_path: Path, monkeypatch) -> None:
    """Checksums, sizes, counts and the card's figures come from the rows as they were written."""
    import spa_vl.release.manifest as manifest_module
    import spa_vl.release.stats as stats_module

    out = tmp_path / "rel"
    opened: list[str] = []
    real_file, real_table, real_sha = pq.ParquetFile, pq.read_table, manifest_module.sha256_file

    def ours(path) -> bool:
        return f"{out.name}.staging" in str(path) and str(path).endswith(".parquet")

    def parquet_file(path, *a, **k):
        if ours(path):
            opened.append(str(path))
        return real_file(path, *a, **k)

    def read_table(path, *a, **k):
        if ours(path):
            opened.append(str(path))
        return real_table(path, *a, **k)

    def sha256_file(path):
        if ours(path):
            opened.append(str(path))
        return real_sha(path)

    monkeypatch.setattr(pq, "ParquetFile", parquet_file)
    monkeypatch.setattr(pq, "read_table", read_table)
    monkeypatch.setattr(manifest_module, "sha256_file", sha256_file)
    monkeypatch.setattr(stats_module, "read_stats", lambda folder: pytest.fail("the build read its stats"))
    build_release(sample_dirs["hub"], out)
    assert opened == []
    monkeypatch.undo()
    assert main(["verify", str(out)]) == 0  # and the checksums taken while writing are right
    assert main(["card", str(out), "--check"]) == 0  # as are the card's figures


def test_the_figures_gathered_while_writing_equal_those_read_from_the_folder(sample_dirs, tmp_path) -> None:
    from spa_vl.release import writer
    from spa_vl.release.stats import read_stats

    gathered = {}
    real = writer.write_data

    def spy(*a, **k):
        gathered["written"] = real(*a, **k)
        return gathered["written"]

    import spa_vl.release.build as build

    build.write_data, restore = spy, build.write_data
    try:
        out = build_release(sample_dirs["rlhf-json"], tmp_path / "rel").out
    finally:
        build.write_data = restore
    during, after = gathered["written"].stats, read_stats(out)
    for name in ("rows", "files", "parquet_bytes", "labels", "eval_sets", "synthetic"):
        assert getattr(during, name) == getattr(after, name), name
    assert during.synthetic and during.unlabeled("train") == 5
    # datasets' num_bytes: the Arrow size of the rows (as laid out when written; read back,
    # pyarrow may add a validity bitmap or two)
    read_back = sum(pq.read_table(out / p).nbytes for p in during.files["default"]["train"])
    assert abs(during.arrow_bytes[("default", "train")] - read_back) < read_back / 1000


@pytest.mark.parametrize(
    ("text", "size"),
    [("500MB", 500_000_000), ("1GiB", 2**30), ("1.5GB", 1_500_000_000), ("8Mb", 1_000_000), ("64KiB", 65536),
     ("1234", 1234), (4096, 4096), (" 2 MB ", 2_000_000), ("2mb", 250_000)],
)  # fmt: skip
def test_sizes_parse_as_datasets_parses_them(text, size) -> None:
    assert parse_size(text) == size


def test_sizes_datasets_parses_agree(text=("500MB", "1GB", "2GiB", "10MiB", "300KB", "8Mb")) -> None:
    from datasets.utils.py_utils import convert_file_size_to_int

    for t in text:
        assert parse_size(t) == convert_file_size_to_int(t), t


@pytest.mark.parametrize("text", ["", "MB", "12 parsecs", "-5MB", "0", "1e3"])
def test_bad_sizes_are_refused(text, sample_dirs, tmp_path: Path, capsys) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)
    if text:
        assert (
            main(["build", str(sample_dirs["hub"]), "--out", str(tmp_path / "r"), f"--max-shard-size={text}"])
            == 2
        )
        assert "--max-shard-size" in capsys.readouterr().err
        assert not (tmp_path / "r").exists()


def _as_layout_v1(v2: Path, dest: Path) -> Path:
    """The same release in layout v1: every row in data/default/, again under its domain."""
    shutil.copytree(v2, dest)
    manifest = ReleaseManifest.load(dest)
    manifest.format = "spa-vl-release/1"
    manifest.parquet = {}
    manifest.files = [f for f in manifest.files if f.rows is None]
    (dest / "data" / "default").mkdir()
    for split in ("train", "validation", "test"):
        parts = sorted(dest.glob(f"data/*/{split}-*.parquet"))
        table = pa.concat_tables([pq.read_table(p) for p in parts if p.parent.name != "default"])
        rel = f"data/default/{split}-00000-of-00001.parquet"
        pq.write_table(table, dest / rel)
        manifest.set_file(dest, rel, rows=table.num_rows, config="default", split=split)
    shutil.rmtree(dest / "data" / "unlabeled")
    for path in sorted(dest.glob("data/*/*.parquet")):
        rel = path.relative_to(dest).as_posix()
        if path.parent.name != "default":
            rows = pq.ParquetFile(path).metadata.num_rows
            manifest.set_file(dest, rel, rows=rows, config=path.parent.name, split=path.name.split("-")[0])
    manifest.write(dest)
    return dest


def test_a_v1_release_is_read_and_diffed_against_v2(releases, tmp_path: Path) -> None:
    from spa_vl.release.diff import diff_releases
    from spa_vl.sources import open_source

    v2 = releases["hub"]
    v1 = _as_layout_v1(v2, tmp_path / "v1")
    assert main(["verify", str(v1)]) == 0
    assert sorted(r.record["id"] for r in open_source(v1).rows()) == sorted(
        r.record["id"] for r in open_source(v2).rows()
    )
    diff = diff_releases(v1, v2)
    assert len(diff.splits) == 21 and all(s.is_empty for s in diff.splits)
    rebuilt = build_release(v1, tmp_path / "rebuilt", previous=v1).out  # a v1 release as a source
    assert "No rows added, removed or changed." in (rebuilt / "CHANGELOG.md").read_text()
    assert ReleaseManifest.load(rebuilt).format == "spa-vl-release/2"
