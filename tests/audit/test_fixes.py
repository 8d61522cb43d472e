"""Issue 16's fixes found as a new user: markdown headings, --fail-on counts rows, --eval
specs that name no path or an unknown format, and the compile notice during the wait."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from spa_vl.audit import text as text_mod
from spa_vl.audit.evalsets import EvalSetError, parse_eval_spec
from spa_vl.audit.report import to_markdown
from spa_vl.cli import main
from spa_vl.sample import SampleSpec, write_sample

PLANTED = "Explain how to pick the lock of a neighbour's front door without a key"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A 3-row jsonl sample whose first train question is ``PLANTED``, and two eval CSVs that
    both hold it (one row, two matches)."""
    src = write_sample(tmp_path / "src", "jsonl", SampleSpec(train=3, validation_per_sub=0,
                                                             test_per_sub=0, image_size=8))  # fmt: skip
    train = src / "train.jsonl"
    lines = train.read_text(encoding="utf-8").splitlines()
    first = dict(json.loads(lines[0]), question=PLANTED)
    train.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n", encoding="utf-8")
    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text(f"question\nSomething else entirely\n{PLANTED}\n")
    return tmp_path


def _match(scope: str, eval_set: str, source_id: str) -> dict:
    return {
        "scope": scope, "eval_set": eval_set, "source_id": source_id, "field": "question",
        "eval_id": f"{eval_set}:1", "eval_field": "question", "method": "exact", "score": 1.0,
        "source_text": source_id, "eval_text": "x",
    }  # fmt: skip


def test_markdown_lists_each_example_under_its_own_heading() -> None:
    # report order interleaves the sets: a, b, a, leak, a
    matches = [_match("eval", "a", "r1"), _match("eval", "b", "r2"), _match("eval", "a", "r3"),
               _match("leak", "validation", "r4"), _match("eval", "a", "r5")]  # fmt: skip
    report = {
        "source": {"path": "src", "format": "jsonl", "rows": 5},
        "eval_sets": [],
        "summary": {"matches": 5, "source_rows_matched": 5, "groups": [], "settings": {}},
        "matches": matches,
    }
    md = to_markdown(report)
    sections = md.split("\n### ")[1:]
    heads = [s.splitlines()[0] for s in sections]
    assert heads == ["eval: a", "eval: b", "leak: validation"]
    body = {s.splitlines()[0]: s for s in sections}
    assert all(f"| {r} |" in body["eval: a"] for r in ("r1", "r3", "r5"))
    assert "| r2 |" in body["eval: b"] and "| r2 |" not in body["eval: a"]
    assert "| r4 |" in body["leak: validation"].split("## Settings")[0]
    assert "| r5 |" not in body["leak: validation"]


def test_fail_on_counts_source_rows_not_matches(tiny: Path, capsys) -> None:
    args = ["audit", tiny / "src", "--eval", f"a={tiny / 'a.csv'}", "--eval", f"b={tiny / 'b.csv'}",
            "--scopes", "eval", "--no-near", "--out", tiny / "r.json"]  # fmt: skip
    args = [str(a) for a in args]
    assert main([*args, "--fail-on", "1"]) == 0  # 1 row (2 matches) is within a budget of 1 row
    summary = json.loads((tiny / "r.json").read_text())["summary"]
    assert (summary["matches"], summary["source_rows_matched"]) == (2, 1)
    capsys.readouterr()
    assert main([*args, "--fail-on", "0"]) == 1
    assert "1 rows matched (2 matches) > --fail-on 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("advbench", "expected NAME=PATH[:FORMAT]"),
        ("adv=", "no PATH after '='"),
        ("=x.csv", "the NAME before '=' is empty"),
        ("adv={csv}:advbnch", "unknown format 'advbnch'"),
        ("adv=missing.csv:jsn", "unknown format 'jsn'"),
    ],
)
def test_eval_spec_says_what_is_wrong(spec: str, needle: str, tiny: Path, capsys) -> None:
    spec = spec.format(csv=tiny / "a.csv")
    with pytest.raises(EvalSetError) as err:
        parse_eval_spec(spec)
    assert needle in str(err.value) and "no such file" not in str(err.value)
    code = main(["audit", str(tiny / "src"), "--eval", spec, "--out", str(tiny / "r.json")])
    err_text = capsys.readouterr().err
    assert code == 2 and needle in err_text and "Traceback" not in err_text
    assert not (tiny / "r.json").exists()


def test_eval_spec_still_takes_a_bare_path_and_a_known_format(tiny: Path) -> None:
    csv = str(tiny / "a.csv")
    assert parse_eval_spec(csv) == ("", csv, "auto")
    assert parse_eval_spec(f"x={csv}:csv") == ("x", csv, "csv")


def test_compile_notice_comes_during_the_wait_not_after(monkeypatch, capsys) -> None:
    from spa_vl.commands import audit as audit_cmd

    build = text_mod.NGramIndex.build

    def slow_build(*a, **k):  # a compile: the notice must be out while this still runs
        time.sleep(0.5)
        print("BUILD DONE", file=sys.stderr)
        return build(*a, **k)

    monkeypatch.setattr(text_mod.NGramIndex, "build", staticmethod(slow_build))
    monkeypatch.setattr(audit_cmd, "COMPILE_NOTICE_AFTER", 0.05)
    audit_cmd._warm_up(quiet=False)
    err = capsys.readouterr().err
    assert "compiling the near-duplicate kernels" in err
    assert err.index("compiling the near-duplicate kernels") < err.index("BUILD DONE")
    assert err.index("BUILD DONE") < err.index("compiled the near-duplicate kernels in")
    # quick (cached) kernels and --quiet: nothing is said
    monkeypatch.setattr(text_mod.NGramIndex, "build", staticmethod(build))
    monkeypatch.setattr(audit_cmd, "COMPILE_NOTICE_AFTER", 30.0)
    audit_cmd._warm_up(quiet=False)
    audit_cmd._warm_up(quiet=True)
    assert capsys.readouterr().err == ""


def test_out_may_go_inside_a_release_but_not_into_its_data(tmp_path: Path, capsys) -> None:
    """A release is read from data/ alone, so <release>/audit/report.json (where `spa-vl card`
    looks) is allowed and its folder made; a report inside data/ would be an input."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    release = tmp_path / "release"
    (release / "data" / "default").mkdir(parents=True)
    table = pa.table({"id": ["train/0", "train/1"], "question": [PLANTED, "Something else"]})
    pq.write_table(table, release / "data" / "default" / "train-00000-of-00001.parquet")
    (tmp_path / "a.csv").write_text(f"question\n{PLANTED}\n")
    args = ["audit", str(release), "--eval", f"a={tmp_path / 'a.csv'}", "--no-near", "--quiet"]
    assert main([*args, "--out", str(release / "audit" / "report.json")]) == 0
    assert json.loads((release / "audit" / "report.json").read_text())["summary"]["matches"] == 1
    assert main([*args, "--out", str(release / "data" / "report.json")]) == 2
    assert "is inside the input" in capsys.readouterr().err
    assert not (release / "data" / "report.json").exists()
