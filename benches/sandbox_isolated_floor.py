"""How much of a sandboxed run is the kernel's isolation itself? A fork of a pre-imported
interpreter per run, bare and with the per-run isolation issue #5 asks for, with no daemon, no
client, no capture loop and no compile: the best any sandbox with that isolation could do.

Modes (each adds to the one before):
  bare      the floor of benches/sandbox_floor.py
  mounts    fresh PID, mount, IPC and UTS namespaces, a tmpfs and a procfs, an unprivileged uid
  userns    + a fresh user namespace (uid map written) and no capabilities
  seccomp   + no_new_privs and a 15-instruction seccomp filter (what grpo-sandboxd installs per
            run; the kernel JIT-compiles every filter) and hard rlimits: the whole list but the
            network namespace, which grpo-sandboxd keeps per slot
  netns     + a fresh network namespace per run (per_run_network_namespace = true)

Concurrency by worker processes, as in sandbox_floor.py. Needs root; standard library only.

    sudo /usr/bin/python3 -I -S benches/sandbox_isolated_floor.py [--runs 2000] [--concurrency 1,2]

prints runs/s and machine CPU per run (steal excluded) for each mode, and the ratio to bare.
With `--mode M` it measures that mode once and prints {"rps": ..., "cpu_ms": ...} as JSON (what
benches/sandbox_cost.py --floor runs in turns with the daemon).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `python -I` leaves it out
from sandbox_floor import run_one

NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET = 0x20000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 4, 38, 22, 2
PRELOAD = ("re math json random string itertools functools collections heapq bisect typing fractions "
           "decimal datetime copy operator array").split()
PROGRAM = "import sys\nprint(sys.stdin.readline().strip()[::-1])\n"
MODES = ("bare", "mounts", "userns", "seccomp", "netns")
UID = 65534

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def run_filter() -> tuple[SockFprog, ctypes.Array]:
    """15 instructions like grpo-sandboxd's run filter: check the arch, deny a few calls with
    EPERM, allow the rest."""
    ld, jeq, ret = 0x20, 0x15, 0x06
    denied = (165, 166, 272, 308, 170, 319)  # mount, umount2, unshare, setns, sethostname, memfd_create
    insns = [(ld, 0, 0, 4), (jeq, 1, 0, 0xC000003E), (ret, 0, 0, 0x80000000), (ld, 0, 0, 0)]
    for i, nr in enumerate(denied):
        insns.append((jeq, len(denied) - i, 0, nr))
    insns.append((ret, 0, 0, 0x7FFF0000))
    insns += [(ret, 0, 0, 0x00050000 | 1)] * (15 - len(insns))
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
    return SockFprog(len(insns), ctypes.addressof(buf)), buf


FILTER, _FILTER_BUF = run_filter()


def check(ret: int, what: str) -> None:
    if ret != 0:
        raise OSError(ctypes.get_errno(), what)


def write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def isolate(mode: str):
    """The per-run steps in a fresh child, as grpo-sandboxd takes them."""
    level = MODES.index(mode)
    if level == 0:
        return None

    def steps() -> None:
        check(libc.unshare(NEWNS | NEWIPC | NEWUTS | (NEWNET if level >= 4 else 0)), "unshare")
        check(libc.mount(b"tmpfs", b"/mnt", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m"), "tmpfs")
        check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "proc")
        os.setgroups([])
        os.setresgid(UID, UID, UID)
        os.setresuid(UID, UID, UID)
        if level >= 2:
            check(libc.prctl(PR_SET_DUMPABLE, 1, None, 0, 0), "dumpable")
            check(libc.unshare(NEWUSER), "unshare(user)")
            write_file("/proc/self/setgroups", "deny")
            write_file("/proc/self/uid_map", f"{UID} {UID} 1")
            write_file("/proc/self/gid_map", f"{UID} {UID} 1")
        if level >= 3:
            for res, val in ((resource.RLIMIT_CPU, 10), (resource.RLIMIT_AS, 1 << 30), (resource.RLIMIT_NPROC, 32),
                             (resource.RLIMIT_FSIZE, 1 << 24), (resource.RLIMIT_NOFILE, 256),
                             (resource.RLIMIT_CORE, 0), (resource.RLIMIT_MEMLOCK, 0), (resource.RLIMIT_MSGQUEUE, 0)):
                resource.setrlimit(res, (val, val))
            check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0), "no_new_privs")
            check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(FILTER), 0, 0), "seccomp")

    return steps


def run_once(code, mode: str, own_pidns: int) -> None:
    if mode != "bare":  # the child becomes pid 1 of a fresh PID namespace
        check(libc.setns(own_pidns, NEWPID), "setns")
        check(libc.unshare(NEWPID), "unshare(pid)")
    out = run_one(code, b"hello\n", isolate(mode))
    assert out == b"olleh\n", out


def machine_busy() -> int:
    """Busy ticks of the whole machine, steal excluded."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4] - v[7]


def measure(code, mode: str, own_pidns: int, runs: int, concurrency: int) -> tuple[float, float]:
    """(runs/s, machine CPU ms per run) with `concurrency` worker processes."""
    share = [runs // concurrency + (1 if i < runs % concurrency else 0) for i in range(concurrency)]
    b0, t0 = machine_busy(), time.perf_counter()
    pids = []
    for n in share:
        pid = os.fork()
        if pid == 0:
            code_rc = 1
            try:
                for _ in range(n):
                    run_once(code, mode, own_pidns)
                code_rc = 0
            finally:
                os._exit(code_rc)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise SystemExit(f"{mode}: a worker failed")
    wall = time.perf_counter() - t0
    return runs / wall, (machine_busy() - b0) * 1e3 / os.sysconf("SC_CLK_TCK") / runs


def arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main() -> None:
    runs = int(arg("--runs", "2000"))
    levels = [int(c) for c in arg("--concurrency", "1,2").split(",")]
    only = arg("--mode", "")
    if only and only not in MODES:
        raise SystemExit(f"--mode: one of {', '.join(MODES)}")
    for name in PRELOAD:
        __import__(name)
    import gc

    gc.collect()
    gc.freeze()
    # A private mount namespace for this process, so the per-run mounts never reach the host.
    check(libc.unshare(NEWNS), "unshare(mount)")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)
    code = compile(PROGRAM, "main.py", "exec")
    if only:
        measure(code, only, own_pidns, 20 * levels[0], levels[0])
        rps, cpu = measure(code, only, own_pidns, runs, levels[0])
        print(json.dumps({"rps": rps, "cpu_ms": cpu}))
        return
    for c in levels:
        results = {}
        for mode in MODES:
            measure(code, mode, own_pidns, 20 * c, c)
        # Modes take turns in three rounds; a mode's cell is its best round (the VM drifts).
        for _ in range(3):
            for mode in MODES:
                rps, cpu = measure(code, mode, own_pidns, runs, c)
                if mode not in results or rps > results[mode][0]:
                    results[mode] = (rps, cpu)
        base_rps, base_cpu = results["bare"]
        for mode in MODES:
            rps, cpu = results[mode]
            print(f"c={c} {mode:8s} {rps:7.1f} runs/s ({rps / base_rps:.2f}x bare)  "
                  f"machine CPU {cpu:5.2f} ms per run ({cpu / base_cpu:.2f}x bare)")


if __name__ == "__main__":
    main()
