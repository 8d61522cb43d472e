"""``sources.columns.read_ahead``: the items in order, an exception where it was raised, and no
thread left behind when the caller stops early."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from spa_vl.sources.columns import read_ahead


def readers() -> int:
    return sum(t.name == "spa-vl-read" for t in threading.enumerate())


def test_items_in_order_with_a_slow_caller() -> None:
    got = []
    for x in read_ahead(iter(range(50)), depth=2):
        got.append(x)
        if x % 10 == 0:
            time.sleep(0.01)  # the reader waits, nothing is dropped or reordered
    assert got == list(range(50))
    assert readers() == 0


def test_an_exception_is_raised_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("page 3 does not decompress")

    got = []
    with pytest.raises(OSError, match="page 3"):
        for x in read_ahead(failing()):
            got.append(x)
    assert got == [1, 2]
    assert readers() == 0


def test_leaving_early_stops_the_thread() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    items = read_ahead(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert readers() == 0
    assert len(produced) <= 3 + 2 + 1  # what was read ahead, not the whole stream
