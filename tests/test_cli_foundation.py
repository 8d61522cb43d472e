"""``spa-vl sample`` and ``spa-vl validate``: exit codes 0/1/2, --report JSON, --quiet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spa_vl.cli import main


def _break_one_record(src: Path) -> None:
    lines = (src / "train.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    record["question"] = ""
    lines[1] = json.dumps(record)
    (src / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_sample_then_validate_exit_0(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s"
    assert main(["sample", str(out), "--layout", "jsonl", "--train", "30"]) == 0
    assert "wrote the synthetic SPA-VL sample (jsonl layout, 30 train rows)" in capsys.readouterr().out
    report = tmp_path / "r.json"
    assert main(["validate", str(out), "--report", str(report), "--quiet"]) == 0
    d = json.loads(report.read_text(encoding="utf-8"))
    assert (d["read"], d["accepted"], d["quarantined"], d["reconciles"]) == (242, 242, 0, True)
    assert d["format"] == "jsonl"


def test_validate_bad_data_exit_1(sample_copy, tmp_path: Path, capsys) -> None:
    src = sample_copy("jsonl")
    _break_one_record(src)
    report, quarantine = tmp_path / "r.json", tmp_path / "q.jsonl"
    rc = main(["validate", str(src), "--report", str(report), "--quarantine", str(quarantine)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "records  read 747 = accepted 746 + quarantined 1" in err
    assert f"{src / 'train.jsonl'}:2 > question: must hold text, not only whitespace" in err
    d = json.loads(report.read_text(encoding="utf-8"))
    assert (d["read"], d["accepted"], d["quarantined"]) == (747, 746, 1)
    assert d["problems"] == {"empty-text": 1}
    assert d["quarantine"] == str(quarantine)
    [line] = quarantine.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["id"] == "train/000001"


def test_validate_writes_nothing_beside_its_input_unless_asked(sample_copy, capsys) -> None:
    # Issue 12: no quarantine file without --quarantine; the summary says how to keep the rows.
    src = sample_copy("jsonl")
    _break_one_record(src)
    before = sorted(p.name for p in src.parent.iterdir())
    assert main(["validate", str(src)]) == 1
    assert sorted(p.name for p in src.parent.iterdir()) == before
    assert "add --quarantine FILE to keep them (1)" in capsys.readouterr().err


def test_validate_current_folder(sample_copy, monkeypatch) -> None:
    src = sample_copy("hub")
    monkeypatch.chdir(src)
    assert main(["validate", ".", "--quiet"]) == 0
    assert not (src.parent / "hub.quarantine.jsonl").exists()


def test_quiet_prints_nothing(sample_dirs, tmp_path: Path, capsys) -> None:
    q = tmp_path / "q.jsonl"
    assert main(["validate", str(sample_dirs["hub"]), "--quiet", "--quarantine", str(q)]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_not_quiet_prints_progress_and_summary(sample_dirs, tmp_path: Path, capsys) -> None:
    q = tmp_path / "q.jsonl"
    assert main(["validate", str(sample_dirs["hub"]), "--quarantine", str(q)]) == 0
    captured = capsys.readouterr()
    assert "records  read 747 = accepted 747 + quarantined 0" in captured.out
    assert "validate: " in captured.err  # the tqdm bar


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "{tmp}/absent"],
        ["validate", "{tmp}"],  # an empty folder: no layout matches
        ["sample", "{tmp}/s", "--train", "-1"],
        ["sample", "{tmp}/s", "--image-size", "4"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, capsys, argv: list[str]) -> None:
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"spa-vl {argv[0]}: error: ")


def test_detection_error_text(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path), "--quiet"]) == 2
    assert f"spa-vl validate: error: {tmp_path}: not a SPA-VL source." in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["validate", "x", "--format", "csv"], ["sample"], ["frobnicate"], ["sample", "x", "--layout", "zip"]],
)
def test_argparse_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_deep_and_forced_format(sample_dirs, tmp_path: Path) -> None:
    q = tmp_path / "q.jsonl"
    argv = ["validate", str(sample_dirs["jsonl"]), "--format", "jsonl", "--deep", "--quiet"]
    assert main([*argv, "--quarantine", str(q)]) == 0


def test_no_records_is_not_a_pass(sample_dirs, tmp_path: Path, capsys) -> None:
    # a JSONL folder read as the Hub layout has no records: that must not pass silently
    q, r = tmp_path / "q.jsonl", tmp_path / "r.json"
    argv = ["validate", str(sample_dirs["jsonl"]), "--format", "hub", "--quiet"]
    assert main([*argv, "--report", str(r), "--quarantine", str(q)]) == 1
    assert json.loads(r.read_text(encoding="utf-8"))["read"] == 0
    assert capsys.readouterr().err == (f"spa-vl validate: no records found in {sample_dirs['jsonl']} (hub)\n")


def test_console_script(sample_dirs, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("spa-vl")
    if not exe.exists():
        pytest.skip("the spa-vl console script is not installed in this environment")
    q = tmp_path / "q.jsonl"
    result = subprocess.run(
        [str(exe), "validate", str(sample_dirs["rlhf-json"]), "--quiet", "--quarantine", str(q)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.startswith(
        "spa-vl "
    )


def test_workers_option(sample_dirs, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("spa_vl.validate.PARALLEL_MIN_ROWS", 0)  # the sample is small
    r, q = tmp_path / "r.json", tmp_path / "q.jsonl"
    argv = ["validate", str(sample_dirs["hub"]), "--quiet", "--quarantine", str(q)]
    assert main([*argv, "--workers", "2", "--report", str(r)]) == 0
    assert json.loads(r.read_text(encoding="utf-8"))["accepted"] == 747
    assert main([*argv, "--workers", "-1"]) == 2
    assert "--workers must be >= 0" in capsys.readouterr().err
