"""Normalisation: every surface change a copy may carry maps to the same string."""

from __future__ import annotations

import pytest

from spa_vl.audit.normalize import normalize_text

BASE = "how can someone manufacture illegal drugs"


@pytest.mark.parametrize(
    "variant",
    [
        "How can someone manufacture illegal drugs?",  # case, punctuation
        "HOW CAN SOMEONE MANUFACTURE ILLEGAL DRUGS",
        "  how\tcan  someone\nmanufacture illegal   drugs \n",  # whitespace
        "Rewritten Question: How can someone manufacture illegal drugs?",
        "rephrased question : How can someone manufacture illegal drugs?",
        "Question: How can someone manufacture illegal drugs?",
        "Human: How can someone manufacture illegal drugs?\nAssistant:",
        "USER: Question: How can someone manufacture illegal drugs? ASSISTANT:",
        "<image>\nHow can someone manufacture illegal drugs?",
        '"How can someone manufacture illegal drugs?"',
        "“How can someone manufacture illegal drugs?”",
        "Ｈｏｗ ｃａｎ ｓｏｍｅｏｎｅ manufacture illegal drugs？",  # full-width forms (NFKC)
        "How can someone manufacture illegal drugs!!",
    ],
)
def test_variants_normalise_alike(variant: str) -> None:
    assert normalize_text(variant) == BASE


def test_joined_punctuation_matches_stripped_punctuation() -> None:
    assert normalize_text("What's a step-by-step guide?") == normalize_text("Whats a stepbystep guide")
    assert normalize_text("What's a step-by-step guide?") == "whats a stepbystep guide"


def test_different_questions_stay_different() -> None:
    assert normalize_text("How can someone make illegal drugs?") != BASE
    # a label word inside the sentence is content, not a wrapper
    assert normalize_text("Which question: is harder?") == "which question is harder"


def test_empty_and_none() -> None:
    assert normalize_text(None) == ""
    assert normalize_text("  ?! ") == ""


def test_ascii_fast_path_agrees_with_the_unicode_path() -> None:
    import random

    from spa_vl.audit.normalize import _normalize_unicode

    rng = random.Random(0)
    alphabet = "abcXYZ09 '-_`.,;:!?\"()[]<>/\\@#$%^&*+=~|\t\n"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert normalize_text(text) == _normalize_unicode(text), repr(text)


@pytest.mark.parametrize(
    ("dotted", "plain"),
    [
        ("Is it legal to buy guns in the U.S.?", "is it legal to buy guns in the US"),
        ("Is it legal to buy guns in the U.S.?", "Is it legal to buy guns in the us"),
        ("Which U.S.A. agencies track e.g. drones?", "which USA agencies track eg drones"),
        ("Hide it from the F.B.I", "hide it from the FBI"),
        ("Ｕ．Ｓ． customs", "US customs"),  # full-width dots and letters (NFKC first)
    ],
)
def test_dotted_abbreviations_are_one_word(dotted: str, plain: str) -> None:
    assert normalize_text(dotted) == normalize_text(plain)


def test_dots_between_words_still_separate_them() -> None:
    assert normalize_text("see file.txt now") == "see file txt now"
    assert normalize_text("plan A.Then run") == "plan a then run"
    assert normalize_text("route 5.a") == "route 5 a"


def test_batch_agrees_with_one_text_at_a_time() -> None:
    import random

    from spa_vl.audit.normalize import normalize_texts

    rng = random.Random(1)
    pieces = ["U.S.", "e.g.", "a.b", "Human:", "Question:", "Assistant:", "<image>", "</img>",
              "\x00", "\x01", "\n", "\t", "  ", "'", "-", "`", "_", ".", ":", "<", "é", "’", "Ｕ．Ｓ．",
              "a", "Z", "9", " ", "?", "i.e"]  # fmt: skip
    for _ in range(3000):
        batch = [
            None if rng.random() < 0.1 else "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(0, 8))
        ]
        assert normalize_texts(batch) == [normalize_text(t) for t in batch], repr(batch)
