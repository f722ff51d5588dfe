//! Splitting a byte stream into chunks of whole lines, so that chunks can be parsed in parallel
//! and results put back in file order. Chunks are not counted here (that would be one more
//! pass over the data): lines are numbered within their chunk while it is parsed, and the
//! consumer, which sees chunks in order, adds the lines of the chunks before. Memory stays bounded by the chunk size and the
//! longest line, never by the file size.
use std::io::{self, Read};

/// Target bytes per chunk; a chunk grows past this only to finish one long line.
pub const CHUNK_BYTES: usize = 4 << 20;

/// The default longest line read (64 MiB, line ending excluded). A longer line is rejected
/// without being held in memory: the chunkers keep its first bytes for the rejects file and
/// skip the rest, so a compressed stream that inflates to one endless line costs bounded memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;

/// How much of an over-long line the chunkers keep (the rejects file keeps no more than this).
pub const KEPT_LINE_BYTES: usize = 64 << 10;

/// Whole lines of a file, ending just after a `\n` or at EOF.
pub struct Chunk {
    pub bytes: ChunkBytes,
    /// True for the chunk holding byte 0 of the file (strips a UTF-8 BOM there).
    pub is_first: bool,
    /// `Some(n)`: the chunk is one line of `n` bytes (without its line ending), longer than the
    /// limit; `bytes` holds only its first `KEPT_LINE_BYTES`.
    pub oversized: Option<u64>,
}

pub enum ChunkBytes {
    /// `buf[..len]`; `buf` may be longer (it is reused without being cleared).
    Owned { buf: Vec<u8>, len: usize },
    /// A range of a memory-mapped file.
    Mapped(std::sync::Arc<memmap2::Mmap>, std::ops::Range<usize>),
}

impl Chunk {
    pub fn data(&self) -> &[u8] {
        match &self.bytes {
            ChunkBytes::Owned { buf, len } => &buf[..*len],
            ChunkBytes::Mapped(map, range) => &map[range.clone()],
        }
    }

    /// The chunk's lines: `data` without a UTF-8 BOM at the very start of the file.
    pub fn text(&self) -> &[u8] {
        let data = self.data();
        if self.is_first {
            data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data)
        } else {
            data
        }
    }
}

/// Cuts a memory-mapped file into `Chunk`s without copying it.
pub struct MapChunker {
    map: std::sync::Arc<memmap2::Mmap>,
    pos: usize,
    chunk_bytes: usize,
    max_line: usize,
}

impl MapChunker {
    pub fn new(map: std::sync::Arc<memmap2::Mmap>, chunk_bytes: usize) -> Self {
        Self::with_max_line(map, chunk_bytes, DEFAULT_MAX_LINE_BYTES)
    }

    /// Lines longer than `max_line` bytes (and than a chunk) come as `oversized` chunks.
    pub fn with_max_line(
        map: std::sync::Arc<memmap2::Mmap>,
        chunk_bytes: usize,
        max_line: usize,
    ) -> Self {
        MapChunker {
            map,
            pos: 0,
            chunk_bytes: chunk_bytes.max(1),
            max_line,
        }
    }

    /// Bytes handed out so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn next_chunk(&mut self) -> Option<Chunk> {
        let data: &[u8] = &self.map;
        if self.pos >= data.len() {
            return None;
        }
        let start = self.pos;
        let want_end = (start + self.chunk_bytes).min(data.len());
        // Cut after the last newline before `want_end`, or after the first one past it when a
        // single line is longer than a chunk.
        let mut oversized = None;
        let end = if want_end == data.len() {
            want_end
        } else {
            match memchr::memrchr(b'\n', &data[start..want_end]) {
                Some(p) => start + p + 1,
                None => {
                    let end = memchr::memchr(b'\n', &data[want_end..])
                        .map_or(data.len(), |p| want_end + p + 1);
                    let len = strip_line_end(&data[start..end]).len();
                    if len > self.max_line {
                        oversized = Some(len as u64);
                    }
                    end
                }
            }
        };
        let kept = match oversized {
            Some(_) => start..start + KEPT_LINE_BYTES.min(end - start),
            None => start..end,
        };
        let chunk = Chunk {
            bytes: ChunkBytes::Mapped(self.map.clone(), kept),
            is_first: start == 0,
            oversized,
        };
        self.pos = end;
        Some(chunk)
    }
}

/// Reads a stream into `Chunk`s.
pub struct Chunker<R> {
    reader: R,
    carry: Vec<u8>,
    started: bool,
    eof: bool,
    chunk_bytes: usize,
    max_line: usize,
}

impl<R: Read> Chunker<R> {
    pub fn new(reader: R) -> Self {
        Self::with_chunk_size(reader, CHUNK_BYTES)
    }

    pub fn with_chunk_size(reader: R, chunk_bytes: usize) -> Self {
        Self::with_limits(reader, chunk_bytes, DEFAULT_MAX_LINE_BYTES)
    }

    /// A line longer than `max_line` bytes (and than a chunk) is not held whole: it comes as
    /// an `oversized` chunk with its first bytes, and the rest is read past.
    pub fn with_limits(reader: R, chunk_bytes: usize, max_line: usize) -> Self {
        Chunker {
            reader,
            carry: Vec::new(),
            started: false,
            eof: false,
            chunk_bytes: chunk_bytes.max(1),
            max_line,
        }
    }

    /// The next chunk, `Ok(None)` at the end. On a read error (a truncated gzip stream, say)
    /// the complete lines before it have already been returned in earlier chunks.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        self.next_chunk_in(Vec::new())
    }

    /// Like `next_chunk`, filling `buf` (cleared first). Passing back the buffers of consumed
    /// chunks avoids a fresh multi-megabyte allocation, and its page faults, per chunk.
    pub fn next_chunk_in(&mut self, mut buf: Vec<u8>) -> io::Result<Option<Chunk>> {
        if self.eof && self.carry.is_empty() {
            return Ok(None);
        }
        // A reused buffer keeps its length, so only growth is ever zero-filled.
        let need = self.chunk_bytes.max(self.carry.len() + 1);
        if buf.len() < need {
            grow(&mut buf, need)?;
        }
        buf[..self.carry.len()].copy_from_slice(&self.carry);
        let mut filled = self.carry.len();
        self.carry.clear();
        let mut scan_from = 0;
        loop {
            if !self.eof && filled < self.chunk_bytes {
                let n = read_into(&mut self.reader, &mut buf[filled..self.chunk_bytes])?;
                if n == 0 {
                    self.eof = true;
                }
                filled += n;
                continue;
            }
            // Enough bytes (or EOF): cut after the last newline.
            match memchr::memrchr(b'\n', &buf[scan_from..filled]) {
                Some(pos) => {
                    let cut = scan_from + pos + 1;
                    self.carry.extend_from_slice(&buf[cut..filled]);
                    filled = cut;
                    break;
                }
                None if self.eof => break,
                // `buf[..filled]` is all one line (no newline in it): past the limit (a `\r`
                // may still end it), stop holding it.
                None if filled > self.max_line.saturating_add(1) => {
                    return self.skip_long_line(buf, filled).map(Some);
                }
                None => {
                    // One line longer than a chunk: keep reading until it ends.
                    scan_from = filled;
                    if buf.len() < filled + self.chunk_bytes {
                        grow(&mut buf, filled + self.chunk_bytes)?;
                    }
                    let n = read_into(
                        &mut self.reader,
                        &mut buf[filled..filled + self.chunk_bytes],
                    )?;
                    if n == 0 {
                        self.eof = true;
                    }
                    filled += n;
                }
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        let chunk = Chunk {
            bytes: ChunkBytes::Owned { buf, len: filled },
            is_first: !self.started,
            oversized: None,
        };
        self.started = true;
        Ok(Some(chunk))
    }

    /// `buf[..filled]` starts a line longer than the limit: keeps its first `KEPT_LINE_BYTES`,
    /// reads past the rest (one chunk-sized window at a time) and keeps what follows its newline.
    fn skip_long_line(&mut self, mut buf: Vec<u8>, filled: usize) -> io::Result<Chunk> {
        let mut kept = KEPT_LINE_BYTES.min(filled);
        let mut len = filled as u64;
        let mut ends_with_cr = buf[filled - 1] == b'\r';
        let window = self.chunk_bytes;
        // Reads land after the kept prefix's full size, then top it up.
        let scratch = KEPT_LINE_BYTES.max(kept);
        buf.truncate(kept);
        grow(&mut buf, scratch + window)?;
        while !self.eof {
            let n = read_into(&mut self.reader, &mut buf[scratch..scratch + window])?;
            if n == 0 {
                self.eof = true;
                break;
            }
            let newline = memchr::memchr(b'\n', &buf[scratch..scratch + n]);
            let line_part = newline.unwrap_or(n);
            let take = (KEPT_LINE_BYTES - kept).min(line_part);
            buf.copy_within(scratch..scratch + take, kept);
            kept += take;
            let read = &buf[scratch..scratch + n];
            len += line_part as u64;
            if line_part > 0 {
                ends_with_cr = read[line_part - 1] == b'\r';
            }
            if let Some(p) = newline {
                self.carry.extend_from_slice(&read[p + 1..]);
                break;
            }
        }
        if ends_with_cr {
            len -= 1;
        }
        let chunk = Chunk {
            bytes: ChunkBytes::Owned { buf, len: kept },
            is_first: !self.started,
            oversized: Some(len),
        };
        self.started = true;
        Ok(chunk)
    }
}

/// A line without its `\n` and one `\r` before it.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Resizes `buf` to `len` bytes, failing with an error (not an abort) when the memory cannot be
/// had, as under a memory limit with a long line.
fn grow(buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    if len > buf.len() {
        buf.try_reserve_exact(len - buf.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "out of memory holding {len} bytes of one line (a lower --max-line-bytes \
                     bounds this)"
                ),
            )
        })?;
        buf.resize(len, 0);
    }
    Ok(())
}

/// Fills `out` from `reader` until it is full or the input ends; returns the bytes read.
fn read_into<R: Read>(reader: &mut R, out: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < out.len() {
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Iterates `(line_number, line_bytes)` over a chunk, numbering its lines from 1, without the `\n`, a trailing `\r`, or a
/// BOM at the very start of the file.
pub fn chunk_lines(chunk: &Chunk) -> impl Iterator<Item = (u64, &[u8])> {
    let mut line_no = 1;
    let mut rest = chunk.text();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let item = (line_no, line);
        line_no += 1;
        Some(item)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(input: &[u8], chunk: usize) -> Vec<(u64, Vec<u8>)> {
        let mut c = Chunker::with_chunk_size(input, chunk);
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            let base = out.len() as u64;
            out.extend(chunk_lines(&ch).map(|(n, l)| (base + n, l.to_vec())));
        }
        out
    }

    #[test]
    fn numbers_lines_across_chunk_boundaries() {
        let input = b"a\nbb\nccc\n\ndddd";
        for size in 1..20 {
            let lines = all_lines(input, size);
            let expect: Vec<(u64, Vec<u8>)> = vec![
                (1, b"a".to_vec()),
                (2, b"bb".to_vec()),
                (3, b"ccc".to_vec()),
                (4, b"".to_vec()),
                (5, b"dddd".to_vec()),
            ];
            assert_eq!(lines, expect, "chunk size {size}");
        }
    }

    #[test]
    fn strips_crlf_and_leading_bom_only() {
        let input = b"\xEF\xBB\xBF{}\r\n\xEF\xBB\xBF{}\r\n";
        let lines = all_lines(input, 3);
        assert_eq!(lines[0], (1, b"{}".to_vec()));
        assert_eq!(lines[1], (2, b"\xEF\xBB\xBF{}".to_vec()));
    }

    #[test]
    fn line_longer_than_chunk_stays_whole() {
        let long = vec![b'x'; 10_000];
        let mut input = long.clone();
        input.extend_from_slice(b"\nend\n");
        let lines = all_lines(&input, 64);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1, long);
        assert_eq!(lines[1], (2, b"end".to_vec()));
    }

    #[test]
    fn empty_input_has_no_chunks() {
        assert!(all_lines(b"", 8).is_empty());
    }
}
