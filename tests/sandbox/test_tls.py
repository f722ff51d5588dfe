"""TLS on the TCP listener, against a real daemon and certificates made here by `openssl`: the
client verifies the daemon against a CA, programs and the token travel encrypted, a client that
does not speak the same protocol gets a clear error, and certificates rotate on SIGHUP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from grpo_fast.errors import SandboxError
from grpo_fast.sandbox import Client, Pool, SandboxAuthError, SandboxUnavailable

TOKEN = "9a3c5e7f1b2d4f6a8c0e2a4b6d8f0a1c"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d, name: str) -> None:
    """A CA `name`.pem with its key `name`.key."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def _server_cert(d, ca: str, name: str) -> None:
    """`name`.pem (for 127.0.0.1 and localhost, signed by `ca`) and its key `name`.key, mode 0600."""
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=grpo-sandboxd", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / f"{name}.key").chmod(0o600)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    for ca in ("ca", "other_ca"):
        _ca(d, ca)
    _server_cert(d, "ca", "server")
    _server_cert(d, "other_ca", "rotated")
    token = d / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def tls_daemon(daemon_binary, tmp_path, certs, monkeypatch):
    """A one-slot daemon: its Unix socket, and a loopback TCP port speaking TLS that wants TOKEN."""
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    for var in ("GRPO_SANDBOX_TOKEN", "GRPO_SANDBOX_TOKEN_FILE", "GRPO_SANDBOX_CA_FILE"):
        monkeypatch.delenv(var, raising=False)
    # Files of their own: the rotation test rewrites them.
    for f in ("server.pem", "server.key"):
        shutil.copy(certs / f, tmp_path / f)
    (tmp_path / "server.key").chmod(0o600)
    cfg = tmp_path / "d.toml"
    cfg.write_text("[isolation]\nuid_base = 1880000\n")
    port = _free_port()
    args = ["--slots", "1", "--config", str(cfg), "--tcp", f"127.0.0.1:{port}", "--token-file",
            str(certs / "token"), "--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key")]
    with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=args) as local:
        yield local, port, tmp_path


def test_a_client_that_trusts_the_ca_runs_programs_over_tls(tls_daemon, certs, monkeypatch):
    local, port, _ = tls_daemon
    c = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, ca_file=str(certs / "ca.pem"))
    assert c.tls
    for i in range(3):  # one kept-alive TLS connection
        r = c.run("print(input()[::-1])", stdin=f"abc{i}")
        assert r["status"] == "ok" and r["stdout"] == f"{i}cba\n", r
    verdict = c.run_tests("print(sum(map(int, input().split())))",
                          tests=[{"stdin": "1 2", "expected_stdout": "3"}, {"stdin": "2 2", "expected_stdout": "5"}])
    assert verdict["passed"] == 1 and not verdict["all_passed"], verdict
    assert c.health()["tcp"] == {"address": f"127.0.0.1:{port}", "token": True, "tls": True}
    # By host name (the certificate names localhost too), and with the CA from the environment.
    monkeypatch.setenv("GRPO_SANDBOX_CA_FILE", str(certs / "ca.pem"))
    assert Client(tcp=f"localhost:{port}", start=False, token=TOKEN).run("print(7)")["stdout"] == "7\n"
    with Pool([f"tls:127.0.0.1:{port}"], token=TOKEN) as pool:
        assert pool.endpoints == [f"tls:127.0.0.1:{port}"]
        assert [r["stdout"] for r in pool.map([{"kind": "run", "code": f"print({i})"} for i in range(6)])] == \
            [f"{i}\n" for i in range(6)]
    # The token is still checked under TLS.
    with pytest.raises(SandboxAuthError, match="token sent is wrong"):
        Client(tcp=f"127.0.0.1:{port}", start=False, token="x" * 32, ca_file=str(certs / "ca.pem")).run("print(1)")
    assert local.run("print(2)")["stdout"] == "2\n"  # the Unix socket stays plain


def test_a_daemon_the_ca_did_not_sign_is_refused_not_skipped(tls_daemon, certs):
    _, port, _ = tls_daemon
    c = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, ca_file=str(certs / "other_ca.pem"))
    with pytest.raises(SandboxAuthError, match="certificate does not verify"):
        c.run("print(1)")
    # The system's CAs do not know a private CA either.
    with pytest.raises(SandboxAuthError, match="certificate does not verify"):
        Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, tls=True).run("print(1)")
    # A pool raises it too: an impostor or a wrong CA file is a mistake to fix, not an outage.
    with Pool([f"tls:127.0.0.1:{port}"], token=TOKEN, ca_file=str(certs / "other_ca.pem")) as pool, \
            pytest.raises(SandboxAuthError):
        pool.run("print(1)")


def test_plain_http_to_a_tls_port_gets_no_answer_and_a_clear_error(tls_daemon, certs):
    local, port, tmp = tls_daemon
    with pytest.raises(SandboxError, match="this port speaks TLS: connect with tls=True"):
        Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN).run("print(1)")
    body = b'{"code": "print(1)"}'
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert b"HTTP/1.1" not in got and b"stdout" not in got, got  # at most a TLS alert, never a run
    log = (tmp / "d.log").read_text()
    assert "connection dropped" in log, log[-2000:]
    assert local.run("print(3)")["stdout"] == "3\n"


def test_a_silent_connection_does_not_hold_up_the_others(tls_daemon, certs):
    """The handshake runs in the connection's own thread, never in the accept loop."""
    _, port, _ = tls_daemon
    silent = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(3)]
    try:
        c = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, ca_file=str(certs / "ca.pem"), timeout=60)
        assert c.run("print(4)")["stdout"] == "4\n"
    finally:
        for s in silent:
            s.close()


def test_tls_to_a_plain_port_is_a_clear_error(daemon_binary, tmp_path, certs):
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    cfg = tmp_path / "d.toml"
    cfg.write_text("[isolation]\nuid_base = 1880000\n")
    port = _free_port()
    args = ["--slots", "1", "--config", str(cfg), "--tcp", f"127.0.0.1:{port}"]
    with Client(str(tmp_path / "p.sock"), binary=daemon_binary, daemon_args=args):
        c = Client(tcp=f"127.0.0.1:{port}", start=False, ca_file=str(certs / "ca.pem"))
        with pytest.raises(SandboxUnavailable, match="does that port speak TLS"):
            c.run("print(1)")
        assert Client(tcp=f"127.0.0.1:{port}", start=False).run("print(5)")["stdout"] == "5\n"


def test_sighup_rotates_the_certificate_and_a_bad_one_keeps_the_old(tls_daemon, certs):
    local, port, tmp = tls_daemon
    old_ca, new_ca = str(certs / "ca.pem"), str(certs / "other_ca.pem")
    kept = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, ca_file=old_ca)
    assert kept.run("print(1)")["stdout"] == "1\n"  # a connection open across the rotation
    shutil.copy(certs / "rotated.pem", tmp / "server.pem")
    shutil.copy(certs / "rotated.key", tmp / "server.key")
    os.kill(local._proc.pid, signal.SIGHUP)
    time.sleep(0.3)
    assert kept.run("print(2)")["stdout"] == "2\n"  # keeps the session it has
    assert Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, ca_file=new_ca).run("print(3)")["stdout"] == "3\n"
    with pytest.raises(SandboxAuthError):
        Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, ca_file=old_ca).run("print(4)")
    # A key others may read is refused at reload: the rotated certificate stays in use.
    shutil.copy(certs / "server.pem", tmp / "server.pem")
    (tmp / "server.key").chmod(0o644)
    os.kill(local._proc.pid, signal.SIGHUP)
    time.sleep(0.3)
    assert Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, ca_file=new_ca).run("print(5)")["stdout"] == "5\n"
    assert "not reloaded" in (tmp / "d.log").read_text()


def _start(daemon_binary: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([daemon_binary, "--socket", str(tmp_path / "x.sock"), "--slots", "1", *args],
                          capture_output=True, text=True, timeout=60)


def test_bad_tls_settings_stop_the_daemon_before_it_starts(daemon_binary, tmp_path, certs):
    cert, key = str(certs / "server.pem"), str(certs / "server.key")
    r = _start(daemon_binary, tmp_path, "--tcp", "127.0.0.1:0", "--tls-cert", cert)
    assert r.returncode == 1 and "both server.tls_cert and server.tls_key" in r.stderr, r
    r = _start(daemon_binary, tmp_path, "--tls-cert", cert, "--tls-key", key)
    assert r.returncode == 1 and "no TCP listener" in r.stderr, r
    loose = tmp_path / "loose.key"
    shutil.copy(key, loose)
    loose.chmod(0o640)
    r = _start(daemon_binary, tmp_path, "--tcp", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", str(loose))
    assert r.returncode == 1 and "server.tls_key" in r.stderr and "chmod 600" in r.stderr, r
    r = _start(daemon_binary, tmp_path, "--tcp", "127.0.0.1:0", "--tls-cert", str(certs / "rotated.pem"),
               "--tls-key", key)
    assert r.returncode == 1 and "does not belong" in r.stderr, r
    assert not (tmp_path / "x.sock").exists()


def test_the_client_refuses_tls_without_tcp_and_a_bad_ca_file(tmp_path):
    with pytest.raises(SandboxError, match="Unix socket is never TLS"):
        Client(str(tmp_path / "none.sock"), start=False, tls=True)
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    with pytest.raises(SandboxError, match=r"bad\.pem"):
        Client(tcp="127.0.0.1:1", start=False, ca_file=str(tmp_path / "bad.pem"))


def test_the_cli_reaches_a_tls_daemon_with_the_ca_from_the_environment(tls_daemon, certs, tmp_path):
    from click.testing import CliRunner

    from grpo_fast.cli import main

    _, port, _ = tls_daemon
    prog = tmp_path / "p.py"
    prog.write_text("print(input()[::-1])\n")
    args = ["sandbox", "run", str(prog), "--stdin", "abc", "--sandbox", f"tls:127.0.0.1:{port}"]
    env = {"GRPO_SANDBOX_TOKEN": TOKEN, "GRPO_SANDBOX_CA_FILE": str(certs / "ca.pem")}
    r = CliRunner().invoke(main, args, env=env)
    assert r.exit_code == 0 and "cba\n" in r.output and "status ok" in r.output, r.output
    r = CliRunner().invoke(main, args, env={**env, "GRPO_SANDBOX_CA_FILE": str(certs / "other_ca.pem")})
    assert r.exit_code != 0 and "does not verify" in r.output, r.output
