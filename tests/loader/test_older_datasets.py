"""A v2 release loads with an older ``datasets`` (2.19.2, on pyarrow 15), in a throwaway venv
with none of our code: the same rows, in the same order, and the same Features per config and
split as the ``datasets`` installed here gives.

The venv is made once per machine under ``SPA_VL_TEST_CACHE`` (default ``~/.cache/spa-vl-tests``)
from PyPI; without a registry to install from the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

OLD = {"datasets": "2.19.2", "pyarrow": "15.0.2"}
PINS = [
    f"datasets=={OLD['datasets']}",
    f"pyarrow=={OLD['pyarrow']}",
    "numpy<2",
    "huggingface_hub<0.25",
    "pillow",
]

# What a user's script would do: load every config, print per split the ids in order, the row
# count, the Features in words, and the first image's size (decoded by that datasets' Image).
PROBE = textwrap.dedent(
    """
    import json, sys
    import datasets
    datasets.disable_progress_bars()

    def kind(f):
        name = type(f).__name__
        if name == "ClassLabel":
            return ["ClassLabel", f.names]
        if name == "Value":
            return ["Value", f.dtype]
        return [name]

    out = {"version": datasets.__version__}
    for config in sys.argv[2:]:
        ds = datasets.load_dataset(sys.argv[1], config)
        out[config] = {
            split: {
                "ids": list(d["id"]),  # a Column in datasets 4+
                "features": {k: kind(v) for k, v in d.features.items()},
                "image_size": list(d[0]["image"].size),
            }
            for split, d in ds.items()
        }
    print(json.dumps(out))
    """
)


def _old_python() -> Path:
    cache = Path(os.environ.get("SPA_VL_TEST_CACHE", Path.home() / ".cache" / "spa-vl-tests"))
    venv = cache / f"venv-datasets-{OLD['datasets']}-pyarrow-{OLD['pyarrow']}"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{venv.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    pip = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS],
        capture_output=True,
        text=True,
        check=False,
    )
    if pip.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        if any(w in pip.stderr for w in ("Could not find a version", "connection", "Connection", "resolve")):
            pytest.skip(f"cannot install {', '.join(PINS)} from the package index: {pip.stderr[-500:]}")
        raise AssertionError(f"pip install of {PINS} failed:\n{pip.stderr[-3000:]}")
    tmp.rename(venv)  # whole, or not at all
    # venv scripts name the folder they were made in: the interpreter itself does not care
    return python


def _probe(python: Path, release: Path, configs: list[str], cwd: Path) -> dict:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "HF_", "SPA_VL"))
    }
    env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(cwd / "cache"), "HOME": str(cwd)}
    proc = subprocess.run(
        [str(python), "-c", PROBE, str(release), *configs],
        cwd=cwd,  # not the repository: nothing of ours is importable there
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_v2_release_loads_the_same_with_datasets_2_19(releases, tmp_path: Path) -> None:
    from spa_vl.release import layout
    from spa_vl.taxonomy import CONFIGS

    release = releases["hub"]
    configs = list(CONFIGS)
    python = _old_python()
    (tmp_path / "new").mkdir()
    (tmp_path / "old").mkdir()
    new = _probe(Path(sys.executable), release, configs, tmp_path / "new")
    old = _probe(python, release, configs, tmp_path / "old")
    assert old.pop("version") == OLD["datasets"] and new.pop("version") != OLD["datasets"]
    assert old == new
    # Each row once: the domain configs and the unlabeled rows make up `default`, in that order.
    for split, got in new["default"].items():
        parts = [new[c][split]["ids"] for c in configs[1:] if split in new[c]]
        unlabeled = [i for i in got["ids"] if not any(i in p for p in parts)]
        assert got["ids"] == [i for p in parts for i in p] + unlabeled
        assert len(set(got["ids"])) == len(got["ids"])
        if split == "train":
            assert unlabeled and (release / layout.DATA / layout.UNLABELED).is_dir()
