"""Sampling with `transformers`' `model.generate`: left-padded batches, chat templates, per-token
log-probs of the sampled tokens. Works on CPU; the trainer shares the policy object with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from grpo_fast.sampler.base import (
    Completion,
    CompletionGroup,
    Prompt,
    Sampler,
    format_prompt,
    split_completion,
    stop_token_ids,
)


class TransformersSampler(Sampler):
    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 256, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, use_chat_template: bool = True,
                 max_prompt_length: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.defaults = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k)
        self.use_chat_template = use_chat_template
        self.max_prompt_length = max_prompt_length
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    def encode_prompts(self, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        texts = [format_prompt(self.tokenizer, p, self.use_chat_template) for p in prompts]
        # A chat template already carries the BOS token as text; adding it again would double it.
        has_template = getattr(self.tokenizer, "chat_template", None) is not None
        ids = [self.tokenizer(t, add_special_tokens=not has_template)["input_ids"] for t in texts]
        if self.max_prompt_length:
            ids = [x[-self.max_prompt_length:] for x in ids]  # keep the end: it holds the question
        return texts, ids

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], n: int, records: Sequence[dict] | None = None,
                 **params: Any) -> list[CompletionGroup]:
        p = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        texts, prompt_ids = self.encode_prompts(prompts)
        if not prompt_ids:
            return []
        pad = self.tokenizer.pad_token_id
        stops = stop_token_ids(self.tokenizer, self.model)
        width = max(len(x) for x in prompt_ids)
        device = next(self.model.parameters()).device
        rows = [x for x in prompt_ids for _ in range(n)]
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in rows], device=device)
        attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in rows], device=device)

        was_training = self.model.training
        self.model.eval()
        try:
            out = self.model.generate(
                input_ids=input_ids, attention_mask=attention, do_sample=True,
                temperature=float(p["temperature"]), top_p=float(p["top_p"]), top_k=int(p["top_k"]),
                max_new_tokens=int(p["max_new_tokens"]), pad_token_id=pad, eos_token_id=stops,
                output_scores=True, return_dict_in_generate=True,
            )
        finally:
            self.model.train(was_training)
        new = out.sequences[:, width:]
        # Scores are the processed (temperature / top-k / top-p) logits the tokens were drawn from.
        if new.shape[1]:
            steps = torch.stack(out.scores, dim=1).float().log_softmax(-1)
            lp = steps.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        else:
            lp = torch.zeros_like(new, dtype=torch.float)

        groups: list[CompletionGroup] = []
        new_l, lp_l = new.tolist(), lp.tolist()
        for i, prompt in enumerate(prompts):
            comps = []
            for j in range(n):
                r = i * n + j
                ids, text, finish = split_completion(self.tokenizer, new_l[r], stops)
                end = len(ids)
                comps.append(Completion(text=text, token_ids=ids, logprobs=lp_l[r][:end], finish_reason=finish))
            rec = dict(records[i]) if records is not None else {}
            groups.append(CompletionGroup(prompt=prompt, prompt_text=texts[i], prompt_ids=prompt_ids[i],
                                          completions=comps, record=rec))
        return groups
