"""The `per_record` verifier: each record names its own verifier (`"verifier": "math"`), so one file can
mix math, factual, format and code tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grpo_fast.errors import ConfigError, GrpoError
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, register_verifier
from grpo_fast.verifiers.registry import build_parts, parse_spec


@register_verifier("per_record")
class PerRecordVerifier(Verifier):
    """Routes each item to the verifier its record names in `field` (a spec such as `math`,
    `factual` or `format@gate,math=1`), built once per distinct spec with the shared options.

    field: the record field naming the verifier.
    default: the spec for records without the field; None gives those no verdict (`no_verifier`).
    part_options: options for the verifier of a name (`{"factual": {"kb": "kb.jsonl"}}`), used when
        a record names it; every other option is shared, as in `build_verifier`.

    Only built-in and installed (entry-point) verifier names are allowed: `module:attr` and config
    files would let a data file import code. An unknown name is an `error` verdict for that item,
    its message naming the closest verifier.
    """

    name = "per_record"

    def __init__(
        self,
        field: str = "verifier",
        default: str | None = None,
        part_options: dict[str, dict[str, Any]] | None = None,
        **options: Any,
    ):
        self.field = field
        self.default = default
        self.part_options = dict(part_options or {})
        self.options = options
        self._built: dict[str, Verifier | str] = {}
        if default is not None:
            built = self._get(default)
            if isinstance(built, str):
                raise ConfigError(f"per_record default: {built}", field="default")

    def required_fields(self) -> list[str]:
        return [self.field] if self.default is None else []

    def _get(self, spec: str) -> Verifier | str:
        """The verifier for `spec`, or the message saying why there is none."""
        if spec in self._built:
            return self._built[spec]
        try:
            parts = [parse_spec(p) for p in spec.split(",") if p.strip()]
            for p in parts:
                if ":" in p.name or p.name == self.name:
                    raise ConfigError(
                        f"a record may name only built-in or installed verifiers, not {p.name!r}"
                    )
            names = {p.name for p in parts}
            own = {k: v for k, v in self.part_options.items() if k in names}
            built: Verifier | str = build_parts(parts, own, **self.options)
        except GrpoError as exc:
            built = exc.message
        self._built[spec] = built
        return built

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        out: list[Verdict | None] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            rec = it.record if isinstance(it.record, dict) else {}
            spec = rec.get(self.field, self.default)
            if spec is None:
                out[i] = Verdict(
                    None, None, "no_verifier", None, {"message": f"record has no `{self.field}`"}
                )
            elif not isinstance(spec, str) or not spec.strip():
                out[i] = Verdict(
                    None, None, "error", None, {"message": f"`{self.field}` must be a verifier name"}
                )
            else:
                groups.setdefault(spec.strip(), []).append(i)
        for spec, idx in groups.items():
            v = self._get(spec)
            if isinstance(v, str):
                for i in idx:
                    out[i] = Verdict(None, None, "error", None, {"message": v})
                continue
            verdicts = v.verify_batch([items[i] for i in idx])
            for i, vd in zip(idx, verdicts, strict=True):
                vd.details = dict(vd.details or {}) | {"verifier": spec}
                out[i] = vd
        return [v if v is not None else Verdict(None, None, "error") for v in out]

    def close(self) -> None:
        for v in self._built.values():
            if isinstance(v, Verifier):
                v.close()
        self._built.clear()
