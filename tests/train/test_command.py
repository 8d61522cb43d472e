"""``spa-vl train`` without the extra: an install hint and exit code 2, no heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "trl", "peft")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("subcommand, missing", [("dpo", "trl"), ("dpo", "peft"), ("generate", "torch")])
def test_without_the_extra_the_command_names_it_and_exits_2(missing, subcommand, tmp_path):
    out = "--output-dir" if subcommand == "dpo" else "--out"
    argv = ["train", subcommand, "--model", "m", "--data", str(tmp_path), out, str(tmp_path / "o")]
    # A None entry in sys.modules makes `import trl` fail as if it were not installed.
    result = _run(
        f"import sys; sys.modules[{missing!r}] = None\nfrom spa_vl.cli import main\nsys.exit(main({argv!r}))"
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'spa-vl[train]'" in result.stderr
    assert missing in result.stderr
    assert not (tmp_path / "o").exists()


def test_the_command_module_imports_no_heavy_package():
    result = _run(
        "import argparse, sys\n"
        "import spa_vl.commands.train as t, spa_vl.train.settings, spa_vl.train.template\n"
        "t.add_arguments(argparse.ArgumentParser())\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_train_help_works_without_the_extra():
    result = _run(
        "import sys; sys.modules['torch'] = sys.modules['trl'] = None\n"
        "from spa_vl.cli import main\n"
        "main(['train', 'dpo', '--help'])"
    )
    assert result.returncode == 0, result.stderr
    assert "--lora" in result.stdout and "--max-length" in result.stdout
