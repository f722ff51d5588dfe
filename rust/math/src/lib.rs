//! Math answer checking: extraction, normalisation and the fast path of comparison.
//!
//! [`check`] takes a gold answer as a data set stores it and a model response, and returns
//! `Correct`, `Wrong`, `NoAnswer`, or `Undecided` when only a computer-algebra system can tell
//! (the Python side then runs sympy under a hard deadline). Everything here is bounded in time:
//! no step computes numbers beyond a fixed size.

pub mod compare;
pub mod expr;
pub mod extract;
pub mod normalize;
pub mod words;

pub use compare::Decision;
pub use extract::Source;

use rayon::prelude::*;

/// When the last number of a response counts as its answer if nothing better is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Only for plain numeric golds (GSM8K style); never for LaTeX golds.
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub last_number_fallback: Fallback,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            last_number_fallback: Fallback::Auto,
        }
    }
}

/// The outcome for one (gold, response) pair. Codes are stable: they cross the FFI boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum Verdict {
    Wrong = 0,
    Correct = 1,
    /// Needs the symbolic path.
    Undecided = 2,
    /// No answer could be extracted from the response.
    NoAnswer = -1,
    /// The gold answer is empty.
    NoGold = -2,
}

/// A gold answer, extracted and normalised once and shared by the responses of its group.
#[derive(Clone, Debug)]
pub struct Gold {
    pub extracted: String,
    pub normalized: String,
    /// A plain number such as `72`, `-3.5`, `1,000` or `28%`: enables the last-number fallback.
    pub numeric: bool,
}

/// Extract and normalise a gold answer; None when it is empty.
pub fn prepare_gold(raw: &str) -> Option<Gold> {
    let extracted = extract::extract_gold(raw)?;
    // Over-long answers are compared by identity only (see `extract::MAX_ANSWER_BYTES`).
    let normalized = if extracted.len() > extract::MAX_ANSWER_BYTES {
        extracted.trim().to_string()
    } else {
        normalize::normalize(&extracted)
    };
    if normalized.is_empty() {
        return None;
    }
    let body = normalized.strip_prefix('-').unwrap_or(&normalized);
    // A percentage is a number too: "28 percent" answers `28\%` by its last number.
    let body = body.strip_suffix('%').unwrap_or(body);
    let numeric = !body.is_empty()
        && body.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && body.bytes().any(|c| c.is_ascii_digit());
    Some(Gold {
        extracted,
        normalized,
        numeric,
    })
}

#[derive(Clone, Debug)]
pub struct Check {
    pub verdict: Verdict,
    /// The answer as extracted from the response (before normalisation).
    pub extracted: Option<String>,
    pub normalized: Option<String>,
    pub source: Option<Source>,
}

/// Check one response against a prepared gold.
pub fn check_prepared(gold: &Gold, response: &str, opts: &Options) -> Check {
    let fallback = match opts.last_number_fallback {
        Fallback::Auto => gold.numeric,
        Fallback::Always => true,
        Fallback::Never => false,
    };
    let Some(ex) = extract::extract_response(response, fallback) else {
        return Check {
            verdict: Verdict::NoAnswer,
            extracted: None,
            normalized: None,
            source: None,
        };
    };
    let mut ex = ex;
    if ex.text.len() > extract::MAX_ANSWER_BYTES || gold.extracted.len() > extract::MAX_ANSWER_BYTES
    {
        let same = ex.text.trim() == gold.extracted.trim();
        return Check {
            verdict: if same {
                Verdict::Correct
            } else {
                Verdict::Wrong
            },
            extracted: Some(ex.text),
            normalized: None,
            source: Some(ex.source),
        };
    }
    let mut normalized = normalize::normalize(&ex.text);
    // Several answers boxed one by one (`\boxed{2}` and `\boxed{3}`) answer a gold list of as
    // many items: the last k boxes together. A single gold never looks past the last box.
    let k = compare::top_level_items(&gold.normalized);
    if k >= 2 && ex.source == Source::Boxed && compare::top_level_items(&normalized) == 1 {
        let boxes = extract::all_boxed(response);
        if boxes.len() >= k
            && boxes[boxes.len() - k..]
                .iter()
                .all(|b| b.len() <= extract::MAX_ANSWER_BYTES)
        {
            let last: Vec<String> = boxes[boxes.len() - k..]
                .iter()
                .map(|b| normalize::normalize(b))
                .collect();
            if last
                .iter()
                .all(|b| !b.is_empty() && compare::top_level_items(b) == 1)
            {
                normalized = last.join(",");
                ex.text = boxes[boxes.len() - k..].join(", ");
            }
        }
    }
    let verdict = if normalized.is_empty() {
        Verdict::NoAnswer
    } else {
        match compare::compare(&gold.normalized, &normalized) {
            Decision::Equal => Verdict::Correct,
            Decision::NotEqual => Verdict::Wrong,
            Decision::Undecided => Verdict::Undecided,
        }
    };
    Check {
        verdict,
        extracted: Some(ex.text),
        normalized: Some(normalized),
        source: Some(ex.source),
    }
}

/// Check one response against a gold field as stored in a data set.
pub fn check(gold: &str, response: &str, opts: &Options) -> Check {
    match prepare_gold(gold) {
        Some(g) => check_prepared(&g, response, opts),
        None => Check {
            verdict: Verdict::NoGold,
            extracted: None,
            normalized: None,
            source: None,
        },
    }
}

/// `check_prepared`, with a bug in the fast path (a panic) turned into `Undecided`: the item
/// then goes to the symbolic path instead of taking the whole batch down.
fn guarded(gold: &Gold, response: &str, opts: &Options) -> Check {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_prepared(gold, response, opts)
    }))
    .unwrap_or_else(|_| {
        let ex = extract::extract_response(response, false);
        Check {
            verdict: Verdict::Undecided,
            normalized: ex.as_ref().map(|e| e.text.clone()),
            extracted: ex.as_ref().map(|e| e.text.clone()),
            source: ex.map(|e| e.source),
        }
    })
}

/// Below this many items a batch runs on the calling thread: splitting costs more than it saves.
const PARALLEL_MIN: usize = 256;

/// Check many pairs; adjacent responses that share a gold (a GRPO group) share its preparation.
/// Runs in parallel for large batches.
pub fn check_batch<S: AsRef<str> + Sync>(
    golds: &[S],
    responses: &[S],
    opts: &Options,
) -> Vec<(Check, Option<Gold>)> {
    let n = golds.len().min(responses.len());
    // Chunks start at group boundaries so the per-chunk gold cache stays effective.
    let run = |range: std::ops::Range<usize>| {
        let mut out = Vec::with_capacity(range.len());
        let mut cached: Option<(usize, Option<Gold>)> = None;
        for i in range {
            let g = golds[i].as_ref();
            let hit = matches!(&cached, Some((j, _)) if golds[*j].as_ref() == g);
            if !hit {
                cached = Some((i, prepare_gold(g)));
            }
            let gold = cached.as_ref().and_then(|(_, g)| g.clone());
            let c = match &gold {
                Some(gd) => guarded(gd, responses[i].as_ref(), opts),
                None => Check {
                    verdict: Verdict::NoGold,
                    extracted: None,
                    normalized: None,
                    source: None,
                },
            };
            out.push((c, gold));
        }
        out
    };
    if n < PARALLEL_MIN {
        return run(0..n);
    }
    let chunk = 64;
    let ranges: Vec<_> = (0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect();
    ranges.into_par_iter().map(run).flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(gold: &str, resp: &str) -> Verdict {
        check(gold, resp, &Options::default()).verdict
    }

    #[test]
    fn boxes_one_by_one_answer_a_list() {
        assert_eq!(
            verdict("-2, 3", "so \\boxed{3} and \\boxed{-2}"),
            Verdict::Correct
        );
        assert_eq!(
            verdict("-2, 3", "\\boxed{1} then \\boxed{3} and \\boxed{-2}"),
            Verdict::Correct
        );
        assert_eq!(
            verdict("-2, 3", "\\boxed{3} and \\boxed{4}"),
            Verdict::Wrong
        );
        // A single gold only ever sees the last box.
        assert_eq!(verdict("4", "\\boxed{4} or \\boxed{5}"), Verdict::Wrong);
    }

    #[test]
    fn fallback_follows_the_gold() {
        assert_eq!(verdict("#### 72", "so she has 72 apples"), Verdict::Correct);
        assert_eq!(
            verdict("\\frac{1}{2}", "she ate 1/2 of them"),
            Verdict::NoAnswer
        );
        let always = Options {
            last_number_fallback: Fallback::Always,
        };
        assert_eq!(
            check("\\frac{1}{2}", "she ate 1/2 of them", &always).verdict,
            Verdict::Correct
        );
    }

    #[test]
    fn batch_matches_single() {
        let golds = ["72", "72", "\\frac12", "", "x^2"];
        let resps = [
            "\\boxed{72}",
            "\\boxed{7}",
            "0.5",
            "\\boxed{1}",
            "no answer here",
        ];
        let batch = check_batch(&golds, &resps, &Options::default());
        for ((g, r), (c, _)) in golds.iter().zip(resps).zip(&batch) {
            assert_eq!(c.verdict, verdict(g, r), "{g} {r}");
        }
    }
}
