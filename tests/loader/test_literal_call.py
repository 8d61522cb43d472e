"""The literal call: with a release at ./spa_vl, plain ``datasets.load_dataset("spa_vl", ...)``
works with no code of ours involved (datasets' packaged parquet module reads it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import datasets
    out = {}
    ds = datasets.load_dataset("spa_vl", "malicious_use")
    out["malicious_use"] = {k: v.num_rows for k, v in ds.items()}
    f = ds["train"].features
    out["types"] = [type(f[c]).__name__ for c in ("image", "domain", "subcategory", "eval_set", "chosen")]
    out["n_sub"] = f["subcategory"].num_classes
    out["default"] = {k: v.num_rows for k, v in datasets.load_dataset("spa_vl").items()}
    out["slice"] = datasets.load_dataset("spa_vl", "malicious_use", split="train[:10]").num_rows
    stream = datasets.load_dataset("spa_vl", "socioeconomic", split="test", streaming=True)
    out["streamed"] = sum(1 for _ in stream)
    out["ours_imported"] = any(m == "spa_vl" or m.startswith("spa_vl.") for m in sys.modules)
    print(json.dumps(out))
    """
)


def test_plain_datasets_load_dataset_spa_vl(releases, expected_rows, tmp_path):
    shutil.copytree(releases["hub"], tmp_path / "spa_vl")
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = list(expected_rows.values())
    mal = [r for r in rows if r.labels and r.labels[0] == "Malicious Use"]
    assert out["malicious_use"] == {
        s: sum(1 for r in mal if r.split == s) for s in ("train", "validation", "test")
    }
    assert out["types"] == ["Image", "ClassLabel", "ClassLabel", "ClassLabel", "Value"]
    assert out["n_sub"] == 53
    assert out["default"] == {"train": 535, "validation": 106, "test": 106}
    assert out["slice"] == 10
    assert out["streamed"] == sum(
        1 for r in rows if r.labels and r.labels[0] == "Socioeconomic Harms" and r.split == "test"
    )
    assert out["ours_imported"] is False
