"""The code verifier as a TRL reward function (`GRPOTrainer(reward_funcs=[code_reward])`).

TRL passes the dataset's columns as keyword lists, so a `tests` column arrives as one entry per
completion (see docs/sandbox.md for its shapes; `entry_point` and friends are read too). A
completion is a string or a list of messages; the program is its last fenced python block.
"""

from __future__ import annotations

import threading
from typing import Any

from grpo_fast.rewards.math import completion_text
from grpo_fast.verifiers.base import VerifyItem
from grpo_fast.verifiers.code import CodeVerifier

_default: CodeVerifier | None = None
_default_lock = threading.Lock()

# Dataset columns that belong to a code record and are handed to the verifier with `tests`.
_RECORD_COLUMNS = ("entry_point", "test_setup_code", "test_imports")


def _verifier() -> CodeVerifier:
    global _default
    with _default_lock:
        if _default is None:
            _default = CodeVerifier()
        return _default


def make_code_reward(verifier: CodeVerifier | None = None, none_score: float | None = 0.0):
    """A reward function over `verifier` (default: a shared CodeVerifier on the local daemon).
    `none_score` replaces "no verdict" (no tests, sandbox error); None lets TRL skip the sample."""

    def code_reward(
        prompts: list | None = None, completions: list | None = None, tests: list | None = None, **kwargs: Any
    ) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        if tests is None:
            tests = [None] * n
        prompts = list(prompts) if prompts is not None else [""] * n
        items = []
        for i, completion in enumerate(completions):
            record: dict[str, Any] = {"tests": tests[i]}
            for col in _RECORD_COLUMNS:
                values = kwargs.get(col)
                if isinstance(values, list) and i < len(values):
                    record[col] = values[i]
            prompt = prompts[i] if i < len(prompts) else ""
            items.append(
                VerifyItem(
                    completion_text(prompt) if not isinstance(prompt, str) else prompt,
                    completion_text(completion),
                    record,
                )
            )
        verdicts = (verifier or _verifier()).verify_batch(items)
        return [v.score if v.score is not None else none_score for v in verdicts]

    return code_reward


code_reward = make_code_reward()
