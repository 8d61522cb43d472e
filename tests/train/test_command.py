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


# --- Errors before any model loads -------------------------------------------------------------

CHECK = """
import contextlib, io, json, sys, time
from spa_vl.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    heavy = [m for m in ("torch", "transformers", "trl") if m in sys.modules]
    results.append([code, time.perf_counter() - t, heavy, err.getvalue().splitlines()])
print(json.dumps(results))
"""


def _check_all(argvs: list[list[str]], **env: str) -> list[tuple[int, float, list[str], list[str]]]:
    """Run each ``spa-vl ARGV`` offline in one fresh process: for each, the exit code, seconds,
    heavy modules imported so far and stderr lines."""
    import json
    import os

    environ = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    result = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )
    assert result.returncode == 0, result.stderr
    return [tuple(r) for r in json.loads(result.stdout)]


def _check(argv: list[str], **env: str) -> tuple[int, float, list[str], list[str]]:
    return _check_all([argv], **env)[0]


def _dpo_argv(model: str, data, out, *extra: str) -> list[str]:
    return ["train", "dpo", "--model", model, "--data", str(data), "--output-dir", str(out), *extra]


@pytest.fixture
def model_dir(tmp_path):
    """A folder that passes the cheap model check (a config.json); never loaded here."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_a_wrong_argument_is_one_line_and_exit_2_before_torch(release, model_dir, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("not ours")
    out, model = tmp_path / "out", str(model_dir)
    cases = [  # (argv, the one line expected)
        (_dpo_argv(model, tmp_path / "nope", out), f"--data {tmp_path}/nope: no such folder"),
        (_dpo_argv(model, tmp_path, out), f"--data {tmp_path}: not a spa-vl release"),
        (
            _dpo_argv(model, release, out, "--config", "nope"),
            f"--config nope: not a config of {release} (it has: default)",
        ),
        (
            _dpo_argv(model, release, out, "--split", "validation"),
            f"--split validation: config default of {release} has no validation split",
        ),
        (_dpo_argv(model, release, release), f"--output-dir {release} is the input {release}"),
        (_dpo_argv(model, release, mine), f"--output-dir {mine}: holds files that are not a"),
        (_dpo_argv(model, release, model_dir), f"--output-dir {model_dir} is the input"),
        (_dpo_argv("./nope", release, out), "--model ./nope: no such folder"),
        (_dpo_argv(str(mine / "notes.txt"), release, out), f"--model {mine}/notes.txt: is a file"),
        (_dpo_argv(str(mine), release, out), f"--model {mine}: not a model folder (no config.json)"),
        (_dpo_argv("x", release, out), "--model x: no such folder, and not in the local Hub cache"),
        (
            _dpo_argv("org/name", release, out),
            "--model org/name: no such folder, and not in the local Hub cache",
        ),
        (_dpo_argv("a/b/c", release, out), "--model a/b/c: no such folder"),
    ]
    results = _check_all([argv for argv, _ in cases])
    for (argv, expected), (code, seconds, heavy, stderr) in zip(cases, results, strict=True):
        assert code == 2, argv
        assert len(stderr) == 1, stderr
        assert stderr[0].startswith("spa-vl train: error: "), stderr
        assert expected in stderr[0], stderr
        assert seconds < 5, (argv, seconds)
        assert heavy == [], argv  # nothing has loaded torch or transformers
    assert not out.exists()


def test_an_unreachable_hub_is_one_line_and_exit_2_without_retries(release, tmp_path):
    # Not offline, but nothing answers: one failed request, not a minute of retries.
    code, seconds, heavy, stderr = _check(
        _dpo_argv("org/name", release, tmp_path / "out"),
        HF_HUB_OFFLINE="0",
        HF_ENDPOINT="http://127.0.0.1:9",
    )
    assert code == 2 and len(stderr) == 1, stderr
    assert (
        "--model org/name: no such folder, and the Hub (http://127.0.0.1:9) cannot be reached" in (stderr[0])
    )
    assert heavy == [] and seconds < 5


def test_generate_checks_its_arguments_first(release, model_dir, tmp_path):
    argv = ["train", "generate", "--model", str(model_dir), "--data", str(release)]
    code, _, _, stderr = _check([*argv, "--out", str(tmp_path / "a.jsonl"), "--split", "validation"])
    assert code == 2 and len(stderr) == 1 and "no validation split" in stderr[0]
    (tmp_path / "answers").mkdir()
    code, _, heavy, stderr = _check([*argv, "--out", str(tmp_path / "answers")])
    assert code == 2 and len(stderr) == 1 and "/answers: is a folder" in stderr[0]
    assert heavy == []


def test_an_earlier_run_folder_is_accepted_as_output(tmp_path):
    from spa_vl.train.checks import is_run_folder

    run = tmp_path / "run"
    run.mkdir()
    assert not is_run_folder(run)
    (run / "metrics.jsonl").write_text("")
    assert is_run_folder(run)
    (run / "metrics.jsonl").unlink()
    (run / "checkpoint-500").mkdir()
    assert is_run_folder(run)


def test_release_configs_and_split_expressions_are_read_from_the_card(release):
    from spa_vl.train.checks import check_release, release_configs, split_names

    assert release_configs(release) == {"default": ["train", "test"]}
    assert split_names("train[:1000]") == ["train"]
    assert split_names("train+test[10%:]") == ["train", "test"]
    check_release(release, "default", "train[:10]")
