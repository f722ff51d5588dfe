"""More classes of the math verifier, end to end: trigonometric functions written without
brackets and their identities, a relation kept as the final answer, lists joined with "and"
and the Oxford comma, currencies and units glued to numbers, scale words, Unicode operators,
multiple-choice options, number and fraction words, and labels matched by name.

Responses are written as models write them (MATH, GSM8K, NuminaMath and OpenThoughts styles).
Where a rule is symmetric it is checked with gold and answer swapped (`SYMMETRIC`).
"""

from __future__ import annotations

import pytest
from _case_table import case_table_tests

from grpo_fast.verifiers.math import MathVerifier

B = "\\boxed"

# (rule, gold as a data set stores it, response, expected correctness)
CASES: list[tuple[str, str, str, bool]] = [
    # --- trigonometric functions without brackets, identities, inverse and logarithms ---
    ("double-angle-sine", "\\sin 2x", "Using the identity, $\\boxed{2\\sin x\\cos x}$.", True),
    (
        "double-angle-sine-reverse",
        "2\\sin x\\cos x",
        f"So the expression simplifies to ${B}{{\\sin 2x}}$.",
        True,
    ),
    ("double-angle-cosine-sines", "\\cos 2x", f"${B}{{1 - 2\\sin^2 x}}$", True),
    ("double-angle-cosine-difference", "\\cos 2x", f"${B}{{\\cos^2 x - \\sin^2 x}}$", True),
    ("double-angle-cosine-cosines", "\\cos 2x", f"${B}{{2\\cos^2x-1}}$", True),
    ("half-the-double-angle", "\\sin x \\cos x", f"${B}{{\\frac{{1}}{{2}}\\sin 2x}}$", True),
    ("triple-angle", "\\sin 3x", f"${B}{{3\\sin x - 4\\sin^3 x}}$", True),
    ("triple-angle-wrong", "\\sin 3x", f"${B}{{3\\sin x}}$", False),
    ("product-is-not-double-angle", "\\sin 2x", f"${B}{{\\sin x \\cos x}}$", False),
    ("argument-is-the-product", "\\sin 2x", f"${B}{{\\sin 2}}$", False),
    ("greek-argument", "\\tan 3\\theta", f"${B}{{\\tan(3\\theta)}}$", True),
    ("power-reduction", "\\sin^2 x", "Hence $\\sin^2 x = \\frac{1-\\cos 2x}{2}$.", True),
    ("tangent-double-angle", "\\tan 2x", f"${B}{{\\frac{{2\\tan x}}{{1-\\tan^2 x}}}}$", True),
    ("inverse-notation", "\\arcsin x", f"${B}{{\\sin^{{-1}} x}}$", True),
    ("inverse-value", "\\sin^{-1}\\left(\\frac{1}{2}\\right)", f"${B}{{\\frac{{\\pi}}{{6}}}}$", True),
    ("arccos-value", "\\arccos \\frac{1}{2}", f"${B}{{\\frac{{\\pi}}{{3}}}}$", True),
    ("log-base-two", "3", f"${B}{{\\log_2 8}}$", True),
    ("ln-of-power", "2", f"${B}{{\\ln e^2}}$", True),
    ("ln-of-product", "\\ln 2x", f"${B}{{\\ln 2 + \\ln x}}$", True),
    ("sum-of-functions-order", "\\sin x\\cos y", f"${B}{{\\cos y \\sin x}}$", True),
    # --- a relation stays a relation ---
    ("relation-in-prose", "x \\neq -4", "The denominator vanishes at $-4$, so $x \\neq -4$.", True),
    ("relation-unicode", "x \\neq -4", "The domain is x ≠ -4", True),
    ("all-real-except", "x \\neq -4", "The expression is defined for all real x except -4.", True),
    ("all-real-numbers-except-math", "x \\neq -4", "The answer is all real numbers except $-4$.", True),
    ("all-real-except-assignment", "x \\neq -4", "It is defined for all real numbers except $x = -4$.", True),
    ("all-real-except-wrong", "x \\neq -4", "The answer is all real numbers except $4$.", False),
    ("relation-lost-is-wrong", "x \\neq -4", "so $x = -4$.", False),
    ("ne-spelling", "x \\ne 2", f"${B}{{x \\neq 2}}$", True),
    ("strict-inequality-kept", "x > 3", "Therefore $x < 3$.", False),
    # --- lists with "and" and the Oxford comma ---
    ("oxford-comma-math", "2, 4, 6", "The even numbers are $2$, $4$, and $6$.", True),
    ("oxford-comma-plain", "2, 4, 6", "The answer is 2, 4, and 6.", True),
    ("oxford-comma-wrong", "2, 4, 6", "The answer is 2, 4, and 8.", False),
    ("and-without-comma", "2, 4, 6", "The even numbers are 2, 4 and 6.", True),
    ("two-solutions-and", "3, 7", "the solutions are 3 and 7", True),
    ("two-solutions-and-wrong", "3, 7", "the solutions are 3 and 8", False),
    ("roots-as-assignments", "\\{3, 7\\}", "Therefore, the solutions are $x = 3$ and $x = 7$.", True),
    ("boxed-text-and", "1, 2, 3", f"${B}{{1, 2, \\text{{ and }} 3}}$", True),
    # --- currencies ---
    ("money-chain", "12.50", "She pays 5 × $2.50 = $12.50.", True),
    ("money-chain-spaced-x", "12.5", "So she pays 5 x $2.50 = $12.5 in total.", True),
    ("euro-decimal-comma-spaced-thousands", "2345.67", "The final price is 2 345,67 €.", True),
    ("euro-prefix", "20", "The cost is €20.", True),
    ("pound", "12.50", "The total is £12.50.", True),
    ("yen", "20", "The cost is ¥20.", True),
    ("rupee-thousands", "1500", "So she earns ₹1,500.", True),
    ("usd-word", "1500", "Total: 1,500 USD", True),
    ("euro-word", "50", "He has 50 euros left.", True),
    ("dollar-word", "20", "The cost is 20 dollars.", True),
    ("currency-wrong-value", "21", "The cost is €20.", False),
    ("gsm8k-money-chain", "18", "Janet makes 9 * $2 = $18 every day.", True),
    # --- units glued to numbers, scale words ---
    ("glued-metre", "4.5", "The rope is 4.5m long", True),
    ("glued-kilogram", "12", "The answer is 12kg.", True),
    ("glued-square-metre-thousands", "1000.99", "The answer is 1,000.99m².", True),
    ("glued-square-centimetre-caret", "30", "The area is 30cm^2.", True),
    ("glued-speed", "60", "The speed is 60km/h.", True),
    ("boxed-unit-text", "4.5", f"{B}{{4.5\\text{{m}}}}", True),
    ("million", "5000000", "The population is 5 million.", True),
    ("million-against-power", "5 \\times 10^6", "The answer is 5 million", True),
    ("billion-decimal", "2.5 \\times 10^9", "The answer is 2.5 billion.", True),
    ("million-is-not-its-number", "5", "The answer is 5 million", False),
    ("thousand-last-number", "3000", "He has 3 thousand.", True),
    ("power-of-ten-in-prose", "5000000", "The answer is 5 \\times 10^6", True),
    ("variable-letter-is-no-unit", "2m", f"${B}{{2}}$", False),
    # --- Unicode operators and relations ---
    ("times-chain", "480", "So the area is 20 × 24 = 480 square feet.", True),
    ("times-chain-wrong", "480", "So the area is 20 × 24 = 490 square feet.", False),
    ("times-kept", "20 \\times 24", "The answer is 20 × 24", True),
    ("division-chain", "5", "The answer is 10 ÷ 2 = 5", True),
    ("middle-dot", "6", "The answer is 2 · 3", True),
    ("unicode-minus", "-3", "The answer is −3", True),
    ("unicode-leq", "x \\le 3", "The answer is x ≤ 3", True),
    ("unicode-geq-wrong", "x \\leq 5", "The solution set is x ≥ 5.", False),
    ("unicode-root", "2\\sqrt{2}", "The answer is 2√2", True),
    ("unicode-root-prose", "5\\sqrt{3}", "The length is 5√3.", True),
    ("unicode-pi", "2\\pi", "The answer is 2π", True),
    ("unicode-square", "x^2", "The answer is x²", True),
    ("unicode-cube", "27", "The answer is 3³", True),
    ("vulgar-half", "\\frac12", "The answer is ½", True),
    ("vulgar-three-quarters", "\\frac{3}{4}", "The answer is ¾", True),
    ("vulgar-mixed", "2\\frac{1}{2}", "The answer is 2½.", True),
    ("labelled-chain-value", "11", "Total = 5 + 6 = 11", True),
    ("labelled-chain-wrong", "12", "Total = 5 + 6 = 11", False),
    # --- multiple choice ---
    ("option-with-value", "A", "The correct option is (A) 24.", True),
    ("option-bold-with-value", "A", "The correct option is **(A) 24**.", True),
    ("option-with-value-wrong", "B", "The correct option is (A) 24.", False),
    ("option-value-answers-value", "24", "The correct option is (A) 24.", True),
    ("answer-colon-option", "C", "Answer: (C)", True),
    ("answer-colon-option-wrong", "(A)", "Answer: (C)", False),
    ("boxed-text-option", "\\text{(B)}", f"{B}{{\\text{{(B)}}}}", True),
    ("boxed-text-option-letter-gold", "B", f"{B}{{\\text{{(B)}}}}", True),
    ("letter-paren-value-wrong", "A", "B) 7", False),
    ("letter-paren-value", "B", "The answer is B) 7", True),
    ("letter-for-parenthesised-gold", "(A)", "The correct answer is A.", True),
    ("bold-option", "A", "The correct answer is \\textbf{(A)}.", True),
    ("boxed-letter", "(D)", "The answer is $\\boxed{D}$", True),
    ("boxed-letter-wrong", "D", "Therefore, the correct choice is $\\boxed{A}$.", False),
    # --- percent and fraction words ---
    ("pct", "25\\%", "The answer is 25 pct", True),
    ("percent-number-words", "25\\%", "The answer is twenty-five percent.", True),
    ("percent-words-as-fraction", "0.25", "The answer is twenty-five percent.", True),
    ("two-thirds", "\\frac{2}{3}", "The answer is two-thirds.", True),
    ("two-fifths-wrong", "\\frac{2}{3}", "The answer is two-fifths.", False),
    ("three-quarters", "\\frac{3}{4}", "The answer is three quarters.", True),
    ("three-fourths-decimal", "0.75", "The answer is three-fourths", True),
    ("half", "\\frac{1}{2}", "The answer is half.", True),
    ("one-half", "\\frac{1}{2}", "The answer is one half.", True),
    ("one-and-a-half", "\\frac{3}{2}", "The final answer is one and a half.", True),
    ("cardinal-words", "25", "The answer is twenty-five.", True),
    ("hundreds-words", "325", "The answer is three hundred twenty-five.", True),
    ("percent-last-number", "$28\\%$", "28 percent", True),
    # --- labels are matched by name ---
    ("labels-swapped-values", "a_5 = 9, a_{20} = 39", "$a_{20} = 9, a_5 = 39$", False),
    ("labels-reordered", "a_5 = 9, a_{20} = 39", f"${B}{{a_{{20}} = 39, a_5 = 9}}$", True),
    ("labels-joined-by-and", "a_5 = 9, a_{20} = 39", "$a_5 = 9$ and $a_{20} = 39$", True),
    ("variables-reordered", "x=1, y=2", "$y=2, x=1$", True),
    ("variables-swapped-values", "x=1, y=2", "$y=1, x=2$", False),
    ("letters-swapped-values", "a = 2, b = 3", f"${B}{{b = 2, a = 3}}$", False),
    ("labelled-tuple-vs-assignments", "(x, y) = (1,2)", "$x = 1, y = 2$", True),
    ("assignments-vs-labelled-tuple", "x = 1, y = 2", "$(x, y) = (1,2)$", True),
    ("labelled-tuple-vs-assignments-wrong", "(x, y) = (1,2)", "$x = 2, y = 1$", False),
    ("assignments-vs-labelled-tuple-wrong", "x = 1, y = 2", "$(x, y) = (2,1)$", False),
    ("assignments-vs-point", "x=1,y=2", "(1,2)", True),
    # --- what the new rules must not read ---
    ("digits-inside-a-word", "2", "AZYUK2A", False),
    ("one-word-is-one", "1", "The answer is one.", True),
    ("number-word-in-prose-keeps-number", "3", "One apple costs 3 dollars. So the answer is 3.", True),
    ("half-in-prose-keeps-number", "10", "She gives away half of her 20 apples, so she has 10 left.", True),
    ("variable-gold-with-letter", "2m", f"${B}{{2m}}$", True),
    ("product-is-no-unit", "3x", f"${B}{{3}}$", False),
]

# Rules that read the same with gold and answer swapped (both plain answers).
SYMMETRIC: list[tuple[str, str, bool]] = [
    ("\\sin 2x", "2\\sin x\\cos x", True),
    ("\\cos 2x", "\\cos^2 x - \\sin^2 x", True),
    ("\\cos 2x", "1 - 2\\sin^2 x", True),
    ("\\sin 2x", "\\sin x\\cos x", False),
    ("\\sin^{-1} x", "\\arcsin x", True),
    ("\\tan 3\\theta", "\\tan(3\\theta)", True),
    ("\\log_2 8", "3", True),
    ("\\ln e^2", "2", True),
    ("x \\neq -4", "x ≠ -4", True),
    ("2, 4, 6", "2, 4, and 6", True),
    ("5 \\times 10^6", "5 million", True),
    ("20 \\times 24", "20 × 24", True),
    ("\\frac{1}{2}", "½", True),
    ("a_5 = 9, a_{20} = 39", "a_{20} = 9, a_5 = 39", False),
    ("a_5 = 9, a_{20} = 39", "a_{20} = 39, a_5 = 9", True),
    ("(x, y) = (1, 2)", "x = 1, y = 2", True),
    ("(x, y) = (1, 2)", "y = 2, x = 1", True),
    ("(A)", "A", True),
    ("\\text{(A)}", "(A)", True),
    ("\\frac{2}{3}", "two-thirds", True),
]


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=1, timeout=10.0)
    yield v
    v.close()


verdicts, test_case_names_are_unique, test_case = case_table_tests(CASES)


@pytest.mark.parametrize(("a", "b", "expected"), SYMMETRIC)
def test_symmetric(verifier, a, b, expected):
    forward, backward = verifier.verify_pairs([a, b], [b, a])
    assert forward.correct is expected, f"{a!r} vs {b!r}: {forward}"
    assert backward.correct is expected, f"{b!r} vs {a!r}: {backward}"


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split()
)
_ONES += "sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _words(n: int) -> str:
    """English words for 0 <= n < 1,000,000, written the way models write them."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _words(n % 100))
    return _words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _words(n % 1000))


def test_number_words_in_general(verifier):
    import random

    rng = random.Random(20261205)
    numbers = [rng.randrange(0, 1_000_000) for _ in range(150)] + list(range(0, 101, 7))
    golds = [str(n) for n in numbers]
    right = verifier.verify_pairs(golds, [f"The final answer is {_words(n)}." for n in numbers])
    wrong = verifier.verify_pairs(golds, [f"The final answer is {_words(n + 1)}." for n in numbers])
    for n, r, w in zip(numbers, right, wrong, strict=True):
        assert r.correct is True, f"{n}: {_words(n)!r} -> {r}"
        assert w.correct is False, f"{n}: {_words(n + 1)!r} -> {w}"


def test_double_angle_identities_in_general(verifier):
    """`\\sin kx` = `2\\sin(kx/2)\\cos(kx/2)` for any k, and the argument is never cut to its number."""
    golds, responses, expected = [], [], []
    for k in range(2, 14, 2):
        golds += [f"\\sin {k}x", f"\\sin {k}x", f"\\cos {k}x"]
        responses += [
            f"$\\boxed{{2\\sin {k // 2}x \\cos {k // 2}x}}$",
            f"$\\boxed{{\\sin {k}}}$",
            f"$\\boxed{{1 - 2\\sin^2 {k // 2}x}}$",
        ]
        expected += [True, False, True]
    for g, r, e, v in zip(golds, responses, expected, verifier.verify_pairs(golds, responses), strict=True):
        assert v.correct is e, f"{g!r} vs {r!r}: {v}"
