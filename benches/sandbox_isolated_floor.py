"""How much of a sandboxed run is the kernel's isolation itself? A fork of a pre-imported
interpreter per run, with and without the isolation steps grpo-sandboxd takes (fresh PID, mount,
IPC and UTS namespaces, a tmpfs, a procfs, an unprivileged uid; optionally a network namespace),
no daemon and no capture loop. Needs root; standard library only.

    sudo /usr/bin/python3 -I -S benches/sandbox_isolated_floor.py [--runs 400]

prints wall time and CPU (this process and its children) per run for each mode.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `python -I` leaves it out
from sandbox_floor import run_one

NEWNS, NEWUTS, NEWIPC, NEWPID, NEWNET = 0x20000, 0x04000000, 0x08000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
PRELOAD = ("re math json random string itertools functools collections heapq bisect typing fractions "
           "decimal datetime copy operator array").split()
PROGRAM = "import sys\nprint(sys.stdin.readline().strip()[::-1])\n"

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def check(ret: int, what: str) -> None:
    if ret != 0:
        raise OSError(ctypes.get_errno(), what)


def isolate(mode: str):
    """The per-run steps grpo-sandboxd takes in a fresh child (privileges: an unprivileged uid)."""
    if mode == "bare":
        return None

    def steps() -> None:
        check(libc.unshare(NEWNS | NEWIPC | NEWUTS | (NEWNET if mode == "isolated+netns" else 0)), "unshare")
        check(libc.mount(b"tmpfs", b"/mnt", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m"), "tmpfs")
        check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "proc")
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)

    return steps


def run_once(code, mode: str, own_pidns: int) -> None:
    if mode != "bare":  # the child becomes pid 1 of a fresh PID namespace
        check(libc.setns(own_pidns, NEWPID), "setns")
        check(libc.unshare(NEWPID), "unshare(pid)")
    out = run_one(code, b"hello\n", isolate(mode))
    assert out == b"olleh\n", out


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 400
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
    base = None
    for mode in ("bare", "isolated", "isolated+netns"):
        for _ in range(10):
            run_once(code, mode, own_pidns)
        c0, t0 = os.times(), time.perf_counter()
        for _ in range(runs):
            run_once(code, mode, own_pidns)
        c1, wall = os.times(), (time.perf_counter() - t0) / runs * 1e3
        cpu = (c1.user + c1.system + c1.children_user + c1.children_system
               - c0.user - c0.system - c0.children_user - c0.children_system) / runs * 1e3
        base = base or cpu
        print(f"{mode:15s} wall {wall:5.2f} ms  CPU {cpu:5.2f} ms per run  ({cpu / base:.2f}x bare)")


if __name__ == "__main__":
    main()
