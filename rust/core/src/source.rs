//! Opening inputs and outputs: plain, gzip or zstd files by extension (and gzip/zstd by magic
//! bytes, so a misnamed file still reads), with `-` for stdin/stdout.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

use crate::error::{Error, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const IO_BUF: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the file name alone (used for outputs).
    pub fn from_path(path: &str) -> Self {
        if path.ends_with(".gz") {
            Compression::Gzip
        } else if path.ends_with(".zst") || path.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// An opened input: the decompressed byte stream plus the size of the raw file (for progress;
/// None for stdin) and a shared counter of raw bytes consumed so far.
pub struct Input {
    pub reader: Box<dyn Read + Send>,
    /// The whole file, memory-mapped, when it is a plain (uncompressed) regular file and
    /// mapping was allowed: the reader then slices it instead of copying it through `reader`.
    pub mapped: Option<std::sync::Arc<memmap2::Mmap>>,
    pub raw_len: Option<u64>,
    pub raw_pos: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

struct CountingReader<R> {
    inner: R,
    pos: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens an input. With `allow_mmap`, a plain regular file is memory-mapped (no copy through
/// the page cache); a file truncated by another process while it is mapped can then crash the
/// reader (SIGBUS), so callers reading files that others may rewrite can turn this off.
pub fn open_input_with(path: &str, allow_mmap: bool) -> Result<Input> {
    if allow_mmap && path != "-" {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_file() && meta.len() > 0 {
            // SAFETY: the map is only read; see the note above about concurrent truncation.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
            if !map.starts_with(&GZIP_MAGIC) && !map.starts_with(&ZSTD_MAGIC) {
                let _ = map.advise(memmap2::Advice::Sequential);
                return Ok(Input {
                    reader: Box::new(io::empty()),
                    mapped: Some(std::sync::Arc::new(map)),
                    raw_len: Some(meta.len()),
                    raw_pos: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
                });
            }
        }
    }
    open_input(path)
}

pub fn open_input(path: &str) -> Result<Input> {
    let pos = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (raw, raw_len): (Box<dyn Read + Send>, Option<u64>) = if path == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::io(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "is a directory"),
            ));
        }
        (Box::new(file), Some(meta.len()))
    };
    let counting = CountingReader {
        inner: raw,
        pos: pos.clone(),
    };
    let mut buffered = BufReader::with_capacity(IO_BUF, counting);
    let head = buffered.fill_buf().map_err(|e| Error::io(path, e))?;
    let reader: Box<dyn Read + Send> = if head.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Box::new(zstd::Decoder::with_buffer(buffered).map_err(|e| Error::io(path, e))?)
    } else {
        Box::new(buffered)
    };
    Ok(Input {
        reader,
        mapped: None,
        raw_len,
        raw_pos: pos,
    })
}

/// Opens an output; compression follows the extension. Call `finish` on the returned writer.
pub fn open_output(path: &str) -> Result<OutputSink> {
    let raw: Box<dyn Write + Send> = if path == "-" {
        Box::new(io::stdout())
    } else {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(path, e))?;
            }
        }
        Box::new(File::create(path).map_err(|e| Error::io(path, e))?)
    };
    let raw = io::BufWriter::with_capacity(IO_BUF, raw);
    let inner = match Compression::from_path(path) {
        Compression::None => Sink::Plain(raw),
        Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
            raw,
            flate2::Compression::default(),
        )),
        Compression::Zstd => {
            Sink::Zstd(zstd::Encoder::new(raw, 3).map_err(|e| Error::io(path, e))?)
        }
    };
    Ok(OutputSink {
        path: path.to_string(),
        inner: Some(inner),
    })
}

enum Sink {
    Plain(io::BufWriter<Box<dyn Write + Send>>),
    Gzip(flate2::write::GzEncoder<io::BufWriter<Box<dyn Write + Send>>>),
    Zstd(zstd::Encoder<'static, io::BufWriter<Box<dyn Write + Send>>>),
}

/// A buffered, optionally compressed output. Data is only complete after `finish`.
pub struct OutputSink {
    path: String,
    inner: Option<Sink>,
}

impl OutputSink {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let res = match self.inner.as_mut() {
            Some(Sink::Plain(w)) => w.write_all(bytes),
            Some(Sink::Gzip(w)) => w.write_all(bytes),
            Some(Sink::Zstd(w)) => w.write_all(bytes),
            None => Err(io::Error::other("writer already finished")),
        };
        res.map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes and writes compression trailers. Idempotent.
    pub fn finish(&mut self) -> Result<()> {
        let res = match self.inner.take() {
            Some(Sink::Plain(mut w)) => w.flush(),
            Some(Sink::Gzip(w)) => w.finish().and_then(|mut b| b.flush()),
            Some(Sink::Zstd(w)) => w.finish().and_then(|mut b| b.flush()),
            None => Ok(()),
        };
        res.map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for OutputSink {
    fn drop(&mut self) {
        // Best effort: an explicit `finish` reports errors, a drop cannot.
        let _ = self.finish();
    }
}
