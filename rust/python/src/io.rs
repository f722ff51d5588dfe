//! Reading and writing rollout files from Python: batches come back as NumPy columns plus lists
//! of strings (and dicts only when the caller asks for whole records).
use std::sync::Mutex;

use grpo_core::{
    lines::DEFAULT_MAX_LINE_BYTES, reader::ReadReport, write_advantages, Batch, ErrorPolicy,
    GroupReader, Method, ReadOptions, RecordRules, RecordWriter, ScoreRange, Summary,
};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{from_python, to_python};
use crate::errors::{config, IntoPyResult};
use crate::stats::summary_dict;

#[allow(clippy::too_many_arguments)]
fn read_options(
    on_error: &str,
    rejects: Option<String>,
    score_range: Option<(f64, f64)>,
    group_key: Option<String>,
    batch_responses: i64,
    keep_records: bool,
    mmap: bool,
    max_line_bytes: i64,
) -> PyResult<ReadOptions> {
    // Signed here, so that a negative count is a ConfigError naming it, not an OverflowError.
    if batch_responses < 1 {
        return Err(config(format!(
            "batch_size must be a positive number of responses, got {batch_responses}"
        )));
    }
    if max_line_bytes < 1 {
        return Err(config(format!(
            "max_line_bytes must be a positive number of bytes, got {max_line_bytes}"
        )));
    }
    if let Some((lo, hi)) = score_range {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(config(format!(
                "score_range must satisfy min <= max, got ({lo}, {hi})"
            )));
        }
    }
    Ok(ReadOptions {
        rules: RecordRules {
            score_range: score_range.map(|(min, max)| ScoreRange { min, max }),
            group_key,
        },
        policy: on_error.parse::<ErrorPolicy>().py_err()?,
        rejects_path: rejects,
        batch_responses: usize::try_from(batch_responses).unwrap_or(usize::MAX),
        keep_records,
        mmap,
        max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(usize::MAX),
        ..Default::default()
    })
}

pub fn report_dict<'py>(py: Python<'py>, r: &ReadReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("lines", r.lines)?;
    d.set_item("blank_lines", r.blank_lines)?;
    d.set_item("records", r.records)?;
    d.set_item("flat_records", r.flat_records)?;
    d.set_item("rejected", r.rejected)?;
    let rejects = PyList::empty(py);
    for e in &r.first_rejects {
        let x = PyDict::new(py);
        x.set_item("file", &e.file)?;
        x.set_item("line", e.line)?;
        x.set_item("field", &e.field)?;
        x.set_item("error", &e.message)?;
        rejects.append(x)?;
    }
    d.set_item("first_rejects", rejects)?;
    Ok(d)
}

fn batch_dict<'py>(py: Python<'py>, b: Batch) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let c = b.columns;
    d.set_item("scores", PyArray1::from_vec(py, c.scores))?;
    d.set_item("correct", PyArray1::from_vec(py, c.correct))?;
    d.set_item("text_bytes", PyArray1::from_vec(py, c.text_bytes))?;
    d.set_item("offsets", PyArray1::from_vec(py, c.offsets))?;
    d.set_item("lines", PyArray1::from_vec(py, c.lines))?;
    d.set_item("prompts", Bound::new(py, StrList { col: c.prompts })?)?;
    d.set_item("ids", Bound::new(py, StrList { col: c.ids })?)?;
    match b.records {
        Some(records) => {
            let items = records
                .iter()
                .map(|r| to_python(py, r))
                .collect::<PyResult<Vec<_>>>()?;
            d.set_item("records", PyList::new(py, items)?)?;
        }
        None => d.set_item("records", py.None())?,
    }
    d.set_item("bytes_read", b.bytes_read)?;
    d.set_item("bytes_total", b.bytes_total)?;
    Ok(d)
}

/// A batch's strings (prompts or ids), kept in the reader's buffers until Python asks for them:
/// `GroupBatch` turns them into a `list` on first access, so a caller that only needs the
/// numeric columns does not pay for a Python string per group.
#[pyclass(module = "grpo_fast._native", frozen)]
pub struct StrList {
    col: grpo_core::batch::StrColumn,
}

#[pymethods]
impl StrList {
    fn __len__(&self) -> usize {
        self.col.len()
    }

    /// The strings as a new list (None where a group had no id).
    fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.col.iter())
    }
}

/// Iterator over the batches of one file; each item is a dict of columns.
#[pyclass(module = "grpo_fast._native")]
pub struct BatchReader {
    inner: Mutex<GroupReader>,
}

#[pymethods]
impl BatchReader {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (path, *, on_error="strict", rejects=None, score_range=Some((0.0, 1.0)), group_key=None, batch_responses=65536, keep_records=false, mmap=true, max_line_bytes=DEFAULT_MAX_LINE_BYTES as i64))]
    fn new(
        py: Python<'_>,
        path: String,
        on_error: &str,
        rejects: Option<String>,
        score_range: Option<(f64, f64)>,
        group_key: Option<String>,
        batch_responses: i64,
        keep_records: bool,
        mmap: bool,
        max_line_bytes: i64,
    ) -> PyResult<Self> {
        let opts = read_options(
            on_error,
            rejects,
            score_range,
            group_key,
            batch_responses,
            keep_records,
            mmap,
            max_line_bytes,
        )?;
        crate::threads::ready()?;
        let reader = py.detach(|| GroupReader::open(&path, opts)).py_err()?;
        Ok(BatchReader {
            inner: Mutex::new(reader),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let next = py.detach(|| {
            let mut reader = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            reader.next()
        });
        match next {
            None => Ok(None),
            Some(batch) => Ok(Some(batch_dict(py, batch.py_err()?)?)),
        }
    }

    /// Counters so far: lines, records, blank lines, rejects (with the first few reasons).
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let reader = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        report_dict(py, reader.report())
    }
}

/// Writes records (dicts or pre-serialised JSON strings) as JSONL; compression by extension.
#[pyclass(module = "grpo_fast._native")]
pub struct JsonlWriter {
    inner: Mutex<Option<RecordWriter>>,
}

impl JsonlWriter {
    fn with<T>(&self, f: impl FnOnce(&mut RecordWriter) -> grpo_core::Result<T>) -> PyResult<T> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(w) => f(w).py_err(),
            None => Err(config("writer is closed")),
        }
    }
}

#[pymethods]
impl JsonlWriter {
    #[new]
    fn new(path: String) -> PyResult<Self> {
        crate::threads::ready()?;
        Ok(JsonlWriter {
            inner: Mutex::new(Some(RecordWriter::create(&path).py_err()?)),
        })
    }

    /// Converts the dicts under the GIL, then serialises and writes without it.
    fn write_records(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut values = Vec::new();
        for (i, r) in records.try_iter()?.enumerate() {
            let mut path = format!("records[{i}]");
            values.push(from_python(&r?, &mut path)?);
        }
        py.detach(|| self.with(|w| w.write_values(&values)))
    }

    fn write_lines(&self, py: Python<'_>, lines: Vec<String>) -> PyResult<()> {
        py.detach(|| {
            self.with(|w| {
                for l in &lines {
                    w.write_line(l.as_bytes())?;
                }
                Ok(())
            })
        })
    }

    #[getter]
    fn records_written(&self) -> PyResult<u64> {
        self.with(|w| Ok(w.records))
    }

    /// Puts the file in place (written to a temporary sibling until now).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(mut w) => py.detach(|| w.finish()).py_err(),
            None => Ok(()),
        }
    }

    /// Gives up: the temporary file is removed and the path left as it was.
    fn abort(&self) {
        let taken = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut w) = taken {
            w.abort();
        }
    }
}

/// `grpo-fast advantages` in one call: read, add `advantage` to each response, write.
#[pyfunction]
#[pyo3(signature = (input, output, *, method="grpo", eps=grpo_core::advantage::DEFAULT_EPS, on_error="strict", rejects=None, score_range=Some((0.0, 1.0)), group_key=None, max_line_bytes=DEFAULT_MAX_LINE_BYTES as i64))]
#[allow(clippy::too_many_arguments)]
pub fn write_advantages_file<'py>(
    py: Python<'py>,
    input: String,
    output: String,
    method: &str,
    eps: f64,
    on_error: &str,
    rejects: Option<String>,
    score_range: Option<(f64, f64)>,
    group_key: Option<String>,
    max_line_bytes: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let method: Method = method.parse().py_err()?;
    crate::threads::ready()?;
    let opts = read_options(
        on_error,
        rejects,
        score_range,
        group_key,
        65_536,
        true,
        true,
        max_line_bytes,
    )?;
    let (report, summary): (ReadReport, Summary) = py
        .detach(|| write_advantages(&input, &output, method, eps, opts))
        .py_err()?;
    let d = PyDict::new(py);
    d.set_item("report", report_dict(py, &report)?)?;
    d.set_item("summary", summary_dict(py, &summary)?)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BatchReader>()?;
    m.add_class::<StrList>()?;
    m.add_class::<JsonlWriter>()?;
    m.add_function(wrap_pyfunction!(write_advantages_file, m)?)?;
    Ok(())
}
