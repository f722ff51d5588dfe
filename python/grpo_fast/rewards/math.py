"""The math verifier as a TRL reward function (`GRPOTrainer(reward_funcs=[math_reward])`).

TRL calls `reward_func(prompts=..., completions=..., **dataset_columns)` and expects one float
per completion; `None` marks "no reward for this sample" (TRL turns it into NaN and leaves it out).
A completion is a string (standard format) or a list of messages (conversational format).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.verifiers.math import MathVerifier, gold_text

_default: MathVerifier | None = None
_default_lock = threading.Lock()


def _verifier() -> MathVerifier:
    global _default
    with _default_lock:
        if _default is None:
            _default = MathVerifier()
        return _default


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the content of the last assistant message of a
    conversational completion (`[{"role": "assistant", "content": ...}]`)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        content = completion.get("content")
        return content if isinstance(content, str) else _content_text(content)
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        if assistant:
            return completion_text(assistant[-1])
        if messages:
            return completion_text(messages[-1])
    return ""


def _content_text(content: Any) -> str:
    # Multimodal messages carry a list of parts: [{"type": "text", "text": ...}, ...].
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def make_math_reward(verifier: MathVerifier | None = None, none_score: float | None = None):
    """A reward function over `verifier` (default: a shared MathVerifier). `none_score` replaces
    "no verdict" (timeout, missing gold); keep None to let TRL skip such samples."""

    def math_reward(
        prompts: list | None = None,
        completions: list | None = None,
        answer: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if completions is None:
            raise ConfigError("math_reward needs `completions`")
        if answer is None:
            answer = kwargs.get("solution")
        if answer is None:
            raise ConfigError(
                "math_reward needs the gold answers: a dataset column named `answer` (or `solution`)"
            )
        if len(answer) != len(completions):
            raise ConfigError(f"math_reward got {len(answer)} answers for {len(completions)} completions")
        v = verifier or _verifier()
        verdicts = v.verify_pairs([gold_text(a) for a in answer], [completion_text(c) for c in completions])
        return [vd.score if vd.score is not None else none_score for vd in verdicts]

    return math_reward


math_reward = make_math_reward()
math_reward.__doc__ = """TRL reward function: 1.0 when the completion's final answer equals `answer`, else 0.0;
None when there is no verdict (symbolic check timed out, gold missing). Signature:
`math_reward(prompts, completions, answer, **kwargs) -> list[float | None]`."""
