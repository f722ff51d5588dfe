//! More answer classes as specifications: trigonometric functions written without brackets
//! and their identities, a relation kept as the final answer, lists joined with "and" and the
//! Oxford comma, currencies and units glued to numbers, scale words, Unicode operators,
//! multiple-choice options, number and fraction words, and labels matched by name. Each case
//! names the rule it checks; responses are written the way models write them. The same table
//! runs end to end (with the symbolic path) in tests/verifiers/test_math_more_classes.py.

use grpo_math::compare::{compare, Decision};
use grpo_math::extract::{extract_response, measure_work};
use grpo_math::normalize::normalize;
use grpo_math::{check, Options, Verdict};
use proptest::prelude::*;

use Verdict::{Correct, Wrong};

/// (rule, gold as a data set stores it, model response, verdict of the fast path).
const RESPONSES: &[(&str, &str, &str, Verdict)] = &[
    (
        "ascii-star-times-in-a-chain",
        "480",
        "The floor measures 20 by 24 feet, so its area is 20 * 24 = 480 square feet.",
        Correct,
    ),
    (
        "ascii-star-times-unspaced",
        "36",
        "Each box holds 12 pencils, so 3 boxes hold 3*12 = 36 pencils. The answer is 3*12 = 36.",
        Correct,
    ),
    (
        "ascii-star-times-wrong-product",
        "480",
        "The area is 20 * 24 = 460 square feet.",
        Wrong,
    ),
    (
        "markdown-emphasis-is-not-times",
        "480",
        "**Step 2.** Multiply the sides. The area is *480* square feet.",
        Correct,
    ),
    (
        "conclusion-clause-after-a-reason",
        "x \\neq -4",
        "The denominator vanishes only at $x=-4$. The only excluded value is $-4$, so $x != -4$.",
        Correct,
    ),
    (
        "conclusion-clause-after-a-reason-value",
        "9",
        "The smaller root is $-3$, thus $x^2 = 9$ for both roots, hence the value is $9$.",
        Correct,
    ),
    (
        "conclusion-clause-without-a-value-keeps-the-statement",
        "12",
        "The total is $12$, so we are done.",
        Correct,
    ),
    (
        "double-angle-sine",
        "\\sin 2x",
        "Using the identity, $\\boxed{2\\sin x\\cos x}$.",
        Correct,
    ),
    (
        "double-angle-sine-reverse",
        "2\\sin x\\cos x",
        "So the expression simplifies to $\\boxed{\\sin 2x}$.",
        Correct,
    ),
    (
        "double-angle-cosine-sines",
        "\\cos 2x",
        "$\\boxed{1 - 2\\sin^2 x}$",
        Correct,
    ),
    (
        "double-angle-cosine-difference",
        "\\cos 2x",
        "$\\boxed{\\cos^2 x - \\sin^2 x}$",
        Correct,
    ),
    (
        "double-angle-cosine-cosines",
        "\\cos 2x",
        "$\\boxed{2\\cos^2x-1}$",
        Correct,
    ),
    (
        "half-the-double-angle",
        "\\sin x \\cos x",
        "$\\boxed{\\frac{1}{2}\\sin 2x}$",
        Correct,
    ),
    (
        "triple-angle",
        "\\sin 3x",
        "$\\boxed{3\\sin x - 4\\sin^3 x}$",
        Correct,
    ),
    (
        "triple-angle-wrong",
        "\\sin 3x",
        "$\\boxed{3\\sin x}$",
        Wrong,
    ),
    (
        "product-is-not-double-angle",
        "\\sin 2x",
        "$\\boxed{\\sin x \\cos x}$",
        Wrong,
    ),
    (
        "argument-is-the-product",
        "\\sin 2x",
        "$\\boxed{\\sin 2}$",
        Wrong,
    ),
    (
        "greek-argument",
        "\\tan 3\\theta",
        "$\\boxed{\\tan(3\\theta)}$",
        Correct,
    ),
    (
        "power-reduction",
        "\\sin^2 x",
        "Hence $\\sin^2 x = \\frac{1-\\cos 2x}{2}$.",
        Correct,
    ),
    (
        "tangent-double-angle",
        "\\tan 2x",
        "$\\boxed{\\frac{2\\tan x}{1-\\tan^2 x}}$",
        Correct,
    ),
    (
        "inverse-notation",
        "\\arcsin x",
        "$\\boxed{\\sin^{-1} x}$",
        Correct,
    ),
    (
        "inverse-value",
        "\\sin^{-1}\\left(\\frac{1}{2}\\right)",
        "$\\boxed{\\frac{\\pi}{6}}$",
        Correct,
    ),
    (
        "arccos-value",
        "\\arccos \\frac{1}{2}",
        "$\\boxed{\\frac{\\pi}{3}}$",
        Correct,
    ),
    ("log-base-two", "3", "$\\boxed{\\log_2 8}$", Correct),
    ("ln-of-power", "2", "$\\boxed{\\ln e^2}$", Correct),
    (
        "ln-of-product",
        "\\ln 2x",
        "$\\boxed{\\ln 2 + \\ln x}$",
        Correct,
    ),
    (
        "sum-of-functions-order",
        "\\sin x\\cos y",
        "$\\boxed{\\cos y \\sin x}$",
        Correct,
    ),
    (
        "relation-in-prose",
        "x \\neq -4",
        "The denominator vanishes at $-4$, so $x \\neq -4$.",
        Correct,
    ),
    (
        "relation-unicode",
        "x \\neq -4",
        "The domain is x ≠ -4",
        Correct,
    ),
    (
        "all-real-except",
        "x \\neq -4",
        "The expression is defined for all real x except -4.",
        Correct,
    ),
    (
        "all-real-numbers-except-math",
        "x \\neq -4",
        "The answer is all real numbers except $-4$.",
        Correct,
    ),
    (
        "all-real-except-assignment",
        "x \\neq -4",
        "It is defined for all real numbers except $x = -4$.",
        Correct,
    ),
    (
        "all-real-except-wrong",
        "x \\neq -4",
        "The answer is all real numbers except $4$.",
        Wrong,
    ),
    ("ne-spelling", "x \\ne 2", "$\\boxed{x \\neq 2}$", Correct),
    (
        "strict-inequality-kept",
        "x > 3",
        "Therefore $x < 3$.",
        Wrong,
    ),
    (
        "oxford-comma-math",
        "2, 4, 6",
        "The even numbers are $2$, $4$, and $6$.",
        Correct,
    ),
    (
        "oxford-comma-plain",
        "2, 4, 6",
        "The answer is 2, 4, and 6.",
        Correct,
    ),
    (
        "oxford-comma-wrong",
        "2, 4, 6",
        "The answer is 2, 4, and 8.",
        Wrong,
    ),
    (
        "and-without-comma",
        "2, 4, 6",
        "The even numbers are 2, 4 and 6.",
        Correct,
    ),
    (
        "two-solutions-and",
        "3, 7",
        "the solutions are 3 and 7",
        Correct,
    ),
    (
        "two-solutions-and-wrong",
        "3, 7",
        "the solutions are 3 and 8",
        Wrong,
    ),
    (
        "roots-as-assignments",
        "\\{3, 7\\}",
        "Therefore, the solutions are $x = 3$ and $x = 7$.",
        Correct,
    ),
    (
        "boxed-text-and",
        "1, 2, 3",
        "$\\boxed{1, 2, \\text{ and } 3}$",
        Correct,
    ),
    (
        "money-chain",
        "12.50",
        "She pays 5 × $2.50 = $12.50.",
        Correct,
    ),
    (
        "money-chain-spaced-x",
        "12.5",
        "So she pays 5 x $2.50 = $12.5 in total.",
        Correct,
    ),
    (
        "euro-decimal-comma-spaced-thousands",
        "2345.67",
        "The final price is 2 345,67 €.",
        Correct,
    ),
    ("euro-prefix", "20", "The cost is €20.", Correct),
    ("pound", "12.50", "The total is £12.50.", Correct),
    ("yen", "20", "The cost is ¥20.", Correct),
    ("rupee-thousands", "1500", "So she earns ₹1,500.", Correct),
    ("usd-word", "1500", "Total: 1,500 USD", Correct),
    ("euro-word", "50", "He has 50 euros left.", Correct),
    ("dollar-word", "20", "The cost is 20 dollars.", Correct),
    ("currency-wrong-value", "21", "The cost is €20.", Wrong),
    (
        "gsm8k-money-chain",
        "18",
        "Janet makes 9 * $2 = $18 every day.",
        Correct,
    ),
    ("glued-metre", "4.5", "The rope is 4.5m long", Correct),
    ("glued-kilogram", "12", "The answer is 12kg.", Correct),
    (
        "glued-square-metre-thousands",
        "1000.99",
        "The answer is 1,000.99m².",
        Correct,
    ),
    (
        "glued-square-centimetre-caret",
        "30",
        "The area is 30cm^2.",
        Correct,
    ),
    ("glued-speed", "60", "The speed is 60km/h.", Correct),
    ("boxed-unit-text", "4.5", "\\boxed{4.5\\text{m}}", Correct),
    (
        "million",
        "5000000",
        "The population is 5 million.",
        Correct,
    ),
    (
        "million-against-power",
        "5 \\times 10^6",
        "The answer is 5 million",
        Correct,
    ),
    (
        "billion-decimal",
        "2.5 \\times 10^9",
        "The answer is 2.5 billion.",
        Correct,
    ),
    (
        "million-is-not-its-number",
        "5",
        "The answer is 5 million",
        Wrong,
    ),
    (
        "thousand-last-number",
        "3000",
        "He has 3 thousand.",
        Correct,
    ),
    (
        "power-of-ten-in-prose",
        "5000000",
        "The answer is 5 \\times 10^6",
        Correct,
    ),
    ("variable-letter-is-no-unit", "2m", "$\\boxed{2}$", Wrong),
    (
        "times-chain",
        "480",
        "So the area is 20 × 24 = 480 square feet.",
        Correct,
    ),
    (
        "times-chain-wrong",
        "480",
        "So the area is 20 × 24 = 490 square feet.",
        Wrong,
    ),
    (
        "times-kept",
        "20 \\times 24",
        "The answer is 20 × 24",
        Correct,
    ),
    ("division-chain", "5", "The answer is 10 ÷ 2 = 5", Correct),
    ("middle-dot", "6", "The answer is 2 · 3", Correct),
    ("unicode-minus", "-3", "The answer is −3", Correct),
    ("unicode-leq", "x \\le 3", "The answer is x ≤ 3", Correct),
    (
        "unicode-geq-wrong",
        "x \\leq 5",
        "The solution set is x ≥ 5.",
        Wrong,
    ),
    ("unicode-root", "2\\sqrt{2}", "The answer is 2√2", Correct),
    (
        "unicode-root-prose",
        "5\\sqrt{3}",
        "The length is 5√3.",
        Correct,
    ),
    ("unicode-pi", "2\\pi", "The answer is 2π", Correct),
    ("unicode-square", "x^2", "The answer is x²", Correct),
    ("unicode-cube", "27", "The answer is 3³", Correct),
    ("vulgar-half", "\\frac12", "The answer is ½", Correct),
    (
        "vulgar-three-quarters",
        "\\frac{3}{4}",
        "The answer is ¾",
        Correct,
    ),
    (
        "vulgar-mixed",
        "2\\frac{1}{2}",
        "The answer is 2½.",
        Correct,
    ),
    ("labelled-chain-value", "11", "Total = 5 + 6 = 11", Correct),
    ("labelled-chain-wrong", "12", "Total = 5 + 6 = 11", Wrong),
    (
        "option-with-value",
        "A",
        "The correct option is (A) 24.",
        Correct,
    ),
    (
        "option-bold-with-value",
        "A",
        "The correct option is **(A) 24**.",
        Correct,
    ),
    (
        "option-with-value-wrong",
        "B",
        "The correct option is (A) 24.",
        Wrong,
    ),
    (
        "option-value-answers-value",
        "24",
        "The correct option is (A) 24.",
        Correct,
    ),
    ("answer-colon-option", "C", "Answer: (C)", Correct),
    ("answer-colon-option-wrong", "(A)", "Answer: (C)", Wrong),
    (
        "boxed-text-option",
        "\\text{(B)}",
        "\\boxed{\\text{(B)}}",
        Correct,
    ),
    (
        "boxed-text-option-letter-gold",
        "B",
        "\\boxed{\\text{(B)}}",
        Correct,
    ),
    ("letter-paren-value-wrong", "A", "B) 7", Wrong),
    ("letter-paren-value", "B", "The answer is B) 7", Correct),
    (
        "letter-for-parenthesised-gold",
        "(A)",
        "The correct answer is A.",
        Correct,
    ),
    (
        "bold-option",
        "A",
        "The correct answer is \\textbf{(A)}.",
        Correct,
    ),
    ("boxed-letter", "(D)", "The answer is $\\boxed{D}$", Correct),
    (
        "boxed-letter-wrong",
        "D",
        "Therefore, the correct choice is $\\boxed{A}$.",
        Wrong,
    ),
    ("pct", "25\\%", "The answer is 25 pct", Correct),
    (
        "percent-number-words",
        "25\\%",
        "The answer is twenty-five percent.",
        Correct,
    ),
    (
        "percent-words-as-fraction",
        "0.25",
        "The answer is twenty-five percent.",
        Correct,
    ),
    (
        "two-thirds",
        "\\frac{2}{3}",
        "The answer is two-thirds.",
        Correct,
    ),
    (
        "two-fifths-wrong",
        "\\frac{2}{3}",
        "The answer is two-fifths.",
        Wrong,
    ),
    (
        "three-quarters",
        "\\frac{3}{4}",
        "The answer is three quarters.",
        Correct,
    ),
    (
        "three-fourths-decimal",
        "0.75",
        "The answer is three-fourths",
        Correct,
    ),
    ("half", "\\frac{1}{2}", "The answer is half.", Correct),
    (
        "one-half",
        "\\frac{1}{2}",
        "The answer is one half.",
        Correct,
    ),
    (
        "one-and-a-half",
        "\\frac{3}{2}",
        "The final answer is one and a half.",
        Correct,
    ),
    (
        "cardinal-words",
        "25",
        "The answer is twenty-five.",
        Correct,
    ),
    (
        "hundreds-words",
        "325",
        "The answer is three hundred twenty-five.",
        Correct,
    ),
    ("percent-last-number", "$28\\%$", "28 percent", Correct),
    (
        "labels-swapped-values",
        "a_5 = 9, a_{20} = 39",
        "$a_{20} = 9, a_5 = 39$",
        Wrong,
    ),
    (
        "labels-reordered",
        "a_5 = 9, a_{20} = 39",
        "$\\boxed{a_{20} = 39, a_5 = 9}$",
        Correct,
    ),
    (
        "labels-joined-by-and",
        "a_5 = 9, a_{20} = 39",
        "$a_5 = 9$ and $a_{20} = 39$",
        Correct,
    ),
    ("variables-reordered", "x=1, y=2", "$y=2, x=1$", Correct),
    ("variables-swapped-values", "x=1, y=2", "$y=1, x=2$", Wrong),
    (
        "letters-swapped-values",
        "a = 2, b = 3",
        "$\\boxed{b = 2, a = 3}$",
        Wrong,
    ),
    (
        "labelled-tuple-vs-assignments",
        "(x, y) = (1,2)",
        "$x = 1, y = 2$",
        Correct,
    ),
    (
        "assignments-vs-labelled-tuple",
        "x = 1, y = 2",
        "$(x, y) = (1,2)$",
        Correct,
    ),
    (
        "labelled-tuple-vs-assignments-wrong",
        "(x, y) = (1,2)",
        "$x = 2, y = 1$",
        Wrong,
    ),
    (
        "assignments-vs-labelled-tuple-wrong",
        "x = 1, y = 2",
        "$(x, y) = (2,1)$",
        Wrong,
    ),
    ("assignments-vs-point", "x=1,y=2", "(1,2)", Correct),
    ("one-word-is-one", "1", "The answer is one.", Correct),
    (
        "number-word-in-prose-keeps-number",
        "3",
        "One apple costs 3 dollars. So the answer is 3.",
        Correct,
    ),
    (
        "half-in-prose-keeps-number",
        "10",
        "She gives away half of her 20 apples, so she has 10 left.",
        Correct,
    ),
    ("variable-gold-with-letter", "2m", "$\\boxed{2m}$", Correct),
    ("product-is-no-unit", "3x", "$\\boxed{3}$", Wrong),
];

#[test]
fn responses() {
    let mut failed = Vec::new();
    for (rule, gold, response, want) in RESPONSES {
        let got = check(gold, response, &Options::default());
        if got.verdict != *want {
            failed.push(format!(
                "{rule}: {gold:?} vs {response:?}: {:?} (extracted {:?}, normalised {:?})",
                got.verdict, got.extracted, got.normalized
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn rule_names_are_unique() {
    let mut names: Vec<&str> = RESPONSES.iter().map(|c| c.0).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n);
}

/// Plain answers whose comparison reads the same with gold and answer swapped.
const SYMMETRIC: &[(&str, &str, Decision)] = &[
    ("\\sin 2x", "2\\sin x\\cos x", Decision::Equal),
    ("\\cos 2x", "\\cos^2 x - \\sin^2 x", Decision::Equal),
    ("\\cos 2x", "1 - 2\\sin^2 x", Decision::Equal),
    ("\\sin 2x", "\\sin x\\cos x", Decision::NotEqual),
    ("\\sin 2x", "\\sin 2", Decision::NotEqual),
    ("\\sin^{-1} x", "\\arcsin x", Decision::Equal),
    ("\\tan 3\\theta", "\\tan(3\\theta)", Decision::Equal),
    ("\\sin x \\cos x", "\\cos x \\sin x", Decision::Equal),
    ("\\log_2 8", "3", Decision::Equal),
    ("\\ln e^2", "2", Decision::Equal),
    ("2, 4, 6", "2, 4, and 6", Decision::Equal),
    ("5 \\times 10^6", "5 million", Decision::Equal),
    ("20 \\times 24", "20 × 24", Decision::Equal),
    ("\\frac{1}{2}", "½", Decision::Equal),
    ("3\\frac{1}{2}", "3½", Decision::Equal),
    (
        "a_5 = 9, a_{20} = 39",
        "a_{20} = 9, a_5 = 39",
        Decision::NotEqual,
    ),
    (
        "a_5 = 9, a_{20} = 39",
        "a_{20} = 39, a_5 = 9",
        Decision::Equal,
    ),
    ("(x, y) = (1, 2)", "y = 2, x = 1", Decision::Equal),
    ("(x, y) = (1, 2)", "y = 1, x = 2", Decision::NotEqual),
    ("(A)", "A", Decision::Equal),
    ("\\frac{2}{3}", "two-thirds", Decision::Equal),
    ("\\frac{3}{2}", "one and a half", Decision::Equal),
    ("25\\%", "twenty-five percent", Decision::Equal),
];

#[test]
fn symmetric_rules() {
    for (a, b, want) in SYMMETRIC {
        let (na, nb) = (normalize(a), normalize(b));
        assert_eq!(compare(&na, &nb), *want, "{a:?} vs {b:?} ({na:?}, {nb:?})");
        assert_eq!(compare(&nb, &na), *want, "{b:?} vs {a:?} ({nb:?}, {na:?})");
    }
}

/// English words for `n < 1_000_000`, as models write them.
fn words(n: u32) -> String {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    match n {
        0..=19 => ONES[n as usize].to_string(),
        20..=99 if n.is_multiple_of(10) => TENS[n as usize / 10 - 2].to_string(),
        20..=99 => format!("{}-{}", TENS[n as usize / 10 - 2], ONES[n as usize % 10]),
        100..=999 if n.is_multiple_of(100) => format!("{} hundred", ONES[n as usize / 100]),
        100..=999 => format!("{} hundred {}", ONES[n as usize / 100], words(n % 100)),
        _ if n.is_multiple_of(1000) => format!("{} thousand", words(n / 1000)),
        _ => format!("{} thousand {}", words(n / 1000), words(n % 1000)),
    }
}

const DENOMINATORS: [(u32, &str, &str); 6] = [
    (3, "third", "thirds"),
    (4, "quarter", "quarters"),
    (5, "fifth", "fifths"),
    (6, "sixth", "sixths"),
    (8, "eighth", "eighths"),
    (10, "tenth", "tenths"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any number up to a million written in words is that number, and not its neighbour.
    #[test]
    fn number_words_are_their_number(n in 0u32..1_000_000) {
        let response = format!("The final answer is {}.", words(n));
        prop_assert_eq!(check(&n.to_string(), &response, &Options::default()).verdict, Correct);
        prop_assert_eq!(check(&(n + 1).to_string(), &response, &Options::default()).verdict, Wrong);
    }

    /// "k fifths", "a third", "two and three quarters": the fraction they name.
    #[test]
    fn fraction_words_are_their_fraction(k in 1u32..10, d in 0usize..6, whole in 0u32..5) {
        let (den, one, many) = DENOMINATORS[d];
        let frac = if k == 1 { format!("one {one}") } else { format!("{} {many}", words(k)) };
        let text = if whole > 0 { format!("{} and {frac}", words(whole)) } else { frac };
        let gold = format!("\\frac{{{}}}{{{den}}}", whole * den + k);
        let response = format!("The answer is {text}.");
        prop_assert_eq!(check(&gold, &response, &Options::default()).verdict, Correct, "{}", text);
        let other = format!("\\frac{{{}}}{{{den}}}", whole * den + k + 1);
        prop_assert_eq!(check(&other, &response, &Options::default()).verdict, Wrong, "{}", text);
    }

    /// `\sin kx` is sin(kx), never sin(k)·x: it equals the double-angle form of itself and
    /// differs from the same function of k alone, for any k and any function.
    #[test]
    fn unbracketed_arguments_take_the_product(k in 1u32..40, f in 0usize..3) {
        let name = ["sin", "cos", "tan"][f];
        let gold = format!("\\{name} {}x", 2 * k);
        let bracketed = format!("\\boxed{{\\{name}({}x)}}", 2 * k);
        let number_only = format!("\\boxed{{\\{name} {}}}", 2 * k);
        prop_assert_eq!(check(&gold, &bracketed, &Options::default()).verdict, Correct);
        prop_assert_eq!(check(&gold, &number_only, &Options::default()).verdict, Wrong);
        let doubled = format!("\\boxed{{2\\sin {k}x\\cos {k}x}}");
        if name == "sin" {
            prop_assert_eq!(check(&gold, &doubled, &Options::default()).verdict, Correct);
        }
    }

    /// Labelled values are matched by name, in any order: swapping two values between two
    /// labels is wrong, reordering the labels is not.
    #[test]
    fn labels_are_matched_by_name(i in 1u32..50, j in 51u32..99, a in -20i32..20, b in 21i32..40) {
        let gold = format!("a_{{{i}}} = {a}, a_{{{j}}} = {b}");
        let reordered = format!("\\boxed{{a_{{{j}}} = {b}, a_{{{i}}} = {a}}}");
        let swapped = format!("\\boxed{{a_{{{j}}} = {a}, a_{{{i}}} = {b}}}");
        prop_assert_eq!(check(&gold, &reordered, &Options::default()).verdict, Correct);
        prop_assert_eq!(check(&gold, &swapped, &Options::default()).verdict, Wrong);
    }
}

/// A megabyte of each shape the new rules read stays linear work for the extractor and ends
/// with a verdict (no hang, no panic).
#[test]
fn hostile_shapes_of_the_new_rules() {
    const MB: usize = 1 << 20;
    let rep = |s: &str| s.repeat(MB / s.len());
    let shapes = [
        rep("a2"),
        rep("2a "),
        rep("all real x except 1 "),
        rep("two-thirds "),
        rep("5 x $2.50 = "),
        rep("5 million "),
        rep("(A) "),
        rep("½×÷·≠√"),
        rep("1, and "),
        rep("\\sin 2x"),
    ];
    for text in &shapes {
        for fallback in [false, true] {
            let (_, work) = measure_work(|| extract_response(text, fallback));
            assert!(
                work <= 40 * text.len() as u64,
                "{work} steps for {:?}",
                &text[..20]
            );
        }
        let v = check("1", text, &Options::default()).verdict;
        assert_ne!(v, Verdict::Undecided, "{:?}", &text[..20]);
    }
}
