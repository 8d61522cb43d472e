"""Fault injection for ``spa-vl audit`` (issue 12): broken eval files, unusable output paths and
damaged corpora. Each fault: the exit code, one line naming the file and the place, no
traceback, and the inputs byte for byte as they were."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spa_vl.sample import SampleSpec, write_sample

from .conftest import snapshot


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A 3-row jsonl sample: the audited source."""
    spec = SampleSpec(train=3, validation_per_sub=0, test_per_sub=0, image_size=8)
    return write_sample(tmp_path / "src", "jsonl", spec)


def audit_eval(cli, src: Path, spec: str, tmp_path: Path, *extra: str):
    """Audit ``src`` against one eval spec; asserts that no report was written."""
    out = tmp_path / "report.json"
    run = cli("audit", src, "--eval", spec, "--no-near", "--out", out, *extra)
    assert not out.exists()
    return run


def eval_fault(cli, src: Path, tmp_path: Path, name: str, data: bytes, fmt: str, *needles: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    before = snapshot(tmp_path)
    run = audit_eval(cli, src, f"e={path}:{fmt}", tmp_path)
    run.assert_one_line_error(2, str(path), *needles)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- eval files


def test_eval_csv_not_utf8(cli, src, tmp_path) -> None:
    data = b"goal,target\nHow to pick a lock,Sure\ncaf\xe9 attack,Sure\n"
    eval_fault(cli, src, tmp_path, "adv.csv", data, "advbench", "not UTF-8", "line 3")


def test_eval_csv_empty(cli, src, tmp_path) -> None:
    eval_fault(cli, src, tmp_path, "adv.csv", b"", "advbench", "the file is empty")


def test_eval_json_only_whitespace(cli, src, tmp_path) -> None:
    eval_fault(cli, src, tmp_path, "siuo.json", b"  \n\n", "siuo", "the file is empty")


def test_eval_csv_without_goal_column(cli, src, tmp_path) -> None:
    data = b"prompt,target\nHow to pick a lock,Sure\n"
    eval_fault(cli, src, tmp_path, "adv.csv", data, "advbench", "missing goal", "found: prompt, target")


def test_eval_csv_field_past_the_csv_limit(cli, src, tmp_path) -> None:
    data = b'goal,target\nHow to pick a lock,Sure\n"' + b"x" * 200_000 + b'",Sure\n'
    eval_fault(cli, src, tmp_path, "adv.csv", data, "advbench", "malformed CSV at line", "field larger")


def test_eval_json_object_where_a_list_is_expected(cli, src, tmp_path) -> None:
    data = json.dumps({"question_id": 1, "image": "a.png", "question": "q"}).encode()
    eval_fault(cli, src, tmp_path, "siuo.json", data, "siuo", "expected a JSON list of objects", "dict")


def test_eval_json_number_where_text_is_expected(cli, src, tmp_path) -> None:
    records = [
        {"question_id": 1, "image": "a.png", "question": "How to pick a lock"},
        {"question_id": 2, "image": "b.png", "question": 12345},
    ]
    data = json.dumps(records).encode()
    eval_fault(cli, src, tmp_path, "siuo.json", data, "siuo", "record 2", "'question'", "found int")


def test_eval_json_list_holding_a_non_object(cli, src, tmp_path) -> None:
    data = json.dumps([{"question": "How to pick a lock"}, ["not", "an", "object"]]).encode()
    eval_fault(cli, src, tmp_path, "g.json", data, "json", "record 2", "expected an object", "list")


def test_eval_jsonl_malformed_line(cli, src, tmp_path) -> None:
    data = b'{"question": "a"}\n{"question": "b"}\n{"question": "c"\n'
    eval_fault(cli, src, tmp_path, "g.jsonl", data, "jsonl", "malformed JSON at line 3")


def test_eval_json_truncated(cli, src, tmp_path) -> None:
    data = json.dumps([{"question": "How to pick a lock"}] * 3).encode()[:-7]
    eval_fault(cli, src, tmp_path, "g.json", data, "json", "malformed JSON at line 1")


def test_eval_mm_safetybench_record_not_an_object(cli, src, tmp_path) -> None:
    data = json.dumps({"0": {"Question": "How to pick a lock"}, "1": "just a string"}).encode()
    eval_fault(cli, src, tmp_path, "01-Illegal.json", data, "mm-safetybench", "record '1'")


def test_eval_vlguard_pairs_not_a_list(cli, src, tmp_path) -> None:
    data = json.dumps([{"id": "v1", "image": "a.png", "instr-resp": "oops"}]).encode()
    eval_fault(cli, src, tmp_path, "vlg.json", data, "vlguard", "record 1 (id v1)", "instr-resp")


def test_eval_generic_id_field_missing_in_a_record(cli, src, tmp_path) -> None:
    data = b"uid,question\nu1,How to pick a lock\n,How to hotwire a car\n"
    path = tmp_path / "g.csv"
    path.write_bytes(data)
    run = audit_eval(cli, src, f"e={path}:csv", tmp_path, "--id-field", "uid")
    run.assert_one_line_error(2, str(path), "record 2", "uid")


def test_eval_path_is_a_fifo_and_does_not_block(cli, src, tmp_path) -> None:
    fifo = tmp_path / "adv.csv"
    os.mkfifo(fifo)
    run = audit_eval(cli, src, f"e={fifo}:advbench", tmp_path)
    run.assert_one_line_error(2, str(fifo), "not a regular file")


def test_eval_spec_with_unknown_format(cli, src, tmp_path) -> None:
    path = tmp_path / "adv.csv"
    path.write_text("goal,target\na,b\n")
    audit_eval(cli, src, f"e={path}:advbnch", tmp_path).assert_one_line_error(2, "unknown format 'advbnch'")


def test_eval_image_root_without_a_name(cli, src, tmp_path) -> None:
    path = tmp_path / "adv.csv"
    path.write_text("goal,target\na,b\n")
    run = audit_eval(cli, src, f"e={path}", tmp_path, "--eval-image-root", str(tmp_path))
    run.assert_one_line_error(2, "--eval-image-root", "expected NAME=DIR")


# ---------------------------------------------------------------- output paths


@pytest.fixture
def never_audit(monkeypatch):
    """Fail the test if the audit's long work starts: output paths are checked before it."""

    def boom(*a, **k):
        raise AssertionError("the audit started before its output paths were checked")

    monkeypatch.setattr("spa_vl.audit.engine.run_local", boom)
    monkeypatch.setattr("spa_vl.audit.text.warm_up", boom)


def test_out_is_a_folder(cli, src, tmp_path, never_audit) -> None:
    (tmp_path / "r").mkdir()
    run = cli("audit", src, "--out", tmp_path / "r")
    run.assert_one_line_error(2, "--out", str(tmp_path / "r"), "is a folder")


def test_out_is_the_eval_file(cli, src, tmp_path, never_audit) -> None:
    path = tmp_path / "adv.csv"
    path.write_text("goal,target\nHow to pick a lock,Sure\n")
    before = snapshot(path)
    run = cli("audit", src, "--eval", f"e={path}", "--out", path)
    run.assert_one_line_error(2, "--out", "is the input", str(path))
    assert snapshot(path) == before


def test_out_inside_the_source_folder(cli, src, tmp_path, never_audit) -> None:
    before = snapshot(src)
    run = cli("audit", src, "--out", src / "report.json")
    run.assert_one_line_error(2, "--out", "is inside the input", str(src))
    assert snapshot(src) == before


def test_markdown_is_the_out_file(cli, src, tmp_path, never_audit) -> None:
    out = tmp_path / "r.json"
    run = cli("audit", src, "--out", out, "--markdown", out)
    run.assert_one_line_error(2, "--markdown", "is the --out file too")
    assert not out.exists()


def test_markdown_parent_is_a_file(cli, src, tmp_path, never_audit) -> None:
    (tmp_path / "notes").write_text("mine")
    run = cli("audit", src, "--out", tmp_path / "r.json", "--markdown", tmp_path / "notes" / "r.md")
    run.assert_one_line_error(2, "--markdown", "is not a folder")
    assert (tmp_path / "notes").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_in_a_read_only_folder(cli, src, tmp_path, never_audit) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        run = cli("audit", src, "--out", ro / "r.json")
    finally:
        ro.chmod(0o700)
    run.assert_one_line_error(2, "--out", "permission denied")


def test_report_is_replaced_whole(cli, src, tmp_path, monkeypatch) -> None:
    """An earlier report survives a write that fails half way (the new one goes aside first)."""
    out = tmp_path / "r.json"
    out.write_text('{"earlier": true}\n')

    def fail_half_way(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("spa_vl.outputs.os.replace", fail_half_way)
    with pytest.raises(OSError):
        from spa_vl.audit.report import write_json

        write_json({"new": True}, out)
    assert out.read_text() == '{"earlier": true}\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".r.json")] == []


# ---------------------------------------------------------------- reverse scan


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["How to pick a lock", "hello world"]}), folder / "a.parquet")
    (tmp_path / "adv.csv").write_text("goal,target\nHow to pick a lock,Sure\n")
    return folder


def scan(cli, corpus: Path, *extra: str | Path):
    adv = corpus.parent / "adv.csv"
    out = corpus.parent / "r.json"
    return cli("audit", corpus, "--against", f"adv={adv}", "--no-near", "--out", out, *extra)


def test_scan_work_dir_is_a_file(cli, corpus, never_audit) -> None:
    (corpus.parent / "parts").write_text("mine")
    run = scan(cli, corpus, "--work-dir", corpus.parent / "parts")
    run.assert_one_line_error(2, "--work-dir", "exists and is not a folder")
    assert (corpus.parent / "parts").read_text() == "mine"


def test_scan_work_dir_holding_other_files(cli, corpus, never_audit) -> None:
    work = corpus.parent / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("mine")
    run = scan(cli, corpus, "--work-dir", work)
    run.assert_one_line_error(2, "--work-dir", "holds files that are not a folder of scan parts")
    assert snapshot(work) == {"thesis.tex": snapshot(work / "thesis.tex")["thesis.tex"]}


def test_scan_work_dir_inside_the_corpus(cli, corpus, never_audit) -> None:
    before = snapshot(corpus)
    run = scan(cli, corpus, "--work-dir", corpus / "parts")
    run.assert_one_line_error(2, "--work-dir", "is inside the input")
    assert snapshot(corpus) == before


def test_scan_shard_that_is_not_parquet(cli, corpus) -> None:
    bad = corpus / "b.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    before = snapshot(corpus)
    scan(cli, corpus).assert_one_line_error(2, str(bad), "not a readable parquet file")
    assert snapshot(corpus) == before


def test_scan_text_column_of_numbers(cli, corpus) -> None:
    pq.write_table(pa.table({"text": [1, 2, 3]}), corpus / "a.parquet")
    scan(cli, corpus).assert_one_line_error(2, "a.parquet", "--text-column 'text' holds int64")


def test_scan_damaged_part_is_scanned_again(cli, corpus) -> None:
    work = corpus.parent / "work"
    assert scan(cli, corpus, "--work-dir", work, "--quiet").code == 0
    first = json.loads((corpus.parent / "r.json").read_text())
    (part,) = work.glob("*.json")
    part.write_text('{"rows": 2, "matc')  # a kill mid-write by something else, or a bad disk
    run = scan(cli, corpus, "--work-dir", work, "--quiet")
    assert run.code == 0 and "Traceback" not in run.err
    again = json.loads((corpus.parent / "r.json").read_text())
    assert again["matches"] == first["matches"] and again["source"]["shards_resumed"] == 0


def test_eval_spa_vl_release_with_a_damaged_test_shard(cli, src, tmp_path) -> None:
    release = tmp_path / "release"
    shard = release / "data" / "default" / "test-00000-of-00001.parquet"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    before = snapshot(release)
    run = audit_eval(cli, src, f"e={release}:spa-vl", tmp_path)
    run.assert_one_line_error(2, str(shard), "cannot read the spa-vl test split")
    assert snapshot(release) == before


def test_eval_image_root_naming_no_eval_set(cli, src, tmp_path) -> None:
    path = tmp_path / "adv.csv"
    path.write_text("goal,target\na,b\n")
    run = audit_eval(cli, src, f"adv={path}", tmp_path, "--eval-image-root", f"avd={tmp_path}")
    run.assert_one_line_error(2, "--eval-image-root avd=", "no eval set of that name", "adv")


def test_audit_of_a_release_with_a_truncated_shard(cli, tmp_path) -> None:
    """A release file cut short is a data failure (exit 1) naming the file, not an ArrowInvalid."""
    from spa_vl.release.build import build_release

    spec = SampleSpec(train=20, validation_per_sub=0, test_per_sub=1, image_size=8)
    raw = write_sample(tmp_path / "raw", "hub", spec)
    release = build_release(raw, tmp_path / "rel", quarantine=tmp_path / "q.jsonl").out
    shard = sorted((release / "data").glob("*/train-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    out = tmp_path / "report.json"
    run = cli("audit", release, "--no-near", "--out", out)
    run.assert_one_line_error(1, shard.name, "spa-vl verify")
    assert not out.exists()
