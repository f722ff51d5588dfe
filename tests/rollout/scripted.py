"""A scripted policy for the rollout tests (not a test module).

A random-init model does not write code, so the tests that need a rollout to call a tool at a given
point script the model's text instead: `ScriptedSampler` continues each row with the next text of
its script, tokenized by the real tokenizer and cut by the same `finish_turn` the real backends use
(stop token, stop string, max_new_tokens). Everything else (formats, tools, the sandbox daemon, the
bookkeeping, the trainer) is the real code. Log-probs are deterministic functions of the position,
so alignment can be checked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from grpo_fast.sampler.base import Completion, Sampler, encode_prompts, finish_turn


class ScriptedSampler(Sampler):
    """`script(prompt_ids, context_ids, turn) -> text` gives the model's next text for a row; the
    row's turn number is counted from how many times it was continued (keyed by its prompt ids and
    length)."""

    def __init__(self, tokenizer: Any, script: Callable[[list[int], list[int], int], str], *,
                 max_new_tokens: int = 256, logprobs: bool = True):
        self.tokenizer = tokenizer
        self.script = script
        self.defaults = dict(max_new_tokens=max_new_tokens, temperature=1.0, top_p=1.0, top_k=0)
        self.use_chat_template = True
        self.max_prompt_length = None
        self.with_logprobs = logprobs
        self.calls: list[dict[str, Any]] = []
        self.prompt_len: dict[tuple[int, ...], int] = {}

    def encode_prompts(self, prompts):
        texts, ids = encode_prompts(self.tokenizer, prompts, True, None)
        return texts, ids

    def generate(self, prompts, n, records=None, **params):  # pragma: no cover - not used by the tests
        raise NotImplementedError

    def continue_ids(self, rows: Sequence[Sequence[int]], *, stop_strings: Sequence[str] = (), **params: Any):
        p = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        self.calls.append({"rows": len(rows), "stop_strings": tuple(stop_strings), **p})
        stops = [self.tokenizer.eos_token_id]
        out: list[Completion] = []
        for row in rows:
            row = list(row)
            text = self.script(row, row, len(self.calls))
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: int(p["max_new_tokens"])]
            lps = [-0.01 * (len(row) + i + 1) for i in range(len(ids))] if self.with_logprobs else None
            out.append(finish_turn(self.tokenizer, ids, lps, stops, stop_strings))
        return out
