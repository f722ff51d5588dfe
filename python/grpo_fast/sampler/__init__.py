"""Samplers: generate a group of completions per prompt, with token ids and log-probs.

`TransformersSampler` runs anywhere (CPU included); `VLLMSampler` needs vllm and a GPU and is imported
lazily, so importing this package never imports vllm."""

from grpo_fast.sampler.base import Completion, CompletionGroup, Sampler, format_prompt

__all__ = ["Completion", "CompletionGroup", "Sampler", "TransformersSampler", "VLLMSampler", "format_prompt"]


def __getattr__(name: str):
    if name == "TransformersSampler":
        from grpo_fast.sampler.transformers_backend import TransformersSampler

        return TransformersSampler
    if name == "VLLMSampler":
        from grpo_fast.sampler.vllm_backend import VLLMSampler

        return VLLMSampler
    raise AttributeError(name)
