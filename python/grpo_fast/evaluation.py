"""Evaluation metrics over verified samples: unbiased pass@k, maj@k, accuracy, verification rate and
length, one report per model, and the difference between a model and a baseline. Used by
`grpo-fast eval` (from a model or from a verified file) and by the trainer's held-out evaluation.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): with n judged samples
of a prompt of which c are correct, the probability that a uniformly drawn k-subset holds a correct
one, 1 - C(n-c, k) / C(n, k), written as the product 1 - prod_{i=n-c+1..n} (1 - k/i) so that no
binomial coefficient overflows. maj@k: the probability that the majority answer of a uniformly drawn
k-subset is correct (ties broken uniformly at random), computed exactly. Both are averaged over the
prompts with at least k judged samples; a prompt with fewer is left out of that k and counted as
skipped, and a k no prompt reaches is reported as None (undefined), never as 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grpo_fast.errors import ConfigError

# maj@k works with floating-point counts of k-subsets: C(n, k) <= 2^n stays finite up to n = 1023.
MAX_VOTE_SAMPLES = 1000
# Answers longer than this vote by their text alone (no equivalence check): they are programs or
# prose, not answers, and the comparison is not worth its cost.
_MAX_COMPARED_ANSWER = 512
# The metrics `summarize` reports besides pass@k and maj@k, compared with a baseline by `compare`.
METRICS = ("accuracy", "mean_score", "verification_rate", "mean_length")


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k of one prompt with `n` judged samples, `c` of them correct; None when n < k
    (k samples cannot be drawn from n)."""
    if k < 1:
        raise ConfigError(f"pass@k needs k >= 1, got {k}")
    if not 0 <= c <= n:
        raise ConfigError(f"pass@k needs 0 <= c <= n, got c={c}, n={n}")
    if n < k:
        return None
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def parse_ks(spec: str | Iterable[int]) -> list[int]:
    """`"1,8,16"` (or a list) -> [1, 8, 16]: sorted, without repeats, each >= 1."""
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        try:
            ks = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(
                f"k must be whole numbers separated by commas, e.g. 1,8,16; got {spec!r}", field="k"
            ) from None
    else:
        ks = [int(k) for k in spec]
    if not ks:
        raise ConfigError("no k given (e.g. -k 1,8,16)", field="k")
    bad = [k for k in ks if k < 1]
    if bad:
        raise ConfigError(f"k must be >= 1, got {bad[0]}", field="k")
    return sorted(set(ks))


def _tie_factor(size: int, t: int) -> np.ndarray:
    """Ways to draw u of a cluster's `size` samples as a polynomial in x (count drawn) and z (a tie
    with the leader at count t): sum_{u<t} C(size, u) x^u + C(size, t) x^t z."""
    a = np.zeros((t + 1, 2))
    for u in range(t):
        a[u, 0] = math.comb(size, u)
    a[t, 1] = math.comb(size, t)
    return a


def _times(p: np.ndarray, a: np.ndarray, max_x: int) -> np.ndarray:
    """Product of two polynomials in (x, z) held as coefficient arrays, x truncated at `max_x`."""
    px, pz = p.shape
    ax, az = a.shape
    out = np.zeros((min(px + ax - 1, max_x + 1), pz + az - 1))
    for u in range(ax):
        if u >= out.shape[0]:
            break
        rows = min(px, out.shape[0] - u)
        for w in range(az):
            if a[u, w]:
                out[u : u + rows, w : w + pz] += a[u, w] * p[:rows]
    return out


def maj_at_k(votes: Sequence[tuple[Any, bool]], k: int) -> float | None:
    """Exact maj@k of one prompt: the probability that the most frequent answer of a uniformly drawn
    k-subset of its judged samples is correct, ties broken uniformly at random. `votes` holds one
    `(answer_key, correct)` per judged sample; a key of None is a sample without an answer, which
    fills a place in the subset but votes for nothing (a subset without votes is wrong). None when
    fewer than k samples."""
    if k < 1:
        raise ConfigError(f"maj@k needs k >= 1, got {k}")
    n = len(votes)
    if n < k:
        return None
    if n > MAX_VOTE_SAMPLES:
        raise ConfigError(f"maj@k is computed for at most {MAX_VOTE_SAMPLES} samples per prompt, got {n}")
    # A key whose samples disagree on correctness is two clusters: the vote cannot be right and wrong.
    clusters = Counter((key, bool(ok)) for key, ok in votes if key is not None)
    abstain = n - sum(clusters.values())
    # Clusters of one size are interchangeable: [clusters, correct clusters] per size.
    by_size: dict[int, list[int]] = {}
    for (_, ok), size in clusters.items():
        entry = by_size.setdefault(size, [0, 0])
        entry[0] += 1
        entry[1] += int(ok)
    wins = 0.0
    for t in range(1, k + 1):  # the winner's count in the subset
        big = [s for s in by_size if s >= t]
        if not big:
            break
        rest = k - t
        # Samples that cannot reach t (abstentions, smaller clusters) are drawn freely: (1 + x)^m.
        free = abstain + sum(s * by_size[s][0] for s in by_size if s < t)
        base = np.array([[float(math.comb(free, u))] for u in range(min(free, rest) + 1)])
        for s in big:
            correct_here = by_size[s][1]
            if not correct_here:
                continue
            poly = base
            for s2 in big:
                others = by_size[s2][0] - (1 if s2 == s else 0)
                factor = _tie_factor(s2, t)
                for _ in range(others):
                    poly = _times(poly, factor, rest)
            if poly.shape[0] <= rest:
                continue
            ties = poly[rest]
            weight = float(sum(ties[r] / (r + 1) for r in range(len(ties))))
            wins += correct_here * math.comb(s, t) * weight
    return wins / float(math.comb(n, k))


def canonical_answer(answer: str) -> str:
    """The text an answer votes with: the math normalisation (`\\dfrac34` -> `\\frac{3}{4}`, spacing,
    `\\left`, `\\text{}`), whitespace collapsed; a long answer (a program, prose) as written."""
    from grpo_fast import _native

    if len(answer) > 4 * _MAX_COMPARED_ANSWER:
        return answer
    return " ".join(_native.math_normalize(answer).split())


def answer_keys(answers: Sequence[str | None]) -> list[int | None]:
    """One vote key per answer: answers the math comparison judges equal (`\\frac12` and `0.5`,
    `x = 3` and `3`, case and spacing) share a key; None for no answer. Greedy in order: an answer
    joins the first earlier group whose first answer it equals."""
    from grpo_fast import _native

    reps: list[tuple[str, str]] = []  # (raw, normalised) of each group's first answer
    keys: list[int | None] = []
    for a in answers:
        if a is None or not str(a).strip():
            keys.append(None)
            continue
        a = str(a)
        norm = canonical_answer(a)
        key = None
        for i, (raw, rnorm) in enumerate(reps):
            if rnorm == norm:
                key = i
                break
            if (
                len(raw) <= _MAX_COMPARED_ANSWER
                and len(a) <= _MAX_COMPARED_ANSWER
                and _native.math_compare(raw, a) == 1
            ):
                key = i
                break
        if key is None:
            key = len(reps)
            reps.append((a, norm))
        keys.append(key)
    return keys


@dataclass
class Sample:
    """One verified completion as evaluation sees it."""

    score: float | None
    correct: bool | None
    extracted: str | None = None
    length: int = 0


def summarize(
    groups: Sequence[Sequence[Sample]], ks: Sequence[int], length_unit: str = "tokens"
) -> dict[str, Any]:
    """The metrics of one model over `groups` (one list of samples per prompt): accuracy (share of
    judged samples that are correct), mean score, verification rate (share of samples with a
    verdict), mean length, and pass@k and maj@k for each k, with how many prompts each k counts and
    skips (n < k). Undefined values are None."""
    samples = [s for g in groups for s in g]
    scored = [s.score for s in samples if s.score is not None]
    judged = [s.correct for s in samples if s.correct is not None]
    out: dict[str, Any] = {
        "prompts": len(groups),
        "responses": len(samples),
        "accuracy": _mean(judged),
        "mean_score": _mean(scored),
        "verification_rate": len(scored) / len(samples) if samples else None,
        "mean_length": _mean([s.length for s in samples]),
        "length_unit": length_unit,
    }
    per_prompt = [[s for s in g if s.correct is not None] for g in groups]
    # maj@k needs answers to vote with; a verifier that extracts none gets no maj@k at all.
    has_answers = any(s.extracted for g in per_prompt for s in g)
    votes = (
        [
            list(zip(answer_keys([s.extracted for s in g]), [bool(s.correct) for s in g], strict=True))
            for g in per_prompt
        ]
        if has_answers
        else []
    )
    counts: dict[str, dict[str, int]] = {}
    for k in ks:
        vals = [pass_at_k(len(g), sum(bool(s.correct) for s in g), k) for g in per_prompt]
        defined = [v for v in vals if v is not None]
        out[f"pass@{k}"] = _mean(defined)
        counts[str(k)] = {"prompts": len(defined), "skipped": len(vals) - len(defined)}
        if has_answers:
            mv = [m for m in (maj_at_k(v, k) for v in votes) if m is not None]
            out[f"maj@{k}"] = _mean(mv)
        else:
            out[f"maj@{k}"] = None
    out["k"] = counts
    if not has_answers:
        out["maj_note"] = "no extracted answers to vote with (the verifier reports none)"
    return out


def compare(
    model: Mapping[str, Any], baseline: Mapping[str, Any], retention_threshold: float = 0.95
) -> dict[str, Any]:
    """Model minus baseline for every metric both have, and the two gates: pass@1 above the baseline's,
    and capability retention = pass@1(model) / pass@1(baseline) >= `retention_threshold` (None, and
    the gate undecided, when the baseline's pass@1 is 0 or undefined)."""
    diff: dict[str, float | None] = {}
    for key in model:
        if key in METRICS or key.startswith(("pass@", "maj@")):
            mv, bv = model.get(key), baseline.get(key)
            diff[key] = float(mv) - float(bv) if mv is not None and bv is not None else None
    m1, b1 = model.get("pass@1"), baseline.get("pass@1")
    above = (m1 - b1) if m1 is not None and b1 is not None else None
    retention = (m1 / b1) if m1 is not None and b1 else None
    return {
        "difference": diff,
        "pass@1_above_baseline": above,
        "capability_retention": retention,
        "gates": {
            "pass@1_above_baseline": None if above is None else above > 0,
            f"capability_retention>={retention_threshold:g}": None
            if retention is None
            else retention >= retention_threshold,
        },
    }


def _mean(values: Sequence[float | bool | int]) -> float | None:
    return float(sum(float(v) for v in values) / len(values)) if values else None


def samples_from_record(record: Mapping[str, Any], length_unit: str = "characters") -> list[Sample]:
    """The samples of one verified grouped record (`responses[i].score/correct/extracted`, as
    `grpo-fast verify` writes them); length in tokens (`num_tokens`) or in characters of `text`."""
    out = []
    for r in record.get("responses") or []:
        score = r.get("score")
        correct = r.get("correct")
        extracted = r.get("extracted")
        length = int(r["num_tokens"]) if length_unit == "tokens" else len(r.get("text") or "")
        out.append(
            Sample(
                float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                correct if isinstance(correct, bool) else None,
                extracted if isinstance(extracted, str) else None,
                length,
            )
        )
    return out


def length_unit_of(records: Iterable[Mapping[str, Any]]) -> str:
    """`tokens` when every response carries an integer `num_tokens`, else `characters`."""
    for rec in records:
        for r in rec.get("responses") or []:
            n_tok = r.get("num_tokens")
            if not isinstance(n_tok, int) or isinstance(n_tok, bool):
                return "characters"
    return "tokens"
