//! Comparison classes as specifications: labelled answers, several answers and sets,
//! relations, number formats, rounded decimals, and inputs whose verdict is cheap however
//! large they look. Each case names the rule it checks; responses are written the way models
//! write them (MATH, GSM8K, NuminaMath and OpenThoughts styles). Every rule that is symmetric
//! is checked with gold and answer swapped, in the table and by property tests.

use grpo_math::compare::{compare, Decision};
use grpo_math::normalize::normalize;
use grpo_math::{check, Options, Verdict};
use proptest::prelude::*;

use Verdict::{Correct, Wrong};

/// (rule, gold as a data set stores it, model response, expected verdict of the fast path).
const RESPONSES: &[(&str, &str, &str, Verdict)] = &[
    // --- labelled answers ---
    (
        "labelled-point-vs-assignments",
        "(p,q)=(3,2)",
        "\\boxed{p=3, q=2}",
        Correct,
    ),
    (
        "assignments-swapped-values",
        "x=2, y=3",
        "\\boxed{x=3, y=2}",
        Wrong,
    ),
    (
        "assignments-any-order-plain",
        "x=2, y=3",
        "\\boxed{y=3, x=2}",
        Correct,
    ),
    ("different-variable", "a=2", "\\boxed{b=2}", Wrong),
    (
        "measure-of-angle-label",
        "m\\angle A = 30^\\circ",
        "\\boxed{30}",
        Correct,
    ),
    (
        "probability-label",
        "P(A) = \\frac{1}{4}",
        "\\boxed{0.25}",
        Correct,
    ),
    ("product-label", "xy = 12", "\\boxed{12}", Correct),
    ("power-is-no-label", "x^2 = 4", "\\boxed{4}", Wrong),
    (
        "labelled-pair-gold",
        "$(p,q)=(3,2)$",
        "So the only pair is $\\boxed{(3, 2)}$.",
        Correct,
    ),
    (
        "labelled-pair-response",
        "(3,2)",
        "Hence \\boxed{(p, q) = (3, 2)}.",
        Correct,
    ),
    (
        "labelled-pair-order-matters",
        "(p,q)=(3,2)",
        "\\boxed{(2, 3)}",
        Wrong,
    ),
    (
        "labelled-triple",
        "$(p,q,r)=(3,2,7)$",
        "The primes are $\\boxed{(3,2,7)}$",
        Correct,
    ),
    (
        "segment-labels-list",
        "$AB=4,CD=5$",
        "Thus the lengths are $\\boxed{4, 5}$.",
        Correct,
    ),
    (
        "segment-labels-response",
        "4, 5",
        "\\boxed{AB = 4,\\ CD = 5}",
        Correct,
    ),
    ("segment-labels-wrong", "AB=4, CD=5", "\\boxed{4, 6}", Wrong),
    (
        "ratio-label",
        "$\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}$",
        "$\\boxed{\\frac1{\\sqrt6}}$",
        Correct,
    ),
    (
        "ratio-label-response",
        "\\frac1{\\sqrt6}",
        "\\boxed{\\frac{NO}{BO} = \\frac{\\sqrt{6}}{6}}",
        Correct,
    ),
    (
        "ratio-label-wrong",
        "\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}",
        "\\boxed{\\frac{1}{\\sqrt{5}}}",
        Wrong,
    ),
    (
        "absolute-value-label",
        "$|AB|=1$",
        "so the distance is $\\boxed{1}$",
        Correct,
    ),
    (
        "colon-ratio-label",
        "$V_{1}:V_{2}=11:21$",
        "$\\boxed{11:21}$",
        Correct,
    ),
    (
        "function-value-label",
        "f(3) = 12",
        "Therefore $f(3) = \\boxed{12}$.",
        Correct,
    ),
    ("assignment-gold", "x = 5", "\\boxed{5}", Correct),
    (
        "assignment-response",
        "3",
        "The value is $\\boxed{k=3}$.",
        Correct,
    ),
    (
        "angle-label",
        "\\angle ABC = 60^\\circ",
        "so the angle measures $\\boxed{60^\\circ}$",
        Correct,
    ),
    ("sum-is-no-label", "x+y=5", "\\boxed{5}", Wrong),
    (
        "label-on-first-item",
        "\\boxed{a=4,\\,-8,\\,-10}",
        "$\\boxed{-10,-8,4}$",
        Correct,
    ),
    (
        "point-label-then-and",
        "(5, 8), (8, 5)",
        "\\boxed{(x, y) = (5, 8) \\quad \\text{and} \\quad (8, 5)}",
        Correct,
    ),
    (
        "assignments-any-order",
        "a_3 = 2, a_{37} = 19",
        "\\boxed{a_{37} = 19, \\quad a_3 = 2}",
        Correct,
    ),
    (
        "assignments-as-point",
        "(-5, \\frac{14}{3})",
        "\\boxed{x = -5,\\ p = \\frac{14}{3}}",
        Correct,
    ),
    // --- several answers and sets ---
    (
        "roots-with-or-vs-set",
        "\\{3, 4\\}",
        "\\boxed{x = 3 \\text{ or } x = 4}",
        Correct,
    ),
    (
        "membership-in-finite-set",
        "3, 4",
        "\\boxed{x \\in \\{3, 4\\}}",
        Correct,
    ),
    (
        "or-between-pairs",
        "$(11,7)or(7,11)$",
        "$\\boxed{(7,11),\\ (11,7)}$",
        Correct,
    ),
    (
        "or-between-pairs-text",
        "(11,7) \\text{ or } (7,11)",
        "\\boxed{(7,11), (11,7)}",
        Correct,
    ),
    (
        "pairs-one-missing",
        "(11,7) \\text{ or } (7,11)",
        "\\boxed{(7,11)}",
        Wrong,
    ),
    (
        "semicolon-tuple",
        "(0;-2;6)",
        "\\boxed{(0, -2, 6)}",
        Correct,
    ),
    (
        "semicolon-tuple-response",
        "(0,-2,6)",
        "\\boxed{(0;-2;6)}",
        Correct,
    ),
    (
        "semicolon-tuple-order-matters",
        "(0;-2;6)",
        "\\boxed{(0,6,-2)}",
        Wrong,
    ),
    (
        "semicolon-points",
        "$(0;0;0),(0;-2;6),(4;0;0)$",
        "\\boxed{(4, 0, 0), (0, -2, 6), (0, 0, 0)}",
        Correct,
    ),
    (
        "semicolon-list",
        "$-12;-11;-10;-8$",
        "$\\boxed{\\{-12, -11, -10, -8\\}}$",
        Correct,
    ),
    (
        "semicolon-solutions",
        "$p=5,q=2;p=7,q=2$",
        "$\\boxed{(5,2),(7,2)}$",
        Correct,
    ),
    (
        "semicolon-solutions-wrong",
        "p=5,q=2;p=7,q=2",
        "\\boxed{(2,5),(7,2)}",
        Wrong,
    ),
    (
        "set-braces-vs-bare",
        "\\{1,2\\}",
        "The roots are $\\boxed{1, 2}$.",
        Correct,
    ),
    (
        "bare-vs-set-reordered",
        "1,2",
        "\\boxed{\\{2,1\\}}",
        Correct,
    ),
    (
        "set-missing-element",
        "\\{1,2,3\\}",
        "\\boxed{\\{1,2\\}}",
        Wrong,
    ),
    ("and-list", "1 and -2", "\\boxed{-2, 1}", Correct),
    (
        "roots-as-assignments",
        "x=1, x=-2",
        "\\boxed{-2, 1}",
        Correct,
    ),
    (
        "roots-as-assignments-wrong",
        "x=1, x=-2",
        "\\boxed{-1, 2}",
        Wrong,
    ),
    ("tuple-is-not-a-set", "(1,2)", "\\boxed{(2,1)}", Wrong),
    (
        "repeated-solution-counts-once",
        "$(37,3,3,13),(17,3,3,7),(3,3,2,3)$",
        "\\boxed{(3, 3, 2, 3), (17,3,3,7), (37, 3, 3, 13), (17, 3, 3, 7)}",
        Correct,
    ),
    (
        "repeated-solution-still-needs-all",
        "(37,3,3,13),(17,3,3,7),(3,3,2,3)",
        "\\boxed{(3,3,2,3), (3,3,2,3), (17,3,3,7)}",
        Wrong,
    ),
    (
        "spaced-comma-is-a-list",
        "32349",
        "The answer is $\\boxed{32, 349}$",
        Wrong,
    ),
    (
        "unspaced-comma-is-thousands",
        "32349",
        "The answer is $\\boxed{32,349}$",
        Correct,
    ),
    (
        "double-escaped-latex",
        "$\\\\left(\\\\frac{1}{5},\\\\frac{1}{6}\\\\right)$",
        "The final answer is $\\left( \\frac{1}{5}, \\frac{1}{6} \\right)$.",
        Correct,
    ),
    (
        "double-escaped-inequality",
        "$-2 \\\\le x \\\\le 7$",
        "$\\boxed{x \\in [-2,7]}$",
        Correct,
    ),
    // --- relations ---
    (
        "neq-different-value",
        "x \\neq 3",
        "\\boxed{x \\neq 4}",
        Wrong,
    ),
    (
        "membership-half-line",
        "x > 3",
        "\\boxed{x \\in (3, \\infty)}",
        Correct,
    ),
    (
        "neq-spelled",
        "x \\neq 3",
        "We find that $\\boxed{x != 3}$.",
        Correct,
    ),
    ("neq-ne", "x \\ne 3", "\\boxed{x \\neq 3}", Correct),
    ("chain-last-side", "11", "\\boxed{x = 5+5+1 = 11}", Correct),
    (
        "chain-wrong-working-right-value",
        "x = 11",
        "$\\boxed{x = 5+5+1 = 7 = 11}$",
        Correct,
    ),
    (
        "chain-wrong-value",
        "x = 11",
        "\\boxed{x = 5+5+1 = 12}",
        Wrong,
    ),
    (
        "chain-of-values-every-side-claims",
        "4",
        "\\boxed{1 = 2 = 3 = 4}",
        Wrong,
    ),
    (
        "chain-without-label-consistent",
        "5",
        "\\boxed{2+3=5}",
        Correct,
    ),
    (
        "chain-without-label-wrong",
        "4",
        "\\boxed{4 = 4\\sqrt{2}}",
        Wrong,
    ),
    (
        "inequality-vs-membership",
        "-2 \\le x \\le 7",
        "so $\\boxed{x \\in [-2,7]}$",
        Correct,
    ),
    (
        "interval-vs-inequality",
        "[-2,7]",
        "\\boxed{-2 \\le x \\le 7}",
        Correct,
    ),
    (
        "interval-vs-inequality-open",
        "[-2,7]",
        "\\boxed{-2 < x \\le 7}",
        Wrong,
    ),
    (
        "function-bounded",
        "$0<f(x)<1$",
        "$\\boxed{(0,1)}$",
        Correct,
    ),
    ("half-line", "(3, \\infty)", "\\boxed{x > 3}", Correct),
    (
        "half-line-closed-is-different",
        "(3, \\infty)",
        "\\boxed{x \\geq 3}",
        Wrong,
    ),
    (
        "lt-command",
        "x < 3",
        "We find that $\\boxed{x \\lt 3}$.",
        Correct,
    ),
    (
        "le-ascii",
        "x \\leq 2",
        "Thus $\\boxed{x <= 2}$ is our answer.",
        Correct,
    ),
    ("ge-ascii", "x \\geq 5", "\\boxed{x >= 5}", Correct),
    (
        "flipped-inequality",
        "x \\leq 5",
        "\\boxed{5 \\geq x}",
        Correct,
    ),
    (
        "membership-real-line",
        "\\mathbb{R}",
        "\\boxed{x \\in (-\\infty, \\infty)}",
        Correct,
    ),
    (
        "approx-after-exact",
        "\\frac{1}{3}",
        "\\boxed{x = \\frac{1}{3} \\approx 0.33}",
        Correct,
    ),
    ("approx-only", "11", "$\\boxed{x \\approx 11}$", Correct),
    ("factorial-not-neq", "120", "\\boxed{5!=120}", Correct),
    // --- numbers ---
    (
        "rounded-seventh",
        "\\frac{1}{7}",
        "\\boxed{0.1429}",
        Correct,
    ),
    (
        "rounded-negative",
        "-\\frac{5}{3}",
        "\\boxed{-1.6667}",
        Correct,
    ),
    (
        "rounded-up-wrongly",
        "\\frac{1}{3}",
        "\\boxed{0.3334}",
        Wrong,
    ),
    ("decimal-comma-one-digit", "1.5", "\\boxed{1,5}", Correct),
    (
        "rounded-percent",
        "\\frac{1}{3}",
        "\\boxed{33.33\\%}",
        Correct,
    ),
    (
        "rounded-percent-two-thirds",
        "\\frac23",
        "\\boxed{66.67\\%}",
        Correct,
    ),
    (
        "rounded-percent-too-coarse",
        "\\frac{1}{3}",
        "\\boxed{33.3\\%}",
        Wrong,
    ),
    (
        "decimal-comma-percent",
        "12.5\\%",
        "\\boxed{12,5 \\%}",
        Correct,
    ),
    (
        "membership-real-numbers",
        "\\mathbb{R}",
        "\\boxed{x \\in \\mathbb{R}}",
        Correct,
    ),
    ("spaced-list-is-no-decimal", "3.5", "\\boxed{3, 5}", Wrong),
    (
        "connector-list-is-no-decimal",
        "4.5",
        "\\boxed{4 \\text{ or } 5}",
        Wrong,
    ),
    (
        "spaced-list-gold-is-no-decimal",
        "3, 5",
        "\\boxed{3.5}",
        Wrong,
    ),
    ("decimal-comma-not-an-integer", "15", "\\boxed{1,5}", Wrong),
    ("comma-list-against-list", "1,5", "\\boxed{5,1}", Correct),
    ("decimal-comma", "1000.99", "\\boxed{1000,99}", Correct),
    (
        "decimal-comma-short",
        "2.74",
        "Le prix est donc de $\\boxed{2,74}$ euros.",
        Correct,
    ),
    ("decimal-comma-gold", "1,22", "\\boxed{1.22}", Correct),
    (
        "decimal-comma-leading-zero",
        "0,111",
        "\\boxed{0.111}",
        Correct,
    ),
    ("decimal-comma-negative", "-3.5", "\\boxed{-3,5}", Correct),
    ("decimal-comma-wrong", "2.74", "\\boxed{2,75}", Wrong),
    (
        "thousands-separator-stays",
        "1000",
        "The total is $\\boxed{1,000}$ dollars.",
        Correct,
    ),
    (
        "thousands-separator-not-decimal",
        "1",
        "\\boxed{1,000}",
        Wrong,
    ),
    (
        "thousands-separator-gsm8k",
        "#### 7425000",
        "The answer is $\\boxed{7,425,000}$",
        Correct,
    ),
    (
        "list-of-two-stays-a-list",
        "-2, 3",
        "\\boxed{3,-2}",
        Correct,
    ),
    ("percent-word", "$28\\%$", "$\\boxed{28 percent}$", Correct),
    ("percent-pct", "$28\\%$", "$\\boxed{28 pct}$", Correct),
    (
        "percent-percentage",
        "$28\\%$",
        "$\\boxed{28 percentage}$",
        Correct,
    ),
    ("percent-per-cent", "28\\%", "\\boxed{28 per cent}", Correct),
    (
        "percent-word-vs-fraction",
        "0.28",
        "\\boxed{28 pct}",
        Correct,
    ),
    ("percent-word-wrong", "28\\%", "\\boxed{27 percent}", Wrong),
    ("rounded-third", "\\frac13", "\\boxed{0.3333}", Correct),
    (
        "rounded-interval",
        "$(0.6, 2.6667]$",
        "\\boxed{\\left(\\frac{3}{5}, \\frac{8}{3}\\right]}",
        Correct,
    ),
    (
        "rounded-interval-response",
        "(\\frac35, \\frac83]",
        "\\boxed{(0.6, 2.6667]}",
        Correct,
    ),
    (
        "rounded-twelfth",
        "\\frac{1}{12}",
        "\\boxed{0.0833}",
        Correct,
    ),
    ("rounded-too-coarse", "\\frac13", "\\boxed{0.33}", Wrong),
    ("rounded-two-places", "\\frac83", "\\boxed{2.67}", Wrong),
    (
        "truncated-not-rounded",
        "\\frac83",
        "\\boxed{2.6666}",
        Wrong,
    ),
    (
        "rounded-too-few-significant",
        "\\frac{1}{12000}",
        "\\boxed{0.0001}",
        Wrong,
    ),
    ("terminating-exact-only", "\\frac18", "\\boxed{0.13}", Wrong),
    (
        "terminating-trailing-zero",
        "\\frac18",
        "\\boxed{0.1250}",
        Correct,
    ),
    ("pi-two-places", "\\pi", "\\boxed{3.14}", Wrong),
    (
        "irrational-four-places",
        "\\sqrt2",
        "\\boxed{1.4142}",
        Wrong,
    ),
    (
        "irrational-six-places",
        "\\sqrt2",
        "\\boxed{1.414214}",
        Correct,
    ),
    ("degrees", "$90^\\circ$", "\\boxed{90}", Correct),
    ("degrees-response", "90", "\\boxed{90^{\\circ}}", Correct),
    (
        "unit-cm-squared",
        "$15\\mbox{ cm}^2$",
        "The area is $\\boxed{15 \\text{ cm}^2}$.",
        Correct,
    ),
    ("unit-wrong-number", "15", "\\boxed{16\\text{ cm}}", Wrong),
    ("dfrac", "\\frac{3}{4}", "\\boxed{\\dfrac{3}{4}}", Correct),
    ("tfrac-short", "\\frac12", "\\boxed{\\tfrac12}", Correct),
    ("slash-vs-decimal", "1/2", "\\boxed{0.5}", Correct),
    (
        "root-of-ratio",
        "\\sqrt{1/n}",
        "\\boxed{1/\\sqrt{n}}",
        Correct,
    ),
    ("root-of-ratio-wrong", "\\sqrt{1/n}", "\\boxed{1/n}", Wrong),
];

fn verdict(gold: &str, resp: &str) -> Verdict {
    check(gold, resp, &Options::default()).verdict
}

#[test]
fn responses_table() {
    let mut failures = Vec::new();
    for (rule, gold, resp, want) in RESPONSES {
        let got = verdict(gold, resp);
        if got != *want {
            failures.push(format!(
                "{rule}: {gold:?} vs {resp:?}: got {got:?}, want {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bare answers: compared both ways round, the verdict must be the same.
const SYMMETRIC: &[(&str, &str, Decision)] = &[
    ("(p,q)=(3,2)", "(3,2)", Decision::Equal),
    ("AB=4, CD=5", "4, 5", Decision::Equal),
    (
        "\\frac{NO}{BO}=\\frac{1}{\\sqrt6}",
        "\\frac1{\\sqrt6}",
        Decision::Equal,
    ),
    ("|AB|=1", "2", Decision::NotEqual),
    ("x = 5", "5", Decision::Equal),
    ("k=3", "4", Decision::NotEqual),
    ("(11,7) or (7,11)", "(7,11),(11,7)", Decision::Equal),
    ("(0;-2;6)", "(0,-2,6)", Decision::Equal),
    ("p=5,q=2;p=7,q=2", "(7,2),(5,2)", Decision::Equal),
    ("\\{1,2\\}", "2, 1", Decision::Equal),
    ("x=1, x=-2", "-2, 1", Decision::Equal),
    ("x \\neq 3", "x != 3", Decision::Equal),
    ("x = 5+5+1 = 11", "11", Decision::Equal),
    ("x = 5+5+1 = 12", "11", Decision::NotEqual),
    ("-2 \\le x \\le 7", "x \\in [-2,7]", Decision::Equal),
    ("[-2,7]", "x \\in [-2,7]", Decision::Equal),
    ("0<f(x)<1", "(0,1)", Decision::Equal),
    ("x > 3", "(3, \\infty)", Decision::Equal),
    ("1000,99", "1000.99", Decision::Equal),
    ("2,74", "2.7", Decision::NotEqual),
    ("2, 74", "2.74", Decision::NotEqual),
    ("1,000", "1000", Decision::Equal),
    ("28 percent", "28\\%", Decision::Equal),
    ("28 pct", "0.28", Decision::Equal),
    ("0.3333", "\\frac13", Decision::Equal),
    ("(0.6, 2.6667]", "(3/5, 8/3]", Decision::Equal),
    ("0.33", "\\frac13", Decision::NotEqual),
    ("3.14", "\\pi", Decision::NotEqual),
    ("10 \\text{ cm}", "10", Decision::Equal),
    ("\\dfrac{1}{2}", "0.5", Decision::Equal),
    ("\\sqrt{1/n}", "1/\\sqrt{n}", Decision::Equal),
    ("10^{10^{10^{10}}}", "5", Decision::NotEqual),
    ("10^{10^{10^{10}}}", "10^{10^{10^{10}}}", Decision::Equal),
    ("2^{2^{30}}", "2^{2^{30}}", Decision::Equal),
    ("2^{2^{30}}", "4^{2^{29}}", Decision::Equal),
    ("2^{2^{30}}", "2^{2^{30}+1}", Decision::NotEqual),
    ("2^{2^{30}}", "-2^{2^{30}}", Decision::NotEqual),
    ("2^{2^{30}}", "1024", Decision::NotEqual),
    ("100000000!", "5", Decision::NotEqual),
    ("100000000!", "(10^{8})!", Decision::Equal),
    ("100000000!", "100000001!", Decision::NotEqual),
    ("10^{-10^{10^{10}}}", "1", Decision::NotEqual),
    ("10^{-10^{10^{10}}}", "0", Decision::NotEqual),
    ("2^{100000}", "4^{50000}", Decision::Equal),
    ("2^{100000}", "2^{100001}", Decision::NotEqual),
    ("1000000!", "1000001!", Decision::NotEqual),
    ("\\sqrt{10^{10^{10}}}", "3", Decision::NotEqual),
    ("x \\neq 3", "x \\neq 4", Decision::NotEqual),
    ("a=2", "b=2", Decision::NotEqual),
    ("9^{9^{9}}", "9^{9^{9}} + 1", Decision::Undecided),
];

#[test]
fn symmetric_table() {
    let mut failures = Vec::new();
    for (a, b, want) in SYMMETRIC {
        let (na, nb) = (normalize(a), normalize(b));
        for (x, y) in [(&na, &nb), (&nb, &na)] {
            let got = compare(x, y);
            if got != *want {
                failures.push(format!("{x:?} vs {y:?}: got {got:?}, want {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn deep_parentheses_around_a_number_are_decided() {
    for depth in [1, 10, 200, 1_000, 1_500] {
        let wrapped = format!("\\boxed{{{}5{}}}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(verdict("5", &wrapped), Correct, "depth {depth}");
        assert_eq!(verdict("6", &wrapped), Wrong, "depth {depth}");
        let braces = format!("\\boxed{{{}5{}}}", "{".repeat(depth), "}".repeat(depth));
        assert_eq!(verdict("5", &braces), Correct, "braces depth {depth}");
    }
}

#[test]
fn towers_and_factorials_against_small_numbers_are_decided() {
    for (gold, resp, want) in [
        ("5", "\\boxed{10^{10^{10^{10}}}}", Wrong),
        ("10^{10^{10^{10}}}", "\\boxed{5}", Wrong),
        ("2^{2^{30}}", "\\boxed{2^{2^{30}}}", Correct),
        ("5", "\\boxed{100000000!}", Wrong),
        ("100000000!", "\\boxed{100000000!}", Correct),
        ("3", "\\boxed{\\frac{10^{10^{10}}}{10^{10^{10}}-1}}", Wrong),
        // Within 10^{-10^{10}} of 1: no bound tells, the symbolic path decides.
        (
            "1",
            "\\boxed{\\frac{10^{10^{10}}}{10^{10^{10}}-1}}",
            Verdict::Undecided,
        ),
    ] {
        assert_eq!(verdict(gold, resp), want, "{gold} vs {resp}");
    }
}

/// Labels a model or a data set puts before a value.
fn label() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "x",
        "k",
        "a_1",
        "a_{37}",
        "AB",
        "|AB|",
        "\\frac{NO}{BO}",
        "f(x)",
        "f(2)",
        "V_1:V_2",
        "\\angle ABC",
        "S_{\\triangle ABC}",
        "\\theta",
        "P(A)",
    ])
}

fn both_ways(a: &str, b: &str) -> (Decision, Decision) {
    let (na, nb) = (normalize(a), normalize(b));
    (compare(&na, &nb), compare(&nb, &na))
}

/// `num/den` correctly rounded to `places` digits (half up; num, den > 0), in units of the
/// last place.
fn rounded_units(num: i64, den: i64, places: u32) -> i128 {
    let scale = 10i128.pow(places);
    (2 * i128::from(num) * scale + i128::from(den)) / (2 * i128::from(den))
}

fn as_decimal(units: i128, places: u32) -> String {
    let scale = 10i128.pow(places);
    format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = places as usize
    )
}

proptest! {
    #[test]
    fn a_label_never_changes_the_value(l in label(), p in -999i64..999, q in 1i64..50) {
        let value = format!("\\frac{{{p}}}{{{q}}}");
        let labelled = format!("{l} = {value}");
        prop_assert_eq!(both_ways(&labelled, &value), (Decision::Equal, Decision::Equal));
        let other = format!("\\frac{{{}}}{{{q}}}", p + 1);
        prop_assert_eq!(both_ways(&labelled, &other), (Decision::NotEqual, Decision::NotEqual));
    }

    #[test]
    fn labelled_lists_match_bare_lists(a in -99i64..99, b in -99i64..99) {
        prop_assume!(a != b);
        let labelled = format!("AB={a}, CD={b}");
        prop_assert_eq!(both_ways(&labelled, &format!("{a}, {b}")), (Decision::Equal, Decision::Equal));
        prop_assert_eq!(both_ways(&labelled, &format!("{a}, {}", b + 100)), (Decision::NotEqual, Decision::NotEqual));
    }

    #[test]
    fn rounded_rationals_are_judged_by_their_digits(p in 1i64..2000, q in 3i64..400, places in 4u32..8) {
        // Only non-terminating fractions: a terminating one must be written exactly.
        let mut d = q / gcd(p, q);
        for f in [2, 5] { while d % f == 0 { d /= f; } }
        prop_assume!(d != 1);
        prop_assume!(p * 10i64.pow(places) / q >= 100);
        let exact = format!("\\frac{{{p}}}{{{q}}}");
        let units = rounded_units(p, q, places);
        let rounded = as_decimal(units, places);
        prop_assert_eq!(both_ways(&exact, &rounded), (Decision::Equal, Decision::Equal), "{}", rounded);
        if units < 400_000 {
            // One unit off in the last digit is a different answer, unless that unit is within
            // the relative tolerance of 1e-6 (`14.92307` for 388/26 is).
            for off in [units - 1, units + 1] {
                let off = as_decimal(off, places);
                prop_assert_eq!(both_ways(&exact, &off), (Decision::NotEqual, Decision::NotEqual), "{}", off);
            }
        }
    }

    #[test]
    fn decimal_commas_read_as_decimals(int in 0u32..100_000, frac in 1u32..100_000) {
        let frac = frac.to_string();
        // Three digits after a 1-3 digit integer part is a thousands separator.
        prop_assume!(!(frac.len() == 3 && (1..=999).contains(&int)));
        let comma = format!("{int},{frac}");
        let dot = format!("{int}.{frac}");
        prop_assert_eq!(both_ways(&comma, &dot), (Decision::Equal, Decision::Equal));
    }

    #[test]
    fn semicolon_tuples_are_tuples(a in -50i64..50, b in -50i64..50, c in -50i64..50) {
        let semi = format!("({a};{b};{c})");
        prop_assert_eq!(both_ways(&semi, &format!("({a},{b},{c})")), (Decision::Equal, Decision::Equal));
        if a != c {
            prop_assert_eq!(both_ways(&semi, &format!("({c},{b},{a})")), (Decision::NotEqual, Decision::NotEqual));
        }
    }

    #[test]
    fn towers_are_not_small_numbers(n in -100_000i64..100_000, k in 3u32..40) {
        let tower = format!("10^{{10^{{{k}}}}}");
        prop_assert_eq!(both_ways(&tower, &n.to_string()), (Decision::NotEqual, Decision::NotEqual));
    }

    #[test]
    fn nested_parentheses_are_the_number(depth in 1usize..3_000, n in -1000i64..1000) {
        let wrapped = format!("{}{n}{}", "(".repeat(depth), ")".repeat(depth));
        prop_assert_eq!(both_ways(&wrapped, &n.to_string()), (Decision::Equal, Decision::Equal));
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}
