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
    pub prompts: StrColumn,
    /// Raw JSON of each group's id (or flat group key), when it had one.
    pub ids: StrColumn,
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
            self.push_response(*r);
        }
        self.end_group(&prompt, id.as_deref(), line);
    }

    /// Adds one response to the group being built; `end_group` closes it.
    #[inline]
    pub fn push_response(&mut self, r: ResponseStat) {
        self.scores.push(r.score);
        self.correct.push(r.correct);
        self.text_bytes.push(r.text_bytes);
    }

    /// Closes the group whose responses were pushed since the previous group.
    pub fn end_group(&mut self, prompt: &str, id: Option<&str>, line: u64) {
        self.offsets.push(self.scores.len() as i64);
        self.prompts.push(Some(prompt));
        self.ids.push(id);
        self.lines.push(line);
    }

    /// Drops responses pushed after the first `responses` (an unfinished group).
    pub fn truncate_responses(&mut self, responses: usize) {
        self.scores.truncate(responses);
        self.correct.truncate(responses);
        self.text_bytes.truncate(responses);
    }
}

/// A column of optional strings stored back to back in one buffer (one allocation per column
/// rather than one per string): entry `i` is `text[ends[i - 1]..ends[i]]`, or None where
/// `missing` says so (only allocated once some entry is missing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrColumn {
    text: String,
    ends: Vec<usize>,
    missing: Vec<bool>,
}

impl StrColumn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.text.push_str(s);
                if !self.missing.is_empty() {
                    self.missing.push(false);
                }
            }
            None => {
                if self.missing.is_empty() {
                    self.missing.resize(self.ends.len(), false);
                }
                self.missing.push(true);
            }
        }
        self.ends.push(self.text.len());
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        if self.missing.get(i) == Some(&true) {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..self.ends[i]])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Moves all of `other`'s entries to the end of this column.
    pub fn append(&mut self, other: StrColumn) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let base = self.text.len();
        let n = self.len();
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + base));
        if !other.missing.is_empty() || !self.missing.is_empty() {
            self.missing.resize(n, false);
            if other.missing.is_empty() {
                self.missing.resize(n + other.ends.len(), false);
            } else {
                self.missing.extend(other.missing);
            }
        }
    }
}

impl<'a> FromIterator<Option<&'a str>> for StrColumn {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(iter: I) -> Self {
        let mut c = StrColumn::new();
        for s in iter {
            c.push(s);
        }
        c
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_column_push_get_append() {
        let mut a: StrColumn = [Some("ab"), Some("")].into_iter().collect();
        let b: StrColumn = [None, Some("c")].into_iter().collect();
        let c: StrColumn = [Some("d")].into_iter().collect();
        a.append(b);
        a.append(c);
        let all: Vec<_> = a.iter().collect();
        assert_eq!(all, [Some("ab"), Some(""), None, Some("c"), Some("d")]);
        let direct: StrColumn = all.iter().copied().collect();
        assert_eq!(a, direct);
        let mut empty = StrColumn::new();
        empty.append(a.clone());
        assert_eq!(empty, a);
    }
}
