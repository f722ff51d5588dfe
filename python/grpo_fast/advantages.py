"""Group-relative advantages over columnar scores (computed in Rust; formulas in
`docs/data-format.md` and `rust/core/src/advantage.rs`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from grpo_fast import _native

METHODS = ("grpo", "dr_grpo", "rloo", "batch_std")
DEFAULT_EPS = 1e-4


@dataclass
class AdvantageResult:
    values: np.ndarray
    degenerate_groups: int
    """Groups with fewer than two valid scores, or all equal: advantages exactly 0."""
    unscored: int
    """Responses with a NaN score (no verdict): advantage 0."""


def _columns(scores: Any, offsets: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.ascontiguousarray(scores, dtype=np.float64)
    o = np.ascontiguousarray(offsets, dtype=np.int64)
    if s.ndim != 1 or o.ndim != 1:
        from grpo_fast.errors import ConfigError

        raise ConfigError("scores and offsets must be one-dimensional")
    return s, o


def advantage_details(
    scores: Any, offsets: Any, method: str = "grpo", eps: float = DEFAULT_EPS
) -> AdvantageResult:
    s, o = _columns(scores, offsets)
    values, degenerate, unscored = _native.compute_advantages(s, o, method, eps)
    return AdvantageResult(values, degenerate, unscored)


def compute_advantages(
    scores: Any, offsets: Any, method: str = "grpo", eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Advantages for responses grouped by `offsets` (length groups + 1, CSR style).

    method: `grpo` (r - mean) / (std + eps); `dr_grpo` r - mean; `rloo` leave-one-out baseline;
    `batch_std` (r - group mean) / (std of the whole batch + eps). std is the sample std.
    NaN scores (no verdict) are left out of their group and get 0; groups with < 2 valid or
    all-equal scores get 0.
    """
    return advantage_details(scores, offsets, method, eps).values


def group_offsets(group_size: int, num_responses: int) -> np.ndarray:
    """Offsets for equal-size groups laid out one after another (the usual GRPO batch)."""
    if group_size <= 0 or num_responses % group_size:
        from grpo_fast.errors import ConfigError

        raise ConfigError(f"{num_responses} responses do not split into groups of {group_size}")
    return np.arange(0, num_responses + 1, group_size, dtype=np.int64)


def group_stats(scores: Any, offsets: Any) -> dict[str, np.ndarray]:
    """Per group: mean, std (sample), min, max and the count of valid scores."""
    s, o = _columns(scores, offsets)
    return _native.group_stats(s, o)


def write_advantages(input: str | os.PathLike[str], output: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """Read `input`, add `advantage` to every response, write `output` (grouped form).
    Keyword options: method, eps, on_error, rejects, score_range, group_key, max_line_bytes.

    `output` is written to a temporary sibling and renamed into place at the end, so it may be
    `input` itself, and a failure leaves it as it was."""
    from grpo_fast.data import _positive_int

    if kwargs.get("rejects") is not None:
        kwargs["rejects"] = os.fspath(kwargs["rejects"])
    if "max_line_bytes" in kwargs:
        kwargs["max_line_bytes"] = _positive_int("max_line_bytes", kwargs["max_line_bytes"])
    return _native.write_advantages_file(os.fspath(input), os.fspath(output), **kwargs)
