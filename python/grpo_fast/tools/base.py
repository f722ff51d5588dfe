"""What a tool is to a rollout: a name, a JSON schema for chat templates, and `run_batch`, which
answers many calls (from many rollouts) at once, each bounded in time and output size."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Every status a tool result can have. "ok" is the only one that is not counted as a tool error.
TOOL_STATUSES = ("ok", "error", "timeout", "output_limit", "memory_limit", "bad_call", "unknown_tool",
                 "sandbox_error")

DEFAULT_MAX_OUTPUT_CHARS = 2048


@dataclass
class ToolCall:
    """One call a model made. `arguments` are the parsed arguments (a fenced code block becomes
    `{"code": ...}`); `history` holds the earlier calls' arguments to the same tool in the same
    rollout, in order: a tool with a session replays them (and no other rollout's)."""

    name: str
    arguments: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ToolResult:
    """What a call returned: `output` is what the model is shown (already capped), `status` one of
    TOOL_STATUSES, `seconds` the wall time of the call as the tool measured it."""

    output: str
    status: str = "ok"
    seconds: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.status != "ok"


class Tool(ABC):
    """A tool the model may call. `run_batch` gets every pending call of a round at once (so a
    sandbox tool can send them in one /batch) and returns one result per call, in order; it never
    raises for a bad call (that is a result with an error status)."""

    name: str = "tool"
    description: str = ""
    parameters: dict[str, Any]  # JSON schema of the arguments, set by each tool
    language: str | None = None  # set by code tools: the fence language (```python) they answer
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema chat templates take (`tools=[...]`)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}

    @abstractmethod
    def run_batch(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """One result per call, in order."""

    def close(self) -> None:  # noqa: B027 - only tools with connections need it
        """Release connections or threads."""


def cap_output(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to `limit` characters, keeping its start and end (an error is usually at the end),
    with a marker saying how much was left out; (text, was_cut)."""
    if limit <= 0 or len(text) <= limit:
        return text, False
    marker = "\n...[{} characters cut]...\n"
    keep = max(0, limit - len(marker.format(len(text))))
    head = keep * 2 // 3
    tail = keep - head
    cut = len(text) - head - tail
    return text[:head] + marker.format(cut) + (text[len(text) - tail:] if tail else ""), True
