"""A multi-turn rollout as the trainer sees it: the prompt, then segments of model tokens and tool
tokens. Model tokens are trained on; tool tokens are context only (loss mask 0, no behaviour
log-prob, no part in the importance ratio or the KL)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from grpo_fast.sampler.base import Completion

MODEL, TOOL = "model", "tool"

# Why a rollout ended. "answer": the model ended a turn without a tool call; the others are limits,
# and a rollout that hits one counts as truncated (finish_reason "length", maskable like a
# single-turn completion cut at max_completion_length).
STOP_REASONS = ("answer", "max_tokens", "max_turns", "max_tool_calls")


@dataclass
class Segment:
    kind: str  # MODEL or TOOL
    token_ids: list[int]
    text: str
    logprobs: list[float] | None = None  # the sampler's, for model segments when it gave them
    calls: list[int] = field(default_factory=list)  # tool segments: indices into Rollout.tool_calls


@dataclass
class ToolCallRecord:
    """One call as it happened: which tool, its arguments, what it returned and how."""

    name: str
    arguments: dict[str, Any]
    output: str
    status: str
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "output": self.output, "status": self.status,
                "seconds": round(self.seconds, 6)}


@dataclass
class Rollout(Completion):
    """A `Completion` made of turns. `token_ids`, `text` and `logprobs` cover everything after the
    prompt (model and tool tokens, in order; `logprobs` NaN at tool tokens); `loss_mask` is 1 at model
    tokens and 0 at tool tokens. `text` is the whole transcript, which is what verifiers score (a
    math answer is the last one in it); `final_text` is the model's last turn alone."""

    segments: list[Segment] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    stop_reason: str = "answer"
    turns: int = 0  # model turns

    @classmethod
    def start(cls) -> Rollout:
        return cls(text="", token_ids=[], logprobs=None, finish_reason="stop")

    # ---- building ----
    def add(self, seg: Segment) -> None:
        self.segments.append(seg)
        if seg.kind == MODEL:
            self.turns += 1
        self._refresh()

    def end(self, reason: str) -> None:
        if reason not in STOP_REASONS:
            raise ValueError(f"unknown stop reason {reason!r}")
        self.stop_reason = reason
        self.finish_reason = "stop" if reason == "answer" else "length"

    def _refresh(self) -> None:
        self.token_ids = [t for s in self.segments for t in s.token_ids]
        self.text = "".join(s.text for s in self.segments)
        have = [s for s in self.segments if s.kind == MODEL]
        if have and all(s.logprobs is not None for s in have):
            self.logprobs = [x for s in self.segments
                             for x in (s.logprobs if s.kind == MODEL else [math.nan] * len(s.token_ids))]
        else:
            self.logprobs = None

    # ---- reading ----
    @property
    def loss_mask(self) -> list[int]:
        return [1 if s.kind == MODEL else 0 for s in self.segments for _ in s.token_ids]

    @property
    def num_model_tokens(self) -> int:
        return sum(len(s.token_ids) for s in self.segments if s.kind == MODEL)

    @property
    def final_text(self) -> str:
        return next((s.text for s in reversed(self.segments) if s.kind == MODEL), "")

    def transcript(self) -> list[dict[str, Any]]:
        """The turns as records store them: `{"role": "assistant", "content"}` for a model turn and
        `{"role": "tool", "content", "calls": [...]}` for the tool tokens that followed it (`content`
        is exactly the text the model was shown; `calls` the calls it answered, see ToolCallRecord)."""
        out: list[dict[str, Any]] = []
        for s in self.segments:
            if s.kind == MODEL:
                out.append({"role": "assistant", "content": s.text})
            else:
                out.append({"role": "tool", "content": s.text,
                            "calls": [self.tool_calls[i].as_json() for i in s.calls]})
        return out
