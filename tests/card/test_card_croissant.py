"""croissant.json: valid Croissant 1.0 with RAI fields, readable through mlcroissant."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from features_contract import CONFIGS

RAI_FIELDS = [
    "rai:dataCollection",
    "rai:dataPreprocessingProtocol",
    "rai:dataAnnotationProtocol",
    "rai:dataUseCases",
    "rai:dataLimitations",
    "rai:dataBiases",
    "rai:personalSensitiveInformation",
    "rai:dataSocialImpact",
    "rai:dataReleaseMaintenancePlan",
]


def test_shape(card_release: Path) -> None:
    doc = json.loads((card_release / "croissant.json").read_text(encoding="utf-8"))
    assert doc["@type"] == "sc:Dataset"
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert doc["@context"]["rai"] == "http://mlcommons.org/croissant/RAI/"
    assert doc["license"] == "https://creativecommons.org/licenses/by/4.0/"
    for field in RAI_FIELDS:
        assert doc.get(field), field
    file_sets = {d["@id"]: d for d in doc["distribution"] if d["@type"] == "cr:FileSet"}
    assert sorted(file_sets) == sorted(f"parquet-{c}" for c in CONFIGS)
    every = set(card_release.glob("data/*/*.parquet"))
    for c in CONFIGS:
        includes = file_sets[f"parquet-{c}"]["includes"]
        if c == "default":  # every row is stored once, under its domain: default is all of them
            assert set(card_release.glob(includes)) == every
        else:
            assert includes == f"data/{c}/*.parquet"
            assert list((card_release / "data" / c).glob("*.parquet"))
    record_sets = {r["@id"]: r for r in doc["recordSet"]}
    assert set(CONFIGS) <= set(record_sets)
    names = record_sets["domain_names"]["data"]
    assert names[3] == {
        "domain_names/id": 3,
        "domain_names/name": "Malicious Use",
        "domain_names/display": "Malicious Use",
    }
    assert "synthetic sample" in doc["description"]


def test_mlcroissant_validates_and_reads_records(card_release: Path) -> None:
    mlc = pytest.importorskip("mlcroissant")
    dataset = mlc.Dataset(jsonld=str(card_release / "croissant.json"))  # raises when invalid
    issues = dataset.metadata.ctx.issues
    assert not issues.errors
    # The one warning: no datePublished (no date is recorded, so rebuilds give the same bytes).
    assert all("datePublished" in w for w in issues.warnings), issues.warnings
    # A whole small config, compared with what pyarrow reads from the same files.
    records = list(dataset.records(record_set="information_safety"))
    files = sorted((card_release / "data/information_safety").glob("*.parquet"))
    assert len(records) == sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    splits = {r["information_safety/split"].decode() for r in records}
    assert splits == {"train", "validation", "test"}
    first = records[0]
    assert first["information_safety/domain"] == 2  # Information & Safety Harms
    assert first["information_safety/image"].size[0] > 0  # a decoded PIL image
    assert isinstance(first["information_safety/question"], bytes)
    # The label names record set is readable too.
    names = list(dataset.records(record_set="subcategory_names"))
    assert len(names) == 53
    assert names[41]["subcategory_names/name"] == "scamns"  # inline data: str, not bytes
