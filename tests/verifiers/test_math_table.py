"""The math verifier as a table of (gold, response, expected) cases, by category.

Each case: (id naming the rule it checks, gold as a data set stores it, response, expected).
`benches/bench_math.py --table` scores math-verify on the same table for comparison.
"""

from __future__ import annotations

import pytest

from grpo_fast.verifiers.math import MathVerifier

B = "\\boxed"

CASES: list[tuple[str, str, str, bool]] = [
    # --- numeric ---
    ("int-exact", "72", f"so {B}{{72}}", True),
    ("int-trailing-zero-decimal", "72", f"{B}{{72.0}}", True),
    ("int-off-by-one", "72", f"{B}{{73}}", False),
    ("negative-int", "-5", f"{B}{{-5}}", True),
    ("sign-matters", "-5", f"{B}{{5}}", False),
    ("leading-dot-decimal", "0.5", f"{B}{{.5}}", True),
    ("decimal-trailing-zeros", "3.14", f"{B}{{3.140}}", True),
    ("large-int-no-tolerance", "12982", f"{B}{{12983}}", False),
    ("thousands-commas", "1000000", f"{B}{{1,000,000}}", True),
    ("power-of-ten", "1000000", f"{B}{{10^6}}", True),
    ("scientific-times", "1.5\\times10^{3}", f"{B}{{1500}}", True),
    ("scientific-e", "2.5e-3", f"{B}{{0.0025}}", True),
    ("thin-space-thousands", "1234", f"{B}{{1\\,234}}", True),
    ("braced-thousands", "1234", f"{B}{{1{{,}}234}}", True),
    ("zero", "0", f"{B}{{0}}", True),
    ("negative-zero", "0", f"{B}{{-0}}", True),
    ("decimal-near-miss", "100", f"{B}{{100.01}}", False),
    ("terminating-decimals-exact", "2.5", f"{B}{{2.50001}}", False),
    ("integer-arith-expression", "12", f"{B}{{3 \\times 4}}", True),
    ("unary-plus", "7", f"{B}{{+7}}", True),
    # --- fractions ---
    ("frac-vs-decimal", "\\frac{1}{2}", f"{B}{{0.5}}", True),
    ("frac12-vs-dfrac", "\\frac12", f"{B}{{\\dfrac{{1}}{{2}}}}", True),
    ("slash-fraction", "\\frac{3}{4}", f"{B}{{3/4}}", True),
    ("unreduced-fraction", "\\frac{3}{4}", f"{B}{{\\frac{{6}}{{8}}}}", True),
    ("inverted-fraction", "\\frac{3}{4}", f"{B}{{\\frac{{4}}{{3}}}}", False),
    ("negative-numerator", "-\\frac{2}{3}", f"{B}{{\\frac{{-2}}{{3}}}}", True),
    ("negative-denominator", "-\\frac{2}{3}", f"{B}{{\\frac{{2}}{{-3}}}}", True),
    ("fraction-sign-matters", "-\\frac{2}{3}", f"{B}{{\\frac{{2}}{{3}}}}", False),
    ("repeating-decimal-6-places", "\\frac{1}{3}", f"{B}{{0.333333}}", True),
    ("repeating-decimal-too-coarse", "\\frac{1}{3}", f"{B}{{0.33}}", False),
    ("mixed-number", "3\\frac{1}{2}", f"{B}{{\\frac{{7}}{{2}}}}", True),
    ("mixed-number-vs-decimal", "3\\frac{1}{2}", f"{B}{{3.5}}", True),
    ("tfrac", "\\tfrac{5}{2}", f"{B}{{2.5}}", True),
    ("factorial-fractions-differ", "\\frac{1}{2004!}", f"{B}{{\\frac{{1}}{{2006!}}}}", False),
    ("reducible-gold", "\\frac{10}{4}", f"{B}{{\\frac{{5}}{{2}}}}", True),
    ("frac-of-fracs", "\\frac{\\frac{1}{2}}{\\frac{1}{4}}", f"{B}{{2}}", True),
    # --- percent ---
    ("percent-vs-number", "28", f"{B}{{28\\%}}", True),
    ("number-vs-percent-gold", "28\\%", f"{B}{{28}}", True),
    ("percent-vs-fraction-of-one", "0.28", f"{B}{{28\\%}}", True),
    ("percent-differs", "28\\%", f"{B}{{29\\%}}", False),
    ("percent-vs-half", "50\\%", f"{B}{{\\frac{{1}}{{2}}}}", True),
    ("percent-word", "12.5\\%", "The answer is 12.5 percent.", True),
    ("no-percent-no-scaling", "28", f"{B}{{0.28}}", False),
    # --- units and text ---
    ("unit-text", "10", f"{B}{{10 \\text{{ cm}}}}", True),
    ("unit-squared", "10", f"{B}{{10\\text{{ cm}}^2}}", True),
    ("currency-dollar", "18", f"{B}{{\\$18}}", True),
    ("currency-cents", "18.50", f"{B}{{\\$18.50}}", True),
    ("degrees-circ", "90", f"{B}{{90^\\circ}}", True),
    ("degrees-gold", "90^\\circ", f"{B}{{90}}", True),
    ("degrees-braced", "45", f"{B}{{45^{{\\circ}}}}", True),
    ("text-answer", "\\text{Monday}", f"{B}{{\\text{{Monday}}}}", True),
    ("text-answer-differs", "\\text{Monday}", f"{B}{{Tuesday}}", False),
    ("trailing-noun", "5", f"{B}{{5 \\text{{ apples}}}}", True),
    ("word-unit-after-hashes", "20", "The total is 20 dollars.\n#### 20", True),
    ("text-parity-differs", "\\text{even}", f"{B}{{\\text{{odd}}}}", False),
    ("unit-word-meters", "8", f"{B}{{8 \\text{{ meters}}}}", True),
    ("mbox-unit", "3", f"{B}{{3 \\mbox{{ hours}}}}", True),
    ("case-insensitive-word", "\\text{Yes}", f"{B}{{yes}}", True),
    # --- multiple choice ---
    ("choice-letter", "B", f"{B}{{B}}", True),
    ("choice-parenthesised", "B", f"{B}{{(B)}}", True),
    ("choice-text-gold", "\\text{(B)}", f"{B}{{B}}", True),
    ("choice-text-response", "(C)", f"{B}{{\\text{{(C)}}}}", True),
    ("choice-differs", "C", f"{B}{{D}}", False),
    ("choice-bold", "A", f"{B}{{\\textbf{{(A)}}}}", True),
    ("choice-with-value", "B", f"{B}{{(B) 12}}", True),
    ("choice-other-letter", "E", f"{B}{{A}}", False),
    ("choice-phrase", "D", "The answer is (D).", True),
    # --- radicals, pi, e ---
    ("sqrt-short-arg", "\\sqrt{2}", f"{B}{{\\sqrt2}}", True),
    ("sqrt-simplified", "2\\sqrt{3}", f"{B}{{\\sqrt{{12}}}}", True),
    ("rationalised-denominator", "\\frac{\\sqrt{2}}{2}", f"{B}{{\\frac{{1}}{{\\sqrt{{2}}}}}}", True),
    ("missing-radical-factor", "4", f"{B}{{4\\sqrt{{2}}}}", False),
    ("sqrt-decimal-8-digits", "\\sqrt{2}", f"{B}{{1.41421356}}", True),
    ("sqrt-decimal-too-coarse", "\\sqrt{2}", f"{B}{{1.414}}", False),
    ("pi-two-decimals-not-exact", "\\pi", f"{B}{{3.14}}", False),
    ("pi-spacing", "2\\pi", f"{B}{{2 \\pi}}", True),
    ("pi-half-forms", "\\frac{\\pi}{2}", f"{B}{{\\frac{{1}}{{2}}\\pi}}", True),
    ("pi-r-squared-commuted", "\\pi r^2", f"{B}{{r^2 \\pi}}", True),
    ("e-power-braces", "e^2", f"{B}{{e^{{2}}}}", True),
    ("e-decimal", "e", f"{B}{{2.718281828}}", True),
    ("cube-root", "\\sqrt[3]{8}", f"{B}{{2}}", True),
    ("sqrt-18", "3\\sqrt{2}", f"{B}{{\\sqrt{{18}}}}", True),
    ("sqrt-17-differs", "3\\sqrt{2}", f"{B}{{\\sqrt{{17}}}}", False),
    ("sqrt-of-reciprocal", "\\sqrt{\\frac{1}{n}}", f"{B}{{\\frac{{1}}{{\\sqrt{{n}}}}}}", True),
    ("sqrt-125", "5\\sqrt{5}", f"{B}{{\\sqrt{{125}}}}", True),
    ("pi-differs-by-factor", "2\\pi", f"{B}{{\\pi}}", False),
    # --- algebraic expressions ---
    ("factored-vs-expanded", "x^2-1", f"{B}{{(x-1)(x+1)}}", True),
    ("wrong-factorisation", "x^2-1", f"{B}{{(x-1)^2}}", False),
    ("commuted-sum", "2x+3", f"{B}{{3+2x}}", True),
    ("split-fraction", "\\frac{x+1}{2}", f"{B}{{\\frac{{x}}{{2}}+\\frac{{1}}{{2}}}}", True),
    ("binomial-square", "a^2+2ab+b^2", f"{B}{{(a+b)^2}}", True),
    ("binomial-square-wrong", "a^2+b^2", f"{B}{{(a+b)^2}}", False),
    ("braced-exponent", "6x^2", f"{B}{{6x^{{2}}}}", True),
    ("wrong-exponent", "x^3", f"{B}{{x^2}}", False),
    ("negative-exponent", "\\frac{1}{x}", f"{B}{{x^{{-1}}}}", True),
    ("power-rule", "2^{x+1}", f"{B}{{2\\cdot 2^x}}", True),
    ("pythagorean-identity", "1", f"{B}{{\\sin^2 x + \\cos^2 x}}", True),
    ("log-power", "\\ln 8", f"{B}{{3\\ln 2}}", True),
    ("triangular-number", "\\frac{n(n+1)}{2}", f"{B}{{\\frac{{n^2+n}}{{2}}}}", True),
    ("different-variable", "2x", f"{B}{{2y}}", False),
    # --- equations ---
    ("equation-commuted", "y=2x+3", f"{B}{{y=3+2x}}", True),
    ("equation-differs", "y=2x+3", f"{B}{{y=2x+4}}", False),
    ("equation-rhs-only", "y=2x+3", f"{B}{{2x+3}}", True),
    ("assignment-gold", "x=5", f"{B}{{5}}", True),
    ("assignment-response", "5", f"{B}{{x=5}}", True),
    ("equation-scaled", "2y=4x+6", f"{B}{{y=2x+3}}", True),
    ("circle-commuted", "x^2+y^2=1", f"{B}{{y^2+x^2=1}}", True),
    ("different-equations", "x+y=1", f"{B}{{x-y=1}}", False),
    ("circle-radius-differs", "x^2+y^2=4", f"{B}{{x^2+y^2=9}}", False),
    ("equation-sides-swapped", "y=2x+3", f"{B}{{2x+3=y}}", True),
    # --- sets ---
    ("set-unordered", "\\{1,2\\}", f"{B}{{\\{{2,1\\}}}}", True),
    ("set-extra-element", "\\{1,2\\}", f"{B}{{\\{{1,2,3\\}}}}", False),
    ("set-wrong-element", "\\{1,2\\}", f"{B}{{\\{{1,3\\}}}}", False),
    ("set-signs", "\\{-1, 1\\}", f"{B}{{\\{{1,-1\\}}}}", True),
    ("empty-set-synonyms", "\\emptyset", f"{B}{{\\varnothing}}", True),
    ("set-equal-values", "\\{\\frac12, 3\\}", f"{B}{{\\{{3, 0.5\\}}}}", True),
    ("set-left-right", "\\{1,2\\}", f"{B}{{\\left\\{{1, 2\\right\\}}}}", True),
    # --- tuples and points ---
    ("tuple-equal", "(1,2)", f"{B}{{(1,2)}}", True),
    ("tuple-order-matters", "(1,2)", f"{B}{{(2,1)}}", False),
    ("tuple-left-right", "(1,2)", f"{B}{{\\left(1, 2\\right)}}", True),
    ("tuple-equal-values", "(\\frac12, 3)", f"{B}{{(0.5, 3)}}", True),
    ("tuple-length-differs", "(1,2,3)", f"{B}{{(1,2)}}", False),
    ("point-negative", "(3,-4)", f"{B}{{(3, -4)}}", True),
    ("point-radical", "(0, \\sqrt{2})", f"{B}{{(0, \\sqrt2)}}", True),
    ("point-wrong-coordinate", "(3,-4)", f"{B}{{(3, 4)}}", False),
    # --- intervals and inequalities ---
    ("interval-half-open", "[1,2)", f"{B}{{[1,2)}}", True),
    ("interval-end-matters", "[1,2)", f"{B}{{[1,2]}}", False),
    ("interval-vs-inequality", "(-\\infty, 2]", f"{B}{{x \\le 2}}", True),
    ("inequality-vs-interval", "x \\le 2", f"{B}{{(-\\infty, 2]}}", True),
    ("strict-vs-closed", "x < 2", f"{B}{{(-\\infty, 2]}}", False),
    ("interval-to-infinity", "(2, \\infty)", f"{B}{{(2, \\infty)}}", True),
    ("union-reordered", "(-\\infty,1)\\cup(2,\\infty)", f"{B}{{(2,\\infty)\\cup(-\\infty,1)}}", True),
    ("union-end-differs", "(-\\infty,1)\\cup(2,\\infty)", f"{B}{{(-\\infty,1]\\cup(2,\\infty)}}", False),
    ("double-inequality", "[-3, 3]", f"{B}{{-3 \\le x \\le 3}}", True),
    ("open-interval-vs-inequality", "(0, 1)", f"{B}{{0 < x < 1}}", True),
    ("geq-vs-interval", "x \\ge 5", f"{B}{{[5, \\infty)}}", True),
    ("membership-prefix", "[1, 2]", f"{B}{{x \\in [1, 2]}}", True),
    # --- matrices and vectors ---
    ("matrix-spacing", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", f"{B}{{\\begin{{pmatrix}} 1 \\\\ 2 \\end{{pmatrix}}}}", True),
    ("matrix-entry-differs", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", f"{B}{{\\begin{{pmatrix}} 1 \\\\ 3 \\end{{pmatrix}}}}", False),
    ("matrix-bracket-style", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     f"{B}{{\\begin{{bmatrix}} 1 & 2 \\\\ 3 & 4 \\end{{bmatrix}}}}", True),
    ("matrix-transposed", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     f"{B}{{\\begin{{pmatrix}} 1 & 3 \\\\ 2 & 4 \\end{{pmatrix}}}}", False),
    ("matrix-equal-values", "\\begin{pmatrix} \\frac12 \\\\ 1 \\end{pmatrix}",
     f"{B}{{\\begin{{pmatrix}} 0.5 \\\\ 1 \\end{{pmatrix}}}}", True),
    ("matrix-shape-differs", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", f"{B}{{\\begin{{pmatrix}} 1 \\\\ 2 \\end{{pmatrix}}}}", False),
    # --- complex numbers ---
    ("complex-commuted", "3+4i", f"{B}{{4i+3}}", True),
    ("complex-conjugate", "3+4i", f"{B}{{3-4i}}", False),
    ("imaginary-unit", "i", f"{B}{{i}}", True),
    ("complex-split-fraction", "\\frac{1+i}{2}", f"{B}{{\\frac12 + \\frac{{i}}{{2}}}}", True),
    ("sqrt-negative", "2i", f"{B}{{\\sqrt{{-4}}}}", True),
    ("complex-sign", "1-i", f"{B}{{1+i}}", False),
    # --- infinity ---
    ("infinity", "\\infty", f"{B}{{\\infty}}", True),
    ("infinity-sign", "\\infty", f"{B}{{-\\infty}}", False),
    ("negative-infinity", "-\\infty", f"{B}{{-\\infty}}", True),
    ("infinity-vs-large", "\\infty", f"{B}{{1000000}}", False),
    # --- multiple answers ---
    ("roots-reordered", "-2, 3", f"{B}{{3, -2}}", True),
    ("roots-incomplete", "-2, 3", f"{B}{{3}}", False),
    ("roots-as-assignments", "-2, 3", f"{B}{{x=3, x=-2}}", True),
    ("plus-minus-expanded", "1 \\pm \\sqrt{2}", f"{B}{{1+\\sqrt2, 1-\\sqrt2}}", True),
    ("plus-minus-integer", "\\pm 2", f"{B}{{2, -2}}", True),
    ("roots-with-and", "2, 3", f"{B}{{2 \\text{{ and }} 3}}", True),
    ("roots-missing-one", "1, 2, 3", f"{B}{{1, 2}}", False),
    ("roots-extra-one", "3, 5", f"{B}{{3, 5, 7}}", False),
    # --- reward hacking ---
    ("hack-text-or", "4", f"{B}{{4 \\text{{ or }} 5}}", False),
    ("hack-list-of-candidates", "4", f"{B}{{1, 2, 3, 4}}", False),
    ("hack-set-of-candidates", "4", f"{B}{{\\{{4, 5\\}}}}", False),
    ("hack-last-number-counts", "4", "It is 4 or maybe 5, I'm not sure.", False),
    ("hack-two-boxes-last-counts", "4", f"{B}{{4}} {B}{{5}}", False),
    ("hack-revised-answer", "4", "The answer is 4. Wait, no: the answer is 5.", False),
    ("hack-pair", "4", f"{B}{{4, 5}}", False),
    ("hack-variable", "4", f"{B}{{x}}", False),
    ("hack-empty-box", "4", f"{B}{{}}", False),
    ("hack-no-answer", "4", "I don't know.", False),
    ("hack-bare-or", "4", f"{B}{{4 or 5}}", False),
    ("hack-or-inside-text", "4", f"{B}{{\\text{{4 or 5}}}}", False),
    ("hack-plus-minus", "2", f"{B}{{2 \\pm 1}}", False),
    # --- GSM8K gold forms ---
    ("gsm8k-solution-gold", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", f"{B}{{72}}", True),
    ("gsm8k-commas-gold", "She pays 10 * 100 = 1000.\n#### 1,000", "The answer is 1000.", True),
    ("gsm8k-negative-gold", "#### -3", f"{B}{{-3}}", True),
    ("gsm8k-last-number-fallback", "#### 72", "She earned 72 dollars in total.", True),
    ("gsm8k-fallback-equation", "#### 72", "Total: 70 + 2 = 72", True),
    ("gsm8k-decimal-response", "#### 72", f"{B}{{72.00}}", True),
    ("gsm8k-currency-response", "#### 18", f"{B}{{\\$18}}", True),
    ("gsm8k-wrong", "#### 5", f"so {B}{{6}}", False),
    ("gsm8k-hashes-in-response", "#### 42", "6 * 7 = 42\n#### 42", True),
    # --- MATH boxed gold forms ---
    ("math-solution-gold", "We have ... so the answer is $\\boxed{\\frac{\\pi}{2}}$.", f"{B}{{\\dfrac{{\\pi}}{{2}}}}", True),
    ("math-gold-last-box", "First $\\boxed{2}$, finally $\\boxed{3}$.", f"{B}{{3}}", True),
    ("math-gold-vs-minerva-format", "Thus $x = \\boxed{5}$.", "Final Answer: The final answer is $5$. I hope it is correct.", True),
    ("math-gold-choice", "$\\boxed{\\text{(C)}}$", f"{B}{{C}}", True),
    ("math-gold-tuple", "$\\boxed{(1,2)}$", f"{B}{{(1,2)}}", True),
    ("math-gold-roots", "The solutions are $\\boxed{-1, 4}$.", f"{B}{{4, -1}}", True),
    ("math-gold-fraction-vs-decimal", "$\\boxed{\\frac{3}{4}}$", f"{B}{{0.75}}", True),
    ("math-gold-fraction-wrong-decimal", "$\\boxed{\\frac{3}{4}}$", f"{B}{{0.7}}", False),
    ("math-gold-nested-braces", "$\\boxed{\\frac{\\sqrt{3}}{2}}$", f"{B}{{\\frac{{\\sqrt 3}}{{2}}}}", True),
    # --- extraction formats ---
    ("fbox", "7", "\\fbox{7}", True),
    ("boxed-space-form", "7", "so \\boxed 7", True),
    ("final-answer-colon", "7", "Final Answer: 7", True),
    ("dollar-segment", "\\frac{1}{2}", "the result is $\\frac{1}{2}$", True),
    ("markdown-bold-answer", "7", "**Answer:** 7", True),
    ("bare-latex-response", "\\frac{1}{2}", "\\frac12", True),
    ("bare-dollar-response", "x^2", "$x^2$", True),
    ("display-math-response", "9", "Therefore \\[ \\boxed{9} \\]", True),
    ("answer-is-with-period", "3.5", "So the answer is 3.5.", True),
    # --- more forms seen in data sets ---
    ("gsm8k-dollar-gold", "#### $18", f"{B}{{18}}", True),
    ("repeating-decimal-overline", "0.\\overline{3}", f"{B}{{\\frac13}}", True),
    ("base-subscript-dropped", "1011_2", f"{B}{{1011}}", True),
    ("base-subscript-value-differs", "1011_2", f"{B}{{11}}", False),
    ("angle-bracket-vector", "\\langle 1, 2 \\rangle", f"{B}{{(1,2)}}", True),
    ("union-as-or-inequalities", "(-\\infty, -2) \\cup (3, \\infty)", f"{B}{{x < -2 \\text{{ or }} x > 3}}", True),
    ("euler-identity", "e^{i\\pi}", f"{B}{{-1}}", True),
    ("complex-decimals", "\\frac{3}{5}+\\frac{4}{5}i", f"{B}{{0.6+0.8i}}", True),
    ("choice-gold-with-value", "\\textbf{(C) } 15", f"{B}{{C}}", True),
    ("choice-gold-value-answer", "\\textbf{(C) } 15", f"{B}{{15}}", True),
    ("factorial-gold", "5!", f"{B}{{120}}", True),
    ("exact-big-power", "2^{100}", f"{B}{{1267650600228229401496703205376}}", True),
    ("exact-big-power-off-by-one", "2^{100}", f"{B}{{1267650600228229401496703205377}}", False),
    ("empty-braces-set", "\\emptyset", f"{B}{{\\{{\\}}}}", True),
    ("assignments-vs-point", "x = 1, y = 2", f"{B}{{(1, 2)}}", True),
    ("point-vs-assignments-swapped", "(1, 2)", f"{B}{{x=2, y=1}}", False),
    ("column-vector-vs-tuple", "\\begin{pmatrix} 2 \\\\ 3 \\end{pmatrix}", f"{B}{{(2, 3)}}", True),
    ("infinity-word", "\\infty", f"{B}{{\\text{{infinity}}}}", True),
    ("closed-vs-half-open-inequality", "[2, 5]", f"{B}{{2 < x \\leq 5}}", False),
    ("equation-rearranged", "x+2y=4", f"{B}{{y = 2 - \\frac{{x}}{{2}}}}", True),
    ("equation-coefficients-swapped", "3x+y=7", f"{B}{{x+3y=7}}", False),
    ("pi-half-rounded-4", "\\frac{\\pi}{2}", f"{B}{{1.5708}}", False),
    ("bold-final-answer", "5", "So, the final answer is **5**.", True),
    ("word-number-after-answer-phrase", "5", "answer: five", True),
    ("word-number-wrong", "5", "answer: six", False),
    ("compound-unit", "5", f"{B}{{5 \\text{{ m/s}}}}", True),
    ("boxes-one-by-one-for-list", "-2, 3", f"so {B}{{3}} and {B}{{-2}}", True),
    ("boxes-one-by-one-wrong", "-2, 3", f"so {B}{{3}} and {B}{{4}}", False),
    ("hack-equals-chain", "4", f"{B}{{1 = 2 = 3 = 4}}", False),
    ("arithmetic-then-result", "5", f"{B}{{2 + 3 = 5}}", True),
    ("function-definition", "x^2+1", f"{B}{{f(x) = x^2 + 1}}", True),
    ("hack-interval-for-number", "8", f"{B}{{(-\\infty, 8]}}", False),
    ("final-answer-after-think-wins", "5", f"<think>maybe {B}{{4}}</think> The answer is 5.", True),
    ("boxed-in-think-counts-without-final", "4", f"<think>it is {B}{{4}}</think>", True),
    ("answer-tags", "\\frac{1}{2}", "<think>half</think><answer>\\frac{1}{2}</answer>", True),
    ("answer-tags-wrong", "\\frac{1}{2}", "<think>half</think><answer>\\frac{1}{3}</answer>", False),
    ("short-word-case", "\\text{no}", f"{B}{{\\text{{No}}}}", True),
    ("rounded-to-6-places-small-value", "\\frac{1}{6}", f"{B}{{0.166667}}", True),
    ("rounded-wrongly-at-6-places", "\\frac{1}{6}", f"{B}{{0.166666}}", False),
    ("array-matrix-with-brackets", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     f"{B}{{\\left[\\begin{{array}}{{cc}} 1 & 2 \\\\ 3 & 4 \\end{{array}}\\right]}}", True),
    ("real-line-words", "\\text{all real numbers}", f"{B}{{\\mathbb{{R}}}}", True),
    ("abs-inequality-union", "(-\\infty, -3) \\cup (3, \\infty)", f"{B}{{|x| > 3}}", True),
    ("complex-polar", "1+\\sqrt{3}i", f"{B}{{2e^{{i\\pi/3}}}}", True),
    ("nested-boxed-gold", "\\boxed{\\boxed{5}}", f"{B}{{5}}", True),
    ("tuple-is-not-a-number", "7", f"{B}{{(7, 8)}}", False),
    ("roots-in-parentheses", "-2, 3", f"{B}{{(3, -2)}}", True),
    ("point-without-parentheses", "(1, 2)", f"{B}{{1, 2}}", True),
    ("point-without-parentheses-swapped", "(1, 2)", f"{B}{{2, 1}}", False),
    ("prose-gold-phrase", "The answer is 5.", f"{B}{{5}}", True),
    ("prose-gold-with-noun", "5 apples", f"{B}{{5}}", True),
    ("gold-roots-with-and", "-2 and 3", f"{B}{{3, -2}}", True),
    ("unevaluated-sum", "55", f"{B}{{\\sum_{{k=1}}^{{10}} k}}", True),
    ("unevaluated-sum-off-by-one", "55", f"{B}{{\\sum_{{k=1}}^{{11}} k}}", False),
    ("definite-integral", "\\frac{1}{3}", f"{B}{{\\int_0^1 x^2\\,dx}}", True),
    ("exclamation-ends-sentence", "5", "The answer is 5!", True),

]


def test_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 150
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def verdicts():
    """All cases in one batch, as the verifier is used (one pool, groups of work)."""
    with MathVerifier(timeout=10.0) as v:
        out = v.verify_pairs([c[1] for c in CASES], [c[2] for c in CASES])
    return {c[0]: vd for c, vd in zip(CASES, out, strict=True)}


@pytest.mark.parametrize(("gold", "response", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case(verdicts, request, gold, response, expected):
    vd = verdicts[request.node.callspec.id]
    assert vd.correct is expected, f"{gold!r} vs {response!r}: {vd}"
    assert vd.score == (1.0 if expected else 0.0)


def test_case_alone_matches_batch(verdicts):
    """A case checked on its own gets the verdict it gets inside a batch (no cross-talk through
    the gold cache or the worker pool)."""
    with MathVerifier(timeout=10.0) as v:
        for cid, gold, response, _ in CASES[::15]:
            assert v.verify_pairs([gold], [response])[0].correct is verdicts[cid].correct, cid
