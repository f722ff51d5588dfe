//! Numbers written in words: one table and one grammar for every reader of them. The math
//! normaliser reads an answer such as "two-thirds", "three hundred twenty-five" or "one and a
//! half"; the extractor finds "two-thirds of the pie" in a sentence; the `factual` verifier's
//! normaliser turns "twenty-first", "one hundred and five" and "2.5 million" into digits
//! (through `grpo_fast._native.number_words`).
//!
//! Everything here reads words one after another and stops at the first word that is not part
//! of the number, so it is linear in what it reads. Values are exact: integers, a numeral's
//! decimal places kept (`2.5 million`), fractions as numerator and denominator.

const SMALL: [&str; 20] = [
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

/// Scale words and what they multiply by.
const SCALES: [(&str, i128); 5] = [
    ("hundred", 100),
    ("thousand", 1_000),
    ("million", 1_000_000),
    ("billion", 1_000_000_000),
    ("trillion", 1_000_000_000_000),
];

/// Ordinals not formed by adding "th" to their cardinal.
const IRREGULAR_ORDINALS: [(&str, &str); 7] = [
    ("first", "one"),
    ("second", "two"),
    ("third", "three"),
    ("fifth", "five"),
    ("eighth", "eight"),
    ("ninth", "nine"),
    ("twelfth", "twelve"),
];

/// `zero` .. `nineteen`, `twenty` .. `ninety`.
pub fn cardinal_word(w: &str) -> Option<i64> {
    if let Some(k) = SMALL.iter().position(|x| *x == w) {
        return Some(k as i64);
    }
    TENS.iter()
        .position(|x| *x == w)
        .map(|k| 20 + 10 * k as i64)
}

/// `hundred` .. `trillion`.
pub fn scale_word(w: &str) -> Option<i128> {
    SCALES.iter().find(|(s, _)| *s == w).map(|(_, v)| *v)
}

/// A cardinal or a scale word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Word {
    Cardinal(i64),
    Scale(i128),
}

fn number_word(w: &str) -> Option<Word> {
    cardinal_word(w)
        .map(Word::Cardinal)
        .or_else(|| scale_word(w).map(Word::Scale))
}

/// The cardinal or scale word an ordinal names: `first` is one, `fourth` four, `twentieth`
/// twenty, `hundredth` hundred.
fn ordinal_word(w: &str) -> Option<Word> {
    if let Some((_, base)) = IRREGULAR_ORDINALS.iter().find(|(o, _)| *o == w) {
        return number_word(base);
    }
    if let Some(stem) = w.strip_suffix("ieth") {
        let base = format!("{stem}y");
        return cardinal_word(&base).map(Word::Cardinal);
    }
    w.strip_suffix("th").and_then(number_word)
}

/// The denominator a fraction word names: "half" 2, "thirds" 3, "quarter" and "fourths" 4,
/// "tenths" 10, "hundredth" 100. "second" and "first" name no fraction.
pub fn denominator_word(w: &str) -> Option<i64> {
    let w = w.strip_suffix('s').unwrap_or(w);
    match w {
        "half" | "halve" => return Some(2),
        "quarter" => return Some(4),
        "first" | "second" | "zeroth" => return None,
        _ => {}
    }
    match ordinal_word(w)? {
        Word::Cardinal(v) => Some(v),
        Word::Scale(v) => i64::try_from(v).ok(),
    }
}

/// A number with decimal places: `m / 10^k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub m: i128,
    pub k: u32,
}

impl Decimal {
    /// Plain text: no exponent, no trailing zeros after the point, `0` for negative zero.
    pub fn text(self) -> String {
        let neg = self.m < 0;
        let digits = self.m.unsigned_abs().to_string();
        let k = self.k as usize;
        let (int, frac) = if digits.len() > k {
            let (a, b) = digits.split_at(digits.len() - k);
            (a.to_string(), b.to_string())
        } else {
            ("0".to_string(), format!("{digits:0>k$}"))
        };
        let frac = frac.trim_end_matches('0');
        let body = if frac.is_empty() {
            int
        } else {
            format!("{int}.{frac}")
        };
        if neg && body != "0" {
            format!("-{body}")
        } else {
            body
        }
    }

    fn is_integer(self) -> bool {
        10i128.checked_pow(self.k).is_some_and(|p| self.m % p == 0)
    }
}

/// What a run of number words says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// "three hundred twenty-five", "2.5 million".
    Number(Decimal),
    /// "twenty-first" (the factual grammar only).
    Ordinal(Decimal),
    /// "two-thirds", "a half", "one and a half" (the math grammar only): `whole + num / den`.
    Fraction { whole: i128, num: i128, den: i128 },
}

impl Reading {
    /// The reading as the factual normaliser writes it: `105`, `2500000`, `21st`.
    pub fn plain_text(self) -> String {
        match self {
            Reading::Number(d) => d.text(),
            Reading::Ordinal(d) if d.is_integer() => {
                let n = d.m / 10i128.pow(d.k);
                let suffix = match (n.rem_euclid(100), n.rem_euclid(10)) {
                    (10..=20, _) => "th",
                    (_, 1) => "st",
                    (_, 2) => "nd",
                    (_, 3) => "rd",
                    _ => "th",
                };
                format!("{n}{suffix}")
            }
            Reading::Ordinal(d) => d.text(),
            Reading::Fraction { whole, num, den } => {
                format!("{}/{den}", whole * den + num)
            }
        }
    }

    /// The reading as LaTeX for the math normaliser: `325`, `\frac{2}{3}`, `\frac{3}{2}`.
    pub fn latex(self) -> String {
        match self {
            Reading::Number(d) | Reading::Ordinal(d) => d.text(),
            Reading::Fraction { whole, num, den } => {
                format!("\\frac{{{}}}{{{den}}}", whole * den + num)
            }
        }
    }
}

/// The two ways number words are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grammar {
    /// Answers of math problems: fractions ("two-thirds", "a half", "one and a half");
    /// "and" joins a cardinal only after a hundred or a scale word ("one hundred and five"),
    /// so "two and three" stays two answers; ordinals are words.
    Math,
    /// Short factual answers: ordinals become `21st`; "and" joins any following number word
    /// ("one hundred and five"); fractions are words.
    Factual,
}

/// `12`, `-2.5`: a numeral before a scale word ("2.5 million").
fn numeral(w: &str) -> Option<Decimal> {
    let (neg, body) = match w.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, w),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    if !digits(int) || (body.contains('.') && !digits(frac)) {
        return None;
    }
    let m: i128 = format!("{int}{frac}").parse().ok()?;
    Some(Decimal {
        m: if neg { -m } else { m },
        k: u32::try_from(frac.len()).ok()?,
    })
}

/// The number that the words at the start of `words` name, and how many words it used; None
/// when they name none. `words` are lower case, one word each (split hyphens first).
pub fn read(words: &[&str], grammar: Grammar) -> Option<(Reading, usize)> {
    let word = |i: usize| words.get(i).copied();
    // Every value is kept as an integer count of `10^-k`, `k` the places of a leading numeral.
    let mut k = 0u32;
    let mut one: i128 = 1;
    let (mut total, mut current) = (0i128, 0i128);
    let mut seen = false;
    let mut j = 0;
    // "a million", "2.5 million": an article or a numeral is the count of a scale word.
    if word(1).and_then(scale_word).is_some() {
        if matches!(word(0), Some("a" | "an")) {
            current = 1;
            seen = true;
            j = 1;
        } else if let Some(d) = word(0).and_then(numeral) {
            k = d.k;
            one = 10i128.checked_pow(k)?;
            current = d.m;
            seen = true;
            j = 1;
        }
    }
    let mut after_scale = false;
    let mut best: Option<(Reading, usize)> = None;
    let number = |t: i128, c: i128| {
        Some(Decimal {
            m: t.checked_add(c)?,
            k,
        })
    };
    while let Some(w) = word(j) {
        // An ordinal ends the number ("twenty-first", "the hundredth").
        let (w_num, ordinal) = match (number_word(w), grammar) {
            (Some(n), _) => (Some(n), false),
            (None, Grammar::Factual) => (ordinal_word(w), true),
            (None, Grammar::Math) => (None, false),
        };
        match w_num {
            Some(Word::Cardinal(v)) => {
                current = current.checked_add(one.checked_mul(v as i128)?)?;
                after_scale = false;
            }
            Some(Word::Scale(s)) if seen || s <= 1_000 => {
                let count = if current == 0 { one } else { current };
                if s == 100 {
                    current = count.checked_mul(100)?;
                } else {
                    total = total.checked_add(count.checked_mul(s)?)?;
                    current = 0;
                }
                after_scale = true;
            }
            _ => {
                if grammar == Grammar::Math {
                    if let Some(found) = fraction(words, j, seen, total, current, one) {
                        return Some(found);
                    }
                }
                // "one hundred and five": "and" before another number word.
                let joins = w == "and"
                    && seen
                    && match grammar {
                        Grammar::Factual => word(j + 1).is_some_and(|n| {
                            cardinal_word(n).is_some() || ordinal_word(n).is_some()
                        }),
                        Grammar::Math => {
                            after_scale && word(j + 1).and_then(cardinal_word).is_some()
                        }
                    };
                if joins {
                    j += 1;
                    continue;
                }
                break;
            }
        }
        seen = true;
        j += 1;
        let value = number(total, current)?;
        if ordinal {
            return Some((Reading::Ordinal(value), j));
        }
        best = Some((Reading::Number(value), j));
    }
    best
}

/// A fraction at `words[j]` (the math grammar): "[a|an|<cardinal>] <denominator>" on its own
/// ("two thirds", "a half", "half"), or after "<whole> and" ("one and a half", "two and three
/// quarters"). `total`, `current` are what the words before `j` read (in units of `one`).
/// An ordinal alone ("third") is not a fraction; "half" alone is a half.
fn fraction(
    words: &[&str],
    mut j: usize,
    seen: bool,
    total: i128,
    current: i128,
    one: i128,
) -> Option<(Reading, usize)> {
    if one != 1 {
        return None;
    }
    let word = |i: usize| words.get(i).copied();
    let mut whole = 0;
    let mut numerator = (current > 0).then_some(current);
    if word(j) == Some("and") {
        if !seen {
            return None;
        }
        whole = total.checked_add(current)?;
        j += 1;
        numerator = Some(match word(j) {
            Some("a" | "an") => 1,
            w => w.and_then(cardinal_word).filter(|n| *n > 0)? as i128,
        });
        j += 1;
    } else if matches!(word(j), Some("a" | "an")) && !seen {
        numerator = Some(1);
        j += 1;
    }
    let den = word(j).and_then(denominator_word)? as i128;
    let num = match numerator {
        Some(n) => n,
        None if den == 2 && !seen => 1,
        None => return None,
    };
    // "one thousand two thirds" is read as `1000 + 2/3`, as the words are spoken.
    let whole = if whole > 0 { whole } else { total };
    Some((Reading::Fraction { whole, num, den }, j + 1))
}

/// Runs of number words in `tokens` replaced by digits, the factual grammar: `twenty one` ->
/// `21`, `one hundred and five` -> `105`, `a million` -> `1000000`, `2.5 million` ->
/// `2500000`, `twenty first` -> `21st`. Other tokens are kept. Tokens are lower case words.
pub fn number_words_to_digits<S: AsRef<str>>(tokens: &[S]) -> Vec<String> {
    let words: Vec<&str> = tokens.iter().map(AsRef::as_ref).collect();
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        match read(&words[i..], Grammar::Factual) {
            Some((r, used)) => {
                out.push(r.plain_text());
                i += used;
            }
            None => {
                out.push(words[i].to_string());
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn math(t: &str) -> Option<(String, usize)> {
        let parts: Vec<&str> = t.split([' ', '-']).collect();
        read(&parts, Grammar::Math).map(|(r, n)| (r.latex(), n))
    }

    fn factual(t: &str) -> String {
        let toks: Vec<&str> = t.split(' ').collect();
        number_words_to_digits(&toks).join(" ")
    }

    #[test]
    fn math_grammar() {
        let cases = [
            ("twenty five", Some(("25", 2))),
            ("three hundred twenty five", Some(("325", 4))),
            ("one hundred and five", Some(("105", 4))),
            ("two thousand and twenty", Some(("2020", 4))),
            ("two thirds", Some(("\\frac{2}{3}", 2))),
            ("five eighths of the pie", Some(("\\frac{5}{8}", 2))),
            ("three quarters", Some(("\\frac{3}{4}", 2))),
            ("three fourths", Some(("\\frac{3}{4}", 2))),
            ("a half", Some(("\\frac{1}{2}", 2))),
            ("half", Some(("\\frac{1}{2}", 1))),
            ("one half", Some(("\\frac{1}{2}", 2))),
            ("a third of", Some(("\\frac{1}{3}", 2))),
            ("one and a half", Some(("\\frac{3}{2}", 4))),
            ("two and three quarters", Some(("\\frac{11}{4}", 4))),
            ("seven thirteenths", Some(("\\frac{7}{13}", 2))),
            ("three hundredths", Some(("\\frac{3}{100}", 2))),
            ("a hundred", Some(("100", 2))),
            ("a million", Some(("1000000", 2))),
            // Ordinals and lists are not numbers here.
            ("third", None),
            ("the third", None),
            ("one second", Some(("1", 1))),
            ("two and three", Some(("2", 1))),
            ("one of the two", Some(("1", 1))),
            ("and", None),
            ("pie", None),
        ];
        for (t, want) in cases {
            assert_eq!(math(t), want.map(|(s, n)| (s.to_string(), n)), "{t}");
        }
    }

    #[test]
    fn factual_grammar() {
        let cases = [
            ("twenty one", "21"),
            ("one hundred and five", "105"),
            ("two thousand and twenty", "2020"),
            ("1.5 million", "1500000"),
            ("2.5 million two hundred", "2500200"),
            ("a million", "1000000"),
            ("a hundred", "100"),
            ("hundred", "100"),
            ("million", "million"),
            ("first", "1st"),
            ("twenty first century", "21st century"),
            ("eleventh", "11th"),
            ("one hundred twelfth", "112th"),
            ("ninetieth", "90th"),
            ("two thirds", "2 thirds"),
            ("one and two", "3"),
            ("and one", "and 1"),
            ("a", "a"),
            ("-2 million", "-2000000"),
            // A zero count is read as one, as "a million" is ("-0" is zero).
            ("-0 million", "1000000"),
            ("0.005 hundred", "0.5"),
            ("paris", "paris"),
        ];
        for (t, want) in cases {
            assert_eq!(factual(t), want, "{t}");
        }
    }

    #[test]
    fn overflow_is_no_number() {
        let big = "99999999999999999999999999999999999999 trillion";
        assert_eq!(factual(big), big);
        let many = vec!["trillion"; 10_000];
        let mut toks = vec!["one"];
        toks.extend(many);
        // One trillion added per word, as the words are read; no overflow at this size.
        assert_eq!(number_words_to_digits(&toks).len(), 1);
    }
}
