"""`math_reward` as TRL calls it. TRL's GRPOTrainer (checked against trl 1.16) calls each reward
function as `f(prompts=..., completions=..., completion_ids=..., **columns, trainer_state=...,
log_extra=..., log_metric=...)`, takes one float per completion, and turns None into NaN."""

from __future__ import annotations

import inspect

import pytest

from grpo_fast.errors import ConfigError
from grpo_fast.rewards import completion_text, make_math_reward, math_reward
from grpo_fast.verifiers.math import MathVerifier


def trl_style_call(fn, prompts, completions, **columns):
    return fn(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(completions),
              trainer_state=object(), log_extra=lambda *a: None, log_metric=lambda *a: None, **columns)


def test_signature_takes_prompts_completions_and_kwargs():
    params = inspect.signature(math_reward).parameters
    assert list(params)[:3] == ["prompts", "completions", "answer"]
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert math_reward.__name__ == "math_reward"  # TRL logs rewards under the function name


def test_plain_text_completions():
    out = trl_style_call(math_reward, ["q1", "q2", "q3"], ["\\boxed{4}", "so 5", "no idea"],
                         answer=["4", "#### 5", "3"])
    assert out == [1.0, 1.0, 0.0]
    assert all(isinstance(x, float) for x in out)


def test_conversational_completions():
    prompts = [[{"role": "user", "content": "2+2?"}]] * 2
    completions = [[{"role": "assistant", "content": "It is \\boxed{4}"}],
                   [{"role": "assistant", "content": "It is \\boxed{5}"}]]
    assert trl_style_call(math_reward, prompts, completions, answer=["4", "4"]) == [1.0, 0.0]


def test_solution_column_is_accepted():
    assert trl_style_call(math_reward, ["q"], ["\\boxed{\\frac12}"], solution=["$\\frac{1}{2}$"]) == [1.0]


def test_no_verdict_is_none_for_trl_to_skip():
    with MathVerifier(timeout=0.5, workers=1) as v:
        reward = make_math_reward(v)
        out = trl_style_call(reward, ["q", "q"], ["\\boxed{100000000! - 100000000! + 1}", "\\boxed{1}"],
                             answer=["1", None])
        assert out == [None, None]
        assert make_math_reward(v, none_score=0.0)(["q"], ["\\boxed{1}"], [None]) == [0.0]


def test_errors():
    with pytest.raises(ConfigError):
        math_reward(["q"], ["\\boxed{1}"])
    with pytest.raises(ConfigError):
        math_reward(["q"], ["\\boxed{1}"], ["1", "2"])


@pytest.mark.parametrize(
    ("completion", "text"),
    [("plain", "plain"),
     ([{"role": "assistant", "content": "a"}], "a"),
     ([{"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"},
       {"role": "assistant", "content": "b"}], "b"),
     ([{"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "image"}]}], "x"),
     ({"content": "d"}, "d"),
     (None, "")],
)
def test_completion_text(completion, text):
    assert completion_text(completion) == text
