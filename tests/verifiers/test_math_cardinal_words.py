"""The math verifier reads a count written in words as the stated final answer: "So she has twelve
apples left.", "The answer is forty-two.", "There are one hundred and five students.".

Responses are written as models write them (GSM8K and MATH endings), several phrasings per class,
with the prose that must not be read as a count: a count as the subject ("Two of them are red."),
"one of the", "the one that", "no one", ordinals, "once", "none", bounds ("at least one"), and a
count in words beside an answer in digits, which the digits win.
"""

from __future__ import annotations

import pytest
from _case_table import case_table_tests

from grpo_fast.verifiers.math import MathVerifier

# (case, gold as a data set stores it, response, expected correctness)
CASES: list[tuple[str, str, str, bool]] = [
    # --- GSM8K-style endings: the count in words ends the working ---
    (
        "so-has-left",
        "12",
        "Janet starts with 20 apples and gives away 8 of them.\n\nSo she has twelve apples left.",
        True,
    ),
    (
        "so-has-left-wrong",
        "13",
        "Janet starts with 20 apples and gives 8 away. So she has twelve apples left.",
        False,
    ),
    (
        "needs-more-days",
        "3",
        "He has read 4 of the 7 chapters and reads a chapter a day, so he needs three more days.",
        True,
    ),
    ("needs-more-days-alone", "3", "He needs three more days.", True),
    (
        "thus-sentence",
        "7",
        "Each week has 7 days and she practises daily.\n\nThus she practises seven days a week.",
        True,
    ),
    ("hence-hyphen", "35", "Hence Tom is thirty-five years old.", True),
    ("one-more", "1", "She has 4 tickets and needs 5.\n\nSo she buys one more ticket.", True),
    # --- after the last copula ---
    ("answer-is", "42", "Adding both parts gives the result.\n\nThe answer is forty-two.", True),
    (
        "there-are-hundred-and-five",
        "105",
        "Each of the 3 classes has 35 students.\n\nThere are one hundred and five students.",
        True,
    ),
    ("there-are-hundred-and-five-wrong", "150", "There are one hundred and five students.", False),
    (
        "therefore-is",
        "12",
        "The triangle has sides 3, 4 and 5.\n\nTherefore, the perimeter of the triangle is twelve.",
        True,
    ),
    ("comes-to", "200", "The four boxes hold 50 each.\n\nThe total comes to two hundred.", True),
    ("is-exactly-one", "1", "The discriminant is zero, so the number of real roots is exactly one.", True),
    ("capitalised", "20", "So the answer is Twenty.", True),
    ("thousand", "2500", "So the school raised two thousand five hundred dollars in total.", True),
    # --- not a count stated ---
    ("subject-two-of-them", "2", "There are 5 marbles in the bag.\n\nTwo of them are red.", False),
    ("one-of-the", "1", "So one of the roots is negative.", False),
    (
        "the-first-one-that",
        "1",
        "We try each candidate.\n\nThe first one that works is the one we want.",
        False,
    ),
    ("no-one", "1", "No one else came to the party, so only Ann was there.", False),
    ("one-way", "1", "This is one way to see it.", False),
    ("ordinal", "21", "So he finished in twenty-first place.", False),
    ("once-and-none", "1", "She checked once and none were broken.", False),
    ("the-three-friends", "3", "So each of the three friends pays the same.", False),
    # --- digits win over words in the same text ---
    ("at-least-one-then-digits", "6", "At least one box is empty, so the number of full boxes is $6$.", True),
    (
        "at-least-one-digits-gold-1",
        "1",
        "At least one box is empty, so the number of full boxes is $6$.",
        False,
    ),
    ("digits-then-words-aside", "12", "So the sum is 12 because there are two groups.", True),
    ("digits-then-words-aside-2", "2", "So the sum is 12 because there are two groups.", False),
    (
        "boxed-wins",
        "12",
        "There are twelve apples... wait, I recount: $\\boxed{12}$. Hope that helps, one and all.",
        True,
    ),
    (
        "later-aside-not-read",
        "12",
        "So she has 12 marbles. We used two bags to check. Hope this helps!",
        True,
    ),
]


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=1, timeout=20.0)
    yield v
    v.close()


verdicts, test_case_names_are_unique, test_case = case_table_tests(CASES)


def test_counts_in_words_in_general(verifier):
    # Every count from 0 to 120 and a few larger ones, written as words, read in the same
    # ending; the value one off is wrong.
    small = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen".split()
    small += "fifteen sixteen seventeen eighteen nineteen".split()
    tens = "twenty thirty forty fifty sixty seventy eighty ninety".split()

    def words(n: int) -> str:
        if n < 20:
            return small[n]
        if n < 100:
            return tens[n // 10 - 2] + ("" if n % 10 == 0 else "-" + small[n % 10])
        rest = n % 100
        return small[n // 100] + " hundred" + ("" if rest == 0 else " and " + words(rest))

    values = [*range(0, 121), 205, 999]
    # "one" alone is read only after a copula at the end of a clause: the second phrasing.
    responses = [
        f"So the class collected {words(n)} books." if n != 1 else "So the count is one." for n in values
    ]
    out = verifier.verify_pairs([str(n) for n in values], responses)
    assert [v.correct for v in out] == [True] * len(values), [
        (n, r, v) for n, r, v in zip(values, responses, out, strict=True) if not v.correct
    ]
    off = verifier.verify_pairs([str(n + 1) for n in values], responses)
    assert not any(v.correct for v in off)
