//! `grpo_fast._native`: thin PyO3 wrappers over the Rust crates. No logic lives here: each
//! module converts types, releases the GIL around real work and maps errors.
use pyo3::prelude::*;

mod math;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    math::register(m)?;
    Ok(())
}
