//! Daemon configuration: a TOML file whose every key has a default, so an empty file is valid.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub pool: PoolConfig,
    pub python: PythonConfig,
    pub limits: LimitsConfig,
    pub isolation: IsolationConfig,
    pub cpp: CompilerConfig,
    pub c: CompilerConfig,
    pub java: CompilerConfig,
    pub javascript: CompilerConfig,
    pub rust: CompilerConfig,
}

/// A language beside Python (`[cpp]`, `[c]`, `[rust]`, `[java]`, `[javascript]`): compiled in the sandbox
/// (the compiler runs as the program's uid, under the same namespaces, filter and hard limits,
/// with limits of its own), then run once per test. Unset keys take the language's defaults
/// (compiled.rs `LANGUAGES`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompilerConfig {
    /// The compiler (for JavaScript, the interpreter); empty = the language's default
    /// (/usr/bin/g++, gcc, rustc, javac, node) when present (the language is off without one). It must
    /// lie under a path bound into the sandbox (`/usr`, or `isolation.ro_paths`).
    pub compiler: String,
    /// The compiler's flags (before `-o /tmp/main /tmp/main.<ext>` for C and C++); for
    /// JavaScript, node's; unset = the language's.
    pub flags: Option<Vec<String>>,
    /// Arguments after the source (libraries, e.g. `-lm`); unset = the language's.
    pub libs: Option<Vec<String>>,
    /// The runtime's flags for each run (Java: the JVM's, e.g. `-Xss16m`); unset = the
    /// language's.
    pub run_flags: Option<Vec<String>>,
    /// Wall-clock limit of one compile (a template bomb stops here).
    pub compile_timeout_ms: u64,
    /// Address-space limit of the compiler (cc1plus on <bits/stdc++.h> wants a few hundred MB).
    pub compile_memory_mb: u64,
}

impl Default for CompilerConfig {
    fn default() -> Self {
        CompilerConfig {
            compiler: String::new(),
            flags: None,
            libs: None,
            run_flags: None,
            compile_timeout_ms: 30_000,
            compile_memory_mb: 2048,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Unix socket path; empty = the per-user default (see `default_socket_path`).
    pub socket: String,
    /// Optional TCP listener such as "127.0.0.1:8787"; empty = none.
    pub tcp: String,
    /// File holding the token every TCP request must carry (`Authorization: Bearer ...`); mode
    /// 0600 or stricter. Empty = no token, which is allowed on loopback only unless
    /// `allow_unauthenticated_tcp`. The Unix socket is guarded by its file mode instead.
    pub token_file: String,
    /// PEM certificate chain and private key (mode 0600) for TLS on the TCP listener; both
    /// empty = plain TCP. Read again on SIGHUP. The Unix socket is never TLS.
    pub tls_cert: String,
    pub tls_key: String,
    /// Listen beyond loopback without a token (a private network with access control of its own).
    pub allow_unauthenticated_tcp: bool,
    /// Group the Unix socket is given (mode 0660): its members may use the daemon without TCP.
    /// Empty = the daemon's own group.
    pub socket_group: String,
    /// Largest accepted request body.
    pub max_request_bytes: usize,
    /// Open connections at once (both listeners). At the limit a new connection closes one that
    /// has not made an authorized request yet, else the longest idle keep-alive one; only when
    /// all are mid-request is it answered 503 and closed (`connections.rs`).
    pub max_connections: usize,
    /// Connections one TCP peer address may hold; more are answered 503 and closed.
    pub max_connections_per_peer: usize,
    /// Connections that have not made an authorized request yet (no token checked, no complete
    /// head on the Unix socket); beyond this the oldest of the peer holding most is closed.
    pub max_pending_connections: usize,
    /// Seconds a request head may take from its first byte (a new connection's first one from
    /// the connect, TLS handshake included): a client trickling header lines is cut off here.
    pub header_timeout_s: f64,
    /// Seconds a request's head and body together may take, and writing its answer.
    pub request_timeout_s: f64,
    /// Seconds a kept-alive connection may wait for its next request.
    pub idle_timeout_s: f64,
    /// Program output (stdout, stderr, fetched files, over every item and test) one answer may
    /// carry; beyond it the largest outputs are cut to a common length and marked `truncated`.
    pub max_response_output_bytes: usize,
    /// Requests waiting for a free slot; beyond this the daemon answers 503 "busy".
    pub max_queue: usize,
    /// Programs in one /batch request.
    pub max_batch: usize,
    /// Seconds in-flight requests get to finish on SIGTERM before slots are killed.
    pub shutdown_grace_s: u64,
}

/// Slots per core by default: more runs in flight than cores, so programs that sleep or block
/// until their deadline do not leave the cores idle (their CPU time is the limit, and the wall
/// clock, minus the time spent waiting for a CPU, the backstop).
pub const SLOTS_PER_CORE: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Warm zygotes, each serving one run at a time; 0 = `SLOTS_PER_CORE` per CPU core (a run
    /// blocked until its deadline holds a slot but no core; docs/sandbox.md, "Time limits").
    pub slots: usize,
    /// Memory for builds of compiled programs, so a program seen again skips its compile
    /// (`build_cache.rs`); 0 = off.
    pub build_cache_mb: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            slots: 0,
            build_cache_mb: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PythonConfig {
    /// Interpreter; empty = the first of /usr/bin/python3, /usr/local/bin/python3 (resolved to the
    /// real binary once, so a slow shim on PATH is never used per run).
    pub interpreter: String,
    /// Modules imported once in the zygote so every run starts with them loaded. Each one makes
    /// every fork dearer (more pages to map and copy, and at-fork hooks: `threading` alone adds
    /// ~0.3 ms per run here), so the default holds what programs commonly import and is cheap
    /// to carry; `threading`, `dataclasses` and `statistics` are imported by the programs that use them.
    pub preload: Vec<String>,
    /// Let programs import from site-packages (off: `python -I -S`).
    pub site_packages: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub default_timeout_ms: u64,
    /// Upper bound for a request's `timeout_ms` (per program / per test).
    pub max_timeout_ms: u64,
    pub default_memory_mb: u64,
    pub max_memory_mb: u64,
    /// Cap per stream (stdout, stderr) and per fetched file.
    pub max_output_bytes: usize,
    /// RLIMIT_FSIZE: the largest file a program may write.
    pub max_file_bytes: u64,
    /// RLIMIT_NPROC inside the run's own user namespace (threads count).
    pub max_processes: u64,
    /// RLIMIT_NOFILE.
    pub max_open_files: u64,
    /// Size of the per-run tmpfs (/tmp, also /dev/shm).
    pub tmpfs_mb: u64,
    /// Inodes of the per-run tmpfs (bounds "many small files").
    pub tmpfs_inodes: u64,
    /// Tests in one /run_tests request.
    pub max_tests: usize,
    /// Tests of one request run one after another in the same sandboxed process (each from a
    /// fresh `__main__` and fresh stdio; a test that crashes or times out gets the rest a new
    /// process). 1 = a fresh process for every test; a request can ask for that too.
    pub tests_per_process: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IsolationConfig {
    /// First host uid of the range the slots map to (two uids per slot, none of them owning files).
    pub uid_base: u32,
    /// Paths bind-mounted read-only into the sandbox root (symlinks are recreated as symlinks).
    pub ro_paths: Vec<String>,
    /// "auto": pids and memory cgroups per slot (v2 where the daemon's own cgroup offers the
    /// controllers, else v1) where the host lets us create them; "off": never.
    pub cgroup: String,
    /// "auto": "root" when the daemon runs as root, else "rootless". "root": per-slot host uids
    /// (refused unless root). "rootless": one user namespace per slot mapping only the daemon's
    /// own uid (unprivileged user namespaces must be allowed); see docs/sandbox.md.
    pub mode: String,
    /// A fresh network namespace per run. Off (the default), each slot has one: empty, never
    /// shared by two runs at once (a slot's runs follow each other, and every process of a run
    /// is dead before the next starts), and seccomp lets programs create AF_UNIX sockets only,
    /// so there is no network either way. A namespace per run costs ~0.5 ms of CPU per run
    /// here (creation, and the kernel's cleanup after it), about a sixth of a trivial run.
    pub per_run_network_namespace: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            socket: String::new(),
            tcp: String::new(),
            token_file: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            allow_unauthenticated_tcp: false,
            socket_group: String::new(),
            max_request_bytes: 64 << 20,
            max_connections: 512,
            max_connections_per_peer: 256,
            max_pending_connections: 128,
            header_timeout_s: 10.0,
            request_timeout_s: 120.0,
            idle_timeout_s: 300.0,
            max_response_output_bytes: 64 << 20,
            max_queue: 1024,
            max_batch: 4096,
            shutdown_grace_s: 10,
        }
    }
}

impl Default for PythonConfig {
    fn default() -> Self {
        PythonConfig {
            interpreter: String::new(),
            preload: [
                "sys",
                "os",
                "re",
                "math",
                "json",
                "random",
                "string",
                "itertools",
                "functools",
                "collections",
                "heapq",
                "bisect",
                "typing",
                "fractions",
                "decimal",
                "datetime",
                "copy",
                "operator",
                "array",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            site_packages: false,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            default_timeout_ms: 5_000,
            max_timeout_ms: 60_000,
            default_memory_mb: 512,
            max_memory_mb: 4096,
            max_output_bytes: 1 << 20,
            max_file_bytes: 16 << 20,
            max_processes: 32,
            max_open_files: 256,
            tmpfs_mb: 64,
            tmpfs_inodes: 4096,
            max_tests: 1000,
            tests_per_process: 16,
        }
    }
}

impl Default for IsolationConfig {
    fn default() -> Self {
        IsolationConfig {
            uid_base: 1_500_000,
            ro_paths: [
                "/usr",
                "/bin",
                "/lib",
                "/lib64",
                "/sbin",
                "/etc/ld.so.cache",
                "/etc/localtime",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            cgroup: "auto".into(),
            mode: "auto".into(),
            per_run_network_namespace: false,
        }
    }
}

impl Config {
    /// Each language section beside Python by its name (compiled.rs `LANGUAGES` names).
    pub fn language_sections(&self) -> [(&'static str, &CompilerConfig); 5] {
        [
            ("cpp", &self.cpp),
            ("c", &self.c),
            ("rust", &self.rust),
            ("java", &self.java),
            ("javascript", &self.javascript),
        ]
    }

    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        let l = &self.limits;
        if l.default_timeout_ms == 0 || l.default_timeout_ms > l.max_timeout_ms {
            return Err("limits.default_timeout_ms must be in 1..=max_timeout_ms".into());
        }
        if l.default_memory_mb < 32 || l.default_memory_mb > l.max_memory_mb {
            return Err("limits.default_memory_mb must be in 32..=max_memory_mb".into());
        }
        if l.max_processes == 0 || l.max_open_files < 16 || l.tmpfs_mb == 0 {
            return Err("limits: max_processes > 0, max_open_files >= 16, tmpfs_mb > 0".into());
        }
        if l.tests_per_process == 0 {
            return Err("limits.tests_per_process must be >= 1".into());
        }
        for (name, c) in self.language_sections() {
            if c.compile_timeout_ms == 0 || c.compile_memory_mb < 64 {
                return Err(format!(
                    "{name}: compile_timeout_ms > 0, compile_memory_mb >= 64"
                ));
            }
        }
        let s = &self.server;
        if s.max_connections == 0
            || s.max_connections_per_peer == 0
            || s.max_pending_connections == 0
        {
            return Err(
                "server: max_connections, max_connections_per_peer and max_pending_connections must be >= 1"
                    .into(),
            );
        }
        for (key, v) in [
            ("header_timeout_s", s.header_timeout_s),
            ("request_timeout_s", s.request_timeout_s),
            ("idle_timeout_s", s.idle_timeout_s),
        ] {
            if !(v > 0.0 && v <= 86_400.0) {
                return Err(format!("server.{key} must be in (0, 86400] seconds"));
            }
        }
        if !matches!(self.isolation.cgroup.as_str(), "auto" | "off") {
            return Err("isolation.cgroup must be \"auto\" or \"off\"".into());
        }
        if !matches!(self.isolation.mode.as_str(), "auto" | "root" | "rootless") {
            return Err("isolation.mode must be \"auto\", \"root\" or \"rootless\"".into());
        }
        Ok(())
    }

    /// TLS needs both files and a TCP listener to speak it on (checked once the command line
    /// has been applied over the file).
    pub fn check_tls(&self) -> Result<(), String> {
        let s = &self.server;
        if s.tls_cert.is_empty() != s.tls_key.is_empty() {
            return Err(
                "TLS needs both server.tls_cert and server.tls_key (--tls-cert, --tls-key)".into(),
            );
        }
        if !s.tls_cert.is_empty() && s.tcp.is_empty() {
            return Err(
                "server.tls_cert is set but there is no TCP listener (server.tcp, --tcp): \
                        the Unix socket is never TLS"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn slots(&self) -> usize {
        if self.pool.slots > 0 {
            return self.pool.slots;
        }
        SLOTS_PER_CORE
            * std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
    }

    pub fn socket_path(&self) -> PathBuf {
        if self.server.socket.is_empty() {
            default_socket_path()
        } else {
            PathBuf::from(&self.server.socket)
        }
    }
}

/// `$GRPO_SANDBOX_SOCKET`, else /run/grpo-sandboxd/sandboxd.sock for root, else
/// `$XDG_RUNTIME_DIR/grpo-sandboxd/sandboxd.sock`, else /tmp/grpo-sandboxd-<uid>/sandboxd.sock.
/// The Python client computes the same path.
pub fn default_socket_path() -> PathBuf {
    if let Ok(p) = std::env::var("GRPO_SANDBOX_SOCKET") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if uid == 0 {
        return PathBuf::from("/run/grpo-sandboxd/sandboxd.sock");
    }
    if let Ok(d) = std::env::var("XDG_RUNTIME_DIR") {
        if !d.is_empty() {
            return PathBuf::from(d).join("grpo-sandboxd/sandboxd.sock");
        }
    }
    PathBuf::from(format!("/tmp/grpo-sandboxd-{uid}/sandboxd.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.limits.default_timeout_ms, 5_000);
        assert!(c.slots() >= 1);
    }

    #[test]
    fn sample_config_parses() {
        let text = include_str!("../grpo-sandboxd.toml");
        Config::parse(text).unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("[limits]\ntimeout = 3\n").is_err());
    }

    #[test]
    fn default_above_maximum_is_rejected() {
        assert!(
            Config::parse("[limits]\ndefault_timeout_ms = 90000\nmax_timeout_ms = 1000\n").is_err()
        );
    }
}
