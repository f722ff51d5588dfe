//! A count of the bytes and tokens the extractor visits, so tests can check that its work is
//! linear in its input (a megabyte of `\boxed{` must cost about a megabyte of steps) without
//! timing anything. One thread-local add per scan; nothing else.

use std::cell::Cell;

thread_local! {
    static VISITED: Cell<u64> = const { Cell::new(0) };
}

/// Record `n` steps of work on this thread.
pub(crate) fn add(n: usize) {
    VISITED.with(|v| v.set(v.get().saturating_add(n as u64)));
}

/// Run `f` and return its result with the steps of extraction work it did on this thread.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = VISITED.with(Cell::get);
    let out = f();
    (out, VISITED.with(Cell::get) - before)
}
