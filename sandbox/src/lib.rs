//! Isolation layer and execution daemon for untrusted model-written code.
//!
//! `daemon_main` is the whole `grpo-sandboxd` program, callable from the binary and from the
//! Python extension module alike.

pub mod api;
pub mod auth;
pub mod build_cache;
pub mod cgroup;
pub mod checker;
pub mod compiled;
pub mod config;
pub mod connections;
pub mod engine;
pub mod isolation;
pub mod judge;
pub mod languages;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod output_budget;
pub mod protocol;
pub mod reload;
pub mod seccomp;
pub mod server;
pub mod tls;
pub mod zygote;

use config::Config;
use engine::Engine;
use isolation::SlotSpec;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A slot's memory cgroup allows this much beyond `limits.max_memory_mb`: the zygote and the
/// children it keeps forked ahead (~15 MB each, mostly shared with the zygote).
const SLOT_MEMORY_HEADROOM_MB: u64 = 128;

const USAGE: &str =
    "grpo-sandboxd: runs untrusted programs in isolated, pre-warmed sandboxes (HTTP/JSON API)

usage: grpo-sandboxd [--config FILE] [--socket PATH] [--tcp ADDR] [--token-file FILE]
                     [--tls-cert FILE --tls-key FILE] [--slots N] [--quiet]
                     [--rootless] [--insecure-no-isolation] [--check] [--probe]

  --config FILE              TOML configuration (every key optional; see grpo-sandboxd.toml)
  --socket PATH              Unix socket to listen on (default: $GRPO_SANDBOX_SOCKET, else
                             /run/grpo-sandboxd/sandboxd.sock as root)
  --tcp ADDR                 also listen on TCP, e.g. 127.0.0.1:8787 (beyond loopback only
                             with a token, or server.allow_unauthenticated_tcp)
  --token-file FILE          token TCP requests must send as `Authorization: Bearer TOKEN`
                             (mode 0600; clients read $GRPO_SANDBOX_TOKEN[_FILE])
  --tls-cert FILE            PEM certificate chain: the TCP listener speaks TLS (1.2, 1.3)
  --tls-key FILE             its PEM private key (mode 0600); both reread on SIGHUP
  --slots N                  warm interpreters / concurrent runs (default: CPU cores)
  --quiet                    log warnings and errors only
  --rootless                 isolate as an unprivileged user (isolation.mode = \"rootless\"; the
                             default when not root): one uid for every slot, see docs/sandbox.md
  --insecure-no-isolation    run without namespaces (rlimits + seccomp only); for machines
                             where isolation is impossible and the code is trusted
  --check                    start the slots, print /health as JSON and exit
  --probe                    print as JSON what isolation, cgroups and kill this daemon would
                             use here, without starting anything; exit 1 if it could not run

examples:
  grpo-sandboxd --socket /tmp/sbx.sock
  curl --unix-socket /tmp/sbx.sock -d '{\"code\":\"print(input())\",\"stdin\":\"hi\"}' http://x/run
";

struct Args {
    config: Option<PathBuf>,
    socket: Option<String>,
    tcp: Option<String>,
    token_file: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    slots: Option<usize>,
    quiet: bool,
    insecure: bool,
    rootless: bool,
    check: bool,
    probe: bool,
}

fn parse_args(argv: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args {
        config: None,
        socket: None,
        tcp: None,
        token_file: None,
        tls_cert: None,
        tls_key: None,
        slots: None,
        quiet: false,
        insecure: false,
        rootless: false,
        check: false,
        probe: false,
    };
    let mut it = argv.iter().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("grpo-sandboxd {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--config" => a.config = Some(PathBuf::from(value("--config")?)),
            "--socket" => a.socket = Some(value("--socket")?),
            "--tcp" => a.tcp = Some(value("--tcp")?),
            "--token-file" => a.token_file = Some(value("--token-file")?),
            "--tls-cert" => a.tls_cert = Some(value("--tls-cert")?),
            "--tls-key" => a.tls_key = Some(value("--tls-key")?),
            "--slots" => {
                a.slots = Some(
                    value("--slots")?
                        .parse()
                        .map_err(|_| "--slots needs a number")?,
                )
            }
            "--quiet" => a.quiet = true,
            "--insecure-no-isolation" => a.insecure = true,
            "--check" => a.check = true,
            "--rootless" => a.rootless = true,
            "--probe" => a.probe = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Some(a))
}

/// The real interpreter, never a shim: an explicit path is canonicalised, else the system one.
fn resolve_interpreter(cfg: &str) -> Result<PathBuf, String> {
    let candidates: Vec<&str> = if cfg.is_empty() {
        vec!["/usr/bin/python3", "/usr/local/bin/python3"]
    } else {
        vec![cfg]
    };
    for c in &candidates {
        if let Ok(p) = std::fs::canonicalize(c) {
            return Ok(p);
        }
    }
    Err(format!(
        "no Python interpreter found (tried {}); set python.interpreter",
        candidates.join(", ")
    ))
}

/// Asks the interpreter for its version and prefix once, at startup.
fn probe_interpreter(p: &Path) -> Result<(String, String), String> {
    let out = std::process::Command::new(p)
        .args([
            "-I",
            "-S",
            "-c",
            "import sys; print(sys.version.split()[0]); print(sys.base_prefix)",
        ])
        .env_clear()
        .output()
        .map_err(|e| format!("cannot run {}: {e}", p.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = s.lines();
    Ok((
        lines.next().unwrap_or("").to_string(),
        lines.next().unwrap_or("/usr").to_string(),
    ))
}

extern "C" fn on_signal(_: libc::c_int) {
    server::SHUTDOWN.store(true, Ordering::Relaxed);
}

extern "C" fn on_hangup(_: libc::c_int) {
    reload::HANGUPS.fetch_add(1, Ordering::SeqCst);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A group's id by name (or a number), from the group database.
fn group_id(name: &str) -> Result<libc::gid_t, String> {
    if let Ok(n) = name.parse::<libc::gid_t>() {
        return Ok(n);
    }
    let c = std::ffi::CString::new(name).map_err(|_| format!("bad group name {name:?}"))?;
    // SAFETY: getgrnam with a NUL-terminated name; the result is read before any other call.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        return Err(format!(
            "server.socket_group: no group {name:?} (create it with `groupadd {name}`)"
        ));
    }
    // SAFETY: gr is a valid pointer returned by getgrnam.
    Ok(unsafe { (*gr).gr_gid })
}

fn bind_unix(path: &Path, group: &str) -> Result<std::os::unix::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another daemon is already listening on {}",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    if !group.is_empty() {
        // The group's members (a trainer's user) reach the daemon through the socket's mode.
        let gid = group_id(group)?;
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| format!("cannot give {} to group {group}: {e}", path.display()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    Ok(l)
}

/// The isolation mode: "root", "rootless", or "insecure-no-isolation".
fn isolation_mode(cfg: &Config, insecure: bool, rootless: bool) -> Result<&'static str, String> {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if insecure {
        return Ok("insecure-no-isolation");
    }
    let mode = if rootless {
        "rootless"
    } else {
        cfg.isolation.mode.as_str()
    };
    match (mode, root) {
        ("rootless", _) | ("auto", false) => Ok("rootless"),
        ("root", false) => Err("isolation.mode = \"root\" needs root (it maps each slot to its own unprivileged \
                                host uid). Run as root (e.g. the systemd unit), set isolation.mode = \"rootless\", or pass \
                                --insecure-no-isolation for trusted code only."
            .into()),
        _ => Ok("root"),
    }
}

/// What the cgroups of `slots` slots would be here (made and removed again).
fn slot_cgroups(cfg: &Config, slots: usize, isolated: bool) -> cgroup::Cgroups {
    if isolated && cfg.isolation.cgroup == "auto" {
        // A slot's runs follow each other, so its cgroup holds one run's memory at a time,
        // plus the zygote and its spares.
        cgroup::Cgroups::setup(
            slots,
            cgroup::SlotLimits {
                pids_max: cfg.limits.max_processes * 4 + 16,
                memory_bytes: (cfg.limits.max_memory_mb + SLOT_MEMORY_HEADROOM_MB) << 20,
            },
        )
    } else {
        cgroup::Cgroups::none(slots)
    }
}

/// `--probe`: the decisions the daemon would take on this host, as JSON, without serving.
fn probe(cfg: &Config, insecure: bool, rootless: bool) -> Result<(), String> {
    // SAFETY: geteuid and getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mode = isolation_mode(cfg, insecure, rootless);
    let userns = match mode {
        Ok("rootless") => isolation::probe_rootless(),
        _ => Ok(()),
    };
    let isolated = matches!(mode, Ok("root" | "rootless"));
    let slots = cfg.slots();
    let cgroups = slot_cgroups(cfg, slots, isolated && userns.is_ok());
    cgroups.remove();
    let error = mode
        .as_ref()
        .err()
        .cloned()
        .or_else(|| userns.as_ref().err().cloned());
    let out = json!({
        "ok": error.is_none(),
        "mode": mode.as_ref().map(|m| m.to_string()).unwrap_or_else(|_| "refused".into()),
        "euid": euid,
        "egid": egid,
        "user_namespaces": userns.is_ok(),
        "error": error,
        "slots": slots,
        "pids": cgroups.info.pids,
        "memory": cgroups.info.memory,
        "kill": cgroups.info.kill,
        "cgroup_note": cgroups.info.note,
        "socket": cfg.socket_path(),
        "socket_group": cfg.server.socket_group,
        "version": env!("CARGO_PKG_VERSION"),
    });
    println!("{out}");
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs the daemon; returns the process exit code (0 after a graceful shutdown).
pub fn daemon_main(argv: Vec<String>) -> i32 {
    let args = match parse_args(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            if argv.iter().any(|a| a == "-h" || a == "--help") {
                print!("{USAGE}");
            }
            return 0;
        }
        Err(e) => {
            eprintln!("grpo-sandboxd: {e}");
            return 2;
        }
    };
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            log::error("fatal", &[("error", e.clone().into())]);
            eprintln!("grpo-sandboxd: {e}");
            1
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    log::set_quiet(args.quiet);
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(s) = args.socket {
        cfg.server.socket = s;
    }
    if let Some(t) = args.tcp {
        cfg.server.tcp = t;
    }
    if let Some(t) = args.token_file {
        cfg.server.token_file = t;
    }
    if let Some(t) = args.tls_cert {
        cfg.server.tls_cert = t;
    }
    if let Some(t) = args.tls_key {
        cfg.server.tls_key = t;
    }
    if let Some(n) = args.slots {
        cfg.pool.slots = n;
    }
    // Checked before any slot starts: a refused listener should not cost a pool start-up.
    let token: Option<Arc<auth::TokenCell>> = if cfg.server.token_file.is_empty() {
        None
    } else {
        Some(Arc::new(auth::token_cell(Path::new(
            &cfg.server.token_file,
        ))?))
    };
    cfg.check_tls()?;
    let tls: Option<Arc<tls::TlsConfig>> = if cfg.server.tls_cert.is_empty() {
        None
    } else {
        Some(Arc::new(tls::tls_config(
            &cfg.server.tls_cert,
            &cfg.server.tls_key,
        )?))
    };
    auth::check_tcp_policy(
        &cfg.server.tcp,
        token.is_some(),
        cfg.server.allow_unauthenticated_tcp,
    )?;
    if !cfg.server.tcp.is_empty() && token.is_none() {
        log::warn(
            "tcp without a token",
            &[(
                "note",
                "every local user (or, beyond loopback, every host that reaches the port) can run programs here; \
                 set server.token_file"
                    .into(),
            )],
        );
    }
    if args.probe {
        return probe(&cfg, args.insecure, args.rootless);
    }
    let mode = isolation_mode(&cfg, args.insecure, args.rootless)?;
    let isolated = mode != "insecure-no-isolation";
    let rootless = mode == "rootless";
    if rootless {
        isolation::probe_rootless()?;
    }
    cfg.isolation.mode = mode.into();
    let interpreter = resolve_interpreter(&cfg.python.interpreter)?;
    let (version, prefix) = probe_interpreter(&interpreter)?;
    let mut ro_paths = cfg.isolation.ro_paths.clone();
    // The stdlib's prefix, and the binary itself where it lives elsewhere (a venv made with
    // --copies, a copied interpreter): each bound read-only unless a configured path covers it.
    for needed in [prefix.clone(), interpreter.to_string_lossy().into_owned()] {
        if !ro_paths.iter().any(|p| Path::new(&needed).starts_with(p)) {
            ro_paths.push(needed);
        }
    }
    let (compilers, needed) = languages::resolve_compilers(&cfg, &ro_paths)?;
    ro_paths.extend(needed);
    let slots = cfg.slots();
    // With more slots than cores a run may wait for a CPU; its wall-clock backstop does not count
    // that wait, up to this many times its limit (the most it can be when every slot runs).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wall_factor = slots.div_ceil(cores).max(1) as u64;
    let cgroups = slot_cgroups(&cfg, slots, isolated);
    let cgroup = cgroups.info.clone();
    let mut iargs = vec!["-I".to_string(), "-B".to_string()];
    if !cfg.python.site_packages {
        iargs.push("-S".into());
    }
    let specs: Vec<SlotSpec> = (0..slots)
        .map(|i| SlotSpec {
            index: i,
            interpreter: interpreter.clone(),
            interpreter_args: iargs.clone(),
            zygote_source: zygote::ZYGOTE_SOURCE,
            zygote_native: zygote::ZYGOTE_NATIVE,
            ro_paths: ro_paths.clone(),
            host_uid_root: cfg.isolation.uid_base + 2 * i as u32,
            host_uid_user: cfg.isolation.uid_base + 2 * i as u32 + 1,
            isolated,
            cgroup_procs: cgroups.procs[i].clone(),
            oom_control: cgroups.oom_control[i].clone(),
            cgroup_kill: cgroups.kill[i].clone(),
            rootless,
        })
        .collect();
    let hello = json!({
        "isolated": isolated,
        // Rootless, the slot maps one uid (0 inside): programs stay uid 0 of a nested user
        // namespace, without any capability.
        "uid": if rootless { 0 } else { isolation::SANDBOX_UID },
        "seccomp_slot_hex": hex(&seccomp::filter_bytes(&seccomp::slot_filter())),
        "seccomp_run_hex": hex(&seccomp::filter_bytes(&seccomp::run_filter())),
        "preload": cfg.python.preload,
        "tmpfs_bytes": cfg.limits.tmpfs_mb << 20,
        "tmpfs_inodes": cfg.limits.tmpfs_inodes,
        "per_run_netns": cfg.isolation.per_run_network_namespace,
        "max_output_bytes": cfg.limits.max_output_bytes,
        "units_per_process": cfg.limits.tests_per_process,
        "max_open_files": cfg.limits.max_open_files,
        "wall_factor": wall_factor,
    });
    // SAFETY: prctl and signal setup at startup, before any thread is spawned.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, on_hangup as *const () as libc::sighandler_t);
    }
    let pool = zygote::Pool::start(specs, hello, cfg.server.max_queue).map_err(|e| {
        if isolated {
            format!("{e}\nrefusing to run without isolation; pass --insecure-no-isolation to run trusted code unisolated")
        } else {
            e
        }
    })?;
    let engine = Arc::new(Engine {
        pool,
        isolated,
        python_version: version,
        interpreter: interpreter.to_string_lossy().into_owned(),
        cgroup,
        started: std::time::Instant::now(),
        served: 0.into(),
        metrics: Default::default(),
        compilers: compilers.clone(),
        build_cache: build_cache::BuildCache::new(cfg.pool.build_cache_mb << 20),
        wall_factor,
        cores,
        cfg,
    });
    if args.check {
        let r = server::route(&engine, "GET", "/health", b"");
        println!("{}", String::from_utf8_lossy(&r.body));
        engine.pool.close();
        std::thread::sleep(std::time::Duration::from_millis(100));
        cgroups.remove();
        return Ok(());
    }
    // Orphans of the slots' keepers land on us (child subreaper): reap them.
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(|| loop {
            // SAFETY: waitpid with WNOHANG on any child.
            while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
            std::thread::sleep(std::time::Duration::from_millis(500));
        })
        .map_err(|e| e.to_string())?;

    let socket = engine.cfg.socket_path();
    let listener = bind_unix(&socket, &engine.cfg.server.socket_group)?;
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    if !engine.cfg.server.tcp.is_empty() {
        let tcp = std::net::TcpListener::bind(&engine.cfg.server.tcp)
            .map_err(|e| format!("cannot listen on {}: {e}", engine.cfg.server.tcp))?;
        use std::os::fd::AsRawFd;
        let fd = tcp.as_raw_fd();
        let (e, a) = (engine.clone(), active.clone());
        let t = token.clone();
        threads.push(std::thread::spawn(move || match tls {
            Some(tls) => {
                server::accept_loop(e, tcp, fd, move |l| tls::wrap(&tls, l.accept()?.0), a, t)
            }
            None => server::accept_loop(e, tcp, fd, |l| l.accept().map(|(s, _)| s), a, t),
        }));
    }
    log::info(
        "listening",
        &[
            ("socket", socket.to_string_lossy().into_owned().into()),
            ("tcp", engine.cfg.server.tcp.clone().into()),
            ("tcp_token", token.is_some().into()),
            ("tcp_tls", (!engine.cfg.server.tls_cert.is_empty()).into()),
            ("slots", engine.pool.size.into()),
            ("isolated", isolated.into()),
            ("python", engine.python_version.clone().into()),
            ("interpreter", engine.interpreter.clone().into()),
            ("pids", engine.cgroup.pids.clone().into()),
            (
                "compiled",
                compilers
                    .iter()
                    .map(|c| format!("{} ({} {})", c.spec.name, c.path, c.version))
                    .collect::<Vec<_>>()
                    .join(", ")
                    .into(),
            ),
        ],
    );
    {
        use std::os::fd::AsRawFd;
        let fd = listener.as_raw_fd();
        server::accept_loop(
            engine.clone(),
            listener,
            fd,
            |l| l.accept().map(|(s, _)| s),
            active.clone(),
            None,
        );
    }
    for t in threads {
        let _ = t.join();
    }
    let _ = std::fs::remove_file(&socket);
    // Idle keep-alive connections do not hold the shutdown; requests being processed do.
    let in_flight = || server::IN_FLIGHT.load(Ordering::SeqCst);
    log::info(
        "shutting down",
        &[
            ("in_flight", in_flight().into()),
            ("connections", active.load(Ordering::Relaxed).into()),
        ],
    );
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(engine.cfg.server.shutdown_grace_s);
    while in_flight() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    engine.pool.close();
    std::thread::sleep(std::time::Duration::from_millis(100));
    cgroups.remove();
    log::info("stopped", &[]);
    Ok(())
}
