"""The incremental JSON-list parser behind the RLHF JSON reader (bounded memory)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from spa_vl.sources import open_source
from spa_vl.sources.base import parse_int
from spa_vl.sources.rlhf_json import _CHUNK, iter_json_array


def _items(text: str, chunk: int) -> list:
    return list(iter_json_array(io.BytesIO(text.encode()), chunk))


ITEMS = [
    {"id": 1, "question": "a" * 100, "chosen": "x", "rejected": "y"},
    {"id": 2, "question": [{"from": "Human", "value": '<image>\nq ] , { " \\u00e9'}]},
    {"id": 3, "nested": {"list": [1, 2.5, -3e-4, True, False, None], "s": "]}"}},
    "a string item",
    12345678901234567890,
    -0.000123,
    [],
    {},
    None,
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 13, 64, _CHUNK])
def test_items_across_chunk_boundaries(chunk: int) -> None:
    text = json.dumps(ITEMS, indent=1)
    assert _items(text, chunk) == [(i, item, None) for i, item in enumerate(ITEMS)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5, 6, 7])
def test_number_split_by_a_chunk_boundary(chunk: int) -> None:
    # A number cut by the buffer end still decodes (as a shorter number): the parser must not
    # take the prefix for the whole.
    text = '[1234567, 89, {"a": 1}]'
    assert [item for _, item, _ in _items(text, chunk)] == [1234567, 89, {"a": 1}]


@pytest.mark.parametrize("text", ["[]", " [ ] ", "\n[\n]\n"])
def test_empty_list(text: str) -> None:
    assert _items(text, 1) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"id": 1}', [(0, None, "the file is not a JSON list (it must start with '[')")]),
        ("", [(0, None, "the file is not a JSON list (it must start with '[')")]),
        ('[{"id": 1}, {"id": 2', [(0, {"id": 1}, None), (1, None, "malformed JSON in item 2")]),
        (
            '[{"id": 1} {"id": 2}]',
            [(0, {"id": 1}, None), (1, None, "malformed JSON after item 1: expected ',' or ']'")],
        ),
        ('[{"id": 1},', [(0, {"id": 1}, None), (1, None, "malformed JSON in item 2")]),
        ('[{"id": 1}', [(0, {"id": 1}, None), (1, None, "malformed JSON after item 1")]),
    ],
)
def test_malformed_input_ends_with_one_error(text: str, expected: list) -> None:
    got = _items(text, 4)
    assert len(got) == len(expected)
    for (gi, gitem, gerr), (ei, eitem, eerr) in zip(got, expected, strict=True):
        assert (gi, gitem) == (ei, eitem)
        assert (gerr is None) == (eerr is None)
        if eerr is not None:
            assert gerr.startswith(eerr), gerr


def test_syntax_error_does_not_read_the_rest_of_a_big_file() -> None:
    # A real syntax error is reported where it is, not after buffering the whole file.
    class Counting(io.BytesIO):
        reads = 0

        def read(self, n: int = -1) -> bytes:
            Counting.reads += 1
            return super().read(n)

    text = '[{"id": 1}, {"id": 2, "q": tru}, ' + ", ".join(['{"id": 3}'] * 20000) + "]"
    got = list(iter_json_array(Counting(text.encode()), 64))
    assert got[0] == (0, {"id": 1}, None)
    assert got[1][0] == 1 and got[1][2].startswith("malformed JSON in item 2")
    assert Counting.reads < 10


def test_reader_streams_a_file_bigger_than_the_chunk(tmp_path: Path, sample_dirs) -> None:
    src = sample_dirs["rlhf-json"] / "train.json"
    assert src.stat().st_size > 4 * _CHUNK
    rows = list(open_source(src).rows())
    assert len(rows) == 535
    assert [r.row for r in rows[:3]] == [1, 2, 3]
    assert rows[-1].record["id"] == "train/000534"
    assert all(not r.problems for r in rows)


# Inputs where a streaming parser could part from ``json`` (lone surrogates, NaN, big integers,
# \f and \v, no list, deep nesting): each must come out as ``json`` reads the whole text at once,
# whatever the chunk size.
TRICKY = [
    '["\\ud800", 1]',  # a lone surrogate escape (ijson would make it "?")
    '[{"q": "a\\udc00b"}, 2]',
    '["\\\\ud800"]',  # an escaped backslash, then text: no surrogate
    '["\\\\\\ud800"]',  # an escaped backslash, then a lone surrogate
    '["\\ud83d\\ude00", 2]',  # a pair (an emoji) is fine for both
    "[1,\f2]",  # form feed and vertical tab are no JSON whitespace
    "[1,\v2]",
    "[12345678901234567890, -9223372036854775809]",  # past 64 bits
    "[1, " + "9" * 5000 + "]",  # past int(): a HugeNumber
    "[NaN, Infinity, -Infinity, 1e400]",
    '{"id": 1}',
    "",
    "  \n ",
    "\ufeff[1, 2]",  # a byte-order mark
    "[1] trailing",
    "[1][2]",
    "[1, " + "[" * 5000 + "]" * 5000 + ", 2]",  # nested too deeply for json
    '[{"a": ' + "[" * 150 + "]" * 150 + '}, {"b": "]]}}"}]',  # deep, yet json reads it
]


@pytest.mark.parametrize("chunk", [1, 2, 5, 64, None])
@pytest.mark.parametrize("text", TRICKY)
def test_items_are_what_json_reads(text: str, chunk: int | None) -> None:
    data = text.encode()
    want = list(iter_json_array(io.BytesIO(data), len(data) + 1))  # one read: raw_decode on it all
    got = list(iter_json_array(io.BytesIO(data), chunk))
    assert repr(got) == repr(want)  # repr: NaN is not equal to itself
    try:
        whole = json.loads(data.decode("utf-8-sig"), parse_int=parse_int)
    except (ValueError, RecursionError):
        return  # not one JSON list: the errors above are the reference
    if isinstance(whole, list):
        assert repr(got) == repr([(i, item, None) for i, item in enumerate(whole)])


def test_a_large_item_is_decoded_a_few_times_not_once_per_chunk() -> None:
    """While an item does not fit, each read doubles: a 3 MB item in 64 KiB first reads takes
    about log2(48) reads, not 48 (each one a decode from the item's start)."""

    class Counting(io.BytesIO):
        reads = 0

        def read(self, n: int = -1) -> bytes:
            Counting.reads += 1
            return super().read(n)

    items = [{"id": 1, "q": "x" * 3_000_000, "e": "\U0001f600 \\ud800 [{", "n": [1.5, -2, None]}, 7]
    assert list(iter_json_array(Counting(json.dumps(items).encode()))) == [(0, items[0], None), (1, 7, None)]
    assert Counting.reads < 12


try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError:  # the dev extra installs it
    hypothesis = None

if hypothesis is not None:
    _JSON = st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
        ),
        max_leaves=12,
    )

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(st.lists(_JSON, max_size=8), st.integers(1, 40), st.sampled_from([None, 0, 2]))
    def test_any_list_any_chunk(items: list, chunk: int, indent) -> None:
        text = json.dumps(items, indent=indent)
        assert [item for _, item, _ in _items(text, chunk)] == items
