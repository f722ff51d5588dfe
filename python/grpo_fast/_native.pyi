"""Type stubs for the Rust extension `grpo_fast._native`. Use the friendlier wrappers in
`grpo_fast.data` and `grpo_fast.advantages`; these are the raw bindings."""

from collections.abc import Iterable
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str

class BatchDict(TypedDict):
    scores: npt.NDArray[np.float64]
    correct: npt.NDArray[np.int8]
    text_bytes: npt.NDArray[np.uint32]
    offsets: npt.NDArray[np.int64]
    lines: npt.NDArray[np.uint64]
    prompts: StrList
    ids: StrList
    records: list[dict[str, Any]] | None
    bytes_read: int
    bytes_total: int | None

class StrList:
    """A batch's prompts or ids, not yet turned into Python strings."""

    def __len__(self) -> int: ...
    def to_list(self) -> list[str | None]: ...

class BatchReader:
    def __init__(
        self,
        path: str,
        *,
        on_error: str = "strict",
        rejects: str | None = None,
        score_range: tuple[float, float] | None = (0.0, 1.0),
        group_key: str | None = None,
        batch_responses: int = 65536,
        keep_records: bool = False,
        mmap: bool = True,
        max_line_bytes: int = 67108864,
    ) -> None: ...
    def __iter__(self) -> BatchReader: ...
    def __next__(self) -> BatchDict | None: ...
    def report(self) -> dict[str, Any]: ...

class JsonlWriter:
    def __init__(self, path: str) -> None: ...
    def write_records(self, records: Iterable[dict[str, Any]]) -> None: ...
    def write_lines(self, lines: list[str]) -> None: ...
    @property
    def records_written(self) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...

def write_advantages_file(
    input: str,
    output: str,
    *,
    method: str = "grpo",
    eps: float = 1e-4,
    on_error: str = "strict",
    rejects: str | None = None,
    score_range: tuple[float, float] | None = (0.0, 1.0),
    group_key: str | None = None,
    max_line_bytes: int = 67108864,
) -> dict[str, Any]: ...
def compute_advantages(
    scores: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64], method: str = "grpo", eps: float = 1e-4
) -> tuple[npt.NDArray[np.float64], int, int]: ...
def group_stats(scores: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]: ...

class StatsAccumulator:
    def __init__(self, eps: float = 1e-4) -> None: ...
    def add(
        self,
        scores: npt.NDArray[np.float64],
        offsets: npt.NDArray[np.int64],
        correct: npt.NDArray[np.int8],
        text_bytes: npt.NDArray[np.uint32],
    ) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...

def sandboxd_main(argv: list[str]) -> int: ...

# --- math ---
# grpo-math (rust/math): answer extraction, normalisation and the fast path of math checking.
# Verdict codes: 1 correct, 0 wrong, 2 undecided (needs the symbolic path), -1 no answer, -2 empty gold.

def math_check_batch(
    golds: list[str], responses: list[str], last_number_fallback: str = "auto"
) -> tuple[
    npt.NDArray[np.int8], list[str | None], list[str | None], list[str | None], list[str | None]
]:
    """(codes, extracted answers, normalised answers, normalised golds, extraction sources);
    the GIL is released and large batches run in parallel."""

def math_normalize(answer: str) -> str: ...
def math_extract(text: str, last_number_fallback: bool = False) -> tuple[str, str] | None: ...
def math_extract_gold(text: str) -> str | None: ...
def math_compare(gold: str, answer: str) -> int: ...
def number_words(tokens: list[str]) -> list[str]: ...

class FullMatch:
    """A regular expression matched against whole texts in linear time (Rust `regex` syntax)."""

    def __init__(self, pattern: str, dotall: bool = True) -> None: ...
    @property
    def pattern(self) -> str: ...
    def fullmatch(self, text: str) -> bool: ...
    def fullmatch_batch(self, texts: list[str]) -> list[bool]: ...
