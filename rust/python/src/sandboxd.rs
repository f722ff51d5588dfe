//! The sandbox daemon compiled into the extension, so `pip install` ships `grpo-sandboxd`
//! (console script) without a separate binary.
use pyo3::prelude::*;

/// Runs the daemon with `argv` (argv[0] is the program name) until it shuts down; returns its
/// exit status. The GIL is released for the daemon's whole life.
#[pyfunction]
fn sandboxd_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| grpo_sandbox::daemon_main(argv))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sandboxd_main, m)?)
}
