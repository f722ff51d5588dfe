//! The streaming, parallel reader: bytes -> lines -> validated records -> columnar batches.
//!
//! A background thread reads and decompresses whole-line chunks and hands each to a rayon job
//! to parse; results are consumed in file order while later chunks are still being parsed (and
//! while the caller works on a batch), so memory is bounded by a few chunks and one batch,
//! never by the file size. Chunks are numbered only as they are consumed: a chunk's lines count
//! from 1 while it is parsed, and consuming adds the lines of the chunks before it.
//!
//! Flat (one completion per line) records are grouped by key; their groups are held until the
//! end of the input, since a key may reappear anywhere.
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use serde_json::{Map, Value};

use crate::batch::{Batch, GroupColumns};
use crate::error::{DataError, Error, FieldError, Result};
use crate::lines::{
    Chunk, ChunkBytes, Chunker, MapChunker, CHUNK_BYTES, DEFAULT_MAX_LINE_BYTES, KEPT_LINE_BYTES,
};
use crate::record::{self, FlatView, LineView, Parsed, RecordRules, ResponseStat};
use crate::source::{open_input_with, open_output_with, same_file, OutputSink};

/// What to do with a bad line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// Stop at the first bad line with an error naming file, line and field.
    #[default]
    Strict,
    /// Keep going; every bad line goes to the rejects file with its reason.
    Report,
}

impl std::str::FromStr for ErrorPolicy {
    type Err = Error;
    fn from_str(s: &str) -> std::result::Result<Self, Error> {
        match s {
            "strict" => Ok(ErrorPolicy::Strict),
            "report" => Ok(ErrorPolicy::Report),
            _ => Err(Error::Config(format!(
                "unknown error policy {s:?}; expected strict or report"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub rules: RecordRules,
    pub policy: ErrorPolicy,
    /// Where rejected lines go under `Report`; required there.
    pub rejects_path: Option<String>,
    /// A batch is emitted once it holds at least this many responses.
    pub batch_responses: usize,
    /// Keep each record as a JSON value (for rewriting files); otherwise only the columns.
    pub keep_records: bool,
    pub chunk_bytes: usize,
    /// Memory-map plain files instead of copying them in (see `source::open_input_with`).
    pub mmap: bool,
    /// Longest line accepted, in bytes without the line ending; a longer one is a bad line
    /// (and is never held in memory whole).
    pub max_line_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            rules: RecordRules {
                score_range: Some(Default::default()),
                group_key: None,
            },
            policy: ErrorPolicy::Strict,
            rejects_path: None,
            batch_responses: 65_536,
            keep_records: false,
            chunk_bytes: CHUNK_BYTES,
            mmap: true,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Counters over the whole read so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadReport {
    pub lines: u64,
    pub blank_lines: u64,
    pub records: u64,
    pub flat_records: u64,
    pub rejected: u64,
    /// The first few rejects, for a summary screen (all of them are in the rejects file).
    pub first_rejects: Vec<DataError>,
}

const KEPT_REJECTS: usize = 20;

/// What parsing one chunk produced, in line order: its grouped records already in columns
/// (built on the worker thread), and the lines that need the main thread (rejects, flat).
struct ParsedChunk {
    columns: GroupColumns,
    records: Vec<Value>,
    events: Vec<(u64, Event)>,
    blank_lines: u64,
    /// Lines in the chunk. Line numbers above (events, `columns.lines`) count from 1 within
    /// the chunk; `consume` adds the lines of the chunks before.
    lines: u64,
    /// Raw input bytes consumed up to the end of this chunk.
    raw_pos: u64,
}

/// One entry of the ordered channel from the reader thread: a chunk's parse result (filled in
/// by a pool job), or the read error that ended the input.
enum Item {
    Parsed(Receiver<ParsedChunk>),
    Failed(std::io::Error),
}

/// Hands a parsed chunk's memory back: a read buffer goes back to the reader thread for reuse;
/// a mapped range's pages are dropped from our mapping.
fn release_chunk(chunk: Chunk, buffers: &std::sync::mpsc::Sender<Vec<u8>>, chunk_bytes: usize) {
    match chunk.bytes {
        // Oversized buffers (a very long line) are freed rather than kept around.
        ChunkBytes::Owned { buf, .. } => {
            if buf.capacity() <= 2 * chunk_bytes {
                let _ = buffers.send(buf);
            }
        }
        // Parsed chunks hold no references into the map. Dropping their pages from our
        // mapping keeps resident memory flat in the file size (they stay in the page cache;
        // a later touch would simply read them again).
        ChunkBytes::Mapped(map, range) => {
            // SAFETY: a read-only file mapping; MADV_DONTNEED only makes the next access fault
            // the file's pages back in.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    range.start,
                    range.len(),
                )
            };
        }
    }
}

/// Waits for a parse job's result. On a pool thread (a caller inside rayon), runs other pool
/// jobs while waiting, so a one-thread pool cannot deadlock on its own queue.
fn wait_parsed(slot: Receiver<ParsedChunk>) -> Option<ParsedChunk> {
    if rayon::current_thread_index().is_none() {
        return slot.recv().ok();
    }
    loop {
        match slot.try_recv() {
            Ok(p) => return Some(p),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    std::thread::yield_now();
                }
            }
        }
    }
}

enum Event {
    Bad(FieldError, RawLine),
    Flat(FlatView, Option<Value>, RawLine),
}

/// What a rejects entry keeps of a line: its first `KEPT_LINE_BYTES` bytes and its length.
/// The rejects file is a report that points at the input (file and line), which keeps the
/// whole line; an unbounded copy let one inflated line turn into hundreds of megabytes there.
struct RawLine {
    kept: Vec<u8>,
    len: u64,
}

impl RawLine {
    fn of(line: &[u8]) -> Self {
        RawLine {
            kept: line[..line.len().min(KEPT_LINE_BYTES)].to_vec(),
            len: line.len() as u64,
        }
    }
}

struct FlatGroup {
    prompt: String,
    id: Option<String>,
    key_field: Option<String>,
    key_value: Option<Value>,
    line: u64,
    responses: Vec<ResponseStat>,
    records: Vec<Value>,
}

/// Iterator over the batches of one input.
pub struct GroupReader {
    file: String,
    opts: ReadOptions,
    chunks: Option<Receiver<Item>>,
    thread: Option<JoinHandle<()>>,
    raw_pos: std::sync::Arc<std::sync::atomic::AtomicU64>,
    raw_len: Option<u64>,
    /// Raw bytes behind the chunks consumed so far.
    bytes_read: u64,
    current: GroupColumns,
    current_records: Vec<Value>,
    ready: VecDeque<Batch>,
    flat: Vec<FlatGroup>,
    flat_index: HashMap<String, usize>,
    rejects: Option<OutputSink>,
    report: ReadReport,
    done: bool,
    failed: bool,
}

impl GroupReader {
    pub fn open(path: &str, opts: ReadOptions) -> Result<Self> {
        if opts.policy == ErrorPolicy::Report && opts.rejects_path.is_none() {
            return Err(Error::Config(
                "the `report` error policy needs a rejects file to write bad lines to".into(),
            ));
        }
        let file = if path == "-" {
            "<stdin>".to_string()
        } else {
            path.to_string()
        };
        let input = open_input_with(path, opts.mmap)?;
        let rejects = match (&opts.policy, &opts.rejects_path) {
            (ErrorPolicy::Report, Some(p)) => {
                if same_file(p, path) {
                    return Err(Error::Config(format!(
                        "the rejects file {p} is the input file: choose another --rejects path"
                    )));
                }
                // A report of the lines read so far is worth keeping even if reading stops.
                Some(open_output_with(p, true)?)
            }
            _ => None,
        };
        // Parsing runs in the rayon pool ahead of consumption: the reader thread cuts chunks,
        // spawns one parse job per chunk and sends the job's result slot down an ordered,
        // bounded channel, so results are consumed in file order while later chunks are being
        // parsed (and while the caller converts a batch). In flight: at most `ahead` + 2 chunks.
        let ahead = rayon::current_num_threads().max(1) * 2 + 2;
        let (tx, rx) = sync_channel::<Item>(ahead);
        let (pool_tx, pool_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let chunk_bytes = opts.chunk_bytes;
        let max_line = opts.max_line_bytes;
        let reader = input.reader;
        let mapped = input.mapped;
        let map_pos = input.raw_pos.clone();
        let job_opts = std::sync::Arc::new(opts.clone());
        let thread = std::thread::Builder::new()
            .name("grpo-read".into())
            .spawn(move || {
                let spawn_parse = |chunk: Chunk, raw_pos: u64| {
                    let (slot_tx, slot_rx) = sync_channel(1);
                    let opts = job_opts.clone();
                    let buffers = pool_tx.clone();
                    rayon::spawn(move || {
                        // A panic drops `slot_tx`; the consumer reports it as an error.
                        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            let mut parsed = Self::parse_chunk(&chunk, &opts);
                            parsed.raw_pos = raw_pos;
                            parsed
                        }));
                        release_chunk(chunk, &buffers, opts.chunk_bytes);
                        if let Ok(parsed) = parsed {
                            let _ = slot_tx.send(parsed);
                        }
                    });
                    Item::Parsed(slot_rx)
                };
                if let Some(map) = mapped {
                    let mut chunker = MapChunker::with_max_line(map, chunk_bytes, max_line);
                    while let Some(c) = chunker.next_chunk() {
                        let pos = chunker.pos() as u64;
                        map_pos.store(pos, std::sync::atomic::Ordering::Relaxed);
                        if tx.send(spawn_parse(c, pos)).is_err() {
                            break;
                        }
                    }
                    return;
                }
                let mut chunker = Chunker::with_limits(reader, chunk_bytes, max_line);
                loop {
                    let buf = pool_rx.try_recv().unwrap_or_default();
                    let item = match chunker.next_chunk_in(buf) {
                        Ok(Some(c)) => {
                            spawn_parse(c, map_pos.load(std::sync::atomic::Ordering::Relaxed))
                        }
                        Ok(None) => break,
                        Err(e) => Item::Failed(e),
                    };
                    let stop = matches!(item, Item::Failed(_));
                    if tx.send(item).is_err() || stop {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io(&file, e))?;
        Ok(GroupReader {
            file,
            opts,
            chunks: Some(rx),
            thread: Some(thread),
            raw_pos: input.raw_pos,
            raw_len: input.raw_len,
            bytes_read: 0,
            current: GroupColumns::new(),
            current_records: Vec::new(),
            ready: VecDeque::new(),
            flat: Vec::new(),
            flat_index: HashMap::new(),
            rejects,
            report: ReadReport::default(),
            done: false,
            failed: false,
        })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// Reads everything into one batch (convenient for small files and tests).
    pub fn read_all(mut self) -> Result<(Batch, ReadReport)> {
        let mut all = Batch {
            columns: GroupColumns::new(),
            records: self.opts.keep_records.then(Vec::new),
            bytes_read: 0,
            bytes_total: self.raw_len,
        };
        for batch in self.by_ref() {
            let batch = batch?;
            append_columns(&mut all.columns, batch.columns);
            if let (Some(dst), Some(src)) = (all.records.as_mut(), batch.records) {
                dst.extend(src);
            }
            all.bytes_read = batch.bytes_read;
        }
        Ok((all, self.report.clone()))
    }

    fn parse_chunk(chunk: &Chunk, opts: &ReadOptions) -> ParsedChunk {
        let mut out = ParsedChunk {
            columns: GroupColumns::new(),
            records: Vec::new(),
            events: Vec::new(),
            blank_lines: 0,
            lines: 0,
            raw_pos: 0,
        };
        if let Some(len) = chunk.oversized {
            out.lines = 1;
            // The kept bytes may run into the line ending when the whole line fits in them.
            let text = chunk.text();
            let raw = RawLine {
                kept: text[..text.len().min(usize::try_from(len).unwrap_or(usize::MAX))].to_vec(),
                len,
            };
            let e = record::line_too_long(len, opts.max_line_bytes);
            out.events.push((1, Event::Bad(e, raw)));
            return out;
        }
        let max_line = opts.max_line_bytes;
        let mut scratch = Vec::new();
        let mut rest = chunk.text();
        let mut n = 0;
        while !rest.is_empty() {
            n += 1;
            out.lines = n;
            // The common case: the skimmer reads the line and finds its end in one pass.
            if !opts.keep_records && rest[0] == b'{' {
                if let Some((parsed, len)) = record::parse_into_prefix(
                    rest,
                    &opts.rules,
                    &mut out.columns,
                    n,
                    &mut scratch,
                    max_line,
                ) {
                    let line = record::strip_eol(&rest[..len]);
                    rest = &rest[len..];
                    match parsed {
                        Ok(Parsed::Pushed) => {}
                        Ok(Parsed::View(LineView::Group(g))) => {
                            out.columns.push_group(g.prompt, g.id, n, &g.responses)
                        }
                        Ok(Parsed::View(LineView::Flat(f))) => out
                            .events
                            .push((n, Event::Flat(f, None, RawLine::of(line)))),
                        Err(e) => out.events.push((n, Event::Bad(e, RawLine::of(line)))),
                    }
                    continue;
                }
            }
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                out.blank_lines += 1;
                continue;
            }
            let parsed = if line.len() > max_line {
                Err(record::line_too_long(line.len() as u64, max_line))
            } else if opts.keep_records {
                record::parse_value(line).and_then(|v| {
                    let view = record::view_of_value(&v, line, &opts.rules)?;
                    Ok((Parsed::View(view), Some(v)))
                })
            } else {
                record::parse_into(line, &opts.rules, &mut out.columns, n, &mut scratch)
                    .map(|p| (p, None))
            };
            match parsed {
                Ok((Parsed::Pushed, _)) => {}
                Ok((Parsed::View(LineView::Group(g)), value)) => {
                    out.columns.push_group(g.prompt, g.id, n, &g.responses);
                    out.records.extend(value);
                }
                Ok((Parsed::View(LineView::Flat(f)), value)) => {
                    out.events
                        .push((n, Event::Flat(f, value, RawLine::of(line))));
                }
                Err(e) => out.events.push((n, Event::Bad(e, RawLine::of(line)))),
            }
        }
        out
    }

    /// Consumes the next parsed chunk; false at the end of the input.
    fn fill(&mut self) -> Result<bool> {
        let Some(rx) = self.chunks.as_ref() else {
            return Ok(false);
        };
        match rx.recv() {
            Ok(Item::Parsed(slot)) => {
                let parsed = wait_parsed(slot)
                    .ok_or_else(|| Error::Config("internal error: a parse job panicked".into()))?;
                self.consume(parsed)?;
                Ok(true)
            }
            Ok(Item::Failed(e)) => {
                let hint = if e.kind() == std::io::ErrorKind::OutOfMemory {
                    ""
                } else {
                    " (corrupt or truncated compressed stream?)"
                };
                Err(Error::io(
                    &self.file,
                    std::io::Error::new(
                        e.kind(),
                        format!("read failed after line {}{hint}: {e}", self.report.lines),
                    ),
                ))
            }
            Err(_) => {
                // The reader thread has dropped its sender: it is done.
                self.chunks = None;
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                Ok(false)
            }
        }
    }

    fn consume(&mut self, mut chunk: ParsedChunk) -> Result<()> {
        let base = self.report.lines;
        self.report.lines += chunk.lines;
        self.report.blank_lines += chunk.blank_lines;
        self.bytes_read = self.bytes_read.max(chunk.raw_pos);
        for (line, event) in chunk.events {
            let line = base + line;
            match event {
                Event::Bad(e, raw) => self.reject(e.at(&self.file, line), &raw)?,
                Event::Flat(f, value, raw) => self.add_flat(line, f, value, &raw)?,
            }
        }
        for line in &mut chunk.columns.lines {
            *line += base;
        }
        self.report.records += chunk.columns.num_groups() as u64;
        append_columns(&mut self.current, chunk.columns);
        self.current_records.extend(chunk.records);
        if self.current.num_responses() >= self.opts.batch_responses {
            self.emit();
        }
        Ok(())
    }

    fn add_flat(
        &mut self,
        line: u64,
        f: FlatView,
        value: Option<Value>,
        raw: &RawLine,
    ) -> Result<()> {
        self.report.flat_records += 1;
        let idx = match self.flat_index.get(&f.key) {
            Some(&i) => {
                if self.flat[i].prompt != f.prompt {
                    let e = FieldError::new(
                        "prompt",
                        format!(
                            "differs from the prompt of group key {} first seen on line {}",
                            f.key, self.flat[i].line
                        ),
                    );
                    return self.reject(e.at(&self.file, line), raw);
                }
                i
            }
            None => {
                self.flat.push(FlatGroup {
                    prompt: f.prompt,
                    id: Some(f.key.clone()),
                    key_field: f.key_field,
                    key_value: None,
                    line,
                    responses: Vec::new(),
                    records: Vec::new(),
                });
                self.flat_index.insert(f.key, self.flat.len() - 1);
                self.flat.len() - 1
            }
        };
        let group = &mut self.flat[idx];
        group.responses.push(f.response);
        if let Some(Value::Object(obj)) = value {
            let (resp, _prompt, key) = record::flat_to_response(obj, group.key_field.as_deref());
            if group.key_value.is_none() {
                group.key_value = key;
            }
            group.records.push(Value::Object(resp));
        }
        Ok(())
    }

    fn reject(&mut self, err: DataError, raw: &RawLine) -> Result<()> {
        if self.opts.policy == ErrorPolicy::Strict {
            return Err(Error::Data(err));
        }
        self.report.rejected += 1;
        if let Some(sink) = self.rejects.as_mut() {
            let mut obj = Map::new();
            obj.insert("file".into(), Value::from(err.file.clone()));
            obj.insert("line".into(), Value::from(err.line));
            obj.insert("field".into(), Value::from(err.field.clone()));
            obj.insert("error".into(), Value::from(err.message.clone()));
            insert_raw(&mut obj, raw);
            let mut bytes = serde_json::to_vec(&Value::Object(obj))
                .map_err(|e| Error::io(sink.path().to_string(), e.into()))?;
            bytes.push(b'\n');
            sink.write_all(&bytes)?;
        }
        if self.report.first_rejects.len() < KEPT_REJECTS {
            self.report.first_rejects.push(err);
        }
        Ok(())
    }

    fn emit(&mut self) {
        if self.current.num_groups() == 0 {
            return;
        }
        let columns = std::mem::replace(&mut self.current, GroupColumns::new());
        let records = self
            .opts
            .keep_records
            .then(|| std::mem::take(&mut self.current_records));
        self.ready.push_back(Batch {
            columns,
            records,
            bytes_read: self.bytes_read,
            bytes_total: self.raw_len,
        });
    }

    fn emit_flat(&mut self) {
        for g in std::mem::take(&mut self.flat) {
            let id = if g.key_field.is_some() { g.id } else { None };
            self.current
                .push_group(g.prompt.clone(), id, g.line, &g.responses);
            if self.opts.keep_records {
                let mut obj = Map::new();
                if let (Some(field), Some(v)) = (&g.key_field, g.key_value) {
                    obj.insert(field.clone(), v);
                }
                obj.insert("prompt".into(), Value::from(g.prompt));
                obj.insert("responses".into(), Value::Array(g.records));
                self.current_records.push(Value::Object(obj));
            }
            if self.current.num_responses() >= self.opts.batch_responses {
                self.emit();
            }
        }
        self.flat_index.clear();
    }

    fn finish(&mut self) -> Result<()> {
        // Everything is consumed: the reader's final count covers the whole input.
        self.bytes_read = self
            .bytes_read
            .max(self.raw_pos.load(std::sync::atomic::Ordering::Relaxed));
        self.emit_flat();
        self.emit();
        if let Some(mut sink) = self.rejects.take() {
            sink.finish()?;
        }
        Ok(())
    }
}

impl Iterator for GroupReader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(Ok(b));
            }
            if self.done || self.failed {
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    if let Err(e) = self.finish() {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
                Err(e) => {
                    self.failed = true;
                    // Release the reader thread: dropping the receiver unblocks its send.
                    self.chunks = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Drop for GroupReader {
    fn drop(&mut self) {
        // Dropping the receiver makes the reader thread's next send fail, so it ends by
        // itself; joining here could block on a stdin that never closes.
        self.chunks = None;
        self.thread.take();
    }
}

/// A rejected line in its rejects entry: `raw` is its text (invalid UTF-8 shown as U+FFFD);
/// where the bytes are not valid UTF-8, `raw_base64` holds them exactly; a line longer than
/// `KEPT_LINE_BYTES` keeps that many bytes (cut at a character boundary when it is text), with
/// `raw_truncated: true` and its full length in `raw_bytes`.
fn insert_raw(obj: &mut Map<String, Value>, raw: &RawLine) {
    let mut kept: &[u8] = &raw.kept;
    let truncated = (kept.len() as u64) < raw.len;
    if truncated {
        // Do not split a character: a cut one would read as invalid UTF-8.
        if let Err(e) = std::str::from_utf8(kept) {
            if e.error_len().is_none() {
                kept = &kept[..e.valid_up_to()];
            }
        }
    }
    match std::str::from_utf8(kept) {
        Ok(text) => {
            obj.insert("raw".into(), Value::from(text));
        }
        Err(_) => {
            obj.insert(
                "raw".into(),
                Value::from(String::from_utf8_lossy(kept).into_owned()),
            );
            obj.insert("raw_base64".into(), Value::from(base64(kept)));
        }
    }
    if truncated {
        obj.insert("raw_truncated".into(), Value::Bool(true));
        obj.insert("raw_bytes".into(), Value::from(raw.len));
    }
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn append_columns(dst: &mut GroupColumns, src: GroupColumns) {
    if dst.num_groups() == 0 && dst.num_responses() == 0 {
        *dst = src; // nothing to keep: take the buffers instead of copying
        return;
    }
    let base = dst.scores.len() as i64;
    dst.scores.extend(src.scores);
    dst.correct.extend(src.correct);
    dst.text_bytes.extend(src.text_bytes);
    dst.offsets
        .extend(src.offsets.iter().skip(1).map(|o| o + base));
    dst.prompts.append(src.prompts);
    dst.ids.append(src.ids);
    dst.lines.extend(src.lines);
}
