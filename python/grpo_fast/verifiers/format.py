"""The `format` verifier: does a response follow the expected layout (reasoning inside
`<think>...</think>`, then a final answer in `\\boxed{}`)? Usually a small weight beside `math`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from grpo_fast import _native
from grpo_fast.errors import ConfigError
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, register_verifier


@register_verifier("format")
class FormatVerifier(Verifier):
    """Score 1.0 when the response has the format, else 0.0.

    think_tags: (open, close) tags that must wrap the reasoning, once, at the start; None to skip.
    require_answer: a final answer must follow the reasoning: `\\boxed{}` by default, or any
        answer the math extractor finds (`answer_source="any"`).
    pattern: a regular expression the whole response must match instead (overrides the above).
    """

    name = "format"
    # A well-formatted wrong answer is not correct, nor a right answer without <think> wrong: in a
    # composite, `correct` comes from the other parts.
    judges_correctness = False

    def __init__(
        self,
        think_tags: tuple[str, str] | None = ("<think>", "</think>"),
        require_answer: bool = True,
        answer_source: str = "boxed",
        pattern: str | None = None,
    ):
        if answer_source not in ("boxed", "any"):
            raise ConfigError(f"answer_source must be boxed or any, not {answer_source!r}")
        try:
            self.pattern = re.compile(pattern, re.DOTALL) if pattern else None
        except re.error as exc:
            raise ConfigError(f"bad format pattern {pattern!r}: {exc}") from exc
        self.think_tags = think_tags
        self.require_answer = require_answer
        self.answer_source = answer_source

    def _check(self, text: str) -> tuple[bool, str, str | None]:
        if self.pattern is not None:
            ok = self.pattern.fullmatch(text) is not None
            return ok, "correct" if ok else "bad_format", None
        rest = text
        if self.think_tags:
            open_tag, close_tag = self.think_tags
            stripped = text.lstrip()
            if not stripped.startswith(open_tag) or stripped.count(open_tag) != 1 or stripped.count(close_tag) != 1:
                return False, "no_think", None
            body, _, rest = stripped[len(open_tag) :].partition(close_tag)
            if not body.strip():
                return False, "empty_think", None
        if self.require_answer:
            found = _native.math_extract(rest, False)
            if found is None or (self.answer_source == "boxed" and found[1] != "boxed"):
                return False, "no_answer", None
            return True, "correct", found[0]
        return True, "correct", None

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        out = []
        for it in items:
            ok, reason, extracted = self._check(it.response if isinstance(it.response, str) else "")
            out.append(Verdict(1.0 if ok else 0.0, ok, reason, extracted))
        return out
