"""``spa_vl.load`` on release folders and raw sources, and its errors."""

from __future__ import annotations

import shutil

import datasets
import pytest

import spa_vl
from features_contract import contract_features
from spa_vl.loading import LoadError

from .conftest import DOMAIN_SLUGS


@pytest.fixture
def cache(tmp_path) -> str:
    return str(tmp_path / "hf_cache")


def test_load_release_by_domain_gives_typed_features(releases, expected_rows, cache):
    ds = spa_vl.load("malicious_use", source=releases["hub"], cache_dir=cache)
    assert set(ds) == {"train", "validation", "test"}
    feats = ds["train"].features
    assert feats == contract_features()
    assert isinstance(feats["image"], datasets.Image)
    assert feats["subcategory"].num_classes == 53 and feats["category"].num_classes == 15
    assert feats["eval_set"].names == ["harm", "help"]
    want = sum(
        1
        for r in expected_rows.values()
        if r.labels and r.labels[0] == "Malicious Use" and r.split == "train"
    )
    assert ds["train"].num_rows == want
    assert set(ds["train"]["domain"]) == {feats["domain"].str2int("Malicious Use")}
    test = ds["test"]
    assert test["chosen"] == [None] * test.num_rows
    assert sorted(set(test["eval_set"])) == [0, 1]


def test_load_split_slice_and_streaming(releases, cache):
    part = spa_vl.load("default", "train[:10]", source=releases["jsonl"], cache_dir=cache)
    assert part.num_rows == 10
    stream = spa_vl.load("socioeconomic", "validation", source=releases["jsonl"], streaming=True)
    first = next(iter(stream))
    assert first["image"].size[0] > 0 and first["domain"] == 5


@pytest.mark.parametrize("layout", ["hub", "rlhf-json", "jsonl"])
def test_load_raw_source_builds_through_the_builder(layout, sample_dirs, releases, cache):
    raw = spa_vl.load("misinformation", source=sample_dirs[layout], cache_dir=cache)
    built = spa_vl.load("misinformation", source=releases[layout], cache_dir=cache)
    for split in ("train", "validation", "test"):
        a = raw[split].cast_column("image", datasets.Image(decode=False))
        b = built[split].cast_column("image", datasets.Image(decode=False))
        assert a.to_list() == b.to_list(), split


def test_load_raw_source_streaming(sample_dirs):
    rows = list(spa_vl.load("information_safety", "test", source=sample_dirs["hub"], streaming=True))
    assert len(rows) == 6  # 3 subcategories x (1 HarmEval + 1 HelpEval)
    assert {r["domain"] for r in rows} == {2}


def test_unknown_config_split_and_source_list_what_exists(releases, tmp_path):
    with pytest.raises(LoadError) as exc:
        spa_vl.load("malicious", source=releases["hub"])
    assert all(slug in str(exc.value) for slug in DOMAIN_SLUGS.values())
    with pytest.raises(LoadError, match="splits: train, validation, test"):
        spa_vl.load("default", "dev", source=releases["hub"])
    with pytest.raises(LoadError, match="neither an existing folder"):
        spa_vl.load(source="not a repo id at all")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoadError, match="not a SPA-VL source"):
        spa_vl.load(source=tmp_path / "empty")


def test_stale_dataset_info_count_is_caught_before_datasets_trips(releases, tmp_path, cache):
    rel = tmp_path / "rel"
    shutil.copytree(releases["hub"], rel)
    readme = rel / "README.md"
    text = readme.read_text(encoding="utf-8")
    marker = "  - name: train\n    num_bytes:"
    start = text.index(marker)  # the default config's train split comes first
    count_at = text.index("num_examples: 535", start)
    readme.write_text(text[:count_at] + "num_examples: 536" + text[count_at + 17 :], encoding="utf-8")
    with pytest.raises(LoadError) as exc:
        spa_vl.load("default", source=rel, cache_dir=cache)
    assert "dataset_info[default].splits[train].num_examples is 536" in str(exc.value)
    assert "535 rows" in str(exc.value)
    # Without our check, datasets itself fails, later and less clearly.
    with pytest.raises(Exception) as raw_exc:
        datasets.load_dataset(str(rel), "default", cache_dir=cache)
    assert "NonMatchingSplitsSizes" in type(raw_exc.value).__name__ or "536" in str(raw_exc.value)


def test_raw_stream_read_twice_gives_the_same_rows(sample_dirs):
    # Ids are unique over the whole dataset; a second pass must not take the first pass's
    # ids for duplicates and quarantine every row.
    stream = spa_vl.load("default", "validation", source=sample_dirs["jsonl"], streaming=True)
    first = [r["id"] for r in stream]
    assert len(first) == 106 and [r["id"] for r in stream] == first
