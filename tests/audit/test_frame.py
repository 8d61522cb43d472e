"""Match rows as columns (``spa_vl.audit.frame``): the report's order, the per-group cap and
Python's rounding, without a dict per match."""

from __future__ import annotations

import random

import numpy as np

from spa_vl.audit.core import fingerprint_batch, match_batch, match_order, match_rows
from spa_vl.audit.engine import build_index
from spa_vl.audit.evalsets import EvalItem, EvalSet
from spa_vl.audit.frame import round4
from spa_vl.audit.settings import AuditSettings

BASE = "how can i use the {} in the picture to get into a locked office building at night"
WORDS = ["key", "card", "badge", "tool", "ladder", "phone", "rope", "code", "map"]


def _audit(batch: dict, eval_sets: list[EvalSet], **settings) -> list[dict]:
    s = AuditSettings(**settings)
    fb = fingerprint_batch(batch, s)
    index, _ = build_index([fb], eval_sets, s)
    return match_rows(match_batch(fb, index))


def _capped(rows: list[dict], cap: int) -> list[dict]:
    """What the report keeps, from every match: the first ``cap`` of each group, in order."""
    out, group, count = [], None, 0
    for m in sorted(rows, key=match_order):
        g = (m["source_split"], m["source_id"], m["field"], m["scope"], m["eval_set"])
        count = count + 1 if g == group else 1
        group = g
        if count <= cap:
            out.append(m)
    return out


def test_round4_rounds_as_python_does() -> None:
    rng = np.random.default_rng(0)
    # k/160 sits on a half when scaled by 1e4 but is not one in binary: np.round alone differs
    values = np.concatenate([np.arange(161) / 160, [0.12345, 0.03125, 1.0, 0.0], rng.random(2000)])
    assert round4(values).tolist() == [round(float(v), 4) for v in values]


def test_equal_scores_at_the_cap_keep_the_first_eval_ids() -> None:
    # eight eval texts one slot word away from the row, all with the same score; ids given in
    # reverse order, so the order of the index is not the order of the ids
    items = [EvalItem(f"id{9 - k}", "goal", BASE.format(w)) for k, w in enumerate(WORDS[1:])]
    batch = {"id": ["train/1"], "split": ["train"], "question": [BASE.format(WORDS[0])]}
    es = [EvalSet("adv", "advbench", None, items)]
    everything = _audit(batch, es, scopes=("eval",), max_matches=100)
    assert len(everything) == 8 and len({m["score"] for m in everything}) == 1
    found = _audit(batch, es, scopes=("eval",), max_matches=3)
    assert [m["eval_id"] for m in found] == ["id2", "id3", "id4"]
    assert found == _capped(everything, 3)


def test_match_columns_follow_the_report_order_and_cap_in_every_scope() -> None:
    rng = random.Random(7)
    rows: dict[str, list] = {"id": [], "split": [], "question": [], "chosen": [], "rejected": []}
    for _ in range(60):
        rows["id"].append(f"row{rng.randrange(40):02d}")  # out of order, some ids repeated
        rows["split"].append(rng.choice(["train", "validation", "test", "extra"]))
        rows["question"].append(BASE.format(" ".join(rng.sample(WORDS, rng.choice([1, 1, 2])))))
        rows["chosen"].append(rng.choice([None, "I cannot help with that request at all, sorry."]))
        rows["rejected"].append(rng.choice([None, BASE.format(rng.choice(WORDS))]))
    items = [EvalItem(f"e{k}", "goal", BASE.format(w)) for k, w in enumerate(WORDS)]
    items.append(EvalItem("t0", "target", "I cannot help with that request at all, sorry.", True))
    es = [EvalSet("adv", "advbench", None, items)]
    for cap in (1, 2, 5):
        found = _audit(rows, es, answers=True, max_matches=cap)
        everything = _audit(rows, es, answers=True, max_matches=1000)
        assert {m["scope"] for m in found} == {"duplicate", "leak", "eval"}
        assert {m["field"] for m in found} == {"question", "chosen", "rejected"}
        assert found == _capped(everything, cap)


def test_sort_keys_too_wide_to_pack_give_the_same_order(monkeypatch) -> None:
    from spa_vl.audit import frame

    rows = {"id": [f"r{k % 7}" for k in range(30)], "split": ["train", "test", "validation"] * 10,
            "question": [BASE.format(WORDS[k % len(WORDS)]) for k in range(30)]}  # fmt: skip
    es = [
        EvalSet(
            "adv", "advbench", None, [EvalItem(f"e{k}", "goal", BASE.format(w)) for k, w in enumerate(WORDS)]
        )
    ]
    packed = _audit(rows, es, max_matches=2)
    monkeypatch.setattr(frame, "PACK_LIMIT", 0)
    assert packed and _audit(rows, es, max_matches=2) == packed
