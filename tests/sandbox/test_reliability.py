"""Reliability figures, measured against a real daemon (loopback only; the numbers in
docs/sandbox.md come from these tests, run with `-s` to print them):

- thousands of runs from many concurrent clients, over the Unix socket and TCP with a token,
  single requests and batches mixed: every run echoes a token of its own, so an answer lost,
  duplicated or handed to the wrong request shows;
- a storm of malformed and hostile HTTP (garbage, truncated heads and bodies, huge heads and
  bodies, slow and silent clients, with and without the token) while a client with the token
  keeps being served, every answer right.

(The daemon SIGKILLed and SIGSTOPped mid-map is in test_pool.py.)
"""

from __future__ import annotations

import os
import random
import resource
import socket
import threading
import time

import pytest

from grpo_fast.sandbox import Client

TOKEN = "c4a1e97f0b3d5a7c9e1f2b4d6a8c0e3f"
ECHO = "import sys\nprint(sys.stdin.read().strip()[::-1])"
CLIENTS = 32
RUNS_PER_CLIENT = 625


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def daemon(daemon_binary, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    tmp = tmp_path_factory.mktemp("reliability")
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    cfg = tmp / "d.toml"
    cfg.write_text("[server]\nheader_timeout_s = 2.0\n[pool]\nslots = 2\n[isolation]\nuid_base = 1920000\n")
    port = _free_port()
    args = ["--config", str(cfg), "--tcp", f"127.0.0.1:{port}", "--token-file", str(token)]
    local = Client(str(tmp / "d.sock"), binary=daemon_binary, daemon_args=args)
    try:
        yield local, port
    finally:
        local.close()


def _runs_total(client: Client) -> int:
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in client.metrics().splitlines()
               if line.startswith("grpo_sandbox_runs_total{"))


def test_thousands_of_runs_from_many_clients_none_lost_or_swapped(daemon):
    local, port = daemon
    runs_before = _runs_total(local)
    sent = [0] * CLIENTS
    wrong: list[tuple[int, str, str]] = []
    errors: list[str] = []

    def client(k: int) -> None:
        rng = random.Random(k)
        c = (Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN) if k % 3 == 0
             else Client(local.socket_path, start=False))
        try:
            i = 0
            while i < RUNS_PER_CLIENT:
                n = 1 if rng.random() < 0.5 else rng.randint(2, 12)
                n = min(n, RUNS_PER_CLIENT - i)
                tokens = [f"c{k}-r{i + j}-{rng.getrandbits(48):x}" for j in range(n)]
                if n == 1:
                    answers = [c.run(ECHO, stdin=tokens[0])]
                else:
                    answers = c.batch([{"kind": "run", "code": ECHO, "stdin": t} for t in tokens])
                if len(answers) != n:
                    wrong.append((k, f"{n} sent", f"{len(answers)} answered"))
                for t, a in zip(tokens, answers, strict=False):
                    if a.get("stdout") != t[::-1] + "\n":
                        wrong.append((k, t, repr(a)[:200]))
                i += n
                sent[k] += n
        except Exception as exc:  # every failure is what the test reports
            errors.append(f"client {k}: {exc!r}")
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    took = time.monotonic() - t0
    total = sum(sent)
    assert not errors, errors[:5]
    assert not wrong, wrong[:5]
    assert total == CLIENTS * RUNS_PER_CLIENT
    # The daemon ran each exactly once: nothing was run twice or dropped on its side.
    assert _runs_total(local) - runs_before == total
    print(f"\n{total} runs from {CLIENTS} concurrent clients (Unix socket and TCP with a token, single "
          f"and batched): 0 lost, 0 duplicated, 0 swapped; {took:.1f} s, {total / took:.0f} runs/s")


def _hostile(port: int, kind: str, rng: random.Random) -> None:
    """One hostile or malformed client of the given kind; whatever the daemon answers, or that it
    closes, is fine: what matters is the authorized client beside it."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((f"127.0.0.{10 + rng.randrange(20)}", 0))
    try:
        s.connect(("127.0.0.1", port))
        auth = f"Authorization: Bearer {TOKEN}\r\n" if rng.random() < 0.5 else ""
        if kind == "garbage":
            s.sendall(rng.randbytes(rng.randint(1, 4000)) + b"\r\n\r\n")
        elif kind == "truncated_head":
            s.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Le")
        elif kind == "truncated_body":
            s.sendall(f"POST /run HTTP/1.1\r\n{auth}Content-Length: 500\r\n\r\n".encode() + b'{"code": "pri')
        elif kind == "huge_head":
            s.sendall(b"GET /health HTTP/1.1\r\n" + b"X-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        elif kind == "huge_body":
            s.sendall(f"POST /batch HTTP/1.1\r\n{auth}Content-Length: 67108864\r\n\r\n".encode())
            s.sendall(b" " * (1 << 20))
        elif kind == "slow":
            s.sendall(f"POST /run HTTP/1.1\r\n{auth}".encode())
            for i in range(30):
                s.sendall(f"X-Slow-{i}: {i}\r\n".encode())
                time.sleep(0.2)
        elif kind == "idle":
            time.sleep(3)
        elif kind == "tls_on_plain":
            s.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + rng.randbytes(64))
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    finally:
        s.close()


KINDS = ["garbage", "truncated_head", "truncated_body", "huge_head", "huge_body", "slow", "idle", "tls_on_plain"]


def test_a_storm_of_malformed_and_hostile_http_while_a_client_with_the_token_is_served(daemon):
    local, port = daemon
    before = local.health()["connections"]
    stop = threading.Event()
    hostile_done = [0]

    def attacker(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            _hostile(port, KINDS[rng.randrange(len(KINDS))], rng)
            hostile_done[0] += 1

    attackers = [threading.Thread(target=attacker, args=(seed,), daemon=True) for seed in range(16)]
    for t in attackers:
        t.start()
    served = Client(tcp=f"127.0.0.1:{port}", start=False, token=TOKEN, busy_retries=0)
    answers, errors, worst = 0, [], 0.0
    t_end = time.monotonic() + 20
    i = 0
    try:
        while time.monotonic() < t_end:
            i += 1
            t0 = time.monotonic()
            try:
                if i % 4 == 0:
                    tokens = [f"s{i}-{j}" for j in range(8)]
                    out = served.batch([{"kind": "run", "code": ECHO, "stdin": t} for t in tokens])
                    ok = [a["stdout"] for a in out] == [t[::-1] + "\n" for t in tokens]
                    answers += 8
                else:
                    ok = served.run(ECHO, stdin=f"s{i}")["stdout"] == f"s{i}"[::-1] + "\n"
                    answers += 1
                if not ok:
                    errors.append(f"wrong answer at {i}")
            except Exception as exc:  # every failure is what the test reports
                errors.append(repr(exc))
            worst = max(worst, time.monotonic() - t0)
    finally:
        stop.set()
        for t in attackers:
            t.join(timeout=30)
        served.close()
    after = local.health()["connections"]
    assert not errors, errors[:5]
    assert answers >= 50, answers
    assert hostile_done[0] >= 100, hostile_done[0]
    closed = {k: after[k] - before[k] for k in ("shed_pending", "timed_out", "refused_per_peer", "refused_full")}
    assert closed["refused_full"] == 0
    print(f"\n{hostile_done[0]} hostile connections from 16 attackers over 20 s ({', '.join(KINDS)}; with and "
          f"without the token): {answers} runs for the client with the token, 0 refused, 0 wrong, slowest "
          f"answer {worst:.2f} s; the daemon closed {closed}")
