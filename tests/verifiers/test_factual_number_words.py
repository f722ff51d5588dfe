"""Number words in the `factual` verifier: read by the one table and grammar the math verifier uses
(rust/math/src/words.rs, through `grpo_fast._native.number_words`), with ordinals and without
fractions."""

from __future__ import annotations

import random

import pytest

from grpo_fast import _native
from grpo_fast.verifiers import FactualVerifier, VerifyItem
from grpo_fast.verifiers.factual import normalize_answer

# (tokens, what the factual grammar makes of them)
TOKENS = [
    (["twenty", "one"], ["21"]),
    (["one", "hundred", "and", "five"], ["105"]),
    (["two", "thousand", "and", "twenty"], ["2020"]),
    (["one", "hundred", "and", "first"], ["101st"]),
    (["1.5", "million"], ["1500000"]),
    (["2.5", "million", "two", "hundred"], ["2500200"]),
    (["-2", "million"], ["-2000000"]),
    (["a", "million"], ["1000000"]),
    (["an", "hundred"], ["100"]),
    (["hundred"], ["100"]),
    (["thousand"], ["1000"]),
    # A larger scale word needs a count before it.
    (["million"], ["million"]),
    (["first"], ["1st"]),
    (["twenty", "first", "century"], ["21st", "century"]),
    (["eleventh"], ["11th"]),
    (["one", "hundred", "twelfth"], ["112th"]),
    (["ninetieth"], ["90th"]),
    (["hundredth"], ["100th"]),
    # Fractions are words here; a number ends at the first word that is not part of it.
    (["two", "thirds"], ["2", "thirds"]),
    (["one", "and", "a", "half"], ["1", "and", "a", "half"]),
    (["seven", "wonders", "of", "the", "world"], ["7", "wonders", "of", "the", "world"]),
    (["catch", "twenty", "two"], ["catch", "22"]),
    (["paris"], ["paris"]),
    ([], []),
]


@pytest.mark.parametrize(("tokens", "expected"), TOKENS, ids=[" ".join(t) or "empty" for t, _ in TOKENS])
def test_number_words_grammar(tokens, expected):
    assert _native.number_words(tokens) == expected


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("Twenty-One Pilots", "21 Pilots", True),
        ("the Fourth of July", "4th of July", True),
        ("a hundred years", "100 years", True),
        ("A Thousand Suns", "1000 suns", True),
        ("Catch-22", "Catch twenty-two", True),
        ("one hundred and one Dalmatians", "101 Dalmatians", True),
        ("the year two thousand", "Year 2000", True),
        ("a Tale of Two Cities", "Tale of 2 Cities", True),
        ("two thirds", "2/3", False),
        ("Twenty-One Pilots", "Twelve Pilots", False),
    ],
)
def test_names_with_number_words(a, b, equal):
    assert (normalize_answer(a) == normalize_answer(b)) is equal


def _words(n: int) -> str:
    ones = (
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen"
    ).split()
    tens = "twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return ones[n]
    if n < 100:
        return tens[n // 10 - 2] + ("" if n % 10 == 0 else "-" + ones[n % 10])
    if n < 1000:
        return ones[n // 100] + " hundred" + ("" if n % 100 == 0 else " and " + _words(n % 100))
    return _words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _words(n % 1000))


def test_factual_and_math_read_a_number_alike():
    """One table: a number in words is the same number to both verifiers."""
    rng = random.Random(20261206)
    for n in [rng.randrange(0, 1_000_000) for _ in range(300)] + list(range(0, 121)):
        words = _words(n)
        assert normalize_answer(words) == str(n), words
        assert _native.math_normalize(words) == str(n), words


def test_verdicts_with_number_words():
    v = FactualVerifier()
    items = [
        VerifyItem(
            "How many Dalmatians?",
            "The film is One Hundred and One Dalmatians.",
            {"answer": "101 Dalmatians"},
        ),
        VerifyItem("Which century?", "It was the twenty-first century.", {"answer": "21st century"}),
        VerifyItem("How many?", "\\boxed{a million}", {"answer": "1,000,000"}),
        VerifyItem("How many?", "\\boxed{two million}", {"answer": "1,000,000"}),
    ]
    assert [x.correct for x in v.verify_batch(items)] == [True, True, True, False]
