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
/// A kill -9 leaves the temporary file behind, never a partial `path`; the next write to the
/// same `path` removes it (see `remove_abandoned_temps`). `-` is stdout, and a path that is not
/// a regular file (`/dev/null`, a FIFO) is written in place.
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
    remove_abandoned_temps(target);
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
                // Held until the file is closed: how a writer in another PID namespace or on
                // another host (a shared folder) tells `remove_abandoned_temps` it is alive.
                // Best effort: a file system without locks leaves the PID check alone.
                let _ = try_lock(&file);
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

/// Removes the temporary siblings of `target` (`.NAME.tmp-PID-N`, exactly that pattern) that
/// writers killed before `finish` left behind: a file is removed only when it is a regular
/// file, nobody holds its lock (every writer locks its own until it closes it) and, checked
/// after taking that lock, no process with its PID is alive on this host. A live writer's file
/// is never touched: it is locked (wherever the writer runs, where the file system supports
/// locks), and its PID is alive when it runs here. A dead writer's PID reused by an unrelated
/// process keeps the file until that process ends (a leftover, never a loss). Best effort and
/// silent: a file that cannot be checked is left alone.
pub fn remove_abandoned_temps(target: &std::path::Path) {
    #[cfg(unix)]
    {
        let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let prefix = format!(".{name}.tmp-");
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name.to_str().and_then(|s| temp_pid(s, &prefix)) else {
                continue;
            };
            if pid != std::process::id() {
                remove_if_abandoned(&entry.path(), pid);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = target;
}

/// The writer's PID when `file_name` is `PREFIX<digits>-<digits>` and nothing else.
fn temp_pid(file_name: &str, prefix: &str) -> Option<u32> {
    let (pid, n) = file_name.strip_prefix(prefix)?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(unix)]
fn remove_if_abandoned(path: &std::path::Path, pid: u32) {
    use std::os::unix::fs::MetadataExt;

    // Never a link, a folder or a FIFO (opening a FIFO would block).
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.file_type().is_file() {
        return;
    }
    let Ok(file) = File::open(path) else {
        return;
    };
    if try_lock(&file).is_err() || process_alive(pid) {
        return;
    }
    // Still the file that was checked (not one created since under the same name).
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino() => {
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
}

/// An exclusive, non-blocking `flock` on `file` (released when every handle to it is closed).
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;

    // SAFETY: flock on a descriptor this `File` owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Whether a process with this PID exists here (one of another user counts: EPERM).
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true; // not a PID this system can have: leave the file alone
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
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

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A PID that belonged to a process which has ended (reaped, so nothing holds it).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn temp_names_match_exactly() {
        let p = ".out.jsonl.tmp-";
        assert_eq!(temp_pid(".out.jsonl.tmp-123-0", p), Some(123));
        assert_eq!(temp_pid(".out.jsonl.tmp-7-42", p), Some(7));
        for other in [
            ".out.jsonl.tmp-123",       // files.py's pattern, not the writer's
            ".out.jsonl.tmp-123-",      // no counter
            ".out.jsonl.tmp--0",        // no PID
            ".out.jsonl.tmp-12a-0",     // not a number
            ".out.jsonl.tmp-1-0.bak",   // something after
            ".out.jsonl.tmp-1-0-2",     // something after
            ".out.jsonl.tmp-1.tmp-5-0", // another target's temp (`out.jsonl.tmp-1`)
            "out.jsonl.tmp-1-0",        // not hidden
            ".out.jsonl.gz.tmp-1-0",    // another target
            ".out.jsonl.tmp-99999999999-0",
        ] {
            assert_eq!(temp_pid(other, p), None, "{other}");
        }
    }

    #[test]
    fn only_abandoned_temps_of_the_target_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        let dead = dead_pid();
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let put = |name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"{\"prompt\":\"q\"}\n").unwrap();
            p
        };
        let abandoned = [
            put(&format!(".out.jsonl.tmp-{dead}-0")),
            put(&format!(".out.jsonl.tmp-{dead}-17")),
        ];
        let kept = [
            put(&format!(".out.jsonl.tmp-{}-0", live.id())), // a live writer here
            put(&format!(".out.jsonl.tmp-{}-3", std::process::id())), // this process
            put(&format!(".out.jsonl.tmp-{dead}-0.bak")),
            put(&format!(".out.jsonl.tmp-{dead}")),
            put(&format!(".other.jsonl.tmp-{dead}-0")),
            put(&format!("out.jsonl.tmp-{dead}-0")),
            put("out.jsonl"),
        ];
        // A dead PID whose file is locked: a writer elsewhere (another host or PID namespace).
        let locked = put(&format!(".out.jsonl.tmp-{dead}-5"));
        let holder = File::open(&locked).unwrap();
        try_lock(&holder).unwrap();
        // A folder and a link of the pattern are not files to remove.
        std::fs::create_dir(dir.path().join(format!(".out.jsonl.tmp-{dead}-8"))).unwrap();
        std::os::unix::fs::symlink(
            &kept[6],
            dir.path().join(format!(".out.jsonl.tmp-{dead}-9")),
        )
        .unwrap();

        remove_abandoned_temps(&target);
        for p in &abandoned {
            assert!(!p.exists(), "{} was left", p.display());
        }
        for p in kept.iter().chain([&locked]) {
            assert!(p.exists(), "{} was removed", p.display());
        }
        assert!(dir.path().join(format!(".out.jsonl.tmp-{dead}-8")).is_dir());
        assert!(dir
            .path()
            .join(format!(".out.jsonl.tmp-{dead}-9"))
            .symlink_metadata()
            .is_ok());
        drop(holder);
        remove_abandoned_temps(&target);
        assert!(!locked.exists(), "unlocked and its PID dead: abandoned");
        live.kill().unwrap();
        live.wait().unwrap();
    }

    #[test]
    fn opening_an_output_clears_what_a_killed_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("g.jsonl");
        let left = dir.path().join(format!(".g.jsonl.tmp-{}-0", dead_pid()));
        std::fs::write(&left, b"{\"partial\":").unwrap();
        let path = target.to_str().unwrap();
        let mut out = open_output(path).unwrap();
        assert!(!left.exists());
        // While it writes, its own temporary file is locked: another writer's cleanup keeps it.
        out.write_all(b"{\"a\":1}\n").unwrap();
        let mine: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(mine.len(), 1);
        assert!(try_lock(&File::open(&mine[0]).unwrap()).is_err());
        out.finish().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{\"a\":1}\n");
    }
}
