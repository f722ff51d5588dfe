"""`GET /metrics` on the real daemon: every run, test and answer is counted where it belongs."""

from __future__ import annotations

import socket

import pytest

from grpo_fast.errors import SandboxError


def _parse(text: str) -> dict[str, float]:
    """The Prometheus text format's samples: `name{labels} value` -> value."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_metrics_count_what_the_daemon_did(sandbox):
    before = _parse(sandbox.metrics())
    assert sandbox.run("print(1)")["status"] == "ok"
    assert sandbox.run("while True:\n    pass", timeout_ms=300)["status"] == "timeout"
    assert sandbox.run("raise SystemExit(3)")["status"] == "runtime_error"
    r = sandbox.run_tests("print(input())", [{"stdin": "a", "expected_stdout": "a"},
                                             {"stdin": "b", "expected_stdout": "c"}])
    assert (r["passed"], r["total"]) == (1, 2)
    assert sandbox.run_tests("def (:", [{"stdin": "", "expected_stdout": ""}])["status"] == "compile_error"
    assert [x["stdout"] for x in sandbox.batch([{"kind": "run", "code": "print(2)"}] * 3)] == ["2\n"] * 3
    with pytest.raises(SandboxError, match="HTTP 400"):
        sandbox._request("POST", "/run", {"code": 5})
    after = _parse(sandbox.metrics())

    def delta(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta('grpo_sandbox_runs_total{status="ok"}') == 4  # one /run and three batch items
    assert delta('grpo_sandbox_runs_total{status="timeout"}') == 1
    assert delta('grpo_sandbox_runs_total{status="runtime_error"}') == 1
    assert delta('grpo_sandbox_run_cpu_seconds_total') > 0.05  # the timed-out loop spun for up to 0.3 s
    assert delta('grpo_sandbox_test_requests_total{status="ok"}') == 1
    assert delta('grpo_sandbox_test_requests_total{status="compile_error"}') == 1
    assert delta('grpo_sandbox_tests_total{verdict="passed"}') == 1
    assert delta('grpo_sandbox_tests_total{verdict="failed"}') == 2  # one wrong, one never compiled
    assert delta('grpo_sandbox_http_requests_total{path="/run",code="200"}') == 3
    assert delta('grpo_sandbox_http_requests_total{path="/run",code="400"}') == 1
    assert delta('grpo_sandbox_http_requests_total{path="/run_tests",code="200"}') == 2
    assert delta('grpo_sandbox_http_requests_total{path="/batch",code="200"}') == 1
    assert delta('grpo_sandbox_http_requests_total{path="/metrics",code="200"}') == 1  # the first scrape
    assert delta('grpo_sandbox_request_duration_seconds_count{path="/run"}') == 4
    assert delta('grpo_sandbox_request_duration_seconds_bucket{path="/run",le="+Inf"}') == 4
    assert delta('grpo_sandbox_request_duration_seconds_sum{path="/run"}') >= 0.3
    health = sandbox.health()
    assert after["grpo_sandbox_slots"] == health["slots"]
    assert after["grpo_sandbox_slot_restarts_total"] == health["slot_restarts"]
    info = [k for k in after if k.startswith("grpo_sandbox_info{")]
    assert len(info) == 1 and 'isolation="native"' in info[0] and health["version"] in info[0]


def test_metrics_are_prometheus_text(sandbox):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sandbox.socket_path)
        s.sendall(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Type: text/plain; version=0.0.4" in head
    text = body.decode()
    # Every sample belongs to a family declared with HELP and TYPE before it.
    declared = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            family = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
            assert family in declared or name in declared, line
