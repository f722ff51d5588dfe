//! Starting one slot: a keeper process that creates fresh user/PID/mount/net/IPC/UTS namespaces,
//! and inside them the slot's init, which builds a minimal read-only root (bind mounts of the
//! runtime only), pivots into it and execs the zygote interpreter.
//!
//! Host view: daemon (root) -> keeper (root, host namespaces, waits) -> init = zygote (pid 1 of the
//! slot's PID namespace; uid 0 inside, an unprivileged host uid outside).
//!
//! Rootless (the daemon is an unprivileged user): the same namespaces, but the slot's user
//! namespace maps one uid, the daemon's own, to 0 inside (all the kernel lets an unprivileged
//! process map), and the keeper stages the bind sources from inside it instead of before it.
//! Programs run as uid 0 of a nested user namespace without any capability (see docs/sandbox.md
//! for what that costs against the root mode).

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Inside-namespace uid that programs run as (mapped to a per-slot host uid).
pub const SANDBOX_UID: u32 = 1000;

pub struct SlotSpec {
    pub index: usize,
    pub interpreter: PathBuf,
    pub interpreter_args: Vec<String>,
    pub zygote_source: &'static str,
    /// The zygote's native half (a shared object, zygote_native.c), handed over as fd 5.
    pub zygote_native: &'static [u8],
    pub ro_paths: Vec<String>,
    /// Host uid for the slot's in-namespace root (the zygote) and for the sandbox uid.
    pub host_uid_root: u32,
    pub host_uid_user: u32,
    pub isolated: bool,
    /// `cgroup.procs` of the slot's cgroups (pids, memory) where they are used.
    pub cgroup_procs: Vec<PathBuf>,
    /// The slot's memory cgroup's OOM-kill counter (v1 `memory.oom_control`, v2
    /// `memory.events`), where it has one.
    pub oom_control: Option<PathBuf>,
    /// The slot's v2 `cgroup.kill`, where it has one: killing the slot kills every process in
    /// its cgroup, not only those its pid 1 reaches.
    pub cgroup_kill: Option<PathBuf>,
    /// The daemon is not root: map only its own uid and gid (`host_uid_*` are unused).
    pub rootless: bool,
}

pub struct SlotProcess {
    /// Direct child of the daemon; dies with the slot.
    pub keeper: i32,
    /// Host pid of the zygote; SIGKILL on it ends every process of the slot.
    pub init: i32,
    pub ctl: UnixStream,
    cgroup_kill: Option<PathBuf>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

fn cstr(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

fn errno_msg(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Everything the child processes need, prepared before fork so the children only make syscalls.
struct Prepared {
    exe: CString,
    argv: Vec<CString>,
    binds: Vec<Bind>,
    source: OwnedFd,
    native: OwnedFd,
}

fn source_memfd(bytes: &[u8]) -> Result<OwnedFd, String> {
    // SAFETY: memfd_create with a NUL-terminated name; the fd is owned from here on.
    let fd = unsafe { libc::memfd_create(c"grpo-zygote".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(errno_msg("memfd_create"));
    }
    // SAFETY: fd was just created.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?);
    f.write_all(bytes)
        .map_err(|e| format!("writing the zygote: {e}"))?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| e.to_string())?;
    Ok(fd)
}

enum BindKind {
    Dir,
    File,
    Symlink(CString),
}

struct Bind {
    host: CString,
    /// Where the keeper mounts `host` first (see `stage_binds`); the slot binds it on from there.
    staged: CString,
    inside: CString,
    kind: BindKind,
    flags: libc::c_ulong,
}

/// A tmpfs the keeper mounts, in a mount namespace of its own, over `/tmp`: the bind sources
/// staged under `STAGE`, and `ROOT`, where the slot builds its root.
const STAGE_TMPFS: &str = "/tmp";
const STAGE: &str = "/tmp/ro";
const ROOT: &str = "/tmp/root";

fn prepare(spec: &SlotSpec) -> Result<Prepared, String> {
    let mut binds = Vec::new();
    for p in &spec.ro_paths {
        let host = Path::new(p);
        let Ok(meta) = std::fs::symlink_metadata(host) else {
            continue;
        };
        let inside = format!("{ROOT}{p}");
        let kind = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host).map_err(|e| format!("readlink {p}: {e}"))?;
            BindKind::Symlink(cstr(&target.to_string_lossy()))
        } else if meta.is_dir() {
            BindKind::Dir
        } else {
            BindKind::File
        };
        binds.push(Bind {
            host: cstr(p),
            staged: cstr(&format!("{STAGE}/{}", binds.len())),
            inside: cstr(&inside),
            kind,
            flags: locked_flags(p),
        });
    }
    // argv[0] is the full path: CPython finds its prefix (the stdlib) from it, and a bare name
    // with no PATH would have it search upwards from / and take whatever lib/python3.X it meets.
    let mut argv = vec![cstr(&spec.interpreter.to_string_lossy())];
    argv.extend(spec.interpreter_args.iter().map(|a| cstr(a)));
    // The zygote's source comes on fd 4 (a memfd), which keeps `ps` output short.
    argv.push(cstr("-c"));
    argv.push(cstr(
        "import os;f=os.fdopen(4,'rb');s=f.read();f.close();exec(compile(s,'grpo-zygote','exec'))",
    ));
    let source = source_memfd(spec.zygote_source.as_bytes())?;
    let native = source_memfd(spec.zygote_native)?;
    Ok(Prepared {
        exe: cstr(&spec.interpreter.to_string_lossy()),
        argv,
        binds,
        source,
        native,
    })
}

/// Mount flags a user namespace may not clear on a bind mount it inherited; a read-only remount
/// has to repeat them or it fails with EPERM.
fn locked_flags(path: &str) -> libc::c_ulong {
    let c = cstr(path);
    // SAFETY: statvfs fills the struct for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            out |= ms_flag;
        }
    }
    out
}

pub fn spawn_slot(spec: &SlotSpec) -> Result<SlotProcess, String> {
    let prepared = prepare(spec)?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let (up_r, up_w) = pipe()?;
    let (down_r, down_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // SAFETY: getpid cannot fail.
    let daemon_pid = unsafe { libc::getpid() };
    // SAFETY: the child only runs `keeper`, which makes syscalls on data prepared above and
    // never returns (it ends in _exit or exec).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno_msg("fork"));
    }
    if pid == 0 {
        drop(ours);
        keeper(
            spec,
            &prepared,
            daemon_pid,
            theirs.as_raw_fd(),
            &up_w,
            &down_r,
            &err_w,
        );
    }
    drop((theirs, up_w, down_r, err_w));
    let fail = |msg: String| -> Result<SlotProcess, String> {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        Err(msg)
    };
    let mut up = std::fs::File::from(up_r);
    let mut down = std::fs::File::from(down_w);
    let mut err = std::fs::File::from(err_r);
    let mut byte = [0u8; 1];
    if up.read_exact(&mut byte).is_err() {
        let mut msg = String::new();
        let _ = err.read_to_string(&mut msg);
        return fail(format!("slot {} did not start: {}", spec.index, msg.trim()));
    }
    if spec.isolated {
        if let Err(e) = write_id_maps(pid, spec) {
            return fail(format!("slot {}: {e}", spec.index));
        }
    }
    for procs in &spec.cgroup_procs {
        if let Err(e) = std::fs::write(procs, pid.to_string()) {
            return fail(format!("joining cgroup {}: {e}", procs.display()));
        }
    }
    if down.write_all(b"m").is_err() {
        return fail("slot keeper vanished".into());
    }
    drop(down);
    let mut pidbuf = [0u8; 4];
    let got_pid = up.read_exact(&mut pidbuf);
    let mut msg = String::new();
    let _ = err.read_to_string(&mut msg);
    if got_pid.is_err() || !msg.is_empty() {
        return fail(format!(
            "slot {} failed to start: {}",
            spec.index,
            msg.trim()
        ));
    }
    Ok(SlotProcess {
        keeper: pid,
        init: i32::from_ne_bytes(pidbuf),
        ctl: ours,
        cgroup_kill: spec.cgroup_kill.clone(),
    })
}

/// The uid and gid maps of a slot's user namespace, written by the daemon from outside it.
/// Root maps the slot's two host uids; rootless, only the daemon's own ids can be mapped, and
/// only after `setgroups` is denied (an unprivileged gid map requires it).
fn write_id_maps(pid: i32, spec: &SlotSpec) -> Result<(), String> {
    let (uid_map, gid_map) = if spec.rootless {
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let setgroups = format!("/proc/{pid}/setgroups");
        std::fs::write(&setgroups, "deny").map_err(|e| format!("writing {setgroups}: {e}"))?;
        (format!("0 {uid} 1\n"), format!("0 {gid} 1\n"))
    } else {
        let m = format!(
            "0 {} 1\n{SANDBOX_UID} {} 1\n",
            spec.host_uid_root, spec.host_uid_user
        );
        (m.clone(), m)
    };
    for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(())
}

/// Writes an error for the daemon and exits; used only in forked children.
fn die(err_fd: i32, msg: &str) -> ! {
    // SAFETY: write and _exit on a valid fd.
    unsafe {
        libc::write(err_fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(1);
    }
}

#[allow(clippy::too_many_arguments)]
fn keeper(
    spec: &SlotSpec,
    p: &Prepared,
    daemon_pid: i32,
    ctl: i32,
    up_w: &OwnedFd,
    down_r: &OwnedFd,
    err_w: &OwnedFd,
) -> ! {
    let err = err_w.as_raw_fd();
    // SAFETY: raw syscalls in a freshly forked child; every pointer refers to live data.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != daemon_pid {
            libc::_exit(1);
        }
        if spec.isolated {
            // Rootless, the keeper may mount only once it is root of its own user namespace.
            if !spec.rootless {
                if let Err(msg) = stage_binds(p) {
                    die(err, &msg);
                }
            }
            let flags = libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWNET
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS;
            if libc::unshare(flags) != 0 {
                let msg = errno_msg("unshare(user, pid, mount, net, ipc, uts)");
                if spec.rootless {
                    die(err, &format!("{msg}\n{USERNS_HINT}"));
                }
                die(err, &msg);
            }
        }
        libc::write(up_w.as_raw_fd(), b"u".as_ptr().cast(), 1);
        let mut b = 0u8;
        if libc::read(down_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) != 1 {
            libc::_exit(1);
        }
        // Now that the daemon has moved us into the slot's cgroups, a cgroup namespace rooted
        // there: inside, /proc/self/cgroup reads `0::/` instead of the host's cgroup path (which
        // names the daemon's pid and where the host keeps it).
        if spec.isolated && libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
            die(err, &errno_msg("unshare(cgroup)"));
        }
        // Rootless, setgroups is denied in this namespace (the price of an unprivileged map).
        if spec.isolated
            && (libc::setresgid(0, 0, 0) != 0
                || (!spec.rootless && libc::setgroups(0, std::ptr::null()) != 0)
                || libc::setresuid(0, 0, 0) != 0)
        {
            die(
                err,
                &errno_msg("becoming root of the slot's user namespace"),
            );
        }
        if spec.isolated && spec.rootless {
            if let Err(msg) = stage_binds(p) {
                die(
                    err,
                    &format!("{msg} (inside the slot's user namespace)\n{USERNS_HINT}"),
                );
            }
        }
        let init = libc::fork();
        if init < 0 {
            die(err, &errno_msg("fork"));
        }
        if init == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Err(msg) = slot_init(spec, p, ctl) {
                die(err, &msg);
            }
            unreachable_exit();
        }
        libc::write(up_w.as_raw_fd(), (&init as *const i32).cast(), 4);
        libc::close(err);
        libc::close(ctl);
        let mut status = 0;
        while libc::waitpid(init, &mut status, 0) < 0 {
            if *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
        libc::_exit(0);
    }
}

/// Runs in the keeper, still host root, before it enters the slot's namespaces: in a private
/// mount namespace it mounts every bind source under `STAGE`, which the slot's namespaces then
/// inherit. The slot's init is an unprivileged host uid and could not look up a source below a
/// directory only root may search (an interpreter under `/root` or a 0700 home); a staged mount
/// is reachable through directories the keeper made world-searchable.
fn stage_binds(p: &Prepared) -> Result<(), String> {
    // SAFETY: unshare with a constant flag.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(errno_msg("unshare(mount)"));
    }
    // Private first, so nothing mounted below reaches the host's namespace.
    mount_tree_private()?;
    // Every source is opened before the tmpfs covers /tmp, where a source may live.
    let mut sources = Vec::new();
    for b in &p.binds {
        if matches!(b.kind, BindKind::Symlink(_)) {
            continue;
        }
        // SAFETY: open with a NUL-terminated path; the fd is owned from here on.
        let fd = unsafe { libc::open(b.host.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(errno_msg(&format!("open {}", b.host.to_string_lossy())));
        }
        // SAFETY: fd was just opened.
        sources.push((b, unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    mount(
        Some(&cstr("tmpfs")),
        &cstr(STAGE_TMPFS),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("size=64k,nr_inodes=1024,mode=0755"),
    )?;
    mkdirs(ROOT, 0o755)?;
    mkdirs(STAGE, 0o755)?;
    for (b, fd) in &sources {
        let staged = b.staged.to_string_lossy();
        match &b.kind {
            BindKind::Dir => mkdirs(&staged, 0o755)?,
            _ => write_file(&staged, "")?,
        }
        let via = cstr(&format!("/proc/self/fd/{}", fd.as_raw_fd()));
        mount(
            Some(&via),
            &b.staged,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| format!("{e} (binding {})", b.host.to_string_lossy()))?;
    }
    Ok(())
}

fn unreachable_exit() -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(1) }
}

fn mount(
    src: Option<&CString>,
    dst: &CString,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let fstype = fstype.map(cstr);
    let data = data.map(cstr);
    // SAFETY: every pointer is NULL or a NUL-terminated string alive for the call.
    let rc = unsafe {
        libc::mount(
            src.map_or(std::ptr::null(), |s| s.as_ptr()),
            dst.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc != 0 {
        return Err(errno_msg(&format!("mount {}", dst.to_string_lossy())));
    }
    Ok(())
}

/// No mount event propagates from this mount namespace to another, or from another into it.
fn mount_tree_private() -> Result<(), String> {
    mount(
        None,
        &cstr("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
}

fn mkdirs(path: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| format!("mkdir {path}: {e}"))
}

fn write_file(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {path}: {e}"))
}

fn bind_ro(host: &CString, inside: &CString, locked: libc::c_ulong) -> Result<(), String> {
    mount(Some(host), inside, None, libc::MS_BIND | libc::MS_REC, None)?;
    let flags = libc::MS_BIND
        | libc::MS_REMOUNT
        | libc::MS_RDONLY
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | locked;
    mount(None, inside, None, flags, None)
}

/// Runs as the slot's pid 1: builds the root and execs the zygote with fd 3 = control socket.
fn slot_init(spec: &SlotSpec, p: &Prepared, ctl: i32) -> Result<(), String> {
    if spec.isolated {
        build_root(p)?;
        // SAFETY: sethostname with a valid buffer.
        unsafe { libc::sethostname(b"sandbox".as_ptr().cast(), 7) };
    }
    // SAFETY: fd juggling and exec in the child; all strings were prepared before fork.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            return Err(errno_msg("open /dev/null"));
        }
        libc::dup2(null, 0);
        libc::dup2(null, 1);
        // The memfds first: they may sit at 3..5, which the control socket and they take.
        let src = libc::fcntl(p.source.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10);
        let native = libc::fcntl(p.native.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10);
        if src < 0 || native < 0 || libc::dup2(ctl, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) != 0
        {
            return Err(errno_msg("dup2 control socket"));
        }
        if libc::dup2(src, 4) < 0 || libc::fcntl(4, libc::F_SETFD, 0) != 0 {
            return Err(errno_msg("dup2 zygote source"));
        }
        if libc::dup2(native, 5) < 0 || libc::fcntl(5, libc::F_SETFD, 0) != 0 {
            return Err(errno_msg("dup2 zygote native half"));
        }
        // Close-on-exec rather than close: the error pipe must stay open until exec succeeds.
        libc::close_range(6, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int);
        let mut argv: Vec<*const libc::c_char> = p.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // Every symbol bound at start-up, once, in the zygote: lazily bound, each child would
        // resolve (and copy the GOT page of) every libc call it makes first.
        let envp: [*const libc::c_char; 2] = [c"LD_BIND_NOW=1".as_ptr(), std::ptr::null()];
        libc::execve(p.exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    Err(errno_msg(&format!("exec {}", p.exe.to_string_lossy())))
}

fn build_root(p: &Prepared) -> Result<(), String> {
    let root = cstr(ROOT);
    mount_tree_private()?;
    mount(
        Some(&cstr("tmpfs")),
        &root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("size=4m,nr_inodes=4096,mode=0755"),
    )?;
    for b in &p.binds {
        let inside = b.inside.to_string_lossy().into_owned();
        let parent = Path::new(&inside)
            .parent()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default();
        mkdirs(&parent, 0o755)?;
        match &b.kind {
            BindKind::Symlink(target) => {
                // SAFETY: both strings are NUL-terminated.
                if unsafe { libc::symlink(target.as_ptr(), b.inside.as_ptr()) } != 0 {
                    return Err(errno_msg(&format!("symlink {inside}")));
                }
            }
            BindKind::Dir => {
                mkdirs(&inside, 0o755)?;
                bind_ro(&b.staged, &b.inside, b.flags)?;
            }
            BindKind::File => {
                write_file(&inside, "")?;
                bind_ro(&b.staged, &b.inside, b.flags)?;
            }
        }
    }
    // /etc: only what Python's stdlib may look up; no host secrets.
    mkdirs(&format!("{ROOT}/etc"), 0o755)?;
    write_file(
        &format!("{ROOT}/etc/passwd"),
        "root:x:0:0:root:/:/usr/sbin/nologin\nsandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\n",
    )?;
    write_file(&format!("{ROOT}/etc/group"), "root:x:0:\nsandbox:x:1000:\n")?;
    write_file(
        &format!("{ROOT}/etc/hosts"),
        "127.0.0.1 localhost sandbox\n::1 localhost\n",
    )?;
    // /dev: a small tmpfs holding bind mounts of the harmless device nodes; /dev/shm is the run's
    // tmpfs, so filling it is bounded and gone after the run.
    let dev = format!("{ROOT}/dev");
    mkdirs(&dev, 0o755)?;
    mount(
        Some(&cstr("tmpfs")),
        &cstr(&dev),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("size=64k,nr_inodes=64,mode=0755"),
    )?;
    for node in ["null", "zero", "full", "random", "urandom"] {
        let inside = format!("{dev}/{node}");
        write_file(&inside, "")?;
        mount(
            Some(&cstr(&format!("/dev/{node}"))),
            &cstr(&inside),
            None,
            libc::MS_BIND,
            None,
        )?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("shm", "/tmp"),
    ] {
        std::os::unix::fs::symlink(target, format!("{dev}/{name}"))
            .map_err(|e| format!("symlink /dev/{name}: {e}"))?;
    }
    mount(
        None,
        &cstr(&dev),
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC,
        None,
    )?;
    mkdirs(&format!("{ROOT}/tmp"), 0o755)?;
    std::fs::set_permissions(
        format!("{ROOT}/tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .map_err(|e| format!("chmod /tmp: {e}"))?;
    mkdirs(&format!("{ROOT}/proc"), 0o555)?;
    mount(
        Some(&cstr("proc")),
        &cstr(&format!("{ROOT}/proc")),
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )?;
    // The host kernel's command line (boot options, sometimes secrets on cloud images) is none of
    // the program's business: the fresh procfs still shows it, so /dev/null is mounted over it.
    mount(
        Some(&cstr("/dev/null")),
        &cstr(&format!("{ROOT}/proc/cmdline")),
        None,
        libc::MS_BIND,
        None,
    )?;
    mkdirs(&format!("{ROOT}/.old"), 0o700)?;
    // SAFETY: pivot_root/chdir/umount2/rmdir with NUL-terminated paths.
    unsafe {
        if libc::syscall(
            libc::SYS_pivot_root,
            root.as_ptr(),
            cstr(&format!("{ROOT}/.old")).as_ptr(),
        ) != 0
        {
            return Err(errno_msg("pivot_root"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(errno_msg("chdir /"));
        }
        if libc::umount2(c"/.old".as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(errno_msg("detaching the host root"));
        }
        libc::rmdir(c"/.old".as_ptr());
    }
    mount(
        None,
        &cstr("/"),
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )
}

/// Kills a slot: `cgroup.kill` on its v2 cgroup where it has one (every process in it, whatever
/// namespace it is in), and SIGKILL to its init, which ends every process in its PID namespace.
pub fn kill_slot(proc_: &SlotProcess) {
    if let Some(kill) = &proc_.cgroup_kill {
        crate::cgroup::kill_all(kill);
    }
    // SAFETY: signalling and reaping our own processes; ECHILD (already reaped by the
    // subreaper loop) is fine.
    unsafe {
        libc::kill(proc_.init, libc::SIGKILL);
        libc::kill(proc_.keeper, libc::SIGKILL);
        libc::waitpid(proc_.keeper, std::ptr::null_mut(), 0);
    }
}

/// What to do where the kernel refuses an unprivileged user its namespaces.
pub const USERNS_HINT: &str = "the rootless mode needs unprivileged user namespaces. Allow them: \
sysctl -w kernel.unprivileged_userns_clone=1 (Debian, older Ubuntu); sysctl -w user.max_user_namespaces=15000 \
(RHEL, where it is 0); on Ubuntu 23.10+ AppArmor restricts them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 \
(or an AppArmor profile for grpo-sandboxd with `userns,`); inside a container, the runtime's seccomp profile must allow \
unshare and mount. Or run the daemon as root.";

/// Whether this process may make the namespaces a rootless slot needs: a forked child makes a
/// user and mount namespace, maps its own uid and mounts a tmpfs (AppArmor's restriction on
/// Ubuntu lets `unshare` succeed and then refuses every capability, so the mount is the test).
pub fn probe_rootless() -> Result<(), String> {
    let (r, w) = pipe()?;
    // SAFETY: the child only makes syscalls and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno_msg("fork"));
    }
    if pid == 0 {
        drop(r);
        let fail = |what: &str| -> ! {
            let msg = errno_msg(what);
            // SAFETY: write and _exit on a valid fd in the child.
            unsafe {
                libc::write(w.as_raw_fd(), msg.as_ptr().cast(), msg.len());
                libc::_exit(1)
            }
        };
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        // SAFETY: unshare with constant flags.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
            fail("unshare(user, mount)");
        }
        let _ = std::fs::write("/proc/self/setgroups", "deny");
        if std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).is_err()
            || std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).is_err()
        {
            fail("writing the uid map of a new user namespace");
        }
        if mount_tree_private().is_err() {
            fail("mount inside a new user namespace");
        }
        if mount(
            Some(&cstr("tmpfs")),
            &cstr("/tmp"),
            Some("tmpfs"),
            0,
            Some("size=4k"),
        )
        .is_err()
        {
            fail("mounting a tmpfs inside a new user namespace");
        }
        // SAFETY: _exit in the child.
        unsafe { libc::_exit(0) }
    }
    drop(w);
    let mut msg = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut msg);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!("{}\n{USERNS_HINT}", msg.trim()))
    }
}
