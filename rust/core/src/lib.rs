//! grpo-core: rollout records, streaming JSONL I/O, group batching, advantage estimators and
//! group statistics. Pure Rust; the Python bindings live in `rust/python`.
