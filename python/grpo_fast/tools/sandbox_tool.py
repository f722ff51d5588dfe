"""Code tools run in the sandbox daemon (`grpo-sandboxd`): `python` and any language the daemon
runs, one fresh sandbox per call, all calls of a round in one `map` of /batch requests (spread over
a `Pool` of daemons when given one).

Sessions: the daemon keeps no state between runs, so a session is a replay. The call's program is a
harness that re-runs the rollout's earlier cells with their output thrown away and then runs the
new cell, so later cells see earlier definitions and the model is shown only the new output. The cost
is quadratic in the number of cells (cell k re-runs cells 1..k-1, inside the same time limit), an
earlier cell that drew random numbers or read the clock may see other values on the replay, and a
cell stopped by a limit (time, memory, output) is not replayed (it would only hit the limit again)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from grpo_fast.errors import ConfigError, SandboxError
from grpo_fast.sandbox.client import Client, run_request
from grpo_fast.tools.base import DEFAULT_MAX_OUTPUT_CHARS, Tool, ToolCall, ToolResult, cap_output

# The replay harness. Cells travel as string literals (repr), so no cell can break out of its slot;
# they share one namespace of their own (the harness's names are not in it), earlier cells run with
# stdout/stderr sent to /dev/null (set again before each, whatever a cell did to them) and every
# exception swallowed (SystemExit included), as the model already saw what they printed or raised.
_REPLAY = """import os as _os, sys as _sys


def _cells(cells):
    ns = {{"__name__": "__main__", "__builtins__": __builtins__}}
    out, err = _sys.stdout, _sys.stderr
    null = open(_os.devnull, "w")
    for cell in cells[:-1]:
        _sys.stdout = _sys.stderr = null
        try:
            exec(compile(cell, "<cell>", "exec"), ns)
        except BaseException:
            pass
    _sys.stdout, _sys.stderr = out, err
    exec(compile(cells[-1], "<cell>", "exec"), ns)


_cells({cells!r})
"""

_STATUS = {"ok": "ok", "runtime_error": "error", "timeout": "timeout", "output_limit": "output_limit",
           "memory_limit": "memory_limit"}


class SandboxTool(Tool):
    """A code interpreter in the sandbox. `client` is a `Client` or `Pool` (default: a `Client` that
    starts a local daemon when none answers). `timeout_ms` and `memory_mb` bound every call (the
    daemon enforces them); `max_output_chars` bounds what the model is shown. `session`: later cells of
    a rollout see earlier definitions (Python only; see the module docstring for the cost).
    `setup_code` runs silently before every cell (imports, helpers the task provides)."""

    def __init__(self, language: str = "python", *, client: Any = None, timeout_ms: int = 5000,
                 memory_mb: int | None = None, max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
                 session: bool = False, setup_code: str = "", name: str | None = None,
                 error_lines: int = 1):
        if session and language != "python":
            raise ConfigError(f"tool {language}: sessions (replayed cells) are offered for python only",
                              field="tool_session")
        if setup_code and language != "python":
            raise ConfigError(f"tool {language}: setup code is offered for python only", field="tools")
        if timeout_ms <= 0:
            raise ConfigError(f"tool timeout must be positive, got {timeout_ms} ms", field="tool_timeout")
        self.language = language
        self.name = name or language
        self.description = (f"Run a {language} program in a sandbox and return what it prints "
                            "(stdout; on an error the last line of stderr).")
        self.parameters = {"type": "object", "properties": {
            "code": {"type": "string", "description": f"the {language} source to run"}}, "required": ["code"]}
        self._client = client
        self._owns_client = client is None
        self.timeout_ms = int(timeout_ms)
        self.memory_mb = memory_mb
        self.max_output_chars = int(max_output_chars)
        self.session = session
        self.setup_code = setup_code
        self.error_lines = error_lines

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = Client()
        return self._client

    def program(self, call: ToolCall) -> str:
        """The source the sandbox runs for `call`: the cell alone, or the replay harness."""
        code = str(call.arguments.get("code", ""))
        cells = [h.get("code", "") for h in call.history] if self.session else []
        if self.setup_code:
            cells = [self.setup_code, *cells]
        if not cells:
            return code
        return _REPLAY.format(cells=[*(str(c) for c in cells), code])

    def run_batch(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        out: list[ToolResult | None] = [None] * len(calls)
        items, where = [], []
        for i, c in enumerate(calls):
            code = c.arguments.get("code")
            if not isinstance(code, str) or not code.strip():
                out[i] = ToolResult("Error: no code to run", "bad_call")
                continue
            items.append({"kind": "run", **run_request(self.program(c), language=self.language,
                                                       timeout_ms=self.timeout_ms, memory_mb=self.memory_mb)})
            where.append(i)
        if items:
            t0 = time.perf_counter()
            try:
                answers = self.client.map(items)
            except SandboxError as exc:
                # The whole round failed (daemon gone): every call says so, the rollouts go on.
                answers = [{"status": "sandbox_error", "message": str(exc)}] * len(items)
            each = (time.perf_counter() - t0) / len(items)
            for i, a in zip(where, answers, strict=True):
                wall = a.get("wall_ms")
                out[i] = self.result(a, float(wall) / 1000 if isinstance(wall, (int, float)) else each)
        return [r for r in out if r is not None]

    def result(self, answer: dict[str, Any], seconds: float) -> ToolResult:
        """The daemon's answer as the model sees it: stdout, then for a failure the last
        `error_lines` lines of stderr (a traceback's last line names the error; the rest is context
        the model rarely needs and that costs tokens), or a line saying which limit ended the run."""
        status = str(answer.get("status", "sandbox_error"))
        stdout = str(answer.get("stdout") or "")
        stderr = str(answer.get("stderr") or "")
        kind = _STATUS.get(status, "sandbox_error")
        if kind == "ok":
            text = stdout
        elif kind == "error":
            lines = [x for x in stderr.strip().splitlines() if x.strip()]
            text = stdout + "\n".join(lines[-self.error_lines:] if lines else [f"exit code {answer.get('exit_code')}"])
        elif kind == "timeout":
            text = stdout + f"TimeoutError: the program ran longer than {self.timeout_ms / 1000:g} s"
        elif kind == "memory_limit":
            text = stdout + "MemoryError: the program went over its memory limit"
        elif kind == "output_limit":
            text = stdout + "\n[output limit reached: the program was stopped]"
        else:
            text = f"Error: the sandbox could not run the program ({answer.get('message') or status})"
        text, cut = cap_output(text, self.max_output_chars)
        if cut and kind == "ok":
            kind = "output_limit"
        return ToolResult(text, kind, seconds)

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
