//! rayon's global pool, started before the first parallel call. rayon starts it lazily and
//! panics when it cannot (a low RLIMIT_AS: every thread reserves stack and a malloc arena of
//! address space), and it tries only once. Starting it here turns that into a `GrpoIOError`
//! that names the cause and the way out, on this call and every later one.
use pyo3::prelude::*;
use std::sync::OnceLock;

static STARTED: OnceLock<Result<(), String>> = OnceLock::new();

pub fn ready() -> PyResult<()> {
    let started = STARTED.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .build_global()
            .map_err(|e| e.to_string())
    });
    match started {
        Ok(()) => Ok(()),
        Err(cause) => Python::attach(|py| {
            let msg = format!(
                "could not start grpo-fast's worker threads ({cause}); the process is likely \
                 under a memory limit (ulimit -v / RLIMIT_AS) too low for a thread's stack and \
                 allocator arena: raise it, or start fewer threads with RAYON_NUM_THREADS=1"
            );
            Err(crate::errors::make(py, "GrpoIOError", |py, cls| {
                cls.call1((msg, py.None()))
            }))
        }),
    }
}
