"""A slot's memory cgroup, against a real daemon whose memory maximum is low (300 MB, so the
slot's cgroup allows 428): RLIMIT_AS bounds each process, the cgroup everything a run holds
together, and an OOM kill in it reads as `memory_limit`. Skipped where the host has no memory
cgroup the daemon may make (then /health says `rlimit-as`)."""

from __future__ import annotations

import os
import textwrap

import pytest

from grpo_fast.sandbox import Client

# Each of 6 children touches 150 MB (under its own 300 MB address-space limit): 900 MB together.
CHILDREN = textwrap.dedent("""
    import os, time
    kids = []
    for i in range(6):
        pid = os.fork()
        if pid == 0:
            b = bytearray(150 << 20)
            for j in range(0, len(b), 4096):
                b[j] = 1
            time.sleep(1)
            os._exit(0)
        kids.append(pid)
    print(*[os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids])
""")

# Four children hold 60 MB each; then the program itself grows to 250 MB: the largest process
# of the slot when the cgroup fills, so the one the OOM killer picks.
GROWS = textwrap.dedent("""
    import os, time
    for i in range(4):
        if os.fork() == 0:
            b = bytearray(60 << 20)
            for j in range(0, len(b), 4096):
                b[j] = 1
            time.sleep(5)
            os._exit(0)
    time.sleep(0.5)
    chunks = []
    for i in range(25):
        chunks.append(bytearray(10 << 20))
        for j in range(0, 10 << 20, 4096):
            chunks[-1][j] = 1
    print("survived")
""")


@pytest.fixture(scope="module")
def small(daemon_binary, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    tmp = tmp_path_factory.mktemp("memcg")
    cfg = tmp / "d.toml"
    cfg.write_text("[limits]\nmax_memory_mb = 300\ndefault_memory_mb = 300\n[isolation]\nuid_base = 1840000\n")
    with Client(str(tmp / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "1", "--config", str(cfg)]) as c:
        if c.health()["isolation"]["memory"] != "cgroup-v1-memory+rlimit-as":
            pytest.skip(f"no memory cgroup here: {c.health()['isolation']['cgroup_note']}")
        yield c


def test_health_says_the_memory_cgroup_bounds_runs(small):
    iso = small.health()["isolation"]
    assert iso["memory"] == "cgroup-v1-memory+rlimit-as"
    assert "per-slot memory cgroups under" in iso["cgroup_note"]


def test_processes_together_cannot_hold_more_than_the_slot_allows(small):
    r = small.run(CHILDREN, timeout_ms=20000)
    assert r["status"] == "ok", r
    codes = [int(c) for c in r["stdout"].split()]
    assert len(codes) == 6 and set(codes) <= {0, -9}, r
    # 428 MB hold at most two of them beside the zygote: the rest were killed.
    assert codes.count(-9) >= 3, r
    assert small.run("print(6 * 7)")["stdout"] == "42\n"


def test_an_oom_kill_of_the_program_is_a_memory_limit(small):
    r = small.run(GROWS, timeout_ms=20000)
    assert r["status"] == "memory_limit" and r["signal"] == 9, r
    assert "survived" not in r["stdout"]
    assert small.run("print(6 * 7)")["stdout"] == "42\n"


def test_an_oom_kill_in_a_tests_request_fails_that_test_as_memory(small):
    r = small.run_tests(GROWS, [{"stdin": "", "expected_stdout": "survived"},
                                {"stdin": "", "expected_stdout": "survived"}], timeout_ms=20000)
    assert [t["status"] for t in r["tests"]] == ["memory_limit", "memory_limit"], r

