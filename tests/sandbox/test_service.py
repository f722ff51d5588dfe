"""`grpo-fast sandbox install-service`: the unit it writes names this installation's grpo-sandboxd,
passes `systemd-analyze verify` (where systemd is installed), keeps an existing config, and the
socket group it configures lets a non-root member of the group use the daemon."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from grpo_fast.cli import main as cli
from grpo_fast.cli.sandbox import render_unit

REPO = Path(__file__).resolve().parents[2]


def _verify(unit: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)


def test_dry_run_prints_the_unit_with_the_installed_binary(daemon_binary, tmp_path):
    r = CliRunner().invoke(cli, ["sandbox", "install-service", "--dry-run", "--binary", daemon_binary,
                                 "--unit-dir", str(tmp_path / "units"), "--config-path", str(tmp_path / "d.toml")])
    assert r.exit_code == 0, r.output
    exe = os.path.abspath(daemon_binary)
    assert f"ExecStart={exe} --config {tmp_path / 'd.toml'} --socket /run/grpo-sandboxd/sandboxd.sock" in r.output
    for line in ("Delegate=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only",
                 "PrivateTmp=yes"):
        assert f"\n{line}\n" in r.output, line
    # Options that would break the daemon are absent: a umask hides the keeper's staging folders
    # from the slots' uids, ProtectControlGroups forbids the slot cgroups.
    for absent in ("UMask", "ProtectControlGroups", "RestrictNamespaces", "PrivateUsers", "MemoryDenyWriteExecute"):
        assert absent not in r.output
    assert not (tmp_path / "units").exists() and not (tmp_path / "d.toml").exists()


def test_the_repository_unit_is_the_rendered_default():
    text = (REPO / "sandbox" / "grpo-sandboxd.service").read_text()
    assert text == render_unit("/usr/local/bin/grpo-sandboxd", "/etc/grpo-sandboxd.toml",
                               "/run/grpo-sandboxd/sandboxd.sock")


@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_installed_unit_passes_systemd_analyze_verify(daemon_binary, tmp_path, user):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    args = ["sandbox", "install-service", "--binary", daemon_binary, "--unit-dir", str(tmp_path),
            "--config-path", str(tmp_path / "grpo-sandboxd.toml")] + (["--user"] if user else [])
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    unit = tmp_path / "grpo-sandboxd.service"
    v = _verify(unit)
    # verify also reports problems of other units on the host; only ours count here.
    ours = [line for line in (v.stdout + v.stderr).splitlines() if "grpo-sandboxd" in line]
    assert not ours, ours
    assert ("--rootless" in unit.read_text()) == user
    cfg = (tmp_path / "grpo-sandboxd.toml").read_text()
    assert f'mode = "{"rootless" if user else "root"}"' in cfg
    # The daemon accepts the config it wrote.
    p = subprocess.run([daemon_binary, "--config", str(tmp_path / "grpo-sandboxd.toml"), "--probe"],
                       capture_output=True, text=True, timeout=60)
    assert '"mode"' in p.stdout, p.stderr


def test_an_existing_config_is_kept_unless_forced(daemon_binary, tmp_path):
    cfg = tmp_path / "d.toml"
    cfg.write_text("[pool]\nslots = 3\n")
    base = ["sandbox", "install-service", "--binary", daemon_binary, "--unit-dir", str(tmp_path),
            "--config-path", str(cfg)]
    r = CliRunner().invoke(cli, base)
    assert r.exit_code == 0 and "kept" in r.output, r.output
    assert cfg.read_text() == "[pool]\nslots = 3\n"
    r = CliRunner().invoke(cli, [*base, "--force", "--slots", "5"])
    assert r.exit_code == 0, r.output
    assert "slots = 5" in cfg.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"


def test_an_unknown_socket_group_is_refused_before_writing(daemon_binary, tmp_path):
    r = CliRunner().invoke(cli, ["sandbox", "install-service", "--binary", daemon_binary, "--unit-dir",
                                 str(tmp_path), "--config-path", str(tmp_path / "d.toml"),
                                 "--socket-group", "no-such-group-7f3a"])
    assert r.exit_code != 0 and "groupadd" in r.output, r.output
    assert list(tmp_path.iterdir()) == []


def test_a_member_of_the_socket_group_uses_the_daemon_without_root(daemon_binary, tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    group = next((g for g in ("nogroup", "daemon", "users") if _has_group(g)), None)
    if group is None:
        pytest.skip("no unprivileged group to test with")
    gid = grp.getgrnam(group).gr_gid
    # Not below pytest's temporary folder, which is 0700: the socket's mode must be what decides.
    folder = Path(tempfile.mkdtemp(prefix="grpo-sockgroup-"))
    os.chmod(folder, 0o755)
    sock = folder / "d.sock"
    cfg = tmp_path / "d.toml"
    cfg.write_text(f'[server]\nsocket_group = "{group}"\n[isolation]\nuid_base = 1850000\n')
    proc = subprocess.Popen([daemon_binary, "--config", str(cfg), "--socket", str(sock), "--slots", "1", "--quiet"],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sock.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no socket"
        st = sock.stat()
        assert st.st_gid == gid and st.st_mode & 0o777 == 0o660, (st.st_gid, oct(st.st_mode))
        probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                 "s.sendall(b'GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'); "
                 "print(s.recv(100).split(b'\\r\\n')[0].decode())")
        # An unprivileged uid in the group gets in; the same uid outside it does not.
        member = subprocess.run(["setpriv", "--reuid=65534", f"--regid={gid}", "--clear-groups", "/usr/bin/python3",
                                 "-c", probe, str(sock)], capture_output=True, text=True, timeout=30)
        assert member.stdout.strip() == "HTTP/1.1 200 OK", member.stderr
        other_gid = 65533 if gid != 65533 else 65532
        stranger = subprocess.run(["setpriv", "--reuid=65534", f"--regid={other_gid}", "--clear-groups",
                                   "/usr/bin/python3", "-c", probe, str(sock)], capture_output=True, text=True,
                                  timeout=30)
        assert stranger.returncode != 0 and "Permission denied" in stranger.stderr, stranger
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False
