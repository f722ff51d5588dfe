"""Finding verifiers by name and combining them.

A spec is `NAME` or `NAME=WEIGHT`; NAME is a built-in (`math`, `format`, `code`, ...), a name
from the `grpo_fast.verifiers` entry-point group of an installed package, or `module:attr`
(a Verifier class, a Verifier instance, or a per-item scoring function). Several specs make a
`CompositeVerifier` whose score is the weighted mean of its parts.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from grpo_fast.errors import ConfigError, VerifierError
from grpo_fast.verifiers.base import _REGISTRY, Verdict, Verifier, VerifyItem

ENTRY_POINT_GROUP = "grpo_fast.verifiers"


def available() -> list[str]:
    """Names that `get_verifier` resolves without a `module:attr` path."""
    names = set(_REGISTRY)
    try:
        names.update(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:
        pass
    return sorted(names)


def parse_spec(spec: str) -> tuple[str, float]:
    """`math=0.9` -> ("math", 0.9); `math` -> ("math", 1.0)."""
    name, sep, weight = spec.partition("=")
    name = name.strip()
    if not name:
        raise ConfigError(f"empty verifier name in {spec!r}")
    if not sep:
        return name, 1.0
    try:
        w = float(weight)
    except ValueError:
        raise ConfigError(f"verifier weight must be a number: {spec!r}") from None
    if not w >= 0 or w == float("inf"):
        raise ConfigError(f"verifier weight must be finite and >= 0: {spec!r}")
    return name, w


def _accepted(factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The options the factory takes (so `--timeout` reaches math but not format)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


class FunctionVerifier(Verifier):
    """Wraps `fn(prompt, response, record) -> float | bool | Verdict | None` as a Verifier. A bool is
    a correctness (score 1 or 0); a float in [0, 1] is a score without one (`correct` None)."""

    def __init__(self, fn: Callable[[str, str, dict], Any], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        out = []
        for it in items:
            try:
                r = self.fn(it.prompt, it.response, it.record)
            except Exception as exc:
                out.append(Verdict(None, None, "error", None, {"message": f"{type(exc).__name__}: {exc}"}))
                continue
            out.append(_as_verdict(r, self.name))
        return out


def _as_verdict(r: Any, name: str) -> Verdict:
    if isinstance(r, Verdict):
        return r
    if r is None:
        return Verdict(None, None, "no_verdict")
    if isinstance(r, bool):
        return Verdict(1.0 if r else 0.0, r, "correct" if r else "wrong")
    if isinstance(r, (int, float)):
        score = float(r)
        if not 0.0 <= score <= 1.0:
            return Verdict(None, None, "error", None, {"message": f"{name} returned score {score} outside [0, 1]"})
        # A number is a reward, not a judgement: no correctness (return a bool or a Verdict for one).
        return Verdict(score, None, "scored")
    return Verdict(None, None, "error", None, {"message": f"{name} returned {type(r).__name__}"})


def _load_entry_point(name: str) -> Any | None:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:
        return None
    for ep in eps:
        if ep.name == name:
            return ep.load()
    return None


def _instantiate(obj: Any, name: str, options: dict[str, Any]) -> Verifier:
    if isinstance(obj, Verifier):
        return obj
    if inspect.isclass(obj):
        if not issubclass(obj, Verifier):
            raise ConfigError(f"{name}: {obj.__name__} is not a grpo_fast Verifier subclass")
        return obj(**_accepted(obj, options))
    if callable(obj):
        return FunctionVerifier(obj, name=name)
    raise ConfigError(f"{name} is neither a Verifier nor a callable")


def get_verifier(name: str, **options: Any) -> Verifier:
    """Build one verifier by name; `options` (timeout, workers, ...) go to those that take them."""
    import grpo_fast.verifiers  # noqa: F401 - registers the built-ins

    if name in _REGISTRY:
        factory = _REGISTRY[name]
        try:
            v = factory(**_accepted(factory, options))
        except ConfigError:
            raise
        except Exception as exc:
            raise VerifierError(f"could not build verifier {name!r}: {exc}") from exc
        if not isinstance(v, Verifier):
            raise ConfigError(f"verifier factory {name!r} returned {type(v).__name__}, not a Verifier")
        return v
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"cannot import verifier module {module_name!r}: {exc}") from exc
        obj = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
        return _instantiate(obj, name, options)
    obj = _load_entry_point(name)
    if obj is not None:
        return _instantiate(obj, name, options)
    raise ConfigError(f"unknown verifier {name!r}; available: {', '.join(available())} (or module:attr)")


class CompositeVerifier(Verifier):
    """A weighted mean of several verifiers: `math=0.9, format=0.1` scores 0.9 * math + 0.1 *
    format (weights are divided by their sum, so the score stays in [0, 1]).

    `correct` comes from the parts that judge correctness (`Verifier.judges_correctness`; the
    `format` verifier does not): True when all of them that give a correctness say so, False when
    one says False, None when none gives one. A right answer without `<think>` is therefore correct
    with a score of 0.9. When no part judges correctness, every part counts. The reason is the first
    failing correctness part's reason, else the first other failing part's, else `correct`.
    `components` holds each part's verdict by name. If any part has no verdict (timeout, error),
    neither has the composite: its score is None and its reason is that part's reason.
    """

    name = "composite"

    def __init__(self, parts: Sequence[tuple[Verifier, float]]):
        if not parts:
            raise ConfigError("a composite verifier needs at least one part")
        total = sum(w for _, w in parts)
        if total <= 0:
            raise ConfigError("verifier weights must not all be zero")
        self.parts = [(v, w / total) for v, w in parts]
        self.name = "+".join(f"{v.name}={w:g}" for v, w in parts)
        # One name per part (a second part with the same name gets `#2`, ...): the keys of `components`.
        self.part_names: list[str] = []
        for v, _ in parts:
            name, k = str(v.name), 2
            while name in self.part_names:
                name, k = f"{v.name}#{k}", k + 1
            self.part_names.append(name)
        judges = [bool(getattr(v, "judges_correctness", True)) for v, _ in parts]
        self._judges = judges if any(judges) else [True] * len(parts)

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        per_part = [v.verify_batch(items) for v, _ in self.parts]
        for (v, _), verdicts in zip(self.parts, per_part, strict=False):
            if len(verdicts) != len(items):
                raise VerifierError(f"verifier {v.name} returned {len(verdicts)} verdicts for {len(items)} items")
        return [self._combine([verdicts[i] for verdicts in per_part]) for i in range(len(items))]

    def _combine(self, verdicts: list[Verdict]) -> Verdict:
        comps: dict[str, Verdict] = {}
        details: dict[str, dict[str, Any]] = {}
        score: float | None = 0.0
        correct: bool | None = None
        missing: str | None = None  # the reason of the first part without a verdict
        failed: str | None = None  # the first failing correctness part's reason
        other_failed: str | None = None  # the first failing other part's reason
        extracted = None
        for name, (_, w), judges, vd in zip(self.part_names, self.parts, self._judges, verdicts, strict=True):
            comps[name] = vd
            details[name] = {"score": vd.score, "correct": vd.correct, "reason": vd.reason}
            if extracted is None:
                extracted = vd.extracted
            if vd.score is None:
                missing = vd.reason if missing is None else missing
                score = None
                continue
            if score is not None:
                score += w * vd.score
            if judges and vd.correct is not None:
                correct = vd.correct if correct is None else (correct and vd.correct)
            if vd.correct is False:
                if judges and failed is None:
                    failed = vd.reason
                elif not judges and other_failed is None:
                    other_failed = vd.reason
        if score is None:
            return Verdict(None, None, missing or "no_verdict", extracted, {"components": details}, comps)
        score = min(1.0, max(0.0, score))
        reason = failed or other_failed or "correct"
        return Verdict(score, correct, reason, extracted, {"components": details}, comps)

    def close(self) -> None:
        for v, _ in self.parts:
            v.close()


def build_verifier(specs: str | Sequence[str], **options: Any) -> Verifier:
    """From CLI-style specs (`["math=0.9", "format=0.1"]`, or one string `"math=0.9,format=0.1"`)
    to one Verifier."""
    if isinstance(specs, str):
        specs = [specs]
    specs = [part for spec in specs for part in spec.split(",") if part.strip()]
    if not specs:
        raise ConfigError("no verifier given")
    parsed = [parse_spec(s) for s in specs]
    if len(parsed) == 1:
        return get_verifier(parsed[0][0], **options)
    return CompositeVerifier([(get_verifier(n, **options), w) for n, w in parsed])
