"""The wheel carries schema/ and dataset_card/ and works installed on its own: build it, install
it into a throwaway venv (system site packages for the dependencies, never the editable
checkout) and validate a record with the installed package, from a temporary working folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_has_an_init() -> None:
    """``find_packages`` skips a folder without ``__init__.py``: the wheel would lack it."""
    missing = [
        d.relative_to(ROOT).as_posix()
        for d in sorted((ROOT / "src/spa_vl").rglob("*"))
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")) and not (d / "__init__.py").exists()
    ]
    assert missing == [], f"no __init__.py (left out of the wheel): {missing}"


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


# What a source distribution holds; building from a copy leaves the checkout untouched
# (no build/ or egg-info written into it while others work there).
PROJECT_FILES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")
PROJECT_DIRS = ("src", "schema", "dataset_card")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    project, out = tmp / "project", tmp / "dist"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, project / name, ignore=ignore)
    for name in PROJECT_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, project / name)
    # --no-build-isolation: setuptools is already here and PyPI may be unreachable.
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    _run([*cmd, "-w", str(out), str(project)], cwd=tmp)
    [whl] = out.glob("spa_vl-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_carries_the_resources(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "spa_vl/_resources/schema/taxonomy.json",
        "spa_vl/_resources/schema/record.schema.json",
        "spa_vl/__init__.py",
        "spa_vl/validate/__init__.py",
        "spa_vl/validate/batches.py",
        "spa_vl/sources/hub_parquet.py",
    ):
        assert required in names, required
    cards = [n for n in names if n.startswith("spa_vl/_resources/dataset_card/")]
    shipped = sorted(
        p.relative_to(ROOT / "dataset_card").as_posix()
        for p in (ROOT / "dataset_card").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert shipped, "dataset_card/ is empty in the checkout"
    assert sorted(n.removeprefix("spa_vl/_resources/dataset_card/") for n in cards) == shipped
    with zipfile.ZipFile(wheel) as zf:
        shipped_tax = json.loads(zf.read("spa_vl/_resources/schema/taxonomy.json"))
    assert shipped_tax == json.loads((ROOT / "schema/taxonomy.json").read_text(encoding="utf-8"))
    assert not any(n.startswith(("tests/", "bench/", "schema/")) for n in names)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv with the wheel installed; returns the venv folder."""
    tmp_path = tmp_path_factory.mktemp("installed")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # Dependencies come from the interpreter running the tests (its site-packages, via a
    # .pth file), spa_vl itself only from the wheel: the editable install's finder is not
    # carried over.
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
    ).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", site, str(wheel)],
        cwd=tmp_path,
    )
    return env_dir


@pytest.mark.slow
def test_installed_wheel_validates_a_record(installed: Path, tmp_path: Path) -> None:
    env_dir, python = installed, installed / "bin" / "python"
    work = tmp_path / "work"
    work.mkdir()
    script = textwrap.dedent(
        """
        import io, json, sys
        import spa_vl
        from PIL import Image
        from spa_vl.sources import SourceRow
        from spa_vl.taxonomy import load_taxonomy
        from spa_vl.validate import RecordValidator
        from spa_vl.validate.schema import schema_validator

        buf = io.BytesIO()
        Image.new("RGB", (32, 24), (1, 2, 3)).save(buf, "JPEG")
        record = {
            "id": "validation/000001", "split": "validation",
            "image": {"bytes": buf.getvalue(), "path": "1.jpg"}, "image_name": None,
            "question": "What is shown?", "chosen": "A box.", "rejected": "A bomb.",
            "class1": "Malicious Use", "class2": "Security threats", "class3": "cyber",
            "eval_set": None,
        }
        bad = {**record, "id": "validation/000002", "class3": "scams"}
        v = RecordValidator()
        good_problems, image = v.check(SourceRow("x.jsonl", 1, record))
        bad_problems, _ = v.check(SourceRow("x.jsonl", 2, bad))
        schema_validator()
        print(json.dumps({
            "file": spa_vl.__file__,
            "version": spa_vl.__version__,
            "good": [str(p) for p in good_problems],
            "bad": [str(p) for p in bad_problems],
            "subcategories": len(load_taxonomy().names("subcategory")),
        }))
        """
    )
    result = _run([str(python), "-c", script], cwd=work, env={"PATH": str(env_dir / "bin")})
    out = json.loads(result.stdout.strip().splitlines()[-1])
    installed = Path(out["file"]).resolve()
    assert installed.is_relative_to(env_dir.resolve()), installed  # the wheel's, not the checkout
    assert not installed.is_relative_to(ROOT)
    assert out["good"] == []
    assert out["bad"] == ["x.jsonl:2 > class3: 'scams' is not a SPA-VL subcategory"]
    assert out["subcategories"] == 53


@pytest.mark.slow
def test_installed_wheel_cli(installed: Path, sample_dirs, tmp_path: Path) -> None:
    python, env = installed / "bin" / "python", {"PATH": str(installed / "bin")}
    version = _run([str(python), "-m", "spa_vl.cli", "--version"], cwd=tmp_path, env=env)
    assert version.stdout.strip().startswith("spa-vl ")
    report = tmp_path / "r.json"
    argv = [str(python), "-m", "spa_vl.cli", "validate", str(sample_dirs["rlhf-json"]), "--quiet"]
    _run([*argv, "--report", str(report), "--quarantine", str(tmp_path / "q.jsonl")], tmp_path, env)
    assert json.loads(report.read_text(encoding="utf-8"))["accepted"] == 747
