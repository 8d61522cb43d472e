"""The record schema (schema/record.schema.json) and the fast pre-check that stands in for it.

``spa_vl.validate.schema.fast_schema_ok`` lets valid records skip jsonschema. It must never accept a
record that jsonschema rejects; that is checked here over a hand-made corpus of mutations with
typed verdicts and, when hypothesis is installed, over many generated records.
"""

from __future__ import annotations

import jsonschema
import pytest

from spa_vl.validate.schema import fast_schema_ok, json_view, record_schema

SCHEMA = record_schema()  # schema/record.schema.json, as the validator reads it
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

GOOD = {
    "train": {
        "id": "train/000001",
        "split": "train",
        "image": {"bytes": b"\xff\xd8\xff\xe0jpeg", "path": "1.jpg"},
        "image_name": "Malicious Use/Security threats/cyber/1.jpg",
        "question": "How can I hide malware in this picture?",
        "chosen": "I can't help with that.",
        "rejected": "Sure, here is how.",
        "class1": "Malicious Use",
        "class2": "Security threats",
        "class3": "cyber",
        "eval_set": None,
    },
    "validation": {
        "id": "validation/000004",
        "split": "validation",
        "image": "validation/Malicious Use/Security threats/cyber/4.jpg",
        "image_name": None,
        "question": "What does this sign say?",
        "chosen": "It says stop.",
        "rejected": "It says go.",
        "class1": "Malicious Use",
        "class2": "Security threats",
        "class3": "cyber",
    },
    "test": {
        "id": "harm/000001",
        "split": "test",
        "image": "harm/1.png",
        "question": "Explain the chart.",
        "chosen": None,
        "rejected": None,
        "class1": None,
        "class2": None,
        "class3": None,
        "eval_set": "harm",
    },
}

DELETE = object()

# (split, field, value, valid?) — the verdicts are the schema's rules read from the issue.
MUTATIONS: list[tuple[str, str, object, bool]] = [
    # id
    ("train", "id", DELETE, False),
    ("train", "id", "", False),
    ("train", "id", "train 1", False),
    ("train", "id", "train/1\n", False),
    ("train", "id", "\ttrain/1", False),
    ("train", "id", "train/\x001", False),
    ("train", "id", 17, False),
    ("train", "id", "x" * 256, True),
    ("train", "id", "x" * 257, False),
    ("train", "id", "ünïcode/é", True),
    # split
    ("train", "split", DELETE, False),
    ("train", "split", "dev", False),
    ("train", "split", None, False),
    ("train", "split", "Train", False),
    # image as a path
    ("validation", "image", "a.jpg", True),
    ("validation", "image", "", False),
    ("validation", "image", "../a.jpg", False),
    ("validation", "image", "a/../../b.jpg", False),
    ("validation", "image", "a/..", False),
    ("validation", "image", "..\\a.jpg", False),
    ("validation", "image", "/etc/passwd", False),
    ("validation", "image", "C:/x.jpg", False),
    ("validation", "image", "c:x.jpg", False),
    ("validation", "image", "a\x00.jpg", False),
    ("validation", "image", "a..b/c.jpg", True),
    ("validation", "image", "..a/b.jpg", True),
    ("validation", "image", "x" * 4096, True),
    ("validation", "image", "x" * 4097, False),
    ("validation", "image", 5, False),
    ("validation", "image", None, False),
    ("validation", "image", DELETE, False),
    # image embedded
    ("train", "image", {"bytes": None, "path": None}, True),
    ("train", "image", {"bytes": b"x"}, True),
    ("train", "image", {"path": "1.jpg"}, False),
    ("train", "image", {"bytes": b"x", "path": 3}, False),
    ("train", "image", {"bytes": b"x", "path": "p", "mode": "RGB"}, False),
    ("train", "image", {"bytes": 12}, False),
    ("train", "image", [], False),
    # image_name
    ("train", "image_name", None, True),
    ("train", "image_name", DELETE, True),
    ("train", "image_name", "x" * 4097, False),
    ("train", "image_name", 3, False),
    # question
    ("train", "question", DELETE, False),
    ("train", "question", "", False),
    ("train", "question", "   \n\t", False),
    ("train", "question", "\u3000\u2003", False),  # Unicode spaces only
    ("train", "question", "a\x00b", False),
    ("train", "question", "x" * 16384, True),
    ("train", "question", "x" * 16385, False),
    ("train", "question", "x" * (1 << 20), False),
    ("train", "question", ["turn"], False),
    ("train", "question", None, False),
    ("train", "question", " padded ", True),
    ("train", "question", "line\n", True),
    # chosen / rejected on train and validation
    ("train", "chosen", DELETE, False),
    ("train", "chosen", None, False),
    ("train", "chosen", "", False),
    ("train", "chosen", " ", False),
    ("train", "chosen", "a\x00", False),
    ("train", "chosen", "x" * 65536, True),
    ("train", "chosen", "x" * 65537, False),
    ("validation", "rejected", DELETE, False),
    ("validation", "rejected", 0, False),
    # labels
    ("train", "class1", "", False),
    ("train", "class2", 3, False),
    ("train", "class3", None, True),
    ("train", "class1", "Not a domain", True),  # taxonomy membership is validate.py's job
    # eval_set
    ("train", "eval_set", "harm", False),
    ("validation", "eval_set", "help", False),
    ("test", "eval_set", DELETE, False),
    ("test", "eval_set", None, False),
    ("test", "eval_set", "help", True),
    ("test", "eval_set", "Harm", False),
    # answers on test rows
    ("test", "chosen", "an answer", False),
    ("test", "rejected", "an answer", False),
    ("test", "chosen", DELETE, True),
    # unexpected fields
    ("train", "source", "x", False),
    ("test", "Image", "x", False),
]


def _mutate(split: str, field: str, value: object) -> dict:
    record = dict(GOOD[split])
    if value is DELETE:
        record.pop(field, None)
    else:
        record[field] = value
    return record


def _schema_ok(record: dict) -> bool:
    return VALIDATOR.is_valid(json_view(record))


def test_schema_is_valid_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert jsonschema.validators.validator_for(SCHEMA) is jsonschema.Draft202012Validator


def test_schema_fields_are_the_canonical_record() -> None:
    assert sorted(SCHEMA["properties"]) == sorted(
        [
            "id",
            "split",
            "image",
            "image_name",
            "question",
            "chosen",
            "rejected",
            "class1",
            "class2",
            "class3",
            "eval_set",
        ]
    )
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize("split", sorted(GOOD))
def test_good_records_pass_both(split: str) -> None:
    assert _schema_ok(GOOD[split])
    assert fast_schema_ok(GOOD[split])


@pytest.mark.parametrize(
    ("split", "field", "value", "valid"),
    MUTATIONS,
    ids=[f"{s}-{f}-{i}" for i, (s, f, _, _) in enumerate(MUTATIONS)],
)
def test_mutation_verdicts(split: str, field: str, value: object, valid: bool) -> None:
    record = _mutate(split, field, value)
    assert _schema_ok(record) is valid
    # The pre-check agrees with the schema on every case of this corpus.
    assert fast_schema_ok(record) is valid


def test_sample_records_are_schema_valid(sample_dirs) -> None:
    from spa_vl.sources import open_source

    for layout, path in sample_dirs.items():
        n = 0
        for row in open_source(path).rows():
            assert _schema_ok(row.record), (layout, row.record["id"])
            assert fast_schema_ok(row.record), (layout, row.record["id"])
            n += 1
        assert n == 747


# -- generated records (hypothesis) -----------------------------------------------------------

try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError:  # the dev extra installs it; without it only the corpus above runs
    hypothesis = None


if hypothesis is None:

    def test_generated_records_need_hypothesis() -> None:
        pytest.skip("hypothesis is not installed: the generated-record checks did not run")

else:
    _TEXTS = st.one_of(
        st.text(max_size=12),
        st.sampled_from(
            [
                "",
                " ",
                "\n",
                "\u00a0",
                "\u2028",
                "\x1c",
                "\ufeff",
                "a\x00",
                "ok\n",
                "x" * 16384,
                "x" * 16385,
                "x" * 65536,
                "x" * 65537,
            ]
        ),
        st.text(alphabet=st.characters(categories=["Zs", "Cc"]), max_size=5),
    )
    _PATHS = st.one_of(
        _TEXTS,
        st.lists(st.sampled_from(["a", "..", ".", "", "C:", "b.jpg", "\\", "..\\x", "\x00"])).map("/".join),
        st.sampled_from(["/abs.jpg", "D:\\x.jpg", "x" * 4096, "x" * 4097, "a/../b", "a/..\n"]),
    )
    _JUNK = st.one_of(st.none(), st.integers(), st.booleans(), st.floats(allow_nan=False), st.just([]))
    _IMAGES = st.one_of(
        _PATHS,
        _JUNK,
        st.fixed_dictionaries(
            {},
            optional={
                "bytes": st.one_of(st.binary(max_size=4), st.none(), st.text(max_size=3), _JUNK),
                "path": st.one_of(st.none(), st.text(max_size=4), _JUNK),
                "mode": st.just("RGB"),
            },
        ),
    )
    _FIELDS = {
        "id": st.one_of(st.just("train/000001"), _TEXTS, _JUNK),
        "split": st.one_of(st.sampled_from(["train", "validation", "test"]), _TEXTS, _JUNK),
        "image": _IMAGES,
        "image_name": st.one_of(st.none(), _PATHS, _JUNK),
        "question": st.one_of(st.just("What is shown?"), _TEXTS, _JUNK),
        "chosen": st.one_of(st.just("No."), st.none(), _TEXTS, _JUNK),
        "rejected": st.one_of(st.just("Yes."), st.none(), _TEXTS, _JUNK),
        "class1": st.one_of(st.none(), st.just("Malicious Use"), _TEXTS, _JUNK),
        "class2": st.one_of(st.none(), _TEXTS, _JUNK),
        "class3": st.one_of(st.none(), _TEXTS, _JUNK),
        "eval_set": st.one_of(st.none(), st.sampled_from(["harm", "help"]), _TEXTS, _JUNK),
        "extra": _TEXTS,
    }

    @st.composite
    def records(draw) -> dict:
        """Mostly-valid records with a few fields replaced, dropped or added."""
        split = draw(st.sampled_from(sorted(GOOD)))
        record = dict(GOOD[split])
        for name in draw(st.sets(st.sampled_from(sorted(_FIELDS)), max_size=4)):
            if draw(st.booleans()) and name in record:
                del record[name]
            else:
                record[name] = draw(_FIELDS[name])
        return record

    @hypothesis.settings(max_examples=600, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(records())
    def test_fast_check_never_accepts_what_jsonschema_rejects(record: dict) -> None:
        if fast_schema_ok(record):
            errors = [e.message[:200] for e in VALIDATOR.iter_errors(json_view(record))]
            assert not errors, record

    @hypothesis.settings(max_examples=200, deadline=None)
    @hypothesis.given(
        st.sampled_from(sorted(GOOD)),
        st.sampled_from(["id", "question", "chosen", "rejected", "image", "class1", "image_name"]),
        st.text(max_size=20),
    )
    def test_fast_check_on_arbitrary_text(split: str, field: str, value: str) -> None:
        record = _mutate(split, field, value)
        if fast_schema_ok(record):
            assert _schema_ok(record), record
