"""The math verifier's comparison classes, end to end (extraction, the Rust fast path, and the
symbolic workers for what it leaves): labelled answers, several answers and sets, relations,
number formats and rounded decimals, and inputs whose verdict is cheap however large they look.

Responses are written as models write them (MATH, GSM8K, NuminaMath and OpenThoughts styles).
Rules that are symmetric are checked with gold and answer swapped.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from _case_table import case_table_tests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_fast.verifiers.math import MathVerifier

B = "\\boxed"

# (rule, gold as a data set stores it, response, expected correctness)
CASES: list[tuple[str, str, str, bool]] = [
    # --- labelled answers ---
    ("numina-labelled-pair", "$(p,q)=(3,2)$", f"So the only pair of primes is ${B}{{(3, 2)}}$.", True),
    ("labelled-pair-in-response", "(3,2)", f"Checking both equations, ${B}{{(p, q) = (3, 2)}}$.", True),
    ("labelled-pair-order", "$(p,q)=(3,2)$", f"${B}{{(2, 3)}}$", False),
    ("labelled-triple", "$(p,q,r)=(3,2,7)$", f"Therefore $(p, q, r) = {B}{{(3, 2, 7)}}$.", True),
    ("segment-lengths", "$AB=4,CD=5$", f"Hence the two sides are ${B}{{4, 5}}$.", True),
    ("segment-lengths-labelled-response", "4, 5", f"{B}{{AB = 4, \\ CD = 5}}", True),
    ("segment-lengths-wrong", "$AB=4,CD=5$", f"{B}{{4, 6}}", False),
    (
        "ratio-label",
        "$\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}$",
        f"Using similar triangles we get $\\frac{{NO}}{{BO}} = {B}{{\\frac1{{\\sqrt6}}}}$.",
        True,
    ),
    (
        "ratio-label-rationalised",
        "\\frac{1}{\\sqrt{6}}",
        f"{B}{{\\frac{{NO}}{{BO}}=\\frac{{\\sqrt{{6}}}}{{6}}}}",
        True,
    ),
    ("absolute-value-label", "$|AB|=1$", "The distance is $$\\boxed{1}$$", True),
    ("ratio-colon-label", "$V_{1}:V_{2}=11:21$", f"${B}{{11:21}}$", True),
    ("function-label", "$f(x)=1$", f"so the constant is ${B}{{1}}$", True),
    ("assignment-gold", "x = 5", f"Solving, ${B}{{5}}$.", True),
    ("assignment-response", "3", f"The final answer is ${B}{{k=3}}$.", True),
    ("different-variables", "x = 3", f"{B}{{y = 3}}", False),
    ("labelled-point-vs-assignments", "(p,q)=(3,2)", f"{B}{{p = 3, \\ q = 2}}", True),
    ("indexed-roots", "-1, 2", f"The roots are ${B}{{x_1 = -1, x_2 = 2}}$.", True),
    ("sum-is-not-a-label", "$2x + z = 1$", f"{B}{{1}}", False),
    ("label-on-first-item", "\\boxed{a=4,\\,-8,\\,-10}", f"${B}{{-10,-8,4}}$", True),
    (
        "openthoughts-point-label-and",
        "$$(5, 8), (8, 5)$$",
        f"$${B}{{(x, y) = (5, 8) \\quad \\text{{and}} \\quad (8, 5)}}$$",
        True,
    ),
    (
        "openthoughts-assignments-reordered",
        "$$a_3 = 2, a_{37} = 19$$",
        f"$${B}{{a_{{37}} = 19, \\quad a_3 = 2}}$$",
        True,
    ),
    # --- several answers and sets ---
    ("numina-or-pairs", "$(11,7)or(7,11)$", "$\\boxed{(7,11),\\ (11,7)}$", True),
    ("or-pairs-one-missing", "$(11,7)or(7,11)$", f"${B}{{(7,11)}}$", False),
    ("semicolon-tuple", "$(0;-2;6)$", f"{B}{{(0, -2, 6)}}", True),
    ("semicolon-tuple-response", "(0,-2,6)", f"The point is ${B}{{(0;-2;6)}}$.", True),
    (
        "numina-semicolon-points",
        "$(0;0;0),(0;-2;0),(0;0;6),(0;-2;6),(4;0;0),(4;-2;0),(4;0;6),(4;-2;6)$",
        f"{B}{{(4, 0, 6), (4, -2, 6), (0, 0, 6), (0, -2, 6), (4, 0, 0), (4, -2, 0), (0, 0, 0), (0, -2, 0)}}",
        True,
    ),
    (
        "semicolon-points-one-wrong",
        "$(0;0;0),(0;-2;6)$",
        f"{B}{{(0, 0, 0), (0, 2, 6)}}",
        False,
    ),
    ("numina-semicolon-list", "$-12;-11;-10;-8;-7;-6$", f"${B}{{\\{{-12, -11, -10, -8, -7, -6\\}}}}$", True),
    ("numina-semicolon-solutions", "$p=5,q=2;p=7,q=2$", "$(5,2),(7,2)$", True),
    ("set-vs-bare-list", "\\{1,2\\}", f"The solutions are ${B}{{1, 2}}$.", True),
    ("bare-list-vs-set", "1,2", f"{B}{{\\{{2, 1\\}}}}", True),
    ("and-list", "1 and -2", f"{B}{{-2, 1}}", True),
    ("assignments-vs-list", "x=1, x=-2", f"The roots are ${B}{{-2, 1}}$.", True),
    ("assignments-vs-list-wrong", "x=1, x=-2", f"{B}{{2, -1}}", False),
    ("set-missing-element", "\\{1,2,3\\}", f"{B}{{\\{{1, 2\\}}}}", False),
    (
        "numina-repeated-solution-counts-once",
        "$(37,3,3,13),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$",
        f"${B}{{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}}$",
        True,
    ),
    ("spaced-comma-is-a-list", "32349", f"So the answer is ${B}{{32, 349}}$", False),
    (
        "double-escaped-gold",
        "$\\\\left(\\\\frac{4}{5},\\\\frac{1}{5}\\\\right)$",
        "The final answer is $\\left( \\frac{4}{5}, \\frac{1}{5} \\right)$.",
        True,
    ),
    # --- relations ---
    ("neq-ascii", "$x \\neq 3$", "We find that $x != 3$.", True),
    ("chain-last-side", "11", f"{B}{{x = 5+5+1 = 11}}", True),
    ("chain-wrong-working", "$x = 11$", "$x = 5+5+1 = 7 =11$", True),
    ("chain-wrong-value", "$x = 11$", f"{B}{{x = 5+5+1 = 12}}", False),
    ("inequality-vs-membership", "$-2 \\le x \\le 7$", "$x \\in [-2,7]$", True),
    ("interval-vs-inequality", "[-2,7]", f"Thus ${B}{{-2 \\le x \\le 7}}$.", True),
    ("numina-function-bounded", "$0<f(x)<1$", "$(0,1)$", True),
    ("half-line", "(3, \\infty)", f"{B}{{x > 3}}", True),
    ("membership-real-line", "\\mathbb{R}", f"The domain is ${B}{{x \\in \\mathbb{{R}}}}$.", True),
    ("semicolon-interval", "[0, 1)", f"{B}{{[0;1)}}", True),
    ("half-line-closed", "(3, \\infty)", f"{B}{{x \\ge 3}}", False),
    ("lt-command", "$x < 3$", "We find that $x \\lt 3$.", True),
    ("le-ascii", "$x \\leq 2$", "Thus $x <= 2$ is our answer.", True),
    ("flipped-inequality", "$x \\leq 5$", "$5 \\geq x$", True),
    ("negated-inequality", "$x < 1$", "$-x > -1$", True),
    ("approx-after-value", "$1/3$", f"{B}{{x=1/3\\approx0.33}}", True),
    ("approx-alone", "$11$", f"{B}{{x\\approx11}}", True),
    # --- numbers ---
    ("decimal-comma", "1000.99", f"{B}{{1000,99}}", True),
    ("decimal-comma-prose", "2.74", "Le prix final est donc de $\\boxed{2,74}$ euros.", True),
    ("decimal-comma-gold", "1,22", f"{B}{{1.22}}", True),
    ("decimal-comma-leading-zero", "0,111", f"{B}{{0.111}}", True),
    ("decimal-comma-wrong", "2.74", f"{B}{{2,47}}", False),
    ("decimal-comma-percent", "12.5\\%", f"{B}{{12,5 \\%}}", True),
    ("spaced-list-is-no-decimal", "3.5", f"The two values are ${B}{{3, 5}}$.", False),
    ("connector-list-is-no-decimal", "4.5", f"{B}{{4 \\text{{ or }} 5}}", False),
    ("thousands-separator", "7425000", "The total is $\\boxed{7,425,000}$.", True),
    ("thousands-not-decimal", "1", f"{B}{{1,000}}", False),
    (
        "gsm8k-thousands",
        "She earns 5 * 200 = 1000 dollars.\n#### 1000",
        "So she earns $1,000.\n#### 1,000",
        True,
    ),
    ("percent-word", "$28\\%$", f"{B}{{28 percent}}", True),
    ("percent-pct", "$28\\%$", f"{B}{{28 pct}}", True),
    ("percent-percentage", "$28\\%$", f"{B}{{28 percentage}}", True),
    ("percent-word-vs-plain", "28", f"{B}{{28 percent}}", True),
    ("percent-word-vs-fraction", "0.28", f"{B}{{28 pct}}", True),
    ("percent-word-wrong", "$28\\%$", f"{B}{{82 percent}}", False),
    ("rounded-third", "\\frac{1}{3}", f"{B}{{0.3333}}", True),
    ("rounded-interval", "(\\frac{3}{5}, \\frac{8}{3}]", f"{B}{{(0.6, 2.6667]}}", True),
    ("rounded-interval-gold", "(0.6, 2.6667]", f"{B}{{\\left(\\frac35, \\frac83\\right]}}", True),
    ("rounded-two-places", "\\frac{1}{3}", f"{B}{{0.33}}", False),
    ("truncated-not-rounded", "\\frac{2}{3}", f"{B}{{0.6666}}", False),
    ("pi-two-places", "\\pi", f"{B}{{3.14}}", False),
    ("irrational-four-places", "\\frac{\\pi}{2}", f"{B}{{1.5708}}", False),
    ("qwen-decimal-twelfth", "$\\frac{1}{12}$", "$0.0833333333333333$", True),
    ("qwen-point-decimal", "$(1,\\frac{9}{2})$", "$(1,4.5)$", True),
    ("degrees", "$90^\\circ$", f"Therefore the angle is ${B}{{90}}$ degrees.", True),
    ("degrees-response", "90", f"{B}{{90^\\circ}}", True),
    ("unit-mbox", "$15\\mbox{ cm}^2$", f"The area is ${B}{{15\\text{{ cm}}^2}}$.", True),
    ("unit-textnormal", "$125$ miles", "The distance is $\\boxed{125\\textnormal{ miles}}.$", True),
    ("dfrac", "\\frac{9}{4}", f"{B}{{\\dfrac{{9}}{{4}}}}", True),
    ("tfrac", "1/3", f"${B}{{\\tfrac13}}$", True),
    ("half-vs-decimal", "1/2", f"{B}{{0.5}}", True),
    ("root-of-ratio", "\\sqrt{1/n}", f"{B}{{1/\\sqrt{{n}}}}", True),
]


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(timeout=10.0) as v:
        yield v


verdicts, test_ids_are_unique, test_case = case_table_tests(CASES)


# Bare answers whose verdict must not depend on which side is the gold.
SYMMETRIC: list[tuple[str, str, bool]] = [
    ("(p,q)=(3,2)", "(3,2)", True),
    ("AB=4, CD=5", "4, 5", True),
    ("\\frac{NO}{BO}=\\frac{1}{\\sqrt6}", "\\frac1{\\sqrt6}", True),
    ("x = 5", "5", True),
    ("k=3", "4", False),
    ("(11,7) \\text{ or } (7,11)", "(7,11),(11,7)", True),
    ("(0;-2;6)", "(0,-2,6)", True),
    ("\\{1,2\\}", "2, 1", True),
    ("1 \\text{ and } -2", "-2, 1", True),
    ("x=1, x=-2", "-2, 1", True),
    ("x \\neq 3", "x != 3", True),
    ("x = 5+5+1 = 11", "11", True),
    ("-2 \\le x \\le 7", "x \\in [-2,7]", True),
    ("[-2,7]", "-2 \\le x \\le 7", True),
    ("0<f(x)<1", "(0,1)", True),
    ("x > 3", "(3, \\infty)", True),
    ("1000,99", "1000.99", True),
    ("2,74", "2.74", True),
    ("1,000", "1000", True),
    ("28 pct", "28\\%", True),
    ("0.3333", "\\frac13", True),
    ("(0.6, 2.6667]", "(3/5, 8/3]", True),
    ("3.14", "\\pi", False),
    ("10 \\text{ cm}", "10", True),
    ("\\dfrac{1}{2}", "0.5", True),
    ("\\sqrt{1/n}", "1/\\sqrt{n}", True),
    ("x \\neq 3", "(-\\infty, 3) \\cup (3, \\infty)", True),
]


@pytest.mark.parametrize(("a", "b", "expected"), SYMMETRIC, ids=[f"{a} | {b}" for a, b, _ in SYMMETRIC])
def test_symmetric(verifier, a, b, expected):
    forward, backward = verifier.verify_pairs([a, b], [f"{B}{{{b}}}", f"{B}{{{a}}}"])
    assert (forward.correct, backward.correct) == (expected, expected), (forward, backward)


@pytest.mark.parametrize(
    ("gold", "response", "expected"),
    [
        ("5", "(" * 1000 + "5" + ")" * 1000, True),
        ("5", "(" * 1500 + "6" + ")" * 1500, False),
        ("5", "10^{10^{10^{10}}}", False),
        ("10^{10^{10^{10}}}", "5", False),
        ("2^{2^{30}}", "2^{2^{30}}", True),
        ("2^{2^{30}}", "4^{2^{29}}", True),
        ("5", "100000000!", False),
        ("100000000!", "100000000!", True),
        ("9^{9^{9}}", "10", False),
    ],
    ids=[
        "parens-1000",
        "parens-1500-wrong",
        "tower-vs-small",
        "small-vs-tower",
        "tower-identical",
        "tower-same-value",
        "factorial-vs-small",
        "factorial-identical",
        "nine-tower",
    ],
)
def test_cheap_verdicts_never_wait_for_the_deadline(verifier, gold, response, expected):
    """Verdicts that sizes decide come from the fast path: no sympy, no timeout."""
    vd = verifier.verify_pairs([gold], [f"{B}{{{response}}}"])[0]
    assert vd.correct is expected, vd
    assert vd.details["path"] == "fast", vd


LABELS = ["x", "k", "a_1", "AB", "|AB|", "\\frac{NO}{BO}", "f(x)", "(p,q)"]


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(label=st.sampled_from(LABELS), p=st.integers(-500, 500), q=st.integers(1, 40), swap=st.booleans())
def test_a_label_never_changes_the_value(verifier, label, p, q, swap):
    value = f"\\frac{{{p}}}{{{q}}}" if label != "(p,q)" else f"({p},{q})"
    other = f"\\frac{{{p + 1}}}{{{q}}}" if label != "(p,q)" else f"({p},{q + 1})"
    labelled = f"{label} = {value}"
    pairs = [(labelled, value, True), (labelled, other, False)]
    golds = [b if swap else a for a, b, _ in pairs]
    resps = [f"{B}{{{a if swap else b}}}" for a, b, _ in pairs]
    got = [v.correct for v in verifier.verify_pairs(golds, resps)]
    assert got == [e for _, _, e in pairs], (golds, resps)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    p=st.integers(1, 999), q=st.sampled_from([3, 6, 7, 9, 11, 12, 13, 15, 21, 37]), places=st.integers(4, 6)
)
def test_rounded_rationals_either_way_round(verifier, p, q, places):
    value = Fraction(p, q)
    den = value.denominator
    for f in (2, 5):
        while den % f == 0:
            den //= f
    if den == 1 or value * 10**places < 100:
        return  # terminating values are compared exactly; too few significant digits
    units = math.floor(value * 10**places + Fraction(1, 2))
    rounded = f"{units // 10**places}.{units % 10**places:0{places}d}"
    exact = f"\\frac{{{p}}}{{{q}}}"
    got = verifier.verify_pairs([exact, rounded], [f"{B}{{{rounded}}}", f"{B}{{{exact}}}"])
    assert [v.correct for v in got] == [True, True], (exact, rounded)
