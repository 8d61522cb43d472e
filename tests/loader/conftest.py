"""Fixtures for the loader tests: the sample's expected rows and releases built from it."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from spa_vl.release.build import build_release
from spa_vl.sample import SampleRow, SampleSpec, generate

DOMAIN_SLUGS = {  # the contract's config names (docs/CONTRACTS.md), typed here, not from the code
    "Representation & ToxicityHarms": "representation_toxicity",
    "Misinformation Harms": "misinformation",
    "Information & Safety Harms": "information_safety",
    "Malicious Use": "malicious_use",
    "Human Autonomy & IntegrityHarms": "human_autonomy_integrity",
    "Socioeconomic Harms": "socioeconomic",
}


@pytest.fixture(scope="session")
def expected_rows() -> dict[str, SampleRow]:
    """The sample's rows straight from the generator, by id: the ground truth of a build."""
    return {r.id: r for r in generate(SampleSpec())}


@pytest.fixture(scope="session")
def releases(sample_dirs, tmp_path_factory) -> dict[str, Path]:
    """One release per raw layout of the default sample."""
    root = tmp_path_factory.mktemp("releases")
    return {
        layout: build_release(src, root / layout, quarantine=root / f"{layout}.quarantine.jsonl").out
        for layout, src in sample_dirs.items()
    }


def read_rows(release: Path, config: str, split: str | None = None) -> list[dict]:
    """Rows of a release read with plain pyarrow, labels turned back into names via the
    ClassLabel names stored in the parquet metadata. Layout v2 as the contract states it, typed
    here rather than taken from the code: a domain config is ``data/<config>/``, ``default``
    every folder under ``data/``."""
    import json

    rows = []
    pattern = f"{split}-*.parquet" if split else "*.parquet"
    folders = sorted((release / "data").iterdir()) if config == "default" else [release / "data" / config]
    for path in [p for folder in folders for p in sorted(folder.glob(pattern))]:
        table = pq.read_table(path)
        feats = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
        names = {k: v.get("names") for k, v in feats.items() if v.get("_type") == "ClassLabel"}
        for row in table.to_pylist():
            for col, labels in names.items():
                row[col] = labels[row[col]] if row[col] is not None and row[col] >= 0 else None
            row["_split"] = path.name.split("-", 1)[0]
            rows.append(row)
    return rows
