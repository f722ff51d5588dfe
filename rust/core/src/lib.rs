//! grpo-core: rollout records, streaming JSONL I/O, group batching, advantage estimators and
//! group statistics. Pure Rust; the Python bindings live in `rust/python`.
pub mod advantage;
pub mod batch;
pub mod error;
pub mod integers;
pub mod lines;
pub mod reader;
pub mod record;
pub mod skim;
pub mod source;
pub mod stats;
pub mod writer;

pub use advantage::Method;
pub use batch::{Batch, GroupColumns};
pub use error::{DataError, Error, FieldError, Result};
pub use reader::{ErrorPolicy, GroupReader, ReadOptions, ReadReport};
pub use record::{RecordRules, ScoreRange};
pub use stats::Summary;
pub use writer::{write_advantages, RecordWriter};
