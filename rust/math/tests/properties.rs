//! Property tests: the fast path never panics, and numeric answers written in any equivalent
//! form are equal while different numbers are not.

use grpo_math::{check, compare::compare, normalize::normalize, Options, Verdict};
use proptest::prelude::*;

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

fn with_commas(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    groups.join(",")
}

/// LaTeX-ish fragments, so random strings reach deep into the parser.
fn latexish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "\\boxed{",
        "\\frac",
        "{",
        "}",
        "\\sqrt",
        "[",
        "]",
        "(",
        ")",
        "^",
        "_",
        "1",
        "2",
        "0.5",
        "x",
        "i",
        "e",
        "\\pi",
        "\\infty",
        "\\cup",
        "\\le",
        "<",
        ",",
        "=",
        "\\%",
        "\\text{",
        " or ",
        "\\begin{pmatrix}",
        "\\\\",
        "&",
        "\\end{pmatrix}",
        "!",
        "\\overline{",
        "-",
        "+",
        "\\cdot",
        "$",
        "#### ",
        "The answer is ",
        "\\{",
        "\\}",
        "\\left(",
        "\\right)",
        "10^{10^{10}}",
        "\u{3c0}",
        "\u{0}",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(gold in ".{0,80}", resp in ".{0,200}") {
        let _ = check(&gold, &resp, &Options::default());
    }

    #[test]
    fn never_panics_on_latexish_text(gold in latexish(), resp in latexish()) {
        let c = check(&gold, &resp, &Options::default());
        // An identical answer is always accepted.
        if c.verdict == Verdict::Wrong {
            prop_assert_ne!(gold.trim(), resp.trim());
        }
    }

    #[test]
    fn integer_forms_are_equal(n in 0u64..10_000_000_000) {
        let gold = n.to_string();
        for resp in [format!("\\boxed{{{}}}", with_commas(n)), format!("#### {n}"), format!("\\boxed{{{n}.0}}"),
                     format!("The answer is ${n}$."), format!("\\boxed{{\\${n}}}")] {
            prop_assert_eq!(check(&gold, &resp, &Options::default()).verdict, Verdict::Correct, "{}", resp);
        }
        prop_assert_eq!(check(&gold, &format!("\\boxed{{{}}}", n + 1), &Options::default()).verdict, Verdict::Wrong);
    }

    #[test]
    fn fraction_forms_are_equal(p in -500i64..500, q in 1i64..200) {
        let g = gcd(p, q);
        let gold = format!("\\frac{{{p}}}{{{q}}}");
        let reduced = if q / g == 1 { format!("{}", p / g) } else { format!("{}/{}", p / g, q / g) };
        let scaled = format!("\\dfrac{{{}}}{{{}}}", 3 * p, 3 * q);
        for resp in [reduced, scaled] {
            prop_assert_eq!(compare(&normalize(&gold), &normalize(&resp)), grpo_math::Decision::Equal, "{}", resp);
        }
        let other = format!("\\frac{{{}}}{{{}}}", p + 1, q);
        prop_assert_eq!(compare(&normalize(&gold), &normalize(&other)), grpo_math::Decision::NotEqual);
    }

    #[test]
    fn numeric_comparison_is_symmetric(a in -1000i64..1000, b in 1i64..50, c in -1000i64..1000, d in 1i64..50) {
        let x = normalize(&format!("\\frac{{{a}}}{{{b}}}"));
        let y = normalize(&format!("{c}/{d}"));
        prop_assert_eq!(compare(&x, &y), compare(&y, &x));
    }

    #[test]
    fn normalize_is_idempotent_on_numbers(p in -100000i64..100000, q in 1i64..1000) {
        for s in [format!("\\dfrac{{{p}}}{{{q}}}"), format!("{p}.{q}"), format!("{p}\\%"), format!("\\${p}")] {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
        }
    }
}

/// Expressions with functions written without brackets, for the bracketing rewrite.
fn functionish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "\\sin",
        "\\cos",
        "\\tan",
        "\\sinh",
        "\\ln",
        "\\log",
        "\\log_2",
        "^2",
        "^{-1}",
        " ",
        "x",
        "y",
        "2",
        "3",
        "\\theta",
        "\\pi",
        "(",
        ")",
        "{",
        "}",
        "+",
        "-",
        "/",
        "\\cdot",
        "!",
        "|",
        "\\frac{1}{2}",
        "\\sqrt{x}",
        "e^x",
        ",",
    ]);
    prop::collection::vec(atoms, 0..14).prop_map(|v| v.concat())
}

proptest! {
    /// Putting a function's argument in brackets changes nothing the fast path reads, and a
    /// second pass changes nothing more.
    #[test]
    fn bracketing_function_arguments_keeps_the_reading(s in functionish()) {
        use grpo_math::expr::{bracket_function_arguments, parse};
        let once = bracket_function_arguments(&s).into_owned();
        prop_assert_eq!(bracket_function_arguments(&once).into_owned(), once.clone());
        if let Some(p) = parse(&s) {
            let q = parse(&once);
            prop_assert!(q.is_some(), "{} -> {}", s, once);
            prop_assert_eq!(p.expr, q.unwrap().expr, "{} -> {}", s, once);
        }
    }

    /// A fraction in words is read alike however it is spaced or hyphenated.
    #[test]
    fn fraction_words_read_alike(n in 1usize..10, d in 3usize..11, hyphen in any::<bool>()) {
        const NUMS: [&str; 10] =
            ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
        const DENS: [&str; 11] =
            ["", "", "", "third", "quarter", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"];
        let den = if n > 1 { format!("{}s", DENS[d]) } else { DENS[d].to_string() };
        let words = format!("{}{}{}", NUMS[n], if hyphen { "-" } else { " " }, den);
        let resp = format!("So the tank is {words} full.");
        let gold = format!("\\frac{{{n}}}{{{d}}}");
        prop_assert_eq!(check(&gold, &resp, &Options::default()).verdict, Verdict::Correct, "{}", resp);
    }
}
