"""User Python functions as tools (`--tool module:fn`): the schema comes from the signature, the type
hints and the docstring (its first paragraph describes the tool, an `Args:` section the parameters).
Calls run in threads of this process with a deadline; a call that overruns is answered as a timeout
and its thread is left to finish (Python cannot stop a thread), so a function that may hang should
bound itself or be a sandbox tool instead."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import time
import types
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.tools.base import DEFAULT_MAX_OUTPUT_CHARS, Tool, ToolCall, ToolResult, cap_output

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object",
               tuple: "array"}


def json_type(annotation: Any) -> dict[str, Any]:
    """A JSON-schema fragment for a type hint; unknown hints give `{}` (any value)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return json_type(args[0]) if len(args) == 1 else {"anyOf": [json_type(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(annotation))}
    if origin in (list, tuple, Sequence):
        args = typing.get_args(annotation)
        return {"type": "array", **({"items": json_type(args[0])} if args else {})}
    if origin is dict:
        return {"type": "object"}
    t = _JSON_TYPES.get(annotation)
    return {"type": t} if t else {}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google-style docstring."""
    if not doc:
        return "", {}
    doc = inspect.cleandoc(doc)
    parts = re.split(r"\n\s*(?:Args|Arguments|Parameters):\s*\n", doc, maxsplit=1)
    desc = parts[0].split("\n\n")[0].strip().replace("\n", " ")
    params: dict[str, str] = {}
    if len(parts) == 2:
        current = None
        for line in parts[1].splitlines():
            if re.match(r"^\S", line) and line.rstrip().endswith(":"):
                break  # the next section (Returns:, Raises:)
            m = re.match(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
            if m:
                current = m.group(1)
                params[current] = m.group(2).strip()
            elif current and line.strip():
                params[current] += " " + line.strip()
    return desc, params


class FunctionTool(Tool):
    """`fn` as a tool. Its keyword arguments come from the model's JSON; a missing required
    argument, an unknown one or a raised exception is a result with an error status, never an
    exception in the rollout. The return value is shown as text (JSON for non-strings)."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, timeout_s: float = 10.0,
                 max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS, workers: int = 8):
        self.fn = fn
        self.name = name or fn.__name__
        self.timeout_s = float(timeout_s)
        self.max_output_chars = int(max_output_chars)
        desc, pdocs = parse_docstring(fn.__doc__)
        self.description = desc
        sig = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        props: dict[str, Any] = {}
        required: list[str] = []
        self._accepts_any = False
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
                raise ConfigError(f"tool {self.name}: parameter {p.name!r} cannot be passed by name "
                                  "(a tool is called with keyword arguments)", field="tool")
            if p.kind == p.VAR_KEYWORD:
                self._accepts_any = True
                continue
            props[p.name] = {**json_type(hints.get(p.name, p.annotation)),
                             **({"description": pdocs[p.name]} if p.name in pdocs else {})}
            if p.default is p.empty:
                required.append(p.name)
        self.parameters = {"type": "object", "properties": props, "required": required}
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix=f"tool-{self.name}")

    def _check(self, args: dict[str, Any]) -> str | None:
        missing = [k for k in self.parameters["required"] if k not in args]
        if missing:
            return f"missing argument(s): {', '.join(missing)}"
        unknown = [k for k in args if k not in self.parameters["properties"]]
        if unknown and not self._accepts_any:
            return f"unknown argument(s): {', '.join(unknown)}"
        return None

    def _timed(self, args: dict[str, Any]) -> tuple[Any, float]:
        t0 = time.perf_counter()
        value = self.fn(**args)
        return value, time.perf_counter() - t0

    def run_batch(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        futures: list[Any] = []
        for c in calls:
            problem = self._check(c.arguments) if isinstance(c.arguments, dict) else "arguments must be an object"
            futures.append(problem if problem else self._pool.submit(self._timed, dict(c.arguments)))
        results = []
        start = time.monotonic()
        workers = self._pool._max_workers
        for k, f in enumerate(futures):
            # Calls beyond the thread count queue; each gets its full time once a thread is free.
            deadline = start + self.timeout_s * (k // workers + 1)
            if isinstance(f, str):
                results.append(ToolResult(f"Error: {f}", "bad_call"))
                continue
            try:
                value, secs = f.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                results.append(ToolResult(f"TimeoutError: {self.name} ran longer than {self.timeout_s:g} s",
                                          "timeout", self.timeout_s))
                continue
            except Exception as exc:  # the function's own failure is the model's to see
                results.append(ToolResult(f"{type(exc).__name__}: {exc}", "error"))
                continue
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            text, cut = cap_output(text, self.max_output_chars)
            results.append(ToolResult(text, "output_limit" if cut else "ok", secs))
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def load_function(spec: str) -> Callable[..., Any]:
    """`"package.module:function"` -> the function (the module is imported; a path to a .py file
    before the colon is loaded from that file)."""
    mod_name, sep, attr = spec.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(f"tool {spec!r}: expected module:function", field="tool")
    try:
        if mod_name.endswith(".py"):
            s = importlib.util.spec_from_file_location(f"grpo_fast_user_tool_{abs(hash(mod_name))}", mod_name)
            if s is None or s.loader is None:
                raise ImportError(f"cannot load {mod_name}")
            module = importlib.util.module_from_spec(s)
            s.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except (ImportError, OSError, SyntaxError) as exc:
        raise ConfigError(f"tool {spec!r}: cannot import {mod_name} ({exc})", field="tool") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"tool {spec!r}: {mod_name} has no function {attr!r}", field="tool")
    return fn
