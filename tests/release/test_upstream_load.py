"""``spa_vl.load()`` with no source: the authors' repository ``sqrti/SPA-VL`` (raw Hub layout) is
downloaded with ``snapshot_download`` and built through the builder.

The Hub is not reachable here: the repository is the synthetic sample in the Hub layout, uploaded
to the local stand-in (``hub_standin.py``) with the real huggingface_hub client; what the real
Hub serves for ``sqrti/SPA-VL`` (its file names and columns) is what the sample reproduces."""

from __future__ import annotations

from pathlib import Path

import pytest

import spa_vl
from spa_vl.loading import UPSTREAM_REPO


@pytest.mark.slow
def test_load_without_source_reads_the_upstream_hub_layout(hub, sample_dirs, tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(UPSTREAM_REPO, repo_type="dataset")
    api.upload_folder(folder_path=str(sample_dirs["hub"]), repo_id=UPSTREAM_REPO, repo_type="dataset")
    ds = spa_vl.load("socioeconomic", cache_dir=str(tmp_path / "cache"))
    # 5 subcategories: 10 train, 2 validation, 1 HarmEval and 1 HelpEval question each
    assert {split: d.num_rows for split, d in ds.items()} == {"train": 50, "validation": 10, "test": 10}
    assert set(ds["train"]["domain"]) == {ds["train"].features["domain"].str2int("Socioeconomic Harms")}
    # train.zip and meta_files/ of the real repository are not fetched
    assert hub.count("GET", r"/resolve/.*\.parquet") >= 11
