"""Several `grpo-sandboxd` daemons as one: a `Pool` spreads requests over them by free capacity
and moves a request to another daemon when one cannot be reached.

Runs are side-effect free (every one in a fresh sandbox), so a request whose daemon vanished
mid-way is simply sent again elsewhere; answers a daemon did give (a 400, a verdict) are final.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.sandbox.client import (
    Client,
    SandboxAuthError,
    SandboxBusy,
    SandboxUnavailable,
    run_request,
    tests_request,
)


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
            raise ConfigError(f"sandbox endpoint {raw!r}: expected unix:/path/to.sock or [tcp:|tls:]host:port")
        out.append(f"{kind}:{host}:{port}")
    if not out:
        raise ConfigError("no sandbox endpoint given")
    if len(set(out)) != len(out):
        raise ConfigError(f"sandbox endpoints listed twice: {', '.join(sorted({e for e in out if out.count(e) > 1}))}")
    return out


class _Endpoint:
    def __init__(self, name: str, client: Client):
        self.name = name
        self.client = client
        self.slots = 0  # > 0 once its /health answered: the daemon is up
        self.known_slots = 0  # the last slot count it reported, kept while it is down
        self.in_flight = 0
        self.probing = False
        self.down_since: float | None = None
        self.error = ""


class Pool:
    """Talks to several daemons (`Client`s that never start one) as if they were one.

    >>> pool = Pool("unix:/run/grpo-sandboxd/sandboxd.sock,tcp:10.0.0.2:8787")
    >>> pool.map([{"kind": "run", "code": "print(1)"}] * 1000)   # spread by free slots

    A request goes to the daemon with the fewest requests in flight per slot. A daemon that
    cannot be reached (refused, dropped, timed out) is set aside and its request retried on the
    others; it is tried again `retry_after_s` later. `SandboxUnavailable` only when none answers.
    A daemon whose queue is full (503 busy) passes the request to the others; when all are full
    the pool backs off (up to `busy_retries` times, 10 ms doubling to 0.5 s) and tries again.
    `endpoints` may also hold `Client`s (e.g. one that started a local daemon). `token` goes to
    the TCP daemons (default: `$GRPO_SANDBOX_TOKEN` / `$GRPO_SANDBOX_TOKEN_FILE`); a daemon that
    refuses it raises `SandboxAuthError` (a wrong token is a mistake to fix, not a daemon to skip).
    `tls:` endpoints verify their certificates against `ca_file` (default: $GRPO_SANDBOX_CA_FILE,
    else the system's CAs); one that does not verify raises `SandboxAuthError` too.
    """

    def __init__(self, endpoints: str | Sequence[str | Client], *, timeout: float = 3600.0,
                 busy_retries: int = 200, retry_after_s: float = 10.0, max_workers: int | None = None,
                 token: str | None = None, ca_file: str | None = None):
        self._endpoints: list[_Endpoint] = []
        for entry in [endpoints] if isinstance(endpoints, str) else endpoints:
            if isinstance(entry, Client):
                kind = "tls" if entry.tls else "tcp"
                self._endpoints.append(_Endpoint(f"{kind}:{entry.tcp}" if entry.tcp else f"unix:{entry.socket_path}",
                                                 entry))
                continue
            for name in parse_endpoints(entry):
                kind, _, where = name.partition(":")
                # A busy daemon answers at once: the pool tries the others before it backs off.
                tcp = where if kind in ("tcp", "tls") else None
                client = Client(None if tcp else where, tcp=tcp, start=False, timeout=timeout, busy_retries=0,
                                token=token, tls=kind == "tls", ca_file=ca_file if kind == "tls" else None)
                self._endpoints.append(_Endpoint(name, client))
        names = [ep.name for ep in self._endpoints]
        if not names:
            raise ConfigError("no sandbox endpoint given")
        if len(set(names)) != len(names):
            raise ConfigError(f"sandbox endpoint listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
        self.retry_after_s = retry_after_s
        self.busy_retries = busy_retries
        self._max_workers = max_workers
        self._cond = threading.Condition()

    @property
    def endpoints(self) -> list[str]:
        return [ep.name for ep in self._endpoints]

    # ---- choosing a daemon ------------------------------------------------------------------

    def _mark(self, ep: _Endpoint, slots: int, exc: Exception | None = None) -> None:
        with self._cond:
            ep.slots = slots
            ep.known_slots = slots or ep.known_slots
            ep.down_since = None if exc is None else time.monotonic()
            ep.error = "" if exc is None else str(exc)
            self._cond.notify_all()

    def _pick(self, exclude: set[str]) -> _Endpoint | None:
        """The daemon for the next request (its in-flight count taken), None when none is up."""
        failed: set[str] = set()  # probed in this call and down: not probed again by it
        while True:
            with self._cond:
                now = time.monotonic()
                candidates = [ep for ep in self._endpoints if ep.name not in exclude]
                due = [ep for ep in candidates if ep.slots == 0 and not ep.probing and ep.name not in failed
                       and (ep.down_since is None or now - ep.down_since >= self.retry_after_s)]
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
                health = probe.client.health()
                self._mark(probe, max(1, int(health.get("slots", 1))))
            except SandboxUnavailable as exc:
                self._mark(probe, 0, exc)
                failed.add(probe.name)
            finally:
                with self._cond:
                    probe.probing = False
                    self._cond.notify_all()

    def _call(self, method: str, *args: Any) -> Any:
        tried: set[str] = set()  # unreachable for this request
        busy: set[str] = set()  # answered 503 busy since the last back-off
        delay, backoffs = 0.01, 0
        while True:
            ep = self._pick(tried | busy)
            if ep is None:
                if busy:  # every daemon that answers is full: wait, then try them all again
                    if backoffs >= self.busy_retries:
                        raise SandboxBusy(f"every sandbox daemon is busy (queue full): {', '.join(sorted(busy))}")
                    time.sleep(delay)
                    delay, backoffs = min(delay * 2, 0.5), backoffs + 1
                    busy.clear()
                    continue
                raise SandboxUnavailable("no sandbox daemon answers: " + "; ".join(
                    f"{e.name} ({e.error or 'skipped'})" for e in self._endpoints))
            try:
                return getattr(ep.client, method)(*args)
            except SandboxBusy:
                busy.add(ep.name)
            except SandboxUnavailable as exc:
                self._mark(ep, 0, exc)
                tried.add(ep.name)
            finally:
                with self._cond:
                    ep.in_flight -= 1

    # ---- API (as Client's) --------------------------------------------------------------------

    def health(self) -> dict:
        """Every daemon's /health (or why it is down) and the pool's totals."""
        rows, slots, idle = [], 0, 0
        for ep in self._endpoints:
            try:
                h = ep.client.health()
            except SandboxUnavailable as exc:
                self._mark(ep, 0, exc)
                rows.append({"endpoint": ep.name, "status": "down", "error": str(exc)})
                continue
            except SandboxAuthError as exc:
                rows.append({"endpoint": ep.name, "status": "unauthorized", "error": str(exc)})
                continue
            self._mark(ep, max(1, int(h.get("slots", 1))))
            slots += int(h.get("slots", 0))
            idle += int(h.get("idle_slots", 0))
            rows.append({"endpoint": ep.name, **h})
        up = sum(1 for r in rows if r.get("status") not in ("down", "unauthorized"))
        return {"status": "ok" if up == len(rows) else ("degraded" if up else "down"), "endpoints": rows,
                "slots": slots, "idle_slots": idle}

    def languages(self) -> list[dict]:
        return self._call("languages")

    def run(self, code: str, stdin: str = "", **kwargs: Any) -> dict:
        return self._call("_request", "POST", "/run", run_request(code, stdin, **kwargs))

    def run_tests(self, code: str, tests: Sequence[dict] | None = None, **kwargs: Any) -> dict:
        return self._call("_request", "POST", "/run_tests", tests_request(code, tests, **kwargs))

    def batch(self, items: Sequence[dict]) -> list[dict]:
        return self._call("batch", items)

    def map(self, items: Iterable[dict], chunk_size: int = 32) -> list[dict]:
        """Many /batch items, in order, spread over the daemons with several batches in flight
        on each (twice its slots)."""
        items = list(items)
        if not items:
            return []
        chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
        workers = self._max_workers
        if workers is None:
            health = self.health()
            if health["slots"] == 0:
                raise SandboxUnavailable("no sandbox daemon answers: " + "; ".join(
                    f"{r['endpoint']} ({r['error']})" for r in health["endpoints"]))
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
            ep.client.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
