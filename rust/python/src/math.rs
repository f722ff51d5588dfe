//! Bindings for `grpo-math`: batch answer checking with the GIL released. Conversion only.
use numpy::PyArray1;
use pyo3::prelude::*;

use grpo_math::{Fallback, Options};

fn options(last_number_fallback: &str) -> PyResult<Options> {
    let fb = match last_number_fallback {
        "auto" => Fallback::Auto,
        "always" => Fallback::Always,
        "never" => Fallback::Never,
        other => {
            return Err(config_error(&format!(
                "last_number_fallback must be auto, always or never, not {other:?}"
            )))
        }
    };
    Ok(Options {
        last_number_fallback: fb,
    })
}

/// A `grpo_fast.errors.ConfigError` (falls back to ValueError if the module cannot be imported).
fn config_error(msg: &str) -> PyErr {
    Python::attach(|py| {
        let cls = py
            .import("grpo_fast.errors")
            .and_then(|m| m.getattr("ConfigError"));
        match cls.map(|c| c.cast_into::<pyo3::types::PyType>()) {
            Ok(Ok(cls)) => PyErr::from_type(cls, msg.to_string()),
            _ => pyo3::exceptions::PyValueError::new_err(msg.to_string()),
        }
    })
}

type BatchResult<'py> = (
    Bound<'py, PyArray1<i8>>,
    Vec<Option<String>>,
    Vec<Option<String>>,
    Vec<Option<String>>,
    Vec<Option<&'static str>>,
);

/// Check responses against golds. Returns (codes int8, extracted answers, normalised answers,
/// normalised golds, extraction sources); codes: 1 correct, 0 wrong, 2 undecided (symbolic path
/// needed), -1 no answer, -2 empty gold.
#[pyfunction]
#[pyo3(signature = (golds, responses, last_number_fallback = "auto"))]
fn math_check_batch<'py>(
    py: Python<'py>,
    golds: Vec<String>,
    responses: Vec<String>,
    last_number_fallback: &str,
) -> PyResult<BatchResult<'py>> {
    if golds.len() != responses.len() {
        return Err(config_error(&format!(
            "math_check_batch: {} golds but {} responses",
            golds.len(),
            responses.len()
        )));
    }
    crate::threads::ready()?;
    let opts = options(last_number_fallback)?;
    let results = py.detach(|| grpo_math::check_batch(&golds, &responses, &opts));
    let n = results.len();
    let mut codes = Vec::with_capacity(n);
    let mut extracted = Vec::with_capacity(n);
    let mut normalized = Vec::with_capacity(n);
    let mut gold_norm = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    for (check, gold) in results {
        codes.push(check.verdict as i8);
        extracted.push(check.extracted);
        normalized.push(check.normalized);
        gold_norm.push(gold.map(|g| g.normalized));
        sources.push(check.source.map(|s| s.as_str()));
    }
    Ok((
        PyArray1::from_vec(py, codes),
        extracted,
        normalized,
        gold_norm,
        sources,
    ))
}

/// The normalised form of one answer (for debugging and the symbolic path).
#[pyfunction]
fn math_normalize(answer: &str) -> String {
    grpo_math::normalize::normalize(answer)
}

/// The final answer of a response and where it came from, or None.
#[pyfunction]
#[pyo3(signature = (text, last_number_fallback = false))]
fn math_extract(text: &str, last_number_fallback: bool) -> Option<(String, &'static str)> {
    grpo_math::extract::extract_response(text, last_number_fallback)
        .map(|e| (e.text, e.source.as_str()))
}

/// The answer part of a gold field (`#### 72`, a MATH solution's last `\boxed{}`, bare LaTeX).
#[pyfunction]
fn math_extract_gold(text: &str) -> Option<String> {
    grpo_math::extract::extract_gold(text)
}

/// Compare two already extracted answers with the fast path: 1 equal, 0 different, 2 undecided.
#[pyfunction]
fn math_compare(gold: &str, answer: &str) -> i8 {
    let g = grpo_math::normalize::normalize(gold);
    let a = grpo_math::normalize::normalize(answer);
    match grpo_math::compare::compare(&g, &a) {
        grpo_math::Decision::Equal => 1,
        grpo_math::Decision::NotEqual => 0,
        grpo_math::Decision::Undecided => 2,
    }
}

/// Runs of number words in lower-case tokens replaced by digits (`grpo_math::words`, the factual
/// grammar): `["twenty", "one"]` -> `["21"]`.
#[pyfunction]
fn number_words(tokens: Vec<String>) -> Vec<String> {
    grpo_math::words::number_words_to_digits(&tokens)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(math_check_batch, m)?)?;
    m.add_function(wrap_pyfunction!(math_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(math_extract, m)?)?;
    m.add_function(wrap_pyfunction!(math_extract_gold, m)?)?;
    m.add_function(wrap_pyfunction!(math_compare, m)?)?;
    m.add_function(wrap_pyfunction!(number_words, m)?)?;
    Ok(())
}
