"""The toy tasks' own verifiers: exact match and positional partial credit."""

from __future__ import annotations

import pytest

from grpo_fast.trainer.toy_tasks import ToyDigitsVerifier, ToyExactVerifier
from grpo_fast.verifiers import VerifyItem


def judge(verifier, response, answer="12"):
    record = {} if answer is None else {"answer": answer}
    (v,) = verifier.verify_batch([VerifyItem("3+9=", response, record)])
    return v


@pytest.mark.parametrize(
    ("response", "score", "reason"),
    [("12", 1.0, "correct"), ("12 ", 0.0, "wrong"), ("", 0.0, "no_answer"), ("21", 0.0, "wrong")],
)
def test_exact_match_is_not_stripped(response, score, reason):
    v = judge(ToyExactVerifier(), response)
    assert (v.score, v.reason) == (score, reason)


@pytest.mark.parametrize(
    ("response", "score"),
    [("12", 1.0), ("13", 0.5 * 1 / 2 + 0.25), ("1", 0.5 * 1 / 2), ("99", 0.25), ("", 0.0)],
)
def test_partial_credit_by_position_and_length(response, score):
    assert judge(ToyDigitsVerifier(), response).score == pytest.approx(score)


def test_no_gold_is_no_verdict():
    for verifier in (ToyExactVerifier(), ToyDigitsVerifier()):
        v = judge(verifier, "12", answer=None)
        assert (v.score, v.correct, v.reason) == (None, None, "no_gold")
