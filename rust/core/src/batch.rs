//! Columnar group batches: what crosses into Python and what the estimators consume.
use serde_json::Value;

use crate::record::ResponseStat;

/// Groups in CSR layout: group `g` owns responses `offsets[g]..offsets[g + 1]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupColumns {
    pub scores: Vec<f64>,
    pub correct: Vec<i8>,
    pub text_bytes: Vec<u32>,
    pub offsets: Vec<i64>,
    pub prompts: Vec<String>,
    /// Raw JSON of each group's id (or flat group key), when it had one.
    pub ids: Vec<Option<String>>,
    /// 1-based line where each group's record (or its first flat line) was read.
    pub lines: Vec<u64>,
}

impl GroupColumns {
    pub fn new() -> Self {
        GroupColumns {
            offsets: vec![0],
            ..Default::default()
        }
    }

    pub fn num_groups(&self) -> usize {
        self.prompts.len()
    }

    pub fn num_responses(&self) -> usize {
        self.scores.len()
    }

    pub fn push_group(
        &mut self,
        prompt: String,
        id: Option<String>,
        line: u64,
        responses: &[ResponseStat],
    ) {
        for r in responses {
            self.scores.push(r.score);
            self.correct.push(r.correct);
            self.text_bytes.push(r.text_bytes);
        }
        self.offsets.push(self.scores.len() as i64);
        self.prompts.push(prompt);
        self.ids.push(id);
        self.lines.push(line);
    }
}

/// One batch from a reader: the columns, the full records when asked for, and progress.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub columns: GroupColumns,
    /// The records themselves (grouped form), in the same order as the groups.
    pub records: Option<Vec<Value>>,
    /// Raw (compressed) bytes consumed from the input so far, and its size when known.
    pub bytes_read: u64,
    pub bytes_total: Option<u64>,
}
