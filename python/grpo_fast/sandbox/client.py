"""Client for the `grpo-sandboxd` daemon: HTTP/JSON over its Unix socket, standard library only.

A `Client` starts a daemon on demand when none answers on the socket, keeps one keep-alive
connection per thread, and spreads many programs over `/batch` requests from a thread pool, so
thousands of programs can be in flight while the daemon's slots stay busy.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import ssl
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from grpo_fast.errors import SandboxError
from grpo_fast.sandbox.transport import Connection, ProtocolError


class SandboxBusy(SandboxError):
    """Every slot is busy and the daemon's queue is full (HTTP 503); retry later."""


class SandboxAuthError(SandboxError):
    """The daemon's TCP listener refused the request's token (HTTP 401): none was sent, or a
    wrong one. Set `$GRPO_SANDBOX_TOKEN` / `$GRPO_SANDBOX_TOKEN_FILE`, or pass `token=`."""


class SandboxUnavailable(SandboxError):
    """The daemon cannot be reached or dropped the connection (not an answer it gave): another
    daemon may serve the same request (`Pool` fails over on this error only)."""


class ConnectionDropped(SandboxUnavailable):
    """The connection broke mid-request (reset, closed): on a kept-alive connection, often just
    one the daemon closed while it sat idle, so worth one fresh try."""


def default_socket_path() -> str:
    """The same default as the daemon: $GRPO_SANDBOX_SOCKET, else a per-user runtime path."""
    env = os.environ.get("GRPO_SANDBOX_SOCKET")
    if env:
        return env
    uid = os.getuid()
    if uid == 0:
        return "/run/grpo-sandboxd/sandboxd.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "grpo-sandboxd", "sandboxd.sock")
    return f"/tmp/grpo-sandboxd-{uid}/sandboxd.sock"


def default_token() -> str | None:
    """The token for daemons reached over TCP: $GRPO_SANDBOX_TOKEN, else the first line of the
    file $GRPO_SANDBOX_TOKEN_FILE names (the daemon's `server.token_file` holds the same)."""
    token = os.environ.get("GRPO_SANDBOX_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("GRPO_SANDBOX_TOKEN_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="ascii") as f:
            return f.readline().strip() or None
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxError(f"GRPO_SANDBOX_TOKEN_FILE={path}: cannot read the token: {exc}") from exc


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """What a TLS client checks a daemon against: the certificates in `ca_file` (a private CA,
    or the daemon's self-signed certificate), else the system's; TLS 1.2 or later, the host
    name verified."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise SandboxError(f"sandbox CA file {ca_file}: cannot load it: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def find_daemon_binary() -> str | None:
    """$GRPO_SANDBOXD; next to this package; beside the running interpreter (the environment's own
    scripts folder); on PATH; then a cargo build in a checkout.

    Beside the interpreter comes before PATH because a service, a cron job or a training job often
    runs `/path/venv/bin/grpo-fast` without that environment on PATH: its own `grpo-sandboxd` sits
    in the same folder and is the one built with this package.
    """
    env = os.environ.get("GRPO_SANDBOXD")
    if env:
        return env
    here = Path(__file__).resolve().parent
    beside = here / "bin" / "grpo-sandboxd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    for folder in _script_dirs():
        cand = folder / "grpo-sandboxd"
        if _usable(cand):
            return str(cand)
    on_path = shutil.which("grpo-sandboxd")
    if on_path and _usable(Path(on_path)):
        return on_path
    root = here.parents[2]  # python/grpo_fast/sandbox -> repository root
    targets = []
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.append(Path(os.environ["CARGO_TARGET_DIR"]))
    targets += sorted(root.glob("target*"))
    for profile in ("release", "debug"):
        for t in targets:
            cand = t / profile / "grpo-sandboxd"
            if cand.is_file() and os.access(cand, os.X_OK):
                return str(cand)
    return None


def _script_dirs() -> list[Path]:
    """The running environment's scripts folders: beside `sys.executable` (not resolved: a venv's
    python is a symlink into the base interpreter's folder) and sysconfig's `scripts` path."""
    dirs = [Path(sys.executable).parent] if sys.executable else []
    try:
        dirs.append(Path(sysconfig.get_path("scripts")))
    except KeyError:  # pragma: no cover - exotic interpreter layouts
        pass
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def _usable(path: Path) -> bool:
    """An executable daemon: the native binary, or our console script when this build of the
    extension carries the daemon."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    return _native_daemon_available() or not _is_python_entry(str(path))


def _native_daemon_available() -> bool:
    try:
        from grpo_fast import _native
    except ImportError:
        return False
    return hasattr(_native, "sandboxd_main")


def _is_python_entry(path: str) -> bool:
    """The `grpo-sandboxd` console script (which needs the daemon compiled into _native)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!" and b"grpo_fast.sandbox._entry" in f.read(4096)
    except OSError:
        return False


class Client:
    """Talks to one daemon.

    >>> c = Client()                                   # starts a daemon if none answers
    >>> c.run("print(input()[::-1])", stdin="abc")["stdout"]
    'cba\\n'
    >>> c.run_tests("print(sum(map(int, input().split())))",
    ...             tests=[{"stdin": "1 2", "expected_stdout": "3"}])["all_passed"]
    True
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        tcp: str | None = None,
        start: bool = True,
        binary: str | None = None,
        daemon_args: Sequence[str] = (),
        timeout: float = 3600.0,
        max_workers: int | None = None,
        busy_retries: int = 200,
        token: str | None = None,
        tls: bool | None = None,
        ca_file: str | None = None,
    ):
        """socket_path: the daemon's Unix socket (default: `default_socket_path()`).
        tcp: "host:port" of a remote daemon instead (never started by the client).
        start: start a daemon (binary found by `find_daemon_binary`) when none answers.
        daemon_args: extra arguments for a daemon started here (e.g. ["--slots", "4"]).
        max_workers: threads for `map_*` (default: the daemon's slots x 2, at least 2).
        busy_retries: how often a 503 "busy" answer is retried, with backoff.
        token: for a daemon reached over TCP that wants one (default: `default_token()`); never
        sent over the Unix socket, whose file mode is its access control.
        tls: speak TLS to a TCP daemon (its `server.tls_cert`); default: when a CA file is given.
        ca_file: PEM certificates to verify the daemon with (default: $GRPO_SANDBOX_CA_FILE, else
        the system's)."""
        self.socket_path = socket_path or default_socket_path()
        self.tcp = tcp
        self._token = (token or default_token()) if tcp else None
        ca_file = ca_file or (os.environ.get("GRPO_SANDBOX_CA_FILE") or None if tcp else None)
        if tls is None:
            tls = ca_file is not None
        if tls and not tcp:
            raise SandboxError("tls=True is for a daemon reached over TCP (tcp=); the Unix socket is never TLS")
        self._tls = tls_context(ca_file) if tls else None
        self.timeout = timeout
        self.busy_retries = busy_retries
        self._local = threading.local()
        self._proc: subprocess.Popen | None = None
        self._max_workers = max_workers
        if start and not tcp and not self._alive():
            self._start(binary, daemon_args)

    # ---- connection ---------------------------------------------------------------------------

    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new_connection()
        return conn

    def _new_connection(self, timeout: float | None = None) -> Connection:
        """A connection of its own (not yet connected), e.g. for a request another thread may
        have to abort."""
        timeout = self.timeout if timeout is None else timeout
        if self.tcp:
            host, _, port = self.tcp.rpartition(":")
            return Connection(tcp=(host.strip("[]"), int(port)), timeout=timeout,  # [::1]:8787 too
                              token=self._token, tls=self._tls)
        return Connection(unix_path=self.socket_path, timeout=timeout)

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _request(self, method: str, path: str, body: Any = None, *, text: bool = False) -> Any:
        """One request, retried as the class says; the answer's JSON (`text`: its body as text)."""
        data = None if body is None else json.dumps(body).encode()
        delay, busy_answers, fresh_connection = 0.01, 0, False
        while True:
            kept_alive = getattr(self._local, "conn", None) is not None
            try:
                status, payload, keep = self._send(self._conn(), method, path, data)
            except ConnectionDropped:
                self._drop_conn()
                # A kept-alive connection the daemon has closed meanwhile: one fresh try.
                if kept_alive and not fresh_connection:
                    fresh_connection = True
                    continue
                raise
            except SandboxError:
                self._drop_conn()
                raise
            if not keep:
                self._drop_conn()
            try:
                return self._answer(status, payload, text)
            except SandboxBusy:
                if busy_answers >= self.busy_retries:
                    raise
                busy_answers += 1
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _send(self, conn: Connection, method: str, path: str, data: bytes | None) -> tuple[int, bytes, bool]:
        """One request on `conn`, no retry: (status, body, kept alive). A failure to talk is a
        `SandboxError`: `SandboxUnavailable` (`ConnectionDropped` when the connection broke) where
        another daemon might answer, `SandboxAuthError` for a certificate that does not verify."""
        try:
            return conn.request(method, path, data)
        except ProtocolError as exc:
            raise SandboxError(f"sandbox daemon at {self._where()} answered garbage: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            # Not a daemon to fail over from: a mistake to fix (or an impostor).
            raise SandboxAuthError(f"sandbox daemon at {self._where()}: its TLS certificate does not verify: "
                                   f"{exc.verify_message or exc} (pass ca_file= or set GRPO_SANDBOX_CA_FILE to "
                                   f"the CA that signed it)") from exc
        except ssl.SSLError as exc:
            raise SandboxUnavailable(f"TLS with the sandbox daemon at {self._where()} failed: {exc} "
                                     "(does that port speak TLS? the daemon needs --tls-cert)") from exc
        except (ConnectionError, BrokenPipeError) as exc:
            raise ConnectionDropped(f"sandbox daemon at {self._where()} is unreachable or dropped the "
                                    f"connection: {exc}") from exc
        except OSError as exc:
            raise SandboxUnavailable(f"cannot reach the sandbox daemon at {self._where()}: {exc}") from exc

    def _answer(self, status: int, payload: bytes, text: bool = False) -> Any:
        """What an HTTP answer means: its JSON (or text), else the `SandboxError` it stands for."""
        if text and status == 200:
            return payload.decode("utf-8", "replace")
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise SandboxError(f"sandbox daemon sent invalid JSON (HTTP {status})") from exc
        if status == 503 and answer.get("error") == "busy":
            raise SandboxBusy(f"sandbox daemon at {self._where()} is busy: {answer.get('message', 'queue full')}")
        if status == 401:
            raise SandboxAuthError(
                f"sandbox daemon at {self._where()} refused the request: "
                + ("the token sent is wrong" if self._token else
                   "it wants a token (set GRPO_SANDBOX_TOKEN or GRPO_SANDBOX_TOKEN_FILE, or pass token=)"))
        if status != 200:
            raise SandboxError(f"sandbox daemon answered HTTP {status}: {answer.get('message', answer)}")
        return answer

    @property
    def tls(self) -> bool:
        """True when this client speaks TLS to a TCP daemon."""
        return self._tls is not None

    def _where(self) -> str:
        return self.tcp or self.socket_path

    def _alive(self) -> bool:
        try:
            self._request("GET", "/health")
            return True
        except SandboxError:
            return False

    # ---- daemon on demand ---------------------------------------------------------------------

    def _start(self, binary: str | None, daemon_args: Sequence[str]) -> None:
        exe = binary or find_daemon_binary()
        if exe is None:
            raise SandboxError(
                "no sandbox daemon answers on " + self.socket_path + " and no grpo-sandboxd binary was found: set "
                "GRPO_SANDBOXD, put grpo-sandboxd on PATH, or build it (cargo build --release -p grpo-sandbox)"
            )
        Path(self.socket_path).parent.mkdir(parents=True, exist_ok=True)
        log_path = Path(self.socket_path).with_suffix(".log")
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [exe, "--socket", self.socket_path, "--quiet", *daemon_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        atexit.register(self.stop_daemon)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise SandboxError(f"grpo-sandboxd exited with code {self._proc.returncode}:\n{tail}")
            if self._alive():
                return
            time.sleep(0.05)
        self.stop_daemon()
        raise SandboxError(f"grpo-sandboxd did not answer on {self.socket_path} within 60 s (log: {log_path})")

    @property
    def started_daemon(self) -> bool:
        """True when this client started the daemon it talks to (it stops it on close)."""
        return self._proc is not None

    def stop_daemon(self) -> None:
        """Stops a daemon this client started (graceful SIGTERM, then SIGKILL)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self._drop_conn()
        self.stop_daemon()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- API ----------------------------------------------------------------------------------

    def health(self) -> dict:
        return self._request("GET", "/health")

    def metrics(self) -> str:
        """`GET /metrics`: the daemon's counters in the Prometheus text format."""
        return self._request("GET", "/metrics", text=True)

    def languages(self) -> list[dict]:
        return self._request("GET", "/languages")["languages"]

    def run(
        self,
        code: str,
        stdin: str = "",
        *,
        language: str = "python",
        timeout_ms: int | None = None,
        memory_mb: int | None = None,
        files: dict[str, str] | None = None,
        fetch_files: Sequence[str] | None = None,
    ) -> dict:
        """Runs one program; returns the daemon's answer (`status`, `stdout`, `stderr`, ...)."""
        return self._request("POST", "/run", run_request(code, stdin, language=language, timeout_ms=timeout_ms,
                                                          memory_mb=memory_mb, files=files, fetch_files=fetch_files))

    def run_tests(
        self,
        code: str,
        tests: Sequence[dict] | None = None,
        *,
        test_code: str | None = None,
        entry_point: str | None = None,
        language: str = "python",
        compare: str = "whitespace",
        float_tolerance: float = 1e-6,
        timeout_ms: int | None = None,
        memory_mb: int | None = None,
        fresh_process_per_test: bool = False,
    ) -> dict:
        """Runs one program against tests (see docs/sandbox.md for both test styles). Tests run one
        after another in one sandboxed process, each from a fresh `__main__` and fresh stdio;
        `fresh_process_per_test=True` gives every test a process of its own (slower)."""
        return self._request("POST", "/run_tests", tests_request(
            code, tests, test_code=test_code, entry_point=entry_point, language=language, compare=compare,
            float_tolerance=float_tolerance, timeout_ms=timeout_ms, memory_mb=memory_mb,
            fresh_process_per_test=fresh_process_per_test))

    def batch(self, items: Sequence[dict]) -> list[dict]:
        """One POST /batch: each item is a /run or /run_tests body plus "kind": "run" | "run_tests"."""
        return self._request("POST", "/batch", {"items": list(items)})["results"]

    def map(self, items: Iterable[dict], chunk_size: int = 32) -> list[dict]:
        """Many /batch items, in order, with several batches in flight at once."""
        items = list(items)
        if not items:
            return []
        chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
        workers = self._max_workers or max(2, 2 * int(self.health().get("slots", 1)))
        workers = min(workers, len(chunks))
        if workers == 1:
            return [r for c in chunks for r in self.batch(c)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
            parts = list(pool.map(self.batch, chunks))
        return [r for part in parts for r in part]


def run_request(code: str, stdin: str = "", *, language: str = "python", timeout_ms: int | None = None,
                memory_mb: int | None = None, files: dict[str, str] | None = None,
                fetch_files: Sequence[str] | None = None) -> dict:
    body: dict[str, Any] = {"language": language, "code": code, "stdin": stdin}
    if timeout_ms is not None:
        body["timeout_ms"] = int(timeout_ms)
    if memory_mb is not None:
        body["memory_mb"] = int(memory_mb)
    if files:
        body["files"] = dict(files)
    if fetch_files:
        body["fetch_files"] = list(fetch_files)
    return body


def tests_request(code: str, tests: Sequence[dict] | None = None, *, test_code: str | None = None,
                  entry_point: str | None = None, language: str = "python", compare: str = "whitespace",
                  float_tolerance: float = 1e-6, timeout_ms: int | None = None,
                  memory_mb: int | None = None, fresh_process_per_test: bool = False) -> dict:
    body: dict[str, Any] = {"language": language, "code": code, "tests": list(tests or []), "compare": compare,
                            "float_tolerance": float_tolerance}
    if test_code is not None:
        body["test_code"] = test_code
    if entry_point is not None:
        body["entry_point"] = entry_point
    if timeout_ms is not None:
        body["timeout_ms"] = int(timeout_ms)
    if memory_mb is not None:
        body["memory_mb"] = int(memory_mb)
    if fresh_process_per_test:
        body["fresh_process_per_test"] = True
    return body
