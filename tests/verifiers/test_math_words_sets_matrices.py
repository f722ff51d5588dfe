"""Classes of the math verifier, end to end: a fraction written in words as the stated answer, the
values excluded by "all real numbers except ...", matrices written as sums and scalar multiples,
and functions written without brackets on the symbolic (sympy) path.

Responses are written as models write them (MATH, GSM8K, NuminaMath and R1 styles), several
phrasings per class, with the near misses and the prose that must not be read as an answer.
"""

from __future__ import annotations

import pytest
from _case_table import case_table_tests

from grpo_fast import _native
from grpo_fast.verifiers.math import MathVerifier

B = "\\boxed"
V12 = "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"
UNION_23 = "(-\\infty,2)\\cup(2,3)\\cup(3,\\infty)"

# (case, gold as a data set stores it, response, expected correctness)
CASES: list[tuple[str, str, str, bool]] = [
    # --- a fraction in words states the answer ---
    ("hyphenated-no-verb", "\\frac{2}{3}", "She ate two-thirds of the pie.", True),
    (
        "after-working-in-digits",
        "2/3",
        "Maria cut the pie into 6 equal pieces and ate 4 of them.\n\nShe ate two-thirds of the pie.",
        True,
    ),
    (
        "so-clause-after-digits",
        "\\frac{2}{3}",
        "Out of the 12 slices she ate 8, so she ate two-thirds of the pie.",
        True,
    ),
    (
        "three-quarters-opened-by-so",
        "\\frac34",
        "The planted part is $\\frac{1}{2} + \\frac{1}{4}$ of the garden. So three quarters of the garden is planted.",
        True,
    ),
    (
        "one-half-of",
        "\\frac{1}{2}",
        "Since the brothers split it equally, each gets one half of the money.",
        True,
    ),
    (
        "after-the-last-copula",
        "\\frac{1}{3}",
        "There are 3 equally likely outcomes and exactly one is favourable, so the probability is one third.",
        True,
    ),
    (
        "a-third-of",
        "\\frac{1}{3}",
        "The three friends share the pizza equally, so each gets a third of it.",
        True,
    ),
    ("after-copula-hyphenated", "\\frac{5}{8}", "The remaining fraction of the tank is five-eighths.", True),
    ("plural-before-adjective", "\\frac{5}{8}", "Therefore the tank is five eighths full.", True),
    ("fourths", "\\frac{3}{4}", "So the probability that at least one head shows is three-fourths.", True),
    ("mixed-number", "\\frac{3}{2}", "Each batch now needs one and a half cups of flour.", True),
    ("mixed-quarters", "\\frac{11}{4}", "In total she used two and three quarters cups of sugar.", True),
    (
        "half-decimal-gold",
        "0.5",
        "Exactly 15 of the 30 students passed, so half of the students passed.",
        True,
    ),
    (
        "two-fifths",
        "\\frac{2}{5}",
        "Two of the five marbles are red, so the chance of red is two fifths.",
        True,
    ),
    ("tenths-decimal-gold", "0.7", "The shaded part is seven-tenths of the square.", True),
    ("hundredths", "0.03", "The error is three hundredths of a metre.", True),
    ("capitalised-exclaimed", "\\frac{2}{3}", "Switching wins with probability Two-Thirds!", True),
    (
        "no-verb-with-probability",
        "\\frac{2}{3}",
        "Since two of the three doors hide a goat, switching wins with probability two-thirds.",
        True,
    ),
    (
        "final-answer-heading",
        "\\frac{3}{4}",
        "**Final Answer**\nThree-quarters of the students walk to school.",
        True,
    ),
    ("answer-phrase", "\\frac{2}{3}", "The answer is two-thirds of the pie.", True),
    (
        "after-think",
        "\\frac{2}{3}",
        "<think>8 of 12 is 2/3, or is it 3/4? No: 2/3.</think>\n\nShe ate two-thirds of the pie.",
        True,
    ),
    ("gold-in-words", "two-thirds", f"${B}{{\\frac{{2}}{{3}}}}$", True),
    ("different-fraction", "\\frac{2}{3}", "She ate three quarters of the pie.", False),
    ("mixed-number-wrong", "\\frac{3}{2}", "Each batch now needs two and a half cups of flour.", False),
    # --- words that are no fraction, and digits that keep their answer ---
    ("one-of-the-two", "\\frac{1}{2}", "Tom picks one of the two boxes at random and opens it.", False),
    ("ordinal", "\\frac{1}{3}", "He was the third of five children to arrive.", False),
    ("a-quarter-mile", "\\frac{1}{4}", "She walked a quarter mile to school.", False),
    ("the-first-half", "3", "The first half of the game was slow, so the final score is 3.", True),
    (
        "digits-after-the-fraction",
        "5",
        "She gave a quarter of her 20 stickers to Sam, so Sam got 5 stickers.",
        True,
    ),
    (
        "digits-after-the-fraction-not-it",
        "\\frac{1}{4}",
        "She gave a quarter of her 20 stickers to Sam, so Sam got 5 stickers.",
        False,
    ),
    ("fraction-as-subject-later", "12", "So she has 12 marbles. Half of them are red.", True),
    ("fraction-as-subject-not-it", "\\frac{1}{2}", "So she has 12 marbles. Half of them are red.", False),
    ("half-in-prose-keeps-number", "10", "She gives away half of her 20 apples, so she has 10 left.", True),
    # --- "all real numbers except ..." ---
    (
        "except-two-values",
        "x \\neq 2, x \\neq 3",
        "The denominator $(x-2)(x-3)$ vanishes at $x=2$ and $x=3$. The function is defined for all real numbers except 2 and 3.",
        True,
    ),
    (
        "except-named-values-vs-union",
        UNION_23,
        "So the domain is all real numbers except $x = 2$ and $x = 3$.",
        True,
    ),
    (
        "except-vs-setminus",
        "\\mathbb{R} \\setminus \\{2, 3\\}",
        "Its domain is all real numbers except 2 and 3.",
        True,
    ),
    (
        "except-plus-minus",
        "(-\\infty,-1)\\cup(-1,1)\\cup(1,\\infty)",
        "It is defined for all real $x$ except $x = \\pm 1$.",
        True,
    ),
    (
        "except-single-vs-union",
        "(-\\infty,-4)\\cup(-4,\\infty)",
        "The domain is all real numbers except $-4$.",
        True,
    ),
    (
        "except-three-oxford",
        "x \\neq 1, x \\neq -2, x \\neq 5",
        "Hence the domain is all real numbers except $1$, $-2$, and $5$.",
        True,
    ),
    (
        "except-after-reason",
        "(-\\infty,0)\\cup(0,5)\\cup(5,\\infty)",
        "The denominator vanishes at $x=0$ and $x=5$, so it is defined for all real numbers except 0 and 5.",
        True,
    ),
    ("union-boxed-vs-relations", "x \\neq 2, x \\neq 3", f"$${B}{{{UNION_23}}}$$", True),
    ("except-one-wrong", UNION_23, "The function is defined for all real numbers except 2 and 4.", False),
    (
        "except-one-missing",
        "(-\\infty,0)\\cup(0,5)\\cup(5,\\infty)",
        "So $f$ is defined for all real numbers except $0$.",
        False,
    ),
    ("except-one-extra", "x \\neq 2", "It is defined for all real numbers except 2 and 3.", False),
    # --- matrices as sums and scalar multiples ---
    ("scalar-times-vector", "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}", f"${B}{{2{V12}}}$", True),
    (
        "scalar-times-matrix",
        "\\begin{pmatrix} 3 & 6 \\\\ -3 & 0 \\end{pmatrix}",
        f"Thus $3A = {B}{{3\\begin{{pmatrix}} 1 & 2 \\\\ -1 & 0 \\end{{pmatrix}}}}$.",
        True,
    ),
    (
        "sum-of-matrices",
        "\\begin{pmatrix} 4 & 6 \\\\ 1 & 5 \\end{pmatrix}",
        "We add entrywise: $A + B = \\begin{pmatrix} 1 & 2 \\\\ 0 & 3 \\end{pmatrix} + \\begin{pmatrix} 3 & 4 \\\\ 1 & 2 \\end{pmatrix}$.",
        True,
    ),
    (
        "difference-of-matrices",
        "\\begin{pmatrix} 1 & 1 \\\\ 1 & 1 \\end{pmatrix}",
        f"${B}{{\\begin{{bmatrix}} 2 & 0 \\\\ 0 & 2 \\end{{bmatrix}} - \\begin{{bmatrix}} 1 & -1 \\\\ -1 & 1 \\end{{bmatrix}}}}$",
        True,
    ),
    (
        "fraction-times-vector",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        f"${B}{{\\frac{{1}}{{3}}\\begin{{pmatrix}} 3 \\\\ 6 \\end{{pmatrix}}}}$",
        True,
    ),
    (
        "negated-vector",
        "\\begin{pmatrix} -1 \\\\ 3 \\end{pmatrix}",
        f"The projection is ${B}{{-\\begin{{pmatrix}} 1 \\\\ -3 \\end{{pmatrix}}}}$.",
        True,
    ),
    (
        "projection-left-as-multiple",
        "\\begin{pmatrix} \\frac{6}{5} \\\\ \\frac{12}{5} \\end{pmatrix}",
        f"So the projection of $\\mathbf{{v}}$ onto $\\mathbf{{u}}$ is ${B}{{\\frac{{6}}{{5}}{V12}}}$.",
        True,
    ),
    ("scalar-on-the-right", "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}", f"$${B}{{{V12} \\cdot 2}}$$", True),
    ("symbolic-scalar", "\\begin{pmatrix} k \\\\ 2k \\end{pmatrix}", f"${B}{{k{V12}}}$", True),
    ("multiple-as-tuple", "(2, 4)", f"${B}{{2{V12}}}$", True),
    (
        "multiple-in-phrase",
        "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}",
        f"Hence the answer is $2{V12}$.",
        True,
    ),
    (
        "multiple-bare",
        "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}",
        "2\\begin{pmatrix}1\\\\2\\end{pmatrix}",
        True,
    ),
    (
        "multiple-labelled",
        "\\begin{pmatrix} 3 \\\\ 6 \\end{pmatrix}",
        f"Therefore $3\\mathbf{{v}} = 3{V12}$.",
        True,
    ),
    (
        "multiple-wrong-entry",
        "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}",
        f"${B}{{2\\begin{{pmatrix}}1\\\\3\\end{{pmatrix}}}}$",
        False,
    ),
    (
        "multiple-is-another-matrix",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        f"${B}{{2\\begin{{pmatrix}} 1 & 2 \\\\ 3 & 4 \\end{{pmatrix}}}}$",
        False,
    ),
    (
        "sum-wrong",
        "\\begin{pmatrix} 4 & 6 \\\\ 1 & 5 \\end{pmatrix}",
        f"${B}{{\\begin{{pmatrix}} 1 & 2 \\\\ 0 & 3 \\end{{pmatrix}} - \\begin{{pmatrix}} 3 & 4 \\\\ 1 & 2 \\end{{pmatrix}}}}$",
        False,
    ),
    # --- functions without brackets on the symbolic path ---
    (
        "scaled-equation-cdot",
        "y = \\sin x \\cdot \\cos x",
        f"Doubling both sides, ${B}{{2y = \\sin 2x}}$.",
        True,
    ),
    (
        "scaled-equation-bracket-after",
        "y = \\sin x (1 + \\cos x)",
        f"${B}{{2y = 2\\sin x + \\sin 2x}}$",
        True,
    ),
    ("hyperbolic-double-angle", "\\sinh x \\cdot \\cosh x", f"${B}{{\\frac{{1}}{{2}}\\sinh 2x}}$", True),
    ("hyperbolic-identity", "\\cosh 2x", f"${B}{{\\cosh^2 x + \\sinh^2 x}}$", True),
    (
        "product-with-tanh",
        "\\sin x \\cdot \\cos x \\cdot \\tanh x",
        f"${B}{{\\frac{{1}}{{2}}\\sin 2x \\tanh x}}$",
        True,
    ),
    ("scaled-equation-wrong", "y = \\sin x \\cdot \\cos x", f"${B}{{2y = \\sin x}}$", False),
    ("power-of-bracketed-argument", "\\sin^2 x", f"${B}{{\\sin(x)^2}}$", True),
    ("common-logarithm", "2", f"${B}{{\\log 100}}$", True),
    ("common-logarithm-not-natural", "\\ln x", f"${B}{{\\log x}}$", False),
    ("log-base-takes-the-product", "3 + \\log_2 x", f"${B}{{\\log_2 8x}}$", True),
]


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=1, timeout=20.0)
    yield v
    v.close()


verdicts, test_case_names_are_unique, test_case = case_table_tests(CASES)


# Plain answers that mean the same with gold and answer swapped.
SYMMETRIC: list[tuple[str, str, bool]] = [
    ("x = 1, x = \\frac{3 \\pm \\sqrt{5}}{2}", "1, \\frac{3+\\sqrt5}{2}, \\frac{3-\\sqrt5}{2}", True),
    ("x = 1, x = \\frac{3 \\pm \\sqrt{5}}{2}", "1, \\frac{3+\\sqrt5}{2}", False),
    ("2 \\pm \\sqrt{3}", "2-\\sqrt{3}, 2+\\sqrt{3}", True),
    ("x \\neq 2, x \\neq 3", UNION_23, True),
    ("\\mathbb{R} \\setminus \\{2, 3\\}", UNION_23, True),
    ("x \\neq \\pm 1", "(-\\infty,-1)\\cup(-1,1)\\cup(1,\\infty)", True),
    ("x \\neq 2", "(-\\infty,2)\\cup(2,\\infty)", True),
    ("x \\neq 2, x \\neq 3", "x \\neq 2", False),
    ("x \\neq 2, x \\neq 3", "(-\\infty,2)\\cup(2,4)\\cup(4,\\infty)", False),
    ("\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}", f"2{V12}", True),
    (
        "\\begin{pmatrix} 2 & 1 \\\\ 1 & 2 \\end{pmatrix}",
        "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}+\\begin{pmatrix}1&1\\\\1&1\\end{pmatrix}",
        True,
    ),
    ("\\frac{3}{2}", "one and a half", True),
    ("\\frac{2}{3}", "two thirds", True),
]


@pytest.mark.parametrize(("a", "b", "expected"), SYMMETRIC)
def test_symmetric(verifier, a, b, expected):
    forward, backward = verifier.verify_pairs([a, b], [b, a])
    assert forward.correct is expected, f"{a!r} vs {b!r}: {forward}"
    assert backward.correct is expected, f"{b!r} vs {a!r}: {backward}"


def test_fraction_words_in_general(verifier):
    """Every numerator and denominator word, hyphenated or not, as the last statement."""
    nums = "one two three four five six seven eight nine".split()
    dens = {
        3: "third",
        4: "quarter",
        5: "fifth",
        6: "sixth",
        7: "seventh",
        8: "eighth",
        9: "ninth",
        10: "tenth",
    }
    golds, responses, expected = [], [], []
    for n, num in enumerate(nums, 1):
        for d, den in dens.items():
            if n >= d:
                continue
            word = den + ("s" if n > 1 else "")
            for sep in ("-", " "):
                golds += [f"\\frac{{{n}}}{{{d}}}", f"\\frac{{{n + 1}}}{{{d}}}"]
                responses += [f"So the tank is {num}{sep}{word} of the way full."] * 2
                expected += [True, False]
    out = verifier.verify_pairs(golds, responses)
    for g, r, e, v in zip(golds, responses, expected, out, strict=True):
        assert v.correct is e, f"{g!r} vs {r!r}: {v}"


def test_symbolic_path_reads_functions_as_the_fast_path_does():
    """The normalised strings the symbolic path receives carry the fast path's reading of a
    function without brackets, so sympy decides what the fast path would have: both agree on
    every pair the fast path decides."""
    pytest.importorskip("latex2sympy2_extended")
    from grpo_fast.verifiers._symbolic import equivalent

    pairs = [
        ("\\sin x \\cdot \\cos x", "\\frac{1}{2}\\sin 2x"),
        ("\\sin x \\cdot \\cos x", "\\sin(x\\cos x)"),
        ("\\sin x (1 + x)", "\\sin(x) + x\\sin(x)"),
        ("\\sin x (1 + x)", "\\sin(x + x^2)"),
        ("\\sin x / 2", "\\frac{\\sin x}{2}"),
        ("\\sin x / 2", "\\sin\\frac{x}{2}"),
        ("\\sin{x}y", "y\\sin x"),
        ("\\sin 2x", "2\\sin x\\cos x"),
        ("\\tan^2 x", "\\sec^2 x - 1"),
        ("\\cos 2\\theta", "\\cos^2\\theta - \\sin^2\\theta"),
        ("\\sin(x)^2", "1 - \\cos^2 x"),
        ("\\log 100", "2"),
        ("\\log x", "\\ln x"),
        ("\\log_2 8x", "3 + \\log_2 x"),
        ("\\ln x^2", "2\\ln x"),
        ("\\sin \\frac{\\pi}{6} x", "\\sin(\\frac{\\pi x}{6})"),
    ]
    decided = 0
    for g, r in pairs:
        fast = _native.math_compare(g, r)
        if fast == 2:
            continue
        decided += 1
        sym = equivalent(_native.math_normalize(g), _native.math_normalize(r))
        assert sym is (fast == 1), f"{g!r} vs {r!r}: fast path {fast}, sympy {sym}"
    assert decided >= len(pairs) - 2
