"""Finding verifiers by name and combining them.

A spec is `NAME[@ROLE][=WEIGHT]`: NAME is a built-in (`math`, `factual`, `format`, `code`, ...), a
name from the `grpo_fast.verifiers` entry-point group of an installed package, or `module:attr` (a
Verifier class, a Verifier instance, or a per-item scoring function); ROLE is `gate` (the others
count only when this part passes) or `primary` (this part's verdict is the composite's `correct`).
Several specs make a `CompositeVerifier` whose score is the weighted mean of its parts. A config
file (TOML, YAML or JSON) lists the same parts with options of their own.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from grpo_fast.errors import ConfigError, VerifierError
from grpo_fast.verifiers.base import _REGISTRY, Verdict, Verifier, VerifyItem, did_you_mean

ENTRY_POINT_GROUP = "grpo_fast.verifiers"
ROLES = ("gate", "primary")
CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
# Options that name files: in a config file they are relative to the file's folder.
_PATH_OPTIONS = ("kb", "schema")
_SPEC = re.compile(
    r"^(?P<name>[^=@]+?)\s*(?:@(?P<r1>[\w+]+))?\s*(?:=\s*(?P<w>[^=@]*?))?\s*(?:@(?P<r2>[\w+]+))?$"
)


def available() -> list[str]:
    """Names that `get_verifier` resolves without a `module:attr` path."""
    import grpo_fast.verifiers  # noqa: F401 - registers the built-ins

    names = set(_REGISTRY)
    try:
        names.update(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:
        pass
    return sorted(names)


@dataclass
class PartSpec:
    """One part of a verifier: its name, weight (None: 1, or 0 for a gate), roles and own options."""

    name: str
    weight: float | None = None
    gate: bool = False
    primary: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def effective_weight(self) -> float:
        return self.weight if self.weight is not None else (0.0 if self.gate else 1.0)

    def __str__(self) -> str:
        roles = "+".join(r for r in ROLES if getattr(self, r))
        return (
            self.name
            + (f"@{roles}" if roles else "")
            + (f"={self.weight:g}" if self.weight is not None else "")
        )


def _weight(value: Any, spec: Any) -> float:
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"verifier weight must be a number: {spec!r}") from None
    if isinstance(value, bool) or not w >= 0 or w == float("inf"):
        raise ConfigError(f"verifier weight must be finite and >= 0: {spec!r}")
    return w


def parse_spec(spec: str) -> PartSpec:
    """`math=0.9` -> PartSpec("math", 0.9); `format@gate` -> a gate; `math@primary=2` -> the
    primary part with weight 2 (`math=2@primary` too)."""
    m = _SPEC.match(spec.strip())
    if m is None or not m.group("name").strip():
        raise ConfigError(
            f"bad verifier spec {spec!r} (expected NAME, NAME=WEIGHT or NAME@gate / NAME@primary)"
        )
    part = PartSpec(m.group("name").strip())
    if m.group("w") is not None:
        part.weight = _weight(m.group("w"), spec)
    for roles in (m.group("r1"), m.group("r2")):
        for role in (roles or "").split("+"):
            if not role:
                continue
            if role not in ROLES:
                raise ConfigError(
                    f"unknown verifier role {role!r} in {spec!r} (roles: gate, primary)"
                    f"{did_you_mean(role, ROLES)}"
                )
            setattr(part, role, True)
    return part


def _accepted(factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The shared options the factory takes (so `--timeout` reaches math but not format)."""
    params = _parameters(factory)
    if params is None:
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


def _parameters(factory: Callable[..., Any]) -> Any:
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None


def _check_own(factory: Callable[..., Any], name: str, own: dict[str, Any]) -> None:
    """A part's own options (from a config file or a verifier-specific flag) must all be taken."""
    if not own:
        return
    params = _parameters(factory)
    if params is None:
        raise ConfigError(f"verifier {name!r} takes no options (got {', '.join(sorted(own))})")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    names = [k for k, p in params.items() if k != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in own:
        if key not in names:
            raise ConfigError(
                f"verifier {name!r} has no option {key!r}{did_you_mean(key, names)} "
                f"(options: {', '.join(names) or 'none'})",
                field=key,
            )


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
            return Verdict(
                None, None, "error", None, {"message": f"{name} returned score {score} outside [0, 1]"}
            )
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


def _instantiate(obj: Any, name: str, options: dict[str, Any], own: dict[str, Any]) -> Verifier:
    if isinstance(obj, Verifier):
        if own:
            raise ConfigError(
                f"verifier {name!r} is an instance and takes no options (got {', '.join(sorted(own))})"
            )
        return obj
    if inspect.isclass(obj):
        if not issubclass(obj, Verifier):
            raise ConfigError(f"{name}: {obj.__name__} is not a grpo_fast Verifier subclass")
        _check_own(obj, name, own)
        return obj(**(_accepted(obj, options) | own))
    if callable(obj):
        if own:
            raise ConfigError(
                f"verifier {name!r} is a function and takes no options (got {', '.join(sorted(own))})"
            )
        return FunctionVerifier(obj, name=name)
    raise ConfigError(f"{name} is neither a Verifier nor a callable")


def get_verifier(name: str, *, own_options: dict[str, Any] | None = None, **options: Any) -> Verifier:
    """Build one verifier by name. `options` (timeout, workers, ...) are shared: each goes to the
    verifiers whose constructor takes it. `own_options` are this verifier's alone: one it does not
    take is an error with the closest option names."""
    import grpo_fast.verifiers  # noqa: F401 - registers the built-ins

    own = dict(own_options or {})
    if name in _REGISTRY:
        factory = _REGISTRY[name]
        _check_own(factory, name, own)
        try:
            v = factory(**(_accepted(factory, options) | own))
        except ConfigError:
            raise
        except Exception as exc:
            if isinstance(exc, VerifierError) or type(exc).__module__.startswith("grpo_fast"):
                raise
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
                public = [a for a in dir(obj) if not a.startswith("_")]
                raise ConfigError(
                    f"module {module_name!r} has no attribute {attr!r}{did_you_mean(part, public)}"
                ) from None
        return _instantiate(obj, name, options, own)
    obj = _load_entry_point(name)
    if obj is not None:
        return _instantiate(obj, name, options, own)
    names = available()
    raise ConfigError(
        f"unknown verifier {name!r}{did_you_mean(name, names)} (available: {', '.join(names)}, "
        "or module:attr)",
        field="verifier",
    )


def _passes(vd: Verdict) -> bool | None:
    """Whether a gate's verdict lets the others count: its `correct`, or for a part that gives no
    correctness a full score; None when it has no verdict."""
    if vd.score is None:
        return None
    if vd.correct is not None:
        return bool(vd.correct)
    return vd.score >= 1.0


class CompositeVerifier(Verifier):
    """Several verifiers as one: a weighted mean of their scores, one of them deciding `correct`,
    and gates that must pass before the others count.

    parts: (verifier, weight) pairs; weights are divided by their sum, so `math=0.9, format=0.1`
        scores 0.9 * math + 0.1 * format.
    primary: the index of the part whose verdict is the composite's `correct` (and whose answer is
        its `extracted`); default the first part that judges correctness
        (`Verifier.judges_correctness`; `format` does not), else the first part.
    gates: indices of parts that must pass (`correct` True; for a part without a correctness, a
        score of 1): when one fails, the score is 0 and the reason is the gate's. `correct` stays
        the primary's verdict: a right answer in the wrong format is correct with reward 0.

    Every part scores every item; `components` (and `details["components"]`) keep each part's
    score, correct, reason and normalised weight. When a part with a weight, or a gate, has no
    verdict (timeout, missing gold), neither has the composite (score None, that part's reason),
    unless a gate failed, which decides alone. The reason is the primary's when it is wrong, else
    the first other failing part's, else the primary's (`correct`).
    """

    name = "composite"

    def __init__(
        self, parts: Sequence[tuple[Verifier, float]], primary: int | None = None, gates: Sequence[int] = ()
    ):
        if not parts:
            raise ConfigError("a composite verifier needs at least one part")
        total = sum(w for _, w in parts)
        if total <= 0:
            raise ConfigError(
                "verifier weights must not all be zero (a gate alone has weight 0: give "
                "another part, or a weight)"
            )
        self.parts = [(v, w / total) for v, w in parts]
        self.gates = sorted(set(gates))
        for k in [*self.gates, *([primary] if primary is not None else [])]:
            if not 0 <= k < len(parts):
                raise ConfigError(f"composite part index {k} out of range")
        judges = [bool(getattr(v, "judges_correctness", True)) for v, _ in parts]
        self.primary = primary if primary is not None else (judges.index(True) if any(judges) else 0)
        self.judges_correctness = judges[self.primary]
        # One name per part (a second part with the same name gets `#2`, ...): the keys of `components`.
        self.part_names: list[str] = []
        for v, _ in parts:
            name, k = str(v.name), 2
            while name in self.part_names:
                name, k = f"{v.name}#{k}", k + 1
            self.part_names.append(name)
        labels = []
        for i, (v, w) in enumerate(parts):
            role = "@gate" if i in self.gates else "@primary" if i == primary else ""
            labels.append(f"{v.name}{role}={w:g}")
        self.name = "+".join(labels)

    def required_fields(self) -> list[str]:
        return [f for v, _ in self.parts for f in v.required_fields()]

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        per_part = [v.verify_batch(items) for v, _ in self.parts]
        for (v, _), verdicts in zip(self.parts, per_part, strict=False):
            if len(verdicts) != len(items):
                raise VerifierError(
                    f"verifier {v.name} returned {len(verdicts)} verdicts for {len(items)} items"
                )
        return [self._combine([verdicts[i] for verdicts in per_part]) for i in range(len(items))]

    def _combine(self, verdicts: list[Verdict]) -> Verdict:
        comps: dict[str, Verdict] = {}
        details: dict[str, dict[str, Any]] = {}
        for i, (name, (_, w), vd) in enumerate(zip(self.part_names, self.parts, verdicts, strict=True)):
            comps[name] = vd
            d: dict[str, Any] = {"score": vd.score, "correct": vd.correct, "reason": vd.reason, "weight": w}
            if i in self.gates:
                d["gate"] = True
            if vd.details and vd.details.get("message"):
                d["message"] = vd.details["message"]
            details[name] = d
        prim = verdicts[self.primary]
        extracted = prim.extracted
        if extracted is None:
            extracted = next((vd.extracted for vd in verdicts if vd.extracted is not None), None)
        out_details: dict[str, Any] = {"components": details}
        correct = prim.correct if prim.score is not None else None
        unknown_gate = None
        for g in self.gates:
            ok = _passes(verdicts[g])
            if ok is False:
                out_details["gate"] = self.part_names[g]
                return Verdict(0.0, correct, verdicts[g].reason, extracted, out_details, comps)
            if ok is None and unknown_gate is None:
                unknown_gate = verdicts[g].reason
        if unknown_gate is not None:
            return Verdict(None, None, unknown_gate, extracted, out_details, comps)
        score = 0.0
        for (_, w), vd in zip(self.parts, verdicts, strict=True):
            if w == 0:
                continue
            if vd.score is None:
                return Verdict(None, None, vd.reason, extracted, out_details, comps)
            score += w * vd.score
        score = min(1.0, max(0.0, score))
        if prim.correct is False:
            reason = prim.reason
        else:
            other = next(
                (vd.reason for i, vd in enumerate(verdicts) if i != self.primary and vd.correct is False),
                None,
            )
            reason = other or ("correct" if prim.correct else prim.reason)
        return Verdict(score, correct, reason, extracted, out_details, comps)

    def close(self) -> None:
        for v, _ in self.parts:
            v.close()


# ---------------------------------------------------------------------------------------------------
# config files


def _read_config(path: str) -> Any:
    low = path.lower()
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read verifier config: {exc.strerror}", file=path) from None
    try:
        if low.endswith(".toml"):
            import tomllib

            return tomllib.loads(raw.decode("utf-8"))
        if low.endswith((".yaml", ".yml")):
            import yaml

            return yaml.safe_load(raw)
        import json

        return json.loads(raw)
    except Exception as exc:  # tomllib, yaml and json each raise their own error type
        line = getattr(exc, "lineno", None)
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            line = mark.line + 1
        raise ConfigError(f"verifier config is not valid: {exc}", file=path, line=line) from None


_PART_KEYS = ("name", "weight", "gate", "primary")


def load_config(path: str) -> list[PartSpec]:
    """The parts listed in a TOML, YAML or JSON verifier config:

        [[verifier]]              # verifiers: [ {name: format, gate: true, mode: json}, ... ] in YAML
        name = "format"
        gate = true
        mode = "json"
        schema = "person.schema.json"

        [[verifier]]
        name = "math"
        weight = 1.0

    Each entry has `name`, optional `weight`, `gate` and `primary`; every other key is an option of
    that verifier (an unknown one is an error). A string entry is a spec (`"math=0.9"`). Files named
    by `kb` and `schema` are relative to the config's folder."""
    path = str(path)
    if not path.lower().endswith(CONFIG_SUFFIXES):
        raise ConfigError(f"verifier config must be .toml, .yaml, .yml or .json: {path}", file=path)
    data = _read_config(path)
    if isinstance(data, dict):
        extra = [k for k in data if k not in ("verifier", "verifiers")]
        if extra:
            raise ConfigError(
                f"unknown key {extra[0]!r} in the verifier config{did_you_mean(extra[0], ['verifiers'])}"
                " (expected a `verifiers` list, or [[verifier]] tables in TOML)",
                file=path,
                field=extra[0],
            )
        entries = data.get("verifiers", data.get("verifier"))
    else:
        entries = data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            "the verifier config lists no verifiers (a `verifiers` list, or [[verifier]] tables)", file=path
        )
    try:
        return _config_parts(entries, os.path.dirname(os.path.abspath(path)), path)
    except ConfigError as exc:
        exc.file = exc.file or path
        raise


def _config_parts(entries: list[Any], base: str, path: str) -> list[PartSpec]:
    parts = []
    for k, entry in enumerate(entries):
        where = f"verifiers[{k}]"
        if isinstance(entry, str):
            parts.append(parse_spec(entry))
            continue
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table or a spec string", file=path, field=where)
        if not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise ConfigError(f"{where} has no `name`", file=path, field=f"{where}.name")
        part = PartSpec(entry["name"].strip())
        if "weight" in entry:
            part.weight = _weight(entry["weight"], f"{where}.weight = {entry['weight']!r}")
        for role in ROLES:
            if role in entry:
                if not isinstance(entry[role], bool):
                    raise ConfigError(
                        f"{where}.{role} must be true or false", file=path, field=f"{where}.{role}"
                    )
                setattr(part, role, entry[role])
        for key, value in entry.items():
            if key in _PART_KEYS:
                continue
            if key in _PATH_OPTIONS and isinstance(value, str) and not value.lstrip().startswith("{"):
                value = os.path.join(base, os.path.expanduser(value))
            part.options[key] = value
        parts.append(part)
    return parts


# ---------------------------------------------------------------------------------------------------
# building


def _is_config_path(spec: str) -> bool:
    return spec.strip().lower().endswith(CONFIG_SUFFIXES) and os.path.isfile(spec.strip())


def build_parts(
    parts: Sequence[PartSpec], part_options: dict[str, dict[str, Any]] | None = None, **options: Any
) -> Verifier:
    """One Verifier from parsed parts: the verifier itself for one part, else a `CompositeVerifier`.
    `options` are shared (each part takes those its constructor has); `part_options` maps a verifier
    name to options of its own (`{"format": {"schema": ...}}`), an error when no part has that name."""
    if not parts:
        raise ConfigError("no verifier given")
    part_options = dict(part_options or {})
    routed = any(p.name == "per_record" for p in parts)
    for name, opts in part_options.items():
        if not routed and not any(p.name == name for p in parts):
            raise ConfigError(
                f"{', '.join(opts)}: options of the {name} verifier, which is not among the verifiers "
                f"({', '.join(p.name for p in parts)})",
                field="verifier",
            )
    built: list[Verifier] = []
    try:
        for p in parts:
            own = part_options.get(p.name, {}) | p.options
            if p.name == "per_record" and part_options:
                # A record may name any verifier: the per-verifier options travel with the router.
                own = {"part_options": part_options} | own
            built.append(get_verifier(p.name, own_options=own, **options))
    except BaseException:
        for v in built:
            v.close()
        raise
    if len(parts) == 1:
        return built[0]
    primaries = [i for i, p in enumerate(parts) if p.primary]
    if len(primaries) > 1:
        raise ConfigError(f"several verifiers marked primary: {', '.join(str(parts[i]) for i in primaries)}")
    try:
        return CompositeVerifier(
            [(v, p.effective_weight) for v, p in zip(built, parts, strict=True)],
            primary=primaries[0] if primaries else None,
            gates=[i for i, p in enumerate(parts) if p.gate],
        )
    except BaseException:
        for v in built:
            v.close()
        raise


def build_verifier(
    specs: str | Sequence[str] | None = None,
    *,
    config: str | None = None,
    part_options: dict[str, dict[str, Any]] | None = None,
    **options: Any,
) -> Verifier:
    """From CLI-style specs (`["math=0.9", "format=0.1"]`, one string `"format@gate,math"`, or the
    path of a config file) or a `config` file to one Verifier. `options` are shared by the verifiers
    that take them; `part_options` are given to the verifier of that name only."""
    if isinstance(specs, str):
        specs = [specs]
    specs = list(specs or [])
    if len(specs) == 1 and _is_config_path(specs[0]):
        config, specs = specs[0].strip(), []
    if config is not None and specs:
        raise ConfigError("give verifier specs or a verifier config file, not both", field="verifier")
    if config is None:
        parts = [parse_spec(part) for spec in specs for part in spec.split(",") if part.strip()]
        return build_parts(parts, part_options, **options)
    parts = load_config(config)
    try:
        return build_parts(parts, part_options, **options)
    except ConfigError as exc:  # an unknown name or option in the file: say which file
        exc.file = exc.file or str(config)
        raise


def check_fields(verifier: Verifier, items: Sequence[VerifyItem]) -> None:
    """Fail fast on a field name that no item's record has (a typo in `--answer-field`): a
    ConfigError with the closest field names. Meant for the first batch of a run."""
    records = [it.record for it in items if isinstance(it.record, dict)]
    if not records:
        return
    for name in dict.fromkeys(verifier.required_fields()):
        if any(name in r for r in records):
            continue
        keys = sorted({k for r in records for k in r})
        raise ConfigError(
            f"no record has the field {name!r}{did_you_mean(name, keys)} (fields: {', '.join(keys)})",
            field=name,
        )
