"""The verifier interface: a batch of (prompt, response, record) in, one `Verdict` per item out."""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grpo_fast.errors import ConfigError


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`"; did you mean 'answer'?"` for the closest candidates (difflib), or "" when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=3, cutoff=0.7)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def check_choice(value: Any, allowed: Sequence[str], what: str) -> str:
    """`value` if it is one of `allowed`, else a ConfigError naming the choices and the closest one."""
    if value in allowed:
        return value
    raise ConfigError(
        f"{what} must be one of {', '.join(allowed)}, not {value!r}{did_you_mean(value, allowed)}"
    )


@dataclass
class VerifyItem:
    """One response to score. `record` is the whole input record, so a verifier can read the gold
    `answer`, the `tests`, or any field of its own."""

    prompt: str
    response: str
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """The outcome for one response.

    score: in [0, 1]; None means "no verdict" (the item could not be judged; it is excluded from
    training and counted, never silently scored 0).
    correct: the binary judgement, or None when there is none.
    reason: a short machine-friendly word: `correct`, `wrong`, `no_answer`, `timeout`, `error`, ...
    extracted: what the verifier read as the answer (the boxed expression, the program, ...).
    details: verifier-specific extras that are written into the response (e.g. `execution_output`).
    components: a composite's verdict of each part, by part name (`{"math": Verdict, "format":
    Verdict}`); None for a single verifier. The trainer logs `rewards/<name>/mean|std` from them.
    """

    score: float | None
    correct: bool | None
    reason: str
    extracted: str | None = None
    details: dict[str, Any] | None = None
    components: dict[str, Verdict] | None = None


class Verifier(ABC):
    """Scores responses. Batch-first: implementations see many items at once and may parallelise."""

    name: str = "verifier"
    # Whether `correct` judges the answer (math, code, a gold match) rather than something else (the
    # `format` verifier judges the layout): a composite's `correct` comes from the parts that do.
    judges_correctness: bool = True

    @abstractmethod
    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        """Return exactly one Verdict per item, in order. A bad item yields an `error` verdict;
        only a failure of the verifier as a whole raises."""

    def required_fields(self) -> list[str]:
        """Record fields every item needs (a gold answer, tests): `check_fields` fails fast with a
        "did you mean" when none of the first records has one. By default the values of the
        verifier's `answer_field` and `tests_field` attributes."""
        return [v for k in ("answer_field", "tests_field") if isinstance(v := getattr(self, k, None), str)]

    def close(self) -> None:  # noqa: B027 - optional hook, most verifiers hold nothing
        """Release worker processes, sockets, ... ."""

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


VerifierFactory = Callable[..., Verifier]
_REGISTRY: dict[str, VerifierFactory] = {}


def register_verifier(name: str) -> Callable[[VerifierFactory], VerifierFactory]:
    """Decorator: make a Verifier class (or factory returning one) available by `name`."""

    def deco(factory: VerifierFactory) -> VerifierFactory:
        _REGISTRY[name] = factory
        return factory

    return deco
