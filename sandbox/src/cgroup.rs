//! The per-slot pids and memory cgroups, where the host lets us create them (below the daemon's
//! own cgroups, so the host's accounting of the daemon still covers them).

use serde::Serialize;
use std::path::{Path, PathBuf};

/// How processes and memory are bounded, as reported by /health.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CgroupInfo {
    /// "cgroup-v1-pids+rlimit-nproc" when a per-slot pids cgroup is in use, else "rlimit-nproc".
    pub pids: String,
    /// "cgroup-v1-memory+rlimit-as" when a per-slot memory cgroup bounds everything a run
    /// holds, else "rlimit-as" (each process's address space only).
    pub memory: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The per-slot cgroups the daemon made: what each slot's zygote joins, and where the memory
/// controller counts the OOM kills in it.
#[derive(Debug, Default)]
pub struct Cgroups {
    /// Per slot: the `cgroup.procs` files its zygote joins.
    pub procs: Vec<Vec<PathBuf>>,
    /// Per slot: its memory cgroup's `memory.oom_control`, when there is one.
    pub oom_control: Vec<Option<PathBuf>>,
    pub info: CgroupInfo,
    /// What to remove at shutdown, children before parents.
    dirs: Vec<PathBuf>,
}

/// Where this process's own cgroup for a v1 `controller` is on disk: the hierarchy's mount
/// point (from mountinfo) joined with the path in /proc/self/cgroup. Per-slot cgroups go below
/// it, so whatever the host accounts this daemon to (a service's cgroup) still holds them.
fn own_v1_cgroup(controller: &str) -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    v1_cgroup_dir(&cgroups, &mountinfo, controller)
}

/// `own_v1_cgroup` on the texts of /proc/self/cgroup and /proc/self/mountinfo.
fn v1_cgroup_dir(cgroups: &str, mountinfo: &str, controller: &str) -> Option<PathBuf> {
    let path = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
        ctl.split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })?;
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split(' ');
        let (fstype, _, opts) = (r.next()?, r.next()?, r.next()?);
        if fstype != "cgroup" || !opts.split(',').any(|o| o == controller) {
            return None;
        }
        let f: Vec<&str> = left.split(' ').collect();
        let (root, mount) = (*f.get(3)?, *f.get(4)?);
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .trim_start_matches('/');
        Some(PathBuf::from(mount).join(rel))
    })
}

/// `grpo-sandboxd-<pid>/slot<i>` under `base`, each with `settings` written (a missing
/// optional file is skipped; any other failure gives up on this controller).
fn make_slot_cgroups(
    base: &Path,
    slots: usize,
    settings: &[(&str, String, bool)],
    dirs: &mut Vec<PathBuf>,
) -> Result<Vec<PathBuf>, String> {
    remove_stale_cgroups(base);
    let parent = base.join(format!("grpo-sandboxd-{}", std::process::id()));
    let mut made = Vec::new();
    let result = (|| {
        for i in 0..slots {
            let dir = parent.join(format!("slot{i}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            made.push(dir.clone());
            for (file, value, required) in settings {
                let path = dir.join(file);
                if !required && !path.exists() {
                    continue;
                }
                std::fs::write(&path, value)
                    .map_err(|e| format!("cannot set {}: {e}", path.display()))?;
            }
        }
        Ok(made.iter().map(|d| d.join("cgroup.procs")).collect())
    })();
    made.push(parent);
    if result.is_err() {
        for d in &made {
            let _ = std::fs::remove_dir(d);
        }
    } else {
        dirs.extend(made);
    }
    result
}

impl Cgroups {
    /// A pids and a memory cgroup per slot where the host's v1 hierarchies let us make them
    /// below our own: `pids.max = pids_max`, and `memory_bytes` for everything a slot's run
    /// holds (its processes, tmpfs pages, pipe buffers) on top of RLIMIT_AS per process.
    pub fn setup(slots: usize, pids_max: u64, memory_bytes: u64) -> Cgroups {
        let mut cg = Cgroups {
            procs: vec![Vec::new(); slots],
            oom_control: vec![None; slots],
            ..Default::default()
        };
        let mut notes = Vec::new();
        let mut add = |cg: &mut Cgroups, ctl: &str, settings: &[(&str, String, bool)]| {
            let Some(base) = own_v1_cgroup(ctl).filter(|b| b.join("cgroup.procs").exists()) else {
                notes.push(format!("no cgroup v1 {ctl} hierarchy"));
                return false;
            };
            match make_slot_cgroups(&base, slots, settings, &mut cg.dirs) {
                Ok(procs) => {
                    notes.push(format!("per-slot {ctl} cgroups under {}", base.display()));
                    for (i, p) in procs.into_iter().enumerate() {
                        cg.procs[i].push(p);
                    }
                    true
                }
                Err(e) => {
                    notes.push(format!("{ctl}: {e}"));
                    false
                }
            }
        };
        let pids = add(&mut cg, "pids", &[("pids.max", pids_max.to_string(), true)]);
        let bytes = memory_bytes.to_string();
        let memory = add(
            &mut cg,
            "memory",
            &[
                ("memory.limit_in_bytes", bytes.clone(), true),
                // With swap, the limit above bounds RAM only; this one RAM plus swap.
                ("memory.memsw.limit_in_bytes", bytes, false),
            ],
        );
        if memory {
            for (i, procs) in cg.procs.iter().enumerate() {
                let dir = procs.last().and_then(|p| p.parent());
                cg.oom_control[i] = dir.map(|d| d.join("memory.oom_control"));
            }
        }
        cg.info = CgroupInfo {
            pids: if pids {
                "cgroup-v1-pids+rlimit-nproc"
            } else {
                "rlimit-nproc"
            }
            .into(),
            memory: if memory {
                "cgroup-v1-memory+rlimit-as"
            } else {
                "rlimit-as"
            }
            .into(),
            note: Some(notes.join("; ")),
        };
        cg
    }

    /// No cgroups (isolation.cgroup = "off", or no isolation at all).
    pub fn none(slots: usize) -> Cgroups {
        Cgroups {
            procs: vec![Vec::new(); slots],
            oom_control: vec![None; slots],
            info: CgroupInfo {
                pids: "rlimit-nproc".into(),
                memory: "rlimit-as".into(),
                note: Some("disabled".into()),
            },
            dirs: Vec::new(),
        }
    }

    /// Removes the cgroups made here (their processes must be gone by then).
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// How many OOM kills a memory cgroup has seen (`oom_kill N` in v1's memory.oom_control).
pub fn oom_kills(oom_control: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(oom_control).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// Cgroups left by a daemon that was SIGKILLed: empty once its slots died, so rmdir succeeds.
fn remove_stale_cgroups(base: &Path) {
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
        if Path::new(&format!("/proc/{pid}")).exists() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_found_below_the_hierarchys_mount() {
        let cgroups = "8:pids:/\n4:memory:/svc/abc\n2:cpu,cpuacct:/\n0::/\n";
        let mountinfo = "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n\
                         31 25 0:27 / /sys/fs/cgroup/pids rw,relatime shared:10 - cgroup cgroup rw,pids\n\
                         32 25 0:28 /svc /mnt/mem rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            v1_cgroup_dir(cgroups, mountinfo, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/svc/abc"))
        );
        assert_eq!(
            v1_cgroup_dir(cgroups, mountinfo, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        // A hierarchy mounted from below its root (a container's view) is joined relative to it.
        let nested = "40 25 0:28 /svc /mnt/mem rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            v1_cgroup_dir(cgroups, nested, "memory"),
            Some(PathBuf::from("/mnt/mem/abc"))
        );
        assert_eq!(v1_cgroup_dir(cgroups, mountinfo, "blkio"), None);
        assert_eq!(v1_cgroup_dir("0::/user.slice\n", mountinfo, "memory"), None);
    }

    #[test]
    fn oom_kills_are_read_from_oom_control() {
        let dir = std::env::temp_dir().join(format!("grpo-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("memory.oom_control");
        std::fs::write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n").unwrap();
        assert_eq!(oom_kills(&f), Some(7));
        std::fs::write(&f, "oom_kill_disable 0\n").unwrap();
        assert_eq!(oom_kills(&f), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
