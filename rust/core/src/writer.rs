//! Writing records as JSONL (plain, gzip or zstd by extension; `-` for stdout), and the
//! read -> advantages -> write pipeline behind `grpo-fast advantages`.
use serde_json::Value;

use crate::advantage::{self, Method};
use crate::error::{Error, Result};
use crate::integers;
use crate::reader::{ErrorPolicy, GroupReader, ReadOptions, ReadReport};
use crate::source::{open_output, same_file, OutputSink};
use crate::stats::Summary;

pub struct RecordWriter {
    sink: OutputSink,
    buf: Vec<u8>,
    pub records: u64,
}

impl RecordWriter {
    pub fn create(path: &str) -> Result<Self> {
        Ok(RecordWriter {
            sink: open_output(path)?,
            buf: Vec::with_capacity(1 << 16),
            records: 0,
        })
    }

    pub fn write_value(&mut self, value: &Value) -> Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, value)
            .map_err(|e| Error::io(self.sink.path().to_string(), e.into()))?;
        integers::restore(&mut self.buf);
        self.buf.push(b'\n');
        self.sink.write_all(&self.buf)?;
        self.records += 1;
        Ok(())
    }

    /// Serialises `values` in parallel, then writes them in order.
    pub fn write_values(&mut self, values: &[Value]) -> Result<()> {
        use rayon::prelude::*;
        const PER_TASK: usize = 256;
        let encoded: Vec<Vec<u8>> = values
            .par_chunks(PER_TASK)
            .map(|chunk| {
                let mut buf = Vec::with_capacity(chunk.len() * 256);
                for v in chunk {
                    // Serialising a Value cannot fail: keys are strings, numbers finite.
                    let _ = serde_json::to_writer(&mut buf, v);
                    buf.push(b'\n');
                }
                integers::restore(&mut buf);
                buf
            })
            .collect();
        for buf in encoded {
            self.sink.write_all(&buf)?;
        }
        self.records += values.len() as u64;
        Ok(())
    }

    /// Writes one already-serialised JSON object; it must not contain a newline.
    pub fn write_line(&mut self, line: &[u8]) -> Result<()> {
        if memchr::memchr(b'\n', line).is_some() {
            return Err(Error::Config(
                "a JSONL record must not contain a raw newline".into(),
            ));
        }
        self.sink.write_all(line)?;
        self.sink.write_all(b"\n")?;
        self.records += 1;
        Ok(())
    }

    /// Puts the output in place (see `source::open_output`); without it nothing is written.
    pub fn finish(&mut self) -> Result<()> {
        self.sink.finish()
    }

    /// Gives up: the output is left as it was before this writer.
    pub fn abort(&mut self) {
        self.sink.abort();
    }
}

/// Reads `input`, adds `"advantage"` to every response (grouped form out, whatever came in),
/// writes `output`. Returns the read counters and the statistics of what was written.
pub fn write_advantages(
    input: &str,
    output: &str,
    method: Method,
    eps: f64,
    mut opts: ReadOptions,
) -> Result<(ReadReport, Summary)> {
    opts.keep_records = true;
    if let Some(rejects) = &opts.rejects_path {
        if opts.policy == ErrorPolicy::Report && (rejects == output || same_file(rejects, output)) {
            return Err(Error::Config(format!(
                "the rejects file {rejects} is the output file: choose another --rejects path"
            )));
        }
    }
    let mut reader = GroupReader::open(input, opts)?;
    let mut writer = RecordWriter::create(output)?;
    let mut summary = Summary::default();
    for batch in reader.by_ref() {
        let batch = batch?;
        let cols = &batch.columns;
        let adv = advantage::compute(&cols.scores, &cols.offsets, method, eps)?;
        summary.add(cols, eps)?;
        let mut records = batch.records.unwrap_or_default();
        for (g, record) in records.iter_mut().enumerate() {
            let start = cols.offsets[g] as usize;
            if let Some(Value::Array(responses)) = record.get_mut("responses") {
                for (k, r) in responses.iter_mut().enumerate() {
                    if let Value::Object(obj) = r {
                        obj.insert("advantage".into(), Value::from(adv.values[start + k]));
                    }
                }
            }
        }
        writer.write_values(&records)?;
    }
    writer.finish()?;
    Ok((reader.report().clone(), summary))
}
