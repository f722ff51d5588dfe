//! Maps core errors onto the Python `grpo_fast.errors` hierarchy, keeping file, line and field.
use grpo_core::Error;
use pyo3::prelude::*;

pub(crate) fn make(
    py: Python<'_>,
    class: &str,
    args: impl for<'a> FnOnce(Python<'a>, Bound<'a, PyAny>) -> PyResult<Bound<'a, PyAny>>,
) -> PyErr {
    let built = py
        .import("grpo_fast.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|cls| args(py, cls));
    match built {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| match err {
        Error::Data(d) => {
            let msg = d.to_string();
            let field = (!d.field.is_empty()).then_some(d.field);
            make(py, "DataError", |_, cls| {
                cls.call1((msg, d.file, d.line, field))
            })
        }
        Error::Io { file, source } => {
            let msg = format!("{file}: {source}");
            make(py, "GrpoIOError", |_, cls| cls.call1((msg, file)))
        }
        Error::Config(msg) => make(py, "ConfigError", |_, cls| cls.call1((msg,))),
    })
}

pub fn config(msg: impl Into<String>) -> PyErr {
    to_py(Error::Config(msg.into()))
}

pub trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
