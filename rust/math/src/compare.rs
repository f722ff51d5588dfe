//! Comparison of two normalised answers: string identity, multiple-choice letters, equations
//! with a `var =` prefix, lists / sets / tuples / intervals element by element, percentages,
//! and scalars by exact rational arithmetic or by evaluation at sample points. What it cannot
//! decide soundly it leaves `Undecided` for the symbolic path.

use crate::expr::{self, Parsed};
use num_complex::Complex64 as C64;
use num_rational::BigRational;
use num_traits::{Signed, Zero};

/// The three-way outcome of the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Equal,
    NotEqual,
    Undecided,
}

use Decision::{Equal, NotEqual, Undecided};

/// Relative tolerance when a decimal literal is involved (`1.41421356` for `\sqrt{2}`,
/// `0.333333` for `\frac{1}{3}`); decimals that terminate are compared exactly.
pub const DECIMAL_RTOL: f64 = 1e-6;
/// Agreement required from floating-point evaluation of exact expressions (rounding noise only).
const EXACT_RTOL: f64 = 1e-9;
/// Beyond this relative difference two exact expressions are certainly different.
const DIFFERENT_RTOL: f64 = 1e-5;
/// Largest list / set compared element by element.
const MAX_ITEMS: usize = 64;

use crate::normalize::split_top_level as split_top;

/// How many answers a normalised answer lists at its top level (`-2,3` has 2, `(1,2)` has 1).
pub fn top_level_items(s: &str) -> usize {
    split_top(s, b',').len()
}

/// The shape of an answer.
enum Shape<'a> {
    Scalar(&'a str),
    /// Several answers or a set: order does not matter.
    Unordered(Vec<&'a str>),
    /// A tuple, point, vector or interval: order and the bracket kinds matter.
    Ordered(u8, u8, Vec<&'a str>),
}

fn shape(s: &str) -> Shape<'_> {
    if let Some(inner) = s.strip_prefix("\\{").and_then(|x| x.strip_suffix("\\}")) {
        if balanced(inner) {
            return Shape::Unordered(split_top(inner, b','));
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() >= 2
        && matches!(bytes[0], b'(' | b'[')
        && matches!(bytes[bytes.len() - 1], b')' | b']')
    {
        let inner = &s[1..s.len() - 1];
        let parts = split_top(inner, b',');
        if parts.len() >= 2 && balanced(inner) {
            return Shape::Ordered(bytes[0], bytes[bytes.len() - 1], parts);
        }
    }
    let parts = split_top(s, b',');
    if parts.len() >= 2 {
        return Shape::Unordered(parts);
    }
    Shape::Scalar(s)
}

/// Brackets in `s` are balanced on their own (so `(1,2),(3,4)` is not read as one tuple).
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                match bytes.get(i + 1) {
                    Some(b'{') => depth += 1,
                    Some(b'}') => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
        i += 1;
    }
    depth == 0
}

/// Constructs the fast path leaves to sympy: relations, unions, infinity, matrices, ±, ...
fn needs_symbolic(s: &str) -> bool {
    const MARKERS: [&str; 16] = [
        "\\leq",
        "\\geq",
        "\\neq",
        "<",
        ">",
        "\\cup",
        "\\cap",
        "\\infty",
        "\\begin",
        "\\pm",
        "\\mp",
        "\\in",
        "\\emptyset",
        "\\varnothing",
        "\\setminus",
        "\\mathbb",
    ];
    MARKERS.iter().any(|m| s.contains(m))
}

/// A multiple-choice letter: `B`, `(B)`, `B)`.
fn choice_letter(s: &str) -> Option<u8> {
    // `(B)` followed by the option's value (`(B)12`) names the choice B.
    let b = s.as_bytes();
    if b.len() >= 3 && b[0] == b'(' && b[2] == b')' && (b'A'..=b'E').contains(&b[1]) {
        return Some(b[1]);
    }
    // `B`, `B)` or `(B` alone; not `Bx` (a product), `B_1` or `B+1`.
    let t = s.strip_prefix('(').unwrap_or(s);
    let letter = *t.as_bytes().first()?;
    if !(b'A'..=b'E').contains(&letter) {
        return None;
    }
    // `B)7`: the letter of an option written with its value ("B) 7").
    (matches!(&t[1..], "" | ")") || (t.len() > 2 && t.as_bytes()[1] == b')')).then_some(letter)
}

/// `(A)24` or `A)24`: an option's letter followed by its value, as (letter, value).
fn choice_with_value(s: &str) -> Option<(u8, &str)> {
    let t = s.strip_prefix('(').unwrap_or(s);
    let b = t.as_bytes();
    (b.len() > 2 && (b'A'..=b'E').contains(&b[0]) && b[1] == b')').then(|| (b[0], &t[2..]))
}

/// `4.5m`, `12s`: a number with a one-letter unit glued to it, as the number. Only a
/// response is read so, and only against a gold that is a plain number, where the letter
/// cannot be a variable; a gold `2m` is an expression in `m`.
fn number_with_unit_letter(s: &str) -> Option<&str> {
    let last = *s.as_bytes().last()?;
    if !matches!(last, b'm' | b'g' | b's' | b'h' | b'L' | b'l') {
        return None;
    }
    let num = &s[..s.len() - 1];
    let body = num.strip_prefix('-').unwrap_or(num);
    (!body.is_empty()
        && body.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && body.bytes().any(|c| c.is_ascii_digit()))
    .then_some(num)
}

/// A number without variables (`12`, `\frac{9}{2}`, `4.5`).
fn is_constant(s: &str) -> bool {
    expr::parse(strip_percent(s).0).is_some_and(|p| p.vars.is_empty())
}

/// A word answer such as `Monday` or `even` (compared case-insensitively as text).
fn is_word(s: &str) -> bool {
    s.len() >= 3 && s.bytes().all(|c| c.is_ascii_alphabetic())
}

/// Compare two normalised answers.
pub fn compare(gold: &str, resp: &str) -> Decision {
    compare_depth(gold, resp, 0)
}

fn compare_depth(gold: &str, resp: &str, depth: usize) -> Decision {
    if gold == resp {
        return Equal;
    }
    let (g, r) = (
        strip_approx(real_line(strip_membership(gold))),
        strip_approx(real_line(strip_membership(resp))),
    );
    compare_inner(&g, &r, depth)
}

fn compare_inner(gold: &str, resp: &str, depth: usize) -> Decision {
    if gold == resp {
        return Equal;
    }
    if gold.is_empty() || resp.is_empty() || depth > 4 {
        return if gold.is_empty() || resp.is_empty() {
            NotEqual
        } else {
            Undecided
        };
    }
    if let Some(g) = choice_letter(gold) {
        if gold.len() <= 3 {
            return match choice_letter(resp) {
                Some(r) if r == g => Equal,
                _ => NotEqual,
            };
        }
        // `(C)15`: the letter, or the option's value, answers it.
        if gold.as_bytes()[0] == b'(' && gold.as_bytes()[2] == b')' {
            return match choice_letter(resp) {
                Some(r) => {
                    if r == g {
                        Equal
                    } else {
                        NotEqual
                    }
                }
                None => compare_depth(&gold[3..], resp, depth + 1),
            };
        }
    }
    // The option's value answers a gold value: `(A)24` for `24` (a letter against the gold's
    // letter was decided above).
    if choice_letter(gold).is_none() {
        if let Some((_, value)) = choice_with_value(resp) {
            return compare_depth(gold, value, depth + 1);
        }
    }
    if let Some(num) = number_with_unit_letter(resp).filter(|_| is_constant(gold)) {
        return compare_depth(gold, num, depth + 1);
    }
    // Words compare case-insensitively (`\text{No}` = `no`).
    if gold.len() >= 2
        && gold.eq_ignore_ascii_case(resp)
        && gold.bytes().all(|c| c.is_ascii_alphabetic())
    {
        return Equal;
    }
    if is_word(gold) || is_word(resp) {
        if gold.eq_ignore_ascii_case(resp) {
            return Equal;
        }
        if is_word(gold) && is_word(resp) {
            return NotEqual;
        }
        // A word against math (`\text{undefined}` for 72) is simply wrong; short words may be
        // products of variables (`ab`), so only longer ones count.
        let (word, other) = if is_word(gold) {
            (gold, resp)
        } else {
            (resp, gold)
        };
        if word.len() >= 4 && other.bytes().any(|c| !c.is_ascii_alphabetic()) {
            return NotEqual;
        }
        if expr::parse(other).is_some_and(|p| p.vars.is_empty()) {
            return NotEqual;
        }
    }
    // `x = \frac{3 \pm \sqrt{5}}{2}` is two answers, also as an item of a list.
    let (g_pm, r_pm) = (plus_minus_listed(gold), plus_minus_listed(resp));
    if g_pm.is_some() || r_pm.is_some() {
        let g = g_pm.as_deref().unwrap_or(gold);
        let r = r_pm.as_deref().unwrap_or(resp);
        return compare_depth(g, r, depth + 1);
    }
    match (matrix_value(gold), matrix_value(resp)) {
        (Some(g), Some(r)) => return compare_matrices(&g, &r, depth),
        (Some(m), None) => return compare_vector(&m, resp, depth),
        (None, Some(m)) => return compare_vector(&m, gold, depth),
        (None, None) => {}
    }
    // "all real numbers except 2 and 3" (`\neq 2, \neq 3`) against `x \neq 2, x \neq 3`,
    // `(-\infty,2)\cup(2,3)\cup(3,\infty)` or `\mathbb{R}\setminus\{2,3\}`: the same
    // points taken out of the real line.
    if let (Some((gl, g)), Some((rl, r))) = (excluded_points(gold), excluded_points(resp)) {
        if gl == rl || gl.is_empty() || rl.is_empty() {
            let g: Vec<&str> = g.iter().map(String::as_str).collect();
            let r: Vec<&str> = r.iter().map(String::as_str).collect();
            return match_unordered(&g, &r, depth);
        }
    }
    if is_intervalish(gold) || is_intervalish(resp) {
        match (intervals(gold), intervals(resp)) {
            (Some(g), Some(r)) => return compare_intervals(&g, &r, depth),
            // An interval against a number or an expression is wrong.
            (Some(_), None) if expr::parse(resp).is_some() => return NotEqual,
            (None, Some(_)) if expr::parse(gold).is_some() => return NotEqual,
            _ => {}
        }
    }
    match (infinity(gold), infinity(resp)) {
        (Some(a), Some(b)) => return if a == b { Equal } else { NotEqual },
        (Some(_), None) if expr::parse(resp).is_some() => return NotEqual,
        (None, Some(_)) if expr::parse(gold).is_some() => return NotEqual,
        _ => {}
    }
    let g_listed = split_top(gold, b',').len() > 1;
    let r_listed = split_top(resp, b',').len() > 1;
    if g_listed != r_listed {
        let single = if g_listed { resp } else { gold };
        if expr::parse(strip_percent(single).0).is_some() {
            if let Some(dec) = decimal_comma(if g_listed { gold } else { resp }) {
                return if g_listed {
                    compare_depth(&dec, resp, depth + 1)
                } else {
                    compare_depth(gold, &dec, depth + 1)
                };
            }
        }
    }
    // `(x, y) = (1, 2)` against `y = 2, x = 1`: the values matched by name.
    if g_listed != r_listed {
        let (tuple, list) = if g_listed { (resp, gold) } else { (gold, resp) };
        if let Some(d) = labelled_tuple_by_name(tuple, list, depth) {
            return d;
        }
    }
    // `(p,q)=(3,2)` against `p=3, q=2`: the labelled value against the list.
    if g_listed != r_listed {
        let (g, r) = if g_listed {
            (gold, unlabelled(resp))
        } else {
            (unlabelled(gold), resp)
        };
        if (g, r) != (gold, resp) {
            return compare_depth(g, r, depth + 1);
        }
    }
    // `x \neq 3` against `x \neq 4`: the same name excluded from values.
    if let (Some(g), Some(r)) = (find_top(gold, "\\neq"), find_top(resp, "\\neq")) {
        let (gl, rl) = (gold[..g].trim(), resp[..r].trim());
        // "all real numbers except -4" names no variable: it matches any single name.
        let named_alike = (gl == rl || gl.is_empty() || rl.is_empty())
            && (gl.is_empty() || is_label(gl))
            && (rl.is_empty() || is_label(rl));
        if named_alike {
            let n = "\\neq".len();
            return compare_depth(&gold[g + n..], &resp[r + n..], depth + 1);
        }
    }
    // A relation `x \neq 1` against a value `1`: the value states no exclusion.
    match (find_top(gold, "\\neq"), find_top(resp, "\\neq")) {
        (Some(_), None) if expr::parse(resp).is_some() => return NotEqual,
        (None, Some(_)) if expr::parse(gold).is_some() => return NotEqual,
        _ => {}
    }
    if needs_symbolic(gold) || needs_symbolic(resp) {
        return Undecided;
    }
    let listed = g_listed || r_listed;
    // Equations: `x = 5` against `5` compares the right-hand side; two equations compare
    // side by side (anything subtler, such as scaled equations, is left to sympy). Lists
    // (`x=-2, x=3`) are compared element by element below.
    let g_eq = split_top(gold, b'=');
    let r_eq = split_top(resp, b'=');
    let eq_shape = if listed {
        (1, 1)
    } else {
        (g_eq.len(), r_eq.len())
    };
    // Two assignment chains to the same label (`x = 11` and `x = 5+5+1 = 11`): the values.
    if !listed && g_eq.len() >= 2 && r_eq.len() >= 2 && (g_eq.len(), r_eq.len()) != (2, 2) {
        if is_label(g_eq[0]) && g_eq[0].trim() == r_eq[0].trim() {
            return compare_depth(unlabelled(gold), unlabelled(resp), depth + 1);
        }
        return Undecided;
    }
    match eq_shape {
        (1, 1) => {}
        (1, n) if n >= 2 => return compare_chain(gold, &r_eq, depth),
        (n, 1) if n >= 2 => return compare_chain(resp, &g_eq, depth),
        (2, 2) => {
            let same = both(
                compare_depth(g_eq[0], r_eq[0], depth + 1),
                compare_depth(g_eq[1], r_eq[1], depth + 1),
            );
            if same == Equal {
                return Equal;
            }
            let swapped = both(
                compare_depth(g_eq[0], r_eq[1], depth + 1),
                compare_depth(g_eq[1], r_eq[0], depth + 1),
            );
            if swapped == Equal {
                return Equal;
            }
            // `y = 2x + 3` vs `y = 2x + 4`: same lone variable on the left, different right.
            // Labels are matched by name: `a_5 = 9` against `a_5 = 39` is wrong, whatever the
            // other items of a list say (`a_5 = 9, a_{20} = 39` vs `a_{20} = 9, a_5 = 39`).
            if g_eq[0].trim() == r_eq[0].trim()
                && (g_eq[0].len() == 1 || is_label(g_eq[0]))
                && same == NotEqual
            {
                return NotEqual;
            }
            // `a = 2` vs `b = 2`: values assigned to different variables are different answers.
            if is_variable(g_eq[0].trim())
                && is_variable(r_eq[0].trim())
                && g_eq[0].trim() != r_eq[0].trim()
            {
                return NotEqual;
            }
            return Undecided;
        }
        _ => return Undecided,
    }
    match (shape(gold), shape(resp)) {
        (Shape::Scalar(g), Shape::Scalar(r)) => compare_scalar(g, r),
        // A single gold answer against several candidates is wrong: only one final answer
        // counts (`\boxed{1, 2, 3, 4}` for gold `4`). And vice versa: an incomplete answer.
        (Shape::Scalar(_), Shape::Unordered(r)) if r.len() >= 2 => NotEqual,
        (Shape::Unordered(g), Shape::Scalar(_)) if g.len() >= 2 => NotEqual,
        // A tuple or interval is not a number, and a number is not a tuple.
        (Shape::Ordered(..), Shape::Scalar(r)) if expr::parse(r).is_some() => NotEqual,
        (Shape::Scalar(g), Shape::Ordered(..)) if expr::parse(g).is_some() => NotEqual,
        (Shape::Unordered(g), Shape::Unordered(r)) => match_unordered(&g, &r, depth),
        // `x=1, y=2` against the point `(1, 2)`, either way round.
        (Shape::Unordered(a), Shape::Ordered(b'(', b')', t))
        | (Shape::Ordered(b'(', b')', t), Shape::Unordered(a))
            if a.len() == t.len() && assignments(&a).is_some() =>
        {
            let values = assignments(&a).unwrap_or_default();
            let mut acc = Equal;
            for (v, x) in values.iter().zip(&t) {
                acc = both(acc, compare_depth(v, x, depth + 1));
            }
            acc
        }
        // A bare list of answers written in parentheses, `(-2, 3)` for `-2, 3`: still a list.
        (Shape::Unordered(g), Shape::Ordered(b'(', b')', r)) if !gold.starts_with("\\{") => {
            match_unordered(&g, &r, depth)
        }
        // A point listed without its parentheses, `1, 2` for `(1, 2)`: same order required.
        (Shape::Ordered(b'(', b')', g), Shape::Unordered(r)) if !resp.starts_with("\\{") => {
            if g.len() != r.len() {
                return NotEqual;
            }
            let mut acc = Equal;
            for (a, c) in g.iter().zip(&r) {
                acc = both(acc, compare_depth(a, c, depth + 1));
            }
            acc
        }
        (Shape::Ordered(go, gc, g), Shape::Ordered(ro, rc, r)) => {
            if g.len() != r.len() || g.len() > MAX_ITEMS {
                return NotEqual;
            }
            let mut acc = Equal;
            for (a, c) in g.iter().zip(&r) {
                acc = both(acc, compare_depth(a, c, depth + 1));
                if acc == NotEqual {
                    return NotEqual;
                }
            }
            // Same elements, different brackets: `[1, 2)` is not `(1, 2)`.
            if acc == Equal && (go != ro || gc != rc) {
                return NotEqual;
            }
            acc
        }
        _ => Undecided,
    }
}

/// Matrix environments that denote the matrix itself (`vmatrix` is a determinant: not here).
const MATRIX_ENVS: [&str; 4] = ["pmatrix", "bmatrix", "Bmatrix", "matrix"];

/// A matrix answer as rows of cells: written out, or a combination of matrices written out
/// (see [`matrix_combination`]).
fn matrix_value(s: &str) -> Option<Vec<Vec<String>>> {
    if let Some(m) = matrix(s) {
        return Some(
            m.into_iter()
                .map(|row| row.into_iter().map(str::to_string).collect())
                .collect(),
        );
    }
    matrix_combination(s)
}

/// A sum or difference of scalar multiples of matrices written out: `2\begin{pmatrix}1\\2
/// \end{pmatrix}`, `-\begin{pmatrix}..\end{pmatrix}`, `\frac{1}{3}\begin{pmatrix}..
/// \end{pmatrix}`, `\begin{pmatrix}..\end{pmatrix}\cdot 2`, `\begin{pmatrix}..\end{pmatrix}
/// + \begin{pmatrix}..\end{pmatrix}`. The result's cells are the same combination of the
/// operands' cells (`2\cdot(1)`), left to the scalar comparison. A scalar multiplies on either
/// side (with `\cdot` or `\times` on the right); a product of two matrices is not read (None).
fn matrix_combination(s: &str) -> Option<Vec<Vec<String>>> {
    if !s.contains("\\begin{") {
        return None;
    }
    // The top-level matrices, and the text between them.
    let b = s.as_bytes();
    let mut mats: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if depth == 0 && s[i..].starts_with("\\begin{") => {
                let name_end = i + 7 + s[i + 7..].find('}')?;
                let end_tag = format!("\\end{{{}}}", &s[i + 7..name_end]);
                let end = name_end + s[name_end..].find(end_tag.as_str())? + end_tag.len();
                mats.push((i, end));
                i = end;
                continue;
            }
            b'\\' => i += 1,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    if mats.is_empty() || (mats.len() == 1 && mats[0] == (0, s.len())) {
        return None;
    }
    // Each matrix's sign and scalar: `[+|-][coef][\cdot]` before it, `[\cdot coef]` after it.
    let mut terms: Vec<(bool, String, Vec<Vec<&str>>)> = Vec::new();
    let mut before = &s[..mats[0].0];
    for (k, &(a, e)) in mats.iter().enumerate() {
        let next_start = mats.get(k + 1).map_or(s.len(), |m| m.0);
        let gap = &s[e..next_start];
        // What follows the matrix up to the operator that starts the next term.
        let (after, rest) = if k + 1 < mats.len() {
            let op = top_level_sign(gap)?;
            (&gap[..op], &gap[op..])
        } else {
            (gap, "")
        };
        let (negative, lead) = match before.trim_start().as_bytes().first() {
            Some(b'-') => (true, before.trim_start()[1..].trim()),
            Some(b'+') => (false, before.trim_start()[1..].trim()),
            _ => (false, before.trim()),
        };
        let lead = strip_times(lead, false);
        let trail = after.trim();
        let trail = if trail.is_empty() {
            ""
        } else {
            strip_times(trail, true)
        };
        if (!after.trim().is_empty() && trail.len() == after.trim().len())
            || [lead, trail]
                .iter()
                .any(|c| !c.is_empty() && expr::parse(c).is_none())
        {
            return None;
        }
        let coef = match (lead.is_empty(), trail.is_empty()) {
            (true, true) => String::new(),
            (false, true) => lead.to_string(),
            (true, false) => trail.to_string(),
            (false, false) => format!("({lead})\\cdot({trail})"),
        };
        terms.push((negative, coef, matrix(&s[a..e])?));
        before = rest;
    }
    let shape: Vec<usize> = terms[0].2.iter().map(Vec::len).collect();
    if terms
        .iter()
        .any(|t| t.2.iter().map(Vec::len).collect::<Vec<_>>() != shape)
    {
        return None;
    }
    let cell = |r: usize, c: usize| {
        let mut out = String::new();
        for (k, (negative, coef, m)) in terms.iter().enumerate() {
            if *negative {
                out.push('-');
            } else if k > 0 {
                out.push('+');
            }
            if !coef.is_empty() {
                out.push('(');
                out.push_str(coef);
                out.push_str(")\\cdot");
            }
            out.push('(');
            out.push_str(m[r][c]);
            out.push(')');
        }
        out
    };
    Some(
        shape
            .iter()
            .enumerate()
            .map(|(r, &cols)| (0..cols).map(|c| cell(r, c)).collect())
            .collect(),
    )
}

/// Position of the first `+` or `-` at the top level of `s` (outside brackets).
fn top_level_sign(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'+' | b'-' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A scalar factor without its multiplication sign: `2\cdot` -> `2` (`leading` false), `\cdot
/// 2` -> `2` (`leading` true, where the sign is required and returned unchanged when missing).
fn strip_times(s: &str, leading: bool) -> &str {
    for op in ["\\cdot", "\\times", "*"] {
        let t = if leading {
            s.strip_prefix(op)
        } else {
            s.strip_suffix(op)
        };
        if let Some(t) = t {
            return t.trim();
        }
    }
    s
}

/// The points an answer takes out of the real line, with the variable it names (empty when
/// none): `x \neq 2, x \neq 3` (or `\neq 2, \neq 3`, from "all real numbers except 2 and 3"),
/// `(-\infty,2)\cup(2,3)\cup(3,\infty)` and `\mathbb{R}\setminus\{2,3\}` are the points 2
/// and 3; `x \neq \pm 1` is 1 and -1.
fn excluded_points(s: &str) -> Option<(String, Vec<String>)> {
    let mut points = Vec::new();
    if let Some(rest) = [
        "\\mathbb{R}\\setminus",
        "\\mathbb{R}\\backslash",
        "\\mathbb{R}-",
    ]
    .iter()
    .find_map(|p| s.strip_prefix(p))
    {
        let inner = rest.strip_prefix("\\{")?.strip_suffix("\\}")?;
        for v in split_top(inner, b',') {
            plus_minus(v.trim(), &mut points);
        }
        return (!points.is_empty()).then(|| (String::new(), points));
    }
    let items = split_top(s, b',');
    if find_top(items[0], "\\neq").is_some() {
        let mut label: Option<&str> = None;
        for it in items {
            let p = find_top(it, "\\neq")?;
            let (l, v) = (it[..p].trim(), it[p + 4..].trim());
            if v.is_empty() || v.contains("\\neq") || (!l.is_empty() && !is_label(l)) {
                return None;
            }
            match label {
                Some(x) if x != l => return None,
                _ => label = Some(l),
            }
            plus_minus(v, &mut points);
        }
        return Some((label.unwrap_or("").to_string(), points));
    }
    find_top(s, "\\cup")?;
    // Open intervals that tile the line: each ends where the next begins.
    let ivs = intervals(s)?;
    let open = ivs.iter().all(|v| !v.lo_closed && !v.hi_closed);
    let (Some(first), Some(last)) = (ivs.first(), ivs.last()) else {
        return None;
    };
    if ivs.len() < 2
        || !open
        || !matches!(first.lo, End::Inf(false))
        || !matches!(last.hi, End::Inf(true))
    {
        return None;
    }
    for w in ivs.windows(2) {
        match (w[0].hi, w[1].lo) {
            (End::At(x), End::At(y)) if x == y || compare_depth(x, y, 4) == Equal => {
                points.push(x.to_string());
            }
            _ => return None,
        }
    }
    Some((String::new(), points))
}

/// Positions of the `\pm` commands in `s` (not `\pmod`).
fn plus_minus_at(s: &str) -> Vec<usize> {
    s.match_indices("\\pm")
        .map(|(i, _)| i)
        .filter(|&i| !s[i + 3..].starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect()
}

/// An answer with `\pm` in its items, each such item written as its two answers: `x = 1, x =
/// \frac{3 \pm \sqrt{5}}{2}` is `x = 1, x = \frac{3+\sqrt{5}}{2}, x = \frac{3-\sqrt{5}}{2}`,
/// `\pm 2` is `+2,-2`. None when there is no `\pm`, an item has several, or `\mp` is used too.
fn plus_minus_listed(s: &str) -> Option<String> {
    if plus_minus_at(s).is_empty() || s.contains("\\mp") {
        return None;
    }
    let mut out = Vec::new();
    for item in split_top(s, b',') {
        match plus_minus_at(item).as_slice() {
            [] => out.push(item.to_string()),
            [p] => {
                out.push(format!("{}+{}", &item[..*p], &item[p + 3..]));
                out.push(format!("{}-{}", &item[..*p], &item[p + 3..]));
            }
            _ => return None,
        }
    }
    Some(out.join(","))
}

/// `\pm 1` is 1 and -1, `2 \pm \sqrt{3}` is `2+\sqrt{3}` and `2-\sqrt{3}`; other values are
/// themselves.
fn plus_minus(v: &str, out: &mut Vec<String>) {
    match find_top(v, "\\pm") {
        Some(p) => {
            let (a, b) = (v[..p].trim(), v[p + 3..].trim());
            out.push(format!("{a}+({b})"));
            out.push(format!("{a}-({b})"));
        }
        None => out.push(v.to_string()),
    }
}

/// `\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}` as rows of cells.
fn matrix(s: &str) -> Option<Vec<Vec<&str>>> {
    // `\left[\begin{array}{cc} ... \end{array}\right]`: brackets around an array.
    if let Some(inner) = s
        .strip_prefix(['(', '['])
        .and_then(|t| t.strip_suffix([')', ']']))
        .filter(|t| t.starts_with("\\begin{array}"))
    {
        return matrix(inner);
    }
    if let Some(rest) = s.strip_prefix("\\begin{array}{") {
        let close = rest.find('}')?;
        let body = rest[close + 1..].strip_suffix("\\end{array}")?;
        return cells(body);
    }
    let env = MATRIX_ENVS.iter().find(|e| {
        s.strip_prefix("\\begin{")
            .and_then(|r| r.strip_prefix(**e))
            .is_some_and(|r| r.starts_with('}'))
    })?;
    let open = format!("\\begin{{{env}}}");
    let close = format!("\\end{{{env}}}");
    let body = s
        .strip_prefix(open.as_str())?
        .strip_suffix(close.as_str())?;
    cells(body)
}

/// Rows (`\\\\`) of cells (`&`) of a matrix body.
fn cells(body: &str) -> Option<Vec<Vec<&str>>> {
    if body.contains("\\begin") {
        return None;
    }
    let mut rows: Vec<Vec<&str>> = body
        .split("\\\\")
        .map(|row| row.split('&').map(str::trim).collect())
        .collect();
    if rows.len() > 1 && rows.last().is_some_and(|r| r.len() == 1 && r[0].is_empty()) {
        rows.pop();
    }
    (!rows.is_empty() && rows.iter().all(|r| r.iter().all(|c| !c.is_empty()))).then_some(rows)
}

/// A column or row vector against a tuple written with parentheses (`(2, 3)`).
fn compare_vector<S: AsRef<str>>(m: &[Vec<S>], other: &str, depth: usize) -> Decision {
    let cells: Vec<&str> = if m.len() == 1 {
        m[0].iter().map(AsRef::as_ref).collect()
    } else if m.iter().all(|r| r.len() == 1) {
        m.iter().map(|r| r[0].as_ref()).collect()
    } else {
        return Undecided;
    };
    match shape(other) {
        Shape::Ordered(b'(', b')', items) if items.len() == cells.len() => {
            let mut acc = Equal;
            for (a, b) in cells.iter().zip(&items) {
                acc = both(acc, compare_depth(a, b, depth + 1));
            }
            acc
        }
        Shape::Ordered(..) | Shape::Scalar(_) => NotEqual,
        Shape::Unordered(_) => Undecided,
    }
}

/// `x=1, y=2`: every item assigns a value to a distinct variable; the values in order.
fn assignments(items: &[&str]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut values = Vec::new();
    for it in items {
        let parts = split_top(it, b'=');
        if parts.len() != 2 || !is_label(parts[0]) || names.contains(&parts[0].trim()) {
            return None;
        }
        names.push(parts[0].trim());
        values.push(parts[1].to_string());
    }
    Some(values)
}

fn compare_matrices<S: AsRef<str>>(g: &[Vec<S>], r: &[Vec<S>], depth: usize) -> Decision {
    if g.len() != r.len() || g.iter().zip(r).any(|(a, b)| a.len() != b.len()) {
        return NotEqual;
    }
    let mut acc = Equal;
    for (a, b) in g.iter().flatten().zip(r.iter().flatten()) {
        acc = both(acc, compare_depth(a.as_ref(), b.as_ref(), depth + 1));
        if acc == NotEqual {
            break;
        }
    }
    acc
}

/// `\infty` / `-\infty` as a whole answer: Some(true) for +, Some(false) for -.
fn infinity(s: &str) -> Option<bool> {
    match s {
        "\\infty" | "+\\infty" | "\\infty " => Some(true),
        "-\\infty" => Some(false),
        _ => None,
    }
}

fn is_intervalish(s: &str) -> bool {
    ["\\infty", "\\cup", "<", ">", "\\leq", "\\geq"]
        .iter()
        .any(|m| s.contains(m))
}

#[derive(Clone, Copy, Debug)]
enum End<'a> {
    Inf(bool),
    At(&'a str),
}

#[derive(Clone, Copy, Debug)]
struct Interval<'a> {
    lo: End<'a>,
    lo_closed: bool,
    hi: End<'a>,
    hi_closed: bool,
}

fn end(s: &str) -> End<'_> {
    match infinity(s) {
        Some(sign) => End::Inf(sign),
        None => End::At(s),
    }
}

/// `[a, b)`, `(-\infty, 2]`: a bracket pair with two ends.
fn bracket_interval(s: &str) -> Option<Interval<'_>> {
    let b = s.as_bytes();
    if b.len() < 5 || !matches!(b[0], b'(' | b'[') || !matches!(b[b.len() - 1], b')' | b']') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    let parts = split_top(inner, b',');
    if parts.len() != 2 || !balanced(inner) {
        return None;
    }
    Some(Interval {
        lo: end(parts[0]),
        lo_closed: b[0] == b'[',
        hi: end(parts[1]),
        hi_closed: b[b.len() - 1] == b']',
    })
}

fn is_variable(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b[0].is_ascii_alphabetic() && (b.len() == 1 || (b.len() >= 3 && b[1] == b'_'))
}

/// What an inequality bounds: a variable, or a function of variables (`0 < f(x) < 1`).
fn is_unknown(s: &str) -> bool {
    if is_variable(s) {
        return true;
    }
    let b = s.as_bytes();
    b.len() >= 4
        && b[0].is_ascii_alphabetic()
        && b[1] == b'('
        && b[b.len() - 1] == b')'
        && s[2..s.len() - 1]
            .bytes()
            .all(|c| c.is_ascii_alphabetic() || c == b',')
}

/// Relations at the top level of `s`, as (position, operator, length); `<`, `>`, `\leq`, `\geq`.
fn relations(s: &str) -> Vec<(usize, u8, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'<' | b'>' if depth == 0 => {
                let eq = b.get(i + 1) == Some(&b'=');
                let op = match (b[i], eq) {
                    (b'<', false) => b'<',
                    (b'<', true) => b'l',
                    (_, false) => b'>',
                    (_, true) => b'g',
                };
                out.push((i, op, if eq { 2 } else { 1 }));
                i += if eq { 2 } else { 1 };
                continue;
            }
            b'\\' if depth == 0 && (s[i..].starts_with("\\leq") || s[i..].starts_with("\\geq")) => {
                out.push((i, if b[i + 1] == b'l' { b'l' } else { b'g' }, 4));
                i += 4;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// `x \leq 2`, `2 < x`, `-3 \leq x < 3` as an interval of the real line.
fn inequality_interval(s: &str) -> Option<Interval<'_>> {
    let rels = relations(s);
    let mut parts = Vec::new();
    let mut start = 0;
    for &(pos, _, len) in &rels {
        parts.push(s[start..pos].trim());
        start = pos + len;
    }
    parts.push(s[start..].trim());
    let upper = |op: u8| matches!(op, b'<' | b'l');
    let closed = |op: u8| matches!(op, b'l' | b'g');
    match (rels.len(), parts.as_slice()) {
        (1, [l, r]) => {
            let op = rels[0].1;
            if is_unknown(l) {
                Some(if upper(op) {
                    Interval {
                        lo: End::Inf(false),
                        lo_closed: false,
                        hi: End::At(r),
                        hi_closed: closed(op),
                    }
                } else {
                    Interval {
                        lo: End::At(r),
                        lo_closed: closed(op),
                        hi: End::Inf(true),
                        hi_closed: false,
                    }
                })
            } else if is_unknown(r) {
                Some(if upper(op) {
                    Interval {
                        lo: End::At(l),
                        lo_closed: closed(op),
                        hi: End::Inf(true),
                        hi_closed: false,
                    }
                } else {
                    Interval {
                        lo: End::Inf(false),
                        lo_closed: false,
                        hi: End::At(l),
                        hi_closed: closed(op),
                    }
                })
            } else {
                None
            }
        }
        (2, [a, x, c]) if is_unknown(x) => {
            let (o1, o2) = (rels[0].1, rels[1].1);
            if upper(o1) && upper(o2) {
                Some(Interval {
                    lo: End::At(a),
                    lo_closed: closed(o1),
                    hi: End::At(c),
                    hi_closed: closed(o2),
                })
            } else if !upper(o1) && !upper(o2) {
                Some(Interval {
                    lo: End::At(c),
                    lo_closed: closed(o2),
                    hi: End::At(a),
                    hi_closed: closed(o1),
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A union of intervals (`(-\infty, 1) \cup (2, \infty)`), or None when `s` is not one.
fn intervals(s: &str) -> Option<Vec<Interval<'_>>> {
    // `x < -2, x > 3` (from "x < -2 or x > 3"): a union when every part is an inequality.
    let commas = split_top(s, b',');
    if commas.len() > 1 {
        return commas.into_iter().map(inequality_interval).collect();
    }
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let (part, next) = match find_top(rest, "\\cup") {
            Some(i) => (&rest[..i], Some(&rest[i + 4..])),
            None => (rest, None),
        };
        out.push(bracket_interval(part).or_else(|| inequality_interval(part))?);
        match next {
            Some(n) => rest = n,
            None => return Some(out),
        }
    }
}

/// First top-level occurrence of `pat` in `s`.
fn find_top(s: &str, pat: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    for i in 0..b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ if depth == 0 && b[i..].starts_with(pat.as_bytes()) => return Some(i),
            _ => {}
        }
    }
    None
}

fn compare_ends(a: End, b: End, depth: usize) -> Decision {
    match (a, b) {
        (End::Inf(x), End::Inf(y)) => {
            if x == y {
                Equal
            } else {
                NotEqual
            }
        }
        (End::At(x), End::At(y)) => compare_depth(x, y, depth + 1),
        _ => NotEqual,
    }
}

fn compare_interval(a: &Interval, b: &Interval, depth: usize) -> Decision {
    if a.lo_closed != b.lo_closed || a.hi_closed != b.hi_closed {
        return NotEqual;
    }
    both(
        compare_ends(a.lo, b.lo, depth),
        compare_ends(a.hi, b.hi, depth),
    )
}

fn compare_intervals(g: &[Interval], r: &[Interval], depth: usize) -> Decision {
    if g.len() != r.len() || g.len() > MAX_ITEMS {
        return if g.len() != r.len() {
            Undecided
        } else {
            NotEqual
        };
    }
    match_distinct(g, r, |a, c| compare_interval(a, c, depth))
}

/// Commands that name a geometric object or a variable inside a label (`\angle ABC`,
/// `\overline{AB}`, `\theta`).
const LABEL_COMMANDS: [&str; 12] = [
    "angle",
    "measuredangle",
    "triangle",
    "overline",
    "overrightarrow",
    "vec",
    "widehat",
    "hat",
    "bar",
    "arc",
    "overarc",
    "operatorname",
];

/// A label that `=` attaches a value to, rather than a value itself: a variable (`x`,
/// `a_{37}`, `y'`, `\theta`), a product or ratio of names (`AB`, `\frac{NO}{BO}`, `A:B`,
/// `S_{MBCN}:S`), its absolute value (`|AB|`), a function of names or numbers (`f(x)`,
/// `W(n)`, `f(2)`), a tuple of names (`(p,q)`), an angle or a segment (`\angle ABC`,
/// `m\angle A`, `\overline{AB}`). Sums, powers and numbers are values: `x+y=1` is an equation.
fn is_label(s: &str) -> bool {
    label_depth(s.trim(), 0)
}

fn label_depth(s: &str, depth: usize) -> bool {
    let s = s.trim_end_matches('\'');
    if s.is_empty() || depth > 8 {
        return false;
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        let parts = split_top(inner, b',');
        if balanced(inner) && parts.len() >= 2 {
            return parts.iter().all(|p| label_depth(p, depth + 1));
        }
    }
    let ratio = split_top(s, b':');
    if ratio.len() >= 2 {
        return ratio.iter().all(|p| label_depth(p, depth + 1));
    }
    if let Some(inner) = s.strip_prefix('|').and_then(|t| t.strip_suffix('|')) {
        return label_depth(inner, depth + 1);
    }
    if let Some(rest) = s.strip_prefix("\\frac{") {
        if let Some(close) = crate::extract::matching_brace(rest) {
            let (num, after) = (&rest[..close], &rest[close + 1..]);
            if let Some(den) = after.strip_prefix('{').and_then(|d| d.strip_suffix('}')) {
                return label_depth(num, depth + 1) && label_depth(den, depth + 1);
            }
        }
    }
    // A product of name atoms.
    let b = s.as_bytes();
    let mut i = 0;
    let mut atoms = 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\'' {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() {
            i += 1;
        } else if c == b'\\' {
            let n = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let name = &s[i + 1..i + 1 + n];
            if n == 0 || !(expr::GREEK.contains(&name) || LABEL_COMMANDS.contains(&name)) {
                return false;
            }
            i += 1 + n;
            // `\overline{AB}`, `\operatorname{Area}`: the argument is part of the name.
            if b.get(i) == Some(&b'{') {
                match crate::extract::matching_brace(&s[i + 1..]) {
                    Some(close) => i += close + 2,
                    None => return false,
                }
            }
        } else {
            return false;
        }
        atoms += 1;
        // A subscript belongs to the name: `a_1`, `S_{\triangle ABC}`.
        if b.get(i) == Some(&b'_') {
            match b.get(i + 1) {
                Some(b'{') => match crate::extract::matching_brace(&s[i + 2..]) {
                    Some(close) => i += close + 3,
                    None => return false,
                },
                Some(c) if c.is_ascii_alphanumeric() => i += 2,
                _ => return false,
            }
        }
        // A function applied to names or numbers: `f(x)`, `P(A)`, `f(2)`.
        if b.get(i) == Some(&b'(') {
            let Some(close) = s[i..].find(')') else {
                return false;
            };
            let args = &s[i + 1..i + close];
            let simple = |a: &str| {
                !a.is_empty()
                    && a.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
            };
            if !args.split(',').all(simple) {
                return false;
            }
            i += close + 1;
        }
    }
    atoms > 0
}

/// `(x,y)=(1,2)` against assignments to the same names in any order (`y=2,x=1`): each name's
/// value compared with the value the other side gives it. None when the names differ.
fn labelled_tuple_by_name(tuple: &str, list: &str, depth: usize) -> Option<Decision> {
    let sides = split_top(tuple, b'=');
    let [names, values] = sides.as_slice() else {
        return None;
    };
    let names = split_top(names.trim().strip_prefix('(')?.strip_suffix(')')?, b',');
    let values = split_top(values.trim().strip_prefix('(')?.strip_suffix(')')?, b',');
    let items = split_top(list, b',');
    if names.len() < 2 || names.len() != values.len() || items.len() != names.len() {
        return None;
    }
    let assigned: Vec<(&str, &str)> = items
        .iter()
        .map(|it| match split_top(it, b'=').as_slice() {
            [n, v] if is_variable(n.trim()) => Some((n.trim(), *v)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let mut acc = Equal;
    for (n, v) in names.iter().zip(&values) {
        let (_, other) = assigned.iter().find(|(m, _)| *m == n.trim())?;
        acc = both(acc, compare_depth(v, other, depth + 1));
    }
    Some(acc)
}

/// The value a labelled answer gives (`(p,q)=(3,2)` -> `(3,2)`), else the answer itself.
fn unlabelled(s: &str) -> &str {
    let sides = split_top(s, b'=');
    if sides.len() >= 2 && is_label(sides[0]) && !is_label(sides[sides.len() - 1]) {
        sides[sides.len() - 1]
    } else {
        s
    }
}

/// `x = 5`, `2 + 3 = 5`, `f(x) = x^2` against a value. A chain that starts with a label is an
/// assignment whose last side is the value and whose middle is working (`x = 5+5+1 = 11`).
/// In a chain without a label every side claims to be the value, so all must equal it:
/// `4 = 4\sqrt{2}` is wrong for 4, and `1 = 2 = 3 = 4` cannot list candidates.
fn compare_chain(value: &str, sides: &[&str], depth: usize) -> Decision {
    if sides.len() >= 2 && is_label(sides[0]) {
        let last = sides[sides.len() - 1];
        return if is_label(last) {
            Undecided
        } else {
            compare_depth(value, last, depth + 1)
        };
    }
    let mut acc = Equal;
    let mut compared = 0;
    for side in sides {
        if is_label(side) {
            continue;
        }
        compared += 1;
        acc = both(acc, compare_depth(value, side, depth + 1));
        if acc == NotEqual {
            return NotEqual;
        }
    }
    if compared == 0 {
        Undecided
    } else {
        acc
    }
}

/// `x \approx 11` is the value 11; in `x = \frac{1}{3} \approx 0.33` the exact value before
/// the approximation is the answer.
fn strip_approx(s: &str) -> std::borrow::Cow<'_, str> {
    let Some(pos) = find_top(s, "\\approx") else {
        return s.into();
    };
    let head = &s[..pos];
    let sides = split_top(head, b'=');
    if sides.len() >= 2 && sides.iter().any(|p| !p.is_empty() && !is_label(p)) {
        return head.into();
    }
    s.replace("\\approx", "=").into()
}

/// `x \in [-2, 7]`, `x \in \mathbb{R}`: membership states the set.
fn strip_membership(s: &str) -> &str {
    match find_top(s, "\\in") {
        Some(pos)
            if pos > 0
                && !s[pos + 3..].starts_with(|c: char| c.is_ascii_alphabetic())
                && is_label(&s[..pos]) =>
        {
            &s[pos + 3..]
        }
        _ => s,
    }
}

/// `\mathbb{R}` left after `x \in` is the real line.
fn real_line(s: &str) -> &str {
    if s == "\\mathbb{R}" {
        "(-\\infty,\\infty)"
    } else {
        s
    }
}

/// `2,74`, `1000,99`, `0,111`: a decimal comma. Read so only where one number is expected (the
/// other answer is a single value); thousands separators (`1,000`) are already gone after
/// normalisation, so a comma left between two digit runs cannot be one.
fn decimal_comma(s: &str) -> Option<String> {
    let (s, percent) = strip_percent(s);
    let percent = if percent { "%" } else { "" };
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", s),
    };
    let (int, frac) = body.split_once(',')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    (digits(int) && digits(frac)).then(|| format!("{sign}{int}.{frac}{percent}"))
}

fn both(a: Decision, b: Decision) -> Decision {
    match (a, b) {
        (NotEqual, _) | (_, NotEqual) => NotEqual,
        (Equal, Equal) => Equal,
        _ => Undecided,
    }
}

/// Two sets of answers: every gold element must match a response element and every response
/// element a gold one. Same sizes match one to one; a repeated answer counts once (`(3,17),
/// (3,17), (2,5)` lists the set `(3,17), (2,5)`), as in a set of solutions.
fn match_unordered(g: &[&str], r: &[&str], depth: usize) -> Decision {
    if g.len() > MAX_ITEMS || r.len() > MAX_ITEMS {
        return Undecided;
    }
    if g.len() == r.len() {
        return match_distinct(g, r, |a, c| compare_depth(a, c, depth + 1));
    }
    both(
        covers(g, r, |a, c| compare_depth(a, c, depth + 1)),
        covers(r, g, |a, c| compare_depth(c, a, depth + 1)),
    )
}

/// Every element of `a` equals some element of `b`.
fn covers(a: &[&str], b: &[&str], cmp: impl Fn(&str, &str) -> Decision) -> Decision {
    let mut acc = Equal;
    for x in a {
        let mut best = NotEqual;
        for y in b {
            match cmp(x, y) {
                Equal => {
                    best = Equal;
                    break;
                }
                Undecided => best = Undecided,
                NotEqual => {}
            }
        }
        acc = both(acc, best);
        if acc == NotEqual {
            return NotEqual;
        }
    }
    acc
}

/// Greedy matching: every gold item must equal a distinct response item. A missing match is
/// Undecided when any comparison so far was undecided, else NotEqual.
fn match_distinct<T>(g: &[T], r: &[T], cmp: impl Fn(&T, &T) -> Decision) -> Decision {
    let mut used = vec![false; r.len()];
    let mut undecided = false;
    for a in g {
        let mut found = false;
        for (j, c) in r.iter().enumerate() {
            if used[j] {
                continue;
            }
            match cmp(a, c) {
                Equal => {
                    used[j] = true;
                    found = true;
                    break;
                }
                Undecided => undecided = true,
                NotEqual => {}
            }
        }
        if !found {
            return if undecided { Undecided } else { NotEqual };
        }
    }
    Equal
}

fn strip_percent(s: &str) -> (&str, bool) {
    match s.strip_suffix('%') {
        Some(x) => (x, true),
        None => (s, false),
    }
}

/// Two scalars. A percentage on one side only matches either reading (`28%` = `28` = `0.28`).
fn compare_scalar(gold: &str, resp: &str) -> Decision {
    let (g, gp) = strip_percent(gold);
    let (r, rp) = strip_percent(resp);
    let (Some(pg), Some(pr)) = (expr::parse(g), expr::parse(r)) else {
        return Undecided;
    };
    if gp == rp {
        return compare_values(&pg, &pr);
    }
    let hundred = expr::Expr::Num(BigRational::from_integer(100.into()));
    // As a fraction of one, a percentage gives two more decimal places (`33.33\%` is 0.3333).
    let scaled = |p: &Parsed| Parsed {
        expr: expr::Expr::Div(Box::new(p.expr.clone()), Box::new(hundred.clone())),
        decimals: if p.has_decimal { p.decimals + 2 } else { 0 },
        ..p.clone()
    };
    let (plain, other) = if gp { (&pr, &pg) } else { (&pg, &pr) };
    let direct = compare_values(plain, other);
    if direct == Equal {
        return Equal;
    }
    let as_fraction = compare_values(plain, &scaled(other));
    match (direct, as_fraction) {
        (_, Equal) => Equal,
        (NotEqual, NotEqual) => NotEqual,
        _ => Undecided,
    }
}

/// True when the rational's decimal expansion terminates (denominator 2^a 5^b).
fn terminates(x: &BigRational) -> bool {
    let mut d = x.denom().clone();
    for p in [2u8, 5u8] {
        let p = num_bigint::BigInt::from(p);
        while (&d % &p).is_zero() {
            d /= &p;
        }
    }
    d == num_bigint::BigInt::from(1)
}

/// Digits after the point a decimal must give to stand for the non-terminating rational it
/// rounds to (`0.3333` for 1/3, `2.6667` for 8/3); fewer are too coarse (`0.33`, `2.67`).
pub const ROUNDED_RATIONAL_PLACES: usize = 4;
/// ... and the value must keep this many significant digits (`0.0001` says next to nothing
/// about 1/12000).
const ROUNDED_RATIONAL_DIGITS: u32 = 3;

/// A decimal `d` with `places` digits after its point is the rational `v` correctly rounded to
/// those places (within half a unit of the last digit), judged exactly.
fn rounds_to(d: &BigRational, v: &BigRational, places: usize) -> bool {
    if !(ROUNDED_RATIONAL_PLACES..=400).contains(&places) {
        return false;
    }
    let ten = num_bigint::BigInt::from(10u8);
    let scale = BigRational::from_integer(ten.pow(places as u32));
    let half_units = (d - v).abs() * &scale * BigRational::from_integer(2.into());
    let units = v.abs() * &scale;
    half_units <= BigRational::from_integer(1.into())
        && units >= BigRational::from_integer(ten.pow(ROUNDED_RATIONAL_DIGITS - 1))
}

fn rel_diff(a: C64, b: C64) -> f64 {
    let scale = a.norm().max(b.norm());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).norm() / scale
    }
}

/// A decimal against an exact irrational or non-terminating value: equal within the relative
/// tolerance, or when the decimal is the value correctly rounded to its own (at least 6)
/// decimal places (`0.166667` for `\frac{1}{6}`, `0.031416` for `\frac{\pi}{100}`).
fn close_decimal(g: &Parsed, r: &Parsed, a: C64, c: C64) -> bool {
    if rel_diff(a, c) <= DECIMAL_RTOL * (1.0 + 1e-9) {
        return true;
    }
    let (dec, value) = if r.has_decimal && !g.has_decimal {
        (r, c)
    } else if g.has_decimal && !r.has_decimal {
        (g, a)
    } else {
        return false;
    };
    let places = dec.decimals;
    places >= 6
        && value.norm() != 0.0
        && (a - c).norm() <= 0.5 * 10f64.powi(-(places as i32)) * (1.0 + 1e-6)
}

/// Deterministic sample value for a variable at sample point `k`: positive (so `\sqrt{1/n}`
/// and `1/\sqrt{n}` agree, as the reader of such an answer assumes) and not a round number.
fn sample(name: &str, k: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    h = (h ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x100_0000_01b3);
    0.6 + (h >> 11) as f64 / (1u64 << 53) as f64 * 2.3
}

const SAMPLE_POINTS: usize = 5;

/// Compare two parsed scalars by value.
pub fn compare_values(g: &Parsed, r: &Parsed) -> Decision {
    let decimal = g.has_decimal || r.has_decimal;
    if let (Some(a), Some(c)) = (expr::exact(&g.expr), expr::exact(&r.expr)) {
        if a == c {
            return Equal;
        }
        // A decimal against a non-terminating fraction (`0.333333` vs `\frac{1}{3}`) is a
        // rounding of it when close enough; terminating values must match exactly.
        let approx = (g.has_decimal && !terminates(&c)) || (r.has_decimal && !terminates(&a));
        if approx {
            let (dec, dec_val, exact_val) = if g.has_decimal && !terminates(&c) {
                (g, &a, &c)
            } else {
                (r, &c, &a)
            };
            if rounds_to(dec_val, exact_val, dec.decimals) {
                return Equal;
            }
            let (fa, fc) = (
                expr::eval(&g.expr, &|_| f64::NAN),
                expr::eval(&r.expr, &|_| f64::NAN),
            );
            if fa.is_finite() && fc.is_finite() && close_decimal(g, r, fa, fc) {
                return Equal;
            }
        }
        return NotEqual;
    }
    // Different variables are evaluated independently (`2x` vs `2y` differ); a constant
    // against an expression (`1` vs `\sin^2 x + \cos^2 x`) is compared as a function.
    let no_vars = g.vars.is_empty() && r.vars.is_empty();
    let tol = if decimal {
        DECIMAL_RTOL * (1.0 + 1e-9)
    } else {
        EXACT_RTOL
    };
    let mut valid = 0;
    let mut all_close = true;
    for k in 0..SAMPLE_POINTS {
        let val = |name: &str| sample(name, k);
        let (a, c) = (expr::eval(&g.expr, &val), expr::eval(&r.expr, &val));
        if !a.is_finite() || !c.is_finite() {
            continue;
        }
        // Near zero a relative error means nothing (`\sin\pi` is 1.2e-16, not 0): such a
        // point decides nothing.
        if a.norm().max(c.norm()) < 1e-9 {
            continue;
        }
        valid += 1;
        let d = rel_diff(a, c);
        if decimal && no_vars {
            return if close_decimal(g, r, a, c) {
                Equal
            } else {
                NotEqual
            };
        }
        if d > tol {
            all_close = false;
        }
        if d > DIFFERENT_RTOL || (decimal && d > tol) {
            return NotEqual;
        }
        if no_vars {
            break;
        }
    }
    let needed = if no_vars { 1 } else { 3 };
    if valid >= needed && all_close {
        return Equal;
    }
    // No value fits in floating point (`10^{10^{10^{10}}}` against 5): compare sizes in log
    // space instead of evaluating, so the item does not wait for the symbolic deadline.
    if no_vars && valid == 0 {
        match expr::compare_huge(&g.expr, &r.expr) {
            Some(true) => return Equal,
            Some(false) => return NotEqual,
            None => {}
        }
    }
    Undecided
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn cmp(g: &str, r: &str) -> Decision {
        compare(&normalize(g), &normalize(r))
    }

    #[test]
    fn excluded_points_and_matrix_combinations() {
        let union = "(-\\infty,2)\\cup(2,3)\\cup(3,\\infty)";
        let cases = [
            ("x \\neq 2, x \\neq 3", "\\neq 2, \\neq 3", Equal),
            ("x \\neq 2, x \\neq 3", union, Equal),
            (union, "\\neq 3, \\neq 2", Equal),
            (union, "\\mathbb{R} \\setminus \\{2, 3\\}", Equal),
            ("x \\neq 2, x \\neq 3", "x \\neq 2", NotEqual),
            (union, "\\neq 2, \\neq 4", NotEqual),
            ("(-\\infty,-4)\\cup(-4,\\infty)", "\\neq -4", Equal),
            ("(-\\infty,-1)\\cup(-1,1)\\cup(1,\\infty)", "x \\neq \\pm 1", Equal),
            // `\pm` in a list is two of its answers.
            (
                "x = 1, x = \\frac{3 \\pm \\sqrt{5}}{2}",
                "1, \\frac{3+\\sqrt5}{2}, \\frac{3-\\sqrt5}{2}",
                Equal,
            ),
            ("1 \\pm \\sqrt{2}", "1-\\sqrt{2}, 1+\\sqrt{2}", Equal),
            ("\\pm 2", "2, -2", Equal),
            ("\\pm 2", "2", NotEqual),
            ("x = \\pm 3, x = 0", "x = 3, x = -3", NotEqual),
            ("1 \\pm \\sqrt{2}", "1+\\sqrt{3}, 1-\\sqrt{3}", NotEqual),
            // Not the line less points (a closed end, a gap) or another variable: not read as
            // points, left to the symbolic path.
            ("(-\\infty,2]\\cup(2,\\infty)", "\\neq 2", Undecided),
            ("(-\\infty,1)\\cup(2,\\infty)", "\\neq 1, \\neq 2", Undecided),
            ("a \\neq 2", "b \\neq 2", Undecided),
            (
                "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}",
                "2\\begin{pmatrix}1\\\\2\\end{pmatrix}",
                Equal,
            ),
            (
                "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}",
                "2\\begin{pmatrix}1\\\\3\\end{pmatrix}",
                NotEqual,
            ),
            (
                "\\begin{pmatrix} 4 & 6 \\\\ 1 & 5 \\end{pmatrix}",
                "\\begin{pmatrix} 1 & 2 \\\\ 0 & 3 \\end{pmatrix} + \\begin{pmatrix} 3 & 4 \\\\ 1 & 2 \\end{pmatrix}",
                Equal,
            ),
            (
                "\\begin{pmatrix} 1 & 1 \\\\ 1 & 1 \\end{pmatrix}",
                "\\begin{pmatrix} 2 & 0 \\\\ 0 & 2 \\end{pmatrix} - \\begin{pmatrix} 1 & -1 \\\\ -1 & 1 \\end{pmatrix}",
                Equal,
            ),
            (
                "\\begin{pmatrix} -1 \\\\ 3 \\end{pmatrix}",
                "-\\begin{pmatrix} 1 \\\\ -3 \\end{pmatrix}",
                Equal,
            ),
            (
                "\\begin{pmatrix} \\frac{6}{5} \\\\ \\frac{12}{5} \\end{pmatrix}",
                "\\frac{6}{5}\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
                Equal,
            ),
            (
                "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}",
                "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix} \\cdot 2",
                Equal,
            ),
            (
                "\\begin{pmatrix} 2x \\\\ 2y \\end{pmatrix}",
                "2\\begin{pmatrix} x \\\\ y \\end{pmatrix}",
                Equal,
            ),
            ("(2, 4)", "2\\begin{pmatrix}1\\\\2\\end{pmatrix}", Equal),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "2\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                NotEqual,
            ),
        ];
        for (g, r, want) in cases {
            assert_eq!(cmp(g, r), want, "{g} vs {r}");
            assert_eq!(cmp(r, g), want, "{r} vs {g}");
        }
        // Shapes that do not add, and a product of matrices: not read as the matrix.
        let unread = [
            (
                "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}",
                "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix} + \\begin{pmatrix} 1 & 2 \\end{pmatrix}",
            ),
            (
                "\\begin{pmatrix} 3 & 4 \\\\ 6 & 8 \\end{pmatrix}",
                "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}\\begin{pmatrix} 3 & 4 \\end{pmatrix}",
            ),
        ];
        for (g, r) in unread {
            assert_ne!(cmp(g, r), Equal, "{g} vs {r}");
        }
    }

    #[test]
    fn table() {
        let cases = [
            ("72", "72.0", Equal),
            ("12982", "12983", NotEqual),
            ("\\frac{1}{2}", "0.5", Equal),
            ("\\frac12", "\\dfrac{1}{2}", Equal),
            ("\\frac{1}{3}", "0.333333", Equal),
            ("\\frac{1}{3}", "0.33", NotEqual),
            ("2.5", "2.500001", NotEqual),
            ("28", "28\\%", Equal),
            ("0.28", "28\\%", Equal),
            ("28", "29\\%", NotEqual),
            ("1000", "1,000", Equal),
            ("\\sqrt{2}", "1.41421356", Equal),
            ("\\sqrt{2}", "1.414", NotEqual),
            ("\\pi", "3.14", NotEqual),
            ("4", "4\\sqrt{2}", NotEqual),
            ("\\frac{1}{2004!}", "\\frac{1}{2006!}", NotEqual),
            ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", Equal),
            ("x^2-1", "(x-1)(x+1)", Equal),
            ("x^2-1", "(x-1)(x+2)", NotEqual),
            ("\\sqrt{\\frac{1}{n}}", "\\frac{1}{\\sqrt{n}}", Equal),
            ("5", "x = 5", Equal),
            ("y=2x+3", "y=3+2x", Equal),
            ("y=2x+3", "y=2x+4", NotEqual),
            ("4", "4, 5", NotEqual),
            ("4", "4 \\text{ or } 5", NotEqual),
            ("-2, 3", "3, -2", Equal),
            ("\\{1,2\\}", "\\{2,1\\}", Equal),
            ("(1,2)", "(2,1)", NotEqual),
            ("[1,2)", "[1,2]", NotEqual),
            ("(1,2)", "\\left(1, 2\\right)", Equal),
            ("B", "(B)", Equal),
            ("\\text{(B)}", "B", Equal),
            ("C", "(B)", NotEqual),
            ("10", "10 \\text{ cm}", Equal),
            ("\\text{Monday}", "monday", Equal),
            ("3\\frac{1}{2}", "\\frac{7}{2}", Equal),
            ("2\\pi", "2 \\pi", Equal),
            ("x \\le 2", "(-\\infty, 2]", Equal),
            ("x < 2", "(-\\infty, 2]", NotEqual),
            ("-3 \\le x < 3", "[-3, 3)", Equal),
            ("x \\geq 5", "[5, \\infty)", Equal),
            ("5 < x", "(5, \\infty)", Equal),
            (
                "(-\\infty,1)\\cup(2,\\infty)",
                "(2,\\infty)\\cup(-\\infty,1)",
                Equal,
            ),
            (
                "(-\\infty,1)\\cup(2,\\infty)",
                "(-\\infty,1]\\cup(2,\\infty)",
                NotEqual,
            ),
            ("\\infty", "-\\infty", NotEqual),
            (
                "(-\\infty,-2)\\cup(3,\\infty)",
                "x<-2 \\text{ or } x>3",
                Equal,
            ),
            (
                "(-\\infty,-2)\\cup(3,\\infty)",
                "x<-2 \\text{ or } x\\geq 3",
                NotEqual,
            ),
            ("\\frac{1}{3}", "0.\\overline{3}", Equal),
            ("\\infty", "1000000", NotEqual),
            ("3+4i", "4i+3", Equal),
            ("\\textbf{(C) } 15", "C", Equal),
            ("\\textbf{(C) } 15", "15", Equal),
            ("\\textbf{(C) } 15", "(D)", NotEqual),
            ("x = 1, y = 2", "(1, 2)", Equal),
            ("(1, 2)", "x=1, y=2", Equal),
            ("(1, 2)", "x=2, y=1", NotEqual),
            ("\\begin{pmatrix} 2 \\\\ 3 \\end{pmatrix}", "(2, 3)", Equal),
            (
                "\\begin{pmatrix} 2 \\\\ 3 \\end{pmatrix}",
                "(3, 2)",
                NotEqual,
            ),
            ("\\emptyset", "\\{\\}", Equal),
            ("\\infty", "\\text{infinity}", Equal),
            ("5!", "120", Equal),
            ("-2, 3", "(3, -2)", Equal),
            ("-2, 3", "(3, 4)", NotEqual),
            ("(1, 2)", "1, 2", Equal),
            ("(1, 2)", "2, 1", NotEqual),
            ("(1, 2)", "\\{1, 2\\}", Undecided),
            ("\\frac{1}{6}", "0.166667", Equal),
            ("\\frac{1}{6}", "0.166666", NotEqual),
            ("\\frac{1}{6}", "0.167", NotEqual),
            ("\\frac{\\pi}{100}", "0.031416", Equal),
            ("\\frac{\\pi}{100}", "0.031415", NotEqual),
            ("\\frac{1}{2004!}", "0.000000", NotEqual),
            (
                "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
                "\\left[\\begin{array}{cc}1&2\\\\3&4\\end{array}\\right]",
                Equal,
            ),
            (
                "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
                "\\begin{array}{cc}1&2\\\\3&5\\end{array}",
                NotEqual,
            ),
            ("[3,5)", "\\operatorname{lcm}(4,6)+1", NotEqual),
            ("(6,-7)", "\\frac{d}{dx}x^2", NotEqual),
            ("7", "(7, 8)", NotEqual),
            ("\\text{no}", "\\text{No}", Equal),
            ("\\sin 30^\\circ", "\\frac12", Equal),
            ("\\cos 60^{\\circ}", "\\frac{\\sqrt3}{2}", NotEqual),
            ("4", "1=2=3=4", NotEqual),
            ("5", "2+3=5", Equal),
            ("x^2", "f(x)=x^2", Equal),
            ("5", "x=y=5", Equal),
            ("(-\\infty, 8]", "\\sin^2 x", NotEqual),
            ("(-\\infty, 8]", "8", NotEqual),
            ("1", "\\sin^2 x + \\cos^2 x", Equal),
            ("\\frac{\\pi}{4}", "\\tan^{-1} 1", Equal),
            ("x^2-4", "|x-3|", NotEqual),
            ("x^2-4", "\\text{the number of ways}", NotEqual),
            ("72", "\\text{undefined}", NotEqual),
            ("\\text{undefined}", "72", NotEqual),
            ("\\log_{3} 5", "\\frac{\\ln 5}{\\ln 3}", Equal),
            ("\\log_{3} 5", "\\log_{5} 3", NotEqual),
            ("\\log_2 8", "3", Equal),
            ("B+1", "B", NotEqual),
            ("B", "B+1", NotEqual),
            (
                "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
                "\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}",
                Equal,
            ),
            (
                "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
                "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}",
                NotEqual,
            ),
            (
                "\\begin{pmatrix}1&2\\end{pmatrix}",
                "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
                NotEqual,
            ),
            (
                "\\begin{pmatrix}\\frac12\\\\1\\end{pmatrix}",
                "\\begin{pmatrix}0.5\\\\1\\end{pmatrix}",
                Equal,
            ),
            ("3+4i", "3-4i", NotEqual),
            ("\\frac{1+i}{2}", "\\frac12+\\frac{i}{2}", Equal),
            ("2i", "\\sqrt{-4}", Equal),
            ("-2, 3", "x=3, x=-2", Equal),
            ("\\sqrt[3]{-2}", "-\\sqrt[3]{2}", Equal),
            ("10^{10^{10}}", "10^{10^{10}}", Equal),
            ("9^{9^{9}}", "9^{9^{9}} + 1", Undecided),
        ];
        for (g, r, want) in cases {
            assert_eq!(cmp(g, r), want, "{g} vs {r}");
        }
    }
}
