"""Any verifier as a verl custom reward function, in verl's single and batched forms, sync and async.

verl (checked against verl-project/verl's reward managers) loads `custom_reward_function.path` /
`.name` (a file path, or `pkg://grpo_fast.rewards.verl`) and calls it with
`custom_reward_function.reward_kwargs` merged in as keyword arguments:

- the naive / dapo / prime managers, one response at a time:
  `compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)`;
- the batch manager (`reward_manager.name=batch`), once per batch with plural names:
  `compute_score_batch(data_sources=..., solution_strs=..., ground_truths=..., extra_infos=...)`,
  one result per response, in order;
- an `async def` function is awaited (the reward loop checks `inspect.iscoroutinefunction`).

A result is a float or a dict with `score`; a dict's other keys go into `reward_extra_info`, one list
per key, so every result carries the same keys (here `score`, `acc`, `verified`, `pred`, `reason`),
none of them None: verl averages numeric keys per data source in validation, skips strings, and
votes with `pred` for its maj@N (the answer's canonical form, so `\\dfrac34` and `\\frac{3}{4}`
vote together). verl has no "no verdict": the reward is a number, so a response the verifier cannot
judge (timeout, missing gold) scores `none_score` (0.0) with `verified` 0.0 and its reason, and
`mean(verified)` is the verification rate.

`ground_truth` (verl's `reward_model.ground_truth`) is the gold: it is put in the record as
`answer` (and `ground_truth`), and as `tests` for the code verifier (a JSON string of test cases is
decoded). `extra_info` supplies the record's other fields. Which verifier judges a response:
the `verifier` keyword (a spec such as `"math"` or `"math=0.9,format=0.1"`, or a dict from
data_source to spec with an optional `"default"`), else `VERL_DATA_SOURCES` (verl's code data sets go
to `code`), else `math`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.evaluation import canonical_answer
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem

# verl's data_source names whose ground truth is test cases (its default scorer sends them to a code
# sandbox); every other data source is judged by `math` unless told otherwise.
VERL_DATA_SOURCES: dict[str, str] = {
    "codecontests": "code",
    "apps": "code",
    "codeforces": "code",
    "taco": "code",
}
DEFAULT_VERIFIER = "math"
# Keys every result dict carries (verl needs the same keys for every response of a batch).
RESULT_KEYS = ("score", "acc", "verified", "pred", "reason")
# Keyword arguments verl's reward loop adds for reward-model scoring, which verifiers do not use.
_VERL_EXTRAS = ("reward_router_address", "reward_model_tokenizer")

_verifiers: dict[tuple[str, str], Verifier] = {}
_verifiers_lock = threading.Lock()


def _verifier(spec: str, options: Mapping[str, Any]) -> Verifier:
    """One verifier per (spec, options) for the life of the process: verl calls once per response."""
    key = (spec, repr(sorted(options.items())))
    with _verifiers_lock:
        v = _verifiers.get(key)
        if v is None:
            from grpo_fast.verifiers import build_verifier

            v = _verifiers[key] = build_verifier(spec, **options)
        return v


def close_verifiers() -> None:
    """Close every verifier this module built (their worker processes and sockets)."""
    with _verifiers_lock:
        for v in _verifiers.values():
            v.close()
        _verifiers.clear()


def spec_for(data_source: Any, verifier: str | Mapping[str, str] | None) -> str:
    """The verifier spec that judges a response of `data_source` (see the module docstring)."""
    source = str(data_source) if data_source is not None else ""
    if isinstance(verifier, str):
        return verifier
    if isinstance(verifier, Mapping):
        if source in verifier:
            return str(verifier[source])
        if "default" in verifier:
            return str(verifier["default"])
    elif verifier is not None:
        raise ConfigError(
            f"verifier must be a spec string or a data_source -> spec mapping, not {type(verifier).__name__}",
            field="verifier",
        )
    return VERL_DATA_SOURCES.get(source, DEFAULT_VERIFIER)


def plain(value: Any) -> Any:
    """numpy arrays and scalars (verl's parquet columns arrive as them) as lists and Python scalars."""
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _tests_value(gold: Any) -> Any:
    # Code data sets in verl keep their tests as JSON text (`{"inputs": [...], "outputs": [...]}`).
    if isinstance(gold, str) and gold.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(gold)
        except ValueError:
            return gold
    return gold


def _gold_fields(v: Verifier) -> tuple[set[str], set[str]]:
    """(answer fields, tests fields) the verifier and its parts read."""
    answers, tests = {"answer"}, {"tests"}
    stack: list[Any] = [v]
    while stack:
        cur = stack.pop()
        if isinstance(cur, tuple):
            stack.extend(x for x in cur if isinstance(x, Verifier))
            continue
        if isinstance(getattr(cur, "answer_field", None), str):
            answers.add(cur.answer_field)
        if isinstance(getattr(cur, "tests_field", None), str):
            tests.add(cur.tests_field)
        stack.extend(getattr(cur, "parts", None) or ())
    return answers, tests


def item_for(v: Verifier, solution_str: Any, ground_truth: Any, extra_info: Any) -> VerifyItem:
    """The VerifyItem of one verl response: `extra_info`'s fields, the gold in the fields `v` reads."""
    record: dict[str, Any] = dict(plain(extra_info)) if isinstance(extra_info, Mapping) else {}
    gold = plain(ground_truth)
    if gold is not None:
        answers, tests = _gold_fields(v)
        record["ground_truth"] = gold
        for f in answers:
            record[f] = gold
        for f in tests:
            record[f] = _tests_value(gold)
    prompt = next(
        (record[f] for f in ("question", "prompt", "problem") if isinstance(record.get(f), str)), ""
    )
    return VerifyItem(prompt, solution_str if isinstance(solution_str, str) else "", record)


def result(verdict: Verdict, none_score: float, as_dict: bool = True) -> dict[str, Any] | float:
    """verl's form of a verdict: `{"score", "acc", "verified", "pred", "reason"}` (or the score)."""
    score = float(verdict.score) if verdict.score is not None else none_score
    if not as_dict:
        return score
    return {
        "score": score,
        "acc": 1.0 if verdict.correct else 0.0,
        "verified": 1.0 if verdict.score is not None else 0.0,
        "pred": canonical_answer(verdict.extracted) if isinstance(verdict.extracted, str) else "",
        "reason": str(verdict.reason),
    }


def _check_none_score(none_score: Any) -> float:
    if (
        isinstance(none_score, bool)
        or not isinstance(none_score, (int, float))
        or not 0.0 <= none_score <= 1.0
    ):
        raise ConfigError(
            f"none_score must be a number in [0, 1] (verl's rewards are numbers), got {none_score!r}",
            field="none_score",
        )
    return float(none_score)


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[Any],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    *,
    verifier: str | Mapping[str, str] | None = None,
    none_score: float = 0.0,
    return_dict: bool = True,
    **options: Any,
) -> list[dict[str, Any] | float]:
    """verl's batched form: one result per response, in order. Responses are judged in one
    `verify_batch` per verifier (the math fast path runs them in parallel)."""
    none_score = _check_none_score(none_score)
    n = len(solution_strs)
    infos = list(extra_infos) if extra_infos is not None else [None] * n
    if not len(data_sources) == len(ground_truths) == len(infos) == n:
        raise ConfigError(
            f"compute_score_batch got {len(data_sources)} data_sources, {n} solution_strs, "
            f"{len(ground_truths)} ground_truths and {len(infos)} extra_infos; they must match"
        )
    options = {k: v for k, v in options.items() if k not in _VERL_EXTRAS}
    by_spec: dict[str, list[int]] = {}
    for i, source in enumerate(data_sources):
        by_spec.setdefault(spec_for(plain(source), verifier), []).append(i)
    out: list[dict[str, Any] | float | None] = [None] * n
    for spec, idx in by_spec.items():
        v = _verifier(spec, options)
        verdicts = v.verify_batch([item_for(v, solution_strs[i], ground_truths[i], infos[i]) for i in idx])
        if len(verdicts) != len(idx):
            raise ConfigError(f"verifier {spec!r} returned {len(verdicts)} verdicts for {len(idx)} responses")
        for i, vd in zip(idx, verdicts, strict=True):
            out[i] = result(vd, none_score, return_dict)
    return out  # type: ignore[return-value]


def compute_score(
    data_source: Any,
    solution_str: Any,
    ground_truth: Any,
    extra_info: Any = None,
    *,
    verifier: str | Mapping[str, str] | None = None,
    none_score: float = 0.0,
    return_dict: bool = True,
    **options: Any,
) -> dict[str, Any] | float:
    """verl's per-response form: `{"score", "acc", "verified", "pred", "reason"}` (or just the score
    with `return_dict=False`)."""
    return compute_score_batch(
        [data_source],
        [solution_str],
        [ground_truth],
        [extra_info],
        verifier=verifier,
        none_score=none_score,
        return_dict=return_dict,
        **options,
    )[0]


async def compute_score_async(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> dict[str, Any] | float:
    """`compute_score` as an `async def`: the verification runs in a worker thread."""
    return await asyncio.to_thread(
        compute_score, data_source, solution_str, ground_truth, extra_info, **kwargs
    )


async def compute_score_batch_async(
    data_sources: Sequence[Any],
    solution_strs: Sequence[Any],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any] | float]:
    """`compute_score_batch` as an `async def`."""
    return await asyncio.to_thread(
        compute_score_batch, data_sources, solution_strs, ground_truths, extra_infos, **kwargs
    )
