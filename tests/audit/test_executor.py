"""The audit's executors: one interface, results in order, resume markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from spa_vl.audit.executor import LocalExecutor, ResumeMarkers


def _square_plus(part: int, offset: int) -> dict:
    return {"part": part, "value": part * part + offset}


@pytest.mark.parametrize("workers", [1, 2])
def test_local_map_keeps_order_and_shares_once(workers: int) -> None:
    out = list(LocalExecutor(workers, window=1).map(_square_plus, range(7), shared=10))
    assert [r["value"] for r in out] == [k * k + 10 for k in range(7)]


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_skips_done_parts(tmp_path: Path, workers: int) -> None:
    done = ResumeMarkers(tmp_path, "cfg", valid=lambda r: isinstance(r, dict) and "value" in r)
    first = LocalExecutor(workers).map(_square_plus, range(5), shared=0, done=done)
    assert [next(first)["value"], next(first)["value"]] == [0, 1]
    first.close()  # "killed" after two parts
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{done.key(str(k))}.json" for k in (0, 1))
    rest = list(LocalExecutor(workers).map(_square_plus, range(5), shared=0, done=done))
    assert [r["part"] for r in rest] == [2, 3, 4]
    assert [done.read(str(k))["value"] for k in range(5)] == [0, 1, 4, 9, 16]
    assert not list(tmp_path.glob("*.tmp"))


def test_markers_key_on_config_and_reject_damaged_parts(tmp_path: Path) -> None:
    a, b = ResumeMarkers(tmp_path, "a"), ResumeMarkers(tmp_path, "b", valid=lambda r: r == {"ok": 1})
    assert a.key("x") != b.key("x") and a.key("x") != a.key("y")
    b.write("x", {"ok": 1})
    assert b.is_done("x") and not a.is_done("x")
    b.path("x").write_text("{not json")
    assert not b.is_done("x")
    b.write("x", {"ok": 2})  # whole JSON, but not a valid result
    assert b.read("x") is None


def test_persist_writes_part_of_a_result(tmp_path: Path) -> None:
    done = ResumeMarkers(tmp_path, "c", persist=lambda r: {k: v for k, v in r.items() if k != "big"})
    done.write("p", {"keep": 1, "big": [0] * 10})
    assert done.read("p") == {"keep": 1}
