//! Advantages and group statistics over NumPy columns.
use std::sync::Mutex;

use grpo_core::{advantage, stats, Method, Summary};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{config, IntoPyResult};

fn same_len(name: &str, a: usize, b: usize) -> PyResult<()> {
    if a != b {
        return Err(config(format!("{name} has {a} entries but scores has {b}")));
    }
    Ok(())
}

/// Returns (advantages, degenerate_groups, unscored).
#[pyfunction]
#[pyo3(signature = (scores, offsets, method="grpo", eps=advantage::DEFAULT_EPS))]
pub fn compute_advantages<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray1<'py, f64>,
    offsets: PyReadonlyArray1<'py, i64>,
    method: &str,
    eps: f64,
) -> PyResult<(Bound<'py, PyArray1<f64>>, usize, usize)> {
    let method: Method = method.parse().py_err()?;
    let s = scores.as_slice()?;
    let o = offsets.as_slice()?;
    let out = py
        .detach(|| advantage::compute(s, o, method, eps))
        .py_err()?;
    Ok((
        PyArray1::from_vec(py, out.values),
        out.degenerate_groups,
        out.unscored,
    ))
}

/// Per-group mean, std (sample), min, max and number of valid scores.
#[pyfunction]
pub fn group_stats<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray1<'py, f64>,
    offsets: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = scores.as_slice()?;
    let o = offsets.as_slice()?;
    let p = py.detach(|| stats::per_group(s, o)).py_err()?;
    let d = PyDict::new(py);
    d.set_item("mean", PyArray1::from_vec(py, p.mean))?;
    d.set_item("std", PyArray1::from_vec(py, p.std))?;
    d.set_item("min", PyArray1::from_vec(py, p.min))?;
    d.set_item("max", PyArray1::from_vec(py, p.max))?;
    d.set_item("valid", PyArray1::from_vec(py, p.valid))?;
    Ok(d)
}

pub fn summary_dict<'py>(py: Python<'py>, s: &Summary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("groups", s.groups)?;
    d.set_item("responses", s.responses)?;
    let sizes = PyDict::new(py);
    for (k, v) in &s.group_sizes {
        sizes.set_item(k, v)?;
    }
    d.set_item("group_sizes", sizes)?;
    d.set_item("verified", s.verified)?;
    d.set_item("scored", s.scored)?;
    d.set_item("passed", s.passed)?;
    d.set_item("mean_score", s.score.mean_or_nan())?;
    d.set_item("score_std", s.score.std())?;
    d.set_item("mean_text_bytes", s.text_bytes.mean_or_nan())?;
    d.set_item("pass_rate", s.pass_rate())?;
    d.set_item("verification_rate", s.verification_rate())?;
    d.set_item("zero_std_groups", s.zero_std_groups)?;
    d.set_item("zero_std_fraction", s.zero_std_fraction())?;
    d.set_item("small_groups", s.small_groups)?;
    d.set_item("mean_group_std", s.group_std.mean_or_nan())?;
    let adv = PyDict::new(py);
    for (name, m) in &s.advantages {
        let x = PyDict::new(py);
        x.set_item("mean", m.mean_or_nan())?;
        x.set_item("std", m.std())?;
        x.set_item("var", m.variance())?;
        adv.set_item(*name, x)?;
    }
    d.set_item("advantages", adv)?;
    Ok(d)
}

/// Accumulates `grpo-fast stats` figures batch by batch.
#[pyclass(module = "grpo_fast._native", name = "StatsAccumulator")]
pub struct StatsAccumulator {
    inner: Mutex<Summary>,
    eps: f64,
}

#[pymethods]
impl StatsAccumulator {
    #[new]
    #[pyo3(signature = (eps=advantage::DEFAULT_EPS))]
    fn new(eps: f64) -> Self {
        StatsAccumulator {
            inner: Mutex::new(Summary::default()),
            eps,
        }
    }

    fn add(
        &self,
        py: Python<'_>,
        scores: PyReadonlyArray1<'_, f64>,
        offsets: PyReadonlyArray1<'_, i64>,
        correct: PyReadonlyArray1<'_, i8>,
        text_bytes: PyReadonlyArray1<'_, u32>,
    ) -> PyResult<()> {
        let s = scores.as_slice()?;
        same_len("correct", correct.len()?, s.len())?;
        same_len("text_bytes", text_bytes.len()?, s.len())?;
        let cols = grpo_core::GroupColumns {
            scores: s.to_vec(),
            correct: correct.as_slice()?.to_vec(),
            text_bytes: text_bytes.as_slice()?.to_vec(),
            offsets: offsets.as_slice()?.to_vec(),
            ..Default::default()
        };
        let eps = self.eps;
        py.detach(|| {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.add(&cols, eps)
        })
        .py_err()
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        summary_dict(py, &inner)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compute_advantages, m)?)?;
    m.add_function(wrap_pyfunction!(group_stats, m)?)?;
    m.add_class::<StatsAccumulator>()?;
    Ok(())
}
