"""Advantage estimators through the Python API, checked against formulas written out here."""

from __future__ import annotations

import numpy as np
import pytest

import grpo_fast
from grpo_fast import ConfigError


def naive(scores, offsets, method, eps=1e-4):
    out = np.zeros(len(scores))
    all_valid = [s for s in scores if not np.isnan(s)]
    batch_std = np.std(all_valid, ddof=1) if len(all_valid) > 1 else np.nan
    for g in range(len(offsets) - 1):
        idx = [i for i in range(offsets[g], offsets[g + 1]) if not np.isnan(scores[i])]
        vals = [scores[i] for i in idx]
        if len(vals) < 2 or max(vals) == min(vals):
            continue
        mean = sum(vals) / len(vals)
        std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5
        for i in idx:
            if method == "grpo":
                out[i] = (scores[i] - mean) / (std + eps)
            elif method == "dr_grpo":
                out[i] = scores[i] - mean
            elif method == "rloo":
                others = [scores[j] for j in idx if j != i]
                out[i] = scores[i] - sum(others) / len(others)
            else:
                out[i] = (scores[i] - mean) / (batch_std + eps)
    return out


@pytest.mark.parametrize("method", grpo_fast.ADVANTAGE_METHODS)
def test_matches_naive_formula_on_random_groups(method):
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 9, size=200)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    scores = rng.choice([0.0, 1.0, 0.5, 0.25], size=offsets[-1])
    scores[rng.random(len(scores)) < 0.1] = np.nan
    got = grpo_fast.compute_advantages(scores, offsets, method=method)
    np.testing.assert_allclose(got, naive(scores, offsets, method), rtol=1e-12, atol=1e-12)


def test_zero_variance_and_singletons_are_zero_and_counted():
    r = grpo_fast.advantage_details([1, 1, 1, 0.3, np.nan, 0, 1], [0, 3, 4, 5, 7])
    assert r.values[:5].tolist() == [0, 0, 0, 0, 0]
    assert r.degenerate_groups == 3
    assert r.unscored == 1


def test_bad_inputs_raise_config_error():
    with pytest.raises(ConfigError, match="unknown advantage method"):
        grpo_fast.compute_advantages([1.0], [0, 1], method="ppo")
    with pytest.raises(ConfigError, match="offsets"):
        grpo_fast.compute_advantages([1.0, 0.0], [0, 3])
    with pytest.raises(ConfigError):
        grpo_fast.group_offsets(3, 10)


def test_group_stats():
    s = grpo_fast.group_stats([1.0, 0.0, np.nan, 0.5], [0, 3, 4])
    assert s["mean"].tolist() == [0.5, 0.5]
    assert s["valid"].tolist() == [2, 1]
    assert np.isnan(s["std"][1])


def test_equal_size_offsets():
    assert grpo_fast.group_offsets(4, 12).tolist() == [0, 4, 8, 12]
