"""`grpo-fast doctor` reports what the sandbox daemon really does, asked of the daemon itself: the
same pids, memory and kill mechanism a running daemon's /health gives, the mode (root or rootless)
the daemon would pick for this user, and a clear failure where the daemon could not isolate."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from click.testing import CliRunner

from grpo_fast.cli import main
from grpo_fast.cli.doctor import checks, daemon_decision
from grpo_fast.sandbox import Client

KEYS = ("pids", "memory", "kill")


def test_the_probe_agrees_with_a_started_daemons_health(daemon_binary, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("compares with the root daemon")
    source, probed, error = daemon_decision(daemon_binary, socket=str(tmp_path / "absent.sock"))
    assert "--probe" in source and not error, error
    with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "2"]) as c:
        iso = c.health()["isolation"]
        assert iso["privilege"] == probed["mode"] == "root"
        assert {k: iso[k] for k in KEYS} == {k: probed[k] for k in KEYS}
        # With the daemon running, doctor reads its /health instead of probing.
        source, answer, _ = daemon_decision(daemon_binary, socket=str(tmp_path / "d.sock"))
        assert source.startswith("running daemon at") and {k: answer[k] for k in KEYS} == {k: iso[k] for k in KEYS}


def test_doctor_reports_the_daemons_cgroups_not_the_hosts_guess(daemon_binary, monkeypatch):
    monkeypatch.setenv("GRPO_SANDBOXD", daemon_binary)
    monkeypatch.setenv("GRPO_SANDBOX_SOCKET", "/nonexistent/grpo-doctor-test.sock")
    r = CliRunner().invoke(main, ["doctor", "--json"])
    rows = {c["name"]: c for c in json.loads(r.output)}
    _, probed, _ = daemon_decision(daemon_binary, socket="/nonexistent/grpo-doctor-test.sock")
    cg = rows["sandbox cgroups"]
    for k in KEYS:
        assert f"{k}: {probed[k]}" in cg["detail"], cg
    # A memory cgroup in use is reported as such (the old doctor said RLIMIT_AS on v1 hosts).
    assert cg["ok"] is (True if probed["memory"].startswith("cgroup") else None), cg
    iso = rows["sandbox isolation"]
    assert iso["detail"].startswith("root:" if os.geteuid() == 0 else "rootless:"), iso
    assert "cgroup v2" not in rows, "the host-only cgroup v2 guess is gone"


def test_a_rootless_user_is_told_rootless(daemon_binary, tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as an unprivileged user")
    # The daemon as uid 65534, through a launcher doctor runs like any binary.
    launcher = tmp_path / "as-nobody"
    launcher.write_text(f'#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {daemon_binary} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    _, answer, error = daemon_decision(str(launcher), socket=str(tmp_path / "absent.sock"))
    assert answer is not None, error
    assert answer["mode"] == "rootless" and answer["euid"] == 65534
    if answer["ok"]:
        assert answer["user_namespaces"] is True
    else:  # a kernel that forbids them: the answer says how to allow them
        assert "unprivileged user namespaces" in error and "sysctl" in error


def test_a_daemon_that_cannot_isolate_fails_the_check(daemon_binary, tmp_path, monkeypatch):
    if os.geteuid() == 0:
        # Root asking for root mode succeeds; a config the daemon refuses fails instead.
        cfg = tmp_path / "bad.toml"
        cfg.write_text('[isolation]\nmode = "sideways"\n')
        launcher = tmp_path / "bad-daemon"
        launcher.write_text(f'#!/bin/sh\nexec {daemon_binary} --config {cfg} "$@"\n')
        launcher.chmod(0o755)
        monkeypatch.setenv("GRPO_SANDBOXD", str(launcher))
    monkeypatch.setenv("GRPO_SANDBOX_SOCKET", str(tmp_path / "absent.sock"))
    rows = {c.name: c for c in checks()}
    iso = rows["sandbox isolation"]
    if os.geteuid() == 0:
        assert iso.ok is False and "isolation.mode" in iso.detail, iso
