"""Hostile clients against a real daemon (loopback only): hundreds of raw sockets that connect
and say nothing, trickle a head one line at a time, announce huge bodies without the token, or
send garbage, while a client with the token keeps being served. What the daemon must hold:
an authorized client is never starved, every hostile connection ends within its deadline, and
the daemon's memory follows what clients send, not what they announce."""

from __future__ import annotations

import json
import os
import resource
import socket
import threading
import time
from pathlib import Path

import pytest

from grpo_fast.sandbox import Client
from grpo_fast.sandbox.transport import Connection

TOKEN = "9e3b1f0c7a5d2e8b4c6a0f1e3d5b7c9a"
HEADER_TIMEOUT_S = 1.5
# Generous bounds for "ends within its deadline" on a loaded 2-core machine: never timings.
SLACK_S = 8.0
OUTPUT_CAP = 4 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _connect(port: int, source: str, timeout: float = 30.0) -> socket.socket:
    """A raw TCP connection from loopback address `source` (each 127.x is a peer of its own)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


@pytest.fixture(scope="module")
def daemon(daemon_binary, tmp_path_factory):
    """One slot; a Unix socket and a loopback TCP port that wants TOKEN; a short header timeout
    so the slow clients are cut off quickly; every other limit at its default."""
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    tmp = tmp_path_factory.mktemp("hostile")
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    cfg = tmp / "d.toml"
    cfg.write_text(f"[server]\nheader_timeout_s = {HEADER_TIMEOUT_S}\nmax_response_output_bytes = {OUTPUT_CAP}\n"
                   "[pool]\nslots = 1\n[isolation]\nuid_base = 1910000\n")
    port = _free_port()
    args = ["--config", str(cfg), "--tcp", f"127.0.0.1:{port}", "--token-file", str(token)]
    local = Client(str(tmp / "d.sock"), binary=daemon_binary, daemon_args=args)
    try:
        yield local, port
    finally:
        local.close()


class Served:
    """An authorized TCP client from 127.0.0.1 running programs in a loop while an attack goes
    on: every answer must be the right one, none refused."""

    def __init__(self, port: int):
        self.client = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, busy_retries=0)
        self.answers = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                r = self.client.run("print(input()[::-1])", stdin=f"tok{i}")
                if r["stdout"] != f"tok{i}"[::-1] + "\n":
                    self.errors.append(f"wrong answer {r}")
                self.answers += 1
            except Exception as exc:  # every failure is what the test reports
                self.errors.append(repr(exc))
                time.sleep(0.05)

    def __enter__(self) -> Served:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.client.close()

    def check(self, at_least: int = 3) -> None:
        assert not self.errors, self.errors[:5]
        assert self.answers >= at_least, f"only {self.answers} answers during the attack"

    def wait_for(self, answers: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.answers < answers and time.monotonic() < deadline and not self.errors:
            time.sleep(0.05)


def test_six_hundred_silent_connections_do_not_starve_a_client_with_the_token(daemon):
    local, port = daemon
    before = local.health()["connections"]
    sockets: list[socket.socket] = []
    with Served(port) as served:
        served.wait_for(2)
        # 600 connections from ten peers, each sending only a request line, then nothing.
        for i in range(600):
            s = _connect(port, f"127.0.0.{2 + i % 10}")
            try:
                s.sendall(b"GET /health HTTP/1.1\r\n")
            except OSError:
                pass  # already shed
            sockets.append(s)
        start = served.answers
        served.wait_for(start + 10)
    served.check(at_least=start + 10)
    after = local.health()["connections"]
    # Each went as the flood made room (or at the header timeout when the flood was slower).
    gone = sum(after[k] - before[k] for k in ("shed_pending", "timed_out"))
    assert gone >= 600 - after["max_pending"] - 10, (before, after)
    for s in sockets:
        s.close()


def test_a_trickled_head_is_cut_off_at_the_header_timeout_with_408(daemon):
    local, port = daemon
    before = local.health()["connections"]["timed_out"]
    s = _connect(port, "127.0.0.20")
    t0 = time.monotonic()
    s.sendall(b"POST /run HTTP/1.1\r\n")
    answer = b""
    for i in range(int((HEADER_TIMEOUT_S + SLACK_S) / 0.2)):
        try:
            s.sendall(f"X-Trickle-{i}: {i}\r\n".encode())
        except OSError:
            break
        time.sleep(0.2)
        s.setblocking(False)
        try:
            answer += s.recv(65536)
        except BlockingIOError:
            pass
        except OSError:
            break
        finally:
            s.setblocking(True)
        if answer:
            break
    answer += _read_all(s)
    took = time.monotonic() - t0
    s.close()
    # The daemon counted the cut-off; the 408 itself can lose the race with a trickled byte that
    # arrives after the read side is shut (the client then sees a reset instead of the answer).
    assert local.health()["connections"]["timed_out"] > before
    if answer:
        assert _status(answer) == 408, answer[:200]
        assert b"header_timeout_s" in answer
    assert took < HEADER_TIMEOUT_S + SLACK_S, took


def test_a_slow_body_is_cut_off_and_a_silent_connection_is_closed(daemon):
    local, port = daemon
    # Connected, never a byte: closed after the header timeout, without an answer.
    quiet = _connect(port, "127.0.0.21")
    t0 = time.monotonic()
    assert _read_all(quiet) == b""
    assert time.monotonic() - t0 < HEADER_TIMEOUT_S + SLACK_S
    quiet.close()
    # Same on the Unix socket.
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(30)
    u.connect(local.socket_path)
    t0 = time.monotonic()
    assert _read_all(u) == b""
    assert time.monotonic() - t0 < HEADER_TIMEOUT_S + SLACK_S
    u.close()


def test_huge_announced_bodies_without_the_token_get_401_before_any_body_is_read(daemon):
    local, port = daemon
    pid = local._proc.pid
    rss_before = _rss_kb(pid)
    sockets = []
    for i in range(64):
        s = _connect(port, f"127.0.0.{30 + i % 4}")
        s.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n")
        sockets.append(s)
    # The answer comes before any body byte is sent.
    answers = [s.recv(65536) for s in sockets]
    assert all(_status(a) == 401 for a in answers), {_status(a) for a in answers}

    # A quarter of them push 8 MiB of body anyway: the daemon reads a little of it (so the
    # 401 is not lost to a reset) and closes; none of it is kept.
    def push(s: socket.socket) -> None:
        try:
            s.sendall(b" " * (8 << 20))
        except OSError:
            pass

    pushers = [threading.Thread(target=push, args=(s,)) for s in sockets[:16]]
    for t in pushers:
        t.start()
    for t in pushers:
        t.join(timeout=60)
    grown_mb = (_rss_kb(pid) - rss_before) / 1024
    for s in sockets:
        s.close()
    # A daemon that buffered what was announced (or sent) would have grown by 128 MB or more.
    assert grown_mb < 48, f"the daemon grew by {grown_mb:.0f} MB"


def test_the_token_is_checked_before_a_body_that_never_comes(daemon):
    _, port = daemon
    s = _connect(port, "127.0.0.40")
    s.sendall(b"POST /batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-wrong-token\r\n"
              b"Content-Length: 1000000\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    answer = _read_all(s)
    s.close()
    assert _status(answer) == 401 and b"unauthorized" in answer


def test_one_peer_cannot_take_every_connection(daemon):
    local, port = daemon
    limit = local.health()["connections"]["max_per_peer"]
    health = b"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    with Served(port) as served:
        served.wait_for(1)
        held, codes = [], []
        # Connections that made an authorized request and stay open (kept alive): the peer's
        # own limit is what stops them, not the budget for pending ones.
        for _ in range(limit + 20):
            s = _connect(port, "127.0.0.50")
            s.sendall(health)
            codes.append(_status(s.recv(65536)))
            held.append(s)
        start = served.answers
        served.wait_for(start + 5)
        for s in held:
            s.close()
    served.check(at_least=start + 5)
    assert codes[:limit] == [200] * limit
    assert codes[limit:] == [503] * 20


def test_idle_connections_on_the_unix_socket_do_not_make_others_busy(daemon):
    local, _ = daemon
    before = local.health()["connections"]
    # 520 connections that each made a request and now idle (kept alive), then 100 that say
    # nothing: more than max_connections (512) together.
    idle = []
    for _ in range(520):
        u = socket.socket(socket.AF_UNIX)
        u.settimeout(30)
        u.connect(local.socket_path)
        u.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(u.recv(65536)) == 200
        idle.append(u)
    silent = []
    for _ in range(100):
        u = socket.socket(socket.AF_UNIX)
        u.connect(local.socket_path)
        silent.append(u)
    fresh = Client(local.socket_path, start=False, busy_retries=0)
    try:
        for i in range(5):
            assert fresh.run(f"print({i} * 2)")["stdout"] == f"{i * 2}\n"
    finally:
        fresh.close()
    h = local.health()["connections"]
    assert h["open"] <= h["max"]
    # The 513th to the 520th made room by closing the longest idle; the silent ones, and the
    # fresh client, by closing silent ones; nobody was told "busy".
    assert h["shed_idle"] - before["shed_idle"] >= 8
    assert h["shed_pending"] - before["shed_pending"] >= 1
    assert h["refused_full"] == before["refused_full"]
    for u in idle + silent:
        u.close()


def test_garbage_and_truncated_requests_get_answers_and_leave_the_daemon_serving(daemon):
    local, port = daemon
    cases = [
        (b"\x00\xff\xfe garbage\r\n\r\n", {400}),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", {400}),
        (b"GET /health HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", {431}),
        (b"POST /run HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
         + b"\r\nContent-Length: 999999999999\r\n\r\n", {413}),
        (b"POST /run HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
         + b"\r\nContent-Length: nine\r\n\r\n", {400}),
        (b"POST /run HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
         + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {411}),
        (b"POST /run HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
         + b"\r\nContent-Length: 10\r\n\r\n{\"co", {0}),  # truncated body: the client gave up
        (b"POST /run HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
         + b"\r\nContent-Length: 9\r\n\r\n{not json", {400}),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", {0}),  # a TLS hello on a plain port
        (b"GET /health HTTP/1.1\r\n", {0}),  # truncated head, then the client closes
    ]
    for raw, want in cases:
        s = _connect(port, "127.0.0.60")
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        answer = _read_all(s)
        s.close()
        assert _status(answer) in want, (raw[:60], answer[:200])
    assert local.run("print('still here')")["stdout"] == "still here\n"


def test_a_batch_of_loud_programs_is_bounded_as_a_whole(daemon):
    """64 items each writing ~1 MiB of NUL bytes (6 bytes apiece as JSON) once made a 403 MB
    answer from a 7 KB request: the answer's program output is bounded as a whole, each loud
    item cut to the same length, the quiet one whole, and the daemon never holds it all."""
    local, _ = daemon
    pid = local._proc.pid
    peak_before = _rss_kb(pid, "VmHWM")
    loud = "import sys\nsys.stdout.buffer.write(b'\\0' * ((1 << 20) - 64))"
    items = [{"kind": "run", "code": loud}] * 32 + [{"kind": "run", "code": "print('quiet')"}] + \
        [{"kind": "run", "code": loud}] * 31
    request = json.dumps({"items": items}).encode()
    conn = Connection(unix_path=local.socket_path, timeout=600)
    try:
        status, payload, _ = conn.request("POST", "/batch", request)
    finally:
        conn.close()
    assert status == 200 and len(request) < 8000
    answer = json.loads(payload)
    results = answer["results"]
    assert answer["truncated"] is True
    assert results[32]["stdout"] == "quiet\n" and results[32]["truncated"] is False
    cut = [r for i, r in enumerate(results) if i != 32]
    assert all(r["truncated"] and r["stdout"].endswith("…[truncated]") for r in cut)
    assert len({len(r["stdout"]) for r in cut}) == 1, "water-filling cuts every loud item alike"
    # The bound is on the output carried; the rest of the answer is a few hundred bytes an item.
    assert len(payload) <= OUTPUT_CAP + 64 * 400, len(payload)
    grown_mb = (_rss_kb(pid, "VmHWM") - peak_before) / 1024
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB"
    assert local.health()["max_response_output_bytes"] == OUTPUT_CAP
    metrics = local.metrics()
    assert "grpo_sandbox_responses_truncated_total 1" in metrics.splitlines()


def test_a_single_answer_is_bounded_too(daemon):
    local, _ = daemon
    code = "import sys\nsys.stdout.write('o' * 900_000)\nsys.stderr.write('\\1' * 900_000)"
    r = local.run(code)
    assert r["truncated"] is True
    carried = sum(len(json.dumps(r[k], ensure_ascii=False).encode()) - 2 for k in ("stdout", "stderr"))
    assert carried <= OUTPUT_CAP
    # The smaller stream stays whole; the larger takes what is left.
    assert r["stdout"] == "o" * 900_000
    assert r["stderr"].startswith("\1" * 1000) and r["stderr"].endswith("…[truncated]")
