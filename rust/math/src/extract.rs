//! Answer extraction: find the final answer in a model response or a data set's gold field.
//!
//! Only the *final* answer counts, so every rule takes the last match: the last `\boxed{}`, the
//! last `####`, the last "answer is" phrase. That is what makes listing several candidates in
//! the reasoning useless as a reward hack.

/// Where an extracted answer came from; reported to the user as part of the verdict details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `\boxed{...}`, `\boxed 5` or `\fbox{...}`.
    Boxed,
    /// GSM8K `#### 72`.
    Hash,
    /// "the answer is ...", "Final Answer: ...".
    Phrase,
    /// The last `$...$`, `\(...\)` or `\[...\]` segment.
    Dollar,
    /// The whole text, because it is a bare expression (no prose around it).
    Whole,
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
            Source::LastNumber => "last_number",
        }
    }
}

/// The content of the last `\boxed`/`\fbox` in `text`, with balanced braces. A truncated last box
/// (unbalanced) is skipped in favour of the one before it.
pub fn last_boxed(text: &str) -> Option<&str> {
    let mut end = text.len();
    loop {
        let hay = &text[..end];
        let pos = [hay.rfind("\\boxed"), hay.rfind("\\fbox")]
            .into_iter()
            .flatten()
            .max()?;
        let cmd_len = if text[pos..].starts_with("\\boxed") {
            6
        } else {
            5
        };
        if let Some(content) = boxed_argument(&text[pos + cmd_len..]) {
            return Some(content);
        }
        end = pos;
    }
}

/// The contents of every `\boxed`/`\fbox` in `text`, in order (unbalanced ones skipped).
pub fn all_boxed(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < text.len() {
        let hay = &text[from..];
        let Some(pos) = [hay.find("\\boxed"), hay.find("\\fbox")]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        let at = from + pos;
        let cmd_len = if text[at..].starts_with("\\boxed") {
            6
        } else {
            5
        };
        if let Some(content) = boxed_argument(&text[at + cmd_len..]) {
            out.push(content);
        }
        from = at + cmd_len;
    }
    out
}

/// The argument following a `\boxed` command: `{...}` balanced, or `\boxed 5` up to the next
/// space / `$`.
fn boxed_argument(rest: &str) -> Option<&str> {
    let trimmed = rest.trim_start();
    if let Some(inner) = trimmed.strip_prefix('{') {
        let close = matching_brace(inner)?;
        return Some(&inner[..close]);
    }
    // `\boxed 5`: a space is required, otherwise this was e.g. `\boxedx` (another command).
    if trimmed.len() == rest.len() {
        return None;
    }
    let stop = trimmed
        .find(|c: char| c.is_whitespace() || c == '$')
        .unwrap_or(trimmed.len());
    let word = trimmed[..stop].trim_end_matches(['.', ',']);
    (!word.is_empty()).then_some(word)
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
    let pos = text.rfind("####")?;
    let rest = text[pos + 4..].trim_start_matches('#');
    let line = rest.lines().next().unwrap_or("").trim();
    (!line.is_empty()).then_some(line)
}

const PHRASES: [&str; 6] = [
    "final answer is",
    "final answer:",
    "the answer is",
    "answer is:",
    "answer:",
    "answer is",
];

/// The text after the last "answer is"-style phrase, cut at the end of its sentence; a math
/// segment inside it wins (`The final answer is $5$. I hope it is correct.`).
fn after_phrase(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let (pos, len) = PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        .max_by_key(|&(i, l)| (i + l, l))?;
    // `**Answer:** 7` (markdown bold) is common in chat models' output.
    let rest = text[pos + len..].trim_start_matches([' ', ':', '\t', '*']);
    let line = rest
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.is_empty() {
        return None;
    }
    if let Some(seg) = first_math_segment(line) {
        return Some(seg.to_string());
    }
    // End of sentence: a period followed by a space or the end, not a decimal point.
    let bytes = line.as_bytes();
    let mut cut = line.len();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            cut = i;
            break;
        }
    }
    // In prose a final `!` ends the sentence ("the answer is 5!").
    let ans = line[..cut].trim().trim_end_matches(['*', '!']).trim();
    (!ans.is_empty()).then(|| ans.to_string())
}

/// Pairs of math delimiters, longest first so `$$` is not read as an empty `$ $`.
const DELIMS: [(&str, &str); 4] = [("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")];

/// All math segments of `text` in order, as (start, content).
fn math_segments(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some((open, close)) = DELIMS.iter().find(|(o, _)| rest.starts_with(o)) else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        if rest.starts_with("\\$") {
            i += 2;
            continue;
        }
        let body = &rest[open.len()..];
        match find_unescaped(body, close) {
            Some(end) => {
                out.push((i, body[..end].trim()));
                i += open.len() + end + close.len();
            }
            None => break,
        }
    }
    out
}

/// Position of `pat` in `s`, skipping occurrences escaped by a backslash (`\$` is a dollar sign).
fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = s[from..].find(pat) {
        let at = from + off;
        if pat == "$" && at > 0 && s.as_bytes()[at - 1] == b'\\' {
            from = at + 1;
            continue;
        }
        return Some(at);
    }
    None
}

fn first_math_segment(text: &str) -> Option<&str> {
    math_segments(text)
        .into_iter()
        .map(|(_, s)| s)
        .find(|s| !s.is_empty())
}

fn last_math_segment(text: &str) -> Option<&str> {
    math_segments(text)
        .into_iter()
        .rev()
        .map(|(_, s)| s)
        .find(|s| !s.is_empty())
}

/// True when `text` is a bare answer rather than prose: short, one line, and no English words
/// outside LaTeX commands and `\text{}` (units such as `\text{ cm}` are allowed).
fn is_bare_expression(text: &str) -> bool {
    // "or"/"and" between answers (`-2 and 3`) are part of an answer, not prose.
    let joined: String = text
        .split_whitespace()
        .filter(|w| !matches!(w.to_ascii_lowercase().as_str(), "or" | "and"))
        .collect::<Vec<_>>()
        .join(" ");
    let t = joined.as_str();
    if t.is_empty() || t.len() > 80 || text.trim().contains('\n') {
        return false;
    }
    let mut run = 0;
    let mut in_cmd = false;
    let mut words = 0;
    let mut skip_text_depth: Option<usize> = None;
    let mut depth = 0usize;
    let bytes = t.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'{' {
            depth += 1;
        } else if b == b'}' {
            depth = depth.saturating_sub(1);
            if skip_text_depth == Some(depth) {
                skip_text_depth = None;
            }
        }
        if skip_text_depth.is_some() {
            continue;
        }
        if b == b'\\' {
            in_cmd = true;
            if t[i..].starts_with("\\text{") || t[i..].starts_with("\\mbox{") {
                skip_text_depth = Some(depth);
            }
            continue;
        }
        if b.is_ascii_alphabetic() {
            if !in_cmd {
                run += 1;
                if run == 3 {
                    words += 1;
                }
            }
        } else {
            in_cmd = false;
            run = 0;
        }
    }
    // A bare word beside the math ("so 5", "about 10") makes it prose, not an answer.
    let prose_token = t
        .split_whitespace()
        .any(|w| w.len() >= 2 && w.bytes().all(|c| c.is_ascii_alphabetic()));
    words == 0 && !prose_token
}

/// The last number in the text: optional sign, thousands separators, decimals, or `a/b`.
fn last_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if !bytes[i].is_ascii_digit() {
            continue;
        }
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
        return Some(&text[start..end]);
    }
    None
}

/// An extracted answer and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub text: String,
    pub source: Source,
}

/// Extract the final answer of a model response. `last_number_fallback` enables the last rule,
/// which is right for GSM8K-style numeric golds and wrong for LaTeX ones.
pub fn extract_response(text: &str, last_number_fallback: bool) -> Option<Extracted> {
    // A reasoning model's final answer follows its `</think>`; what it boxed while thinking
    // counts only when nothing follows.
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
        let t = first_math_segment(inner).unwrap_or(inner);
        return Some(Extracted {
            text: t.trim().to_string(),
            source: Source::Phrase,
        });
    }
    extract_plain(text, last_number_fallback)
}

fn extract_plain(text: &str, last_number_fallback: bool) -> Option<Extracted> {
    let found = |t: &str, source| {
        Some(Extracted {
            text: t.trim().to_string(),
            source,
        })
    };
    if let Some(b) = last_boxed(text) {
        return found(b, Source::Boxed);
    }
    if let Some(h) = after_hashes(text) {
        return found(h, Source::Hash);
    }
    if let Some(p) = after_phrase(text) {
        return found(&p, Source::Phrase);
    }
    if is_bare_expression(text) {
        let t = text.trim();
        let t = first_math_segment(t)
            .filter(|s| s.len() + 4 >= t.len())
            .unwrap_or(t);
        return found(t, Source::Whole);
    }
    if let Some(d) = last_math_segment(text) {
        return found(d, Source::Dollar);
    }
    if last_number_fallback {
        if let Some(n) = last_number(text) {
            return found(n, Source::LastNumber);
        }
    }
    None
}

/// Extract the answer from a gold field as data sets store it: a MATH solution (last
/// `\boxed{}`), a GSM8K solution (`#### 72`), or a bare answer (optionally in `$...$`).
pub fn extract_gold(text: &str) -> Option<String> {
    if let Some(b) = last_boxed(text) {
        return Some(b.trim().to_string());
    }
    if let Some(h) = after_hashes(text) {
        return Some(h.to_string());
    }
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(seg) = first_math_segment(t) {
        if seg.len() + 4 >= t.len() {
            return Some(seg.to_string());
        }
    }
    // A gold written as prose ("The answer is 5.", "5 apples"): read the answer out of it.
    if let Some(p) = after_phrase(t) {
        return Some(p);
    }
    let prose = !t.contains('\\')
        && t.split_whitespace().any(|w| {
            w.len() >= 3
                && w.bytes().all(|c| c.is_ascii_alphabetic())
                && !matches!(w.to_ascii_lowercase().as_str(), "and")
        });
    if prose {
        if let Some(n) = last_number(t) {
            return Some(n.to_string());
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
                Some(("18 dollars", Source::Phrase)),
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
            ("so 5", Some(("5", Source::LastNumber))),
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
                Some(("x^2", Source::Dollar)),
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
