"""The reverse scan (a corpus of parquet shards against SPA-VL's test + validation items) and
the local engine's process pool, on the sample release."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spa_vl.audit.evalsets import load_eval_set
from spa_vl.audit.scan import load_spa_vl, run_scan
from spa_vl.audit.settings import AuditSettings
from spa_vl.cli import main


@pytest.fixture(scope="module")
def release(sample_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spa_vl.release.build import build_release

    return build_release(sample_dirs["hub"], tmp_path_factory.mktemp("rel") / "release").out


def _questions(release: Path, split: str) -> list[dict]:
    """The rows of ``split`` in id order (the source's order: layout v2 groups them by domain)."""
    files = sorted(release.glob(f"data/*/{split}-*.parquet"))  # layout v2: `default` is every folder
    rows = [r for f in files for r in pq.read_table(f, columns=["id", "question"]).to_pylist()]
    return sorted(rows, key=lambda r: r["id"])


def _background(k: int, n: int) -> list[str]:
    return [f"shard {k} line {i}: notes on sourdough starters, tomato beds and rain" for i in range(n)]


@pytest.fixture(scope="module")
def planted(release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set]:
    """Four shards of background text with SPA-VL test and validation questions planted: exact,
    upper-cased, one word changed. Returns the corpus and the expected (row id, eval id)."""
    test, val = _questions(release, "test"), _questions(release, "validation")
    corpus = tmp_path_factory.mktemp("corpus")
    expected = set()
    plants = {
        0: [(5, test[0], "exact"), (50, val[3], "exact")],
        1: [(7, test[20], "upper")],
        2: [],  # a shard with nothing in it
        3: [(9, test[40], "edit"), (99, val[60], "exact")],
    }
    for k, items in plants.items():
        texts = _background(k, 400)
        for row, item, how in items:
            q = item["question"]
            if how == "upper":
                q = q.upper()
            elif how == "edit":
                words = q.split()
                assert len(words) >= 8, "pick a longer question for the one-word edit"
                words[len(words) // 2] = "zebra"
                q = " ".join(words)
            texts[row] = q
            expected.add((f"doc-{k}-{row}", item["id"]))
        ids = [f"doc-{k}-{i}" for i in range(len(texts))]
        pq.write_table(pa.table({"content": texts, "doc_id": ids}), corpus / f"shard-{k:02d}.parquet")
    return corpus, expected


def _scan(corpus: Path, release: Path, out: Path, **kw) -> dict:
    evals = [load_spa_vl(release, images=False)]
    return run_scan(
        str(corpus), evals, AuditSettings(), out, text_column="content", id_column="doc_id",
        progress=False, **kw,
    )  # fmt: skip


def _stable(report: dict) -> dict:
    """A report without what legitimately differs between runs (timings, resume counters)."""
    r = json.loads(json.dumps(report))
    r["summary"].pop("seconds")
    r["source"].pop("shards_resumed")
    return r


def test_the_scan_finds_exactly_the_planted_items(planted, release: Path, tmp_path: Path) -> None:
    corpus, expected = planted
    report = _scan(corpus, release, tmp_path / "r.json")
    got = {(m["source_id"], m["eval_id"]) for m in report["matches"]}
    assert got == expected
    methods = {m["source_id"]: m["method"] for m in report["matches"]}
    assert methods["doc-3-9"] == "near" and methods["doc-0-5"] == "exact"
    assert report["source"]["rows"] == 1600 and report["source"]["shards"] == 4
    # the index holds SPA-VL's test + validation questions only, and says how big it is
    idx = report["summary"]["index"]
    assert idx["eval_items"] == {"spa_vl": {"texts": 212, "images": 0}}
    assert idx["index_bytes_per_reference_item"] == pytest.approx(idx["index_bytes"] / 212, abs=0.1)


def test_a_killed_then_resumed_scan_gives_the_same_report(planted, release: Path, tmp_path: Path) -> None:
    corpus, _ = planted
    full = _scan(corpus, release, tmp_path / "full.json")
    out = tmp_path / "resumed.json"
    partial = _scan(corpus, release, out, stop_after=1)  # "killed" after the first shard
    parts = sorted((tmp_path / "resumed.json.parts").glob("*.json"))
    assert len(parts) == 1 and partial["source"]["shards_complete"] == 1
    first = parts[0].stat().st_mtime_ns
    resumed = _scan(corpus, release, out)
    assert resumed["source"]["shards_resumed"] == 1  # the finished shard was not scanned again
    assert parts[0].stat().st_mtime_ns == first
    assert _stable(resumed) == _stable(full)


def test_changed_settings_do_not_reuse_parts(planted, release: Path, tmp_path: Path) -> None:
    corpus, _ = planted
    _scan(corpus, release, tmp_path / "r.json")
    evals = [load_spa_vl(release, images=False)]
    again = run_scan(
        str(corpus), evals, AuditSettings(near=False), tmp_path / "r.json", text_column="content",
        id_column="doc_id", progress=False,
    )  # fmt: skip
    assert again["source"]["shards_resumed"] == 0
    assert "doc-3-9" not in {m["source_id"] for m in again["matches"]}  # the near copy


def test_cli_scan_with_two_workers_equals_one(planted, release: Path, tmp_path: Path) -> None:
    corpus, expected = planted
    reports = []
    for w in ("1", "2"):
        out = tmp_path / f"w{w}.json"
        rc = main([
            "audit", str(corpus), "--against", f"spa_vl={release}", "--text-column", "content",
            "--id-column", "doc_id", "--workers", w, "--out", str(out), "--quiet",
        ])  # fmt: skip
        assert rc == 0
        reports.append(_stable(json.loads(out.read_text())))
    assert reports[0] == reports[1]
    assert {(m["source_id"], m["eval_id"]) for m in reports[0]["matches"]} == expected


def test_column_mapping_errors_name_the_missing_columns(
    planted, release: Path, tmp_path: Path, capsys
) -> None:
    corpus, _ = planted
    rc = main([
        "audit", str(corpus), "--against", f"spa_vl={release}", "--text-column", "body",
        "--id-column", "uid", "--out", str(tmp_path / "x.json"), "--quiet",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert "--text-column 'body'" in err and "--id-column 'uid'" in err
    assert "content, doc_id" in err  # what the shard does have
    assert not (tmp_path / "x.json").exists()


def test_against_spa_vl_without_a_path_is_a_usage_error(planted, tmp_path: Path, capsys) -> None:
    corpus, _ = planted
    rc = main(["audit", str(corpus), "--against", "spa_vl", "--out", str(tmp_path / "x.json")])
    assert rc == 2 and "spa_vl=PATH" in capsys.readouterr().err


def test_local_pool_report_equals_single_process(release: Path, tmp_path: Path) -> None:
    reports = []
    for w in ("1", "2"):
        out = tmp_path / f"w{w}.json"
        rc = main([
            "audit", str(release), "--eval", f"spa={release}:spa-vl", "--workers", w,
            "--batch-size", "128", "--out", str(out), "--quiet",
        ])  # fmt: skip
        assert rc == 0
        r = json.loads(out.read_text())
        r["summary"].pop("seconds")
        reports.append(r)
    assert reports[0] == reports[1]
    assert reports[0]["summary"]["by_scope"].get("eval", 0) > 0  # the test split matches itself


def test_missing_ray_names_the_distributed_extra(monkeypatch) -> None:
    import sys

    from spa_vl.audit.executor import RayMissingError, import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(RayMissingError, match=r"spa-vl\[distributed\]"):
        import_ray()


def test_eval_adapter_spec_works_as_against(planted, release: Path, tmp_path: Path) -> None:
    """Any eval adapter spec works with --against; the spa-vl adapter takes the test split only."""
    corpus, expected = planted
    out = tmp_path / "a.json"
    rc = main([
        "audit", str(corpus), "--against", f"sv={release}:spa-vl", "--text-column", "content",
        "--id-column", "doc_id", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert rc == 0
    test_ids = {it.id for it in load_eval_set("x", release, "spa-vl").items}
    got = {(m["source_id"], m["eval_id"]) for m in json.loads(out.read_text())["matches"]}
    assert got == {(s, e) for s, e in expected if e in test_ids}


def test_a_scan_killed_with_sigkill_resumes_to_the_same_report(release: Path, tmp_path: Path) -> None:
    """A real kill: the CLI in a subprocess, SIGKILLed once its first shard part is written."""
    import subprocess
    import sys
    import time

    test = _questions(release, "test")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k in range(8):
        texts = _background(k, 20_000)
        texts[k] = test[k]["question"]
        pq.write_table(pa.table({"text": texts}), corpus / f"s{k}.parquet")
    args = ["audit", str(corpus), "--against", f"spa_vl={release}", "--batch-size", "500", "--quiet"]
    cli = "import sys; from spa_vl.cli import main; sys.exit(main(sys.argv[1:]))"
    out = tmp_path / "killed.json"
    parts = tmp_path / "killed.json.parts"
    proc = subprocess.Popen([sys.executable, "-c", cli, *args, "--out", str(out)])
    deadline = time.monotonic() + 60
    while not any(parts.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    written = len(list(parts.glob("*.json")))
    if written == 8:
        pytest.skip("the scan finished before the kill (a very fast machine)")
    assert written >= 1 and not out.exists()
    assert main([*args, "--out", str(out)]) == 0
    resumed = json.loads(out.read_text())
    assert resumed["source"]["shards_resumed"] == written
    assert main([*args, "--out", str(tmp_path / "full.json")]) == 0
    assert _stable(resumed) == _stable(json.loads((tmp_path / "full.json").read_text()))
    assert len(resumed["matches"]) == 8


def test_eval_and_against_together_are_a_usage_error(planted, release: Path, tmp_path: Path, capsys) -> None:
    corpus, _ = planted
    rc = main([
        "audit", str(corpus), "--against", f"spa_vl={release}", "--eval", f"x={release}:spa-vl",
        "--out", str(tmp_path / "x.json"),
    ])  # fmt: skip
    assert rc == 2 and "--against" in capsys.readouterr().err


def test_the_scan_finds_planted_images_in_an_image_column(release: Path, tmp_path: Path) -> None:
    file = next(release.glob("data/*/test-*.parquet"))
    test = pq.read_table(file, columns=["id", "question", "image"]).to_pylist()
    train = max(release.glob("data/*/train-*.parquet"), key=lambda p: p.stat().st_size)
    background = [r["image"]["bytes"] for r in pq.read_table(train, columns=["image"]).to_pylist()[:30]]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    images = [*background[:29], test[3]["image"]["bytes"]]  # the last row: a SPA-VL test image
    texts = [f"caption {i} of a garden" for i in range(30)]
    pq.write_table(pa.table({"caption": texts, "img": images}), corpus / "s0.parquet")
    out = tmp_path / "img.json"
    rc = main([
        "audit", str(corpus), "--against", f"spa_vl={release}", "--images", "--text-column", "caption",
        "--image-column", "img", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert rc == 0
    report = json.loads(out.read_text())
    exact = {(m["source_id"], m["eval_id"]) for m in report["matches"] if m["method"] == "image-exact"}
    assert exact == {("s0.parquet:29", test[3]["id"])}
    assert report["source"]["images_hashed"] == 30
