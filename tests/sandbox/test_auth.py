"""The TCP listener's token, against a real daemon: nothing runs without it, the Unix socket
(guarded by its file mode) needs none, and a daemon refuses to listen beyond loopback without one."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from grpo_fast.sandbox import Client, Pool, SandboxAuthError, default_token

TOKEN = "5f0c1e6a9b2d4c8e7a1b3d5f6e8c0a2b"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw(port: int, head: str) -> bytes:
    """One request by hand, so the test sees exactly what the daemon answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture()
def token_file(tmp_path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    f.chmod(0o600)
    return f


@pytest.fixture()
def guarded(daemon_binary, tmp_path, token_file, monkeypatch):
    """A one-slot daemon on a Unix socket and a loopback TCP port that wants TOKEN."""
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    for var in ("GRPO_SANDBOX_TOKEN", "GRPO_SANDBOX_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "d.toml"
    cfg.write_text("[isolation]\nuid_base = 1800000\n")
    port = _free_port()
    args = ["--slots", "1", "--config", str(cfg), "--tcp", f"127.0.0.1:{port}", "--token-file", str(token_file)]
    with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=args) as local:
        yield local, port


def test_without_the_token_nothing_runs_over_tcp(guarded):
    _, port = guarded
    for endpoint in ("/health", "/languages"):
        with pytest.raises(SandboxAuthError, match="wants a token"):
            Client(tcp=f"127.0.0.1:{port}", start=False)._request("GET", endpoint)
    with pytest.raises(SandboxAuthError, match="token sent is wrong"):
        Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN[:-1] + "0").run("print(1)")
    body = '{"code": "open(\\"/tmp/ran\\", \\"w\\")"}'
    answer = _raw(port, f"POST /run HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    head = answer.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 401 "), answer
    assert b"WWW-Authenticate: Bearer" in head and b"Connection: close" in head
    assert b'"unauthorized"' in answer and b'"exit_code"' not in answer  # no run's result came back
    # Another scheme or the token without its scheme is no better.
    for auth in (f"Basic {TOKEN}", TOKEN, f"Bearer  {TOKEN}", f"Bearer {TOKEN}0", "Bearer"):
        answer = _raw(port, f"GET /health HTTP/1.1\r\nAuthorization: {auth}\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401 "), (auth, answer[:80])


def test_with_the_token_tcp_serves_and_the_unix_socket_needs_none(guarded, monkeypatch, token_file):
    local, port = guarded
    remote = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN)
    assert remote.run("print(6 * 7)")["stdout"] == "42\n"
    health = remote.health()
    assert health["slots"] == 1 and health["tcp"] == {"address": f"127.0.0.1:{port}", "token": True, "tls": False}
    assert _raw(port, f"GET /health HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
                ).startswith(b"HTTP/1.1 200 ")
    assert local.run("print('unix')")["stdout"] == "unix\n"
    # The default comes from the environment: the token itself, or a file holding it.
    monkeypatch.setenv("GRPO_SANDBOX_TOKEN_FILE", str(token_file))
    assert default_token() == TOKEN
    assert Client(tcp=f"127.0.0.1:{port}", start=False).run("print(2)")["stdout"] == "2\n"
    monkeypatch.setenv("GRPO_SANDBOX_TOKEN", "x" * 32)
    with pytest.raises(SandboxAuthError):
        Client(tcp=f"127.0.0.1:{port}", start=False).run("print(3)")


def test_a_pool_sends_the_token_and_reports_a_refusing_daemon(guarded):
    local, port = guarded
    with Pool([f"tcp:127.0.0.1:{port}"], token=TOKEN) as pool:
        results = pool.map([{"kind": "run", "code": f"print({i})"} for i in range(10)])
        assert [r["stdout"] for r in results] == [f"{i}\n" for i in range(10)]
    with Pool([f"tcp:127.0.0.1:{port}", f"unix:{local.socket_path}"], token="y" * 32) as pool:
        health = pool.health()
        assert health["status"] == "degraded"
        assert [r["status"] for r in health["endpoints"]] == ["unauthorized", "ok"]
    with Pool([f"tcp:127.0.0.1:{port}"], token="y" * 32) as pool, pytest.raises(SandboxAuthError):
        pool.run("print(1)")  # an answer, not an outage: raised, never skipped


def test_the_cli_reaches_a_guarded_daemon_with_the_token_from_the_environment(guarded, tmp_path):
    from click.testing import CliRunner

    from grpo_fast.cli import main

    _, port = guarded
    prog = tmp_path / "p.py"
    prog.write_text("print(input()[::-1])\n")
    args = ["sandbox", "run", str(prog), "--stdin", "abc", "--sandbox", f"tcp:127.0.0.1:{port}"]
    r = CliRunner().invoke(main, args, env={"GRPO_SANDBOX_TOKEN": TOKEN})
    assert r.exit_code == 0 and "cba\n" in r.output and "status ok" in r.output, r.output
    r = CliRunner().invoke(main, args, env={"GRPO_SANDBOX_TOKEN": "z" * 32})
    assert r.exit_code != 0 and "token sent is wrong" in r.output, r.output
    r = CliRunner().invoke(main, ["sandbox", "status", "--sandbox", f"tcp:127.0.0.1:{port}"],
                           env={"GRPO_SANDBOX_TOKEN": "z" * 32})
    assert r.exit_code != 0 and "unauthorized" in r.output, r.output


def _start(daemon_binary: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([daemon_binary, "--socket", str(tmp_path / "x.sock"), "--slots", "1", *args],
                          capture_output=True, text=True, timeout=60)


def test_a_daemon_will_not_listen_beyond_loopback_without_a_token(daemon_binary, tmp_path):
    r = _start(daemon_binary, tmp_path, "--tcp", "0.0.0.0:0")
    assert r.returncode == 1, r
    assert "refusing to listen on 0.0.0.0:0 without a token" in r.stderr
    assert not (tmp_path / "x.sock").exists()  # refused before anything started


def test_a_token_file_others_can_read_or_a_short_token_is_refused(daemon_binary, tmp_path, token_file):
    token_file.chmod(0o640)
    r = _start(daemon_binary, tmp_path, "--tcp", "127.0.0.1:0", "--token-file", str(token_file))
    assert r.returncode == 1 and "mode 640" in r.stderr and "chmod 600" in r.stderr, r
    token_file.write_text("short\n")
    token_file.chmod(0o600)
    r = _start(daemon_binary, tmp_path, "--tcp", "127.0.0.1:0", "--token-file", str(token_file))
    assert r.returncode == 1 and "at least 16" in r.stderr, r
    r = _start(daemon_binary, tmp_path, "--token-file", str(tmp_path / "missing"))
    assert r.returncode == 1 and "missing" in r.stderr, r


def test_sighup_rotates_the_token_and_a_bad_file_keeps_the_old_one(guarded, token_file):
    import signal
    import time

    local, port = guarded
    new = "0123456789abcdef0123456789abcdef"
    old_client = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN)
    new_client = Client(tcp=f"127.0.0.1:{port}", start=False, token=new)
    assert old_client.run("print(1)")["stdout"] == "1\n"  # a kept-alive connection from here on
    token_file.write_text(new + "\n")
    os.kill(local._proc.pid, signal.SIGHUP)
    time.sleep(0.2)
    with pytest.raises(SandboxAuthError, match="token sent is wrong"):
        old_client.run("print(1)")  # the same connection, checked against the new token
    assert new_client.run("print(2)")["stdout"] == "2\n"
    # A file others may read (or a short token) is refused; the current token stays.
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    os.kill(local._proc.pid, signal.SIGHUP)
    time.sleep(0.2)
    assert new_client.run("print(3)")["stdout"] == "3\n"
    with pytest.raises(SandboxAuthError):
        Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN).run("print(4)")
    assert local.run("print(5)")["stdout"] == "5\n"  # the daemon served on throughout
