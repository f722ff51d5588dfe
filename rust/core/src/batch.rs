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

/// A column of optional strings stored back to back in a few buffers (one allocation per
/// chunk of input rather than one per string). Appending a column moves its buffers over
/// without copying the text, so a batch made of many chunks costs no extra pass.
#[derive(Debug, Clone, Default)]
pub struct StrColumn {
    parts: Vec<StrPart>,
    len: usize,
}

/// Entry `i` of a part is `text[ends[i - 1]..ends[i]]`, or None where `missing` says so
/// (only allocated once some entry is missing).
#[derive(Debug, Clone, Default)]
struct StrPart {
    text: String,
    ends: Vec<usize>,
    missing: Vec<bool>,
}

impl StrPart {
    fn get(&self, i: usize) -> Option<&str> {
        if self.missing.get(i) == Some(&true) {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..self.ends[i]])
    }
}

impl StrColumn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, s: Option<&str>) {
        if self.parts.is_empty() {
            self.parts.push(StrPart::default());
        }
        let Some(part) = self.parts.last_mut() else {
            return;
        };
        match s {
            Some(s) => {
                part.text.push_str(s);
                if !part.missing.is_empty() {
                    part.missing.push(false);
                }
            }
            None => {
                if part.missing.is_empty() {
                    part.missing.resize(part.ends.len(), false);
                }
                part.missing.push(true);
            }
        }
        part.ends.push(part.text.len());
        self.len += 1;
    }

    pub fn get(&self, mut i: usize) -> Option<&str> {
        for part in &self.parts {
            if i < part.ends.len() {
                return part.get(i);
            }
            i -= part.ends.len();
        }
        None
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        let mut inner = self
            .parts
            .iter()
            .flat_map(|p| (0..p.ends.len()).map(move |i| p.get(i)));
        (0..self.len).map(move |_| inner.next().flatten())
    }

    /// Moves all of `other`'s entries to the end of this column (its buffers, not a copy).
    pub fn append(&mut self, other: StrColumn) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.len += other.len;
        self.parts
            .extend(other.parts.into_iter().filter(|p| !p.ends.is_empty()));
    }
}

impl PartialEq for StrColumn {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
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
        assert_eq!(
            (a.len(), a.get(2), a.get(3), a.get(5)),
            (5, None, Some("c"), None)
        );
    }
}
