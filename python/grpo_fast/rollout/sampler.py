"""`ToolSampler`: multi-turn rollouts behind the `Sampler` interface. It wraps any sampler that can
continue from token ids (transformers on CPU, vLLM colocated or as a server) and runs each rollout
as: generate until a tool call, run the tool, append its result, continue, until the model answers
or a limit is hit. The trainer, `generate` and `eval` use it like any other sampler.

Throughput: the rollouts of a call are split into `waves`; while one wave's tool calls run in the
sandbox (all of them in one batch), the next wave generates. The time generation stood still waiting
for tools is `tools/wait_s`."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from grpo_fast import metrics as M
from grpo_fast.errors import ConfigError
from grpo_fast.rollout.formats import ParsedCall, ToolFormat, build_format, to_tool_call
from grpo_fast.rollout.types import MODEL, TOOL, Rollout, Segment, ToolCallRecord
from grpo_fast.sampler.base import CompletionGroup, Prompt, Sampler
from grpo_fast.tools.base import Tool, ToolResult


@dataclass
class RolloutLimits:
    """Where a rollout stops. `max_tokens` bounds everything after the prompt (model and tool
    tokens; None: the sampler's max_new_tokens); `max_turns` the model turns; `max_tool_calls` the
    calls (a call beyond it ends the rollout as truncated). The per-call time and output limits are
    the tools' own."""

    max_tool_calls: int = 4
    max_turns: int = 8
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_tool_calls < 0 or self.max_turns < 1 or (self.max_tokens is not None and self.max_tokens < 1):
            raise ConfigError("rollout limits: max_tool_calls >= 0, max_turns >= 1 and max_tokens >= 1 are required",
                              field="max_tool_calls")


@dataclass
class _State:
    rollout: Rollout
    context: list[int]
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    done: bool = False

    def end(self, reason: str) -> None:
        self.rollout.end(reason)
        self.done = True


@dataclass
class _Pending:
    state: _State
    calls: list[ParsedCall]
    model_text: str
    end_text: str


class ToolSampler(Sampler):
    """`inner` generates; `tools` answer; `tool_format` is "code" (```python ... ``` then ```output)
    or "chat" (the chat template's tool calls). `waves` >= 2 overlaps generation with tool calls."""

    def __init__(self, inner: Sampler, tools: Sequence[Tool], *, tool_format: str = "code",
                 limits: RolloutLimits | None = None, waves: int = 2):
        if not tools:
            raise ConfigError("a tool sampler needs at least one tool", field="tools")
        self.inner = inner
        self.tools = {t.name: t for t in tools}
        self.tokenizer = inner.tokenizer  # type: ignore[attr-defined]
        self.format: ToolFormat = build_format(tool_format, tools, self.tokenizer)
        self.limits = limits or RolloutLimits()
        self.waves = max(1, int(waves))
        self._pool = ThreadPoolExecutor(self.waves, thread_name_prefix="grpo-tools")
        self._stats: dict[str, float] = {}

    # ---- the Sampler interface, delegated ----
    @property
    def shares_policy(self) -> bool:
        return self.inner.shares_policy

    def update_weights(self, model: Any) -> None:
        self.inner.update_weights(model)

    def sleep(self) -> None:
        self.inner.sleep()

    def wake_up(self) -> None:
        self.inner.wake_up()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for t in self.tools.values():
            t.close()
        self.inner.close()

    def encode_prompts(self, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        return self.format.encode_prompts(self.inner, prompts)

    def continue_ids(self, rows: Sequence[Sequence[int]], *, stop_strings: Sequence[str] = (), **params: Any):
        return self.inner.continue_ids(rows, stop_strings=stop_strings, **params)

    def take_stats(self) -> dict[str, float]:
        out, self._stats = self._stats, {}
        return out

    # ---- rollouts ----
    def generate(self, prompts: Sequence[Prompt], n: int, records: Sequence[dict] | None = None,
                 **params: Any) -> list[CompletionGroup]:
        params = {k: v for k, v in params.items() if v is not None}
        seed = params.pop("seed", None)
        rng = random.Random(seed) if seed is not None else None
        budget = self.limits.max_tokens or int(params.pop("max_new_tokens", None)
                                               or self.inner.defaults["max_new_tokens"])  # type: ignore[attr-defined]
        params.pop("max_new_tokens", None)
        texts, ids = self.encode_prompts(prompts)
        states = [_State(Rollout.start(), list(ids[i])) for i in range(len(prompts)) for _ in range(n)]
        # Interleaved, so each wave holds part of every group and the waves are the same size.
        waves = [states[w::self.waves] for w in range(min(self.waves, len(states)))]
        pending: list[Future | None] = [None] * len(waves)
        stats = {"tool_s": 0.0, "wait_s": 0.0, "generate_s": 0.0, "rounds": 0.0}
        while any(not s.done for s in states) or any(f is not None for f in pending):
            for w, wave in enumerate(waves):
                fut = pending[w]
                if fut is not None:
                    t0 = time.perf_counter()
                    done_calls, tool_s = fut.result()
                    stats["wait_s"] += time.perf_counter() - t0
                    stats["tool_s"] += tool_s
                    pending[w] = None
                    self._append_results(done_calls, budget)
                live = [s for s in wave if not s.done]
                if not live:
                    continue
                t0 = time.perf_counter()
                todo = self._generate_turn(live, budget, params, rng)
                stats["generate_s"] += time.perf_counter() - t0
                stats["rounds"] += 1
                if todo:
                    pending[w] = self._pool.submit(self._run_calls, todo)
        for k, v in stats.items():
            self._stats[k] = self._stats.get(k, 0.0) + v
        groups = []
        for i, prompt in enumerate(prompts):
            rec = dict(records[i]) if records is not None else {}
            comps = [s.rollout for s in states[i * n:(i + 1) * n]]
            groups.append(CompletionGroup(prompt=prompt, prompt_text=texts[i], prompt_ids=ids[i], completions=comps,
                                          record=rec))
        return groups

    def _generate_turn(self, live: list[_State], budget: int, params: dict[str, Any],
                       rng: random.Random | None) -> list[_Pending]:
        """One model turn for every live rollout of a wave; returns the calls to run."""
        room = [budget - len(s.rollout.token_ids) for s in live]
        seed = rng.randrange(2**31 - 1) if rng is not None else None
        outs = self.inner.continue_ids([s.context for s in live], stop_strings=self.format.stop_strings,
                                       max_new_tokens=max(room), seed=seed, **params)
        todo = []
        for s, c, left in zip(live, outs, room, strict=True):
            toks, lps, finish, text = list(c.token_ids), c.logprobs, c.finish_reason, c.text
            if len(toks) > left:  # the batch ran to the longest room; this rollout had less
                toks, lps, finish = toks[:left], (lps[:left] if lps is not None else None), "length"
                text = self.tokenizer.decode(toks, skip_special_tokens=False)
            s.rollout.add(Segment(MODEL, toks, text, list(lps) if lps is not None else None))
            s.context.extend(toks)
            if finish == "length":
                s.end("max_tokens")
                continue
            calls = self.format.parse(text, finish)
            if not calls:
                s.end("answer")
            elif s.rollout.turns >= self.limits.max_turns:
                s.end("max_turns")
            elif len(s.rollout.tool_calls) + len(calls) > self.limits.max_tool_calls:
                s.end("max_tool_calls")
            else:
                end_text = self.tokenizer.decode(toks[-1:], skip_special_tokens=False) if finish == "stop" else ""
                todo.append(_Pending(s, calls, text, end_text))
        return todo

    def _run_calls(self, todo: list[_Pending]) -> tuple[list[tuple[_Pending, list[ToolResult]]], float]:
        """Every call of a wave, one `run_batch` per tool (a sandbox tool sends them as one batch)."""
        t0 = time.perf_counter()
        by_tool: dict[str, list[tuple[int, int]]] = {}
        results: list[list[ToolResult | None]] = [[None] * len(p.calls) for p in todo]
        for i, p in enumerate(todo):
            for j, c in enumerate(p.calls):
                if c.error is not None:
                    results[i][j] = ToolResult(f"Error: {c.error}", "unknown_tool" if c.name not in self.tools
                                               and c.name != "?" else "bad_call")
                else:
                    by_tool.setdefault(c.name, []).append((i, j))
        for name, where in by_tool.items():
            calls = [to_tool_call(todo[i].calls[j], todo[i].state.history.get(name, [])) for i, j in where]
            got = self.tools[name].run_batch(calls)
            for (i, j), r in zip(where, got, strict=True):
                results[i][j] = r
        return [(p, [r for r in rs if r is not None]) for p, rs in zip(todo, results, strict=True)], \
            time.perf_counter() - t0

    def _append_results(self, done: list[tuple[_Pending, list[ToolResult]]], budget: int) -> None:
        for p, results in done:
            s, r = p.state, p.state.rollout
            first = len(r.tool_calls)
            for c, res in zip(p.calls, results, strict=True):
                r.tool_calls.append(ToolCallRecord(c.name, c.arguments, res.output, res.status, res.seconds))
                # A session replays the cells that ran to the end or stopped on an error (what they
                # defined before it counts); one stopped by a limit would only hit it again.
                if c.error is None and res.status in ("ok", "error"):
                    s.history.setdefault(c.name, []).append(c.arguments)
            text = self.format.result_text(self.tokenizer, p.model_text, p.end_text, p.calls, results)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(r.token_ids) + len(ids) >= budget:
                # No room left for the result and a model token after it.
                s.end("max_tokens")
                continue
            # The same rendering with empty outputs: what a verifier sees instead (Rollout.text).
            frame = self.format.result_text(self.tokenizer, p.model_text, p.end_text, p.calls,
                                            [ToolResult("", x.status) for x in results])
            r.add(Segment(TOOL, ids, text, None, list(range(first, len(r.tool_calls))), frame))
            s.context.extend(ids)


def rollout_metrics(completions: Sequence[Any], stats: dict[str, float] | None = None) -> dict[str, float]:
    """The tools/* metrics of a step (metrics.py declares them) from its rollouts, plus the sampler's
    timings (`ToolSampler.take_stats`). Empty when no completion is a Rollout."""
    rs = [c for c in completions if isinstance(c, Rollout)]
    if not rs:
        return {}
    calls = [c for r in rs for c in r.tool_calls]
    n = len(rs)
    tool_tokens = sum(len(r.token_ids) - r.num_model_tokens for r in rs)
    all_tokens = sum(len(r.token_ids) for r in rs)
    out = {
        M.TOOLS_CALLS_PER_ROLLOUT: len(calls) / n,
        M.TOOLS_TURNS_PER_ROLLOUT: sum(r.turns for r in rs) / n,
        M.TOOLS_ERRORS: float(sum(c.status != "ok" for c in calls)),
        M.TOOLS_TIMEOUTS: float(sum(c.status == "timeout" for c in calls)),
        M.TOOLS_ERROR_RATE: (sum(c.status != "ok" for c in calls) / len(calls)) if calls else 0.0,
        M.TOOLS_CALL_RATE: sum(bool(r.tool_calls) for r in rs) / n,
        M.TOOLS_LIMIT_RATE: sum(r.stop_reason != "answer" for r in rs) / n,
        M.TOOLS_TOKEN_SHARE: tool_tokens / all_tokens if all_tokens else 0.0,
    }
    if stats:
        out[M.TOOLS_TIME_S] = stats.get("tool_s", 0.0)
        out[M.TOOLS_WAIT_S] = stats.get("wait_s", 0.0)
    return out
