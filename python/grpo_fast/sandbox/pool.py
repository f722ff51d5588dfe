"""Several `grpo-sandboxd` daemons as one: a `Pool` spreads requests over them by free capacity,
moves a request to another daemon when one cannot be reached, and sends an overdue request again
to another daemon when its own has stopped answering (hedging), taking the first answer.

Runs are side-effect free (every one in a fresh sandbox), so a request whose daemon vanished or
hung mid-way is simply sent again elsewhere; answers a daemon did give (a 400, a verdict) are
final, and a request has one answer however many daemons it was sent to.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from grpo_fast.errors import ConfigError, SandboxError
from grpo_fast.sandbox.client import (
    Client,
    ConnectionDropped,
    SandboxAuthError,
    SandboxBusy,
    SandboxUnavailable,
    run_request,
    tests_request,
)
from grpo_fast.sandbox.transport import Connection

# What a request may take when nothing else is known: the daemon's defaults.
_DEFAULT_TIMEOUT_MS = 5000
_COMPILE_MS = 30_000  # a compiled language's build (the daemon's compile_timeout_ms)
# What the daemon allows a request beyond its runs' stretched limits: once, and per run.
_REQUEST_MS, _RUN_MS = 1000, 100
_IDLE_CONNECTIONS = 64  # kept open per daemon for the next requests


def work_ms(path: str, body: Any) -> list[tuple[int | None, int, bool]]:
    """What a request asks of a daemon, item by item: (timeout_ms or None for the daemon's
    default, program runs, whether a compile comes first)."""
    if not isinstance(body, dict):
        return []
    if path == "/batch":
        items = body.get("items") or []
        return [
            w
            for item in items
            if isinstance(item, dict)
            for w in work_ms("/run_tests" if item.get("kind") == "run_tests" else "/run", item)
        ]
    if path not in ("/run", "/run_tests"):
        return []
    timeout = body.get("timeout_ms")
    timeout = int(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None
    runs = 1
    if path == "/run_tests":
        runs = max(1, len(body.get("tests") or []) + (1 if body.get("test_code") else 0))
    compiled = str(body.get("language", "python")).lower() not in ("python", "python3", "py")
    return [(timeout, runs, compiled)]


def wall_factor(health: dict) -> int:
    """How many times its limit a run may wait for a CPU on the daemon that sent this `/health`:
    a run's wall time is at most its limit times (this + 1), since a daemon runs more slots than
    cores. Its `wall_factor`, else its slots over its cores rounded up, else 1 (a daemon that
    reports neither runs one slot per core)."""

    def positive(key: str) -> int | None:
        v = health.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None

    factor = positive("wall_factor")
    if factor is not None:
        return factor
    slots, cores = positive("slots"), positive("cores")
    return -(-slots // cores) if slots and cores else 1


def deadline_s(
    work: list[tuple[int | None, int, bool]],
    *,
    default_timeout_ms: int,
    slots: int,
    wall_factor: int,
    in_flight: int,
    slack_s: float,
) -> float:
    """Seconds a request of `work` (see `work_ms`) may take on one daemon before it is given up
    there: what the daemon itself allows each item (every run's limit stretched by the time it
    may wait for a CPU, the compile likewise, and the daemon's fixed allowance per request and
    per run), spread over its slots, times the requests sharing those slots, plus `slack_s`."""
    stretch = wall_factor + 1
    items = [
        ((t or default_timeout_ms) * runs + (_COMPILE_MS if compiled else 0)) * stretch
        + _REQUEST_MS
        + _RUN_MS * runs
        for t, runs, compiled in work
    ]
    if not items:
        return slack_s
    slots = max(1, slots)
    parallel = max(1, min(slots, len(items)))
    ahead = max(1.0, in_flight / slots)  # requests sharing its slots, this one included
    return slack_s + max(max(items), sum(items) / parallel) / 1000.0 * ahead


def parse_endpoints(spec: str | Sequence[str]) -> list[str]:
    """`"unix:/run/a.sock,tcp:10.0.0.2:8787,tls:sbx3.lan:8787"` (or a list of such) -> the
    endpoints, validated (`tls:` is TCP with TLS). Also accepted: a bare absolute path (a Unix
    socket) and a bare `host:port` (TCP)."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for raw in parts:
        e = raw.strip()
        if not e:
            continue
        if e.startswith("unix:"):
            path = e[5:]
            if not path:
                raise ConfigError(f"sandbox endpoint {raw!r}: no socket path after 'unix:'")
            out.append("unix:" + path)
            continue
        if e.startswith("/"):
            out.append("unix:" + e)
            continue
        kind = "tls" if e.startswith("tls:") else "tcp"
        addr = e[4:] if e.startswith(("tcp:", "tls:")) else e
        host, sep, port = addr.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"sandbox endpoint {raw!r}: expected unix:/path/to.sock or [tcp:|tls:]host:port"
            )
        out.append(f"{kind}:{host}:{port}")
    if not out:
        raise ConfigError("no sandbox endpoint given")
    if len(set(out)) != len(out):
        raise ConfigError(
            f"sandbox endpoints listed twice: {', '.join(sorted({e for e in out if out.count(e) > 1}))}"
        )
    return out


class _Endpoint:
    def __init__(self, name: str, client: Client):
        self.name = name
        self.client = client
        self.slots = 0  # > 0 once its /health answered: the daemon is up
        self.known_slots = 0  # the last slot count it reported, kept while it is down
        self.default_timeout_ms = _DEFAULT_TIMEOUT_MS
        self.wall_factor = 1  # from its /health (`wall_factor`)
        self.in_flight = 0
        self.probing = False
        self.down_since: float | None = None
        self.error = ""
        self.heard_at = 0.0  # when it last answered anything
        self.idle: list[Connection] = []


class _Attempt:
    """One sending of a request to one daemon, on a connection of its own so that another
    thread can abort it."""

    def __init__(self, ep: _Endpoint, timeout: float):
        self.ep = ep
        self.timeout = timeout
        self.started = time.monotonic()
        self.future: Future = Future()
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self.aborted = False

    def use(self, conn: Connection) -> None:
        with self._lock:
            if self.aborted:
                conn.close()
                raise SandboxUnavailable(f"{self.ep.name}: the request was answered elsewhere")
            self._conn = conn

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            if self._conn is not None:
                self._conn.abort()


class Pool:
    """Talks to several daemons (`Client`s that never start one) as if they were one.

    >>> pool = Pool("unix:/run/grpo-sandboxd/sandboxd.sock,tcp:10.0.0.2:8787")
    >>> pool.map([{"kind": "run", "code": "print(1)"}] * 1000)   # spread by free slots

    A request goes to the daemon with the fewest requests in flight per slot. A daemon that
    cannot be reached (refused, dropped, timed out) is set aside and its request retried on the
    others; it is tried again `retry_after_s` later. `SandboxUnavailable` only when none answers.
    A daemon whose queue is full (503 busy) passes the request to the others; when all are full
    the pool backs off (up to `busy_retries` times, 10 ms doubling to 0.5 s) and tries again.

    A daemon that hangs (stopped, wedged, a host that drops packets) is noticed from its
    requests: one outstanding for `hedge_after_s` while the daemon has said nothing for as long
    gets it a `/health` probe, and one that misses `probe_timeout_s` sets it aside and sends its
    outstanding requests again to the others; the first answer wins and the others are dropped.
    Each request also has a deadline from its own limits, past which it is given up on that
    daemon: what the daemon allows it (every item's `timeout_ms`, or the daemon's default, times
    its runs, stretched by the CPU wait the daemon's `/health` says a run may have, see
    `deadline_s`), over the daemon's slots, times the requests ahead of it, plus
    `deadline_slack_s`; `timeout`, when given, caps it.

    `endpoints` may also hold `Client`s (e.g. one that started a local daemon). `token` goes to
    the TCP daemons (default: `$GRPO_SANDBOX_TOKEN` / `$GRPO_SANDBOX_TOKEN_FILE`); a daemon that
    refuses it raises `SandboxAuthError` (a wrong token is a mistake to fix, not a daemon to skip).
    `tls:` endpoints verify their certificates against `ca_file` (default: $GRPO_SANDBOX_CA_FILE,
    else the system's CAs); one that does not verify raises `SandboxAuthError` too.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str | Client],
        *,
        timeout: float | None = None,
        busy_retries: int = 200,
        retry_after_s: float = 10.0,
        max_workers: int | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        hedge_after_s: float = 2.0,
        probe_timeout_s: float = 2.0,
        deadline_slack_s: float = 30.0,
    ):
        self._endpoints: list[_Endpoint] = []
        for entry in [endpoints] if isinstance(endpoints, str) else endpoints:
            if isinstance(entry, Client):
                kind = "tls" if entry.tls else "tcp"
                self._endpoints.append(
                    _Endpoint(f"{kind}:{entry.tcp}" if entry.tcp else f"unix:{entry.socket_path}", entry)
                )
                continue
            for name in parse_endpoints(entry):
                kind, _, where = name.partition(":")
                # A busy daemon answers at once: the pool tries the others before it backs off.
                tcp = where if kind in ("tcp", "tls") else None
                client = Client(
                    None if tcp else where,
                    tcp=tcp,
                    start=False,
                    timeout=timeout or 3600.0,
                    busy_retries=0,
                    token=token,
                    tls=kind == "tls",
                    ca_file=ca_file if kind == "tls" else None,
                )
                self._endpoints.append(_Endpoint(name, client))
        names = [ep.name for ep in self._endpoints]
        if not names:
            raise ConfigError("no sandbox endpoint given")
        if len(set(names)) != len(names):
            raise ConfigError(
                f"sandbox endpoint listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}"
            )
        self.timeout = timeout
        self.retry_after_s = retry_after_s
        self.busy_retries = busy_retries
        self.hedge_after_s = hedge_after_s
        self.probe_timeout_s = probe_timeout_s
        self.deadline_slack_s = deadline_slack_s
        self.hedges = 0  # requests sent again because their daemon stopped answering
        self._max_workers = max_workers
        self._cond = threading.Condition()

    @property
    def endpoints(self) -> list[str]:
        return [ep.name for ep in self._endpoints]

    # ---- knowing the daemons ------------------------------------------------------------------

    def _mark(
        self, ep: _Endpoint, slots: int, exc: Exception | str | None = None, health: dict | None = None
    ) -> None:
        with self._cond:
            ep.slots = slots
            ep.known_slots = slots or ep.known_slots
            ep.down_since = None if exc is None else time.monotonic()
            ep.error = "" if exc is None else str(exc)
            if exc is None:
                ep.heard_at = time.monotonic()
            limits = (health or {}).get("limits") or {}
            if isinstance(limits.get("default_timeout_ms"), int):
                ep.default_timeout_ms = limits["default_timeout_ms"]
            if health is not None:
                ep.wall_factor = wall_factor(health)
            self._cond.notify_all()

    def _probe(self, ep: _Endpoint) -> dict:
        """`/health` within `probe_timeout_s`, on a connection of its own: a daemon that hangs
        must not hang the caller. Marks the daemon up or down."""
        conn = ep.client._new_connection(self.probe_timeout_s)
        try:
            status, payload, _ = ep.client._send(conn, "GET", "/health", None)
            health = ep.client._answer(status, payload)
        except SandboxUnavailable as exc:
            self._mark(ep, 0, exc)
            raise
        finally:
            conn.close()
        self._mark(ep, max(1, int(health.get("slots", 1))), health=health)
        return health

    def _pick(self, exclude: set[str]) -> _Endpoint | None:
        """The daemon for the next request (its in-flight count taken), None when none is up."""
        failed: set[str] = set()  # probed in this call and down: not probed again by it
        while True:
            with self._cond:
                now = time.monotonic()
                candidates = [ep for ep in self._endpoints if ep.name not in exclude]
                due = [
                    ep
                    for ep in candidates
                    if ep.slots == 0
                    and not ep.probing
                    and ep.name not in failed
                    and (ep.down_since is None or now - ep.down_since >= self.retry_after_s)
                ]
                up = [ep for ep in candidates if ep.slots > 0]
                if due:
                    probe = due[0]
                    probe.probing = True  # one caller probes; the others pick among the rest
                elif up:
                    ep = min(up, key=lambda e: (e.in_flight / e.slots, -e.slots))
                    ep.in_flight += 1
                    return ep
                elif any(ep.probing for ep in candidates):
                    self._cond.wait(0.05)
                    continue
                else:
                    return None
            try:
                self._probe(probe)
            except SandboxUnavailable:
                failed.add(probe.name)
            finally:
                with self._cond:
                    probe.probing = False
                    self._cond.notify_all()

    def _check_alive(self, ep: _Endpoint) -> None:
        """A request on `ep` is overdue and `ep` has said nothing for a while: probe it (once at
        a time), in the background. Missing the probe sets it aside, which hedges its requests."""
        with self._cond:
            if ep.probing or ep.slots == 0 or time.monotonic() - ep.heard_at < self.hedge_after_s:
                return
            ep.probing = True

        def probe() -> None:
            try:
                self._probe(ep)
            except SandboxError:
                pass
            finally:
                with self._cond:
                    ep.probing = False
                    self._cond.notify_all()

        threading.Thread(target=probe, name="sandbox-probe", daemon=True).start()

    # ---- sending ------------------------------------------------------------------------------

    def _deadline(self, ep: _Endpoint, work: list[tuple[int | None, int, bool]]) -> float:
        """Seconds a request may take on `ep`, from its own limits (see `deadline_s`)."""
        limit = deadline_s(
            work,
            default_timeout_ms=ep.default_timeout_ms,
            slots=ep.slots or ep.known_slots,
            wall_factor=ep.wall_factor,
            in_flight=ep.in_flight,
            slack_s=self.deadline_slack_s,
        )
        return min(limit, self.timeout) if self.timeout else limit

    def _start(
        self,
        ep: _Endpoint,
        method: str,
        path: str,
        data: bytes | None,
        text: bool,
        work: list[tuple[int | None, int, bool]],
    ) -> _Attempt:
        """Sends the request to `ep` (whose in-flight count `_pick` took) in a thread of its own."""
        att = _Attempt(ep, self._deadline(ep, work))

        def run() -> None:
            try:
                att.future.set_result(self._exchange(att, method, path, data, text))
            except BaseException as exc:  # whatever it is, the waiting caller raises it
                att.future.set_exception(exc)
            finally:
                with self._cond:
                    ep.in_flight -= 1
                    self._cond.notify_all()

        threading.Thread(target=run, name="sandbox-request", daemon=True).start()
        return att

    def _exchange(self, att: _Attempt, method: str, path: str, data: bytes | None, text: bool) -> Any:
        ep = att.ep
        fresh = False
        while True:
            with self._cond:
                conn = ep.idle.pop() if ep.idle and not fresh else None
            conn = conn or ep.client._new_connection(att.timeout)
            conn.set_timeout(att.timeout)
            att.use(conn)
            try:
                status, payload, keep = ep.client._send(conn, method, path, data)
            except ConnectionDropped:
                conn.close()
                # A kept-alive connection the daemon closed while it sat idle, or a new one it
                # closed to make room in a burst of connections: one fresh try (a daemon that
                # is gone refuses the connect).
                if not fresh and not att.aborted:
                    fresh = True
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            with self._cond:
                ep.heard_at = time.monotonic()
                if keep and len(ep.idle) < _IDLE_CONNECTIONS:
                    ep.idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()
            return ep.client._answer(status, payload, text)

    def _send(self, method: str, path: str, body: Any = None, *, text: bool = False) -> Any:
        """One request to whichever daemon answers it first (see the class docstring)."""
        data = None if body is None else json.dumps(body).encode()
        work = work_ms(path, body)
        tried: set[str] = set()  # unreachable for this request
        busy: set[str] = set()  # answered 503 busy since the last back-off
        delay, backoffs = 0.01, 0
        running: list[_Attempt] = []
        try:
            while True:
                if not running:
                    ep = self._pick(tried | busy)
                    if ep is None:
                        if busy:  # every daemon that answers is full: wait, then try them all again
                            if backoffs >= self.busy_retries:
                                raise SandboxBusy(
                                    f"every sandbox daemon is busy (queue full): {', '.join(sorted(busy))}"
                                )
                            time.sleep(delay)
                            delay, backoffs = min(delay * 2, 0.5), backoffs + 1
                            busy.clear()
                            continue
                        raise SandboxUnavailable(
                            "no sandbox daemon answers: "
                            + "; ".join(f"{e.name} ({e.error or 'skipped'})" for e in self._endpoints)
                        )
                    running.append(self._start(ep, method, path, data, text, work))
                done, _ = wait(
                    [a.future for a in running],
                    timeout=min(0.25, self.hedge_after_s),
                    return_when=FIRST_COMPLETED,
                )
                for att in [a for a in running if a.future in done]:
                    running.remove(att)
                    try:
                        return att.future.result()
                    except SandboxBusy:
                        busy.add(att.ep.name)
                    except SandboxUnavailable as exc:
                        if not att.aborted:
                            self._mark(att.ep, 0, exc)
                        tried.add(att.ep.name)
                self._watch(running, tried, busy, method, path, data, text, work)
        finally:
            for att in running:  # answered elsewhere, or given up: their answers are not wanted
                att.abort()

    def _watch(
        self,
        running: list[_Attempt],
        tried: set[str],
        busy: set[str],
        method: str,
        path: str,
        data: bytes | None,
        text: bool,
        work: list[tuple[int | None, int, bool]],
    ) -> None:
        """Gives up attempts past their deadline; hedges when every running one is on a daemon
        that has been set aside (or probes a daemon that has been quiet too long)."""
        now = time.monotonic()
        for att in list(running):
            if now - att.started > att.timeout:
                running.remove(att)
                att.abort()
                tried.add(att.ep.name)
                self._mark(att.ep, 0, f"no answer within {att.timeout:.0f} s")
            elif now - att.started > self.hedge_after_s:
                self._check_alive(att.ep)
        if running and all(att.ep.slots == 0 for att in running):
            exclude = tried | busy | {att.ep.name for att in running}
            with self._cond:
                others = [ep for ep in self._endpoints if ep.name not in exclude and ep.slots > 0]
            ep = self._pick(exclude) if others else None
            if ep is not None:
                with self._cond:
                    self.hedges += 1
                running.append(self._start(ep, method, path, data, text, work))

    # ---- API (as Client's) --------------------------------------------------------------------

    def health(self) -> dict:
        """Every daemon's /health (or why it is down) and the pool's totals."""
        rows, slots, idle = [], 0, 0
        for ep in self._endpoints:
            try:
                h = self._probe(ep)
            except SandboxUnavailable as exc:
                rows.append({"endpoint": ep.name, "status": "down", "error": str(exc)})
                continue
            except SandboxAuthError as exc:
                rows.append({"endpoint": ep.name, "status": "unauthorized", "error": str(exc)})
                continue
            slots += int(h.get("slots", 0))
            idle += int(h.get("idle_slots", 0))
            rows.append({"endpoint": ep.name, **h})
        up = sum(1 for r in rows if r.get("status") not in ("down", "unauthorized"))
        return {
            "status": "ok" if up == len(rows) else ("degraded" if up else "down"),
            "endpoints": rows,
            "slots": slots,
            "idle_slots": idle,
        }

    def languages(self) -> list[dict]:
        return self._send("GET", "/languages")["languages"]

    def run(self, code: str, stdin: str = "", **kwargs: Any) -> dict:
        return self._send("POST", "/run", run_request(code, stdin, **kwargs))

    def run_tests(self, code: str, tests: Sequence[dict] | None = None, **kwargs: Any) -> dict:
        return self._send("POST", "/run_tests", tests_request(code, tests, **kwargs))

    def batch(self, items: Sequence[dict]) -> list[dict]:
        return self._send("POST", "/batch", {"items": list(items)})["results"]

    def map(self, items: Iterable[dict], chunk_size: int = 32) -> list[dict]:
        """Many /batch items, in order, spread over the daemons with several batches in flight
        on each (twice its slots)."""
        items = list(items)
        if not items:
            return []
        chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
        workers = self._max_workers
        if workers is None:
            health = self.health()
            if health["slots"] == 0:
                raise SandboxUnavailable(
                    "no sandbox daemon answers: "
                    + "; ".join(f"{r['endpoint']} ({r['error']})" for r in health["endpoints"])
                )
            workers = self._map_workers()
        workers = max(1, min(workers, len(chunks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-pool") as pool:
            parts = list(pool.map(self.batch, chunks))
        return [r for part in parts for r in part]

    def _map_workers(self) -> int:
        """Batches `map` keeps in flight: twice the slots of every daemon, counting one that is
        down as it last reported (else as the largest up one), so that a daemon rejoining
        mid-map finds work to take on rather than sharing the threads sized for the others.
        While it stays down the extra batches just wait in the queues of those that are up."""
        with self._cond:
            seen = [ep.known_slots for ep in self._endpoints if ep.known_slots]
            guess = max(seen, default=1)
            return 2 * sum(ep.slots or ep.known_slots or guess for ep in self._endpoints)

    def close(self) -> None:
        for ep in self._endpoints:
            with self._cond:
                idle, ep.idle = ep.idle, []
            for conn in idle:
                conn.close()
            ep.client.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
