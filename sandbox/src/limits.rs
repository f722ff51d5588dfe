//! Resource limits: clamping a request's limits to the configured maxima, and the per-slot pids
//! cgroup where the host lets us create one (memory is bounded by RLIMIT_AS: on the machines we
//! target the memory controller belongs to the host's own machinery).

use crate::config::LimitsConfig;
use serde::Serialize;
use std::path::PathBuf;

/// Limits of one run, after clamping; sent to the zygote as is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunLimits {
    pub timeout_ms: u64,
    pub cpu_s: u64,
    pub memory_bytes: u64,
    pub max_processes: u64,
    pub max_file_bytes: u64,
    pub max_open_files: u64,
    pub max_output_bytes: usize,
}

impl RunLimits {
    /// A request may lower any limit but never raise one above the daemon's maximum.
    pub fn clamp(cfg: &LimitsConfig, timeout_ms: Option<u64>, memory_mb: Option<u64>) -> RunLimits {
        let timeout_ms = timeout_ms
            .unwrap_or(cfg.default_timeout_ms)
            .clamp(1, cfg.max_timeout_ms);
        let memory_mb = memory_mb
            .unwrap_or(cfg.default_memory_mb)
            .clamp(32, cfg.max_memory_mb);
        RunLimits {
            timeout_ms,
            // CPU seconds are whole; the wall-clock deadline is the precise bound.
            cpu_s: timeout_ms.div_ceil(1000) + 1,
            memory_bytes: memory_mb << 20,
            max_processes: cfg.max_processes,
            max_file_bytes: cfg.max_file_bytes,
            max_open_files: cfg.max_open_files,
            max_output_bytes: cfg.max_output_bytes,
        }
    }
}

/// How processes and memory are bounded, as reported by /health.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupInfo {
    /// "cgroup-v1-pids" when a per-slot pids cgroup is in use, else "rlimit-nproc".
    pub pids: String,
    /// Always "rlimit-as" here: see the module comment.
    pub memory: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Creates `grpo-sandboxd/slot<i>` under the v1 pids hierarchy with `pids.max` set; returns the
/// `cgroup.procs` path per slot, or None with the reason when the host does not allow it.
pub fn setup_pids_cgroups(slots: usize, pids_max: u64) -> (Option<Vec<PathBuf>>, String) {
    let base = PathBuf::from("/sys/fs/cgroup/pids");
    if !base.join("cgroup.procs").exists() {
        return (None, "no cgroup v1 pids hierarchy".into());
    }
    remove_stale_cgroups(&base);
    let parent = base.join(format!("grpo-sandboxd-{}", std::process::id()));
    let mut out = Vec::new();
    for i in 0..slots {
        let dir = parent.join(format!("slot{i}"));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return (None, format!("cannot create {}: {e}", dir.display()));
        }
        if let Err(e) = std::fs::write(dir.join("pids.max"), pids_max.to_string()) {
            return (None, format!("cannot set pids.max: {e}"));
        }
        out.push(dir.join("cgroup.procs"));
    }
    (
        Some(out),
        format!("per-slot pids cgroups under {}", parent.display()),
    )
}

/// Cgroups left by a daemon that was SIGKILLed: empty once its slots died, so rmdir succeeds.
fn remove_stale_cgroups(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("grpo-sandboxd-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(slots) = std::fs::read_dir(e.path()) {
            for s in slots.flatten().filter(|s| s.path().is_dir()) {
                let _ = std::fs::remove_dir(s.path());
            }
        }
        let _ = std::fs::remove_dir(e.path());
    }
}

/// Removes the cgroups made by `setup_pids_cgroups` (they must be empty by then).
pub fn remove_pids_cgroups(procs: &[PathBuf]) {
    let mut parent = None;
    for p in procs {
        if let Some(dir) = p.parent() {
            let _ = std::fs::remove_dir(dir);
            parent = dir.parent().map(|d| d.to_path_buf());
        }
    }
    if let Some(p) = parent {
        let _ = std::fs::remove_dir(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_cannot_raise_limits() {
        let cfg = LimitsConfig::default();
        let l = RunLimits::clamp(&cfg, Some(10_000_000), Some(1 << 20));
        assert_eq!(l.timeout_ms, cfg.max_timeout_ms);
        assert_eq!(l.memory_bytes, cfg.max_memory_mb << 20);
    }

    #[test]
    fn request_may_lower_limits_and_defaults_apply() {
        let cfg = LimitsConfig::default();
        let l = RunLimits::clamp(&cfg, Some(250), Some(64));
        assert_eq!((l.timeout_ms, l.cpu_s, l.memory_bytes), (250, 2, 64 << 20));
        let d = RunLimits::clamp(&cfg, None, None);
        assert_eq!(d.timeout_ms, cfg.default_timeout_ms);
    }

    #[test]
    fn zero_timeout_becomes_one_millisecond() {
        let l = RunLimits::clamp(&LimitsConfig::default(), Some(0), Some(0));
        assert_eq!((l.timeout_ms, l.memory_bytes), (1, 32 << 20));
    }
}
