"""Any verifier as a TRL reward function, synchronous or `async def`.

TRL's `GRPOTrainer` (checked against trl 1.16, `_calculate_rewards`) calls every reward function as
`f(prompts=..., completions=..., completion_ids=..., **columns, trainer_state=..., log_extra=...,
log_metric=...)`: one entry per completion in each list, every dataset column but `prompt` repeated
per completion. A completion is a string, or a list of messages in the conversational format. It
takes one float per completion and turns None into NaN, which leaves the sample out of the group
mean (`nanmean`); a sample every reward function left at None gets no advantage. An async reward
function (`is_async_callable`: an `async def __call__` counts) runs on TRL's event loop together
with the other async ones.

    from grpo_fast.rewards import make_reward
    trainer = GRPOTrainer(..., reward_funcs=[make_reward("math"), make_reward("format", asynchronous=True)])
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.rewards.math import completion_text
from grpo_fast.trainer.prompt_data import ANSWER_FIELDS
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem

# Keyword arguments TRL passes that are not dataset columns.
TRL_EXTRAS = ("completion_ids", "trainer_state", "log_extra", "log_metric", "environments")


def reward_name(verifier: str | Sequence[str] | Verifier) -> str:
    """The name TRL logs a reward under (`rewards/<name>/mean`): the verifier names without weights,
    `+`-joined (`math=0.9,format=0.1` -> `math+format`; `pkg.mod:exact` -> `exact`)."""
    if isinstance(verifier, Verifier):
        return re.sub(r"=[^+]*", "", str(getattr(verifier, "name", type(verifier).__name__)))
    specs = [verifier] if isinstance(verifier, str) else list(verifier)
    names = [
        part.split("=")[0].strip().rsplit(":", 1)[-1]
        for spec in specs
        for part in spec.split(",")
        if part.strip()
    ]
    return "+".join(names) or "reward"


def completion_records(
    n: int, columns: dict[str, Any], gold_column: str | None = None
) -> list[dict[str, Any]]:
    """One record per completion from TRL's column lists: column values at index i (a value that is
    not a list of n is the same for all). The gold answer is `answer`; when the data set keeps it
    elsewhere (`gold_column`, else the first of `solution`, `gold`, `ground_truth`, `target`) it is
    copied to `answer` too, so every verifier finds it where it looks."""
    per_item: dict[str, Any] = {}
    shared: dict[str, Any] = {}
    for key, values in columns.items():
        if key in TRL_EXTRAS:
            continue
        if isinstance(values, (list, tuple)) and len(values) == n:
            per_item[key] = values
        else:
            shared[key] = values
    if gold_column is not None and gold_column not in per_item and gold_column not in shared:
        raise ConfigError(
            f"no dataset column {gold_column!r} for the gold answers; the columns are: "
            f"{', '.join(sorted(columns)) or 'none'}",
            field=gold_column,
        )
    records = []
    for i in range(n):
        rec = dict(shared)
        for key, values in per_item.items():
            rec[key] = values[i]
        source = gold_column or next((c for c in ANSWER_FIELDS if c in rec), None)
        if source is not None and source != "answer":
            rec["answer"] = rec[source]
        records.append(rec)
    return records


class VerifierReward:
    """A verifier as a TRL reward function. `verifier` is a spec as `--verifier` takes it (`"math"`,
    `"math=0.9,format=0.1"`, `"pkg.mod:attr"`, a list of them) or a Verifier instance; `options`
    (timeout, workers, ...) go to the verifiers that take them, as in `build_verifier`. Built on the
    first call, so an instance made from a spec pickles as its spec.

    name: what TRL logs the reward as (default from the verifier names: `math`, `math+format`).
    none_score: the reward for "no verdict" (timeout, missing gold, sandbox error); None (default)
        lets TRL leave the sample out of the reward statistics.
    gold_column: the dataset column holding the gold answer when it is neither `answer` nor one of
        `solution`, `gold`, `ground_truth`, `target`.
    log: with TRL's `log_metric` / `log_extra` hooks, log `rewards/<name>/verification_rate` (share
        of completions with a verdict) and add `<name>_reason` and `<name>_extracted` columns to
        the completions table.
    """

    def __init__(
        self,
        verifier: str | Sequence[str] | Verifier = "math",
        *,
        name: str | None = None,
        none_score: float | None = None,
        gold_column: str | None = None,
        log: bool = True,
        **options: Any,
    ):
        if isinstance(verifier, Verifier):
            self._spec: str | list[str] | None = None
            self._verifier: Verifier | None = verifier
        else:
            self._spec = verifier if isinstance(verifier, str) else list(verifier)
            self._verifier = None
        self._options = options
        if none_score is not None and not 0.0 <= none_score <= 1.0:
            raise ConfigError(f"none_score must be in [0, 1] or None, got {none_score}", field="none_score")
        self.none_score = none_score
        self.gold_column = gold_column
        self.log = log
        self.__name__ = name or reward_name(verifier)
        self._lock = threading.Lock()

    @property
    def verifier(self) -> Verifier:
        """The verifier, built from the spec on first use (unknown names fail here)."""
        with self._lock:
            if self._verifier is None:
                from grpo_fast.verifiers import build_verifier

                assert self._spec is not None
                self._verifier = build_verifier(self._spec, **self._options)
            return self._verifier

    def verdicts(
        self, prompts: Sequence[Any] | None, completions: Sequence[Any], columns: dict[str, Any]
    ) -> list[Verdict]:
        """The verifier's verdict of each completion (the work `__call__` does before the rewards)."""
        n = len(completions)
        prompt_list = list(prompts) if prompts is not None else [""] * n
        if len(prompt_list) != n:
            raise ConfigError(f"{self.__name__}: {len(prompt_list)} prompts for {n} completions")
        records = completion_records(n, columns, self.gold_column)
        items = [
            VerifyItem(p if isinstance(p, str) else completion_text(p), completion_text(c), rec)
            for p, c, rec in zip(prompt_list, completions, records, strict=True)
        ]
        verdicts = self.verifier.verify_batch(items)
        if len(verdicts) != n:
            raise ConfigError(
                f"verifier {self.__name__} returned {len(verdicts)} verdicts for {n} completions"
            )
        return verdicts

    def _score(
        self, prompts: Sequence[Any] | None, completions: Sequence[Any] | None, kwargs: dict[str, Any]
    ) -> list[float | None]:
        if completions is None:
            raise ConfigError(f"{self.__name__} needs `completions` (TRL passes them by keyword)")
        verdicts = self.verdicts(prompts, list(completions), kwargs)
        if self.log:
            self._log(verdicts, kwargs)
        return [float(v.score) if v.score is not None else self.none_score for v in verdicts]

    def _log(self, verdicts: list[Verdict], kwargs: dict[str, Any]) -> None:
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        if callable(log_metric) and verdicts:
            rate = sum(v.score is not None for v in verdicts) / len(verdicts)
            log_metric(f"rewards/{self.__name__}/verification_rate", rate)
        if callable(log_extra):
            log_extra(f"{self.__name__}_reason", [v.reason for v in verdicts])
            log_extra(f"{self.__name__}_extracted", [v.extracted for v in verdicts])

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        return self._score(prompts, completions, kwargs)

    def close(self) -> None:
        """Release the verifier's workers and sockets (if this reward built it)."""
        with self._lock:
            if self._verifier is not None and self._spec is not None:
                self._verifier.close()
                self._verifier = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)
        if self._spec is not None:
            state["_verifier"] = None  # rebuilt from the spec where it is unpickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._spec or self._verifier!r}, name={self.__name__!r})"


class AsyncVerifierReward(VerifierReward):
    """The same reward as an `async def`: verification runs in a worker thread, so TRL's event loop
    runs the other async reward functions (an LLM judge, a remote sandbox) meanwhile."""

    async def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        return await asyncio.to_thread(self._score, prompts, completions, kwargs)


def make_reward(
    verifier: str | Sequence[str] | Verifier = "math", *, asynchronous: bool = False, **kwargs: Any
) -> VerifierReward:
    """A TRL reward function over `verifier` (see `VerifierReward` for the options); `asynchronous`
    gives the `async def` form."""
    cls = AsyncVerifierReward if asynchronous else VerifierReward
    return cls(verifier, **kwargs)
