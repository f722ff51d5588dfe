"""The zygote's native half (sandbox/src/zygote_native.c) against a real daemon: where the two
parts of the seccomp policy sit, and that serving requests leaves nothing behind in the zygote."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import _status, processes_of
from test_hostile import LEFTOVER_LISTENER, LEFTOVER_PROBE

from grpo_fast.sandbox import Client


def _zygotes(sandbox) -> list[int]:
    """The slots' zygotes: interpreters of the zygote uids whose parent is a slot's keeper (a
    grpo-sandboxd process); spare children and harnesses are the zygote's children."""
    uids = set(sandbox.health()["isolation"]["host_uids"]["zygotes"])
    return [pid for pid, _, _ in processes_of(uids)
            if _status(pid).get("Name", "").startswith("python")
            and _status(_status(pid).get("PPid", "0")).get("Name") == "grpo-sandboxd"]


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_zygotes_run_under_the_slot_filter(sandbox):
    zygotes = _zygotes(sandbox)
    assert len(zygotes) == sandbox.health()["slots"]
    for pid in zygotes:
        st = _status(pid)
        assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "1", (pid, st)


def test_programs_run_under_both_filters(sandbox):
    r = sandbox.run("print(open('/proc/self/status').read())")
    st = dict(line.split(":\t", 1) for line in r["stdout"].splitlines() if ":\t" in line)
    assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "1"
    if "Seccomp_filters" in st:  # Linux >= 5.9
        assert int(st["Seccomp_filters"]) == 2
    # The run filter is what denies the calls the zygote itself still makes.
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print(libc.unshare(0x20000), ctypes.get_errno(), libc.setns(0, 0), ctypes.get_errno(),\n"
            "      libc.sethostname(b'x', 1), ctypes.get_errno(),\n"
            "      libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())")
    r = sandbox.run(code)
    assert r["stdout"].split() == ["-1", "1"] * 4, r


def test_each_run_is_a_process_group_not_a_session(sandbox):
    """A run leads a process group of its own (kill(0) stays inside it) but stays in the zygote's
    session, so no run gets a scheduler autogroup of its own (a per-run task group to build and
    tear down, and the CPU weight of a whole login session)."""
    code = ("import os\nprint(os.getpgrp() == os.getpid(), os.getsid(0) != os.getpid(),\n"
            "      open('/proc/self/autogroup').read().split()[0] if os.path.exists('/proc/self/autogroup') else '-')")
    answers = [sandbox.run(code)["stdout"].split() for _ in range(3)]
    assert all(a[:2] == ["True", "True"] for a in answers), answers
    assert len({a[2] for a in answers}) == 1, answers  # one autogroup for all runs


@pytest.mark.parametrize("code, status, out, err", [
    ("print(1", "runtime_error", "", "SyntaxError: '(' was never closed"),
    ("x = '\x00'\nprint(1)", "runtime_error", "", "ValueError: source code string cannot contain null bytes"),
    ("# -*- coding: latin-1 -*-\nprint('\u00e9\u4e2d')", "ok", "\u00e9\u4e2d\n", ""),  # a str: the cookie is ignored
    ("def f(x: int): pass\nprint(f.__annotations__)", "ok", "{'x': <class 'int'>}\n", ""),  # no inherited futures
    ("print(__name__, __file__)\n" * 20000, "ok", "__main__ main.py\n" * 20000, ""),  # a source over 64 KiB
])
def test_a_plain_run_compiles_as_compile_of_a_str_would(sandbox, code, status, out, err):
    """A plain run's source is read and compiled by the native half (no str copy of it in
    Python): the program sees what compile(source, "main.py", "exec", dont_inherit=True) gives."""
    r = sandbox.run(code)
    assert r["status"] == status and r["stdout"] == out and err in r["stderr"], r
    assert "Traceback" not in r["stderr"] or status == "ok", r


def test_random_is_reseeded_in_every_run_and_in_a_programs_own_fork(sandbox):
    """The zygote registers random's at-fork reseed as C callables: each run still starts from
    fresh entropy, and so does a process the program forks itself (with no cached gauss)."""
    values = {sandbox.run("import random\nprint(random.random())")["stdout"] for _ in range(4)}
    assert len(values) == 4, values
    code = ("import os, random\nrandom.gauss(0, 1)\nr, w = os.pipe()\npid = os.fork()\n"
            "if pid == 0:\n    os.write(w, repr((random.random(), random._inst.gauss_next)).encode())\n    os._exit(0)\n"
            "os.close(w)\nos.waitpid(pid, 0)\nprint(os.read(r, 200).decode())\n"
            "print(repr((random.random(), random._inst.gauss_next is None)))\n")
    r = sandbox.run(code)
    child, parent = (eval(line) for line in r["stdout"].splitlines())
    assert child[1] is None and parent[1] is False, r
    assert child[0] != parent[0], r


def test_serving_leaves_no_fds_or_children_in_the_zygote(sandbox):
    """Tests requests with fewer tests than a spare child has pipe sets, plain runs, crashes and
    timeouts: the zygote's fd count and its number of children stay flat."""
    zygotes = _zygotes(sandbox)

    def load() -> None:
        for i in range(6):
            sandbox.run_tests("print(int(input()) * 2)", [{"stdin": f"{i}\n", "expected_stdout": f"{2 * i}\n"}] * 3)
            sandbox.run("import os\nos._exit(3)" if i % 2 else "print(1)")
            sandbox.run_tests("import os\nx = int(input())\nif x == 1: os._exit(1)\nprint(x)",
                              [{"stdin": f"{k}\n", "expected_stdout": f"{k}\n"} for k in range(4)])
        sandbox.run("while True: pass", timeout_ms=50)

    def census() -> tuple[list[int], list[int]]:
        time.sleep(0.2)  # the last children are reaped after their answers went out
        kids = [sum(1 for c in Path("/proc").iterdir() if c.name.isdigit()
                    and _status(c.name).get("PPid", "").strip() == str(z)) for z in zygotes]
        return [_fds(z) for z in zygotes], kids

    load()
    before = census()
    for _ in range(3):
        load()
    assert census() == before


NETNS = "import os\nprint(os.readlink('/proc/self/ns/net'))"
STATE = "import builtins\nprint(getattr(builtins, 'seen', 0))\nbuiltins.seen = 1"


def _one_slot_daemon(daemon_binary, tmp_path, toml: str) -> Client:
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    tmp_path.mkdir(parents=True)
    cfg = tmp_path / "d.toml"
    cfg.write_text("[pool]\nslots = 1\n[isolation]\nuid_base = 1700000\n" + toml)
    return Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--config", str(cfg)])


def test_network_namespace_per_slot_or_per_run(daemon_binary, tmp_path):
    with _one_slot_daemon(daemon_binary, tmp_path / "slot", "") as c:
        assert len({c.run(NETNS)["stdout"] for _ in range(4)}) == 1
        # One slot, one namespace: every run follows the last one's death, so a listener (and
        # the child left to serve it) is gone for the next run, a plain run or a tests request.
        for _ in range(3):
            assert c.run(LEFTOVER_LISTENER)["stdout"] == "listening\n"
            assert c.run(LEFTOVER_PROBE)["stdout"].startswith("nothing")
        assert not c.run_tests(LEFTOVER_LISTENER, [{"stdin": "", "expected_stdout": "x"}])["all_passed"]
        assert c.run(LEFTOVER_PROBE)["stdout"].startswith("nothing")
    with _one_slot_daemon(daemon_binary, tmp_path / "run", "per_run_network_namespace = true\n") as c:
        seen = [c.run(NETNS)["stdout"] for _ in range(4)]
        assert len(set(seen)) == 4, seen
        assert c.run("import socket\nsocket.socket(socket.AF_INET)")["status"] == "runtime_error"


def test_tests_per_process_setting(daemon_binary, tmp_path):
    tests = [{"stdin": "", "expected_stdout": "0"}] * 3
    with _one_slot_daemon(daemon_binary, tmp_path / "shared", "") as c:
        r = c.run_tests(STATE, tests)
        assert [t["passed"] for t in r["tests"]] == [True, False, False]  # one process: state stays
    with _one_slot_daemon(daemon_binary, tmp_path / "fresh", "[limits]\ntests_per_process = 1\n") as c:
        assert c.run_tests(STATE, tests)["all_passed"]
