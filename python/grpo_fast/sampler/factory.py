"""Builds a sampler by name: the one place that knows which backends exist. Trainer, `generate`
and `eval` all come through here, so `--sampler vllm` means the same thing everywhere."""

from __future__ import annotations

import tempfile
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.sampler.base import Sampler

SAMPLERS = ("transformers", "vllm")
VLLM_MODES = ("colocate", "server")


def build_sampler(kind: str, *, model: Any, tokenizer: Any, model_path: str | None = None,
                  max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                  use_chat_template: bool = True, max_prompt_length: int | None = None, seed: int = 0,
                  return_logprobs: bool = True, vllm_mode: str = "colocate",
                  vllm_server_url: str = "http://127.0.0.1:8000", vllm_server_timeout: float = 600.0,
                  vllm_gpu_memory_utilization: float = 0.3, vllm_enable_sleep_mode: bool = False,
                  vllm_dtype: str = "auto", vllm_max_model_len: int | None = None,
                  vllm_kwargs: dict[str, Any] | None = None) -> Sampler:
    """`model` is the policy object (the transformers sampler runs it; the vLLM samplers get its
    weights after each step); `model_path` is where a colocated vLLM engine loads its first weights
    from. Without a path (a policy built in memory) the policy is saved to a temporary folder first."""
    common = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                  use_chat_template=use_chat_template, max_prompt_length=max_prompt_length)
    if kind == "transformers":
        from grpo_fast.sampler.transformers_backend import TransformersSampler

        return TransformersSampler(model, tokenizer, return_logprobs=return_logprobs, **common)
    if kind != "vllm":
        raise ConfigError(f"sampler: unknown sampler {kind!r}; choose one of {', '.join(SAMPLERS)}", field="sampler")
    if vllm_mode not in VLLM_MODES:
        raise ConfigError(f"vllm_mode: must be one of {', '.join(VLLM_MODES)}, got {vllm_mode!r}", field="vllm_mode")
    from grpo_fast.sampler.base import stop_token_ids
    from grpo_fast.sampler.vllm_backend import VLLMSampler, VLLMServerSampler

    stops = stop_token_ids(tokenizer, model)
    if vllm_mode == "server":
        return VLLMServerSampler(vllm_server_url, tokenizer, timeout=vllm_server_timeout, stop_ids=stops, **common)
    from grpo_fast.sampler.vllm_engine import import_vllm

    import_vllm()  # a clear error before anything is written
    path = model_path
    tmp = None
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="grpo-fast-policy-")
        model.save_pretrained(tmp.name)
        tokenizer.save_pretrained(tmp.name)
        path = tmp.name
    kwargs = dict(vllm_kwargs or {})
    # On CPU, vLLM's compiled graphs take minutes to build for seconds of decoding: run eagerly.
    kwargs.setdefault("enforce_eager", not _cuda())
    try:
        sampler = VLLMSampler(path, tokenizer, gpu_memory_utilization=vllm_gpu_memory_utilization,
                              enable_sleep_mode=vllm_enable_sleep_mode, dtype=vllm_dtype, seed=seed,
                              max_model_len=vllm_max_model_len, stop_ids=stops, **common, **kwargs)
    except BaseException:
        if tmp is not None:
            tmp.cleanup()
        raise
    sampler.owned_dir = tmp  # removed when the sampler closes
    return sampler


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
