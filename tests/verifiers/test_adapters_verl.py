"""Verifiers as verl custom reward functions, called the way verl's reward managers call them
(verl-project/verl `reward_manager/naive.py`, `batch.py` and `experimental/reward_loop`):
`compute_score(data_source=, solution_str=, ground_truth=, extra_info=)` per response, the batched
`compute_score_batch(data_sources=, solution_strs=, ground_truths=, extra_infos=)`, config
`reward_kwargs` merged into the keywords, async functions awaited. verl itself is not installed here:
these tests hold our functions to the contract those managers rely on (one result per response, a
dict with `score`, the same keys for every response, no None value)."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import json
import os
from pathlib import Path

import numpy as np
import pytest

from grpo_fast.errors import ConfigError
from grpo_fast.rewards import verl as V

REPO = Path(__file__).resolve().parents[2]


def verl_extra_info(**fields):
    # What the managers hand over: the data set's extra_info plus the two keys they add.
    return {**fields, "num_turns": None, "rollout_reward_scores": {}}


def with_reward_kwargs(fn, **reward_kwargs):
    """`custom_reward_function.reward_kwargs` merged into each call, the config's keys winning."""
    if inspect.iscoroutinefunction(fn):

        async def merged_async(*args, **kwargs):
            return await fn(*args, **{**kwargs, **reward_kwargs})

        return merged_async
    return lambda *args, **kwargs: fn(*args, **{**kwargs, **reward_kwargs})


def check_contract(results):
    """What verl does with the results: `score` into the reward tensor (a number), every key into
    `reward_extra_info` lists (one per response, so the same keys everywhere), numeric keys
    averaged in validation and string keys skipped."""
    keys = set(results[0])
    extra: dict[str, list] = {k: [] for k in keys}
    for r in results:
        assert set(r) == keys == set(V.RESULT_KEYS)
        assert isinstance(r["score"], float) and 0.0 <= r["score"] <= 1.0
        for k, v in r.items():
            assert v is not None and isinstance(v, (float, str)), (k, v)
            extra[k].append(v)
    for vals in extra.values():
        if not isinstance(vals[0], str):
            float(np.mean(vals))
    return extra


def test_per_response_call_like_the_naive_manager():
    # verl's GSM8K preprocessing: ground_truth is the number, extra_info keeps the worked answer.
    info = verl_extra_info(
        split="test",
        index=3,
        question="Natalia sold clips ...",
        answer="In May she sold 24 clips ... #### 72",
    )
    res = V.compute_score(
        data_source="openai/gsm8k",
        solution_str="48 + 24 = 72 clips.\n#### 72",
        ground_truth="72",
        extra_info=info,
    )
    assert res == {"score": 1.0, "acc": 1.0, "verified": 1.0, "pred": "72", "reason": "correct"}
    # The ground truth is the gold, not extra_info's `answer`.
    res = V.compute_score(
        data_source="openai/gsm8k",
        solution_str="#### 73",
        ground_truth="72",
        extra_info=verl_extra_info(answer="#### 73"),
    )
    assert res["score"] == 0.0 and res["reason"] == "wrong"
    assert info == verl_extra_info(
        split="test",
        index=3,
        question="Natalia sold clips ...",
        answer="In May she sold 24 clips ... #### 72",
    )  # not modified


@pytest.mark.parametrize(
    ("data_source", "solution", "ground_truth", "score"),
    [
        ("lighteval/MATH", "So $\\frac{a}{b} = \\boxed{\\dfrac{3}{4}}$.", "\\frac{3}{4}", 1.0),
        ("HuggingFaceH4/MATH-500", "The answer is $\\boxed{(3, 2)}$", "(3,2)", 1.0),
        ("math_dapo", "Answer: 34", "34", 1.0),
        ("aime2024", "Thus the remainder is $\\boxed{017}$.", np.array(["17"], dtype=object), 1.0),
        ("numina_olympiads", "We get $x = \\boxed{5}$", "7", 0.0),
    ],
)
def test_math_data_sources(data_source, solution, ground_truth, score):
    res = V.compute_score(data_source, solution, ground_truth, verl_extra_info())
    assert res["score"] == score and res["verified"] == 1.0


def test_batched_call_like_the_batch_manager():
    n = 4
    results = V.compute_score_batch(
        data_sources=np.array(
            ["openai/gsm8k", "lighteval/MATH", "openai/gsm8k", "lighteval/MATH"], dtype=object
        ),
        solution_strs=["#### 72", "so \\boxed{\\sqrt{2}}", "I give up", "\\boxed{1.41}"],
        ground_truths=["72", "\\sqrt{2}", "5", "\\sqrt2"],
        extra_infos=np.array([verl_extra_info(index=i) for i in range(n)], dtype=object),
    )
    extra = check_contract(results)
    assert extra["score"] == [1.0, 1.0, 0.0, 0.0]
    assert extra["reason"] == ["correct", "correct", "no_answer", "wrong"]
    assert extra["pred"][2] == ""  # no answer: an empty vote, never None


def test_reward_kwargs_choose_the_verifier_per_data_source():
    fn = with_reward_kwargs(
        V.compute_score_batch, verifier={"r1_math": "math=0.9,format=0.1", "default": "math"}
    )
    results = fn(
        data_sources=["r1_math", "r1_math", "gsm8k"],
        solution_strs=["<think>2+2=4</think> \\boxed{4}", "\\boxed{4}", "#### 4"],
        ground_truths=["4", "4", "4"],
        extra_infos=[verl_extra_info()] * 3,
    )
    check_contract(results)
    assert [r["score"] for r in results] == [pytest.approx(1.0), pytest.approx(0.9), 1.0]
    assert [r["acc"] for r in results] == [1.0, 1.0, 1.0]  # correctness is math's; format only scores
    single = with_reward_kwargs(V.compute_score, verifier="format")
    assert single(data_source="x", solution_str="no tags", ground_truth=None, extra_info={})["score"] == 0.0


def test_no_verdict_is_a_number_with_verified_zero():
    results = V.compute_score_batch(["gsm8k"] * 2, ["#### 3", "#### 3"], [None, "3"], [verl_extra_info()] * 2)
    extra = check_contract(results)
    assert (
        extra["score"] == [0.0, 1.0] and extra["verified"] == [0.0, 1.0] and extra["reason"][0] == "no_gold"
    )
    assert V.compute_score("gsm8k", "#### 3", None, {}, none_score=0.5)["score"] == 0.5
    assert V.compute_score("gsm8k", "#### 3", "3", {}, return_dict=False) == 1.0
    with pytest.raises(ConfigError, match="none_score"):
        V.compute_score("gsm8k", "#### 3", None, {}, none_score=None)


def test_pred_lets_verl_vote():
    # verl's validation groups responses of one prompt and takes the majority `pred`.
    results = V.compute_score_batch(
        ["math"] * 4,
        ["\\boxed{12}", "so it is 12", "\\boxed{13}", "\\boxed{\\dfrac34}"],
        ["12"] * 4,
        [verl_extra_info()] * 4,
    )
    assert [r["pred"] for r in results] == ["12", "12", "13", "\\frac{3}{4}"]


def test_async_forms_are_awaited_like_the_reward_loop():
    one = functools.partial(V.compute_score_async)
    assert inspect.iscoroutinefunction(one) and inspect.iscoroutinefunction(V.compute_score_batch_async)
    res = asyncio.run(one(data_source="math", solution_str="\\boxed{2}", ground_truth="2", extra_info={}))
    assert res["score"] == 1.0
    merged = with_reward_kwargs(V.compute_score_batch_async, verifier="math")
    out = asyncio.run(
        merged(
            data_sources=["a", "b"],
            solution_strs=["\\boxed{1}", "\\boxed{3}"],
            ground_truths=["1", "2"],
            extra_infos=[{}, {}],
        )
    )
    assert [r["score"] for r in out] == [1.0, 0.0]


def test_reward_loop_extra_keywords_are_accepted():
    res = V.compute_score(
        data_source="math",
        solution_str="\\boxed{2}",
        ground_truth="2",
        extra_info={},
        reward_router_address=None,
        reward_model_tokenizer=None,
    )
    assert res["score"] == 1.0


def test_mismatched_batch_lengths_are_an_error():
    with pytest.raises(ConfigError, match="must match"):
        V.compute_score_batch(["a", "b"], ["x"], ["1"], [{}])


def test_code_ground_truth_json_becomes_tests():
    from grpo_fast.verifiers.code import CodeVerifier

    gt = json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]})
    item = V.item_for(CodeVerifier(), "```python\nprint(3)\n```", gt, {"index": 0})
    assert item.record["tests"] == {"inputs": ["1 2\n"], "outputs": ["3\n"]}
    assert V.spec_for("codecontests", None) == "code" and V.spec_for("openai/gsm8k", None) == "math"
    assert V.spec_for("apps", {"default": "format"}) == "format"


def test_code_data_sources_run_in_the_sandbox(tmp_path):
    binary = os.environ.get("GRPO_SANDBOXD") or str(REPO / "target" / "release" / "grpo-sandboxd")
    if not Path(binary).exists():
        pytest.skip("no grpo-sandboxd binary (cargo build --release -p grpo-sandbox)")
    os.environ.setdefault("GRPO_SANDBOXD", binary)
    gt = json.dumps({"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]})
    good = "Read two numbers and add them:\n```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    try:
        results = V.compute_score_batch(
            ["codecontests", "apps"],
            [good, "```python\nprint(3)\n```"],
            [gt, gt],
            [verl_extra_info(), verl_extra_info()],
            socket=str(tmp_path / "s.sock"),
        )
    finally:
        V.close_verifiers()
    check_contract(results)
    assert [r["score"] for r in results] == [1.0, 0.5] and [r["acc"] for r in results] == [1.0, 0.0]


def test_the_example_file_loads_like_a_custom_reward_function():
    # verl loads `custom_reward_function.path` as a module from its file and takes `.name` from it.
    path = REPO / "examples" / "verl_reward.py"
    spec = importlib.util.spec_from_file_location("custom_module_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = module.compute_score(
        data_source="openai/gsm8k", solution_str="#### 72", ground_truth="72", extra_info=verl_extra_info()
    )
    assert res["score"] == 1.0
    out = module.compute_score_batch(
        data_sources=["openai/gsm8k"],
        solution_strs=["#### 7"],
        ground_truths=["72"],
        extra_infos=[verl_extra_info()],
    )
    assert out[0]["score"] == 0.0
