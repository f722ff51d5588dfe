//! Resource limits of one run: clamping a request's limits to the configured maxima. RLIMITs bound
//! each process; the per-slot cgroups are in `cgroup.rs`.

use crate::config::LimitsConfig;
use serde::Serialize;

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
