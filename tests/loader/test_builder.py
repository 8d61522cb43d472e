"""The SpaVL builder's configs and info, and the cache it keeps for raw sources."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

import spa_vl
from features_contract import CONFIGS, contract_features
from spa_vl.builder import SpaVL
from spa_vl.sources import open_source

CONFIG_NAMES = list(CONFIGS)


def test_builder_configs_and_info():
    assert [c.name for c in SpaVL.BUILDER_CONFIGS] == CONFIG_NAMES
    assert SpaVL.DEFAULT_CONFIG_NAME == "default"
    assert all(str(c.version) == "1.0.0" for c in SpaVL.BUILDER_CONFIGS)
    info = SpaVL(config_name="malicious_use", data_dir="unused")._info()
    assert info.license == "cc-by-4.0"
    assert "2406.12030" in info.citation and "SPA-VL" in info.citation
    assert info.homepage.startswith("https://")
    assert "Malicious Use" in info.description
    assert info.features == contract_features()


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


def test_builder_name_and_cache_folder_say_spa_vl(sample_dirs, tmp_path):
    cache = tmp_path / "cache"
    ds = spa_vl.load("default", "validation", source=sample_dirs["hub"], cache_dir=str(cache))
    assert ds.info.builder_name == "spa_vl" and ds.info.dataset_name == "spa_vl"
    assert Path(ds.cache_files[0]["filename"]).relative_to(cache).parts[0] == "spa_vl"
    assert SpaVL(config_name="default", data_dir="unused", cache_dir=str(cache)).name == "spa_vl"


def test_raw_hub_source_is_read_as_column_batches(sample_dirs, tmp_path, monkeypatch):
    """Loading a Hub-layout source goes through the column batches `spa-vl build` uses: the
    source's row reader is never asked for its rows."""
    source_type = type(open_source(sample_dirs["hub"]))

    def no_rows(self, splits=None):
        raise AssertionError("the row path read the source")

    monkeypatch.setattr(source_type, "rows", no_rows)
    ds = spa_vl.load("malicious_use", source=sample_dirs["hub"], cache_dir=str(tmp_path / "cache"))
    assert {s: ds[s].num_rows for s in ds} == {"train": 220, "validation": 44, "test": 44}


def test_every_config_gives_the_rows_of_the_release(sample_dirs, releases, tmp_path):
    """The column path (Hub layout) and the row path (JSONL) give, for every config and split,
    the ids, the Features and the values of the release `spa-vl build` writes."""
    cache = str(tmp_path / "cache")
    for config in CONFIG_NAMES:
        built = spa_vl.load(config, source=releases["hub"], cache_dir=cache)
        raw = spa_vl.load(config, source=sample_dirs["hub"], cache_dir=cache)
        assert raw["train"].features == built["train"].features == contract_features()
        for split in ("train", "validation", "test"):
            a = raw[split].cast_column("image", datasets.Image(decode=False)).to_list()
            b = built[split].cast_column("image", datasets.Image(decode=False)).to_list()
            key = (lambda r: r["id"]) if config == "default" else None  # default: rows by domain
            assert sorted(a, key=key) == sorted(b, key=key) if key else a == b, (config, split)
    rows = spa_vl.load("default", source=sample_dirs["jsonl"], cache_dir=cache)
    built = spa_vl.load("default", source=releases["jsonl"], cache_dir=cache)
    assert {s: sorted(rows[s]["id"]) for s in rows} == {s: sorted(built[s]["id"]) for s in built}


def test_rows_the_column_path_doubts_go_to_the_row_validator(sample_copy, tmp_path):
    src = sample_copy("hub")
    path = src / "validation/validation-00000-of-00001.parquet"
    table = pq.read_table(path)
    questions = table.column("question").to_pylist()
    questions[3] = "   "  # whitespace only: the batch check doubts it, the row validator rejects it
    table = table.set_column(table.schema.get_field_index("question"), "question", pa.array(questions))
    pq.write_table(table, path)
    builder = SpaVL(
        config_name="default",
        data_dir=str(src),
        source_format="hub",
        quarantine=str(tmp_path / "q.jsonl"),
        cache_dir=str(tmp_path / "cache"),
    )
    builder.download_and_prepare()
    ds = builder.as_dataset(split="validation")
    assert ds.num_rows == table.num_rows - 1
    report = builder.validation_report
    assert report.quarantined == 1 and report.accepted == report.read - 1
    assert "validation/000003" not in ds["id"]
    quarantined = (tmp_path / "q.validation.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(quarantined) == 1 and "question" in quarantined[0]
