"""``--engine ray``: the same reports as the local engine, forward and reverse (Ray in local
mode with 2 CPUs, started once for the module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spa_vl.cli import main

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_local() -> Iterator[None]:
    from spa_vl.audit.executor import ray_session

    if ray.is_initialized():
        ray.shutdown()
    with ray_session(num_cpus=2):  # shut down on exit: it started this session
        yield
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def release(sample_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spa_vl.release.build import build_release

    return build_release(sample_dirs["hub"], tmp_path_factory.mktemp("rel") / "release").out


def _report(args: list[str], out: Path) -> dict:
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    r = json.loads(out.read_text())
    r["summary"].pop("seconds")
    return r


def test_ray_report_equals_local_on_the_sample_release(release: Path, tmp_path: Path) -> None:
    args = ["audit", str(release), "--eval", f"spa={release}:spa-vl", "--batch-size", "100"]
    local = _report(args, tmp_path / "local.json")
    on_ray = _report([*args, "--engine", "ray"], tmp_path / "ray.json")
    assert on_ray == local
    # not vacuous: all three scopes are exercised
    assert set(local["summary"]["by_scope"]) == {"duplicate", "leak", "eval"}
    assert local["source"]["rows_per_split"] == {"test": 106, "train": 535, "validation": 106}


def test_ray_report_equals_local_on_a_raw_source(sample_dirs: dict[str, Path], tmp_path: Path) -> None:
    args = ["audit", str(sample_dirs["jsonl"]), "--scopes", "duplicate,leak"]
    local = _report(args, tmp_path / "local.json")
    assert _report([*args, "--engine", "ray"], tmp_path / "ray.json") == local
    assert local["summary"]["matches"] > 0


def test_ray_reverse_scan_equals_local(release: Path, tmp_path: Path) -> None:
    test = [r for f in sorted(release.glob("data/*/test-*.parquet")) for r in pq.read_table(f).to_pylist()]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k in range(3):
        texts = [f"shard {k} row {i} about bread and weather" for i in range(300)]
        texts[k + 1] = test[k]["question"]
        pq.write_table(pa.table({"text": texts}), corpus / f"s{k}.parquet")
    args = ["audit", str(corpus), "--against", f"spa_vl={release}"]
    local = _report(args, tmp_path / "local.json")
    on_ray = _report([*args, "--engine", "ray"], tmp_path / "ray.json")
    assert on_ray == local
    got = {(m["source_id"], m["eval_id"]) for m in local["matches"]}
    assert got == {(f"s{k}.parquet:{k + 1}", test[k]["id"]) for k in range(3)}
