//! The per-slot cgroups: pids and memory limits for everything a slot runs, an OOM-kill counter,
//! and `cgroup.kill` for killing a slot whole. Always below the daemon's own cgroup, so whatever
//! the host accounts the daemon to (a service's cgroup, a user's delegated subtree) still holds
//! them.
//!
//! The backend is chosen per host: cgroup v2 where the daemon's own cgroup is on a cgroup2
//! hierarchy that offers the `pids` and `memory` controllers; else the v1 `pids` and `memory`
//! hierarchies; else none (RLIMIT_NPROC and RLIMIT_AS alone). A hybrid host (v1 controllers, an
//! empty cgroup2 beside them) gets v1 limits and v2 cgroups without controllers for the kill.
//!
//! v2 layout, below the daemon's own cgroup B:
//!
//! ```text
//! B/                      subtree_control: +pids +memory (B itself then holds no process)
//!   grpo-sandboxd-<pid>/  subtree_control: +pids +memory
//!     daemon/             the daemon (moved here first: v2 forbids processes in a cgroup
//!                         whose controllers are enabled for its children)
//!     slot<i>/            pids.max, memory.max, memory.swap.max = 0, memory.oom.group = 0
//! ```
//!
//! `memory.oom.group` stays 0 on purpose: a slot's cgroup holds its zygote, the harness and the
//! spare process already forked for the slot's *next* run. A group kill would take those too, and
//! the next run, not the one that used the memory, would fail. The run's own processes die
//! together anyway: its first process is pid 1 of a PID namespace of its own, and the OOM
//! killer's first choice (oom_score_adj 1000). Every process of a slot dies together only when the
//! daemon kills the slot (a deadline it had to enforce itself), through `cgroup.kill`.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// How processes and memory are bounded, and how a slot is killed, as /health reports it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CgroupInfo {
    /// "cgroup-v2-pids+rlimit-nproc", "cgroup-v1-pids+rlimit-nproc" or "rlimit-nproc".
    pub pids: String,
    /// "cgroup-v2-memory+rlimit-as", "cgroup-v1-memory+rlimit-as" (a limit on everything a
    /// slot's run holds: processes, tmpfs pages, pipe buffers) or "rlimit-as" (each process's
    /// address space only).
    pub memory: String,
    /// How the daemon kills a slot: "cgroup-v2-kill" (every process in the slot's cgroup,
    /// whatever namespace it is in) or "pid-namespace" (SIGKILL to the slot's pid 1).
    pub kill: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The per-slot cgroups the daemon made.
#[derive(Debug, Default)]
pub struct Cgroups {
    /// Per slot: the `cgroup.procs` files its keeper joins (all its descendants follow).
    pub procs: Vec<Vec<PathBuf>>,
    /// Per slot: where its memory cgroup counts OOM kills (v1 `memory.oom_control`, v2
    /// `memory.events`; both have an `oom_kill N` line).
    pub oom_control: Vec<Option<PathBuf>>,
    /// Per slot: its v2 `cgroup.kill`, where the kernel has one.
    pub kill: Vec<Option<PathBuf>>,
    pub info: CgroupInfo,
    /// What to remove at shutdown, children before parents.
    dirs: Vec<PathBuf>,
}

/// What the daemon asks of each slot's cgroup.
#[derive(Debug, Clone, Copy)]
pub struct SlotLimits {
    pub pids_max: u64,
    pub memory_bytes: u64,
}

const PIDS_V1: &str = "cgroup-v1-pids+rlimit-nproc";
const PIDS_V2: &str = "cgroup-v2-pids+rlimit-nproc";
const PIDS_NONE: &str = "rlimit-nproc";
const MEMORY_V1: &str = "cgroup-v1-memory+rlimit-as";
const MEMORY_V2: &str = "cgroup-v2-memory+rlimit-as";
const MEMORY_NONE: &str = "rlimit-as";
const KILL_V2: &str = "cgroup-v2-kill";
const KILL_PIDNS: &str = "pid-namespace";

/// Where this process's own cgroup for a v1 `controller` is on disk: the hierarchy's mount
/// point (from mountinfo) joined with the path in /proc/self/cgroup.
fn own_v1_cgroup(controller: &str) -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    v1_cgroup_dir(&cgroups, &mountinfo, controller)
}

/// This process's own cgroup on the cgroup2 hierarchy (the `0::` line), where one is mounted.
fn own_v2_cgroup() -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    v2_cgroup_dir(&cgroups, &mountinfo)
}

/// A mount of `fstype` whose options satisfy `opts_ok`: (root within the hierarchy, mount point).
fn find_mount<'a>(
    mountinfo: &'a str,
    fstype: &str,
    opts_ok: impl Fn(&str) -> bool,
) -> Option<(&'a str, &'a str)> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split(' ');
        let (fs, _, opts) = (r.next()?, r.next()?, r.next()?);
        if fs != fstype || !opts_ok(opts) {
            return None;
        }
        let f: Vec<&str> = left.split(' ').collect();
        Some((*f.get(3)?, *f.get(4)?))
    })
}

/// `path` (as /proc/self/cgroup names it) below a hierarchy mounted from `root` at `mount`.
fn join_below(root: &str, mount: &str, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .trim_start_matches('/');
    match rel {
        "" => PathBuf::from(mount),
        rel => PathBuf::from(mount).join(rel),
    }
}

/// `own_v1_cgroup` on the texts of /proc/self/cgroup and /proc/self/mountinfo.
fn v1_cgroup_dir(cgroups: &str, mountinfo: &str, controller: &str) -> Option<PathBuf> {
    let path = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
        ctl.split(',').any(|c| c == controller).then_some(path)
    })?;
    let (root, mount) = find_mount(mountinfo, "cgroup", |opts| {
        opts.split(',').any(|o| o == controller)
    })?;
    Some(join_below(root, mount, path))
}

/// `own_v2_cgroup` on the texts of /proc/self/cgroup and /proc/self/mountinfo.
fn v2_cgroup_dir(cgroups: &str, mountinfo: &str) -> Option<PathBuf> {
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let (root, mount) = find_mount(mountinfo, "cgroup2", |_| true)?;
    Some(join_below(root, mount, path))
}

/// The controllers a v2 cgroup offers its children (`cgroup.controllers`).
fn v2_controllers(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// How many OOM kills a memory cgroup has seen: the `oom_kill N` line of v1's
/// memory.oom_control or v2's memory.events.
pub fn oom_kills(counter: &Path) -> Option<u64> {
    parse_oom_kills(&std::fs::read_to_string(counter).ok()?)
}

fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value)
        .map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

fn mkdir(dir: &Path) -> Result<(), String> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

/// The pids (thread group ids) in a cgroup.
fn members(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills every process in a v2 cgroup and its descendants (`cgroup.kill`, Linux 5.14+).
pub fn kill_all(kill_file: &Path) -> bool {
    std::fs::write(kill_file, "1").is_ok()
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
        mkdir(&parent)?;
        for i in 0..slots {
            let dir = parent.join(format!("slot{i}"));
            mkdir(&dir)?;
            made.push(dir.clone());
            for (file, value, required) in settings {
                let path = dir.join(file);
                if !required && !path.exists() {
                    continue;
                }
                write(&path, value)?;
            }
        }
        Ok(made.clone())
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

/// The v2 subtree with controllers: moves this process into `grpo-sandboxd-<pid>/daemon`,
/// enables `controllers` for the children of `base` and of `grpo-sandboxd-<pid>`, and makes
/// the slots. Refuses (changing nothing) where `base` holds processes other than this one:
/// they would have to move too, and they are not ours (a login shell's scope, say).
fn setup_v2_limited(
    base: &Path,
    slots: usize,
    limits: SlotLimits,
    controllers: &[&str],
    dirs: &mut Vec<PathBuf>,
) -> Result<Vec<PathBuf>, String> {
    let me = std::process::id();
    let is_root = !base.join("cgroup.type").exists();
    let others: Vec<u32> = members(base).into_iter().filter(|&p| p != me).collect();
    if !is_root && !others.is_empty() {
        return Err(format!(
            "{} holds {} other process(es), so its controllers cannot be enabled for children \
             (cgroup v2 allows processes only in leaves); run the daemon as its own service \
             (the systemd unit has Delegate=yes) or under `systemd-run --scope -p Delegate=yes`",
            base.display(),
            others.len()
        ));
    }
    remove_stale_cgroups(base);
    let parent = base.join(format!("grpo-sandboxd-{me}"));
    let own = parent.join("daemon");
    mkdir(&parent)?;
    mkdir(&own)?;
    if !is_root {
        write(&own.join("cgroup.procs"), &me.to_string())?;
    }
    let enable: String = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    if !enable.is_empty() {
        write(&base.join("cgroup.subtree_control"), &enable)?;
        write(&parent.join("cgroup.subtree_control"), &enable)?;
    }
    let mut settings = Vec::new();
    if controllers.contains(&"pids") {
        settings.push(("pids.max", limits.pids_max.to_string(), true));
    }
    if controllers.contains(&"memory") {
        settings.push(("memory.max", limits.memory_bytes.to_string(), true));
        // Swap would let a run hold more than memory.max; none at all keeps the limit honest.
        settings.push(("memory.swap.max", "0".to_string(), false));
        // See the module comment: a group kill would take the slot's zygote and next run too.
        settings.push(("memory.oom.group", "0".to_string(), false));
    }
    let mut made = Vec::new();
    let result = (|| {
        for i in 0..slots {
            let dir = parent.join(format!("slot{i}"));
            mkdir(&dir)?;
            made.push(dir.clone());
            for (file, value, required) in &settings {
                let path = dir.join(file);
                if !required && !path.exists() {
                    continue;
                }
                write(&path, value)?;
            }
        }
        Ok(made.clone())
    })();
    if result.is_err() {
        for d in &made {
            let _ = std::fs::remove_dir(d);
        }
    } else {
        dirs.extend(made);
    }
    // The daemon's own leaf and the parent stay: this process lives there until it exits, and
    // the next start (or systemd, for the unit) removes them (`remove_stale_cgroups`).
    result
}

impl Cgroups {
    /// A pids and a memory limit per slot (`pids_max`; `memory_bytes` for everything a slot's
    /// run holds, on top of RLIMIT_AS per process), through the best backend the host offers.
    pub fn setup(slots: usize, limits: SlotLimits) -> Cgroups {
        let mut cg = Cgroups {
            procs: vec![Vec::new(); slots],
            oom_control: vec![None; slots],
            kill: vec![None; slots],
            ..Default::default()
        };
        let mut notes = Vec::new();
        let v2 = own_v2_cgroup().filter(|b| b.join("cgroup.procs").exists());
        let mut v2_done = false;
        if let Some(base) = &v2 {
            let offered = v2_controllers(base);
            let missing: Vec<&str> = ["pids", "memory"]
                .into_iter()
                .filter(|c| !offered.iter().any(|o| o == c))
                .collect();
            if missing.is_empty() {
                match setup_v2_limited(base, slots, limits, &["pids", "memory"], &mut cg.dirs) {
                    Ok(dirs) => {
                        notes.push(format!(
                            "per-slot pids and memory cgroups under {} (v2)",
                            base.display()
                        ));
                        cg.adopt_v2(&dirs, true);
                        v2_done = true;
                    }
                    Err(e) => notes.push(format!("cgroup v2: {e}")),
                }
            } else {
                notes.push(format!(
                    "cgroup v2 at {} offers no {} controller",
                    base.display(),
                    missing.join(" or ")
                ));
            }
        } else {
            notes.push("no cgroup v2 hierarchy".into());
        }
        let (mut pids, mut memory) = (v2_done, v2_done);
        if !v2_done {
            pids = cg.add_v1(
                "pids",
                &[("pids.max", limits.pids_max.to_string(), true)],
                &mut notes,
            );
            let bytes = limits.memory_bytes.to_string();
            memory = cg.add_v1(
                "memory",
                &[
                    ("memory.limit_in_bytes", bytes.clone(), true),
                    // With swap, the limit above bounds RAM only; this one RAM plus swap.
                    ("memory.memsw.limit_in_bytes", bytes, false),
                ],
                &mut notes,
            );
            if memory {
                for (i, procs) in cg.procs.iter().enumerate() {
                    let dir = procs.last().and_then(|p| p.parent());
                    cg.oom_control[i] = dir.map(|d| d.join("memory.oom_control"));
                }
            }
            // A hybrid host: v2 cgroups without controllers still give `cgroup.kill`, and need
            // no move of the daemon (nothing is enabled for children).
            if let Some(base) = &v2 {
                match make_slot_cgroups(base, slots, &[], &mut cg.dirs) {
                    Ok(dirs) => {
                        notes.push(format!(
                            "per-slot cgroups for the kill under {} (v2, no controllers)",
                            base.display()
                        ));
                        cg.adopt_v2(&dirs, false);
                    }
                    Err(e) => notes.push(format!("cgroup v2 kill: {e}")),
                }
            }
        }
        let v = |on: bool, v2_name: &'static str, v1_name: &'static str, none: &'static str| {
            match (on, v2_done) {
                (true, true) => v2_name,
                (true, false) => v1_name,
                _ => none,
            }
            .to_string()
        };
        cg.info = CgroupInfo {
            pids: v(pids, PIDS_V2, PIDS_V1, PIDS_NONE),
            memory: v(memory, MEMORY_V2, MEMORY_V1, MEMORY_NONE),
            kill: if cg.kill.iter().all(Option::is_some) && slots > 0 {
                KILL_V2
            } else {
                KILL_PIDNS
            }
            .into(),
            note: Some(notes.join("; ")),
        };
        cg
    }

    /// Takes the v2 slot cgroups `dirs` as the slots' (with the memory counter when `limited`).
    fn adopt_v2(&mut self, dirs: &[PathBuf], limited: bool) {
        for (i, d) in dirs.iter().enumerate() {
            self.procs[i].push(d.join("cgroup.procs"));
            let kill = d.join("cgroup.kill");
            self.kill[i] = kill.exists().then_some(kill);
            if limited {
                self.oom_control[i] = Some(d.join("memory.events"));
            }
        }
    }

    fn add_v1(
        &mut self,
        ctl: &str,
        settings: &[(&str, String, bool)],
        notes: &mut Vec<String>,
    ) -> bool {
        let Some(base) = own_v1_cgroup(ctl).filter(|b| b.join("cgroup.procs").exists()) else {
            notes.push(format!("no cgroup v1 {ctl} hierarchy"));
            return false;
        };
        match make_slot_cgroups(&base, self.procs.len(), settings, &mut self.dirs) {
            Ok(dirs) => {
                notes.push(format!(
                    "per-slot {ctl} cgroups under {} (v1)",
                    base.display()
                ));
                for (i, d) in dirs.into_iter().enumerate() {
                    self.procs[i].push(d.join("cgroup.procs"));
                }
                true
            }
            Err(e) => {
                notes.push(format!("cgroup v1 {ctl}: {e}"));
                false
            }
        }
    }

    /// No cgroups (isolation.cgroup = "off", or no isolation at all).
    pub fn none(slots: usize) -> Cgroups {
        Cgroups {
            procs: vec![Vec::new(); slots],
            oom_control: vec![None; slots],
            kill: vec![None; slots],
            info: CgroupInfo {
                pids: PIDS_NONE.into(),
                memory: MEMORY_NONE.into(),
                kill: KILL_PIDNS.into(),
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
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
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
    fn own_v1_cgroup_is_found_below_the_hierarchys_mount() {
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
    fn own_v2_cgroup_is_found_on_unified_hybrid_and_namespaced_hosts() {
        let unified = "25 1 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            v2_cgroup_dir("0::/system.slice/grpo-sandboxd.service\n", unified),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/grpo-sandboxd.service"
            ))
        );
        // Hybrid: v1 controllers beside an empty cgroup2 at .../unified.
        let hybrid = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v2_cgroup_dir("4:memory:/x\n0::/\n", hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        // A container whose cgroup2 is mounted from its own subtree.
        let container = "50 40 0:40 /kubepods/pod1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v2_cgroup_dir("0::/kubepods/pod1/c1\n", container),
            Some(PathBuf::from("/sys/fs/cgroup/c1"))
        );
        // v1 only: no `0::` line, or no cgroup2 mount.
        assert_eq!(v2_cgroup_dir("4:memory:/x\n", unified), None);
        assert_eq!(
            v2_cgroup_dir("0::/\n", "35 31 0:32 / /m rw - cgroup cgroup rw,memory\n"),
            None
        );
    }

    #[test]
    fn oom_kills_are_read_from_v1_oom_control_and_v2_memory_events() {
        assert_eq!(
            parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n"),
            Some(7)
        );
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(events), Some(2));
        // `oom_group_kill` is not `oom_kill`, and a counter that is absent is not zero.
        assert_eq!(parse_oom_kills("oom_group_kill 5\n"), None);
        assert_eq!(parse_oom_kills("oom_kill_disable 0\n"), None);
        let dir = std::env::temp_dir().join(format!("grpo-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("memory.events");
        std::fs::write(&f, events).unwrap();
        assert_eq!(oom_kills(&f), Some(2));
        assert_eq!(oom_kills(&dir.join("absent")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn none_reports_rlimits_and_the_pid_namespace_kill() {
        let cg = Cgroups::none(3);
        assert_eq!(cg.procs.len(), 3);
        assert!(cg.kill.iter().all(Option::is_none));
        assert_eq!(
            (
                cg.info.pids.as_str(),
                cg.info.memory.as_str(),
                cg.info.kill.as_str()
            ),
            (PIDS_NONE, MEMORY_NONE, KILL_PIDNS)
        );
    }

    /// A cgroup2 file system of our own (the one v2 hierarchy, mounted again): a subtree made
    /// below a cgroup, a process moved in, `cgroup.kill` killing it (no controller needed), and
    /// the controllers it offers. Needs root and a kernel with cgroup2; skipped otherwise.
    #[test]
    fn a_mounted_cgroup2_takes_slots_moves_processes_and_kills_them() {
        let Some(mnt) = mount_cgroup2("kill") else {
            return;
        };
        let base = mnt.join(format!("grpo-test-{}", std::process::id()));
        let outcome = std::panic::catch_unwind(|| {
            std::fs::create_dir(&base).unwrap();
            let mut dirs = Vec::new();
            let slots = make_slot_cgroups(&base, 2, &[], &mut dirs).unwrap();
            assert_eq!(slots.len(), 2);
            assert!(slots[1].ends_with(format!("grpo-sandboxd-{}/slot1", std::process::id())));
            let mut cg = Cgroups {
                procs: vec![Vec::new(); 2],
                oom_control: vec![None; 2],
                kill: vec![None; 2],
                ..Default::default()
            };
            cg.adopt_v2(&slots, false);
            assert!(cg.oom_control.iter().all(Option::is_none));
            let mut child = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            write(&cg.procs[0][0], &child.id().to_string()).unwrap();
            assert_eq!(members(&slots[0]), vec![child.id()]);
            let own = std::fs::read_to_string(format!("/proc/{}/cgroup", child.id())).unwrap();
            assert!(
                own.contains(&format!("grpo-sandboxd-{}/slot0", std::process::id())),
                "{own}"
            );
            match &cg.kill[0] {
                Some(kill) => {
                    assert!(kill_all(kill));
                    let status = child.wait().unwrap();
                    use std::os::unix::process::ExitStatusExt;
                    assert_eq!(status.signal(), Some(libc::SIGKILL));
                }
                None => {
                    eprintln!("kernel without cgroup.kill");
                    child.kill().unwrap();
                    child.wait().unwrap();
                }
            }
            // Emptied, the slots come away, children before parents.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !members(&slots[0]).is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            cg.dirs = dirs;
            cg.remove();
            assert!(!slots[0].exists() && !slots[0].parent().unwrap().exists());
            // Whatever the host offers, what a cgroup offers its children is a subset of it.
            let root = v2_controllers(&mnt);
            assert!(v2_controllers(&base).iter().all(|c| root.contains(c)));
        });
        let _ = std::fs::remove_dir(&base);
        unmount(&mnt);
        if let Err(e) = outcome {
            std::panic::resume_unwind(e);
        }
    }

    /// The daemon's own move into a leaf before it enables controllers for children (v2 allows
    /// processes only in leaves), and the refusal where its cgroup holds processes not its own.
    /// Runs on a mounted cgroup2 with whatever controllers the host offers there (none of pids
    /// and memory on a hybrid host: the move and the subtree are what is exercised).
    #[test]
    fn the_daemon_moves_into_a_leaf_before_enabling_controllers() {
        let Some(mnt) = mount_cgroup2("leaf") else {
            return;
        };
        let me = std::process::id();
        let base = mnt.join(format!("grpo-test-leaf-{me}"));
        let outcome = std::panic::catch_unwind(|| {
            std::fs::create_dir(&base).unwrap();
            // What the base offers is what its parent (the root) enabled for its children.
            let offered = v2_controllers(&base);
            let usable: Vec<&str> = offered
                .iter()
                .map(String::as_str)
                .filter(|c| *c != "cpuset")
                .collect();
            let limits = SlotLimits {
                pids_max: 64,
                memory_bytes: 256 << 20,
            };
            // A stranger in the base: refused, nothing changed.
            let mut stranger = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            write(&base.join("cgroup.procs"), &stranger.id().to_string()).unwrap();
            let mut dirs = Vec::new();
            let err = setup_v2_limited(&base, 2, limits, &usable, &mut dirs).unwrap_err();
            assert!(
                err.contains("1 other process") && err.contains("Delegate=yes"),
                "{err}"
            );
            assert!(dirs.is_empty() && !base.join(format!("grpo-sandboxd-{me}")).exists());
            stranger.kill().unwrap();
            stranger.wait().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !members(&base).is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            // Alone in it: this process moves to grpo-sandboxd-<pid>/daemon, the slots follow.
            let slots = setup_v2_limited(&base, 2, limits, &usable, &mut dirs).unwrap();
            let leaf = base.join(format!("grpo-sandboxd-{me}/daemon"));
            assert!(members(&leaf).contains(&me));
            assert!(members(&base).is_empty());
            let enabled = std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap();
            for c in &usable {
                assert!(
                    enabled.split_whitespace().any(|e| e == *c),
                    "{c} not in {enabled:?}"
                );
            }
            if usable.contains(&"pids") {
                assert_eq!(
                    std::fs::read_to_string(slots[0].join("pids.max"))
                        .unwrap()
                        .trim(),
                    "64"
                );
            }
            if usable.contains(&"memory") {
                let max = std::fs::read_to_string(slots[1].join("memory.max")).unwrap();
                assert_eq!(max.trim(), (256u64 << 20).to_string());
            }
            // Back to the root (which may hold processes), and everything comes away.
            write(&mnt.join("cgroup.procs"), &me.to_string()).unwrap();
            for d in &dirs {
                std::fs::remove_dir(d).unwrap();
            }
            std::fs::remove_dir(&leaf).unwrap();
            std::fs::remove_dir(leaf.parent().unwrap()).unwrap();
        });
        let _ = std::fs::write(mnt.join("cgroup.procs"), me.to_string());
        let _ = std::fs::remove_dir(&base);
        unmount(&mnt);
        if let Err(e) = outcome {
            std::panic::resume_unwind(e);
        }
    }

    /// A fresh cgroup2 mount for one test; None (the test is skipped) without root or cgroup2.
    fn mount_cgroup2(tag: &str) -> Option<PathBuf> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to mount cgroup2");
            return None;
        }
        let mnt = std::env::temp_dir().join(format!("grpo-cg2-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&mnt).unwrap();
        let path = std::ffi::CString::new(mnt.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: mount with NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                c"none".as_ptr(),
                path.as_ptr(),
                c"cgroup2".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            eprintln!(
                "skipped: mount cgroup2: {}",
                std::io::Error::last_os_error()
            );
            let _ = std::fs::remove_dir(&mnt);
            return None;
        }
        Some(mnt)
    }

    fn unmount(mnt: &Path) {
        let path = std::ffi::CString::new(mnt.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: umount2 with a NUL-terminated path.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(mnt);
    }
}
