"""Building the release folder: round trips, configs, quarantine, determinism, sharding."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from spa_vl.release.build import build_release
from spa_vl.release.manifest import ReleaseManifest

from .conftest import DOMAIN_SLUGS, read_rows

LAYOUTS = ("hub", "rlhf-json", "jsonl")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_round_trip_same_rows_labels_and_image_bytes(layout, releases, expected_rows):
    rows = read_rows(releases[layout], "default")
    assert len(rows) == len(expected_rows) == 747
    for row in rows:
        exp = expected_rows[row["id"]]
        assert row["_split"] == exp.split
        assert row["question"] == exp.question
        assert row["chosen"] == exp.chosen and row["rejected"] == exp.rejected
        labels = (row["domain"], row["category"], row["subcategory"])
        assert labels == (exp.labels or (None, None, None)), row["id"]
        assert row["eval_set"] == exp.eval_set
        assert row["image"]["bytes"] == exp.image  # passed through, never re-encoded


def test_train_labels_recovered_from_image_name_in_hub_layout(releases, expected_rows):
    # The Hub's train split has no class columns: labels come only from image_name paths.
    train = read_rows(releases["hub"], "default", "train")
    labeled = [r for r in train if r["subcategory"] is not None]
    unlabeled = [r for r in train if r["subcategory"] is None]
    assert len(labeled) == 530 and len(unlabeled) == 5
    for r in unlabeled:
        assert r["image_name"].startswith("uncategorized/")
        assert expected_rows[r["id"]].labels is None
    r = labeled[0]
    assert r["image_name"].split("/")[:3] == [r["domain"], r["category"], r["subcategory"]]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_domain_config_holds_exactly_its_domain(layout, releases, expected_rows):
    by_config: dict[str, set[str]] = {slug: set() for slug in DOMAIN_SLUGS.values()}
    for r in expected_rows.values():
        if r.labels:
            by_config[DOMAIN_SLUGS[r.labels[0]]].add(r.id)
    assert {r["id"] for r in read_rows(releases[layout], "default")} == set(expected_rows)
    for config, ids in by_config.items():
        rows = read_rows(releases[layout], config)
        assert {r["id"] for r in rows} == ids, config
        assert len(rows) == len(ids)  # and no row twice
        for split in ("train", "validation", "test"):
            assert any(r["_split"] == split for r in rows), (config, split)


def test_quarantine_counts_reconcile_through_a_build(sample_copy, tmp_path):
    src = sample_copy("jsonl")
    lines = (src / "train.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[0])
    dup = json.loads(lines[1])  # same id as line 2: the second copy is quarantined
    wrong = json.loads(lines[2]) | {
        "id": "train/x1",
        "class3": "cyber",
    }  # cyber is not under its class2
    with open(src / "train.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps(dup) + "\n")
        fh.write(json.dumps(wrong) + "\n")
        fh.write(json.dumps(bad | {"id": "train/x2", "chosen": bad["rejected"]}) + "\n")
    quarantine = tmp_path / "q.jsonl"
    result = build_release(src, tmp_path / "rel", quarantine=quarantine)
    counts = ReleaseManifest.load(tmp_path / "rel").counts
    assert counts["read"] == 751
    assert counts["quarantined"] == 4
    assert counts["accepted"] == 747 == counts["read"] - counts["quarantined"]
    q = [json.loads(x) for x in quarantine.read_text(encoding="utf-8").splitlines()]
    assert len(q) == 4
    codes = sorted(reason["code"] for item in q for reason in item["reasons"])
    assert codes == ["duplicate-id", "identical-answers", "label-mismatch", "malformed-json"]
    assert len(read_rows(result.out, "default")) == counts["accepted"]


def test_rebuild_is_byte_identical_even_from_another_path(sample_dirs, tmp_path):
    copy = tmp_path / "elsewhere" / "raw"
    shutil.copytree(sample_dirs["hub"], copy)
    a = build_release(sample_dirs["hub"], tmp_path / "a").out
    b = build_release(copy, tmp_path / "b").out
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 20
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_small_max_shard_size_cuts_shards_and_keeps_every_row(sample_dirs, tmp_path):
    out = build_release(sample_dirs["hub"], tmp_path / "rel", max_shard_size=64 * 1024).out
    shards = sorted((out / "data" / "malicious_use").glob("train-*.parquet"))
    assert len(shards) > 2
    n = len(shards)
    assert [s.name for s in shards] == [f"train-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
    assert len(read_rows(out, "default", "train")) == 535
    manifest = ReleaseManifest.load(out)
    assert sum(f.rows for f in manifest.data_files("default", "train")) == 535


def test_manifest_lists_every_file_with_its_hash(releases):
    import hashlib

    out: Path = releases["hub"]
    manifest = ReleaseManifest.load(out)
    on_disk = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "MANIFEST.json"
    )
    assert sorted(f.path for f in manifest.files) == on_disk
    for f in manifest.files:
        assert hashlib.sha256((out / f.path).read_bytes()).hexdigest() == f.sha256
    assert manifest.version == "1.0.0"
    assert manifest.source["format"] == "hub"
    assert re.fullmatch(r"xxh3_128:[0-9a-f]{32}", manifest.source["fingerprint"])
    assert "T" not in json.dumps(manifest.counts)  # no wall-clock time recorded


def test_a_config_with_an_empty_split_still_loads(tmp_path):
    """With 12 train rows most domains have no train row: their configs list only the splits
    that have files (datasets cannot read an empty parquet split)."""
    import datasets

    from spa_vl.sample import SampleSpec, write_sample

    raw = write_sample(tmp_path / "raw", "hub", SampleSpec(train=12))
    out = build_release(raw, tmp_path / "rel").out
    assert not list((out / "data" / "socioeconomic").glob("train-*"))
    ds = datasets.load_dataset(str(out), "socioeconomic", cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"validation", "test"}
    assert ds["validation"].num_rows == 10
    full = datasets.load_dataset(str(out), "default", cache_dir=str(tmp_path / "cache"))
    assert full["train"].num_rows == 12
