"""`Pool`: several real daemons as one — spreading, failing over, coming back, and the code
verifier and `grpo-fast verify --sandbox` on top of it."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
from click.testing import CliRunner

from grpo_fast.cli import main
from grpo_fast.errors import ConfigError, SandboxError
from grpo_fast.sandbox import Client, Pool, SandboxUnavailable, parse_endpoints
from grpo_fast.verifiers.base import VerifyItem
from grpo_fast.verifiers.code import CodeVerifier

ECHO = "import sys\nprint(sys.stdin.read().strip()[::-1])"


def _daemon(daemon_binary, where, uid_base: int, server: str = "", slots: int = 1) -> Client:
    where.mkdir(parents=True, exist_ok=True)
    cfg = where / "d.toml"
    cfg.write_text(f"[server]\n{server}[pool]\nslots = {slots}\n[isolation]\nuid_base = {uid_base}\n")
    return Client(str(where / "d.sock"), binary=daemon_binary, daemon_args=["--config", str(cfg)])


@pytest.fixture()
def two(daemon_binary, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    a = _daemon(daemon_binary, tmp_path / "a", 1_750_000)
    b = _daemon(daemon_binary, tmp_path / "b", 1_760_000)
    yield a, b
    a.close()
    b.close()


def _items(n: int) -> list[dict]:
    return [{"kind": "run", "code": ECHO, "stdin": f"item{i}"} for i in range(n)]


def _served(c: Client) -> int:
    return c.health()["requests_served"]


def test_endpoint_forms_and_mistakes():
    assert parse_endpoints("unix:/a.sock, /b.sock,tcp:10.0.0.2:8787,host:99,[::1]:5") == [
        "unix:/a.sock",
        "unix:/b.sock",
        "tcp:10.0.0.2:8787",
        "tcp:host:99",
        "tcp:[::1]:5",
    ]
    assert parse_endpoints(["/a.sock", "tcp:h:1"]) == ["unix:/a.sock", "tcp:h:1"]
    for bad in ["", "unix:", "host", "host:port", "host:0", "relative.sock", "/a.sock,/a.sock"]:
        with pytest.raises(ConfigError):
            parse_endpoints(bad)
    with pytest.raises(ConfigError, match="twice"):
        Pool(["/a.sock", "unix:/a.sock"])
    with pytest.raises(ConfigError):
        CodeVerifier(sandbox="nowhere")


def test_nothing_answers_names_every_endpoint(tmp_path):
    pool = Pool([str(tmp_path / "x.sock"), str(tmp_path / "y.sock")])
    with pytest.raises(SandboxUnavailable) as e:
        pool.run("print(1)")
    assert "x.sock" in str(e.value) and "y.sock" in str(e.value)
    with pytest.raises(SandboxUnavailable):
        pool.map(_items(3))
    assert pool.health()["status"] == "down"


def test_work_is_spread_over_every_daemon_and_comes_back_in_order(two):
    a, b = two
    before = _served(a), _served(b)
    with Pool([a.socket_path, b.socket_path]) as pool:
        assert pool.health()["slots"] == 2 and pool.health()["status"] == "ok"
        out = pool.map(_items(40), chunk_size=2)
        assert [r["stdout"] for r in out] == [f"item{i}"[::-1] + "\n" for i in range(40)]
        assert pool.run("print(6 * 7)")["stdout"] == "42\n"
        r = pool.run_tests("print(int(input()) + 1)", [{"stdin": "1", "expected_stdout": "2"}])
        assert r["all_passed"]
        assert pool.languages()[0]["name"] == "python"
    assert _served(a) > before[0] + 3 and _served(b) > before[1] + 3


def test_an_answer_is_final_and_not_retried_elsewhere(two):
    a, b = two
    with Pool([a.socket_path, b.socket_path]) as pool:
        before = _served(a) + _served(b)
        with pytest.raises(SandboxError) as e:
            pool.run("print(1)", language="cobol")
        assert not isinstance(e.value, SandboxUnavailable)
        assert _served(a) + _served(b) <= before + 3  # the two /health probes, at most one refusal


def test_a_daemon_that_dies_mid_map_loses_nothing_and_comes_back(two, daemon_binary, tmp_path):
    a, b = two
    pool = Pool([a.socket_path, b.socket_path], retry_after_s=0.0)
    assert pool.health()["status"] == "ok"
    items = [
        {"kind": "run", "code": "import time\ntime.sleep(0.02)\n" + ECHO, "stdin": f"x{i}"} for i in range(60)
    ]
    results: list = []
    t = threading.Thread(target=lambda: results.extend(pool.map(items, chunk_size=2)))
    t.start()
    os.kill(b._proc.pid, signal.SIGKILL)  # no goodbye: its connections just drop
    b._proc.wait()
    t.join()
    assert [r.get("stdout") for r in results] == [f"x{i}"[::-1] + "\n" for i in range(60)]
    h = pool.health()
    assert h["status"] == "degraded" and h["slots"] == 1
    down = [e for e in h["endpoints"] if e["status"] == "down"]
    assert len(down) == 1 and down[0]["endpoint"] == f"unix:{b.socket_path}"
    # Started again on the same socket: back in rotation.
    b2 = _daemon(daemon_binary, tmp_path / "b", 1_760_000)
    try:
        served = _served(b2)
        assert [r["stdout"] for r in pool.map(_items(20), chunk_size=1)] == [
            f"item{i}"[::-1] + "\n" for i in range(20)
        ]
        assert _served(b2) > served + 1
    finally:
        b2.close()


def test_map_keeps_batches_in_flight_for_a_daemon_that_is_down(two, tmp_path):
    a, b = two
    pool = Pool([a.socket_path, str(tmp_path / "none.sock")], retry_after_s=0.0)
    pool.health()
    assert pool._map_workers() == 4  # 2 x (a's one slot + one guessed for the daemon that is down)
    assert [r["stdout"] for r in pool.map(_items(6), chunk_size=1)] == [
        f"item{i}"[::-1] + "\n" for i in range(6)
    ]
    pool = Pool([a.socket_path, b.socket_path])
    pool.health()
    b.close()  # down now; it reported one slot when it was up
    pool.health()
    assert pool._map_workers() == 4


def test_code_verifier_and_cli_over_a_pool(two, tmp_path, monkeypatch):
    a, b = two
    spec = f"unix:{a.socket_path},unix:{b.socket_path}"
    v = CodeVerifier(sandbox=spec)
    items = [
        VerifyItem(
            "", f"```python\nprint(int(input()) * {k})\n```", {"tests": [{"input": "3", "output": "6"}]}
        )
        for k in (2, 3)
    ] * 4
    assert [x.score for x in v.verify_batch(items)] == [1.0, 0.0] * 4
    assert isinstance(v.client, Pool)
    v.close()
    monkeypatch.setenv("GRPO_SANDBOX", spec)
    assert isinstance(CodeVerifier().client, Pool)
    monkeypatch.delenv("GRPO_SANDBOX")
    rec = {
        "id": "double",
        "prompt": "p",
        "tests": [{"input": "3", "output": "6"}],
        "responses": [
            {"text": "```python\nprint(int(input()) * 2)\n```"},
            {"text": "```python\nprint(5)\n```"},
        ],
    }
    src = tmp_path / "groups.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    out = tmp_path / "verified.jsonl"
    before = _served(a) + _served(b)
    r = CliRunner().invoke(
        main, ["verify", "--verifier", "code", "--sandbox", spec, str(src), "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert [x["score"] for x in json.loads(out.read_text())["responses"]] == [1.0, 0.0]
    assert _served(a) + _served(b) > before
    r = CliRunner().invoke(
        main, ["verify", "--verifier", "code", "--sandbox", "nowhere", str(src), "-o", str(out)]
    )
    assert r.exit_code != 0 and "nowhere" in r.output


def test_status_of_several_daemons(two, tmp_path):
    a, _ = two
    spec = f"unix:{a.socket_path},unix:{tmp_path / 'none.sock'}"
    r = CliRunner().invoke(main, ["sandbox", "status", "--sandbox", spec, "--json"])
    assert r.exit_code == 0, r.output
    h = json.loads(r.output)
    assert h["status"] == "degraded" and [e.get("status") for e in h["endpoints"]] == ["ok", "down"]
    r = CliRunner().invoke(main, ["sandbox", "status", "--sandbox", spec])
    assert r.exit_code == 0 and "degraded" in r.output and "down" in r.output, r.output
    r = CliRunner().invoke(main, ["sandbox", "status", "--sandbox", f"unix:{tmp_path / 'none.sock'}"])
    assert r.exit_code != 0 and "no sandbox daemon answers" in r.output


def test_a_full_daemon_passes_work_to_the_others_and_all_full_backs_off(daemon_binary, tmp_path):
    import time

    from grpo_fast.sandbox import SandboxBusy

    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    a = _daemon(daemon_binary, tmp_path / "a", 1_770_000, "max_queue = 0\n")
    b = _daemon(daemon_binary, tmp_path / "b", 1_780_000, "max_queue = 0\n")
    try:

        def occupy(c: Client) -> threading.Thread:
            t = threading.Thread(target=c.run, args=("import time\ntime.sleep(1.5)",))
            t.start()
            while c.health()["idle_slots"] != 0:  # /health never takes a slot
                time.sleep(0.01)
            return t

        eager = Pool([a.socket_path, b.socket_path], busy_retries=0)
        held = occupy(a)
        served = _served(b)
        for _ in range(3):  # whichever it picks first, the answer comes from b
            assert eager.run("print(1)")["stdout"] == "1\n"
        assert _served(b) == served + 3
        held_b = occupy(b)
        with pytest.raises(SandboxBusy):
            eager.run("print(1)")
        patient = Pool([a.socket_path, b.socket_path])
        assert patient.run("print(2)")["stdout"] == "2\n"  # once a sleeper is done
        held.join()
        held_b.join()
    finally:
        a.close()
        b.close()


def test_a_kept_alive_connection_to_a_restarted_daemon_is_renewed_once(daemon_binary, tmp_path):
    # Regression: with busy_retries=0 the fresh try was lost and the drop reported as "busy".
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    d = _daemon(daemon_binary, tmp_path / "d", 1_790_000)
    c = Client(d.socket_path, start=False, busy_retries=0)
    assert c.run("print(1)")["stdout"] == "1\n"  # the connection stays open
    d.close()
    d = _daemon(daemon_binary, tmp_path / "d", 1_790_000)
    try:
        assert c.run("print(2)")["stdout"] == "2\n"
    finally:
        d.close()
    with pytest.raises(SandboxUnavailable):
        c.run("print(3)")


@pytest.fixture()
def three(daemon_binary, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    ds = [
        _daemon(daemon_binary, tmp_path / name, base)
        for name, base in (("a", 1_940_000), ("b", 1_950_000), ("c", 1_960_000))
    ]
    yield ds
    for d in ds:
        if d._proc is not None and d._proc.poll() is None:
            os.kill(d._proc.pid, signal.SIGCONT)
        d.close()


def _tokens(n: int, tag: str) -> list[dict]:
    """Runs that each echo a token of their own, so a lost, duplicated or swapped answer shows."""
    return [{"kind": "run", "code": ECHO, "stdin": f"{tag}-{i}-{i * 7919 % 1000003}"} for i in range(n)]


def _check_echoes(items: list[dict], results: list[dict]) -> None:
    assert len(results) == len(items)
    wrong = [
        (i, r)
        for i, (it, r) in enumerate(zip(items, results, strict=True))
        if r.get("status") != "ok" or r.get("stdout") != it["stdin"][::-1] + "\n"
    ]
    assert not wrong, wrong[:3]


def test_a_stopped_and_a_killed_daemon_mid_map_cost_seconds_and_lose_nothing(three):
    import time

    _, b, c = three
    pool = Pool([d.socket_path for d in three])
    items = _tokens(1500, "m")
    results: list = []
    errors: list = []

    def run() -> None:
        try:
            results.extend(pool.map(items, chunk_size=8))
        except Exception as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.5)
    os.kill(b._proc.pid, signal.SIGSTOP)  # hung: connections stay open, nothing is answered
    time.sleep(0.5)
    os.kill(c._proc.pid, signal.SIGKILL)  # gone: its connections drop
    c._proc.wait()
    # Without hedging the stopped daemon's requests would wait for the client timeout (an hour).
    t.join(timeout=180)
    took = time.monotonic() - t0
    assert not t.is_alive(), "the map did not finish with one daemon stopped"
    assert not errors, errors
    _check_echoes(items, results)
    assert pool.hedges >= 1
    h = pool.health()
    assert [e["status"] for e in h["endpoints"]] == ["ok", "down", "down"]
    # Woken up, the stopped daemon finishes the requests it held; their answers go nowhere.
    os.kill(b._proc.pid, signal.SIGCONT)
    again = _tokens(200, "n")
    _check_echoes(again, pool.map(again, chunk_size=4))
    print(
        f"\n1500-item map over 3 daemons, one SIGSTOPped and one SIGKILLed mid-map: {took:.1f} s, "
        f"{pool.hedges} requests hedged, 0 lost, 0 duplicated"
    )


def test_request_deadlines_come_from_the_run_limits():
    from grpo_fast.sandbox.pool import _Endpoint, work_ms

    assert work_ms("/run", {"code": "x"}) == [(None, 1, False)]
    assert work_ms("/run_tests", {"code": "x", "tests": [{}, {}, {}], "timeout_ms": 200}) == [(200, 3, False)]
    assert work_ms("/run_tests", {"code": "x", "test_code": "assert 1", "language": "cpp"}) == [
        (None, 1, True)
    ]
    assert work_ms(
        "/batch",
        {
            "items": [
                {"kind": "run", "code": "x", "timeout_ms": 100},
                {"kind": "run_tests", "tests": [{}, {}]},
            ]
        },
    ) == [(100, 1, False), (None, 2, False)]
    assert work_ms("/languages", None) == []
    pool = Pool(["/nowhere.sock"], deadline_slack_s=10)
    ep = _Endpoint("unix:/nowhere.sock", Client("/nowhere.sock", start=False))
    ep.slots, ep.in_flight, ep.default_timeout_ms = 4, 4, 1000
    # A daemon that says nothing of its cores runs a slot per core: a run may wait for a CPU as
    # long as its limit. 8 runs of the default 1 s, each 2 s + the daemon's 1.1 s, over 4 slots.
    assert pool._deadline(ep, [(None, 1, False)] * 8) == pytest.approx(10 + 8 * 3.1 / 4)
    ep.in_flight = 8  # as many requests again ahead of it: twice the time
    assert pool._deadline(ep, [(None, 1, False)] * 8) == pytest.approx(10 + 2 * 8 * 3.1 / 4)
    assert pool._deadline(ep, []) == pytest.approx(10.0)
    # 4 slots per core: a run's wall time may reach 5 times its limit.
    ep.in_flight, ep.wall_factor = 4, 4
    assert pool._deadline(ep, [(None, 1, False)] * 8) == pytest.approx(10 + 8 * 6.1 / 4)
    assert Pool(["/nowhere.sock"], timeout=12.0)._deadline(ep, [(60_000, 1, False)]) == 12.0


def test_the_pool_takes_each_daemon_s_wall_stretch_from_its_health(two, daemon_binary, tmp_path):
    cores = two[0].health()["cores"]
    # More slots than cores: a run may wait for a CPU, and its deadline on this daemon grows.
    crowded = _daemon(daemon_binary, tmp_path / "crowded", 1_770_000, slots=2 * cores + 1)
    try:
        with Pool([two[0], crowded]) as pool:
            pool.health()
            one, many = pool._endpoints
            assert (one.wall_factor, many.wall_factor) == (1, 3)
            work = [(1000, 1, False)]
            assert pool._deadline(many, work) - pool._deadline(one, work) == pytest.approx(2.0)
    finally:
        crowded.close()


@pytest.mark.parametrize(
    ("health", "factor"),
    [
        ({"slots": 8, "cores": 2, "wall_factor": 4}, 4),  # the daemon says it
        ({"slots": 8, "cores": 2}, 4),  # slots over cores
        ({"slots": 9, "cores": 2}, 5),  # rounded up, as the daemon does
        ({"slots": 2, "cores": 16}, 1),  # fewer slots than cores: never below 1
        ({"slots": 4}, 1),  # a daemon that predates both ran one slot per core
        ({"slots": 4, "cores": 0, "wall_factor": "4"}, 1),  # nonsense is ignored
        ({"slots": 4, "cores": True}, 1),
    ],
)
def test_the_wall_stretch_comes_from_health(health, factor):
    from grpo_fast.sandbox.pool import wall_factor

    assert wall_factor(health) == factor


@pytest.mark.parametrize(
    ("work", "slots", "factor", "in_flight", "expected"),
    [
        # One 2 s run on a daemon with 4 slots per core: 2 s * 5 + 1.1 s, plus the slack.
        ([(2000, 1, False)], 8, 4, 1, 10 + 11.1),
        # 10 tests of 2 s in one request run one after another in one slot.
        ([(2000, 10, False)], 8, 4, 1, 10 + 20 * 5 + 2.0),
        # A compile first: its 30 s stretch too.
        ([(1000, 1, True)], 8, 1, 1, 10 + 31 * 2 + 1.1),
        # A batch whose one long item outlasts the spread of the rest.
        ([(10_000, 1, False)] + [(100, 1, False)] * 3, 4, 1, 1, 10 + 21.1),
        # More items than slots: they queue for them.
        ([(1000, 1, False)] * 16, 4, 1, 1, 10 + 16 * 3.1 / 4),
        # Requests ahead share the slots.
        ([(1000, 1, False)], 4, 1, 12, 10 + 3.1 * 3),
    ],
)
def test_a_deadline_is_what_the_daemon_allows_the_request(work, slots, factor, in_flight, expected):
    from grpo_fast.sandbox.pool import deadline_s

    got = deadline_s(
        work, default_timeout_ms=5000, slots=slots, wall_factor=factor, in_flight=in_flight, slack_s=10.0
    )
    assert got == pytest.approx(expected)
