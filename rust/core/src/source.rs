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

/// Opens an output; compression follows the extension. Call `finish` on the returned writer:
/// a file output is written to a temporary sibling (`.NAME.tmp-PID-N`, same folder, so the
/// rename cannot cross file systems), and only `finish` syncs it to disk and renames it over
/// `path`. Until then `path` keeps its old content (or stays absent); dropping the writer
/// unfinished, an error, or a full disk removes the temporary file. So an output may be one of
/// the inputs: the input is read from its own inode, which the final rename does not touch.
/// A kill -9 leaves the temporary file behind, never a partial `path`. `-` is stdout, and a
/// path that is not a regular file (`/dev/null`, a FIFO) is written in place.
pub fn open_output(path: &str) -> Result<OutputSink> {
    open_output_with(path, false)
}

/// `open_output`; with `commit_on_drop`, dropping the writer unfinished still renames what was
/// written into place (for a rejects file, a report of the lines read so far).
pub fn open_output_with(path: &str, commit_on_drop: bool) -> Result<OutputSink> {
    let mut staged = None;
    let raw: Box<dyn Write + Send> = if path == "-" {
        Box::new(io::stdout())
    } else {
        let target = output_target(path)?;
        match std::fs::metadata(&target) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::io(
                    path,
                    io::Error::new(io::ErrorKind::InvalidInput, "is a directory"),
                ))
            }
            // A device or a FIFO: nothing to replace, and renaming over one would be wrong.
            Ok(meta) if !meta.is_file() => Box::new(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(|e| Error::io(path, e))?,
            ),
            existing => {
                let (file, temp) =
                    create_temp(&target, existing.ok().as_ref()).map_err(|e| Error::io(path, e))?;
                let sync = file.try_clone().map_err(|e| Error::io(path, e))?;
                staged = Some(Staged { temp, target, sync });
                Box::new(file)
            }
        }
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
        staged,
        commit_on_drop,
    })
}

/// Where the bytes of `path` end up: the file a symlink points to (so the link survives the
/// rename), else `path` itself. Missing parent folders are created.
fn output_target(path: &str) -> Result<std::path::PathBuf> {
    let p = std::path::Path::new(path);
    let is_link = std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        if let Ok(resolved) = std::fs::canonicalize(p) {
            return Ok(resolved);
        }
    }
    if let Some(parent) = p.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(path, e))?;
        }
    }
    Ok(p.to_path_buf())
}

/// A new, empty temporary sibling of `target`, with the permissions of the file it replaces.
fn create_temp(
    target: &std::path::Path,
    existing: Option<&std::fs::Metadata>,
) -> io::Result<(File, std::path::PathBuf)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = target.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(file) => {
                if let Some(meta) = existing {
                    let _ = file.set_permissions(meta.permissions());
                }
                return Ok((file, temp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create a temporary file next to it: {e}"),
                ))
            }
        }
    }
}

/// A file output being written to its temporary sibling.
struct Staged {
    temp: std::path::PathBuf,
    target: std::path::PathBuf,
    /// The temporary file (a second handle), to sync it before the rename.
    sync: File,
}

impl Staged {
    fn commit(self) -> io::Result<()> {
        let done = self
            .sync
            .sync_all()
            .and_then(|_| std::fs::rename(&self.temp, &self.target));
        if done.is_err() {
            let _ = std::fs::remove_file(&self.temp);
            return done;
        }
        // Make the rename itself durable.
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}

enum Sink {
    Plain(io::BufWriter<Box<dyn Write + Send>>),
    Gzip(flate2::write::GzEncoder<io::BufWriter<Box<dyn Write + Send>>>),
    Zstd(zstd::Encoder<'static, io::BufWriter<Box<dyn Write + Send>>>),
}

/// A buffered, optionally compressed output. Data is only complete, and a file output only in
/// place, after `finish`.
pub struct OutputSink {
    path: String,
    inner: Option<Sink>,
    staged: Option<Staged>,
    commit_on_drop: bool,
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

    /// Flushes, writes compression trailers and puts a file output in place (synced, then
    /// renamed over the target). On an error the target is left as it was. Idempotent.
    pub fn finish(&mut self) -> Result<()> {
        let res = match self.inner.take() {
            Some(Sink::Plain(mut w)) => w.flush(),
            Some(Sink::Gzip(w)) => w.finish().and_then(|mut b| b.flush()),
            Some(Sink::Zstd(w)) => w.finish().and_then(|mut b| b.flush()),
            None => Ok(()),
        };
        let res = match (res, self.staged.take()) {
            (Ok(()), Some(staged)) => staged.commit(),
            (Err(e), Some(staged)) => {
                staged.discard();
                Err(e)
            }
            (res, None) => res,
        };
        res.map_err(|e| Error::io(&self.path, e))
    }

    /// Gives up: a file output's temporary file is removed and the target left as it was.
    pub fn abort(&mut self) {
        self.inner.take();
        if let Some(staged) = self.staged.take() {
            staged.discard();
        }
    }
}

impl Drop for OutputSink {
    fn drop(&mut self) {
        if self.commit_on_drop {
            // Best effort: an explicit `finish` reports errors, a drop cannot.
            let _ = self.finish();
        } else {
            self.abort();
        }
    }
}

/// Whether two paths name the same file (through links, `..`, another spelling or a hard link;
/// for paths that do not exist yet, the same absolute path).
pub fn same_file(a: &str, b: &str) -> bool {
    if a == "-" || b == "-" {
        return false;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(x), Ok(y)) => {
            use std::os::unix::fs::MetadataExt;
            x.dev() == y.dev() && x.ino() == y.ino()
        }
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok(),
        // Not both there yet: the same path spelt another way (`./o.jsonl`, `o.jsonl`).
        _ => a == b || std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}
