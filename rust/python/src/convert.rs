//! JSON values <-> Python objects, for the record-level API (`iter_records`, `RecordWriter`).
//! Integers beyond 64 bits cross as Python `int`s both ways (`grpo_core::integers` keeps them
//! exactly), and records nest no deeper than the reader reads back (`MAX_NESTING`).
use grpo_core::integers;
use grpo_core::skim::MAX_NESTING;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::errors::config;

pub fn to_python<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => match integers::as_big_int(v) {
            Some(digits) => py.get_type::<PyInt>().call1((digits,))?,
            None => PyString::new(py, s).into_any(),
        },
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| to_python(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_python(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// `path` names where in the record a bad value sits, for the error message.
pub fn from_python(obj: &Bound<'_, PyAny>, path: &mut String) -> PyResult<Value> {
    from_python_at(obj, path, 1)
}

/// `depth`: the level `obj` has if it is a dict or a list (the record itself is level 1).
fn from_python_at(obj: &Bound<'_, PyAny>, path: &mut String, depth: usize) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str()?;
        if integers::is_reserved(s) {
            return Err(config(format!("{path}: {}", integers::reserved_message())));
        }
        return Ok(Value::String(s.to_string()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        // Beyond 64 bits: kept exactly, as Python's json writes it.
        let digits = obj.str()?.to_str()?.to_string();
        return Ok(integers::marker(&digits));
    }
    // Integers that are not `int`s (NumPy's int64, uint64, ...) before floats: a float
    // conversion would write 7 as 7.0 and round 2**62 + 1.
    if !obj.is_instance_of::<PyFloat>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
    }
    if let Ok(f) = obj.extract::<f64>() {
        return Number::from_f64(f).map(Value::Number).ok_or_else(|| {
            config(format!(
                "{path}: non-finite float {f} cannot be written as JSON"
            ))
        });
    }
    let container = obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>();
    if container && depth > MAX_NESTING {
        // Deeper than any reader accepts back (and a guard against unbounded recursion here).
        return Err(config(format!(
            "{path}: nested deeper than {MAX_NESTING} levels of lists and dicts (the limit; the \
             record itself is level 1)"
        )));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("{path}: dict keys must be str")))?
                .to_str()?
                .to_string();
            if integers::is_reserved(&key) {
                return Err(config(format!("{path}: {}", integers::reserved_message())));
            }
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            let value = from_python_at(&v, path, depth + 1)?;
            path.truncate(len);
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            out.push(from_python_at(&item?, path, depth + 1)?);
            path.truncate(len);
        }
        return Ok(Value::Array(out));
    }
    Err(PyTypeError::new_err(format!(
        "{path}: cannot write a {} as JSON",
        obj.get_type().name()?
    )))
}
