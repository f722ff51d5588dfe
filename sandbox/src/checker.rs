//! Judging outputs outside the sandbox: stdout against the expected text (exact, whitespace-,
//! token- or float-tolerant), and values reported by the harness against expected values with
//! Python's comparison semantics for plain data. Expected values never enter the sandbox.

use serde_json::Value;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CompareMode {
    /// Byte-for-byte.
    Exact,
    /// Line by line, ignoring trailing whitespace on each line and trailing blank lines.
    #[default]
    Whitespace,
    /// Whitespace-separated tokens must match; line structure is ignored.
    Tokens,
    /// Tokens; tokens that both parse as numbers match within the tolerance.
    Float,
}

/// Does `actual` stdout match `expected` under `mode`? `tol` is absolute-or-relative.
pub fn stdout_matches(mode: CompareMode, actual: &[u8], expected: &str, tol: f64) -> bool {
    let actual_s = String::from_utf8_lossy(actual);
    match mode {
        CompareMode::Exact => actual == expected.as_bytes(),
        CompareMode::Whitespace => norm_lines(&actual_s) == norm_lines(expected),
        CompareMode::Tokens => actual_s.split_whitespace().eq(expected.split_whitespace()),
        CompareMode::Float => {
            let a: Vec<&str> = actual_s.split_whitespace().collect();
            let e: Vec<&str> = expected.split_whitespace().collect();
            a.len() == e.len() && a.iter().zip(&e).all(|(x, y)| token_matches(x, y, tol))
        }
    }
}

fn norm_lines(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s.lines().map(|l| l.trim_end()).collect();
    while lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

fn token_matches(a: &str, e: &str, tol: f64) -> bool {
    if a == e {
        return true;
    }
    match (a.parse::<f64>(), e.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => close(x, y, tol),
        _ => false,
    }
}

fn close(x: f64, y: f64, tol: f64) -> bool {
    let d = (x - y).abs();
    d <= tol || d <= tol * y.abs().max(x.abs())
}

/// A plain Python value as the harness encodes it (see `encode` in zygote.py).
#[derive(Debug, Clone, PartialEq)]
pub enum PyVal {
    None,
    Bool(bool),
    Int(i128),
    /// An int beyond i128, as its decimal digits.
    BigInt(String),
    Float(f64),
    Str(String),
    Bytes(String),
    List(Vec<PyVal>),
    Tuple(Vec<PyVal>),
    Dict(Vec<(PyVal, PyVal)>),
    Set(Vec<PyVal>),
}

impl PyVal {
    /// Decodes the harness's tagged JSON; plain JSON (expected values written by users) decodes
    /// the same way, objects becoming dicts with string keys.
    pub fn from_json(v: &Value) -> Result<PyVal, String> {
        Ok(match v {
            Value::Null => PyVal::None,
            Value::Bool(b) => PyVal::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    PyVal::Int(i as i128)
                } else if let Some(u) = n.as_u64() {
                    PyVal::Int(u as i128)
                } else {
                    PyVal::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => PyVal::Str(s.clone()),
            Value::Array(a) => {
                PyVal::List(a.iter().map(PyVal::from_json).collect::<Result<_, _>>()?)
            }
            Value::Object(o) => {
                if o.len() == 1 {
                    let Some((k, inner)) = o.iter().next() else {
                        return Ok(PyVal::Dict(vec![]));
                    };
                    let items = || -> Result<Vec<PyVal>, String> {
                        inner
                            .as_array()
                            .ok_or("tagged value needs a list")?
                            .iter()
                            .map(PyVal::from_json)
                            .collect()
                    };
                    match k.as_str() {
                        "$int" => {
                            let s = inner.as_str().ok_or("$int needs a string")?;
                            return Ok(s
                                .parse::<i128>()
                                .map(PyVal::Int)
                                .unwrap_or_else(|_| PyVal::BigInt(s.to_string())));
                        }
                        "$float" => {
                            let s = inner.as_str().ok_or("$float needs a string")?;
                            return Ok(PyVal::Float(match s {
                                "inf" => f64::INFINITY,
                                "-inf" => f64::NEG_INFINITY,
                                _ => f64::NAN,
                            }));
                        }
                        "$tuple" => return Ok(PyVal::Tuple(items()?)),
                        "$set" | "$frozenset" => return Ok(PyVal::Set(items()?)),
                        "$bytes" => {
                            return Ok(PyVal::Bytes(inner.as_str().unwrap_or_default().to_string()))
                        }
                        "$dict" => {
                            let mut out = Vec::new();
                            for pair in inner.as_array().ok_or("$dict needs a list")? {
                                let p = pair
                                    .as_array()
                                    .filter(|p| p.len() == 2)
                                    .ok_or("$dict entries are pairs")?;
                                out.push((PyVal::from_json(&p[0])?, PyVal::from_json(&p[1])?));
                            }
                            return Ok(PyVal::Dict(out));
                        }
                        _ => {}
                    }
                }
                PyVal::Dict(
                    o.iter()
                        .map(|(k, v)| Ok((PyVal::Str(k.clone()), PyVal::from_json(v)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
        })
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            PyVal::Bool(b) => Some(*b as i64 as f64),
            PyVal::Int(i) => Some(*i as f64),
            PyVal::BigInt(s) => s.parse().ok(),
            PyVal::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn is_number(&self) -> bool {
        matches!(
            self,
            PyVal::Bool(_) | PyVal::Int(_) | PyVal::BigInt(_) | PyVal::Float(_)
        )
    }

    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            PyVal::None => false,
            PyVal::Bool(b) => *b,
            PyVal::Int(i) => *i != 0,
            PyVal::BigInt(_) => true,
            PyVal::Float(f) => *f != 0.0,
            PyVal::Str(s) | PyVal::Bytes(s) => !s.is_empty(),
            PyVal::List(v) | PyVal::Tuple(v) | PyVal::Set(v) => !v.is_empty(),
            PyVal::Dict(d) => !d.is_empty(),
        }
    }

    /// `==` as Python computes it for plain data (1 == 1.0 == True; a tuple never equals a list).
    /// `lenient` also lets a tuple equal a list, for expected values written in JSON.
    pub fn py_eq(&self, other: &PyVal, lenient: bool) -> bool {
        use PyVal::*;
        if self.is_number() && other.is_number() {
            return match (self, other) {
                (Int(a), Int(b)) => a == b,
                (BigInt(a), BigInt(b)) => a == b,
                (Bool(a), Bool(b)) => a == b,
                (Bool(_) | Int(_), Bool(_) | Int(_)) => self.as_f64() == other.as_f64(),
                _ => self.as_f64() == other.as_f64(),
            };
        }
        let seq_eq = |a: &[PyVal], b: &[PyVal]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y, lenient))
        };
        match (self, other) {
            (None, None) => true,
            (Str(a), Str(b)) | (Bytes(a), Bytes(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => seq_eq(a, b),
            (List(a), Tuple(b)) | (Tuple(a), List(b)) => lenient && seq_eq(a, b),
            (Set(a), Set(b)) => {
                a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| x.py_eq(y, lenient)))
            }
            (Dict(a), Dict(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .any(|(k2, v2)| k.py_eq(k2, lenient) && v.py_eq(v2, lenient))
                    })
            }
            _ => false,
        }
    }

    fn py_cmp(&self, other: &PyVal) -> Option<Ordering> {
        use PyVal::*;
        if self.is_number() && other.is_number() {
            if let (Int(a), Int(b)) = (self, other) {
                return Some(a.cmp(b));
            }
            return self.as_f64()?.partial_cmp(&other.as_f64()?);
        }
        match (self, other) {
            (Str(a), Str(b)) => Some(a.cmp(b)),
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => {
                for (x, y) in a.iter().zip(b) {
                    if !x.py_eq(y, false) {
                        return x.py_cmp(y);
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            _ => Option::None,
        }
    }

    fn contains(&self, item: &PyVal) -> Option<bool> {
        match self {
            PyVal::List(v) | PyVal::Tuple(v) | PyVal::Set(v) => {
                Some(v.iter().any(|x| x.py_eq(item, false)))
            }
            PyVal::Dict(d) => Some(d.iter().any(|(k, _)| k.py_eq(item, false))),
            PyVal::Str(s) => match item {
                PyVal::Str(sub) => Some(s.contains(sub.as_str())),
                _ => Option::None,
            },
            _ => Option::None,
        }
    }
}

/// Applies one comparison operator; Err when Python would raise TypeError.
pub fn compare(op: &str, a: &PyVal, b: &PyVal) -> Result<bool, String> {
    let ord = || {
        a.py_cmp(b)
            .ok_or_else(|| format!("'{op}' not supported between these values"))
    };
    Ok(match op {
        "==" => a.py_eq(b, false),
        "!=" => !a.py_eq(b, false),
        "<" => ord()? == Ordering::Less,
        "<=" => ord()? != Ordering::Greater,
        ">" => ord()? == Ordering::Greater,
        ">=" => ord()? != Ordering::Less,
        "in" => b.contains(a).ok_or("'in' needs a container")?,
        "not in" => !b.contains(a).ok_or("'not in' needs a container")?,
        // Identity is only meaningful for singletons in plain data.
        "is" => {
            matches!((a, b), (PyVal::None, PyVal::None))
                || matches!((a, b), (PyVal::Bool(x), PyVal::Bool(y)) if x == y)
        }
        "is not" => {
            !(matches!((a, b), (PyVal::None, PyVal::None))
                || matches!((a, b), (PyVal::Bool(x), PyVal::Bool(y)) if x == y))
        }
        _ => return Err(format!("unsupported operator {op}")),
    })
}

/// Evaluates a comparison chain `v0 op0 v1 op1 v2 ...` (all must hold), or truthiness when
/// there is one value and no operator.
pub fn check_chain(values: &[PyVal], ops: &[String], negate: bool) -> Result<bool, String> {
    let ok = if ops.is_empty() {
        values.first().ok_or("no value")?.truthy()
    } else {
        if values.len() != ops.len() + 1 {
            return Err("operand count does not match operators".into());
        }
        let mut all = true;
        for (i, op) in ops.iter().enumerate() {
            if !compare(op, &values[i], &values[i + 1])? {
                all = false;
                break;
            }
        }
        all
    };
    Ok(ok != negate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(j: Value) -> PyVal {
        PyVal::from_json(&j).unwrap()
    }

    #[test]
    fn stdout_modes() {
        let cases: &[(&str, CompareMode, &[u8], &str, bool)] = &[
            (
                "exact_needs_identical_bytes",
                CompareMode::Exact,
                b"3\n",
                "3",
                false,
            ),
            ("exact_equal", CompareMode::Exact, b"3\n", "3\n", true),
            (
                "whitespace_ignores_trailing_spaces_and_blank_lines",
                CompareMode::Whitespace,
                b"1 2  \n3\n\n",
                "1 2\n3",
                true,
            ),
            (
                "whitespace_keeps_inner_spacing",
                CompareMode::Whitespace,
                b"1  2\n",
                "1 2\n",
                false,
            ),
            (
                "whitespace_keeps_line_structure",
                CompareMode::Whitespace,
                b"1\n2\n",
                "1 2\n",
                false,
            ),
            (
                "tokens_ignore_line_structure",
                CompareMode::Tokens,
                b"1\n2\n",
                "1 2",
                true,
            ),
            (
                "float_within_tolerance",
                CompareMode::Float,
                b"0.3333333\n",
                "0.333333333",
                true,
            ),
            (
                "float_outside_tolerance",
                CompareMode::Float,
                b"0.34\n",
                "0.333333333",
                false,
            ),
            (
                "float_words_must_match",
                CompareMode::Float,
                b"YES 1.0",
                "NO 1.0",
                false,
            ),
            ("float_token_count", CompareMode::Float, b"1 2", "1", false),
            (
                "invalid_utf8_never_matches_text",
                CompareMode::Whitespace,
                b"\xff\n",
                "?",
                false,
            ),
        ];
        for (name, mode, actual, expected, want) in cases {
            assert_eq!(
                stdout_matches(*mode, actual, expected, 1e-6),
                *want,
                "{name}"
            );
        }
    }

    #[test]
    fn python_equality_semantics() {
        assert!(v(json!(1)).py_eq(&v(json!(1.0)), false), "1 == 1.0");
        assert!(v(json!(true)).py_eq(&v(json!(1)), false), "True == 1");
        assert!(
            !v(json!({"$tuple": [1, 2]})).py_eq(&v(json!([1, 2])), false),
            "tuple != list"
        );
        assert!(
            v(json!({"$tuple": [1, 2]})).py_eq(&v(json!([1, 2])), true),
            "lenient tuple == list"
        );
        assert!(
            v(json!({"$set": [1, 2]})).py_eq(&v(json!({"$set": [2, 1]})), false),
            "sets ignore order"
        );
        assert!(
            !v(json!({"$float": "nan"})).py_eq(&v(json!({"$float": "nan"})), false),
            "nan != nan"
        );
        assert!(
            v(json!({"$int": "123456789012345678901234567890123456789012"})).py_eq(
                &v(json!({"$int": "123456789012345678901234567890123456789012"})),
                false
            )
        );
        assert!(!v(json!("1")).py_eq(&v(json!(1)), false), "str != int");
        assert!(
            v(json!({"a": [1]})).py_eq(&v(json!({"$dict": [["a", [1]]]})), false),
            "json object is a dict"
        );
    }

    #[test]
    fn comparison_chains() {
        let vals = [v(json!(1)), v(json!(2)), v(json!(3))];
        assert!(check_chain(&vals, &["<".into(), "<".into()], false).unwrap());
        assert!(!check_chain(&vals, &["<".into(), ">".into()], false).unwrap());
        assert!(
            check_chain(&[v(json!(0))], &[], true).unwrap(),
            "assert not 0"
        );
        assert!(check_chain(&[v(json!(2)), v(json!([1, 2]))], &["in".into()], false).unwrap());
        assert!(check_chain(&[v(json!(null)), v(json!(null))], &["is".into()], false).unwrap());
        assert!(
            check_chain(&[v(json!("a")), v(json!(1))], &["<".into()], false).is_err(),
            "TypeError"
        );
    }
}
