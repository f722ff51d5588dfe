//! `grpo_fast._native`: thin PyO3 wrappers over the Rust crates. No logic lives here: each
//! module converts types, releases the GIL around real work and maps errors.
use pyo3::prelude::*;

mod convert;
mod errors;
mod io;
mod math;
mod pattern;
mod sandboxd;
mod stats;
mod threads;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    io::register(m)?;
    stats::register(m)?;
    math::register(m)?;
    pattern::register(m)?;
    sandboxd::register(m)?;
    Ok(())
}
