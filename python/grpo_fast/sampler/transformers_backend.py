"""Sampling with `transformers`' `model.generate`: left-padded batches, chat templates, and (when
asked) per-token log-probs of the sampled tokens. Works on CPU; the trainer shares the policy object
with it, so its samples come from exactly the weights being trained."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import StoppingCriteria

from grpo_fast.sampler.base import (
    Completion,
    CompletionGroup,
    Prompt,
    Sampler,
    encode_prompts,
    finish_turn,
    split_completion,
    stop_token_ids,
)


class TransformersSampler(Sampler):
    """`return_logprobs=False` skips the behaviour log-probs (the trainer that shares the model
    scores the tokens itself); when they are returned, they cost one (rows x vocab) tensor per decode
    step, never a tensor per generated token."""

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 256, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, use_chat_template: bool = True,
                 max_prompt_length: int | None = None, return_logprobs: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.defaults = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k)
        self.use_chat_template = use_chat_template
        self.max_prompt_length = max_prompt_length
        self.return_logprobs = return_logprobs
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @property
    def shares_policy(self) -> bool:
        return True

    def encode_prompts(self, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        return encode_prompts(self.tokenizer, prompts, self.use_chat_template, self.max_prompt_length)

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], n: int, records: Sequence[dict] | None = None,
                 **params: Any) -> list[CompletionGroup]:
        texts, prompt_ids = self.encode_prompts(prompts)
        if not prompt_ids:
            return []
        rows = [x for x in prompt_ids for _ in range(n)]
        new_l, lp_l, stops = self._sample_rows(rows, params)
        groups: list[CompletionGroup] = []
        for i, prompt in enumerate(prompts):
            comps = []
            for j in range(n):
                r = i * n + j
                ids, text, finish = split_completion(self.tokenizer, new_l[r], stops)
                lps = lp_l[r][:len(ids)] if lp_l is not None else None
                comps.append(Completion(text=text, token_ids=ids, logprobs=lps, finish_reason=finish))
            rec = dict(records[i]) if records is not None else {}
            groups.append(CompletionGroup(prompt=prompt, prompt_text=texts[i], prompt_ids=prompt_ids[i],
                                          completions=comps, record=rec))
        return groups

    @torch.no_grad()
    def continue_ids(self, rows: Sequence[Sequence[int]], *, stop_strings: Sequence[str] = (),
                     **params: Any) -> list[Completion]:
        if not rows:
            return []
        new_l, lp_l, stops = self._sample_rows([list(r) for r in rows], params, stop_strings)
        return [finish_turn(self.tokenizer, new_l[r], lp_l[r] if lp_l is not None else None, stops, stop_strings)
                for r in range(len(rows))]

    def _sample_rows(self, rows: list[list[int]], params: dict[str, Any], stop_strings: Sequence[str] = ()
                     ) -> tuple[list[list[int]], list[list[float]] | None, list[int]]:
        """One `model.generate` over left-padded `rows`: (new ids per row, their log-probs or None, stop ids)."""
        p = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        pad = self.tokenizer.pad_token_id
        stops = stop_token_ids(self.tokenizer, self.model)
        input_ids, attention = left_pad(rows, pad, next(self.model.parameters()).device)
        width = input_ids.shape[1]
        greedy = float(p["temperature"]) == 0.0
        recorder = SampledLogprobs() if self.return_logprobs and not greedy else None
        gen = sampling_config(self.model, temperature=float(p["temperature"]), top_p=float(p["top_p"]),
                              top_k=int(p["top_k"]), max_new_tokens=int(p["max_new_tokens"]), pad_id=pad, stops=stops,
                              greedy=greedy)
        procs = [] if greedy else warpers(float(p["temperature"]), int(p["top_k"]), float(p["top_p"]))
        if recorder is not None:
            procs.append(recorder)
        criteria = [StopOnStrings(self.tokenizer, stop_strings, width)] if stop_strings else None
        with eval_mode(self.model), own_generation_config(self.model, gen):
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=gen,
                                      logits_processor=procs or None, stopping_criteria=criteria)
        new = out[:, width:]
        lp = recorder.finish(new) if recorder is not None else None
        return new.tolist(), (lp.tolist() if lp is not None else None), stops


class StopOnStrings(StoppingCriteria):
    """A stopping criterion: a row is done once one of `stop_strings` appears in its new text. Each
    step decodes only the last few new tokens of each row (a stop string completed by this step's
    token lies within them), so the check costs the same at every length."""

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str], prompt_width: int):
        self.tokenizer = tokenizer
        self.stops = [s for s in stop_strings if s]
        # Every token decodes to at least one character, except special or empty ones: a margin of 4.
        self.window = max(len(s) for s in self.stops) + 4 if self.stops else 0
        self.width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        new = input_ids[:, self.width:]
        tail = new[:, -self.window:].tolist() if self.window else [[] for _ in range(len(new))]
        done = [any(s in self.tokenizer.decode(t, skip_special_tokens=False) for s in self.stops) for t in tail]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def left_pad(rows: Sequence[Sequence[int]], pad: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in rows)
    ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in rows], device=device)
    att = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in rows], device=device)
    return ids, att


def sampling_config(model: Any, *, temperature: float | None, top_p: float | None, top_k: int | None,
                    max_new_tokens: int, pad_id: int, stops: list[int], greedy: bool = False) -> Any:
    """A GenerationConfig with every logits processor set by us. A checkpoint's own
    generation_config.json (Qwen2.5-Instruct ships repetition_penalty 1.1, top_k 20, top_p 0.8) would
    otherwise reshape the distribution the tokens are drawn from, and the trainer's log-probs of
    logits / temperature would no longer be the sampler's."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    kw: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=stops,
                              bos_token_id=getattr(base, "bos_token_id", None), num_beams=1, use_cache=True)
    if greedy:
        return GenerationConfig(do_sample=False, **kw)
    # The warpers themselves come from `warpers()`, as explicit logits processors: `generate` runs
    # the processors it is given *before* the warpers it builds, and the log-prob recorder must see
    # the scores after temperature, top-k and top-p.
    return GenerationConfig(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, **kw)


def warpers(temperature: float, top_k: int, top_p: float) -> list[Any]:
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    out: list[Any] = []
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k:
        out.append(TopKLogitsWarper(top_k=top_k))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p))
    return out


@contextlib.contextmanager
def own_generation_config(model: Any, gen: Any) -> Iterator[None]:
    """`generate` fills fields a passed config leaves at their defaults from `model.generation_config`
    (the checkpoint's); swapping that out for the call makes the passed config the whole truth."""
    old = getattr(model, "generation_config", None)
    model.generation_config = gen
    try:
        yield
    finally:
        model.generation_config = old


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


class SampledLogprobs:
    """A logits processor placed after the sampling warpers: it sees the processed scores each token
    is drawn from. It keeps only the last step's log-softmax and, one step later (when the sampled
    token is the last input id), the log-prob of that token: (rows x vocab) floats at any time."""

    def __init__(self) -> None:
        self.prev: torch.Tensor | None = None
        self.cols: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.prev is not None:
            self.cols.append(self.prev.gather(-1, input_ids[:, -1:]).squeeze(-1))
        self.prev = scores.float().log_softmax(-1)
        return scores

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """(rows, generated) log-probs; `new_tokens` are the generated ids."""
        if self.prev is not None and len(self.cols) < new_tokens.shape[1]:
            self.cols.append(self.prev.gather(-1, new_tokens[:, len(self.cols):len(self.cols) + 1]).squeeze(-1))
        self.prev = None
        if not self.cols:
            return torch.zeros(new_tokens.shape, dtype=torch.float)
        return torch.stack(self.cols, dim=1)
