//! Extraction, class by class: what the answer string is, in model responses (MATH, GSM8K,
//! NuminaMath and OpenThoughts styles) and in gold fields. Each case names the rule it checks.
//! The last tests feed a megabyte of hostile repetition and check that the extractor's work
//! stays linear in its input (counted steps, not time).

use grpo_math::extract::{extract_gold, extract_response, measure_work, Source};
use grpo_math::{check, Options, Verdict};

fn resp(text: &str) -> Option<(String, Source)> {
    extract_response(text, false).map(|e| (e.text, e.source))
}

fn check_responses(cases: &[(&str, &str, Option<&str>, Source)]) {
    for (id, text, want, source) in cases {
        let got = resp(text);
        match want {
            Some(w) => assert_eq!(
                got.as_ref().map(|(t, s)| (t.as_str(), *s)),
                Some((*w, *source)),
                "{id}: {text:?}"
            ),
            None => assert_eq!(got, None, "{id}: {text:?}"),
        }
    }
}

#[test]
fn answer_stated_in_prose_after_the_last_formula() {
    use Source::{Phrase, Statement};
    let cases: &[(&str, &str, Option<&str>, Source)] = &[
        (
            "final-answer-subject-in-math-value-in-prose",
            "We need $\\frac{n(n+1)}{2} \\le 600$, so $n \\le 34$.\n\nFinal Answer: The largest $n$ is 34.",
            Some("34"),
            Phrase,
        ),
        (
            "final-answer-long-subject",
            "Counting: 1 + 2 \\times 9 = 19.\nFinal Answer: The maximum number of points that could be in the domain of $f(x)$ is 19.",
            Some("19"),
            Phrase,
        ),
        (
            "final-answer-no-copula-takes-its-value",
            "So $s = 3$ and $t = s + 5 = 8$.\nFinal Answer: Jane started growing Sphere 3 hours ago. I hope it is correct.",
            Some("3"),
            Phrase,
        ),
        (
            "minerva-format",
            "Thus $x = \\frac{3}{4}$.\nFinal Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.",
            Some("\\frac{3}{4}"),
            Phrase,
        ),
        (
            "conclusion-without-dollars",
            "There are 6 outcomes and 4 of them are favourable. The probability is therefore 2/3.",
            Some("2/3"),
            Statement,
        ),
        (
            "gsm8k-answer-is-with-unit",
            "She buys 3 bags of 4 apples, so she has 3 * 4 = 12 apples. So the answer is 12 apples.",
            Some("12"),
            Phrase,
        ),
        (
            "gsm8k-chain-then-answer-is",
            "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\nThe answer is 72.",
            Some("72"),
            Phrase,
        ),
        (
            "conclusion-subject-in-math",
            "Completing the square gives $(x-2)^2 + 5$. Hence the minimum value of $f(x)$ is 5 when $x = 2$.",
            Some("5"),
            Statement,
        ),
        (
            "conclusion-math-value",
            "Adding the two equations, we get $2a = 7$. Thus, the value of $a + b$ is $\\frac{7}{2}$.",
            Some("\\frac{7}{2}"),
            Statement,
        ),
        (
            "conclusion-equal-to",
            "Therefore, $\\frac{AB}{CD}$ is equal to $\\frac{3}{5}$.",
            Some("\\frac{3}{5}"),
            Statement,
        ),
        (
            "conclusion-followed-by-pleasantry",
            "The remainder when $2^{100}$ is divided by 7 is 2.\n\nI hope this helps! Let me know if you have questions.",
            Some("2"),
            Statement,
        ),
        (
            "openthoughts-bold-after-think",
            "<think>\nLet me count... 143 years.\n</think>\n\nThe number of such years is **143**.",
            Some("143"),
            Statement,
        ),
        (
            "markdown-heading-then-sentence",
            "Area $= \\frac{1}{2} \\cdot 6 \\cdot 8$.\n\n**Final Answer**\nThe area of the triangle is $24$ square units.",
            Some("24"),
            Phrase,
        ),
        (
            "answer-is-then-justification",
            "The final answer is 7, which is the only prime in the list.",
            Some("7"),
            Phrase,
        ),
        (
            "answer-colon-keeps-the-label",
            "Factoring, $(x-1)(x+2) = 0$.\nAnswer: $x = 1$ or $x = -2$.",
            Some("x = 1 or x = -2"),
            Phrase,
        ),
        (
            "roots-stated-in-words",
            "The discriminant is 9, so the solutions are x = 1 or x = -2.",
            Some("x = 1 or x = -2"),
            Statement,
        ),
        (
            "hedge-keeps-both-candidates",
            "It is 4 or maybe 5, I'm not sure.",
            Some("4 or maybe 5"),
            Statement,
        ),
        (
            "percent-word-kept",
            "Out of 80 students, 10 were absent. The answer is 12.5 percent.",
            Some("12.5 percent"),
            Phrase,
        ),
        (
            "approximately",
            "Using the formula, the balance after 5 years is approximately 16386.16 dollars.",
            Some("16386.16"),
            Statement,
        ),
        (
            "ordinal-is-not-the-value",
            "The 2nd smallest root is 5.",
            Some("5"),
            Statement,
        ),
        (
            "no-copula-falls-to-the-last-segment",
            "We get $x=2$ and then compute $y = 7$ finally",
            Some("y = 7"),
            Source::Dollar,
        ),
        (
            "concluding-word-then-roots",
            "The discriminant is $9$, so the roots are distinct.\nTherefore x = 1 or x = -2.",
            Some("x = 1 or x = -2"),
            Statement,
        ),
        (
            "concluding-word-single-value",
            "Each batch makes 4, and 3 batches make 12. So they need 12 more cookies.",
            Some("12"),
            Statement,
        ),
        (
            "segments-joined-by-commas",
            "Solving the system, we conclude that $a = 3$, $b = 4$.",
            Some("a = 3, b = 4"),
            Source::Dollar,
        ),
        (
            "segments-joined-by-or",
            "Factoring, we get $x = 2$ or $x = -3$.",
            Some("x = 2 or x = -3"),
            Source::Dollar,
        ),
        (
            "subject-segment-is-not-joined",
            "Since $x > 0$, $x$ is positive.",
            Some("x"),
            Source::Dollar,
        ),
        (
            "money-is-not-math",
            "He pays $5 for each of the 2 shirts and $10 in total.",
            None,
            Statement,
        ),
        (
            "choice-letter-as-written",
            "Checking each option, only (B) works. The answer is (B) 12.",
            Some("(B) 12"),
            Phrase,
        ),
        (
            "word-answer-as-written",
            "The first day is a Monday, so the answer is Tuesday.",
            Some("Tuesday"),
            Phrase,
        ),
    ];
    check_responses(cases);
}

#[test]
fn gsm8k_money_and_the_numeric_fallback() {
    let with_fallback = |t: &str| extract_response(t, true).map(|e| (e.text, e.source));
    let cases = [
        ("He pays $5 for each and $10 in total.", "10"),
        ("She makes 9 * $2 = $18 every day.", "18"),
        ("That gives us a total of $120.", "120"),
    ];
    for (text, want) in cases {
        assert_eq!(
            with_fallback(text),
            Some((want.to_string(), Source::LastNumber)),
            "{text}"
        );
    }
    let v = |g: &str, r: &str| check(g, r, &Options::default()).verdict;
    assert_eq!(
        v("#### 18", "She makes 9 * $2 = $18 every day."),
        Verdict::Correct
    );
    assert_eq!(v("#### 120", "The total is $120."), Verdict::Correct);
}

#[test]
fn several_boxes_in_the_final_statement_are_one_answer() {
    use Source::Boxed;
    let cases: &[(&str, &str, Option<&str>, Source)] = &[
        ("adjacent", "$\\boxed{1}\\boxed{2}$", Some("1, 2"), Boxed),
        ("and", "so $n = \\boxed{1}$ and $n = \\boxed{-2}$.", Some("1, -2"), Boxed),
        (
            "openthoughts-quad-text-and",
            "Thus, the integers $n$ such that $f(n) = n$ are:\n\\[ \\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}. \\]",
            Some("-2, 1"),
            Boxed,
        ),
        (
            "tuples",
            "The solutions are $\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$",
            Some("(2, 2), (6, 2)"),
            Boxed,
        ),
        (
            "part-labels",
            "$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$",
            Some("(3, 3), (1, 1)"),
            Boxed,
        ),
        (
            "labels-between",
            "Therefore $x = \\boxed{3}$ and $y = \\boxed{4}$.",
            Some("3, 4"),
            Boxed,
        ),
        ("commas", "\\boxed{1},\\boxed{2},\\boxed{3}", Some("1, 2, 3"), Boxed),
        (
            "one-per-line",
            "**Final Answer**\n\\[\\boxed{2}\\]\n\\[\\boxed{3}\\]",
            Some("2, 3"),
            Boxed,
        ),
        (
            "reasoning-box-then-final-box",
            "A first guess is $\\boxed{4}$.\n\nBut checking $n = 4$ fails, so the answer is $\\boxed{5}$.",
            Some("5"),
            Boxed,
        ),
        (
            "sequence-word-is-not-glue",
            "\\boxed{1} then \\boxed{3} and \\boxed{-2}",
            Some("3, -2"),
            Boxed,
        ),
        (
            "repeated-answer-counts-once",
            "the remainder is \\boxed{004}.\n\nSo, \\boxed{004} is the correct answer.\n\n**Final Answer**\n\\boxed{004}",
            Some("004"),
            Boxed,
        ),
        (
            "same-answer-boxed-twice-in-a-row",
            "$\\boxed{840}$ \\boxed{840}",
            Some("840"),
            Boxed,
        ),
        ("candidates-with-or", "\\boxed{4} or \\boxed{5}", Some("4, 5"), Boxed),
        (
            "truncated-last-box-falls-back",
            "so \\boxed{12}. Now the other case: \\boxed{\\frac{1}{",
            Some("12"),
            Boxed,
        ),
        ("nested-box", "\\boxed{\\boxed{5}}", Some("5"), Boxed),
    ];
    check_responses(cases);
}

#[test]
fn several_boxes_against_one_answer_set() {
    let v = |g: &str, r: &str| check(g, r, &Options::default()).verdict;
    // Gold with several boxes against one box listing the same answers, and the reverse.
    assert_eq!(
        v("$\\boxed{1}\\boxed{2}$", "$\\boxed{1,2}$"),
        Verdict::Correct
    );
    assert_eq!(
        v("\\boxed{1} and \\boxed{-2}", "\\boxed{-2,1}"),
        Verdict::Correct
    );
    assert_eq!(
        v("\\boxed{1,-2}", "so \\boxed{-2} and \\boxed{1}"),
        Verdict::Correct
    );
    // A single gold is not answered by several candidates, boxed together or apart.
    assert_eq!(v("4", "\\boxed{4} or \\boxed{5}"), Verdict::Wrong);
    assert_eq!(v("4", "$\\boxed{4}$, $\\boxed{5}$"), Verdict::Wrong);
    // An earlier box in the reasoning does not join the final one.
    assert_eq!(
        v(
            "5",
            "First $\\boxed{4}$?\n\nNo: the answer is $\\boxed{5}$."
        ),
        Verdict::Correct
    );
    // An incomplete set is wrong.
    assert_eq!(v("\\boxed{1}\\boxed{2}", "\\boxed{2}"), Verdict::Wrong);
}

#[test]
fn matrices_inside_prose() {
    use Source::{Dollar, Statement};
    let m = "\\begin{pmatrix} 0 & -1 \\\\ 1 & 0 \\end{pmatrix}";
    let with = |s: &str| s.replace("M", m);
    let cases: Vec<(&str, String, Option<String>, Source)> = vec![
        (
            "bare-environment-in-a-sentence",
            with("Rotating by $90^\\circ$, the rotation matrix is M."),
            Some(m.to_string()),
            Statement,
        ),
        (
            "bare-environment-no-copula",
            with("Putting the images of the basis vectors in columns gives\nM."),
            Some(m.to_string()),
            Dollar,
        ),
        (
            "bmatrix-in-dollars",
            "The inverse is $\\begin{bmatrix} 2 & -1 \\\\ -1 & 1 \\end{bmatrix}$, as $AA^{-1} = I$ checks."
                .to_string(),
            Some("\\begin{bmatrix} 2 & -1 \\\\ -1 & 1 \\end{bmatrix}".to_string()),
            Statement,
        ),
        (
            "last-of-several-matrices",
            "We have $\\mathbf{A}^2 = \\begin{pmatrix} 1 & 2 \\\\ 0 & 1 \\end{pmatrix}$, and so \\[\\mathbf{A}^3 = \\begin{pmatrix} 1 & 3 \\\\ 0 & 1 \\end{pmatrix}.\\]"
                .to_string(),
            Some("\\begin{pmatrix} 1 & 3 \\\\ 0 & 1 \\end{pmatrix}".to_string()),
            Dollar,
        ),
        (
            "vector-in-display-math-after-answer-phrase",
            "The answer is\n\\[\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}.\\]".to_string(),
            Some("\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}.".to_string()),
            Source::Phrase,
        ),
    ];
    for (id, text, want, source) in &cases {
        let got = resp(text);
        assert_eq!(
            got.as_ref().map(|(t, s)| (t.as_str(), *s)),
            want.as_deref().map(|w| (w, *source)),
            "{id}: {text:?}"
        );
    }
    let v = |g: &str, r: &str| check(g, r, &Options::default()).verdict;
    assert_eq!(v(m, &with("So the matrix is M.")), Verdict::Correct);
    assert_eq!(
        v(
            m,
            &with("First $\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$, then M.")
        ),
        Verdict::Correct
    );
}

#[test]
fn gold_fields() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "gsm8k-solution",
            "48/2 = <<48/2=24>>24 clips.\n#### 72",
            Some("72"),
        ),
        (
            "math-solution-last-box",
            "First $\\boxed{2}$, finally $\\boxed{3}$.",
            Some("3"),
        ),
        (
            "math-solution-two-boxes-one-answer",
            "so $a = \\boxed{2}$ and $b = \\boxed{5}$.",
            Some("2, 5"),
        ),
        (
            "boxes-listed",
            "$$\\boxed{2}, \\boxed{3}, \\boxed{5}, \\boxed{7}$$",
            Some("2, 3, 5, 7"),
        ),
        ("bare-latex", "\\frac{\\pi}{2}", Some("\\frac{\\pi}{2}")),
        ("dollar-wrapped", "$(1, 2)$", Some("(1, 2)")),
        (
            "alternatives-kept-whole",
            "(11,7) or (7,11)",
            Some("(11,7) or (7,11)"),
        ),
        (
            "roots-kept-whole",
            "x = 1 or x = -2",
            Some("x = 1 or x = -2"),
        ),
        ("labelled-kept-whole", "(p,q)=(3,2)", Some("(p,q)=(3,2)")),
        ("answer-phrase", "The answer is 5.", Some("5")),
        ("number-with-noun", "5 apples", Some("5")),
        (
            "stated-matrix",
            "The matrix is $\\begin{pmatrix}1\\\\2\\end{pmatrix}$.",
            Some("\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
        ),
        (
            "stated-in-words",
            "The largest possible value is 34.",
            Some("34"),
        ),
        (
            "text-answer",
            "\\text{The midpoints form a regular hexagon}",
            Some("\\text{The midpoints form a regular hexagon}"),
        ),
        ("word", "Monday", Some("Monday")),
        ("unit-text", "10 \\text{ cm}", Some("10 \\text{ cm}")),
        ("empty", "   ", None),
    ];
    for (id, gold, want) in cases {
        assert_eq!(extract_gold(gold).as_deref(), *want, "{id}: {gold:?}");
    }
}

/// A megabyte of each shape: the extractor's counted work must stay within a small multiple of
/// the input (the old box search was quadratic: 83 s for 150k repetitions of `\boxed{`).
#[test]
fn hostile_repetition_is_linear_work() {
    const MB: usize = 1 << 20;
    let rep = |s: &str| s.repeat(MB / s.len());
    let nested = |open: &str, close: &str, n: usize| {
        format!("\\boxed{{{}1{}}}", open.repeat(n), close.repeat(n))
    };
    let shapes: Vec<(&str, String)> = vec![
        ("boxed-open", rep("\\boxed{")),
        ("brace-open", rep("{")),
        ("dollar", rep("$")),
        ("dollar-x", rep("$x")),
        ("frac-open", rep("\\frac{")),
        ("frac-nested", nested("\\frac{1}{", "}", MB / 18)),
        ("paren-open", rep("(")),
        ("paren-nested", nested("(", ")", MB / 2)),
        ("display-open", rep("\\[")),
        ("inline-open", rep("\\(")),
        ("matrix-open", rep("\\begin{pmatrix}")),
        ("boxes-joined", rep("\\boxed{1} and ")),
        (
            "distinct-boxes-joined",
            (0..MB / 20)
                .map(|i| format!("\\boxed{{{i}}} and "))
                .collect(),
        ),
        ("answer-phrases", rep("the answer is ")),
        ("copulas", rep("x is 1 ")),
        ("think", rep("</think>")),
        ("answer-tags", rep("<answer>")),
        ("hashes", rep("####")),
        ("numbers", rep("1,")),
        ("sentences", rep("1. ")),
        ("backslashes", rep("\\")),
        ("unicode", rep("é∞")),
    ];
    for (name, text) in &shapes {
        for fallback in [false, true] {
            let (_, work) = measure_work(|| extract_response(text, fallback));
            assert!(
                work <= 40 * text.len() as u64,
                "{name}: {work} steps for {} bytes",
                text.len()
            );
        }
        let (_, work) = measure_work(|| extract_gold(text));
        assert!(
            work <= 40 * text.len() as u64,
            "{name} (gold): {work} steps"
        );
    }
}

/// The verdicts for hostile input: no answer where nothing is balanced, wrong for a degenerate
/// answer, and never anything that needs the symbolic path for an over-long answer.
#[test]
fn hostile_repetition_verdicts() {
    const MB: usize = 1 << 20;
    let v = |r: &str| check("1", r, &Options::default()).verdict;
    assert_eq!(v(&"\\boxed{".repeat(MB / 7)), Verdict::NoAnswer);
    assert_eq!(v(&"{".repeat(MB)), Verdict::NoAnswer);
    assert_eq!(v(&"\\(".repeat(MB / 2)), Verdict::NoAnswer);
    let nested = format!(
        "\\boxed{{{}1{}}}",
        "\\frac{1}{".repeat(MB / 18),
        "}".repeat(MB / 18)
    );
    assert_eq!(v(&nested), Verdict::Wrong);
    let long = format!("\\boxed{{{}1}}", "1+".repeat(MB / 2));
    assert_eq!(v(&long), Verdict::Wrong);
    // The same over-long answer as the gold is still recognised.
    assert_eq!(
        check(&long, &long, &Options::default()).verdict,
        Verdict::Correct
    );
}
