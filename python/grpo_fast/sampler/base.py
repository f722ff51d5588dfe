"""The sampler interface shared by the transformers and vLLM backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Prompt = str | list[dict[str, str]]  # plain text, or chat messages [{"role": ..., "content": ...}]


@dataclass
class Completion:
    """One sampled completion. `token_ids` include the EOS token when the model stopped by itself;
    `logprobs` are the sampling distribution's log-probs of those tokens (after temperature)."""

    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" (EOS) or "length" (hit max_new_tokens)


@dataclass
class CompletionGroup:
    """All completions of one prompt. `prompt_text` is the prompt after chat formatting;
    `prompt_ids` its tokens (after left truncation), exactly what the model was conditioned on."""

    prompt: Prompt
    prompt_text: str
    prompt_ids: list[int]
    completions: list[Completion]
    record: dict[str, Any] = field(default_factory=dict)


class Sampler(ABC):
    """Generates `n` completions for each prompt."""

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], n: int, **params: Any) -> list[CompletionGroup]:
        """Return one `CompletionGroup` per prompt, in order, each with exactly `n` completions.
        `params` override the sampler's defaults: temperature, top_p, top_k, max_new_tokens."""

    def update_weights(self, model: Any) -> None:  # noqa: B027 - only remote/engine backends need it
        """Make the sampler use the policy's current weights (a no-op when it shares the model)."""


def format_prompt(tokenizer: Any, prompt: Prompt, use_chat_template: bool = True) -> str:
    """Chat messages always go through the tokenizer's chat template; a string does when the tokenizer
    has one and `use_chat_template` is on. The generation prompt (assistant turn opener) is appended."""
    has_template = getattr(tokenizer, "chat_template", None) is not None
    if isinstance(prompt, list):
        if not has_template:
            # No template: join the contents, so a plain LM still sees the text.
            return "\n".join(m.get("content", "") for m in prompt)
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    if use_chat_template and has_template:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """The tokenizer's EOS plus any extra end tokens in the model's generation config (chat models
    often end a turn with a token other than the tokenizer's EOS)."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for t in gen if isinstance(gen, (list, tuple)) else ([gen] if gen is not None else []):
        if int(t) not in ids:
            ids.append(int(t))
    return ids


def split_completion(tokenizer: Any, token_ids: list[int], stop_ids: list[int]) -> tuple[list[int], str, str]:
    """Cut generated ids after the first stop token; return (ids incl. the stop token, text, finish_reason).

    The text is decoded *with* special tokens (only the stop token is left out): a policy must not earn
    reward by emitting a pad/unk/bos token that a `skip_special_tokens` decode would hide."""
    end = next((i for i, t in enumerate(token_ids) if t in stop_ids), None)
    if end is None:
        ids, finish = list(token_ids), "length"
        body = ids
    else:
        ids, finish = list(token_ids[:end + 1]), "stop"
        body = ids[:-1]
    return ids, tokenizer.decode(body, skip_special_tokens=False), finish
