"""A real grpo-sandboxd for the sandbox tests: started once per session on a temporary socket."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from grpo_fast.sandbox import Client, find_daemon_binary

# Put into the daemon's environment so tests can check that no program ever sees it.
SECRET = "grpo-test-secret-7f3a9c"


def _program_uids(health: dict) -> set[int]:
    return set(health.get("isolation", {}).get("host_uids", {}).get("programs", []))


def _status(pid: int | str) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def leftovers(program_uids: set[int], zygote_uids: set[int]) -> list[tuple[int, int, str]]:
    """Processes of the program uids except each slot's spare children: they are forked ahead of
    the next run (already unprivileged, waiting for their unit) by the zygote or the next
    harness, both of zygote uid. Anything a program started would have a program-uid parent."""
    found = [p for p in processes_of(program_uids)
             if int(_status(_status(p[0]).get("PPid", "0")).get("Uid", "-1").split()[0]) not in zygote_uids]
    spares = len(processes_of(program_uids)) - len(found)
    if spares > 3 * len(zygote_uids):  # per slot: the zygote's two (runs, tests), the next harness's
        found.append((-1, -1, f"{spares} spare children for {len(zygote_uids)} slots"))
    return found


def processes_of(uids: set[int]) -> list[tuple[int, int, str]]:
    """Host processes whose real uid is one of `uids`: (pid, uid, command)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                if uid in uids:
                    found.append((int(d.name), uid, cmd))
                break
    return found


@pytest.fixture(scope="session")
def daemon_secret() -> str:
    return SECRET


@pytest.fixture(scope="session")
def daemon_binary() -> str:
    exe = find_daemon_binary()
    if exe is None:
        pytest.skip("grpo-sandboxd is not built: run `cargo build --release -p grpo-sandbox` or set GRPO_SANDBOXD")
    return exe


@pytest.fixture(scope="session")
def sandbox(daemon_binary, tmp_path_factory) -> Client:
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root (CI runs as root)")
    tmp = tmp_path_factory.mktemp("sandboxd")
    sock = str(tmp / "sandboxd.sock")
    # Host uids of its own, so processes of another daemon on this machine never look like ours.
    cfg = tmp / "sandboxd.toml"
    cfg.write_text(f"[isolation]\nuid_base = {1_600_000 + (os.getpid() % 4096) * 16}\n")
    old = os.environ.get("GRPO_TEST_SECRET")
    os.environ["GRPO_TEST_SECRET"] = SECRET  # inherited by the daemon only
    try:
        client = Client(sock, binary=daemon_binary, daemon_args=["--slots", "2", "--config", str(cfg)])
    finally:
        if old is None:
            os.environ.pop("GRPO_TEST_SECRET", None)
        else:
            os.environ["GRPO_TEST_SECRET"] = old
    assert client.started_daemon
    yield client
    client.close()


@pytest.fixture()
def assert_contained(sandbox):
    """Call after a hostile run: the daemon still serves correct answers, and no process of the
    sandbox uids outlives the run on the host."""

    def check() -> None:
        r = sandbox.run("print(6 * 7)")
        assert r["status"] == "ok" and r["stdout"] == "42\n", r
        health = sandbox.health()
        uids = _program_uids(health)
        zygotes = set(health["isolation"]["host_uids"]["zygotes"])
        assert uids, "health does not list the program uids"
        deadline = time.monotonic() + 5
        left = leftovers(uids, zygotes)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = leftovers(uids, zygotes)
        assert not left, f"sandboxed processes outlived their run: {left}"

    return check
