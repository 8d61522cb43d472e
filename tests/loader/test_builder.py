"""The SpaVL builder's configs and info, and the cache it keeps for raw sources."""

from __future__ import annotations

import datasets

import spa_vl
from spa_vl.builder import SpaVL

CONFIG_NAMES = [
    "default",
    "representation_toxicity",
    "misinformation",
    "information_safety",
    "malicious_use",
    "human_autonomy_integrity",
    "socioeconomic",
]


def test_builder_configs_and_info():
    assert [c.name for c in SpaVL.BUILDER_CONFIGS] == CONFIG_NAMES
    assert SpaVL.DEFAULT_CONFIG_NAME == "default"
    assert all(str(c.version) == "1.0.0" for c in SpaVL.BUILDER_CONFIGS)
    info = SpaVL(config_name="malicious_use", data_dir="unused")._info()
    assert info.license == "cc-by-4.0"
    assert "2406.12030" in info.citation and "SPA-VL" in info.citation
    assert info.homepage.startswith("https://")
    assert "Malicious Use" in info.description
    assert list(info.features) == [
        "id",
        "image",
        "image_name",
        "question",
        "chosen",
        "rejected",
        "domain",
        "category",
        "subcategory",
        "eval_set",
    ]
    assert isinstance(info.features["image"], datasets.Image)


def test_raw_source_is_cached_and_rebuilt_when_it_changes(sample_copy, tmp_path):
    src = sample_copy("jsonl")
    cache = str(tmp_path / "cache")
    first = spa_vl.load("default", "validation", source=src, cache_dir=cache)
    again = spa_vl.load("default", "validation", source=src, cache_dir=cache)
    assert first.cache_files[0]["filename"] == again.cache_files[0]["filename"]  # reused
    lines = (src / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    (src / "validation.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    changed = spa_vl.load("default", "validation", source=src, cache_dir=cache)
    assert changed.num_rows == first.num_rows - 1
    assert changed.cache_files[0]["filename"] != first.cache_files[0]["filename"]


def test_public_api():
    assert tuple(CONFIG_NAMES) == spa_vl.CONFIGS
    assert callable(spa_vl.load)
    assert {"load", "CONFIGS", "Taxonomy", "__version__"} <= set(spa_vl.__all__)
