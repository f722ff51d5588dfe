"""Hostile programs against the real daemon. Each case asserts containment (the attack fails or
is cut off, with the right status) and, through `assert_contained`, that the daemon answers the
next request correctly and that nothing the program started survives on the host."""

from __future__ import annotations

import ast
import os
import socket
import textwrap
import threading

import pytest

SYSCALL = textwrap.dedent(
    """
    import ctypes, errno, os
    libc = ctypes.CDLL(None, use_errno=True)
    def attempt(name, *args):
        r = libc.syscall(*args)
        e = ctypes.get_errno()
        print(name, "ok" if r >= 0 else errno.errorcode.get(e, e))
    """
)


VIA = ["zygote"]


@pytest.fixture(params=["zygote", "harness"], autouse=True)
def via(request):
    """Every case runs both ways a program can be served: forked by the zygote itself (a plain
    /run) and by a per-run harness (runs with files, and every /run_tests)."""
    VIA[0] = request.param
    return request.param


def run(sandbox, code, **kw):
    kw.setdefault("timeout_ms", 2000)
    if VIA[0] == "harness":
        kw.setdefault("fetch_files", ["_absent"])  # any file request routes through a harness
    return sandbox.run(textwrap.dedent(code), **kw)


# ---- resource exhaustion -----------------------------------------------------------------------

def test_fork_bomb_is_bounded_and_killed(sandbox, assert_contained):
    r = run(sandbox, """
        import os
        n = 0
        while True:
            try:
                if os.fork() == 0:
                    while True:
                        pass
                n += 1
            except OSError:
                pass
    """, timeout_ms=1500)
    assert r["status"] == "timeout", r
    assert_contained()


def test_thread_bomb_hits_the_process_limit(sandbox, assert_contained):
    r = run(sandbox, """
        import threading, time
        n = 0
        try:
            while True:
                threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
                n += 1
        except (RuntimeError, MemoryError) as e:
            print("stopped after", n, type(e).__name__)
    """)
    assert r["status"] == "ok" and "stopped after" in r["stdout"], r
    assert int(r["stdout"].split()[2]) < 64
    assert_contained()


def test_memory_bomb_at_once(sandbox, assert_contained):
    r = run(sandbox, "x = bytearray(8 * 1024**3)\n", memory_mb=256)
    assert r["status"] == "memory_limit", r
    assert_contained()


def test_memory_bomb_gradual(sandbox, assert_contained):
    r = run(sandbox, """
        chunks = []
        while True:
            chunks.append(b"x" * (16 * 1024 * 1024))
    """, memory_mb=256)
    assert r["status"] == "memory_limit", r
    assert r["max_rss_kb"] < 300 * 1024
    assert_contained()


def test_memory_outside_the_address_space_is_denied(sandbox, assert_contained):
    """memfd pages and SysV shared memory belong to no address space (a segment outlives every
    process attached to it), so RLIMIT_AS would not count them: 256 MB of either would pass a
    256 MB limit unnoticed. The calls that make them are refused."""
    r = run(sandbox, SYSCALL + textwrap.dedent("""
    import os
    try:
        fd = os.memfd_create("bomb")
        os.ftruncate(fd, 256 << 20)
        print("memfd made")
    except OSError as e:
        print("memfd", errno.errorcode[e.errno])
    attempt("shmget", 29, 0, 256 << 20, 0o1600)
    attempt("semget", 64, 0, 16, 0o1600)
    attempt("msgget", 68, 0, 0o1600)
    attempt("memfd_secret", 447, 0)
    """), memory_mb=256)
    assert r["stdout"].split() == [
        "memfd", "EPERM", "shmget", "EPERM", "semget", "EPERM", "msgget", "EPERM", "memfd_secret", "EPERM",
    ], r
    assert_contained()


def test_stdin_is_still_a_seekable_file(sandbox, assert_contained):
    """Stdin is a memfd the harness made before the filter denied memfd_create."""
    r = run(sandbox, """
        import os, sys
        first = sys.stdin.buffer.read()
        os.lseek(0, 0, os.SEEK_SET)
        print(first[:100] == os.read(0, 100), len(first))
    """, stdin="ab" * 35000)
    assert r["stdout"] == "True 70000\n", r
    assert_contained()


def test_infinite_loop_times_out(sandbox, assert_contained):
    r = run(sandbox, "while True:\n    pass\n", timeout_ms=500)
    assert r["status"] == "timeout", r
    assert r["wall_ms"] < 500 + 3000
    assert_contained()


def test_sleep_past_the_deadline(sandbox, assert_contained):
    r = run(sandbox, "import time\ntime.sleep(60)\n", timeout_ms=300)
    assert r["status"] == "timeout", r
    assert r["wall_ms"] < 300 + 3000
    assert_contained()


def test_ignoring_sigterm_and_sigxcpu(sandbox, assert_contained):
    r = run(sandbox, """
        import signal
        for s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        while True:
            pass
    """, timeout_ms=1200)
    assert r["status"] == "timeout", r
    assert_contained()


def test_double_fork_setsid_daemon_does_not_outlive_the_run(sandbox, assert_contained):
    r = run(sandbox, """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for fd in (0, 1, 2):
                    os.close(fd)
                while True:
                    with open("/tmp/beacon", "a") as f:
                        f.write("x")
                    time.sleep(0.01)
            os._exit(0)
        time.sleep(0.1)
        print("parent done")
    """)
    assert r["status"] == "ok" and r["stdout"] == "parent done\n", r
    nxt = run(sandbox, "import os\nprint(os.path.exists('/tmp/beacon'))\n")
    assert nxt["stdout"] == "False\n", nxt
    assert_contained()


def test_zombie_flood_does_not_starve_the_next_run(sandbox, assert_contained):
    r = run(sandbox, """
        import os
        made = 0
        for _ in range(500):
            try:
                if os.fork() == 0:
                    os._exit(0)
                made += 1
            except OSError:
                break
        print("forked", made)
    """)
    assert r["status"] == "ok", r
    nxt = run(sandbox, """
        import os
        pids = []
        for _ in range(10):
            pid = os.fork()
            if pid == 0:
                os._exit(7)
            pids.append(pid)
        print(sum(os.WEXITSTATUS(os.waitpid(p, 0)[1]) for p in pids))
    """)
    assert nxt["status"] == "ok" and nxt["stdout"] == "70\n", nxt
    assert_contained()


def test_stdout_flood_is_capped(sandbox, assert_contained):
    r = run(sandbox, "while True:\n    print('x' * 4096)\n", timeout_ms=5000)
    assert r["status"] == "output_limit" and r["truncated"], {k: r[k] for k in ("status", "truncated")}
    cap = sandbox.health()["limits"]["max_output_bytes"]
    assert len(r["stdout"].encode()) <= cap
    assert_contained()


def test_stderr_flood_before_stdout_does_not_deadlock(sandbox, assert_contained):
    r = run(sandbox, """
        import sys
        sys.stderr.write("e" * (600 * 1024))
        sys.stderr.flush()
        print("after")
    """)
    assert r["status"] == "ok" and r["stdout"] == "after\n" and len(r["stderr"]) == 600 * 1024, r["status"]
    assert_contained()


def test_one_huge_file_hits_the_file_size_limit(sandbox, assert_contained):
    r = run(sandbox, """
        import errno
        try:
            with open("/tmp/huge", "wb") as f:
                for _ in range(1024):
                    f.write(b"\\0" * (1024 * 1024))
            print("wrote 1 GiB")
        except OSError as e:
            print("stopped", errno.errorcode[e.errno])
    """, timeout_ms=10000)
    assert r["status"] == "ok" and r["stdout"].startswith("stopped E"), r
    assert_contained()


def test_many_small_files_are_bounded_and_gone_after_the_run(sandbox, assert_contained):
    r = run(sandbox, """
        import errno
        n = 0
        try:
            while n < 100000:
                with open(f"/tmp/f{n}", "w") as f:
                    f.write("x" * 100)
                n += 1
        except OSError as e:
            print("stopped", errno.errorcode[e.errno], n)
    """, timeout_ms=10000)
    assert r["status"] == "ok" and r["stdout"].startswith("stopped ENOSPC"), r
    nxt = run(sandbox, "import os\nprint(len(os.listdir('/tmp')))\n")
    assert nxt["stdout"] == "0\n", nxt
    assert_contained()


def test_dev_shm_fill_is_bounded_and_gone_after_the_run(sandbox, assert_contained):
    r = run(sandbox, """
        import errno
        try:
            with open("/dev/shm/fill", "wb") as f:
                while True:
                    f.write(b"x" * (1024 * 1024))
                    f.flush()
        except OSError as e:
            print("stopped", errno.errorcode[e.errno])
    """, timeout_ms=10000)
    assert r["status"] == "ok" and r["stdout"].startswith("stopped E"), r
    nxt = run(sandbox, "import os\nprint(os.listdir('/dev/shm'))\n")
    assert nxt["stdout"] == "[]\n", nxt
    assert_contained()


def test_open_file_limit_is_hard(sandbox, assert_contained):
    r = run(sandbox, """
        import resource
        files = []
        try:
            while True:
                files.append(open("/dev/null"))
        except OSError as e:
            print("stopped", len(files) < 300)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        print(soft == hard)
    """)
    assert r["status"] == "ok" and r["stdout"] == "stopped True\nTrue\n", r
    assert_contained()


# ---- escaping: network, files, processes -------------------------------------------------------

def test_tcp_to_host_loopback_is_unreachable(sandbox, assert_contained):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(srv.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    try:
        r = run(sandbox, f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=1)
                print("connected")
            except OSError as e:
                print("blocked", type(e).__name__)
        """)
    finally:
        t.join()
        srv.close()
    assert r["status"] == "ok" and r["stdout"].startswith("blocked"), r
    assert not accepted
    assert_contained()


def test_outside_network_is_unreachable(sandbox, assert_contained):
    r = run(sandbox, """
        import socket
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"x", ("1.1.1.1", 53))
            print("sent")
        except OSError as e:
            print("blocked", e.errno)
        import os
        print(sorted(os.listdir("/sys/class/net")) if os.path.exists("/sys/class/net") else "no sysfs")
    """)
    assert r["status"] == "ok" and r["stdout"].startswith("blocked"), r
    assert_contained()


def test_no_socket_family_but_unix(sandbox, assert_contained):
    r = run(sandbox, """
        import socket
        for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):
            try:
                socket.socket(fam, socket.SOCK_DGRAM)
                print("created", fam)
            except OSError as e:
                print("refused", e.errno)
        a, b = socket.socketpair()
        a.send(b"ok")
        print(b.recv(2).decode())
    """)
    assert r["status"] == "ok" and r["stdout"].split("\n")[:5] == ["refused 97"] * 4 + ["ok"], r
    assert_contained()


LEFTOVER_LISTENER = """import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\\0grpo-leftover")
s.listen(8)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            c, _ = s.accept()
            c.sendall(b"leaked")
    os._exit(0)
print("listening")
"""
LEFTOVER_PROBE = """import socket
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    c.connect("\\0grpo-leftover")
    print("reached", c.recv(6))
except OSError as e:
    print("nothing", e.errno)
"""


def test_an_abstract_socket_left_listening_is_gone_for_the_next_run(sandbox, assert_contained):
    # Runs of one slot share its network namespace (one after another): a listener that a run
    # tries to leave behind must die with it. Several pairs, so some land on the same slot.
    for _ in range(4):
        assert run(sandbox, LEFTOVER_LISTENER)["stdout"] == "listening\n"
        r = run(sandbox, LEFTOVER_PROBE)
        assert r["stdout"].startswith("nothing"), r
    assert_contained()


def test_daemon_socket_by_path_is_invisible(sandbox, assert_contained):
    path = sandbox.socket_path
    r = run(sandbox, f"""
        import os, socket
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect({path!r})
            print("connected")
        except OSError as e:
            print("blocked", type(e).__name__)
        print(os.path.exists({os.path.dirname(path)!r}))
    """)
    assert r["status"] == "ok" and r["stdout"] == "blocked FileNotFoundError\nFalse\n", r
    assert_contained()


def test_reading_etc_shadow_fails(sandbox, assert_contained):
    r = run(sandbox, """
        for p in ("/etc/shadow", "/etc/gshadow", "/root/.bash_history", "/etc/ssh/ssh_host_rsa_key"):
            try:
                open(p).read()
                print("read", p)
            except OSError as e:
                print("denied", type(e).__name__)
    """)
    assert r["status"] == "ok" and "read" not in r["stdout"], r
    assert_contained()


def test_listing_root_and_project_tree(sandbox, assert_contained):
    here = os.path.dirname(os.path.abspath(__file__))
    r = run(sandbox, f"""
        import os
        print(sorted(os.listdir("/")))
        print(os.path.exists({here!r}), os.path.exists("/work"), os.path.exists("/root"), os.path.exists("/home"))
    """)
    assert r["status"] == "ok", r
    top, rest = r["stdout"].splitlines()
    assert set(eval(top)) <= {"bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp", "usr"}, top
    assert rest == "False False False False", rest
    assert_contained()


def test_daemon_environment_is_not_visible(sandbox, assert_contained, daemon_secret):
    SECRET = daemon_secret
    r = run(sandbox, f"""
        import os
        print(dict(os.environ))
        found = False
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    found |= {SECRET!r}.encode() in open(f"/proc/{{pid}}/environ", "rb").read()
                except OSError:
                    pass
        print(found)
    """)
    assert r["status"] == "ok" and r["stdout"] == "{}\nFalse\n", r
    assert SECRET not in r["stdout"]
    assert_contained()


def test_host_proc_is_not_visible(sandbox, assert_contained):
    r = run(sandbox, """
        import os
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        print(pids[:5], max(pids) < 50)
        names = set()
        for p in pids:
            try:
                names.add(open(f"/proc/{p}/comm").read().strip())
            except OSError:
                pass
        print("grpo-sandboxd" in names, "systemd" in names, "pytest" in " ".join(names))
    """)
    assert r["status"] == "ok", r
    first, second = r["stdout"].splitlines()
    assert first.endswith("True"), first
    assert second == "False False False", second
    assert_contained()


def test_host_cgroup_path_and_kernel_cmdline_are_hidden(sandbox, assert_contained):
    """/proc/self/cgroup would name the daemon's pid and where the host keeps it; /proc/cmdline the
    host's boot options. Inside, the first reads the cgroup namespace's root, the second nothing."""
    r = run(sandbox, """
        import os
        print(repr(open("/proc/self/cgroup").read()))
        print(repr(open("/proc/cmdline").read()))
        try:
            with open("/proc/cmdline", "w") as f:
                f.write("x")
        except OSError:
            pass
        print(repr(open("/proc/cmdline").read()))
    """)
    assert r["status"] == "ok", r
    cgroup, cmdline, reread = r["stdout"].splitlines()
    lines = ast.literal_eval(cgroup).splitlines()
    assert lines and all(line.rsplit(":", 1)[1] == "/" for line in lines), cgroup
    assert cmdline == reread == "''", (cmdline, reread)
    assert_contained()


def test_signalling_parent_and_kill_minus_one(sandbox, assert_contained):
    r = run(sandbox, """
        import os, signal
        for target in (os.getppid(), 1):
            try:
                os.kill(target, signal.SIGKILL)
                print("sent", target)
            except OSError as e:
                print("denied", target, type(e).__name__)
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError as e:
            print("kill -1", type(e).__name__)
        print("alive")
    """)
    assert r["status"] == "ok" and r["stdout"].endswith("alive\n"), r
    assert_contained()


def test_process_group_kill_does_not_reach_the_next_run(sandbox, assert_contained):
    for _ in range(2):  # once per slot
        r = run(sandbox, """
            import os, signal
            os.kill(0, signal.SIGKILL)
        """)
        assert r["status"] in ("ok", "runtime_error"), r  # pid 1 of its namespace: may survive itself
        for _ in range(2):  # the next run on each slot uses the child forked ahead of time
            ok = run(sandbox, "print('fine')")
            assert ok["status"] == "ok" and ok["stdout"] == "fine\n", ok
    assert_contained()


def test_ptrace_is_denied(sandbox, assert_contained):
    r = run(sandbox, SYSCALL + textwrap.dedent("""
    attempt("traceme", 101, 0, 0, 0, 0)
    attempt("attach1", 101, 16, 1, 0, 0)
    attempt("vm_readv", 310, 1, 0, 1, 0, 1, 0)
    """))
    assert r["status"] == "ok", r
    assert r["stdout"] == "traceme EPERM\nattach1 EPERM\nvm_readv EPERM\n", r
    assert_contained()


def test_raising_rlimits_fails(sandbox, assert_contained):
    r = run(sandbox, """
        import resource
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE"):
            res = getattr(resource, name)
            soft, hard = resource.getrlimit(res)
            try:
                resource.setrlimit(res, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                print(name, "raised")
            except (ValueError, OSError):
                print(name, "kept", soft == hard)
    """)
    assert r["status"] == "ok", r
    assert "raised" not in r["stdout"] and r["stdout"].count("kept True") == 5, r
    assert_contained()


def test_writing_interpreter_files_fails(sandbox, assert_contained):
    r = run(sandbox, """
        import os, sys
        for p in (os.__file__, sys.executable, "/usr/lib/python3/newfile.py", "/etc/passwd", "/bin/sh"):
            try:
                open(p, "ab").write(b"#")
                print("wrote", p)
            except OSError as e:
                print("denied", type(e).__name__)
    """)
    assert r["status"] == "ok" and "wrote" not in r["stdout"], r
    assert_contained()


def test_file_left_in_tmp_is_not_seen_by_the_next_run(sandbox, assert_contained):
    for _ in range(3):  # lands on every slot at least once with 2 slots
        w = run(sandbox, "open('/tmp/left.txt','w').write('secret')\nopen('/dev/shm/left','w').write('x')\nprint('ok')")
        assert w["stdout"] == "ok\n"
        r = run(sandbox, "import os\nprint(os.listdir('/tmp'), os.listdir('/dev/shm'))\n")
        assert r["stdout"] == "[] []\n", r
    assert_contained()


def test_planted_symlink_is_not_followed_when_fetching(sandbox, assert_contained):
    r = sandbox.run(textwrap.dedent("""
        import os
        os.symlink("/etc/passwd", "/tmp/out.txt")
        os.symlink("/proc/1/environ", "/tmp/env.txt")
        open("/tmp/real.txt", "w").write("fine")
    """), fetch_files=["out.txt", "env.txt", "real.txt", "missing.txt"])
    assert r["status"] == "ok", r
    files = r["files"]
    assert "b64" not in files["out.txt"] and "b64" not in files["env.txt"], files
    assert files["real.txt"]["b64"] == "ZmluZQ==", files
    assert "error" in files["missing.txt"]
    assert_contained()


def test_fetch_files_rejects_paths(sandbox):
    from grpo_fast.errors import SandboxError

    with pytest.raises(SandboxError, match="top-level"):
        sandbox.run("print(1)", fetch_files=["../etc/passwd"])
    with pytest.raises(SandboxError, match="relative"):
        sandbox.run("print(1)", files={"/etc/x": "y"})


# ---- kernel attack surface through syscalls -----------------------------------------------------

def test_mount_and_umount_are_denied(sandbox, assert_contained):
    r = run(sandbox, """
        import ctypes, errno
        libc = ctypes.CDLL(None, use_errno=True)
        r = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)
        print("mount", errno.errorcode[ctypes.get_errno()] if r else "ok")
        r = libc.umount2(b"/proc", 2)
        print("umount", errno.errorcode[ctypes.get_errno()] if r else "ok")
    """)
    assert r["stdout"] == "mount EPERM\numount EPERM\n", r
    assert_contained()


def test_unshare_setns_and_clone_namespaces_are_denied(sandbox, assert_contained):
    r = run(sandbox, SYSCALL + textwrap.dedent("""
    attempt("unshare_user", 272, 0x10000000)
    attempt("unshare_net", 272, 0x40000000)
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
    attempt("setns", 308, fd, 0)
    attempt("clone_newuser", 56, 0x10000000 | 17, 0, 0, 0, 0)
    attempt("clone3", 435, 0, 0)
    """))
    assert r["stdout"] == ("unshare_user EPERM\nunshare_net EPERM\nsetns EPERM\n"
                           "clone_newuser EPERM\nclone3 ENOSYS\n"), r
    assert_contained()


def test_bpf_io_uring_and_friends_are_denied(sandbox, assert_contained):
    r = run(sandbox, SYSCALL + textwrap.dedent("""
    attempt("bpf", 321, 0, 0, 0)
    attempt("io_uring_setup", 425, 8, 0)
    attempt("perf_event_open", 298, 0, 0, -1, -1, 0)
    attempt("userfaultfd", 323, 0)
    attempt("keyctl", 250, 0, 0)
    attempt("kexec_load", 246, 0, 0, 0, 0)
    attempt("init_module", 175, 0, 0, 0)
    """))
    assert r["stdout"].split() == [w for n in ("bpf", "io_uring_setup", "perf_event_open", "userfaultfd",
                                                "keyctl", "kexec_load", "init_module") for w in (n, "EPERM")], r
    assert_contained()


def test_becoming_root_fails(sandbox, assert_contained):
    r = run(sandbox, """
        import errno, os
        print(os.getuid(), os.geteuid())
        for f in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot("/tmp")):
            try:
                f()
                print("ok")
            except OSError as e:
                print("denied" if e.errno in (errno.EPERM, errno.EINVAL) else e)
        print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])
    """)
    assert r["stdout"] == "1000 1000\ndenied\ndenied\ndenied\n0000000000000000\n", r
    assert_contained()


# ---- output handling ------------------------------------------------------------------------------

def test_nul_bytes_and_invalid_utf8_on_stdout(sandbox, assert_contained):
    r = run(sandbox, "import sys\nsys.stdout.buffer.write(b'a\\x00b\\xff\\xfec')\n")
    assert r["status"] == "ok" and r["stdout"] == "a\x00b\ufffd\ufffdc", r
    assert_contained()


def test_program_outliving_its_stdout_is_cut_at_the_deadline(sandbox, assert_contained):
    r = run(sandbox, "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)\n", timeout_ms=500)
    assert r["status"] == "timeout", r
    assert_contained()


# ---- faking the test harness ------------------------------------------------------------------------

def test_printing_a_pass_marker_and_exiting_early_fails_assert_tests(sandbox, assert_contained):
    code = textwrap.dedent("""
        import sys
        print("All tests passed!")
        print('{"values": [3]}')
        sys.exit(0)
        def add(a, b):
            return a + b
    """)
    r = sandbox.run_tests(code, test_code="assert add(1, 2) == 3\nassert add(2, 2) == 4\n")
    assert r["passed"] == 0 and r["total"] == 2, r
    assert_contained()


def test_exiting_with_zero_from_inside_the_function_fails(sandbox, assert_contained):
    code = "import os\ndef add(a, b):\n    os._exit(0)\n"
    r = sandbox.run_tests(code, test_code="assert add(1, 2) == 3\n")
    # The checker sees the program's process end mid-call (or dies with it first).
    reasons = ("no_result", "exception: ProgramError: the program's process ended")
    assert r["passed"] == 0 and r["first_failure"]["reason"] in reasons, r
    r = sandbox.run_tests(code, tests=[{"call": "add", "args": [1, 2], "expected": 3}])
    assert r["passed"] == 0, r
    assert_contained()


def test_always_equal_object_fails(sandbox, assert_contained):
    code = textwrap.dedent("""
        class Anything:
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            def __bool__(self):
                return True
        def add(a, b):
            return Anything()
    """)
    r = sandbox.run_tests(code, test_code="assert add(1, 2) == 3\nassert add(1, 2)\n")
    assert r["passed"] == 0, r
    r = sandbox.run_tests(code, tests=[{"call": "add", "args": [1, 2], "expected": 3}])
    assert r["passed"] == 0, r
    assert_contained()


def test_monkeypatching_builtins_does_not_fake_stdout_tests(sandbox, assert_contained):
    code = textwrap.dedent("""
        import builtins, sys
        builtins.print = lambda *a, **k: None
        sys.stdout.write("anything\\n")
    """)
    r = sandbox.run_tests(code, tests=[{"stdin": "1", "expected_stdout": "2"}])
    assert r["passed"] == 0 and r["first_failure"]["reason"] == "wrong_output", r
    assert_contained()


def test_forged_result_record_with_wrong_value_fails(sandbox, assert_contained):
    code = textwrap.dedent("""
        import os
        def add(a, b):
            os.write(3, b'{"values": [true]}')
            os._exit(0)
    """)
    r = sandbox.run_tests(code, test_code="assert add(1, 2) == 3\n")
    assert r["passed"] == 0, r
    assert_contained()



def memory_scan(pattern: str) -> str:
    """A program that counts the matches of `pattern` (the source of a bytes regex, which must
    not match its own text) in every writable mapping of its own memory."""
    return f"""
        import re
        pattern = re.compile({pattern})
        found = 0
        with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", buffering=0) as mem:
            for line in maps:
                addr, perms = line.split()[:2]
                if "rw" not in perms:
                    continue
                lo, hi = (int(x, 16) for x in addr.split("-"))
                try:
                    mem.seek(lo)
                    found += len(pattern.findall(mem.read(hi - lo)))
                except (OSError, OverflowError, ValueError):
                    pass
        print("found", found)
    """


def test_a_later_run_cannot_find_an_earlier_runs_output_in_its_memory(sandbox, assert_contained):
    # The zygote collects output in memory that children never inherit (MADV_DONTFORK) and sends
    # it on from there: a program scanning everything it inherited finds no trace of the
    # output (or the stdin) of the runs before it on its slot.
    token = "qz7Kx2Vb9TnW4mYe"
    leave = f"import sys\nsys.stdout.write({token!r} * 4000)\nsys.stderr.write({token!r} * 4000)\n"
    scan = memory_scan(f'b"(?:" + {token[::-1]!r}[::-1].encode() + b"){{40}}"')
    for _ in range(3):
        r = run(sandbox, leave, stdin=token * 4000)
        assert r["status"] == "ok" and len(r["stdout"]) == 64000, r["status"]
        r = run(sandbox, scan, timeout_ms=10000)
        assert r["status"] == "ok" and r["stdout"] == "found 0\n", r
        r = sandbox.run_tests(leave, [{"stdin": token, "expected_stdout": ""}] * 3)
        r = run(sandbox, scan, timeout_ms=10000)
        assert r["stdout"] == "found 0\n", r
    assert_contained()


def test_a_later_run_cannot_find_an_earlier_runs_exit_code_in_its_memory(sandbox, assert_contained):
    # The numbers of a run (exit code, CPU, RSS, times) pass through the zygote's stack on their
    # way to the daemon, and children inherit that stack: it is wiped after each unit, so a later
    # run scanning everything it inherited finds no earlier run's report.
    scan = memory_scan(r"""rb'"exit_code": 217, "signal": null, "wall_ms": \d'""")
    for _ in range(3):
        r = run(sandbox, "raise SystemExit(217)")
        assert r["exit_code"] == 217, r
        # A slot forks its next child during a run, before that run's report: the children
        # forked during the next few runs are the ones that could find it.
        for _ in range(4):
            r = run(sandbox, scan, timeout_ms=10000)
            assert r["stdout"] == "found 0\n", r
    assert_contained()


# ---- faking HumanEval-style checks that are not a plain list of asserts ----------------------------
#
# The check runs in a process the program never touched, and every value the program returns
# reaches it only as plain data rebuilt from an exact-type encoding: none of these may pass, in any
# of the shapes HumanEval's checks take.

CHECKS = {
    "loop": "def check(candidate):\n    for x in [1, 2, 3]:\n        assert candidate(x) == x * 2, x\n",
    "assignment_and_print": "def check(candidate):\n    print('go')\n    r = candidate(4)\n    assert r == 8\n",
    "abs_tolerance": "def check(candidate):\n    assert abs(candidate(1) - 2.0) < 1e-6\n",
    "isclose": "import math\n\ndef check(candidate):\n    assert math.isclose(candidate(1), 2.0)\n",
    "set_of_result": "def check(candidate):\n    assert set(candidate(1)) == {2}\n",
    "sorted_result": "def check(candidate):\n    assert sorted(candidate(1)) == [2]\n",
    "reference_function": textwrap.dedent("""\
        def check(candidate):
            def ref(x):
                return x * 2
            for x in range(5):
                assert candidate(x) == ref(x)
    """),
    "less_than": "def check(candidate):\n    assert candidate(1) < 0 and not candidate(1) >= 0\n",
    "truthiness": "def check(candidate):\n    assert candidate(1) and not candidate(2) != 4\n",
}

FORGERIES = {
    "str_subclass_always_equal": """
        class S(str):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = str.__hash__
        def f(x): return S("no")
    """,
    "int_subclass_always_equal": """
        class I(int):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __lt__(self, other): return True
            def __ge__(self, other): return False
            def __hash__(self): return 2
        def f(x): return I(0)
    """,
    "float_with_abs_and_sub_zero": """
        class F(float):
            def __sub__(self, other): return 0.0
            def __rsub__(self, other): return 0.0
            def __abs__(self): return 0.0
            def __eq__(self, other): return True
        def f(x): return F(-1.0)
    """,
    "list_subclass_always_equal": """
        class L(list):
            def __eq__(self, other): return True
            def __iter__(self): return iter([2])
        def f(x): return L([9])
    """,
    "object_with_every_dunder": """
        class Anything:
            def __eq__(self, o): return True
            def __ne__(self, o): return False
            def __lt__(self, o): return True
            def __ge__(self, o): return False
            def __bool__(self): return True
            def __hash__(self): return 0
            def __iter__(self): return iter([2])
            def __sub__(self, o): return 0
            def __rsub__(self, o): return 0
            def __abs__(self): return 0
            def __float__(self): return 2.0
        def f(x): return Anything()
    """,
    "patched_builtins_and_math": """
        import builtins, math
        builtins.abs = lambda v: 0
        builtins.sorted = lambda v, **k: [2]
        builtins.set = lambda v=(): {2}
        builtins.AssertionError = type("Nothing", (Exception,), {})
        math.isclose = lambda *a, **k: True
        def f(x): return "wrong"
    """,
    "system_exit_zero_in_the_function": """
        def f(x): raise SystemExit(0)
    """,
    "system_exit_zero_at_import": """
        raise SystemExit(0)
        def f(x): return x * 2
    """,
    "os_exit_zero_in_the_function": """
        import os
        def f(x): os._exit(0)
    """,
    "forged_reports_on_every_fd": """
        import os, struct
        report = struct.pack("<4siIIdq", b"GZR1", 0, 0, 0, 0.0, 0) + b'{"values": []}'
        def f(x):
            for fd in range(3, 200):
                try:
                    os.write(fd, report)
                except OSError:
                    pass
            os._exit(0)
    """,
    "reads_the_checkers_memory": """
        import os
        def f(x):
            for pid in os.listdir("/proc"):
                if pid.isdigit() and int(pid) != os.getpid():
                    for what in ("mem", "fd/3", "environ"):
                        try:
                            open(f"/proc/{pid}/{what}", "rb").read(1)
                            print("opened", pid, what)
                        except OSError:
                            pass
            return "wrong"
    """,
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_humaneval_check_shapes_cannot_be_faked(sandbox, assert_contained, forgery):
    code = textwrap.dedent(FORGERIES[forgery])
    for shape, check in CHECKS.items():
        r = sandbox.run_tests(code, test_code=check, entry_point="f")
        assert r["passed"] == 0, (forgery, shape, r)
        assert "opened" not in r["first_failure"]["stdout"], (forgery, shape, r)
    honest = "def f(x):\n    return x * 2\n"
    for shape in ("loop", "assignment_and_print", "reference_function"):
        assert sandbox.run_tests(honest, test_code=CHECKS[shape], entry_point="f")["passed"] == 1
    assert_contained()


def test_assert_list_with_both_sides_calling_the_program_cannot_be_faked(sandbox, assert_contained):
    # Both operands are evaluated in the checker: the program's patched `sorted` is not the one
    # the right-hand side calls.
    code = "import builtins\nbuiltins.sorted = lambda v, **k: [0]\ndef f(x):\n    return [0]\n"
    r = sandbox.run_tests(code, test_code="assert f([3, 1]) == sorted([3, 1])\n")
    assert r["passed"] == 0 and r["first_failure"]["reason"] == "assertion_failed", r
    assert_contained()
