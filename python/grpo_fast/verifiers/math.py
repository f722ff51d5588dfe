"""The `math` verifier: is the final answer of a response equal to the gold answer?

Pipeline: extraction, normalisation and the exact/numeric fast path run in Rust
(`grpo_fast._native.math_check_batch`, GIL released, parallel); only the answers it cannot
decide go to sympy in worker processes with a hard per-item deadline (`_workers.WorkerPool`).
See docs/verifiers.md for the rules.
"""

from __future__ import annotations

import json
import numbers
import threading
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from grpo_fast import _native
from grpo_fast.errors import ConfigError
from grpo_fast.verifiers._workers import DIFFERENT, EQUAL, TIMEOUT, WorkerPool
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, register_verifier

# Verdict codes of the Rust fast path (rust/math/src/lib.rs `Verdict`).
WRONG, CORRECT, UNDECIDED, NO_ANSWER, NO_GOLD = 0, 1, 2, -1, -2

_CACHE_SIZE = 65536


def gold_text(answer: Any) -> str | None:
    """The gold answer of a record as text, for the extractor (rust/math/src/extract.rs).

    Strings are kept as stored (a GSM8K or MATH solution is read by the extractor); numbers as
    written (`72`, `0.5`, not `72.0` for an int); NumPy and other scalar types (pandas and
    Parquet readers hand those out) as the Python number they hold; a list or tuple as several
    answers (`[1, -2]` is `1, -2`, one answer set); bytes as UTF-8. None, an empty string and an
    empty list are no gold.
    """
    if answer is None:
        return None
    if isinstance(answer, str):
        return answer
    if isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, int):
        return str(answer)
    if isinstance(answer, float):
        # `72.0` from a float column is the integer 72; repr keeps every other float exact.
        return str(int(answer)) if answer.is_integer() and abs(answer) < 1e16 else repr(answer)
    if isinstance(answer, (bytes, bytearray)):
        return bytes(answer).decode("utf-8", errors="replace")
    if isinstance(answer, (list, tuple)):
        parts = [gold_text(a) for a in answer]
        joined = ", ".join(p for p in parts if p)
        return joined or None
    item = getattr(answer, "item", None)
    if callable(item) and getattr(answer, "shape", None) == ():
        # A NumPy scalar (or a 0-d array): its Python value.
        return gold_text(item())
    if isinstance(answer, (numbers.Number, Fraction, Decimal)):
        return str(answer)
    if hasattr(answer, "tolist"):
        # A NumPy array of answers.
        return gold_text(answer.tolist())
    return json.dumps(answer, default=str)


@register_verifier("math")
class MathVerifier(Verifier):
    """Scores 1.0 when the response's final answer equals the record's gold answer, else 0.0.

    answer_field: the record field holding the gold answer (GSM8K `#### 72`, a MATH solution
        with `\\boxed{}`, bare LaTeX, or a number).
    timeout: seconds allowed per symbolic comparison; an overrun is a `timeout` verdict with
        score None (no verdict: the trainer excludes it), never a silent 0.
    workers: symbolic worker processes (default: all cores).
    last_number_fallback: `auto` (use the last number of a response without a marked answer
        only when the gold is a plain number), `always` or `never`.
    memory_mb: address-space limit of each worker process.
    eager_workers: spawn the workers now, in the background (for long runs such as the CLI);
        by default they start on the first item that needs them.
    """

    name = "math"

    def __init__(
        self,
        answer_field: str = "answer",
        timeout: float = 3.0,
        workers: int | None = None,
        last_number_fallback: str = "auto",
        memory_mb: int = 2048,
        eager_workers: bool = False,
    ):
        if last_number_fallback not in ("auto", "always", "never"):
            raise ConfigError(f"last_number_fallback must be auto, always or never, not {last_number_fallback!r}")
        self.answer_field = answer_field
        self.last_number_fallback = last_number_fallback
        self.timeout = float(timeout)
        self._pool_args = {"workers": workers, "timeout": self.timeout, "memory_mb": memory_mb}
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()
        # Symbolic results by (gold, answer); timeouts are not cached (a retry may succeed).
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.stats = {"fast": 0, "symbolic": 0, "timeouts": 0}
        if eager_workers:
            self.pool.prestart()

    @property
    def pool(self) -> WorkerPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = WorkerPool(**self._pool_args)
            return self._pool

    def start_workers(self) -> None:
        """Start the symbolic workers now and wait until they are ready (otherwise they start on
        the first item that needs it, which then waits ~0.5 s for sympy to import)."""
        self.pool.start()

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        golds = [gold_text(it.record.get(self.answer_field)) for it in items]
        return self.verify_pairs(golds, [it.response for it in items])

    def verify_pairs(self, golds: Sequence[str | None], responses: Sequence[str]) -> list[Verdict]:
        """The core: gold answers (as stored) against responses, one Verdict each."""
        n = len(responses)
        if len(golds) != n:
            raise ConfigError(f"{len(golds)} gold answers for {n} responses")
        codes, extracted, normalized, gold_norm, sources = _native.math_check_batch(
            [g or "" for g in golds], [r if isinstance(r, str) else "" for r in responses], self.last_number_fallback
        )
        verdicts: list[Verdict | None] = [None] * n
        todo: dict[tuple[str, str], list[int]] = {}
        for i in range(n):
            code = int(codes[i])
            details = {"source": sources[i], "path": "fast"} if sources[i] else None
            if golds[i] is None or code == NO_GOLD:
                verdicts[i] = Verdict(None, None, "no_gold", extracted[i], details)
            elif code == NO_ANSWER:
                verdicts[i] = Verdict(0.0, False, "no_answer", None, None)
            elif code == CORRECT:
                verdicts[i] = Verdict(1.0, True, "correct", extracted[i], details)
            elif code == WRONG:
                verdicts[i] = Verdict(0.0, False, "wrong", extracted[i], details)
            else:
                todo.setdefault((gold_norm[i], normalized[i]), []).append(i)
        self.stats["fast"] += n - sum(len(v) for v in todo.values())
        if todo:
            self._symbolic(todo, verdicts, extracted, sources)
        return [v if v is not None else Verdict(None, None, "error", None, None) for v in verdicts]

    def _symbolic(self, todo, verdicts, extracted, sources) -> None:
        keys = list(todo)
        outcomes: dict[tuple[str, str], tuple[str, str]] = {}
        with self._cache_lock:
            for k in keys:
                if k in self._cache:
                    self._cache.move_to_end(k)
                    outcomes[k] = (EQUAL if self._cache[k] else DIFFERENT, "")
        missing = [k for k in keys if k not in outcomes]
        if missing:
            for k, res in zip(missing, self.pool.map(missing), strict=False):
                outcomes[k] = res
                if res[0] in (EQUAL, DIFFERENT):
                    with self._cache_lock:
                        self._cache[k] = res[0] == EQUAL
                        if len(self._cache) > _CACHE_SIZE:
                            self._cache.popitem(last=False)
        for k, idx in todo.items():
            status, msg = outcomes[k]
            for i in idx:
                details = {"source": sources[i], "path": "symbolic"}
                if msg:
                    details["message"] = msg
                self.stats["symbolic"] += 1
                if status == EQUAL:
                    verdicts[i] = Verdict(1.0, True, "correct", extracted[i], details)
                elif status == DIFFERENT:
                    verdicts[i] = Verdict(0.0, False, "wrong", extracted[i], details)
                elif status == TIMEOUT:
                    self.stats["timeouts"] += 1
                    verdicts[i] = Verdict(None, None, "timeout", extracted[i], details)
                else:
                    verdicts[i] = Verdict(None, None, "error", extracted[i], details)

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def check(gold: Any, response: str, **kwargs: Any) -> Verdict:
    """Convenience: one gold against one response with a throwaway verifier."""
    with MathVerifier(**kwargs) as v:
        return v.verify_pairs([gold_text(gold)], [response])[0]
