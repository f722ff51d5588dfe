"""A pool of worker processes with a hard deadline per item, for work that may not terminate
(sympy on `9^{9^{9}}`, huge polynomials). A worker that overruns is killed and replaced; the
item gets a `timeout` result. No signals are used, so the pool works from any thread.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from grpo_fast.errors import VerifierError

EQUAL, DIFFERENT, TIMEOUT, ERROR = "equal", "different", "timeout", "error"


@dataclass
class _Worker:
    proc: subprocess.Popen
    started: float
    ready: bool = False
    warm: bool = False
    buf: bytearray = field(default_factory=bytearray)
    task: int | None = None
    sent: float = 0.0


class WorkerPool:
    """`map(pairs)` runs `_symbolic.equivalent(gold, response)` for each pair in parallel over
    `workers` processes, each item under `timeout` seconds of wall time.

    Workers start lazily on the first call and stay up between calls (their parser caches stay
    warm); `close()` ends them. Calls from several threads are serialised.
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 3.0,
        memory_mb: int = 2048,
        startup_timeout: float = 60.0,
        module: str = "grpo_fast.verifiers._symbolic",
    ):
        if timeout <= 0:
            raise VerifierError(f"timeout must be positive, got {timeout}")
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.startup_timeout = startup_timeout
        self.module = module
        self.timeouts = 0
        self.restarts = 0
        self._procs: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        _live_pools.add(self)

    def _spawn(self) -> _Worker:
        env = dict(os.environ, GRPO_FAST_WORKER_MEMORY_MB=str(self.memory_mb), PYTHONUNBUFFERED="1")
        # Keep the workers single-threaded: they are the parallelism.
        env.setdefault("OMP_NUM_THREADS", "1")
        proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        return _Worker(proc=proc, started=time.monotonic())

    @staticmethod
    def _kill(w: _Worker) -> None:
        try:
            w.proc.kill()
        except OSError:
            pass
        for stream in (w.proc.stdin, w.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def prestart(self) -> None:
        """Spawn the workers without waiting: they import sympy while the caller does other
        work, and `map` uses them once they say ready."""
        self._after_fork()
        with self._lock:
            self._procs = [w for w in self._procs if w.proc.poll() is None]
            while len(self._procs) < self.workers:
                self._procs.append(self._spawn())

    def start(self, warm: bool = True) -> None:
        """Start the workers now and wait until they are ready (sympy imported) or, with
        `warm`, until they have also warmed the parser; instead of on the first item."""
        self._after_fork()
        with self._lock:
            self._procs = [w for w in self._procs if w.proc.poll() is None]
            while len(self._procs) < self.workers:
                self._procs.append(self._spawn())
            deadline = time.monotonic() + self.startup_timeout
            until = b'["warm"]\n' if warm else b'["ready"]\n'
            with selectors.DefaultSelector() as sel:
                for w in self._procs:
                    if not (w.warm if warm else w.ready):
                        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
                while sel.get_map() and time.monotonic() < deadline:
                    for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                        w = key.data
                        try:
                            chunk = os.read(key.fd, 1 << 16)
                        except OSError:
                            chunk = b""
                        w.buf += chunk
                        if b'["ready"]\n' in w.buf:
                            w.ready = True
                        if b'["warm"]\n' in w.buf:
                            w.warm = True
                        if not chunk or until in w.buf:
                            # Done (or dead: `map` replaces dead workers when it needs them).
                            w.buf = bytearray(
                                bytes(w.buf).replace(b'["ready"]\n', b"").replace(b'["warm"]\n', b"")
                            )
                            sel.unregister(key.fileobj)

    def _after_fork(self) -> None:
        """In a forked child (a DataLoader worker, say) the workers belong to the parent: forget
        them without touching them, and start our own when needed."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._procs = []
            self._lock = threading.Lock()

    def map(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """One `(status, message)` per pair: status is equal / different / timeout / error."""
        if not pairs:
            return []
        self._after_fork()
        with self._lock:
            return self._map(pairs)

    def _map(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        n = len(pairs)
        results: list[tuple[str, str] | None] = [None] * n
        pending = deque(range(n))
        want = max(min(self.workers, n), len(self._procs))
        self._procs = [w for w in self._procs if w.proc.poll() is None]
        while len(self._procs) < want:
            self._procs.append(self._spawn())
        sel = selectors.DefaultSelector()
        for w in self._procs:
            sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        startup_failures = 0
        done = 0

        def replace(w: _Worker) -> None:
            sel.unregister(w.proc.stdout)
            self._kill(w)
            self.restarts += 1
            nw = self._spawn()
            self._procs[self._procs.index(w)] = nw
            sel.register(nw.proc.stdout, selectors.EVENT_READ, nw)

        def finish(w: _Worker, result: tuple[str, str]) -> None:
            nonlocal done
            if w.task is not None and results[w.task] is None:
                results[w.task] = result
                done += 1
            w.task = None

        try:
            while done < n:
                for w in self._procs:
                    if w.ready and w.task is None and pending:
                        i = pending.popleft()
                        gold, resp = pairs[i]
                        try:
                            assert w.proc.stdin is not None
                            w.proc.stdin.write((json.dumps([i, gold, resp]) + "\n").encode())
                            w.proc.stdin.flush()
                        except OSError:
                            pending.appendleft(i)
                            replace(w)
                            continue
                        w.task, w.sent = i, time.monotonic()
                now = time.monotonic()
                deadlines = [
                    (w.sent + self.timeout) if w.ready else (w.started + self.startup_timeout)
                    for w in self._procs
                    if w.task is not None or not w.ready
                ]
                wait = max(0.0, min(deadlines) - now) if deadlines else 0.05
                for key, _ in sel.select(timeout=min(wait, 1.0)):
                    w = key.data
                    try:
                        chunk = os.read(key.fd, 1 << 16)
                    except OSError:
                        chunk = b""
                    if not chunk:  # the worker died (e.g. killed for memory)
                        if not w.ready:
                            startup_failures += 1
                        finish(w, (ERROR, "worker process died"))
                        replace(w)
                        continue
                    w.buf += chunk
                    while b"\n" in w.buf:
                        line, _, rest = bytes(w.buf).partition(b"\n")
                        w.buf = bytearray(rest)
                        try:
                            msg = json.loads(line)
                        except ValueError:
                            continue
                        if msg == ["ready"]:
                            w.ready = True
                            startup_failures = 0
                            continue
                        if msg == ["warm"]:
                            w.warm = True
                            continue
                        if not (isinstance(msg, list) and len(msg) == 3):
                            continue
                        ident, code, text = msg
                        if ident == w.task:
                            status = EQUAL if code == 1 else DIFFERENT if code == 0 else ERROR
                            finish(w, (status, text))
                now = time.monotonic()
                for w in list(self._procs):
                    if w.ready and w.task is not None and now - w.sent > self.timeout:
                        self.timeouts += 1
                        finish(w, (TIMEOUT, f"no result within {self.timeout:g}s"))
                        replace(w)
                    elif not w.ready and now - w.started > self.startup_timeout:
                        startup_failures += 1
                        replace(w)
                if startup_failures > 3 * self.workers:
                    raise VerifierError(
                        f"symbolic worker processes ({self.module}) fail to start; "
                        "is latex2sympy2_extended installed?"
                    )
        finally:
            sel.close()
        return [r if r is not None else (ERROR, "lost") for r in results]

    def close(self) -> None:
        if os.getpid() != self._pid:  # the parent's workers are not ours to stop
            self._procs = []
            return
        with self._lock:
            for w in self._procs:
                self._kill(w)
            self._procs = []

    def __del__(self) -> None:
        if getattr(self, "_pid", None) != os.getpid():
            return
        for w in getattr(self, "_procs", []):
            try:
                w.proc.kill()
            except OSError:
                pass


_live_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_live_pools):
        pool.close()
