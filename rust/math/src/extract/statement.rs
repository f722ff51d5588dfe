//! The value a sentence states: "The largest $n$ is 34." states 34, "The probability is
//! therefore 2/3." states 2/3, "So she has 12 apples." states 12.
//!
//! A sentence is cut into tokens (math segments, words, punctuation); tokens that carry a value
//! (a math segment, anything with a digit or a LaTeX command) and the operators, variables and
//! connectors between them form *runs*. The stated value is the run right after the last copula
//! ("is", "are", "equals", ...) that is followed by one; a variable named before the
//! copula (`$n$` above) is the subject, not the answer. Everything here is linear in the
//! window it is given, and windows are capped by the caller.

use super::segments::Segment;
use super::{has_prose_word, Skip};
use crate::words;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A math segment, or a word with a digit or a LaTeX command: `34`, `2/3`, `\frac{1}{2}`.
    Value,
    /// A single letter (`x`, `n`): part of a run only next to an operator (`x = 5`).
    Var,
    /// `=`, `+`, `-`, `<`, ...
    Op,
    /// "or", "and", a comma.
    Conn,
    /// "percent", "pct": belongs to the value before it.
    Unit,
    /// "is", "are", "equals", ...
    Copula,
    /// Words that may stand between a copula and its value ("therefore", "approximately",
    /// "is worth 16386.16").
    Filler,
    Word,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    start: usize,
    end: usize,
    kind: Kind,
    /// For a math segment: its trimmed content.
    body: Option<(usize, usize)>,
    /// A fraction written in words ("two-thirds", "one and a half"), merged from word tokens.
    words: bool,
    /// With `words`: a count in words ("twelve", "one hundred and five"), not a fraction.
    count: bool,
}

/// How the caller found the sentence, which decides how much of it to trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Right after "the answer is" / "final answer is": the value comes first.
    AfterIs,
    /// Right after "Answer:" / "Final Answer:": a statement or a bare value.
    AfterColon,
    /// A conclusion with no answer marker: only a copula makes it a statement of the answer.
    Conclusion,
}

/// Verbs that state a value. Not "get"/"gives": "we get $x=2$ and then compute $y=7$" states
/// nothing final.
const COPULAS: [&str; 9] = [
    "is", "are", "was", "were", "be", "equals", "equal", "becomes", "remains",
];

const FILLERS: [&str; 23] = [
    "worth",
    "therefore",
    "thus",
    "hence",
    "then",
    "so",
    "approximately",
    "about",
    "around",
    "roughly",
    "exactly",
    "just",
    "simply",
    "indeed",
    "to",
    "given",
    "by",
    "only",
    "now",
    "clearly",
    "precisely",
    "finally",
    "actually",
];

/// Letters of an ordinal suffix: "2nd" and "3rd" are words, not values.
const ORDINALS: [&str; 4] = ["st", "nd", "rd", "th"];

fn classify(text: &str, t: &Token) -> Kind {
    if t.body.is_some() {
        return Kind::Value;
    }
    let w = &text[t.start..t.end];
    let lower = w.to_ascii_lowercase();
    let l = lower.as_str();
    if matches!(l, "or" | "and" | ",") {
        return Kind::Conn;
    }
    // Scale words belong to their number: "5 million" is 5,000,000, not 5.
    if matches!(
        l,
        "percent"
            | "pct"
            | "percentage"
            | "%"
            | "thousand"
            | "million"
            | "millions"
            | "billion"
            | "billions"
            | "trillion"
    ) {
        return Kind::Unit;
    }
    if COPULAS.contains(&l) || matches!(l, "it's" | "that's" | "there's" | "it’s" | "that’s") {
        return Kind::Copula;
    }
    if FILLERS.contains(&l) || l == ":" {
        return Kind::Filler;
    }
    let bytes = w.as_bytes();
    if bytes.iter().any(u8::is_ascii_digit) {
        let digits = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && ORDINALS.contains(&&l[digits..]) {
            return Kind::Word;
        }
        // A parenthetical aside with words in it is prose, not a value.
        if (w.starts_with('(') || w.starts_with('[')) && has_prose_word(w.as_bytes(), Skip::Nothing)
        {
            return Kind::Word;
        }
        return Kind::Value;
    }
    if w.contains('\\') {
        // `\text{cm}` alone is a unit word; `\pi`, `\frac{a}{b}`, `\infty` are values.
        let unwrapped = w
            .strip_prefix("\\text{")
            .or_else(|| w.strip_prefix("\\mbox{"))
            .and_then(|x| x.strip_suffix('}'));
        return match unwrapped {
            Some(inner)
                if inner
                    .trim()
                    .bytes()
                    .all(|c| c.is_ascii_alphabetic() || c == b' ') =>
            {
                Kind::Word
            }
            _ => Kind::Value,
        };
    }
    if bytes.iter().all(|c| b"=+-<>*/^|".contains(c))
        || matches!(
            w,
            "−" | "×" | "≤" | "≥" | "≠" | "·" | "⋅" | "÷" | "±" | "≈" | "∪"
        )
    {
        return Kind::Op;
    }
    // Unicode math written in prose: `π`, `√2`, `½`, `2π`, `x²`.
    if w.chars().any(|c| "π√∞½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞²³".contains(c))
        && !has_prose_word(w.as_bytes(), Skip::Nothing)
    {
        return Kind::Value;
    }
    // A multiple-choice option, `(C)` or `C)`: "The correct option is (C) 24."
    if matches!(bytes, [b'(', b'A'..=b'E', b')'] | [b'A'..=b'E', b')']) {
        return Kind::Value;
    }
    let letters = bytes.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if letters == 1
        && bytes
            .iter()
            .all(|c| c.is_ascii_alphabetic() || b"()'_".contains(c))
    {
        return Kind::Var;
    }
    // `f(x)`, `x^2`, `a+b`: letters with operators are math written without delimiters.
    if letters <= 3
        && bytes.iter().any(|c| b"=+^_()<>/".contains(c))
        && !has_prose_word(w.as_bytes(), Skip::Nothing)
    {
        return Kind::Value;
    }
    Kind::Word
}

/// Brackets of the window matched in one pass: `close_of[i]` is the position of the bracket
/// closing the one at `i` (relative to the window), when there is one.
fn match_brackets(b: &[u8]) -> Vec<Option<u32>> {
    super::work::add(b.len());
    let mut close_of = vec![None; b.len()];
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            c @ (b'(' | b'[' | b'{') => stack.push((c, i)),
            c @ (b')' | b']' | b'}') => {
                // `[1, 2)` is an interval: any closer matches any opener, except braces, which
                // only match braces.
                if let Some(&(o, at)) = stack.last() {
                    if (o == b'{') == (c == b'}') {
                        stack.pop();
                        close_of[at] = Some(i as u32);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    close_of
}

/// Cut `text[from..to]` into sentences of tokens. `segs` are the math segments of the whole
/// text (sorted); a segment is one token.
fn sentences(text: &str, from: usize, to: usize, segs: &[Segment]) -> Vec<Vec<Token>> {
    let b = text.as_bytes();
    super::work::add(to - from);
    let close_of = match_brackets(&b[from..to]);
    let mut seg_i = segs.partition_point(|s| s.start < from);
    let mut out: Vec<Vec<Token>> = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    let mut i = from;
    let end_sentence = |cur: &mut Vec<Token>, out: &mut Vec<Vec<Token>>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    while i < to {
        while seg_i < segs.len() && segs[seg_i].start < i {
            seg_i += 1;
        }
        if let Some(s) = segs.get(seg_i).filter(|s| s.start == i && s.end <= to) {
            cur.push(Token {
                start: s.start,
                end: s.end,
                kind: Kind::Value,
                body: Some(s.body),
                words: false,
                count: false,
            });
            i = s.end;
            continue;
        }
        let c = b[i];
        if c == b'\n' {
            end_sentence(&mut cur, &mut out);
            i += 1;
            continue;
        }
        if c == b'*' && times_star(b, i) {
            cur.push(Token {
                start: i,
                end: i + 1,
                kind: Kind::Op,
                body: None,
                words: false,
                count: false,
            });
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() || c == b'*' || c == b'"' {
            i += 1;
            continue;
        }
        if matches!(c, b'.' | b'!' | b'?') && ends_here(b, i, to) {
            end_sentence(&mut cur, &mut out);
            i += 1;
            continue;
        }
        if matches!(c, b',' | b';' | b':') {
            let kind = if c == b',' { Kind::Conn } else { Kind::Filler };
            // A semicolon separates clauses: treat it like a sentence end.
            if c == b';' {
                end_sentence(&mut cur, &mut out);
            } else {
                cur.push(Token {
                    start: i,
                    end: i + 1,
                    kind,
                    body: None,
                    words: false,
                    count: false,
                });
            }
            i += 1;
            continue;
        }
        // A word: up to whitespace or sentence punctuation, with bracket groups kept whole
        // (`(3, 2)`, `\text{ cm}`, `[-2, 7]`).
        let start = i;
        let mut j = i;
        while j < to {
            let d = b[j];
            if seg_i < segs.len() && segs[seg_i].start == j {
                break;
            }
            if d == b'\\' {
                j += 2;
                continue;
            }
            if matches!(d, b'(' | b'[' | b'{') {
                if let Some(e) = close_of[j - from] {
                    j = from + e as usize + 1;
                    continue;
                }
            }
            if d.is_ascii_whitespace() || d == b'*' || d == b'"' {
                break;
            }
            if matches!(d, b'.' | b'!' | b'?') && ends_here(b, j, to) {
                break;
            }
            // A comma or colon inside a number (`1,000`, `3:4`) stays; otherwise it ends the word.
            if matches!(d, b',' | b';' | b':')
                && !(j > start
                    && b[j - 1].is_ascii_digit()
                    && b.get(j + 1).is_some_and(u8::is_ascii_digit))
            {
                break;
            }
            j += 1;
        }
        let mut end = j.min(to);
        while end > start && !text.is_char_boundary(end) {
            end -= 1;
        }
        if end <= start {
            // Never stall on a byte that is not a word (a lone non-ASCII continuation).
            i = next_boundary(text, i + 1);
            continue;
        }
        let mut t = Token {
            start,
            end,
            kind: Kind::Word,
            body: None,
            words: false,
            count: false,
        };
        t.kind = classify(text, &t);
        cur.push(t);
        i = end;
    }
    end_sentence(&mut cur, &mut out);
    out
}

/// A `*` that multiplies (`20 * 24 = 480`, `3*4`, `2*(x+1)`), not markdown emphasis (`**480**`,
/// `*480*`, a `* ` bullet): emphasis never has white space on both sides and never sits between a
/// digit and an operand. Looks at most across the white space next to the star, so a text of
/// stars and spaces is still scanned in linear time.
fn times_star(b: &[u8], i: usize) -> bool {
    let prev = i.checked_sub(1).map(|k| b[k]);
    let next = b.get(i + 1).copied();
    if prev == Some(b'*') || next == Some(b'*') {
        return false;
    }
    let blank = |c: Option<u8>| c.is_some_and(|c| c == b' ' || c == b'\t');
    if blank(prev) && blank(next) {
        let left = b[..i].iter().rev().find(|c| !matches!(c, b' ' | b'\t'));
        let right = b[i + 1..].iter().find(|c| !matches!(c, b' ' | b'\t'));
        return left.is_some_and(|c| c.is_ascii_alphanumeric() || b")]}$".contains(c))
            && right.is_some_and(|c| c.is_ascii_alphanumeric() || b"([{$\\-".contains(c));
    }
    prev.is_some_and(|c| c.is_ascii_digit() || c == b')')
        && next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'(')
}

fn next_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// A `.`, `!` or `?` at `i` ends a sentence when followed by whitespace, a closing quote or
/// markdown, or the end (not a decimal point, not `5!` inside an expression).
fn ends_here(b: &[u8], i: usize, to: usize) -> bool {
    let mut k = i + 1;
    while k < to && matches!(b[k], b'*' | b'"' | b')' | b'\'') {
        k += 1;
    }
    k >= to || b[k].is_ascii_whitespace()
}

/// A run of tokens `[a, b)` that states a value.
#[derive(Clone, Copy, Debug)]
struct Run {
    a: usize,
    b: usize,
}

/// The runs of one sentence. Runs are maximal stretches of Value/Var/Op/Conn/Unit tokens with
/// at least one Value; connectors and operators at their ends are dropped. A run that ends in
/// "or"/"and" followed, within two words, by another value is a hedge ("4 or maybe 5") and
/// becomes one run, so that it reads as several candidates.
fn runs(toks: &[Token]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let k = toks[i].kind;
        if !matches!(k, Kind::Value | Kind::Var | Kind::Op) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < toks.len()
            && matches!(
                toks[j].kind,
                Kind::Value | Kind::Var | Kind::Op | Kind::Conn | Kind::Unit
            )
        {
            j += 1;
        }
        let raw_end = j;
        let (mut a, mut b) = (i, j);
        while b > a && matches!(toks[b - 1].kind, Kind::Conn | Kind::Op) {
            b -= 1;
        }
        // A variable at either end is a subject or an article, not part of the value.
        while b > a && toks[b - 1].kind == Kind::Var {
            b -= 1;
        }
        while a < b
            && (toks[a].kind == Kind::Var && toks.get(a + 1).is_none_or(|t| t.kind != Kind::Op))
        {
            a += 1;
        }
        while a < b && toks[a].kind == Kind::Conn {
            a += 1;
        }
        if toks[a..b].iter().any(|t| t.kind == Kind::Value) {
            let hedged = raw_end > b
                && toks[b..raw_end]
                    .iter()
                    .any(|t| t.kind == Kind::Conn && t.end - t.start > 1);
            out.push(Run { a, b });
            if hedged {
                // Look ahead: a value within two words after the connector joins this run.
                let mut k = raw_end;
                let mut words = 0;
                while k < toks.len() && toks[k].kind == Kind::Word && words < 2 {
                    k += 1;
                    words += 1;
                }
                if words > 0 && k < toks.len() && toks[k].kind == Kind::Value {
                    let mut e = k;
                    while e < toks.len()
                        && matches!(toks[e].kind, Kind::Value | Kind::Var | Kind::Op)
                    {
                        e += 1;
                    }
                    if let Some(last) = out.last_mut() {
                        last.b = e;
                    }
                    i = e;
                    continue;
                }
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// The text of a run: math segments by their content, other tokens as written.
fn run_text(text: &str, toks: &[Token], r: Run) -> String {
    let toks = &toks[r.a..r.b];
    if let [t] = toks {
        if let Some((s, e)) = t.body {
            return text[s..e].to_string();
        }
    }
    let mut out = String::new();
    for t in toks {
        let piece = match t.body {
            Some((s, e)) => &text[s..e],
            None => &text[t.start..t.end],
        };
        if !out.is_empty() && piece != "," {
            out.push(' ');
        }
        out.push_str(piece);
    }
    out
}

/// The value stated by one sentence, per `mode`.
fn stated(text: &str, toks: &[Token], mode: Mode) -> Option<String> {
    let rs = runs(toks);
    super::work::add(toks.len() + rs.len());
    if rs.is_empty() {
        return None;
    }
    // The run that starts at each token, if any.
    let mut run_at: Vec<Option<Run>> = vec![None; toks.len() + 1];
    for &r in &rs {
        run_at[r.a] = Some(r);
    }
    let first_content = toks
        .iter()
        .position(|t| t.kind != Kind::Filler && !(t.kind == Kind::Conn && t.end - t.start == 1))?;
    let leading = run_at[first_content];
    if mode == Mode::AfterIs {
        if let Some(r) = leading {
            return Some(run_text(text, toks, r));
        }
    }
    if let Some(v) = excepted(text, toks, &run_at) {
        return Some(v);
    }
    // "The only excluded value is $-4$, so $x \neq -4$.": a last clause opened by a concluding
    // word after a comma states the answer when it states a value at all; the earlier clause is
    // its reason.
    if let Some(ci) = (1..toks.len()).rev().find(|&k| {
        toks[k - 1].kind == Kind::Conn
            && toks[k - 1].end - toks[k - 1].start == 1
            && CONCLUDERS
                .iter()
                .any(|c| text[toks[k].start..toks[k].end].eq_ignore_ascii_case(c))
    }) {
        if let Some(v) = stated(text, &toks[ci..], Mode::Conclusion) {
            return Some(v);
        }
    }
    // The last copula directly followed (past fillers) by a run.
    let mut next_content = toks.len();
    for ci in (0..toks.len()).rev() {
        if toks[ci].kind == Kind::Copula {
            if let Some(r) = run_at[next_content] {
                return Some(run_text(text, toks, r));
            }
        }
        if !matches!(toks[ci].kind, Kind::Filler | Kind::Copula) {
            next_content = ci;
        }
    }
    match mode {
        Mode::Conclusion => concluded(text, toks, &rs),
        // "Final Answer: 5", "Answer: Jane started 3 hours ago."
        Mode::AfterIs | Mode::AfterColon => {
            let r = leading.or_else(|| rs.last().copied())?;
            Some(run_text(text, toks, r))
        }
    }
}

/// "all real numbers except $-4$", "defined for all real x except -4": the excluded values as
/// relations, `x \neq -4` (`\neq -4` when no variable is named), one for each value ("except 2
/// and 3" is `\neq 2, \neq 3`). Only with "real" before the "except", so prose such as "she
/// sold all except 3" keeps its number.
fn excepted(text: &str, toks: &[Token], run_at: &[Option<Run>]) -> Option<String> {
    let word = |t: &Token| &text[t.start..t.end];
    let at = toks
        .iter()
        .rposition(|t| t.body.is_none() && word(t).eq_ignore_ascii_case("except"))?;
    if !toks[..at]
        .iter()
        .any(|t| t.body.is_none() && word(t).eq_ignore_ascii_case("real"))
    {
        return None;
    }
    let mut k = at + 1;
    while k < toks.len()
        && (toks[k].kind == Kind::Filler
            || (toks[k].body.is_none()
                && matches!(
                    word(&toks[k]).to_ascii_lowercase().as_str(),
                    "for" | "at" | "when"
                )))
    {
        k += 1;
    }
    let r = run_at.get(k).copied().flatten()?;
    // "except 2 and 3", "except $x = 2$ and $x = 3$", "except $1$, $-2$, and $5$": each value
    // between the connectors is excluded.
    let mut items: Vec<String> = Vec::new();
    let mut a = r.a;
    for j in r.a..=r.b {
        if j == r.b || toks[j].kind == Kind::Conn {
            if j > a {
                items.push(run_text(text, toks, Run { a, b: j }));
            }
            a = j + 1;
        }
    }
    let label = match toks[..at].last() {
        Some(t) if t.kind == Kind::Var => word(t).to_string(),
        // "all real $x$ except ...".
        Some(Token {
            body: Some((s, e)), ..
        }) if e - s == 1 && text.as_bytes()[*s].is_ascii_alphabetic() => text[*s..*e].to_string(),
        // "except $x = 2$ and 3": the name given to one value names the others.
        _ => items
            .iter()
            .find_map(|v| v.split_once('=').map(|(l, _)| l.trim().to_string()))
            .unwrap_or_default(),
    };
    let relations: Vec<String> = items
        .iter()
        .map(|v| {
            if v.contains('=') {
                // "except x = -4": the value names its variable itself.
                v.replacen('=', "\\neq", 1)
            } else {
                format!("{label} \\neq {v}").trim().to_string()
            }
        })
        .collect();
    (!relations.is_empty()).then(|| relations.join(", "))
}

/// Words that open a conclusion: "Therefore x = 1 or x = -2."
const CONCLUDERS: [&str; 7] = [
    "therefore",
    "thus",
    "hence",
    "so",
    "finally",
    "consequently",
    "overall",
];

/// A conclusion with no copula: a sentence opened by a concluding word ("Therefore x = 1 or
/// x = -2.", "So they need 12 more cookies.") that mentions exactly one value.
fn concluded(text: &str, toks: &[Token], rs: &[Run]) -> Option<String> {
    let opens = toks.first().is_some_and(|t| {
        let w = &text[t.start..t.end];
        CONCLUDERS.iter().any(|c| w.eq_ignore_ascii_case(c))
    });
    match rs {
        [r] if opens => Some(run_text(text, toks, *r)),
        _ => None,
    }
}

/// Fractions written in words in one sentence ("two-thirds", "three quarters", "a third",
/// "one and a half"; `crate::words`, the math grammar), as spans `[a, b)` of its tokens with
/// whether the span is a count rather than a fraction. "a third", "a quarter" and a bare "half"
/// may be an ordinal or a noun, so they count only when followed by "of", "the", a comma, a verb
/// such as "is", or the end of the sentence ("a third of the pie", "is a half.", but not "a third
/// time", "a quarter mile", "half an hour"); a count in words ("one third", "two fifths"), a
/// hyphen or a whole part makes a fraction anywhere. "the third day" and "one of the two" are no
/// fractions. With `cardinals`, counts in words ("twelve", "forty-two", "one hundred and five")
/// are found too, under [`count_reads`].
fn word_numbers(text: &str, toks: &[Token], cardinals: bool) -> Vec<(usize, usize, bool)> {
    // Enough tokens for "two and three quarters", "one hundred and twenty-five".
    const MAX_TOKENS: usize = 6;
    let is_word = |t: &Token| {
        t.body.is_none()
            && matches!(t.kind, Kind::Word | Kind::Var | Kind::Conn | Kind::Unit)
            && text[t.start..t.end]
                .bytes()
                .all(|c| c.is_ascii_alphabetic() || c == b'-')
    };
    let lower = |t: &Token| text[t.start..t.end].to_ascii_lowercase();
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        super::work::add(MAX_TOKENS);
        // A fraction starts with a count ("two", "a") or is "half", "quarter", ... alone. Most
        // words are neither: tested in a small buffer, without allocating.
        let w = &text[toks[i].start..toks[i].end];
        let head = w.split('-').next().unwrap_or("").as_bytes();
        let mut buf = [0u8; 16];
        let starts = is_word(&toks[i])
            && !matches!(toks[i].kind, Kind::Conn | Kind::Unit)
            && !head.is_empty()
            && head.len() <= buf.len()
            && {
                buf[..head.len()].copy_from_slice(head);
                buf[..head.len()].make_ascii_lowercase();
                let h = std::str::from_utf8(&buf[..head.len()]).unwrap_or("");
                matches!(h, "a" | "an")
                    || words::cardinal_word(h).is_some()
                    || words::denominator_word(h).is_some()
            };
        if !starts {
            i += 1;
            continue;
        }
        let mut parts: Vec<(String, usize)> = Vec::new();
        for (k, t) in toks[i..].iter().enumerate().take(MAX_TOKENS) {
            if !is_word(t) {
                break;
            }
            for p in lower(t).split('-').filter(|p| !p.is_empty()) {
                parts.push((p.to_string(), i + k));
            }
        }
        let ws: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
        let Some((reading, used)) = words::read(&ws, words::Grammar::Math) else {
            i += 1;
            continue;
        };
        let last = parts[used - 1].1;
        // "three-year-old", "twenty-first": part of a longer word, no number.
        let whole_token = parts.get(used).is_none_or(|p| p.1 != last);
        match reading {
            words::Reading::Fraction { whole, num, .. } if whole_token => {
                let hyphen = toks[i..=last]
                    .iter()
                    .any(|t| text[t.start..t.end].contains('-'));
                let free = match toks.get(last + 1) {
                    None => true,
                    Some(n) => {
                        n.kind == Kind::Copula
                            || (n.kind == Kind::Conn && n.end - n.start == 1)
                            || matches!(lower(n).as_str(), "of" | "the")
                    }
                };
                // "one third" is a fraction; "a third" and "half" may be an ordinal or a noun
                // ("a third time", "half an hour").
                let counted = words::cardinal_word(&parts[0].0).is_some();
                if hyphen || whole > 0 || num >= 2 || counted || free {
                    out.push((i, last + 1, false));
                    i = last + 1;
                    continue;
                }
            }
            words::Reading::Number(d)
                if cardinals
                    && whole_token
                    && d.k == 0
                    && count_reads(text, toks, i, last, &ws[..used]) =>
            {
                out.push((i, last + 1, true));
                i = last + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Words before a count in words that make it no stated value: "the one that", "no one", "each
/// two", "at least one", "more than two", "the product of two numbers".
const NOT_BEFORE_COUNT: [&str; 14] = [
    "the", "this", "that", "these", "those", "no", "each", "every", "any", "another", "which",
    "least", "most", "than",
];

/// Whether the count in words `toks[a..=last]` (its words `ws`) is read as a value. A count
/// followed by "of" is a part of something named ("two of them", "one of the roots"), and one
/// after a determiner or a bound ([`NOT_BEFORE_COUNT`], "of") is not the count stated. A lone
/// "one" is mostly a pronoun or an article ("one way", "the one that"): it counts only right
/// after a verb such as "is" at the end of a clause ("The answer is one.") or before "more"
/// ("one more day").
fn count_reads(text: &str, toks: &[Token], a: usize, last: usize, ws: &[&str]) -> bool {
    let word = |t: &Token| text[t.start..t.end].to_ascii_lowercase();
    let before = toks[..a].iter().rev().find(|t| t.kind != Kind::Filler);
    let next = toks.get(last + 1);
    if next.is_some_and(|n| matches!(word(n).as_str(), "of" | "another")) {
        return false;
    }
    if before.is_some_and(|t| {
        let w = word(t);
        NOT_BEFORE_COUNT.contains(&w.as_str()) || w == "of"
    }) {
        return false;
    }
    if ws == ["one"] {
        let more = next.is_some_and(|n| word(n) == "more");
        let after_copula = before.is_some_and(|t| t.kind == Kind::Copula)
            && next.is_none_or(|n| n.kind == Kind::Conn && n.end - n.start == 1);
        return more || after_copula;
    }
    true
}

/// The content after the sentence's last copula that has any (past fillers) is a fraction in
/// words.
fn last_copula_states_words(toks: &[Token], counts: bool) -> bool {
    let mut next_content: Option<&Token> = None;
    for t in toks.iter().rev() {
        if t.kind == Kind::Copula && next_content.is_some() {
            return next_content.is_some_and(|n| n.words && (counts || !n.count));
        }
        if !matches!(t.kind, Kind::Filler | Kind::Copula) {
            next_content = Some(t);
        }
    }
    false
}

/// `toks` with each span of `spans` merged into one value token.
fn merge_words(toks: &[Token], spans: &[(usize, usize, bool)]) -> Vec<Token> {
    let mut out = Vec::with_capacity(toks.len());
    let mut next = spans.iter().peekable();
    let mut i = 0;
    while i < toks.len() {
        match next.peek() {
            Some(&&(a, b, count)) if a == i => {
                out.push(Token {
                    start: toks[a].start,
                    end: toks[b - 1].end,
                    kind: Kind::Value,
                    body: None,
                    words: true,
                    count,
                });
                next.next();
                i = b;
            }
            _ => {
                out.push(toks[i]);
                i += 1;
            }
        }
    }
    out
}

/// The sentences of `text[from..to]`, tokenized once for every rule that reads them.
pub(crate) struct Sentences<'a> {
    text: &'a str,
    sents: Vec<Vec<Token>>,
    /// Each sentence with its fractions in words as values, where it has any: found on first
    /// use (only the last sentences and a phrase's first one are ever read so).
    worded: Vec<std::cell::OnceCell<Option<Vec<Token>>>>,
    /// The same with counts in words as values too (read in conclusions only).
    counted: Vec<std::cell::OnceCell<Option<Vec<Token>>>>,
}

impl<'a> Sentences<'a> {
    pub(crate) fn new(text: &'a str, from: usize, to: usize, segs: &[Segment]) -> Self {
        let sents = sentences(text, from, to, segs);
        let worded = sents.iter().map(|_| std::cell::OnceCell::new()).collect();
        let counted = sents.iter().map(|_| std::cell::OnceCell::new()).collect();
        Sentences {
            text,
            sents,
            worded,
            counted,
        }
    }

    /// Sentence `i` with its fractions in words (and with `cardinals` its counts in words)
    /// merged into values, when it has any.
    fn worded(&self, i: usize, cardinals: bool) -> Option<&[Token]> {
        let cell = if cardinals {
            &self.counted[i]
        } else {
            &self.worded[i]
        };
        cell.get_or_init(|| {
            let toks = &self.sents[i];
            let spans = word_numbers(self.text, toks, cardinals);
            (!spans.is_empty()).then(|| merge_words(toks, &spans))
        })
        .as_deref()
    }

    /// The last sentence that mentions any value.
    fn last_valued(&self) -> Option<&[Token]> {
        self.last_valued_index().map(|i| self.sents[i].as_slice())
    }

    fn last_valued_index(&self) -> Option<usize> {
        self.sents
            .iter()
            .rposition(|s| s.iter().any(|t| t.kind == Kind::Value))
    }

    /// The value stated by the first sentence (a phrase's tail).
    pub(crate) fn first_value(&self, mode: Mode) -> Option<String> {
        (!self.sents.is_empty()).then(|| self.stated_in(0, mode, false))?
    }

    /// The value sentence `i` states. A fraction in words counts as a value where the sentence
    /// states nothing else, or where it follows the sentence's last copula (the value after the
    /// last "is" is the one stated, in words or not: "There are 3 outcomes and one is favourable,
    /// so the probability is one third."). In a conclusion, a sentence whose last value is a
    /// fraction in words states it, unless the fraction is its subject: a fraction is not
    /// written in words as working ("She ate two-thirds of the pie.", "switching wins with
    /// probability two-thirds").
    ///
    /// With `cardinals`, counts in words ("So she has twelve apples left.", "The answer is
    /// forty-two.") are read by the same rules, except that a sentence with a value in digits or
    /// math never states a count in words in its place: after its last copula, or as its last
    /// value, only where it has none ("The sum is 12 because there are two groups." states 12).
    /// As the last value of a sentence with no copula, a count is read only in the last
    /// sentence of the window ("He needs three more days."), not in an aside after it.
    fn stated_in(&self, i: usize, mode: Mode, cardinals: bool) -> Option<String> {
        let plain = &self.sents[i];
        let Some(worded) = self.worded(i, cardinals) else {
            return stated(self.text, plain, mode);
        };
        let digits = plain.iter().any(|t| t.kind == Kind::Value);
        if last_copula_states_words(worded, !digits) {
            if let Some(v) = stated(self.text, worded, mode) {
                return Some(v);
            }
        }
        if let Some(v) = stated(self.text, plain, mode).or_else(|| stated(self.text, worded, mode))
        {
            return Some(v);
        }
        // Not the subject: "Half of them were red." states no half, nor does "Three quarters of
        // the class walk." (the fraction opens it).
        let opener = worded
            .iter()
            .position(|t| !matches!(t.kind, Kind::Filler | Kind::Conn));
        let last_sentence = i + 1 == self.sents.len();
        match runs(worded).last() {
            Some(r)
                if mode == Mode::Conclusion
                    && r.b == r.a + 1
                    && worded[r.a].words
                    && (!worded[r.a].count || (!digits && last_sentence))
                    && opener.is_some_and(|o| o < r.a)
                    && worded[r.b..].iter().all(|t| t.kind != Kind::Copula) =>
            {
                Some(run_text(self.text, worded, *r))
            }
            _ => None,
        }
    }

    /// True when the first sentence opens with a multiple-choice letter (`(B)`, `B`, `B)`),
    /// which the caller reads as written.
    pub(crate) fn opens_with_choice(&self) -> bool {
        let Some(t) = self
            .sents
            .first()
            .and_then(|s| s.iter().find(|t| t.kind != Kind::Filler))
        else {
            return false;
        };
        let w = self.text[t.start..t.end].trim_matches(|c| c == '(' || c == ')');
        t.body.is_none() && w.len() == 1 && w.bytes().all(|c| (b'A'..=b'E').contains(&c))
    }

    /// The value stated by the last sentence that mentions any value (see `stated_in`: with a
    /// copula, or a number in words), or by a later sentence that mentions only numbers in
    /// words (fractions or counts).
    pub(crate) fn conclusion_value(&self) -> Option<String> {
        let last = self.last_valued_index();
        if let Some(i) = last {
            if let Some(v) = self.stated_in(i, Mode::Conclusion, true) {
                return Some(v);
            }
        }
        // A later sentence whose only values are numbers in words.
        let after = last.map_or(0, |i| i + 1);
        let w = (after..self.sents.len())
            .rev()
            .find(|&k| self.worded(k, true).is_some())?;
        self.stated_in(w, Mode::Conclusion, true)
    }

    /// The last sentence's final run when it is several math segments joined by commas or
    /// "and"/"or" and nothing but words follow it: "We conclude that $a = 3$, $b = 4$." is
    /// `a = 3, b = 4`, "we get $x = 2$ or $x = -3$." is both roots, not the last one alone.
    pub(crate) fn joined_segments(&self) -> Option<String> {
        let last = self.last_valued()?;
        let rs = runs(last);
        super::work::add(last.len() + rs.len());
        let r = *rs.last()?;
        let toks = &last[r.a..r.b];
        let maths = toks.iter().filter(|t| t.body.is_some()).count();
        let only_joined = toks
            .iter()
            .all(|t| t.body.is_some() || t.kind == Kind::Conn);
        let ends = last[r.b..]
            .iter()
            .all(|t| matches!(t.kind, Kind::Word | Kind::Unit | Kind::Filler));
        (maths >= 2 && only_joined && ends).then(|| run_text(self.text, last, r))
    }
}

#[cfg(test)]
mod tests {
    use super::super::segments::segments;
    use super::*;

    fn conclusion(t: &str) -> Option<String> {
        Sentences::new(t, 0, t.len(), &segments(t)).conclusion_value()
    }

    fn tail(t: &str, mode: Mode) -> Option<String> {
        Sentences::new(t, 0, t.len(), &segments(t)).first_value(mode)
    }

    #[test]
    fn conclusions() {
        let cases = [
            ("The largest $n$ is 34.", Some("34")),
            ("The probability is therefore 2/3.", Some("2/3")),
            ("So the total is 12 apples. I hope it helps!", Some("12")),
            ("Thus $x$ is equal to $\\frac{1}{2}$.", Some("\\frac{1}{2}")),
            ("We get $x=2$ and then compute $y = 7$ finally", None),
            ("It is 4 or maybe 5, I'm not sure.", Some("4 or maybe 5")),
            ("The 2nd root is 5.", Some("5")),
            (
                "The solutions are x = 1 or x = -2.",
                Some("x = 1 or x = -2"),
            ),
            ("The answer is 12.5 percent.", Some("12.5 percent")),
            ("The point is (3, 2).", Some("(3, 2)")),
            ("The interval is [-2, 7).", Some("[-2, 7)")),
            (
                "Hence the matrix is \\begin{pmatrix}1\\\\2\\end{pmatrix}.",
                Some("\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
            ),
            ("She has 72 apples.", None),
            ("Therefore x = 1 or x = -2.", Some("x = 1 or x = -2")),
            ("Thus, $x = 1$ or $x = -2$.", Some("x = 1 or x = -2")),
            ("Hence 12 apples.", Some("12")),
            ("So 4 apples and 5 pears.", None),
            ("So they need 12 more cookies.", Some("12")),
            ("I think it's 7.", Some("7")),
            ("3. Add them up.", None),
            // Fractions in words.
            ("She ate two-thirds of the pie.", Some("two-thirds")),
            (
                "So three quarters of the garden is planted.",
                Some("three quarters"),
            ),
            ("Each of them gets one half of the money.", Some("one half")),
            (
                "There are 3 outcomes and one is favourable, so the probability is one third.",
                Some("one third"),
            ),
            ("Each friend gets a third of the pizza.", Some("a third")),
            (
                "Therefore the tank is five eighths full.",
                Some("five eighths"),
            ),
            (
                "Each batch needs one and a half cups of flour.",
                Some("one and a half"),
            ),
            ("So half of the students passed.", Some("half")),
            ("It wins with probability Two-Thirds!", Some("Two-Thirds")),
            ("Tom picks one of the two boxes.", None),
            ("He was the third of five children to arrive.", None),
            ("She walked a quarter mile.", None),
            ("The first half is harder.", None),
            (
                "She gave a quarter of her 20 stickers to Sam, so Sam got 5 stickers.",
                Some("5"),
            ),
            ("So she has 12 marbles. Half of them are red.", Some("12")),
            (
                "So 30 students walk. Three quarters of the class walk.",
                Some("30"),
            ),
            ("Half of the 30 students passed.", None),
            // Counts in words.
            ("So she has twelve apples left.", Some("twelve")),
            ("The answer is forty-two.", Some("forty-two")),
            (
                "There are one hundred and five students.",
                Some("one hundred and five"),
            ),
            ("He needs three more days.", Some("three")),
            ("The total comes to two hundred.", Some("two hundred")),
            (
                "Therefore, the number of students is twelve.",
                Some("twelve"),
            ),
            ("So the number of real roots is exactly one.", Some("one")),
            ("She buys one more ticket.", Some("one")),
            (
                "He read 4 of the 7 chapters, so he needs three more days.",
                Some("three"),
            ),
            ("Two of them are red.", None),
            ("So one of the roots is negative.", None),
            ("The first one that works is the answer we want.", None),
            ("No one else came, so Ann was alone.", None),
            ("This is one way to see it.", None),
            ("He came in twenty-first place.", None),
            (
                "At least one box is empty, so the number of full boxes is $6$.",
                Some("6"),
            ),
            ("The sum is 12 because there are two groups.", Some("12")),
            ("So she has 12 marbles. We used two bags.", Some("12")),
            ("Each of the three friends pays once.", None),
            // Exclusions, every value.
            (
                "It is defined for all real numbers except 2 and 3.",
                Some("\\neq 2, \\neq 3"),
            ),
            (
                "So the domain is all real numbers except $x = 2$ and $x = 3$.",
                Some("x \\neq 2, x \\neq 3"),
            ),
            (
                "Hence all real $x$ except $1$, $-2$, and $5$.",
                Some("x \\neq 1, x \\neq -2, x \\neq 5"),
            ),
            (
                "All real numbers except $x = 2$ and 3.",
                Some("x \\neq 2, x \\neq 3"),
            ),
        ];
        for (t, want) in cases {
            assert_eq!(conclusion(t).as_deref(), want, "{t}");
        }
    }

    #[test]
    fn tails() {
        assert_eq!(
            tail("The largest $n$ is 34.", Mode::AfterColon).as_deref(),
            Some("34")
        );
        assert_eq!(
            tail("Jane started growing Sphere 3 hours ago.", Mode::AfterColon).as_deref(),
            Some("3")
        );
        assert_eq!(
            tail("$5$ since $x$ is 5", Mode::AfterIs).as_deref(),
            Some("5")
        );
        assert_eq!(
            tail("18 dollars. Done", Mode::AfterIs).as_deref(),
            Some("18")
        );
        assert_eq!(tail("five.", Mode::AfterIs), None);
    }
}
