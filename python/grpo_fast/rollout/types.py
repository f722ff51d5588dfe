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
    # Tool segments: `text` with the tools' outputs left out (what the format puts around them, so
    # fences and turns stay balanced); what a verifier is shown in its place. None: all of `text`.
    frame: str | None = None


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
    """A `Completion` made of turns. `token_ids` and `logprobs` cover everything after the prompt
    (model and tool tokens, in order; `logprobs` NaN at tool tokens); `loss_mask` is 1 at model tokens
    and 0 at tool tokens. `transcript_text` is the text of all those tokens, what the model saw.

    `text`, what verifiers judge, is the model's own text: the transcript with every tool output left
    out (the frame around it kept: the closing fence of the code format, the tool turn of the chat
    format). A model earns no reward for an answer that only its program printed (`print("\\boxed{42}")`);
    it has to write the answer itself. `final_text` is the model's last turn alone."""

    segments: list[Segment] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    stop_reason: str = "answer"
    turns: int = 0  # model turns

    @classmethod
    def start(cls) -> Rollout:
        return cls(text="", token_ids=[], logprobs=None, finish_reason="stop")

    @classmethod
    def from_turns(cls, turns: Any, tokenizer: Any, *, end_of_turn_token: bool, stop_reason: str = "answer",
                   max_tokens: int | None = None) -> Rollout:
        """A rollout rebuilt from a record's `turns` (as `transcript()` writes them), for offline
        training: the same segments and loss mask as the online rollout. Each turn's text is
        tokenized alone, as online (a tool turn is the exact text the model was shown); the model's end
        token is put back where its text leaves it out: after an assistant turn followed by a tool turn
        when `end_of_turn_token` (the chat format ends the turn there; the code format stops at the
        output marker, which is text), and after the last turn when the rollout ended with an answer.
        Over `max_tokens` it is cut and truncated. A malformed turn is a `DataError` naming it."""
        from grpo_fast.errors import DataError

        if stop_reason not in STOP_REASONS:
            raise DataError(f"stop_reason must be one of {', '.join(STOP_REASONS)}, got {stop_reason!r}",
                            field="stop_reason")
        if not isinstance(turns, list) or not turns:
            raise DataError("turns must be a non-empty list of {role, content} turns", field="turns")
        eos = tokenizer.eos_token_id
        r = cls.start()
        for k, t in enumerate(turns):
            role = t.get("role") if isinstance(t, dict) else None
            want = "assistant" if k % 2 == 0 else "tool"
            if role != want:
                raise DataError(f"turns alternate assistant, tool, assistant, ...: expected {want!r}, "
                                f"got {role!r}", field=f"turns[{k}].role")
            if not isinstance(t.get("content"), str):
                raise DataError("content must be a string", field=f"turns[{k}].content")
            ids = list(tokenizer(t["content"], add_special_tokens=False)["input_ids"])
            last = k == len(turns) - 1
            if role == "assistant":
                if (not last and end_of_turn_token) or (last and stop_reason == "answer"):
                    ids.append(eos)
                r.segments.append(Segment(MODEL, ids, t["content"]))
                r.turns += 1
            else:
                r.segments.append(Segment(TOOL, ids, t["content"]))
        if max_tokens is not None and sum(len(x.token_ids) for x in r.segments) > max_tokens:
            left = max_tokens
            for x in r.segments:
                x.token_ids = x.token_ids[:left]
                left -= len(x.token_ids)
            r.segments = [x for x in r.segments if x.token_ids]
            r.turns = sum(x.kind == MODEL for x in r.segments)
            stop_reason = "max_tokens"
        r._refresh()
        r.end(stop_reason)
        return r

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
        self.text = judged_text(self.segments)
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
    def transcript_text(self) -> str:
        return "".join(s.text for s in self.segments)

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


def judged_text(segments: list[Segment]) -> str:
    """The text verifiers judge: the model's segments as written, each tool segment replaced by its
    frame (its text without the tools' outputs). The one place this rule lives; see `Rollout`."""
    return "".join(s.text if s.kind == MODEL or s.frame is None else s.frame for s in segments)
