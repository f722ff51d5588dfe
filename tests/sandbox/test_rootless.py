"""The rootless mode: the daemon as an unprivileged user (uid 65534 through `setpriv` when the tests
run as root, else the tests' own user), isolating with unprivileged user namespaces. The whole
in-repo hostile suite runs against it, minus the one case whose expectation differs by design
(programs are uid 0 of a user namespace of their own, without any capability, instead of uid
1000: see `test_becoming_root_gives_no_capability`). Containment is checked through the process
tree below the daemon, since every slot, and the daemon, share one host uid here."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from grpo_fast.sandbox import Client
from tests.sandbox import test_hostile
from tests.sandbox.test_hostile import *  # noqa: F403 -- the hostile cases, run against the fixture below

NOBODY = 65534


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int(next(line for line in (d / "status").read_text().splitlines()
                            if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def tree_by_depth(root: int) -> dict[int, list[int]]:
    """Processes below `root` by depth (1 = its children)."""
    kids, out, level, depth = _children(), {}, [root], 0
    while level:
        depth += 1
        level = [c for p in level for c in kids.get(p, [])]
        if level:
            out[depth] = level
    return out


def rootless_leftovers(daemon_pid: int, slots: int) -> list[str]:
    """What outlived a run below the daemon. Legitimately there, per slot: its keeper (depth 1),
    its zygote (2), the zygote's spare children and the next harness (3, at most three), and
    the harness's spare child (4, at most one). Anything a program started sits deeper, or adds
    to depth 4 (a child of a zygote's spare)."""
    tree = tree_by_depth(daemon_pid)
    # The daemon's reaper and server threads are threads, not processes: only keepers at 1.
    found = [f"depth {d}: {pids}" for d, pids in tree.items() if d >= 5]
    if len(tree.get(3, [])) > 3 * slots:
        found.append(f"{len(tree[3])} processes at depth 3 for {slots} slots")
    if len(tree.get(4, [])) > slots:
        found.append(f"{len(tree[4])} processes at depth 4 for {slots} slots")
    return found


def _rootless_command(binary: str) -> tuple[list[str], int]:
    if os.geteuid() != 0:
        return [binary], os.geteuid()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux) to become an unprivileged user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", binary], NOBODY


def _readable_by(path: Path, uid: int) -> bool:
    if uid == os.geteuid():
        return True
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [*path.parents] if str(p) != "/") and (
        path.stat().st_mode & 0o005 == 0o005)


@pytest.fixture(scope="module")
def rootless_daemon(daemon_binary, daemon_secret):
    cmd, uid = _rootless_command(daemon_binary)
    binary = Path(daemon_binary).resolve()
    # Not below pytest's temporary folder: that one is 0700, closed to the daemon's user.
    tmp = Path(tempfile.mkdtemp(prefix="grpo-rootless-"))
    if os.geteuid() == 0:
        os.chown(tmp, uid, uid)
    cmd[-1] = str(binary)
    if not _readable_by(binary, uid):
        copy = tmp / "grpo-sandboxd"
        shutil.copy2(binary, copy)
        cmd[-1] = str(copy)
    sock = tmp / "d.sock"
    probe = subprocess.run([*cmd, "--probe"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"unprivileged user namespaces are not allowed here: {probe.stderr.strip()[:300]}")
    env = {"PATH": "/usr/bin:/bin", "GRPO_TEST_SECRET": daemon_secret}
    proc = subprocess.Popen([*cmd, "--socket", str(sock), "--slots", "2", "--quiet"], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not sock.exists():
        proc.kill()
        raise AssertionError(f"the rootless daemon did not start: {proc.stderr.read().decode()[:2000]}")
    client = Client(str(sock), start=False)
    # setpriv execs the daemon, so the process started here is the daemon itself.
    yield client, proc.pid, uid
    client.close()
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture()
def sandbox(rootless_daemon):
    return rootless_daemon[0]


@pytest.fixture()
def assert_contained(rootless_daemon):
    client, pid, _ = rootless_daemon

    def check() -> None:
        r = client.run("print(6 * 7)")
        assert r["status"] == "ok" and r["stdout"] == "42\n", r
        deadline = time.monotonic() + 5
        left = rootless_leftovers(pid, 2)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = rootless_leftovers(pid, 2)
        assert not left, f"sandboxed processes outlived their run: {left}"

    return check


def test_health_says_rootless_with_one_shared_uid(rootless_daemon):
    client, pid, uid = rootless_daemon
    iso = client.health()["isolation"]
    assert iso["mode"] == "native" and iso["privilege"] == "rootless", iso
    assert iso["host_uids"] == {"zygotes": [uid], "programs": [uid]}, iso
    # Every process of the daemon's tree is the daemon's uid: nothing ran as root.
    for pids in tree_by_depth(pid).values():
        for p in pids:
            status = Path(f"/proc/{p}/status").read_text()
            real = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            assert real == uid, (p, status)


def test_becoming_root_gives_no_capability(sandbox, assert_contained):
    # Replaces test_hostile.test_becoming_root_fails: rootless, a program is uid 0 of a user
    # namespace of its own (the only uid the slot can map), so setuid(0) is a no-op; it still
    # has no capability, so chroot and mount are refused.
    r = test_hostile.run(sandbox, """
        import ctypes, errno, os
        print(os.getuid(), os.geteuid())
        try:
            os.chroot("/tmp")
            print("chroot ok")
        except OSError as e:
            print("chroot denied" if e.errno == errno.EPERM else e)
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
        print("mount", "ok" if rc == 0 else errno.errorcode[ctypes.get_errno()])
        print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])
    """)
    assert r["stdout"] == "0 0\nchroot denied\nmount EPERM\n0000000000000000\n", r
    assert_contained()


def test_programs_cannot_reach_the_daemon_that_shares_their_uid(sandbox, assert_contained):
    # Same host uid as the daemon: what keeps them apart is the PID namespace (the daemon has
    # no pid a program can name), the mount namespace (no host /proc, no socket path), and
    # seccomp (no ptrace, no process_vm_*).
    r = test_hostile.run(sandbox, """
        import os
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        print(pids[0] == 1, all(p < 64 for p in pids))
        print(os.path.exists("/proc/1/root/usr"), os.path.exists("/run/grpo-sandboxd"))
        try:
            os.kill(os.getppid() if os.getppid() else 1, 0)
            print("parent visible", os.getppid())
        except OSError as e:
            print("no parent", e.errno)
    """)
    lines = r["stdout"].splitlines()
    assert lines[0] == "True True", r
    assert lines[1].endswith("False"), r
    assert_contained()


def test_a_fork_bomb_leaves_the_shared_uid_usable(sandbox, assert_contained):
    # RLIMIT_NPROC is counted per user namespace: a bomb in one run exhausts its own count, not
    # the daemon user's, so the daemon still forks the next run's processes.
    r = test_hostile.run(sandbox, textwrap.dedent("""
        import os, time
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
        except OSError:
            print("stopped at", n)
    """), timeout_ms=3000)
    assert r["stdout"].startswith("stopped at"), r
    assert int(r["stdout"].split()[-1]) < 64, r
    assert_contained()


# The root mode's version of this case is replaced above.
del test_becoming_root_fails  # noqa: F821
