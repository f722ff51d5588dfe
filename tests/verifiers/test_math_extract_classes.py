"""Extraction classes of the math verifier, end to end: which string is the answer, in realistic
model outputs (MATH/Minerva, GSM8K, NuminaMath and OpenThoughts styles) and in gold fields.

Each case: (id naming the rule, gold as a data set stores it, response, expected correctness).
Comparison rules (labels, relations, number formats) are tested in test_math_compare_classes.py;
here the answers are chosen so that only extraction decides.
"""

from __future__ import annotations

import numpy as np
import pytest

from grpo_fast import _native
from grpo_fast.verifiers.math import MathVerifier, gold_text

B = "\\boxed"

THINK = (
    "<think>\nOkay, let me work through this. First I tried n = 10, which is too small. "
    "Then n = 40 overshoots, so the answer is somewhere in between.\n</think>\n\n"
)

CASES: list[tuple[str, str, str, bool]] = [
    # --- the answer stated in prose after the last formula ---
    (
        "prose-final-answer-subject-in-math",
        "34",
        "We need $\\frac{n(n+1)}{2} \\le 600$, which holds for $n \\le 34$.\n\nFinal Answer: The largest $n$ is 34.",
        True,
    ),
    (
        "prose-final-answer-subject-wrong-value",
        "34",
        "We need $\\frac{n(n+1)}{2} \\le 600$.\n\nFinal Answer: The largest $n$ is 35.",
        False,
    ),
    (
        "prose-final-answer-long-subject",
        "19",
        "So the total is $1 + 2 \\times 9 = 19$ points.\nFinal Answer: The maximum number of points that could be "
        "in the domain of $f(x)$ is 19. I hope it is correct.",
        True,
    ),
    (
        "prose-final-answer-no-copula",
        "3",
        "Let $s$ be the hours since Sphere started; then $t = s + 5$ and $2^{s+6} = 2^{2s+3}$, so $s = 3$.\n"
        "Final Answer: Jane started growing Sphere 3 hours ago.",
        True,
    ),
    (
        "prose-probability-no-dollars",
        "\\frac{2}{3}",
        "There are 6 equally likely outcomes and 4 of them are favourable. The probability is therefore 2/3.",
        True,
    ),
    (
        "prose-probability-no-dollars-wrong",
        "\\frac{2}{3}",
        "There are 6 equally likely outcomes and 3 of them are favourable. The probability is therefore 1/2.",
        False,
    ),
    (
        "prose-gsm8k-answer-with-unit",
        "12",
        "She buys 3 bags with 4 apples in each, so she has 3 * 4 = 12 apples.\nSo the answer is 12 apples.",
        True,
    ),
    (
        "prose-gsm8k-answer-is",
        "#### 72",
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48 + 24 = 72 clips altogether in April and May.\n"
        "The answer is 72.",
        True,
    ),
    (
        "prose-minimum-value-then-where",
        "5",
        "Completing the square, $f(x) = (x-2)^2 + 5$. Hence the minimum value of $f(x)$ is 5 when $x = 2$.",
        True,
    ),
    (
        "prose-value-after-subject-segment",
        "\\frac{7}{2}",
        "Adding the equations gives $2(a+b) = 7$. Thus, the value of $a + b$ is $\\frac{7}{2}$.",
        True,
    ),
    (
        "prose-remainder-with-pleasantry",
        "2",
        "Since $2^3 \\equiv 1 \\pmod 7$ and $100 = 3 \\cdot 33 + 1$, we get $2^{100} \\equiv 2$. "
        "The remainder when $2^{100}$ is divided by 7 is 2.\n\nI hope this helps!",
        True,
    ),
    (
        "prose-openthoughts-bold-summary",
        "143",
        THINK + "Each valid year is $2000 + 7k$ for an integer $k$.\n\nThe number of such years is **143**.",
        True,
    ),
    (
        "prose-heading-then-sentence",
        "24",
        "Area $= \\frac{1}{2} \\cdot 6 \\cdot 8$.\n\n**Final Answer**\nThe area of the triangle is $24$ square units.",
        True,
    ),
    (
        "prose-answer-then-justification",
        "7",
        "Checking the candidates 4, 6, 7 and 9, the final answer is 7, which is the only prime in the list.",
        True,
    ),
    (
        "prose-concluding-word-single-value",
        "12",
        "Each batch makes 4 cookies and they have 3 batches left to bake. So they need 12 more cookies.",
        True,
    ),
    (
        "prose-approximately",
        "16386.16",
        "$A = 10000(1.025)^{20} \\approx 16386.16$. So, Paula's investment is worth approximately 16386.16 dollars "
        "at the end of the 5 years.",
        True,
    ),
    ("prose-hedge-is-not-an-answer", "4", "Hmm, it is 4 or maybe 5, I'm not sure.", False),
    ("prose-ordinal-is-not-the-value", "5", "The 2nd smallest root is 5.", True),
    (
        "prose-money-is-not-math",
        "#### 15",
        "He pays $5 for each shirt and $10 for the hat, so he pays 15 dollars in total.",
        True,
    ),
    (
        "prose-money-gsm8k-fallback",
        "#### 18",
        "She makes 9 * $2 = $18 every day at the farmer's market.",
        True,
    ),
    # --- several answers ---
    (
        "multi-gold-adjacent-boxes",
        "$\\boxed{1}\\boxed{2}$",
        f"Both work, so the answer is ${B}{{1,2}}$.",
        True,
    ),
    ("multi-gold-boxes-with-and", "\\boxed{1} and \\boxed{-2}", f"The roots are ${B}{{-2,1}}$.", True),
    ("multi-gold-boxes-vs-one-root", "\\boxed{1} and \\boxed{-2}", f"The root is ${B}{{1}}$.", False),
    (
        "multi-openthoughts-quad-and",
        "1, -2",
        THINK + "Solving $n^2 + n - 2 = 0$ gives\n\\[ n = 1 \\quad \\text{and} \\quad n = -2. \\]\n"
        f"Thus, the integers are:\n\\[ {B}{{-2}} \\quad \\text{{and}} \\quad {B}{{1}}. \\]",
        True,
    ),
    (
        "multi-numina-tuples-boxed-apart",
        "(2, 2), (6, 2)",
        f"The solutions are $$ {B}{{(2, 2)}} \\quad \\text{{and}} \\quad {B}{{(6, 2)}} $$",
        True,
    ),
    (
        "multi-part-labels",
        "(3, 3), (1, 1)",
        f"$$ {B}{{(3, 3)}} \\text{{ for part (a) and }} {B}{{(1, 1)}} $$",
        True,
    ),
    (
        "multi-labelled-boxes",
        "k = 45, n = 2",
        f"$$ {B}{{k = 45}} \\quad \\text{{and}} \\quad {B}{{n = 2}} $$",
        True,
    ),
    (
        "multi-boxes-listed-gold",
        "$$\\boxed{2}, \\boxed{3}, \\boxed{5}, \\boxed{7}$$",
        "The primes below 10 are $\\{2, 3, 5, 7\\}$, so the answer is $\\boxed{2, 3, 5, 7}$.",
        True,
    ),
    (
        "multi-earlier-box-is-not-joined",
        "5",
        f"A first guess is ${B}{{4}}$.\n\nBut $n = 4$ fails the second condition, so the answer is ${B}{{5}}$.",
        True,
    ),
    ("multi-candidates-for-single-gold", "4", f"It could be ${B}{{4}}$ or ${B}{{5}}$.", False),
    (
        "multi-repeated-answer-counts-once",
        "840",
        f"So the count is {B}{{840}}. Let me double check... yes.\n\n**Final Answer**\n{B}{{840}}",
        True,
    ),
    ("multi-roots-in-words", "1, -2", "The discriminant is $9$, so the solutions are x = 1 or x = -2.", True),
    ("multi-roots-concluded", "1, -2", "Factoring, $(x-1)(x+2) = 0$.\nTherefore x = 1 or x = -2.", True),
    ("multi-roots-joined-segments", "1, -2", "Factoring $(x-1)(x+2) = 0$, we get $x = 1$ or $x = -2$.", True),
    ("multi-roots-joined-segments-incomplete", "1, -2", "Factoring, we get $x = 1$.", False),
    # --- matrices ---
    (
        "matrix-bare-env-in-prose",
        "\\begin{pmatrix} 0 & -1 \\\\ 1 & 0 \\end{pmatrix}",
        "Rotating by $90^\\circ$ sends $e_1$ to $e_2$ and $e_2$ to $-e_1$, so the rotation matrix is "
        "\\begin{pmatrix} 0 & -1 \\\\ 1 & 0 \\end{pmatrix}.",
        True,
    ),
    (
        "matrix-bare-env-wrong-entry",
        "\\begin{pmatrix} 0 & -1 \\\\ 1 & 0 \\end{pmatrix}",
        "So the rotation matrix is \\begin{pmatrix} 0 & 1 \\\\ -1 & 0 \\end{pmatrix}.",
        False,
    ),
    (
        "matrix-bmatrix-in-dollars",
        "\\begin{pmatrix} 2 & -1 \\\\ -1 & 1 \\end{pmatrix}",
        "The inverse is $\\begin{bmatrix} 2 & -1 \\\\ -1 & 1 \\end{bmatrix}$, as multiplying by $A$ gives $I$.",
        True,
    ),
    (
        "matrix-last-of-several",
        "\\begin{pmatrix} 1 & 3 \\\\ 0 & 1 \\end{pmatrix}",
        "We have $\\mathbf{A}^2 = \\begin{pmatrix} 1 & 2 \\\\ 0 & 1 \\end{pmatrix}$, and so\n"
        "\\[\\mathbf{A}^3 = \\begin{pmatrix} 1 & 3 \\\\ 0 & 1 \\end{pmatrix}.\\]",
        True,
    ),
    (
        "matrix-not-the-intermediate-one",
        "\\begin{pmatrix} 1 & 2 \\\\ 0 & 1 \\end{pmatrix}",
        "We have $\\mathbf{A}^2 = \\begin{pmatrix} 1 & 2 \\\\ 0 & 1 \\end{pmatrix}$, and so\n"
        "\\[\\mathbf{A}^3 = \\begin{pmatrix} 1 & 3 \\\\ 0 & 1 \\end{pmatrix}.\\]",
        False,
    ),
    (
        "matrix-vector-after-answer-phrase",
        "\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}",
        "The direction vector is found from $t = 2x = 3y = -z$. The answer is\n"
        "\\[\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}.\\]",
        True,
    ),
    (
        "matrix-gold-in-prose",
        "The matrix is $\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$.",
        f"${B}{{\\begin{{pmatrix}} 1 \\\\ 2 \\end{{pmatrix}}}}$",
        True,
    ),
    # --- gold fields ---
    ("gold-prose-statement", "The largest possible value is 34.", f"{B}{{34}}", True),
    ("gold-math-solution-two-boxes", "so $a = \\boxed{2}$ and $b = \\boxed{5}$.", f"{B}{{2, 5}}", True),
    (
        "gold-math-solution-last-box",
        "First $\\boxed{2}$ is ruled out, finally $\\boxed{3}$.",
        f"{B}{{3}}",
        True,
    ),
]


def test_ids_are_unique():
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def verdicts():
    with MathVerifier(timeout=10.0, workers=1) as v:
        out = v.verify_pairs([c[1] for c in CASES], [c[2] for c in CASES])
    return {c[0]: vd for c, vd in zip(CASES, out, strict=True)}


@pytest.mark.parametrize(("gold", "response", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case(verdicts, request, gold, response, expected):
    vd = verdicts[request.node.callspec.id]
    assert vd.correct is expected, f"{gold!r} vs {response!r}: {vd}"


@pytest.mark.parametrize(
    ("response", "answer", "source"),
    [
        ("Final Answer: The largest $n$ is 34.", "34", "phrase"),
        ("The probability is therefore 2/3.", "2/3", "statement"),
        ("So the answer is 12 apples.", "12", "phrase"),
        ("\\boxed{1} and \\boxed{-2}", "1, -2", "boxed"),
        (
            "so \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
            "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
            "statement",
        ),
        ("Therefore x = 1 or x = -2.", "x = 1 or x = -2", "statement"),
    ],
)
def test_extracted_string_and_source(response, answer, source):
    """What the verifier reports as `extracted` and `details["source"]`."""
    assert _native.math_extract(response, False) == (answer, source)


@pytest.mark.parametrize(
    ("stored", "text"),
    [
        (72, "72"),
        (72.0, "72"),
        (0.5, "0.5"),
        (-3, "-3"),
        ([1, -2], "1, -2"),
        (("3", "4"), "3, 4"),
        (np.int64(7), "7"),
        (np.float32(2.5), "2.5"),
        (np.array([1, 2]), "1, 2"),
        (b"\\frac{1}{2}", "\\frac{1}{2}"),
        ("#### 72", "#### 72"),
        (None, None),
        ([], None),
    ],
)
def test_gold_text_of_stored_values(stored, text):
    assert gold_text(stored) == text


def test_numpy_gold_verifies():
    with MathVerifier() as v:
        (vd,) = v.verify_pairs([gold_text(np.int64(72))], ["So the answer is 72."])
    assert vd.correct is True


MB = 1 << 20
HOSTILE = [
    # (id, response, acceptable reasons) -- a megabyte each; gold "1".
    ("boxed-open", "\\boxed{" * (MB // 7), {"no_answer"}),
    ("brace-open", "{" * MB, {"no_answer"}),
    ("dollar", "$" * MB, {"no_answer"}),
    ("frac-nested", "\\boxed{" + "\\frac{1}{" * (MB // 18) + "1" + "}" * (MB // 18) + "}", {"wrong"}),
    ("paren-nested", "\\boxed{" + "(" * (MB // 2) + "1" + ")" * (MB // 2) + "}", {"wrong"}),
    ("paren-open-after-phrase", "The answer is " + "(" * MB, {"wrong", "timeout"}),
    ("display-open", "\\[" * (MB // 2), {"no_answer"}),
    ("boxes-listed", "".join(f"\\boxed{{{i}}} and " for i in range(MB // 20)), {"wrong"}),
    ("copulas", "x is 2 " * (MB // 7), {"wrong"}),
]


@pytest.mark.timeout(60)
def test_hostile_megabyte_inputs_get_cheap_verdicts():
    """Degenerate policy output: each shape gets the verdict it deserves, from the fast path
    except where the extracted answer is prose-sized garbage for sympy. The work bound itself is asserted in
    rust/math/tests/extract_classes.rs (counted steps); here the bound is pytest-timeout's."""
    with MathVerifier(timeout=2.0, workers=1) as v:
        out = v.verify_pairs(["1"] * len(HOSTILE), [h[1] for h in HOSTILE])
    for (hid, _, ok), vd in zip(HOSTILE, out, strict=True):
        assert vd.reason in ok, (hid, vd.reason, (vd.extracted or "")[:40])
