//! The seccomp filter every sandboxed program runs under, as classic BPF.
//!
//! A deny-list: the interpreter and ordinary programs need hundreds of syscalls, while the
//! dangerous ones (kernel attack surface, escaping namespaces, inspecting other processes) are few.
//! Denied calls fail with EPERM (ENOSYS for clone3, so libc falls back to clone, whose flags a
//! classic BPF filter can inspect; EAFNOSUPPORT for a socket of any family but AF_UNIX), and a
//! foreign architecture or x32 ABI is killed outright.
//!
//! The kernel JIT-compiles a filter each time one is installed (~4% of a trivial run's CPU for
//! the whole list), while an inherited filter costs nothing. So the policy is installed in two
//! parts whose conjunction is the whole list: the slot filter, once, on the zygote (which never
//! needs any of those calls), and the run filter, on every child, for the few calls the zygote
//! and a harness still make to set runs up (mount, unshare, setns, sethostname). Filters stack,
//! and the strictest answer wins, so a child runs under exactly `build_filter`.

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// Offsets into struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0_LO: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Every CLONE_NEW* flag: clone() may not create namespaces inside the sandbox.
const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Syscalls that fail with EPERM inside the sandbox, with the reason they are denied.
pub fn denied_syscalls() -> Vec<(i64, &'static str)> {
    let mut v: Vec<(i64, &'static str)> = vec![
        (libc::SYS_ptrace, "ptrace"),
        (libc::SYS_process_vm_readv, "process_vm_readv"),
        (libc::SYS_process_vm_writev, "process_vm_writev"),
        (libc::SYS_mount, "mount"),
        (libc::SYS_umount2, "umount2"),
        (libc::SYS_pivot_root, "pivot_root"),
        (libc::SYS_chroot, "chroot"),
        (libc::SYS_unshare, "unshare"),
        (libc::SYS_setns, "setns"),
        (libc::SYS_kexec_load, "kexec_load"),
        (libc::SYS_kexec_file_load, "kexec_file_load"),
        (libc::SYS_bpf, "bpf"),
        (libc::SYS_keyctl, "keyctl"),
        (libc::SYS_add_key, "add_key"),
        (libc::SYS_request_key, "request_key"),
        (libc::SYS_perf_event_open, "perf_event_open"),
        (libc::SYS_userfaultfd, "userfaultfd"),
        (libc::SYS_io_uring_setup, "io_uring_setup"),
        (libc::SYS_io_uring_enter, "io_uring_enter"),
        (libc::SYS_io_uring_register, "io_uring_register"),
        (libc::SYS_init_module, "init_module"),
        (libc::SYS_finit_module, "finit_module"),
        (libc::SYS_delete_module, "delete_module"),
        (libc::SYS_swapon, "swapon"),
        (libc::SYS_swapoff, "swapoff"),
        (libc::SYS_reboot, "reboot"),
        (libc::SYS_acct, "acct"),
        (libc::SYS_quotactl, "quotactl"),
        (libc::SYS_open_by_handle_at, "open_by_handle_at"),
        (libc::SYS_name_to_handle_at, "name_to_handle_at"),
        (libc::SYS_fanotify_init, "fanotify_init"),
        (libc::SYS_open_tree, "open_tree"),
        (libc::SYS_move_mount, "move_mount"),
        (libc::SYS_fsopen, "fsopen"),
        (libc::SYS_fsconfig, "fsconfig"),
        (libc::SYS_fsmount, "fsmount"),
        (libc::SYS_fspick, "fspick"),
        (libc::SYS_mount_setattr, "mount_setattr"),
        (libc::SYS_syslog, "syslog"),
        (libc::SYS_settimeofday, "settimeofday"),
        (libc::SYS_clock_settime, "clock_settime"),
        (libc::SYS_clock_adjtime, "clock_adjtime"),
        (libc::SYS_adjtimex, "adjtimex"),
        (libc::SYS_sethostname, "sethostname"),
        (libc::SYS_setdomainname, "setdomainname"),
        (libc::SYS_vhangup, "vhangup"),
        (libc::SYS_pidfd_getfd, "pidfd_getfd"),
        (libc::SYS_kcmp, "kcmp"),
        (libc::SYS_personality, "personality"),
        // Memory no rlimit counts: a memfd's or a SysV segment's pages belong to no address
        // space (a segment outlives every process attached to it), so RLIMIT_AS misses them.
        // The harness makes each unit's stdin memfd before the run filter goes on.
        (libc::SYS_memfd_create, "memfd_create"),
        // Secret memory is unmapped from the kernel's direct map and counted only against
        // RLIMIT_MEMLOCK; deny it outright rather than rely on that limit staying 0.
        (libc::SYS_memfd_secret, "memfd_secret"),
        (libc::SYS_shmget, "shmget"),
        (libc::SYS_shmat, "shmat"),
        (libc::SYS_shmctl, "shmctl"),
        (libc::SYS_shmdt, "shmdt"),
        (libc::SYS_semget, "semget"),
        (libc::SYS_semop, "semop"),
        (libc::SYS_semtimedop, "semtimedop"),
        (libc::SYS_semctl, "semctl"),
        (libc::SYS_msgget, "msgget"),
        (libc::SYS_msgsnd, "msgsnd"),
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_msgctl, "msgctl"),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        (libc::SYS_iopl, "iopl"),
        (libc::SYS_ioperm, "ioperm"),
        (libc::SYS_uselib, "uselib"),
        (libc::SYS_modify_ldt, "modify_ldt"),
    ]);
    v
}

/// Denied calls the zygote and a harness still make to set a run up: in the run filter only.
pub const RUN_SETUP_SYSCALLS: [i64; 5] = [
    libc::SYS_mount,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_sethostname,
    libc::SYS_memfd_create,
];

fn errno(e: i32) -> u32 {
    SECCOMP_RET_ERRNO | (e as u32 & 0xffff)
}

/// The whole policy as one program (what a child runs under; `install` uses it).
pub fn build_filter() -> Vec<Insn> {
    build(|_| true, true)
}

/// The part installed once on the zygote: every rule but the run set-up calls.
pub fn slot_filter() -> Vec<Insn> {
    build(|nr| !RUN_SETUP_SYSCALLS.contains(&nr), true)
}

/// The part installed on every child: the run set-up calls.
pub fn run_filter() -> Vec<Insn> {
    build(|nr| RUN_SETUP_SYSCALLS.contains(&nr), false)
}

/// A program denying the listed calls that `keep` selects, plus (with `argument_rules`) the
/// socket-family and clone rules.
fn build(keep: impl Fn(i64) -> bool, argument_rules: bool) -> Vec<Insn> {
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // The x32 ABI reaches the same kernel code under other numbers.
        p.push(jump(BPF_JGE_K, 0x4000_0000, 0, 1));
        p.push(stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS));
    }
    for (nr, _) in denied_syscalls().into_iter().filter(|(nr, _)| keep(*nr)) {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 1));
        p.push(stmt(BPF_RET_K, errno(libc::EPERM)));
    }
    if !argument_rules {
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        return p;
    }
    // socket() and socketpair(): AF_UNIX only, so no network of any kind (not even loopback)
    // whichever network namespace the run is in.
    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 4));
        p.push(stmt(BPF_LD_W_ABS, OFF_ARG0_LO));
        p.push(jump(BPF_JEQ_K, libc::AF_UNIX as u32, 0, 1));
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        p.push(stmt(BPF_RET_K, errno(libc::EAFNOSUPPORT)));
    }
    p.push(jump(BPF_JEQ_K, libc::SYS_clone3 as u32, 0, 1));
    p.push(stmt(BPF_RET_K, errno(libc::ENOSYS)));
    // clone(flags, ...): flags is the first argument on every architecture we build for.
    p.push(jump(BPF_JEQ_K, libc::SYS_clone as u32, 0, 4));
    p.push(stmt(BPF_LD_W_ABS, OFF_ARG0_LO));
    p.push(jump(BPF_JSET_K, CLONE_NS_FLAGS, 0, 1));
    p.push(stmt(BPF_RET_K, errno(libc::EPERM)));
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

/// A filter as the bytes of a `struct sock_filter[]`, which the zygote hands to prctl.
pub fn filter_bytes(prog: &[Insn]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// Installs the filter in the calling process (used by tests and the no-Python runner path).
pub fn install() -> std::io::Result<()> {
    let prog: Vec<libc::sock_filter> = build_filter()
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl calls; `fprog` points at `prog`, which outlives the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_stay_inside_the_program() {
        let p = build_filter();
        assert!(
            p.len() < 4096,
            "BPF programs are limited to 4096 instructions"
        );
        for (i, insn) in p.iter().enumerate() {
            if insn.code & 0x07 == 0x05 {
                assert!(
                    i + 1 + (insn.jt.max(insn.jf) as usize) < p.len(),
                    "jump at {i} leaves the program"
                );
            }
        }
        assert_eq!(p.last().unwrap().k, SECCOMP_RET_ALLOW);
    }

    #[test]
    fn bytes_are_eight_per_instruction() {
        assert_eq!(
            filter_bytes(&build_filter()).len(),
            build_filter().len() * 8
        );
    }

    /// Classic BPF as seccomp runs it, for the instructions we emit.
    fn eval(p: &[Insn], nr: u32, arch: u32, arg0: u32) -> u32 {
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => {
                    acc = match i.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        OFF_ARG0_LO => arg0,
                        k => panic!("load from {k}"),
                    }
                }
                BPF_RET_K => return i.k,
                code => {
                    let taken = match code {
                        BPF_JEQ_K => acc == i.k,
                        BPF_JGE_K => acc >= i.k,
                        BPF_JSET_K => acc & i.k != 0,
                        c => panic!("opcode {c:#x}"),
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
            }
        }
    }

    /// The kernel's precedence when several filters answer: the numerically lowest action
    /// (KILL_PROCESS, then ERRNO, ..., ALLOW last; KILL_PROCESS is 0x80000000 as a signed int).
    fn strictest(a: u32, b: u32) -> u32 {
        if (a as i32) < (b as i32) {
            a
        } else {
            b
        }
    }

    #[test]
    fn slot_and_run_filters_together_are_the_whole_policy() {
        let (whole, slot, run) = (build_filter(), slot_filter(), run_filter());
        assert!(
            run.len() < 20,
            "the per-run filter stays small: {}",
            run.len()
        );
        let args = [
            0,
            libc::AF_UNIX as u32,
            libc::AF_INET as u32,
            libc::AF_NETLINK as u32,
            libc::CLONE_NEWUSER as u32,
            libc::CLONE_NEWNET as u32 | libc::SIGCHLD as u32,
            libc::SIGCHLD as u32,
            u32::MAX,
        ];
        for arch in [AUDIT_ARCH, 0x4000_0003] {
            for nr in (0..1024).chain([0x4000_0000, 0x4000_0001, u32::MAX]) {
                for &a in &args {
                    let both = strictest(eval(&slot, nr, arch, a), eval(&run, nr, arch, a));
                    assert_eq!(
                        both,
                        eval(&whole, nr, arch, a),
                        "nr {nr} arch {arch:#x} arg {a:#x}"
                    );
                }
            }
        }
        for nr in RUN_SETUP_SYSCALLS {
            assert_eq!(eval(&slot, nr as u32, AUDIT_ARCH, 0), SECCOMP_RET_ALLOW);
            assert_eq!(eval(&run, nr as u32, AUDIT_ARCH, 0), errno(libc::EPERM));
        }
    }

    /// Installs the filter in a forked child and checks that denied calls fail while ordinary
    /// ones work: the real kernel is the judge.
    #[test]
    fn filter_denies_namespace_and_tracing_calls_in_a_real_process() {
        // SAFETY: the child only makes raw syscalls and exits with _exit.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                let code = (|| {
                    if install().is_err() {
                        return 10;
                    }
                    if libc::getpid() <= 0 {
                        return 11;
                    }
                    if libc::unshare(libc::CLONE_NEWUSER) != -1 {
                        return 12;
                    }
                    if *libc::__errno_location() != libc::EPERM {
                        return 13;
                    }
                    if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != -1 {
                        return 14;
                    }
                    if libc::syscall(libc::SYS_clone3, 0, 0) != -1
                        || *libc::__errno_location() != libc::ENOSYS
                    {
                        return 15;
                    }
                    for family in [
                        libc::AF_INET,
                        libc::AF_INET6,
                        libc::AF_NETLINK,
                        libc::AF_PACKET,
                    ] {
                        if libc::socket(family, libc::SOCK_DGRAM, 0) != -1
                            || *libc::__errno_location() != libc::EAFNOSUPPORT
                        {
                            return 16;
                        }
                    }
                    let mut pair = [0; 2];
                    if libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) < 0
                        || libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr())
                            != 0
                    {
                        return 17;
                    }
                    0
                })();
                libc::_exit(code);
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            assert!(libc::WIFEXITED(status), "child died: {status}");
            assert_eq!(libc::WEXITSTATUS(status), 0);
        }
    }
}
