//! Normalisation of an extracted answer to a canonical LaTeX-ish string: presentation-only
//! differences (spacing, `\dfrac`, `\left(`, units, `\text{}`, currency, degrees, thousands
//! separators) disappear, so that equal answers usually become equal strings and the rest is
//! easy to parse.

/// Commands that only carry presentation and are dropped.
const DROP: [&str; 17] = [
    "left",
    "right",
    "big",
    "Big",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "bigg",
    "Bigg",
    "biggl",
    "biggr",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
];

/// Commands whose argument is text: unwrapped, or dropped when the text is a unit word.
const TEXTLIKE: [&str; 15] = [
    "boxed",
    "fbox",
    "text",
    "textbf",
    "textit",
    "textrm",
    "textnormal",
    "mbox",
    "mathrm",
    "mathbf",
    "mathit",
    "emph",
    "boldsymbol",
    "mathsf",
    "bf",
];

fn is_connector(w: &str) -> bool {
    matches!(w.to_ascii_lowercase().as_str(), "or" | "and")
}

/// True for text that is only words (a unit, "apples", "square feet") rather than an answer.
fn is_unit_text(t: &str) -> bool {
    let t = t.trim();
    // Compound units too: `m/s`, `km/h`, `m^2`.
    !t.is_empty()
        && t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '/' | '^' | '{' | '}'))
        && t.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 1
        && !t.split_whitespace().any(is_connector)
}

/// Skip a `^2`/`^{2}` exponent after a dropped unit (`\text{cm}^2`); returns bytes consumed.
fn unit_exponent_len(rest: &str) -> usize {
    for pat in ["^{2}", "^{3}", "^2", "^3"] {
        if rest.starts_with(pat) {
            return pat.len();
        }
    }
    0
}

/// Numerator and denominator of a Unicode vulgar fraction character.
fn vulgar_fraction(c: char) -> (u8, u8) {
    match c {
        '½' => (1, 2),
        '⅓' => (1, 3),
        '⅔' => (2, 3),
        '¼' => (1, 4),
        '¾' => (3, 4),
        '⅕' => (1, 5),
        '⅖' => (2, 5),
        '⅗' => (3, 5),
        '⅘' => (4, 5),
        '⅙' => (1, 6),
        '⅚' => (5, 6),
        '⅛' => (1, 8),
        '⅜' => (3, 8),
        '⅝' => (5, 8),
        _ => (7, 8),
    }
}

/// One pass over LaTeX commands: rename synonyms, drop presentation, unwrap text.
fn rewrite_commands(s: &str, out: &mut String, has_digit_outside: bool) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = bytes[i];
        if c != b'\\' {
            // Plain-text relations: `<=`, `>=`, and `!=` after a name (`x != 3`; `5!=120` is
            // a factorial).
            if bytes.get(i + 1) == Some(&b'=') {
                let rel = match c {
                    b'<' => Some("\\leq "),
                    b'>' => Some("\\geq "),
                    b'!' if out.trim_end().ends_with(|p: char| p.is_ascii_alphabetic()) => {
                        Some("\\neq ")
                    }
                    _ => None,
                };
                if let Some(rel) = rel {
                    out.push_str(rel);
                    i += 2;
                    continue;
                }
            }
            let ch = s[i..].chars().next().unwrap_or(' ');
            match ch {
                '°' => {}
                '≤' => out.push_str("\\leq "),
                '≥' => out.push_str("\\geq "),
                '≠' => out.push_str("\\neq "),
                '∞' => out.push_str("\\infty "),
                'π' => out.push_str("\\pi "),
                '−' | '–' => out.push('-'),
                '×' | '✕' => out.push_str("\\times "),
                '·' | '⋅' | '∙' => out.push_str("\\cdot "),
                '÷' => out.push_str("\\div "),
                '∓' => out.push_str("\\mp "),
                '±' => out.push_str("\\pm "),
                '∪' => out.push_str("\\cup "),
                '∩' => out.push_str("\\cap "),
                '∈' => out.push_str("\\in "),
                '∅' => out.push_str("\\emptyset "),
                '≈' => out.push_str("\\approx "),
                '⁴' => out.push_str("^4"),
                '¹' => out.push_str("^1"),
                '⁻' if s[i + ch.len_utf8()..].starts_with('¹') => {
                    // `x⁻¹`: the inverse.
                    out.push_str("^{-1}");
                    i += '¹'.len_utf8();
                }
                // Vulgar fractions: `3½` is the mixed number 3 1/2, which the parser reads.
                '½' | '⅓' | '⅔' | '¼' | '¾' | '⅕' | '⅖' | '⅗' | '⅘' | '⅙' | '⅚' | '⅛' | '⅜'
                | '⅝' | '⅞' => {
                    let (n, d) = vulgar_fraction(ch);
                    out.push_str(&format!("\\frac{{{n}}}{{{d}}}"));
                }
                '√' => out.push_str("\\sqrt"),
                '²' => out.push_str("^2"),
                '³' => out.push_str("^3"),
                '~' => out.push(' '),
                // A stray `$` (GSM8K `#### $18`) is currency or a lost delimiter.
                '€' | '£' | '$' | '¥' | '₹' | '₩' | '₽' | '¢' => {}
                _ => out.push(ch),
            }
            i += ch.len_utf8();
            continue;
        }
        // A command: `\` followed by letters, or by one non-letter.
        let name_start = i + 1;
        let mut j = name_start;
        while j < s.len() && bytes[j].is_ascii_alphabetic() {
            j += 1;
        }
        if j == name_start {
            // `\,` `\;` `\!` `\%` `\$` `\{` ...
            let Some(ch) = s[name_start..].chars().next() else {
                break;
            };
            match ch {
                ',' | ';' | ':' | ' ' => out.push(' '),
                '!' | '$' => {}
                '%' => out.push('%'),
                _ => {
                    out.push('\\');
                    out.push(ch);
                }
            }
            i = name_start + ch.len_utf8();
            continue;
        }
        let name = &s[name_start..j];
        i = j;
        if DROP.contains(&name) {
            // `\left.` / `\right.` are invisible delimiters.
            if (name == "left" || name == "right") && s[i..].starts_with('.') {
                i += 1;
            }
            continue;
        }
        if TEXTLIKE.contains(&name) {
            let rest = &s[i..];
            let trimmed = rest.trim_start();
            if let Some(inner) = trimmed.strip_prefix('{') {
                if let Some(close) = crate::extract::matching_brace(inner) {
                    let content = &inner[..close];
                    i += rest.len() - trimmed.len() + 1 + close + 1;
                    if has_digit_outside && is_unit_text(content) {
                        i += unit_exponent_len(&s[i..]);
                    } else {
                        out.push(' ');
                        rewrite_commands(content, out, false);
                        out.push(' ');
                    }
                    continue;
                }
            }
            continue;
        }
        match name {
            "dfrac" | "tfrac" | "cfrac" => out.push_str("\\frac"),
            "dbinom" | "tbinom" => out.push_str("\\binom"),
            "quad" | "qquad" => out.push(' '),
            "le" | "leqslant" => out.push_str("\\leq "),
            "ge" | "geqslant" => out.push_str("\\geq "),
            "ne" => out.push_str("\\neq "),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "leqq" => out.push_str("\\leq "),
            "geqq" => out.push_str("\\geq "),
            "degree" | "dollar" | "pounds" | "euro" => {}
            "infin" => out.push_str("\\infty "),
            "varnothing" => out.push_str("\\emptyset "),
            "lbrace" => out.push_str("\\{"),
            "langle" => out.push('('),
            "rangle" => out.push(')'),
            "rbrace" => out.push_str("\\}"),
            _ => {
                out.push('\\');
                out.push_str(name);
                // Keep a separator so `\pi r` does not become the command `\pir`.
                if s[i..].starts_with(|c: char| c.is_ascii_alphabetic() || c == ' ') {
                    out.push(' ');
                }
            }
        }
    }
}

/// Drop trailing words after a numeric answer ("18 dollars", "5 square feet", "28 percent" ->
/// "28%"), and turn "or"/"and" between answers into commas so they read as a list.
fn rewrite_words(s: &str) -> String {
    // `(11,7)or(7,11)`: a connector glued between two brackets is still a connector.
    let spaced;
    let s = if s.contains(")or(") || s.contains(")and(") {
        spaced = s.replace(")or(", ") or (").replace(")and(", ") and (");
        spaced.as_str()
    } else {
        s
    };
    let mut toks: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    // "per cent" is one word.
    if toks.len() >= 3
        && toks[toks.len() - 1].eq_ignore_ascii_case("cent")
        && toks[toks.len() - 2].eq_ignore_ascii_case("per")
    {
        toks.pop();
        if let Some(last) = toks.last_mut() {
            *last = "percent".to_string();
        }
    }
    // "twenty-five percent", "two-thirds", "one and a half": number words as a number.
    if let Some((value, used)) = toks
        .first()
        .filter(|t| t.starts_with(|c: char| c.is_ascii_alphabetic()))
        .and_then(|_| number_words(&toks))
    {
        if toks[used..]
            .iter()
            .all(|t| !t.bytes().any(|b| b.is_ascii_digit()))
        {
            toks.splice(..used, [value]);
        }
    }
    // "5 x 2.50": a spaced `x` between two numbers is a times sign in prose arithmetic.
    for k in 1..toks.len().saturating_sub(1) {
        if (toks[k] == "x" || toks[k] == "X")
            && toks[k - 1].ends_with(|c: char| c.is_ascii_digit())
            && toks[k + 1].starts_with(|c: char| c.is_ascii_digit())
        {
            toks[k] = "\\times".to_string();
        }
    }
    // "2, 4, and 6" (the Oxford comma): a connector right after a comma adds no second one.
    let mut joined: Vec<String> = Vec::with_capacity(toks.len());
    for t in toks {
        if is_connector(&t) {
            if joined.last().is_some_and(|p| p.ends_with(',')) {
                continue;
            }
            joined.push(",".to_string());
        } else {
            joined.push(t);
        }
    }
    let mut toks = joined;
    let is_word = |t: &str| {
        let core = t.trim_end_matches('.');
        let core = core
            .strip_suffix("^{2}")
            .or_else(|| core.strip_suffix("^2"))
            .or_else(|| core.strip_suffix("^{3}"))
            .or_else(|| core.strip_suffix("^3"))
            .unwrap_or(core);
        core.len() >= 2
            && core.starts_with(|c: char| c.is_ascii_alphabetic())
            && core.chars().all(|c| c.is_ascii_alphabetic() || c == '/')
            && core.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 2
    };
    for t in &mut toks {
        if let Some(n) = number_before_unit(t) {
            t.truncate(n);
        }
    }
    let mut percent = false;
    let mut scale = 0u32;
    while toks.len() >= 2
        && is_word(toks[toks.len() - 1].as_str())
        && toks[..toks.len() - 1]
            .iter()
            .any(|t| t.bytes().any(|b| b.is_ascii_digit()))
    {
        let w = toks.pop().unwrap_or_default().to_ascii_lowercase();
        // "28 percent", "28 pct", "28 percentage", "28 per cent" all mean `28%`.
        if w.starts_with("percent") || w == "pct" {
            percent = true;
        }
        // "2.5 billion" is 2.5 \times 10^9; only a scale word right after the number counts.
        let k = match w.trim_end_matches('s') {
            "thousand" => 3,
            "million" => 6,
            "billion" => 9,
            "trillion" => 12,
            _ => 0,
        };
        if k > 0 && toks.len() == 1 && is_plain_number(&toks[0]) {
            scale += k;
        }
    }
    let mut out = toks.join(" ");
    if scale > 0 {
        out.push_str(&format!("\\times10^{{{scale}}}"));
    }
    if percent {
        out.push('%');
    }
    out
}

/// The number that the leading number words of `toks` name, as an integer or `\frac{n}{d}`,
/// with how many tokens it used (`crate::words`, the math grammar): cardinals up to the
/// trillions ("three hundred twenty-five"), fractions ("two-thirds", "three quarters", "a
/// half", "half"), a whole number and a fraction ("one and a half"). Ordinals alone ("third")
/// are not fractions. Bounded: at most 16 tokens are read.
fn number_words(toks: &[String]) -> Option<(String, usize)> {
    let mut parts: Vec<(String, usize)> = Vec::new();
    for (k, t) in toks.iter().take(16).enumerate() {
        for p in t.to_ascii_lowercase().split('-') {
            if !p.is_empty() {
                parts.push((p.to_string(), k + 1));
            }
        }
    }
    let words: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    let (reading, used) = crate::words::read(&words, crate::words::Grammar::Math)?;
    Some((reading.latex(), parts[used - 1].1))
}

/// `12`, `-4.5`, `1,000.99`: a number as written in prose.
fn is_plain_number(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    !body.is_empty()
        && body.starts_with(|c: char| c.is_ascii_digit())
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b',')
}

/// Units written as abbreviations glued to a number (`12kg`, `4.5cm`, `30cm^2`, `1,000.99m²`).
/// Single letters (`m`, `g`) only with an exponent here: `2x` is a product, and a bare `4.5m`
/// is read as metres only against a plain number (see `compare`).
const GLUED_UNITS: [&str; 42] = [
    "mm", "cm", "km", "dm", "nm", "um", "kg", "mg", "ml", "mL", "cl", "dl", "kl", "ft", "yd", "mi",
    "in", "lb", "lbs", "oz", "hr", "hrs", "min", "mins", "sec", "secs", "ms", "mph", "kmh", "kph",
    "km/h", "m/s", "cm/s", "kW", "kWh", "Hz", "kHz", "cal", "kcal", "mol", "USD", "EUR",
];

/// The length of the number in `t` when the rest is a glued unit abbreviation.
fn number_before_unit(t: &str) -> Option<usize> {
    let n = t
        .bytes()
        .take_while(|c| c.is_ascii_digit() || matches!(c, b'.' | b',' | b'-' | b'+'))
        .count();
    if n == 0 || !t[..n].bytes().any(|c| c.is_ascii_digit()) || !is_plain_number(&t[..n]) {
        return None;
    }
    let unit = t[n..].trim_end_matches('.');
    let (base, exponent) = match unit.find('^') {
        Some(p) => (&unit[..p], Some(&unit[p..])),
        None => (unit, None),
    };
    let exponent_ok = exponent.is_none_or(|e| matches!(e, "^2" | "^3" | "^{2}" | "^{3}"));
    let single = matches!(base, "m" | "g" | "L" | "l" | "s");
    (exponent_ok && (GLUED_UNITS.contains(&base) || (single && exponent.is_some()))).then_some(n)
}

/// `\frac12` -> `\frac{1}{2}`, `\sqrt2` -> `\sqrt{2}`: single-token arguments get braces.
fn brace_short_arguments(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let (cmd, nargs) = if rest.starts_with("\\frac") {
            ("\\frac", 2)
        } else if rest.starts_with("\\sqrt") {
            ("\\sqrt", 1)
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        };
        out.push_str(cmd);
        i += cmd.len();
        // `\sqrt[3]{x}`: keep the index as is.
        if cmd == "\\sqrt" && s[i..].starts_with('[') {
            if let Some(end) = s[i..].find(']') {
                out.push_str(&s[i..i + end + 1]);
                i += end + 1;
            }
        }
        for _ in 0..nargs {
            let rest = &s[i..];
            match rest.chars().next() {
                Some('{') => match crate::extract::matching_brace(&rest[1..]) {
                    Some(close) => {
                        out.push_str(&brace_short_arguments(&rest[..close + 2]));
                        i += close + 2;
                    }
                    None => break,
                },
                Some('\\') => {
                    // A command argument such as `\frac\pi2`.
                    let end = rest[1..]
                        .find(|c: char| !c.is_ascii_alphabetic())
                        .map_or(rest.len(), |e| e + 1);
                    out.push('{');
                    out.push_str(&rest[..end]);
                    out.push('}');
                    i += end;
                }
                Some(c) if c.is_ascii_alphanumeric() => {
                    out.push('{');
                    out.push(c);
                    out.push('}');
                    i += 1;
                }
                _ => break,
            }
        }
    }
    out
}

/// `1,234,567` (and `1{,}234`) -> `1234567` when the whole answer is one such number.
fn drop_thousands_separators(s: &str) -> String {
    let t = s.replace("{,}", ",");
    let body = t.strip_prefix(['-', '+']).unwrap_or(&t);
    let body = body.strip_suffix('%').unwrap_or(body);
    let (int, frac) = match body.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (body, None),
    };
    let groups: Vec<&str> = int.split(',').collect();
    let ok = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && !groups[0].starts_with('0')
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        t.replace(',', "")
    } else {
        t
    }
}

/// `((((5))))` -> `(5)`, `{{x}}` -> `{x}`: brackets directly around another pair of the same
/// kind say nothing. One pass with an explicit stack, so thousands of levels (a degenerate
/// policy writes them) cost linear time and cannot overflow the stack of a later parser.
fn collapse_doubled_brackets(s: &str) -> String {
    let b = s.as_bytes();
    let n = b.len();
    if !s.contains("((") && !s.contains("{{") {
        return s.to_string();
    }
    let mut partner = vec![usize::MAX; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < n {
        match b[i] {
            // `\{`, `\}` are set braces, not grouping.
            b'\\' => {
                i += 2;
                continue;
            }
            b'(' | b'{' => stack.push(i),
            b')' | b'}' => {
                if let Some(j) = stack.pop() {
                    if (b[j] == b'(') != (b[i] == b')') {
                        return s.to_string();
                    }
                    partner[j] = i;
                    partner[i] = j;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut drop = vec![false; n];
    let mut any = false;
    for j in 0..n.saturating_sub(1) {
        let k = partner[j];
        if k != usize::MAX && k > j + 1 && b[j + 1] == b[j] && partner[j + 1] == k - 1 {
            drop[j] = true;
            drop[k] = true;
            any = true;
        }
    }
    if !any {
        return s.to_string();
    }
    // Only ASCII bracket bytes are removed, so the rest stays valid UTF-8.
    let kept: Vec<u8> = b
        .iter()
        .zip(&drop)
        .filter(|(_, d)| !**d)
        .map(|(c, _)| *c)
        .collect();
    String::from_utf8(kept).unwrap_or_else(|_| s.to_string())
}

/// Split at top-level occurrences of `sep` (outside (), [], {} and `\{ \}`).
pub(crate) fn split_top_level(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'{') => depth += 1,
                    Some(b'}') => depth -= 1,
                    _ => {}
                }
                i += 2;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// `x=`, `a_1=`, `a_{12}=` at the start of an item: the value it assigns, else None.
fn assigned_value(item: &str) -> Option<&str> {
    let (name, value) = item.split_once('=')?;
    let nb = name.as_bytes();
    let is_name = !nb.is_empty()
        && nb[0].is_ascii_alphabetic()
        && (nb.len() == 1 || (nb.len() >= 3 && nb[1] == b'_'));
    (is_name && !value.is_empty() && !value.contains('=')).then_some(value)
}

/// Semicolons as separators (a common European and olympiad style): inside brackets they
/// separate coordinates (`(0;-2;6)` is `(0,-2,6)`); at the top level they separate answers,
/// each of which may list the coordinates of one solution (`p=5,q=2;p=7,q=2` is the two points
/// `(5,2),(7,2)`, `-12;-11;-10` three numbers).
fn rewrite_semicolons(s: &str) -> String {
    if !s.contains(';') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = b.to_vec();
    // Per open bracket: whether a comma was seen at its level, and its semicolons.
    let mut stack: Vec<(bool, Vec<usize>)> = Vec::new();
    let mut top_level = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let escaped_brace = c == b'\\' && matches!(b.get(i + 1), Some(b'{' | b'}'));
        if c == b'\\' && !escaped_brace {
            i += 2;
            continue;
        }
        let c = if escaped_brace { b[i + 1] } else { c };
        match c {
            b'(' | b'[' | b'{' => stack.push((false, Vec::new())),
            b')' | b']' | b'}' => {
                if let Some((comma, semis)) = stack.pop() {
                    if !comma {
                        for p in semis {
                            out[p] = b',';
                        }
                    }
                }
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    top.0 = true;
                }
            }
            b';' => match stack.last_mut() {
                Some(top) => top.1.push(i),
                None => top_level = true,
            },
            _ => {}
        }
        i += if escaped_brace { 2 } else { 1 };
    }
    let inner = String::from_utf8(out).unwrap_or_else(|_| s.to_string());
    if !top_level {
        return inner;
    }
    let items: Vec<String> = split_top_level(&inner, b';')
        .into_iter()
        .filter(|it| !it.is_empty())
        .map(|item| {
            let coords = split_top_level(item, b',');
            if coords.len() < 2 {
                return item.to_string();
            }
            let values: Option<Vec<&str>> = coords.iter().map(|c| assigned_value(c)).collect();
            format!("({})", values.unwrap_or(coords).join(","))
        })
        .collect();
    items.join(",")
}

/// LaTeX commands whose backslash is often doubled by a second round of string escaping.
const ESCAPED_COMMANDS: [&str; 40] = [
    "frac", "dfrac", "tfrac", "sqrt", "left", "right", "le", "leq", "ge", "geq", "ne", "neq", "lt",
    "gt", "in", "infty", "pi", "cdot", "times", "div", "pm", "mp", "boxed", "text", "mathrm",
    "mathbf", "begin", "end", "cup", "cap", "sin", "cos", "tan", "log", "ln", "circ", "theta",
    "alpha", "beta", "quad",
];

/// `\\frac{1}{2}` -> `\frac{1}{2}`: a backslash doubled by a second round of escaping (JSON
/// written twice) before a command name. Exactly two backslashes before a known command only:
/// `\\` alone is a matrix row break, and `a \\ b` stays one.
fn undouble_backslashes(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("\\\\") {
        return s.into();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') && (i == 0 || b[i - 1] != b'\\') {
            let rest = &s[i + 2..];
            let n = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            if n > 0 && ESCAPED_COMMANDS.contains(&&rest[..n]) {
                out.push('\\');
                i += 2;
                changed = true;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    if changed {
        out.into()
    } else {
        s.into()
    }
}

/// Inside trigonometric answers degrees matter: `\sin 30^\circ` is `\sin(30\cdot\frac{\pi}{180})`.
fn degrees_to_radians(s: &str) -> String {
    let mut out = s.to_string();
    for mark in ["^{\\circ}", "^\\circ"] {
        while let Some(pos) = out.find(mark) {
            let num_start = out[..pos]
                .char_indices()
                .rev()
                .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
                .map_or(0, |(i, c)| i + c.len_utf8());
            if num_start == pos {
                break;
            }
            let number = out[num_start..pos].to_string();
            out.replace_range(
                num_start..pos + mark.len(),
                &format!("({number}\\cdot\\frac{{\\pi}}{{180}})"),
            );
        }
    }
    out
}

/// Strip `$...$`, `\(...\)`, `\[...\]` around the whole answer.
fn strip_delimiters(mut s: &str) -> &str {
    loop {
        let t = s.trim();
        let inner = t
            .strip_prefix("$$")
            .and_then(|x| x.strip_suffix("$$"))
            .or_else(|| t.strip_prefix('$').and_then(|x| x.strip_suffix('$')))
            .or_else(|| t.strip_prefix("\\(").and_then(|x| x.strip_suffix("\\)")))
            .or_else(|| t.strip_prefix("\\[").and_then(|x| x.strip_suffix("\\]")));
        match inner {
            Some(x) => s = x,
            None => return t,
        }
    }
}

/// Remove one pair of braces wrapping the whole string (`{5}` -> `5`).
fn strip_outer_braces(mut s: &str) -> &str {
    while let Some(inner) = s.strip_prefix('{') {
        match crate::extract::matching_brace(inner) {
            Some(close) if close + 1 == inner.len() => s = &inner[..close],
            _ => break,
        }
    }
    s
}

/// Remove whitespace, except a single space that ends a command name before a letter
/// (`\pi r` must not become the command `\pir`).
fn compact_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for ch in s.chars() {
        if ch.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space
            && ((ch.is_ascii_alphabetic() && ends_with_command(&out))
                || (ch.is_ascii_alphanumeric() && ends_with_script(&out)))
        {
            out.push(' ');
        }
        pending_space = false;
        out.push(ch);
    }
    out
}

/// `\log_2 8`: the space ends a one-character sub/superscript and must survive.
fn ends_with_script(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && matches!(b[b.len() - 2], b'_' | b'^') && b[b.len() - 1].is_ascii_alphanumeric()
}

fn ends_with_command(s: &str) -> bool {
    let letters = s.bytes().rev().take_while(u8::is_ascii_alphabetic).count();
    letters > 0
        && s.len()
            .checked_sub(letters + 1)
            .is_some_and(|i| s.as_bytes()[i] == b'\\')
}

/// The canonical form of an answer; see the module docs.
pub fn normalize(answer: &str) -> String {
    let unescaped = undouble_backslashes(answer);
    let s = strip_delimiters(&unescaped);
    let s = if ["\\sin", "\\cos", "\\tan", "\\sec", "\\csc", "\\cot"]
        .iter()
        .any(|f| s.contains(f))
    {
        degrees_to_radians(s)
    } else {
        s.to_string()
    };
    let s = s
        .replace("^{\\circ}", "")
        .replace("^\\circ", "")
        .replace("{}^\\circ", "");
    // `32, 349` lists two numbers; `32,349` and `32,\! 349` can be thirty-two thousand.
    let spaced_comma = s
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b',' && w[1].is_ascii_whitespace());
    let has_digit = s.bytes().any(|b| b.is_ascii_digit());
    let mut rewritten = String::with_capacity(s.len());
    rewrite_commands(&s, &mut rewritten, has_digit);
    let worded = rewrite_words(&rewritten);
    // A connector ("4 or 5") separates answers as surely as a spaced comma.
    let spaced_comma = spaced_comma || rewritten.split_whitespace().any(is_connector);
    let compact = compact_whitespace(&worded);
    let compact = compact
        .trim_end_matches(['.', ';', ','])
        .trim_start_matches(',');
    let collapsed = collapse_doubled_brackets(compact);
    let compact = strip_outer_braces(&collapsed);
    let compact = rewrite_semicolons(compact);
    let compact = if spaced_comma {
        compact
    } else {
        drop_thousands_separators(&compact)
    };
    let compact = brace_short_arguments(&compact);
    let out = strip_outer_braces(strip_delimiters(&compact));
    let out = match out {
        "\\{\\}" => "\\emptyset".to_string(),
        _ if out.eq_ignore_ascii_case("infinity") => "\\infty".to_string(),
        // The real line, however it is written.
        "\\mathbb{R}" | "(-\\infty,\\infty)" => "(-\\infty,\\infty)".to_string(),
        _ if out.eq_ignore_ascii_case("allrealnumbers") || out.eq_ignore_ascii_case("allreals") => {
            "(-\\infty,\\infty)".to_string()
        }
        // Two whole numbers listed with a space (`3, 5`) keep it: the space is what tells the
        // list from a decimal comma (`3,5`) in the comparison.
        _ if spaced_comma && two_digit_runs(out) => out.replacen(',', ", ", 1),
        _ => strip_base_subscript(out).to_string(),
    };
    // `\sin 2x` -> `\sin(2x)`: what the fast path reads, written so that the symbolic path
    // reads it too.
    match crate::expr::bracket_function_arguments(&out) {
        std::borrow::Cow::Borrowed(_) => out,
        std::borrow::Cow::Owned(bracketed) => bracketed,
    }
}

/// `3,5` or `-3,5`: two runs of digits joined by one comma.
fn two_digit_runs(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    match body.split_once(',') {
        Some((a, b)) => {
            let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
            digits(a) && digits(b)
        }
        None => false,
    }
}

/// `1011_2` / `777_{8}`: a numeral with its base written as a subscript; the digits are the
/// answer (golds and responses disagree on whether to write the base).
fn strip_base_subscript(s: &str) -> &str {
    let Some((digits, base)) = s.split_once('_') else {
        return s;
    };
    let base = base
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or(base);
    let alnum = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    };
    if alnum(digits)
        && digits.bytes().any(|c| c.is_ascii_digit())
        && !base.is_empty()
        && base.bytes().all(|c| c.is_ascii_digit())
    {
        digits
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn table() {
        let cases = [
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            ("\\frac12", "\\frac{1}{2}"),
            ("\\tfrac1{2}", "\\frac{1}{2}"),
            ("\\left( 1, 2 \\right)", "(1,2)"),
            ("1,000", "1000"),
            ("1\\,000", "1000"),
            ("1{,}000.5", "1000.5"),
            ("10 \\text{ cm}^2", "10"),
            ("\\$18.50", "18.50"),
            ("18 dollars", "18"),
            ("\\boxed{\\boxed{5}}", "5"),
            ("\\sin 30^\\circ", "\\sin(30\\cdot\\frac{\\pi}{180})"),
            ("\\sinπ30^\\circ", "\\sin(\\pi)(30\\cdot\\frac{\\pi}{180})"),
            ("5 \\text{ m/s}", "5"),
            ("5 km/h", "5"),
            ("3 \\text{ m}^2", "3"),
            ("90^\\circ", "90"),
            ("90^{\\circ}", "90"),
            ("28\\%", "28%"),
            ("28 percent", "28%"),
            ("\\text{(B)}", "(B)"),
            ("\\textbf{Monday}", "Monday"),
            ("4 \\text{ or } 5", "4, 5"),
            ("x \\le 2", "x\\leq2"),
            ("5.", "5"),
            ("$\\sqrt2$", "\\sqrt{2}"),
            ("{7}", "7"),
            ("1,2", "1,2"),
            ("\\left\\{1,2\\right\\}", "\\{1,2\\}"),
            ("2\\pi r", "2\\pi r"),
            ("\\log_2 8", "\\log_2(8)"),
            ("\\frac{\\sqrt 3}{2}", "\\frac{\\sqrt{3}}{2}"),
            ("\\varnothing", "\\emptyset"),
            ("$18", "18"),
            ("\\langle 1, 2 \\rangle", "(1,2)"),
            ("1011_2", "1011"),
            ("1011_{2}", "1011"),
            ("x_2", "x_2"),
            ("\\\\frac{1}{2}", "\\frac{1}{2}"),
            (
                "\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)",
                "(3,\\frac{\\pi}{2})",
            ),
            (
                "\\begin{pmatrix}x\\\\y\\end{pmatrix}",
                "\\begin{pmatrix}x\\\\y\\end{pmatrix}",
            ),
            ("32, 349", "32, 349"),
            ("3 and 5", "3, 5"),
            ("1,2", "1,2"),
            ("32,349", "32349"),
            ("11,\\! 111,\\! 111", "11111111"),
            ("0,111", "0,111"),
            ("(0;-2;6)", "(0,-2,6)"),
            ("p=5,q=2;p=7,q=2", "(5,2),(7,2)"),
            ("-12;-11;-10", "-12,-11,-10"),
            ("((((5))))", "(5)"),
            ("{{{x}}}", "x"),
            ("\\{\\{1\\},2\\}", "\\{\\{1\\},2\\}"),
            ("x != 3", "x\\neq3"),
            ("5!=120", "5!=120"),
            ("x <= 2", "x\\leq2"),
            ("x \\lt 3", "x<3"),
            ("28 pct", "28%"),
            ("28 per cent", "28%"),
            ("28 percentage", "28%"),
            ("(11,7)or(7,11)", "(11,7),(7,11)"),
            ("15 cm²", "15"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
        }
    }
}
