//! Answer extraction: find the final answer in a model response or a data set's gold field.
//!
//! Only the *final* answer counts, so every rule takes the last match: the last group of
//! `\boxed{}`, the last `####`, the last "answer is" phrase, the last sentence that states a
//! value. That is what makes listing several candidates in the reasoning useless as a reward
//! hack.
//!
//! Every rule is linear in the text it scans (one pass for boxes, one for math segments, the
//! sentence rules on a window of at most [`WINDOW`] bytes), so a degenerate response — a
//! megabyte of `\boxed{` — costs one scan, never a hang.

mod boxes;
mod segments;
mod statement;
mod work;

pub use work::measure as measure_work;

use segments::Segment;
use statement::Mode;
/// Where an extracted answer came from; reported to the user as part of the verdict details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `\boxed{...}`, `\boxed 5` or `\fbox{...}`.
    Boxed,
    /// GSM8K `#### 72`.
    Hash,
    /// "the answer is ...", "Final Answer: ...".
    Phrase,
    /// The last `$...$`, `\(...\)` or `\[...\]` segment, or a bare matrix environment.
    Dollar,
    /// The whole text, because it is a bare expression (no prose around it).
    Whole,
    /// The value stated by the last sentence that states one ("The largest $n$ is 34.").
    Statement,
    /// The last number in the text (the optional fallback).
    LastNumber,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Boxed => "boxed",
            Source::Hash => "hash",
            Source::Phrase => "phrase",
            Source::Dollar => "dollar",
            Source::Whole => "whole",
            Source::Statement => "statement",
            Source::LastNumber => "last_number",
        }
    }
}

/// Longest answer the later stages normalise and compare. No answer a person or a data set
/// writes is longer; a longer one is a degenerate output (or a gold field holding something
/// else), and normalising it would cost time for nothing. Such answers are compared by
/// identity only (see `check_prepared`).
pub const MAX_ANSWER_BYTES: usize = 4096;

/// Bytes scanned by the sentence rules: after a phrase, and at the end of a text.
pub const WINDOW: usize = 2048;

/// The content of the last balanced `\boxed`/`\fbox` in `text`. A truncated last box
/// (unbalanced) is skipped in favour of the one before it.
pub fn last_boxed(text: &str) -> Option<&str> {
    boxes::scan(text)
        .last()
        .map(|s| &text[s.content.0..s.content.1])
}

/// The contents of every balanced `\boxed`/`\fbox` in `text`, in order.
pub fn all_boxed(text: &str) -> Vec<&str> {
    boxes::scan(text)
        .iter()
        .map(|s| &text[s.content.0..s.content.1])
        .collect()
}

/// The final answer given in boxes: the last box, with the boxes joined to it in the same
/// statement (`\boxed{1} and \boxed{-2}` is `1, -2`); see `boxes::final_group`.
/// Only empty boxes (`$\boxed{}$ 12`) give no answer here: the other rules read the text.
pub fn final_boxed(text: &str) -> Option<String> {
    let all = boxes::scan(text);
    let group = boxes::final_group(text, &all);
    let parts: Vec<&str> = group
        .iter()
        .map(|s| text[s.content.0..s.content.1].trim())
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Byte index of the `}` closing an already opened `{`; escaped braces `\{` `\}` are content.
pub(crate) fn matching_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1, // skip the escaped character
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// GSM8K: the rest of the line after the last `####`.
fn after_hashes(text: &str) -> Option<&str> {
    work::add(text.len());
    let pos = text.rfind("####")?;
    let rest = text[pos + 4..].trim_start_matches('#');
    let line = rest.lines().next().unwrap_or("").trim();
    (!line.is_empty()).then_some(line)
}

/// What may follow the word "answer" to make an answer phrase, and how the text after it
/// reads. Longest first.
const SUFFIXES: [(&str, Mode); 3] = [
    (" is:", Mode::AfterIs),
    (" is", Mode::AfterIs),
    (":", Mode::AfterColon),
];

/// The last answer phrase of `text` — "the answer is", "final answer is", "answer is:",
/// "Final Answer:", "answer:", or a `**Final Answer**` heading followed by a line break — as
/// (end of the phrase, how its tail reads). One backward scan for the word "answer",
/// case-insensitive; the last occurrence that forms a phrase is the last phrase.
fn last_phrase(text: &str) -> Option<(usize, Mode)> {
    const WORD: &[u8] = b"answer";
    let h = text.as_bytes();
    let mut i = h.len().checked_sub(WORD.len())?;
    work::add(h.len() - i);
    loop {
        work::add(1);
        if h[i].eq_ignore_ascii_case(&b'a') && h[i..i + WORD.len()].eq_ignore_ascii_case(WORD) {
            let end = i + WORD.len();
            let rest = &h[end..];
            for (suffix, mode) in SUFFIXES {
                let sb = suffix.as_bytes();
                // Whole words only: "answer is" must not match "answer isn't".
                if rest.len() >= sb.len()
                    && rest[..sb.len()].eq_ignore_ascii_case(sb)
                    && (sb.ends_with(b":")
                        || rest.get(sb.len()).is_none_or(|c| !c.is_ascii_alphabetic()))
                {
                    return Some((end + sb.len(), mode));
                }
            }
            // `**Final Answer**` then a line break.
            let before = &h[..i];
            let after = text[end..].trim_start_matches(['*', '#', ' ', '\t', ':']);
            if before.len() >= 6
                && before[before.len() - 6..].eq_ignore_ascii_case(b"final ")
                && (after.starts_with('\n') || after.starts_with('\r'))
            {
                return Some((end, Mode::AfterColon));
            }
        }
        if i == 0 {
            return None;
        }
        i -= 1;
    }
}

/// The answer after the last "answer is"-style phrase, read from its first sentence (see
/// `statement`): "The final answer is $5$. I hope it is correct." gives 5, "Final Answer: The
/// largest $n$ is 34." gives 34. A tail with no value in it ("The answer is Monday.",
/// "the answer is (B)") is read as written up to the end of its sentence.
fn after_phrase(text: &str, segs: &[Segment]) -> Option<String> {
    let (end, mode) = last_phrase(text)?;
    let rest = &text[end..];
    let skipped = rest.len()
        - rest
            .trim_start_matches([' ', ':', '\t', '*', '\n', '\r'])
            .len();
    let from = end + skipped;
    let to = window_end(text, from);
    if from >= to {
        return None;
    }
    let tail = statement::Sentences::new(text, from, to, segs);
    if !tail.opens_with_choice() {
        if let Some(v) = tail.first_value(mode) {
            return Some(v);
        }
    }
    as_written(&text[from..to])
}

/// The first line of a phrase's tail up to the end of its sentence, markdown and a final `!`
/// removed; a math segment in it wins.
fn as_written(tail: &str) -> Option<String> {
    let line = tail.lines().next().unwrap_or("").trim();
    work::add(2 * line.len());
    if let Some(seg) = segments::first_nonempty(line) {
        return Some(seg.to_string());
    }
    // End of sentence: a period followed by a space or the end, not a decimal point.
    let bytes = line.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'.' && (i + 1 == bytes.len() || bytes[i + 1] == b' '))
        .unwrap_or(line.len());
    // In prose a final `!` ends the sentence ("the answer is 5!").
    let ans = line[..cut].trim().trim_end_matches(['*', '!']).trim();
    (!ans.is_empty()).then(|| ans.to_string())
}

/// End of the window that starts at `from`: at most [`WINDOW`] bytes, on a char boundary.
fn window_end(text: &str, from: usize) -> usize {
    let mut to = (from + WINDOW).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    to
}

/// Start of the last [`WINDOW`] bytes of `text`, moved back to the start of a math segment it
/// would cut (so the window never begins inside one).
fn tail_window_start(text: &str, segs: &[Segment]) -> usize {
    let mut from = text.len().saturating_sub(WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let k = segs.partition_point(|s| s.end <= from);
    match segs.get(k) {
        Some(s) if s.start < from => s.start,
        _ => from,
    }
}

/// True when `text` is a bare answer rather than prose: short, one line, and no English words
/// outside LaTeX commands and `\text{}` (units such as `\text{ cm}` are allowed).
fn is_bare_expression(text: &str) -> bool {
    let trimmed = text.trim();
    work::add(trimmed.len().min(161));
    if trimmed.len() > 160 || trimmed.contains('\n') {
        return false;
    }
    // "or"/"and" between answers (`-2 and 3`) are part of an answer, not prose.
    let joined: String = trimmed
        .split_whitespace()
        .filter(|w| !matches!(w.to_ascii_lowercase().as_str(), "or" | "and"))
        .collect::<Vec<_>>()
        .join(" ");
    let t = joined.as_str();
    if t.is_empty() || t.len() > 80 {
        return false;
    }
    if is_number_in_words(t) {
        return true;
    }
    // A bare word beside the math ("so 5", "about 10") makes it prose, not an answer.
    let prose_token = t
        .split_whitespace()
        .any(|w| w.len() >= 2 && w.bytes().all(|c| c.is_ascii_alphabetic()));
    !has_prose_word(t.as_bytes(), Skip::Text) && !prose_token
}

/// What [`has_prose_word`] does not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    Nothing,
    /// Letters inside braces (`$5 \text{each}$` is still an amount of money).
    Braced,
    /// What `\text{}` and `\mbox{}` hold (units such as `\text{ cm}`) and the names of
    /// environments (`\begin{pmatrix}`).
    Text,
}

/// An English word in `s`: a run of three or more ASCII letters that no backslash introduces
/// (`\frac`, `\pi` are commands, not words). One pass.
pub(crate) fn has_prose_word(b: &[u8], skip: Skip) -> bool {
    let mut run = 0;
    let mut in_cmd = false;
    let mut depth = 0usize;
    // Inside a skipped argument: the depth its closing brace returns to.
    let mut skip_to: Option<usize> = None;
    for (i, &c) in b.iter().enumerate() {
        if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth = depth.saturating_sub(1);
            if skip_to == Some(depth) {
                skip_to = None;
            }
        }
        if skip_to.is_some() {
            continue;
        }
        if c.is_ascii_alphabetic() {
            let hidden = in_cmd || (skip == Skip::Braced && depth > 0);
            if !hidden {
                run += 1;
                if run >= 3 {
                    return true;
                }
            }
        } else {
            in_cmd = c == b'\\';
            run = 0;
            if in_cmd
                && skip == Skip::Text
                && ["\\text{", "\\mbox{", "\\begin{", "\\end{"]
                    .iter()
                    .any(|p| b[i..].starts_with(p.as_bytes()))
            {
                skip_to = Some(depth);
            }
        }
    }
    false
}

/// "two-thirds", "twenty-five percent", "5 million": a number written (partly) in words, alone.
fn is_number_in_words(t: &str) -> bool {
    let mut any_word = false;
    let ok = t.split_whitespace().all(|tok| {
        let tok = tok.trim_end_matches(['.', '!']);
        tok.split('-').all(|w| {
            let lower = w.to_ascii_lowercase();
            let l = lower.as_str();
            let word = crate::words::cardinal_word(l).is_some()
                || crate::words::denominator_word(l).is_some()
                || matches!(
                    l,
                    "hundred"
                        | "thousand"
                        | "million"
                        | "billion"
                        | "trillion"
                        | "percent"
                        | "pct"
                        | "a"
                        | "an"
                );
            any_word |= word;
            word || (!w.is_empty() && w.bytes().all(|c| c.is_ascii_digit() || b".,%".contains(&c)))
        })
    });
    ok && any_word
}

/// The last number in the text: optional sign, thousands separators, decimals, or `a/b`.
/// Digits inside a word (`AZYUK2A`, `H2O`, `x2`) are no number.
fn last_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    work::add(bytes.len());
    let mut limit = bytes.len();
    loop {
        let i = bytes[..limit].iter().rposition(u8::is_ascii_digit)?;
        let start = i + 1
            - bytes[..=i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .count();
        if start > 0 && bytes[start - 1].is_ascii_alphabetic() {
            limit = start;
            continue;
        }
        return number_ending_at(text, i);
    }
}

fn number_ending_at(text: &str, i: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let end = i + 1;
    let mut start = i;
    while start > 0 {
        let c = bytes[start - 1];
        let next_is_digit = bytes.get(start).is_some_and(u8::is_ascii_digit);
        let prev_is_digit = start >= 2 && bytes[start - 2].is_ascii_digit();
        if c.is_ascii_digit()
            || ((c == b',' || c == b'.' || c == b'/') && next_is_digit && prev_is_digit)
        {
            start -= 1;
        } else {
            break;
        }
    }
    if start > 0 && bytes[start - 1] == b'-' {
        start -= 1;
    }
    // "3 million": the scale word belongs to the number (normalisation multiplies it out).
    let rest = &text[end..];
    let scaled = ["thousand", "million", "billion", "trillion"]
        .iter()
        .find_map(|w| {
            let after = rest.strip_prefix(' ')?;
            (after.len() >= w.len()
                && after.as_bytes()[..w.len()].eq_ignore_ascii_case(w.as_bytes()))
            .then(|| end + 1 + w.len())
        })
        .unwrap_or(end);
    Some(&text[start..scaled])
}

/// An extracted answer and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub text: String,
    pub source: Source,
}

/// Extract the final answer of a response. `last_number_fallback` enables the last rule,
/// which is right for GSM8K-style numeric golds and wrong for LaTeX ones.
pub fn extract_response(text: &str, last_number_fallback: bool) -> Option<Extracted> {
    // A reasoning model's final answer follows its `</think>`; what it boxed while thinking
    // counts only when nothing follows.
    work::add(text.len());
    if let Some(pos) = text.rfind("</think>") {
        let after = &text[pos + "</think>".len()..];
        if let Some(found) = extract_from(after, last_number_fallback) {
            return Some(found);
        }
    }
    extract_from(text, last_number_fallback)
}

/// `<answer>...</answer>` (R1-style output): the content of the last such block.
fn answer_tag(text: &str) -> Option<&str> {
    work::add(text.len());
    let start = text.rfind("<answer>")? + "<answer>".len();
    let end = text[start..]
        .find("</answer>")
        .map_or(text.len(), |e| start + e);
    let inner = text[start..end].trim();
    (!inner.is_empty()).then_some(inner)
}

fn extract_from(text: &str, last_number_fallback: bool) -> Option<Extracted> {
    if let Some(inner) = answer_tag(text) {
        if let Some(found) = extract_plain(inner, last_number_fallback) {
            return Some(found);
        }
        let t = segments::first_nonempty(inner).unwrap_or(inner);
        return Some(Extracted {
            text: t.trim().to_string(),
            source: Source::Phrase,
        });
    }
    extract_plain(text, last_number_fallback)
}

fn extract_plain(text: &str, last_number_fallback: bool) -> Option<Extracted> {
    let found = |t: &str, source| {
        let t = segments::matrix_after_label(t).unwrap_or(t);
        Some(Extracted {
            text: t.trim().to_string(),
            source,
        })
    };
    if let Some(b) = final_boxed(text) {
        return found(&b, Source::Boxed);
    }
    if let Some(h) = after_hashes(text) {
        return found(h, Source::Hash);
    }
    let segs = segments::segments(text);
    if let Some(p) = after_phrase(text, &segs) {
        return found(&p, Source::Phrase);
    }
    if is_bare_expression(text) {
        let t = text.trim();
        // `$x$`, `\(x\)`: the math inside its delimiters. A matrix environment is its own
        // segment, so one with a factor before it (`2\begin{pmatrix}...`) is read whole.
        let t = segments::segments(t)
            .iter()
            .find(|s| !s.body(t).is_empty())
            .filter(|s| s.body(t).len() + 4 >= t.len() && !(s.start > 0 && s.body.0 == s.start))
            .map_or(t, |s| s.body(t));
        return found(t, Source::Whole);
    }
    let from = tail_window_start(text, &segs);
    let tail = statement::Sentences::new(text, from, text.len(), &segs);
    if let Some(v) = tail.conclusion_value() {
        return found(&v, Source::Statement);
    }
    if let Some(j) = tail.joined_segments() {
        return found(&j, Source::Dollar);
    }
    if let Some(d) = segments::last_nonempty(text, &segs) {
        return found(d, Source::Dollar);
    }
    if last_number_fallback {
        if let Some(n) = last_number(text) {
            return found(n, Source::LastNumber);
        }
    }
    None
}

/// Prose outside math: at least one English word (three or more letters) not inside a math
/// segment, a LaTeX command or `\text{}`, other than "and".
fn has_prose(text: &str, segs: &[Segment]) -> bool {
    work::add(text.len() + segs.len());
    let mut from = 0;
    for s in segs
        .iter()
        .map(|s| (s.start, s.end))
        .chain([(text.len(), text.len())])
    {
        let piece = &text[from..s.0];
        if piece.split_whitespace().any(|w| {
            let w = w.trim_matches(|c: char| c.is_ascii_punctuation());
            w.len() >= 3
                && w.bytes().all(|c| c.is_ascii_alphabetic())
                && !w.eq_ignore_ascii_case("and")
        }) {
            return true;
        }
        from = s.1;
    }
    false
}

/// Extract the answer from a gold field as data sets store it: a MATH solution (its final
/// boxes), a GSM8K solution (`#### 72`), a bare answer (optionally in `$...$`), or a sentence
/// that states the answer ("The answer is 5.", "The matrix is $\begin{pmatrix}...$.").
pub fn extract_gold(text: &str) -> Option<String> {
    let found = extract_gold_text(text)?;
    Some(match segments::matrix_after_label(&found) {
        Some(m) => m.to_string(),
        None => found,
    })
}

fn extract_gold_text(text: &str) -> Option<String> {
    if let Some(b) = final_boxed(text) {
        return Some(b);
    }
    if let Some(h) = after_hashes(text) {
        return Some(h.to_string());
    }
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let segs = segments::segments(t);
    if let Some(seg) = segs.first() {
        // `$x$`; a matrix environment with a factor before it (`2\begin{pmatrix}...`) is whole.
        let bare_after_factor = seg.start > 0 && seg.body.0 == seg.start;
        if segs.len() == 1 && seg.body(t).len() + 4 >= t.len() && !bare_after_factor {
            return Some(seg.body(t).to_string());
        }
    }
    // A gold written as prose ("The answer is 5.", "5 apples"): read the answer out of it.
    if let Some(p) = after_phrase(t, &segs) {
        return Some(p);
    }
    if has_prose(t, &segs) {
        let from = tail_window_start(t, &segs);
        if let Some(v) = statement::Sentences::new(t, from, t.len(), &segs).conclusion_value() {
            return Some(v);
        }
        if !t.contains('\\') && segs.is_empty() {
            if let Some(n) = last_number(t) {
                return Some(n.to_string());
            }
        }
    }
    Some(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_forms() {
        let cases = [
            ("so \\boxed{5}.", Some("5")),
            ("\\boxed{\\frac{1}{2}} then \\boxed{3}", Some("3")),
            ("nested \\boxed{\\{1, 2\\}}", Some("\\{1, 2\\}")),
            ("space form \\boxed 5$", Some("5")),
            ("fbox \\fbox{7}", Some("7")),
            ("truncated \\boxed{4} and \\boxed{5", Some("4")),
            ("none here", None),
        ];
        for (text, want) in cases {
            assert_eq!(last_boxed(text), want, "{text}");
        }
    }

    #[test]
    fn response_rules_in_priority_order() {
        let cases = [
            ("blah #### 1,234\n", Some(("1,234", Source::Hash))),
            (
                "So the answer is 18 dollars. Done",
                Some(("18", Source::Phrase)),
            ),
            (
                "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.",
                Some(("\\frac{3}{4}", Source::Phrase)),
            ),
            (
                "We get $x=2$ and then compute $y = 7$ finally",
                Some(("y = 7", Source::Dollar)),
            ),
            ("\\frac{1}{2}", Some(("\\frac{1}{2}", Source::Whole))),
            ("$3$", Some(("3", Source::Whole))),
            (
                "2\\begin{pmatrix}1\\\\2\\end{pmatrix}",
                Some(("2\\begin{pmatrix}1\\\\2\\end{pmatrix}", Source::Whole)),
            ),
            ("two-thirds", Some(("two-thirds", Source::Whole))),
            (
                "Maria ate 4 of the 6 pieces.\n\nShe ate two-thirds of the pie.",
                Some(("two-thirds", Source::Statement)),
            ),
            ("so 5", Some(("5", Source::Statement))),
            (
                "<think>maybe \\boxed{4}</think> The answer is 5.",
                Some(("5", Source::Phrase)),
            ),
            (
                "<think>it is \\boxed{4}</think>",
                Some(("4", Source::Boxed)),
            ),
            (
                "<think>hmm</think><answer>\\frac{1}{2}</answer>",
                Some(("\\frac{1}{2}", Source::Whole)),
            ),
            (
                "<answer>The result is $x^2$</answer>",
                Some(("x^2", Source::Statement)),
            ),
            (
                "she pays 3 dollars and then 4.5 more dollars",
                Some(("4.5", Source::LastNumber)),
            ),
        ];
        for (text, want) in cases {
            let got = extract_response(text, true);
            assert_eq!(
                got.as_ref().map(|e| (e.text.as_str(), e.source)),
                want,
                "{text}"
            );
        }
        assert_eq!(
            extract_response("she pays 3 dollars and then more", false),
            None
        );
    }

    #[test]
    fn gold_forms() {
        assert_eq!(
            extract_gold("Natalia sold 48/2 = 24 clips.\n#### 72").as_deref(),
            Some("72")
        );
        assert_eq!(
            extract_gold("Thus $\\boxed{\\frac{\\pi}{2}}$.").as_deref(),
            Some("\\frac{\\pi}{2}")
        );
        assert_eq!(extract_gold("$x^2$").as_deref(), Some("x^2"));
        assert_eq!(
            extract_gold("2\\begin{pmatrix}1\\end{pmatrix}").as_deref(),
            Some("2\\begin{pmatrix}1\\end{pmatrix}")
        );
        assert_eq!(extract_gold("  ").as_deref(), None);
        assert_eq!(extract_gold("The answer is 5.").as_deref(), Some("5"));
        assert_eq!(extract_gold("5 apples").as_deref(), Some("5"));
        assert_eq!(extract_gold("-2 and 3").as_deref(), Some("-2 and 3"));
        assert_eq!(
            extract_gold("x = 1 or x = 2").as_deref(),
            Some("x = 1 or x = 2")
        );
        assert_eq!(extract_gold("Monday").as_deref(), Some("Monday"));
        assert_eq!(
            extract_gold("all real numbers").as_deref(),
            Some("all real numbers")
        );
        assert_eq!(
            extract_gold("10 \\text{ cm}").as_deref(),
            Some("10 \\text{ cm}")
        );
    }
}
