//! Math segments of a text — `$...$`, `$$...$$`, `\(...\)`, `\[...\]`, and matrix environments
//! written without delimiters — found in one left-to-right pass.

/// One segment: `start..end` with its delimiters, `body` its trimmed content. For a bare matrix
/// environment the body is the whole `\begin{..}...\end{..}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub start: usize,
    pub end: usize,
    pub body: (usize, usize),
}

impl Segment {
    pub fn body<'a>(&self, text: &'a str) -> &'a str {
        &text[self.body.0..self.body.1]
    }
}

/// Environments that are an answer on their own when they appear outside math delimiters.
const MATRIX_ENVS: [&str; 8] = [
    "pmatrix",
    "bmatrix",
    "Bmatrix",
    "vmatrix",
    "Vmatrix",
    "smallmatrix",
    "matrix",
    "array",
];

/// Opening delimiters and their closers, longest first so `$$` is not read as an empty `$ $`.
const DELIMS: [(&[u8], &[u8]); 4] = [
    (b"$$", b"$$"),
    (b"\\[", b"\\]"),
    (b"\\(", b"\\)"),
    (b"$", b"$"),
];

/// Position of `close` in `b` at or after `from`, outside escapes (`\$` is a dollar sign,
/// `\\` a line break).
fn find_closer(b: &[u8], from: usize, close: &[u8]) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        if b[i..].starts_with(close) {
            super::work::add(i - from);
            return Some(i);
        }
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    super::work::add(b.len() - from);
    None
}

fn trimmed(text: &str, from: usize, to: usize) -> (usize, usize) {
    let s = &text[from..to];
    let start = from + (s.len() - s.trim_start().len());
    let end = to - (s.len() - s.trim_end().len());
    (start, end.max(start))
}

/// All segments in order. Linear: a search for a closer either succeeds (and the scan resumes
/// after it) or fails once, after which that delimiter is known never to close again.
pub(crate) fn segments(text: &str) -> Vec<Segment> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut unclosed = [false; DELIMS.len()];
    let mut env_unclosed = [false; MATRIX_ENVS.len()];
    let mut i = 0;
    super::work::add(b.len());
    while i < b.len() {
        let c = b[i];
        if c != b'$' && c != b'\\' {
            i += 1;
            continue;
        }
        if c == b'\\' {
            if let Some((k, env)) = MATRIX_ENVS
                .iter()
                .enumerate()
                .find(|(_, e)| starts_env(&b[i..], e))
            {
                if !env_unclosed[k] {
                    let end_tag = format!("\\end{{{env}}}");
                    let from = i + "\\begin{}".len() + env.len();
                    match find_closer(b, from, end_tag.as_bytes()) {
                        Some(e) => {
                            let end = e + end_tag.len();
                            out.push(Segment {
                                start: i,
                                end,
                                body: (i, end),
                            });
                            i = end;
                            continue;
                        }
                        None => env_unclosed[k] = true,
                    }
                }
            }
        }
        let Some((k, (open, close))) = DELIMS
            .iter()
            .enumerate()
            .find(|(_, (o, _))| b[i..].starts_with(o))
        else {
            // Another escape (`\$`, `\\`, `\{`): skip both characters.
            i += 2;
            continue;
        };
        if unclosed[k] {
            i += open.len();
            continue;
        }
        match find_closer(b, i + open.len(), close) {
            Some(e) if *open == b"$" && is_currency(b, i, e) => {
                // `$5 for each and $10` is money, not math: this `$` opens nothing.
                i += 1;
            }
            Some(e) => {
                out.push(Segment {
                    start: i,
                    end: e + close.len(),
                    body: trimmed(text, i + open.len(), e),
                });
                i = e + close.len();
            }
            None => {
                unclosed[k] = true;
                i += open.len();
            }
        }
    }
    out
}

/// A `$` at `open` whose would-be closer is at `close` is a currency sign when a digit follows
/// it and either the "math" between reads as prose (`$5 for each and $`) or the closer is
/// itself followed by a digit (`9 * $2 = $18`).
fn is_currency(b: &[u8], open: usize, close: usize) -> bool {
    if !b.get(open + 1).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    if b.get(close + 1).is_some_and(u8::is_ascii_digit) {
        return true;
    }
    // An English word outside braces.
    super::has_prose_word(&b[open + 1..close], super::Skip::Braced)
}

fn starts_env(b: &[u8], env: &str) -> bool {
    b.starts_with(b"\\begin{")
        && b[7..].starts_with(env.as_bytes())
        && b.get(7 + env.len()) == Some(&b'}')
}

/// The last non-empty segment.
pub(crate) fn last_nonempty<'a>(text: &'a str, segs: &[Segment]) -> Option<&'a str> {
    segs.iter()
        .rev()
        .map(|s| s.body(text))
        .find(|s| !s.is_empty())
}

/// The matrix on the right of a labelled matrix answer: `\mathbf{A}^3 = \begin{pmatrix}...
/// \end{pmatrix}.` is the matrix. A label never equals a matrix, so the last side of the
/// equation is the answer whatever the label is (`\mathbf{M}`, `A^{-1}`, `\vec v`).
pub(crate) fn matrix_after_label(answer: &str) -> Option<&str> {
    let t = answer.trim().trim_end_matches(['.', ',', ' ']);
    super::work::add(t.len());
    let eq = t.rfind('=')?;
    let rhs = t[eq + 1..].trim();
    let segs = segments(rhs);
    match segs.as_slice() {
        [seg] if seg.start == 0 && seg.end == rhs.len() && rhs.starts_with("\\begin") => Some(rhs),
        // `3A = 3\begin{pmatrix}...\end{pmatrix}`, `A + B = \begin{pmatrix}...\end{pmatrix} +
        // \begin{pmatrix}...\end{pmatrix}`: matrices written out after a label without any.
        [_, ..]
            if !t[..eq].contains("\\begin")
                && segs.iter().all(|s| rhs[s.start..].starts_with("\\begin")) =>
        {
            Some(rhs)
        }
        _ => None,
    }
}

/// The first non-empty segment of `text`.
pub(crate) fn first_nonempty(text: &str) -> Option<&str> {
    segments(text)
        .iter()
        .map(|s| s.body(text))
        .find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(t: &str) -> Vec<&str> {
        segments(t).iter().map(|s| s.body(t)).collect()
    }

    #[test]
    fn delimiters_and_environments() {
        assert_eq!(
            bodies("a $x$ b $$y$$ \\(z\\) \\[w\\]"),
            vec!["x", "y", "z", "w"]
        );
        assert_eq!(bodies("costs \\$5 and $x$"), vec!["x"]);
        assert_eq!(
            bodies("so \\begin{pmatrix}1\\\\2\\end{pmatrix}."),
            vec!["\\begin{pmatrix}1\\\\2\\end{pmatrix}"]
        );
        assert_eq!(
            bodies("$A = \\begin{pmatrix}1\\end{pmatrix}$"),
            vec!["A = \\begin{pmatrix}1\\end{pmatrix}"]
        );
        // An unclosed `\(` does not hide the segments after it.
        assert_eq!(bodies("\\( x and $5$"), vec!["5"]);
        assert_eq!(bodies("1 \\\\(2) $3$"), vec!["3"]);
        assert_eq!(
            matrix_after_label("\\mathbf{A}^3 = \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}."),
            Some("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}")
        );
        assert_eq!(matrix_after_label("x = 5"), None);
        assert_eq!(
            matrix_after_label("3A = 3\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
            Some("3\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}")
        );
        assert_eq!(
            matrix_after_label("\\begin{pmatrix} a \\\\ b \\end{pmatrix} = \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix} + c"),
            None
        );
        // Money is not math.
        assert_eq!(
            bodies("He pays $5 for each and $10 in total."),
            Vec::<&str>::new()
        );
        assert_eq!(
            bodies("She makes 9 * $2 = $18 every day."),
            Vec::<&str>::new()
        );
        assert_eq!(bodies("so $5x = 10$ and $x = 2$"), vec!["5x = 10", "x = 2"]);
        assert_eq!(bodies("$10 \\text{ dollars}$"), vec!["10 \\text{ dollars}"]);
    }
}
