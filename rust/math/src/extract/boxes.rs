//! `\boxed{...}` / `\fbox{...}` answers, found in one left-to-right pass, and the group of boxes
//! that together form the final answer (`\boxed{2} and \boxed{3}`).

use std::collections::HashSet;

/// One balanced box: `start` is its backslash, `end` is just past its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BoxSpan {
    pub start: usize,
    pub end: usize,
    pub content: (usize, usize),
}

const COMMANDS: [&[u8]; 2] = [b"\\boxed", b"\\fbox"];

/// Every balanced box of `text`, ordered by start. Linear time: one pass keeps a brace depth
/// and a stack of the boxes still open, so `\boxed{` repeated a million times costs one scan,
/// not one scan per box. A truncated box (its brace never closes) is simply not reported.
pub(crate) fn scan(text: &str) -> Vec<BoxSpan> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    // (depth just outside the box's brace, position of its backslash)
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if let Some(cmd) = COMMANDS.iter().find(|c| b[i..].starts_with(c)) {
                    let after = i + cmd.len();
                    // `\boxedx` would be another command.
                    if b.get(after).is_some_and(u8::is_ascii_alphabetic) {
                        i = after;
                        continue;
                    }
                    let mut k = after;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if b.get(k) == Some(&b'{') {
                        open.push((depth, i));
                        depth += 1;
                        i = k + 1;
                        continue;
                    }
                    if k > after {
                        // `\boxed 5`: one word, up to a space or a `$`.
                        let mut e = k;
                        while e < b.len() && !b[e].is_ascii_whitespace() && b[e] != b'$' {
                            e += 1;
                        }
                        let mut ce = e;
                        while ce > k && matches!(b[ce - 1], b'.' | b',') {
                            ce -= 1;
                        }
                        if ce > k && text.is_char_boundary(ce) {
                            out.push(BoxSpan {
                                start: i,
                                end: e,
                                content: (k, ce),
                            });
                        }
                        i = e.max(k);
                        continue;
                    }
                    i = after;
                    continue;
                }
                // Any other escape (`\{`, `\}`, `\\`) is content, not structure.
                i += 2;
            }
            b'{' => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                if depth > 0 {
                    depth -= 1;
                    if open.last().is_some_and(|&(d, _)| d == depth) {
                        let (_, start) = open.pop().unwrap_or((0, 0));
                        let brace = open_brace(b, start);
                        out.push(BoxSpan {
                            start,
                            end: i + 1,
                            content: (brace + 1, i),
                        });
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.sort_unstable_by_key(|s| s.start);
    super::work::add(b.len() + out.len());
    out
}

/// Position of the `{` that opens the box whose backslash is at `start`.
fn open_brace(b: &[u8], start: usize) -> usize {
    let mut k = start + 1;
    while k < b.len() && b[k] != b'{' {
        k += 1;
    }
    super::work::add(k - start);
    k
}

/// Longest stretch of text between two boxes that can still join them into one answer.
const MAX_GAP: usize = 96;

/// The boxes that form the final answer: the last box, and the boxes right before it that are
/// joined to it only by connectors (`and`, `or`, commas, `\quad`, math delimiters, line breaks,
/// part labels such as `(a)`, or a label such as `y =`). A box earlier in the reasoning, with
/// prose or a sentence end in between, is not part of it. Identical boxes count once (a model
/// that repeats its answer gives one answer). Boxes nested in another box are its content.
pub(crate) fn final_group(text: &str, boxes: &[BoxSpan]) -> Vec<BoxSpan> {
    let Some(&last) = boxes.last() else {
        return Vec::new();
    };
    let mut group = vec![last];
    let mut cur = last;
    for &prev in boxes[..boxes.len() - 1].iter().rev() {
        super::work::add(1);
        if prev.end > cur.start {
            // A box that contains the current one (`\boxed{\boxed{5}}`) wraps it.
            continue;
        }
        super::work::add((cur.start - prev.end).min(MAX_GAP + 1));
        if !joins(&text[prev.end..cur.start]) {
            break;
        }
        group.push(prev);
        cur = prev;
    }
    group.reverse();
    let mut seen: HashSet<&str> = HashSet::new();
    group.retain(|s| {
        let c = text[s.content.0..s.content.1].trim();
        super::work::add(c.len());
        !c.is_empty() && seen.insert(c)
    });
    if group.is_empty() {
        // Only empty boxes: the last one is the (empty) answer.
        group.push(last);
    }
    group
}

/// Words that may stand between two boxes of one answer.
fn is_glue_word(w: &str) -> bool {
    let w = w.trim_matches(|c: char| matches!(c, ',' | ';' | ':'));
    if w.is_empty() {
        return true;
    }
    let lower = w.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "and" | "or" | "also" | "for" | "part" | "case" | "&" | "," | ";" | "as" | "well"
    ) {
        return true;
    }
    // Part labels: `(a)`, `b)`, `(ii)`, `(2)`.
    let inner = lower.strip_prefix('(').unwrap_or(&lower);
    let inner = inner.strip_suffix(')').unwrap_or(inner);
    (lower.ends_with(')') || lower.starts_with('('))
        && !inner.is_empty()
        && inner.len() <= 4
        && inner.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// True when `gap` (the text between two boxes) only joins them.
fn joins(gap: &str) -> bool {
    if gap.len() > MAX_GAP || gap.contains("\n\n") {
        return false;
    }
    let cleaned = strip_markup(gap);
    let mut rest = cleaned.trim();
    // A label right before the next box: `$ and $y = \boxed{3}`, `(t, u) = \boxed{...}`.
    if let Some(before) = rest.strip_suffix('=') {
        let before = before.trim_end();
        let cut = label_start(before);
        rest = before[..cut].trim_end();
    }
    rest.split_whitespace().all(is_glue_word)
}

/// Start of the label that ends `s` (`y`, `a_{37}`, `(t, u)`, `f(2)`): its last word, or a
/// bracketed group with what names it.
fn label_start(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = b.len();
    let mut depth = 0i32;
    while i > 0 {
        let c = b[i - 1];
        match c {
            b')' | b']' | b'}' => depth += 1,
            b'(' | b'[' | b'{' => depth -= 1,
            _ if depth == 0 && c.is_ascii_whitespace() => break,
            _ => {}
        }
        i -= 1;
    }
    // Never cut inside a UTF-8 sequence.
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The gap without math delimiters, spacing commands and text wrappers (their words stay).
fn strip_markup(gap: &str) -> String {
    let mut out = String::with_capacity(gap.len());
    let mut chars = gap.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '\\' {
            // `\[`, `\]`, `\,`, `\\` and commands (`\quad`, `\text`, `\hspace`) are all glue;
            // a command's braced argument keeps its words, so `\text{ and }` reads as `and`.
            match chars.next() {
                Some((_, n)) if n.is_ascii_alphabetic() => {
                    while chars.next_if(|&(_, n)| n.is_ascii_alphabetic()).is_some() {}
                }
                _ => {}
            }
            out.push(' ');
            continue;
        }
        match c {
            '$' | '{' | '}' | '~' | '&' | '*' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(text: &str) -> Vec<&str> {
        let boxes = scan(text);
        final_group(text, &boxes)
            .iter()
            .map(|s| &text[s.content.0..s.content.1])
            .collect()
    }

    #[test]
    fn scan_matches_braces() {
        let t = "a \\boxed{\\frac{1}{2}} b \\fbox{3} \\boxed{4";
        let got: Vec<&str> = scan(t)
            .iter()
            .map(|s| &t[s.content.0..s.content.1])
            .collect();
        assert_eq!(got, vec!["\\frac{1}{2}", "3"]);
        let t = "\\boxed{\\{1, 2\\}} and \\boxed 7.";
        let got: Vec<&str> = scan(t)
            .iter()
            .map(|s| &t[s.content.0..s.content.1])
            .collect();
        assert_eq!(got, vec!["\\{1, 2\\}", "7"]);
    }

    #[test]
    fn groups() {
        assert_eq!(group("\\boxed{1}\\boxed{2}"), vec!["1", "2"]);
        assert_eq!(group("\\boxed{1} and \\boxed{-2}"), vec!["1", "-2"]);
        assert_eq!(group("so \\boxed{4}. Then \\boxed{5}"), vec!["5"]);
        assert_eq!(
            group("$x = \\boxed{1}$ and $y = \\boxed{2}$"),
            vec!["1", "2"]
        );
        assert_eq!(
            group("\\boxed{1} then \\boxed{3} and \\boxed{-2}"),
            vec!["3", "-2"]
        );
        assert_eq!(
            group("\\boxed{7}\n\n**Final Answer**\n\\boxed{7}"),
            vec!["7"]
        );
        assert_eq!(group("\\boxed{7} \\boxed{7}"), vec!["7"]);
        assert_eq!(group("\\boxed{\\boxed{5}}"), vec!["5"]);
    }
}
