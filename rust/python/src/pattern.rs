//! A full-match regular expression for the `format` verifier, on the `regex` crate: its automata
//! run in time linear in the text whatever the pattern, so no response can make a check backtrack
//! for seconds (Python's `re` can, on patterns such as `(a+)+$`). Conversion only.
use pyo3::prelude::*;
use regex::Regex;

use crate::errors::config;

#[pyclass(module = "grpo_fast._native", frozen)]
pub struct FullMatch {
    re: Regex,
    pattern: String,
}

#[pymethods]
impl FullMatch {
    /// `dotall`: `.` also matches a newline (Python's `re.DOTALL`).
    #[new]
    #[pyo3(signature = (pattern, dotall = true))]
    fn new(pattern: &str, dotall: bool) -> PyResult<Self> {
        let bad = |e: regex::Error| {
            config(format!(
                "bad format pattern {pattern:?}: {e}\n(the pattern runs on a linear-time engine: \
                 lookaround and backreferences are not supported)"
            ))
        };
        // Parsed alone first, so an error points into the user's pattern, not our wrapper.
        Regex::new(pattern).map_err(bad)?;
        let flags = if dotall { "(?s)" } else { "" };
        // Anchored on both ends of the whole text: `\z`, not `$`, which would also accept a
        // trailing newline.
        let re = Regex::new(&format!(r"{flags}\A(?:{pattern})\z")).map_err(bad)?;
        Ok(FullMatch {
            re,
            pattern: pattern.to_string(),
        })
    }

    #[getter]
    fn pattern(&self) -> &str {
        &self.pattern
    }

    fn fullmatch(&self, py: Python<'_>, text: &str) -> bool {
        py.detach(|| self.re.is_match(text))
    }

    fn fullmatch_batch(&self, py: Python<'_>, texts: Vec<String>) -> Vec<bool> {
        py.detach(|| texts.iter().map(|t| self.re.is_match(t)).collect())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FullMatch>()
}
