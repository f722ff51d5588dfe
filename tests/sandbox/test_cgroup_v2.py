"""The daemon's cgroup v2 side, against whatever this host has. Where the daemon's own cgroup is on
a cgroup2 hierarchy with the pids and memory controllers, each slot gets pids.max, memory.max and
memory.swap.max = 0 there; where it is on an empty cgroup2 beside v1 controllers (a hybrid host),
the slots still get v2 cgroups without controllers, for `cgroup.kill`. Either way /health says
which, and the slots' processes live in the cgroups /health names. (The v2 code on a cgroup2 file
system mounted by the test itself is exercised by the Rust tests in sandbox/src/cgroup.rs.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grpo_fast.sandbox import Client


def _v2_dir(pid: int) -> Path | None:
    """Where `pid`'s cgroup2 cgroup is on disk (the `0::` line and the cgroup2 mount)."""
    line = next((line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.startswith("0::")), None)
    mount = next((line.split(" - ")[0].split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if " - cgroup2 " in line), None)
    if line is None or mount is None:
        return None
    return Path(mount) / line[3:].lstrip("/")


@pytest.fixture(scope="module")
def daemon(daemon_binary, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the root daemon makes the slot cgroups")
    tmp = tmp_path_factory.mktemp("cg2")
    cfg = tmp / "d.toml"
    cfg.write_text("[limits]\nmax_memory_mb = 300\ndefault_memory_mb = 300\nmax_processes = 8\n[isolation]\nuid_base = 1860000\n")
    with Client(str(tmp / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "2", "--config", str(cfg)]) as c:
        yield c, c._proc.pid  # the daemon itself: the client starts its binary directly


def test_health_names_one_backend_for_each_limit_and_the_kill(daemon):
    c, _ = daemon
    iso = c.health()["isolation"]
    assert iso["pids"] in ("cgroup-v2-pids+rlimit-nproc", "cgroup-v1-pids+rlimit-nproc", "rlimit-nproc")
    assert iso["memory"] in ("cgroup-v2-memory+rlimit-as", "cgroup-v1-memory+rlimit-as", "rlimit-as")
    assert iso["kill"] in ("cgroup-v2-kill", "pid-namespace")
    # v2 limits come together or not at all, and never beside v1 ones.
    assert iso["pids"].startswith("cgroup-v2") == iso["memory"].startswith("cgroup-v2"), iso


def _uid(pid: int) -> int | None:
    """A process's real uid, None when it ended between listing and reading (a run's child)."""
    try:
        return int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
    except FileNotFoundError:
        return None


def test_slot_processes_live_in_the_v2_slot_cgroups(daemon):
    c, pid = daemon
    iso = c.health()["isolation"]
    base = _v2_dir(pid)
    if iso["kill"] != "cgroup-v2-kill":
        pytest.skip(f"no v2 slot cgroups here: {iso['cgroup_note']}")
    if iso["memory"].startswith("cgroup-v2"):
        # The daemon moved itself into a leaf of its own before enabling controllers.
        assert base is not None and base.name == "daemon" and base.parent.name == f"grpo-sandboxd-{pid}"
        parent = base.parent
    else:
        parent = base / f"grpo-sandboxd-{pid}"
    assert c.run("print(1)")["stdout"] == "1\n"
    for i in range(2):
        slot = parent / f"slot{i}"
        procs = [int(p) for p in (slot / "cgroup.procs").read_text().split()]
        # The keeper, the zygote, and the processes the zygote forks ahead.
        assert len(procs) >= 2, (slot, procs)
        uids = {u for u in map(_uid, procs) if u is not None}
        assert uids <= {0, 1860000 + 2 * i, 1860000 + 2 * i + 1}, uids
        if iso["memory"].startswith("cgroup-v2"):
            assert int((slot / "memory.max").read_text()) == (300 + 128) << 20
            if (slot / "memory.swap.max").exists():
                assert (slot / "memory.swap.max").read_text().strip() == "0"
            assert int((slot / "pids.max").read_text()) == 8 * 4 + 16
            assert (slot / "memory.oom.group").read_text().strip() == "0"


def test_the_v2_slot_cgroups_are_removed_at_shutdown(daemon_binary, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the root daemon makes the slot cgroups")
    with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "1"]) as c:
        iso = c.health()["isolation"]
        pid = c._proc.pid
        base = _v2_dir(pid)
        if iso["kill"] != "cgroup-v2-kill" or base is None:
            pytest.skip(f"no v2 slot cgroups here: {iso['cgroup_note']}")
        made = base.parent if base.name == "daemon" else base / f"grpo-sandboxd-{pid}"
        assert (made / "slot0").is_dir()
    assert not (made / "slot0").exists()
