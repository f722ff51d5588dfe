"""Sampling with vLLM (GPU). vllm is imported only when a `VLLMSampler` is built, so CPU-only
installs never need it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grpo_fast.sampler.base import (
    Completion,
    CompletionGroup,
    Prompt,
    Sampler,
    format_prompt,
    split_completion,
)


def vllm_available() -> bool:
    """True when vllm imports and a CUDA device is visible."""
    try:
        import torch
        import vllm  # noqa: F401
    except Exception:
        return False
    return torch.cuda.is_available()


class VLLMSampler(Sampler):
    """Wraps `vllm.LLM`. `model` is a path or Hub id; after each optimiser step the trainer calls
    `update_weights(policy)` to load the policy's weights into the engine in place."""

    def __init__(self, model: str, tokenizer: Any, *, max_new_tokens: int = 256, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, use_chat_template: bool = True,
                 max_prompt_length: int | None = None, gpu_memory_utilization: float = 0.5, seed: int = 0,
                 **llm_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as exc:
            from grpo_fast.errors import ConfigError

            raise ConfigError("the vLLM sampler needs `pip install grpo-fast[vllm]` and a CUDA GPU",
                              field="sampler") from exc
        self.llm = LLM(model=model, gpu_memory_utilization=gpu_memory_utilization, seed=seed, **llm_kwargs)
        self.tokenizer = tokenizer
        self.defaults = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k)
        self.use_chat_template = use_chat_template
        self.max_prompt_length = max_prompt_length

    def generate(self, prompts: Sequence[Prompt], n: int, records: Sequence[dict] | None = None,
                 **params: Any) -> list[CompletionGroup]:
        from vllm import SamplingParams

        p = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        sp = SamplingParams(n=n, temperature=p["temperature"], top_p=p["top_p"],
                            top_k=p["top_k"] if p["top_k"] > 0 else -1, max_tokens=p["max_new_tokens"],
                            logprobs=0)
        texts = [format_prompt(self.tokenizer, q, self.use_chat_template) for q in prompts]
        has_template = getattr(self.tokenizer, "chat_template", None) is not None
        ids = [self.tokenizer(t, add_special_tokens=not has_template)["input_ids"] for t in texts]
        if self.max_prompt_length:
            ids = [x[-self.max_prompt_length:] for x in ids]
        outs = self.llm.generate([{"prompt_token_ids": x} for x in ids], sp, use_tqdm=False)
        stops = [self.tokenizer.eos_token_id]
        groups = []
        for i, out in enumerate(outs):
            comps = []
            for c in out.outputs:
                toks = list(c.token_ids)
                lps = [next(iter(d.values())).logprob if d else 0.0 for d in (c.logprobs or [])]
                # logprobs=0 returns the sampled token's log-prob; look it up by id when present.
                if c.logprobs:
                    lps = [d[t].logprob if t in d else lp for d, t, lp in zip(c.logprobs, toks, lps, strict=False)]
                # vLLM drops the stop token from token_ids; the text has no special tokens either way.
                _, text, _ = split_completion(self.tokenizer, toks, stops)
                finish = "stop" if c.finish_reason == "stop" else "length"
                comps.append(Completion(text=text, token_ids=toks, logprobs=lps, finish_reason=finish))
            rec = dict(records[i]) if records is not None else {}
            groups.append(CompletionGroup(prompt=prompts[i], prompt_text=texts[i], prompt_ids=ids[i],
                                          completions=comps, record=rec))
        return groups

    def update_weights(self, model: Any) -> None:
        state = model.state_dict()
        engine_model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        engine_model.load_weights(state.items())
