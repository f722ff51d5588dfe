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
    `logprobs` are the sampling distribution's log-probs of those tokens (after temperature, top-k
    and top-p), or None when the sampler was not asked for them (greedy decoding, or a sampler that
    shares the trainer's model)."""

    text: str
    token_ids: list[int]
    logprobs: list[float] | None
    finish_reason: str  # "stop" (EOS), "length" (hit max_new_tokens) or "stop_string" (see `continue_ids`)


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
        `params` override the sampler's defaults: temperature, top_p, top_k, max_new_tokens, seed.
        Temperature 0 decodes greedily."""

    def continue_ids(self, rows: Sequence[Sequence[int]], *, stop_strings: Sequence[str] = (),
                     **params: Any) -> list[Completion]:
        """One completion per row of token ids (a prompt plus earlier turns exactly as the model saw
        them, so nothing is re-tokenized), ending at a stop token, at `max_new_tokens`, or at the first
        of `stop_strings` in the new text (finish_reason "stop_string"; the tokens end with the one
        that completes it). `params` as for `generate`. Multi-turn rollouts are built on it."""
        raise NotImplementedError(f"{type(self).__name__} cannot continue from token ids")

    def update_weights(self, model: Any) -> None:  # noqa: B027 - only engine backends need it
        """Make the sampler use the policy's current weights (a no-op when it shares the model).
        The trainer calls it after every optimiser step."""

    def sleep(self) -> None:  # noqa: B027 - only engine backends hold memory of their own
        """Release accelerator memory the sampler holds while the trainer steps (colocated engines)."""

    def wake_up(self) -> None:  # noqa: B027
        """Take the memory back before the next `generate`."""

    def close(self) -> None:  # noqa: B027
        """Stop engines and close connections."""

    def take_stats(self) -> dict[str, float]:
        """Counters the sampler kept since the last call (a tool sampler's tool and wait times), reset."""
        return {}

    @property
    def shares_policy(self) -> bool:
        """True when the sampler runs the trainer's own model object: its log-probs are then the
        trainer's, and no weight sync or mismatch correction is needed."""
        return False


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


def encode_prompts(tokenizer: Any, prompts: Sequence[Prompt], use_chat_template: bool = True,
                   max_prompt_length: int | None = None) -> tuple[list[str], list[list[int]]]:
    """Prompts -> (formatted texts, token ids). Every sampler encodes through here, so a prompt is
    the same tokens whichever backend samples it."""
    texts = [format_prompt(tokenizer, p, use_chat_template) for p in prompts]
    # A chat template already carries the BOS token as text; adding it again would double it.
    has_template = getattr(tokenizer, "chat_template", None) is not None
    ids = [tokenizer(t, add_special_tokens=not has_template)["input_ids"] for t in texts]
    if max_prompt_length:
        ids = [x[-max_prompt_length:] for x in ids]  # keep the end: it holds the question
    return texts, ids


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


def stop_string_end(tokenizer: Any, token_ids: Sequence[int], stop_strings: Sequence[str]) -> int | None:
    """The length of the shortest prefix of `token_ids` whose text contains one of `stop_strings`, or
    None. Found by bisection over full decodes (a prefix's text contains a shorter prefix's text), so it
    is exact for any tokenizer, byte-level and SentencePiece ones included, at log2(n) decodes."""
    if not stop_strings or not token_ids:
        return None

    def has(k: int) -> bool:
        text = tokenizer.decode(list(token_ids[:k]), skip_special_tokens=False)
        return any(s in text for s in stop_strings)

    if not has(len(token_ids)):
        return None
    lo, hi = 1, len(token_ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if has(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def finish_turn(tokenizer: Any, token_ids: Sequence[int], logprobs: Sequence[float] | None,
                stop_ids: Sequence[int], stop_strings: Sequence[str] = ()) -> Completion:
    """A continuation's tokens cut at whichever comes first, a stop token (kept, "stop") or the end of
    a stop string ("stop_string"); else "length". Every backend cuts through here, so the same tokens
    end a turn whichever engine sampled them (an engine may run a token past a stop string)."""
    ids, text, finish = split_completion(tokenizer, list(token_ids), list(stop_ids))
    end = stop_string_end(tokenizer, ids[:-1] if finish == "stop" else ids, stop_strings)
    if end is not None:
        ids, finish = ids[:end], "stop_string"
        text = tokenizer.decode(ids, skip_special_tokens=False)
    lps = list(logprobs[:len(ids)]) if logprobs is not None else None
    return Completion(text=text, token_ids=ids, logprobs=lps, finish_reason=finish)
