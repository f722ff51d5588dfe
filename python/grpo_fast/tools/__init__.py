"""Tools a model may call during a rollout: code interpreters in the sandbox daemon
(`SandboxTool`: python and the daemon's other languages) and user Python functions (`FunctionTool`,
`--tool module:fn`). `build_tools` is the one place that turns options into tools."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.tools.base import TOOL_STATUSES, Tool, ToolCall, ToolResult, cap_output
from grpo_fast.tools.function_tool import FunctionTool, load_function
from grpo_fast.tools.sandbox_tool import SandboxTool

# The sandbox's languages by the names (and aliases) a fenced block or a tool name may use.
SANDBOX_LANGUAGES = {"python": "python", "python3": "python", "py": "python", "cpp": "cpp", "c++": "cpp",
                     "cxx": "cpp", "c": "c", "rust": "rust", "rs": "rust", "java": "java",
                     "javascript": "javascript", "js": "javascript"}

__all__ = ["SANDBOX_LANGUAGES", "TOOL_STATUSES", "FunctionTool", "SandboxTool", "Tool", "ToolCall", "ToolResult",
           "build_tools", "cap_output", "load_function"]


def sandbox_client(endpoints: str | Sequence[str] | None) -> Any:
    """A `Pool` over `endpoints` (default `$GRPO_SANDBOX`), else a `Client` of the local daemon
    (started on demand)."""
    from grpo_fast.sandbox.client import Client
    from grpo_fast.sandbox.pool import Pool, parse_endpoints

    spec = endpoints if endpoints else (os.environ.get("GRPO_SANDBOX") or None)
    return Pool(parse_endpoints(spec)) if spec else Client()


def build_tools(languages: Sequence[str] = (), functions: Sequence[str] = (), *, sandbox: Any = None,
                timeout_s: float = 5.0, max_output_chars: int = 2048, session: bool = False,
                memory_mb: int | None = None, setup_code: str = "") -> list[Tool]:
    """`languages`: sandbox tools by language (`python`, `cpp`, ...); `functions`: `module:fn` specs.
    `sandbox` is a Client/Pool or endpoints for the sandbox tools (one client shared by all of them).
    Every tool gets the same per-call time limit and output cap."""
    tools: list[Tool] = []
    client = None
    for raw in languages:
        lang = SANDBOX_LANGUAGES.get(raw.strip().lower())
        if lang is None:
            known = ", ".join(sorted(set(SANDBOX_LANGUAGES.values())))
            raise ConfigError(f"tools: unknown tool {raw!r}; sandbox tools are {known} (a Python function is "
                              "--tool module:function)", field="tools")
        if client is None:
            client = sandbox if sandbox is not None and not isinstance(sandbox, (str, list, tuple)) \
                else sandbox_client(sandbox)
        tools.append(SandboxTool(lang, client=client, timeout_ms=int(timeout_s * 1000), memory_mb=memory_mb,
                                 max_output_chars=max_output_chars, session=session and lang == "python",
                                 setup_code=setup_code if lang == "python" else ""))
    for spec in functions:
        tools.append(FunctionTool(load_function(spec), timeout_s=timeout_s, max_output_chars=max_output_chars))
    names = [t.name for t in tools]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"tools: two tools named {', '.join(dup)}", field="tools")
    return tools
