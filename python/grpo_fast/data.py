"""Reading and writing rollout files (JSONL, `.jsonl.gz`, `.jsonl.zst`, `-` for stdin/stdout).

The heavy lifting is in Rust (`grpo_fast._native`): lines are parsed in parallel and handed
over as NumPy columns. Records as dicts are produced only when asked for (`records=True`,
`iter_records`), since building Python objects is what makes pure-Python readers slow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from grpo_fast import _native

ErrorPolicy = Literal["strict", "report"]
PathLike = str | os.PathLike[str]

DEFAULT_MAX_LINE_BYTES = 64 << 20
"""The longest line read by default (bytes, line ending excluded); longer ones are bad lines."""

# Response fields every response has or that the commands write: not part of the record a
# verifier reads (`response_record`).
_RESPONSE_OWN_FIELDS = frozenset({"text", "score", "correct", "reason", "extracted", "advantage"})


class _StrListField:
    """A `list` field that may also be given the reader's native `StrList`: that is turned into
    the list on first access (and kept), so reading numbers only never builds the strings."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            raise AttributeError  # no class-level default: the dataclass field is required
        value = obj.__dict__[self._slot]
        if isinstance(value, _native.StrList):
            value = value.to_list()
            obj.__dict__[self._slot] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._slot] = value


@dataclass
class GroupBatch:
    """Groups in CSR layout: group `g` owns responses `offsets[g]:offsets[g + 1]`.

    scores: float64, NaN where a response has no verdict yet. correct: int8, 1/0/-1 (unknown).
    text_bytes: uint32 response lengths in bytes. lines: uint64, the input line of each group.
    records: the grouped-form dicts, only when read with `records=True`.
    """

    scores: np.ndarray
    correct: np.ndarray
    text_bytes: np.ndarray
    offsets: np.ndarray
    prompts: list[str] = _StrListField()  # type: ignore[assignment]
    ids: list[str | None] = _StrListField()  # type: ignore[assignment]
    lines: np.ndarray
    records: list[dict[str, Any]] | None = None
    bytes_read: int = 0
    bytes_total: int | None = None

    @property
    def num_groups(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def num_responses(self) -> int:
        return int(self.scores.shape[0])

    @property
    def group_sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def group_index(self) -> np.ndarray:
        """For each response, the index of its group."""
        return np.repeat(np.arange(self.num_groups), self.group_sizes)

    def advantages(self, method: str = "grpo", eps: float = 1e-4) -> np.ndarray:
        from grpo_fast.advantages import compute_advantages

        return compute_advantages(self.scores, self.offsets, method=method, eps=eps)

    @classmethod
    def _from_native(cls, d: dict[str, Any]) -> GroupBatch:
        return cls(**d)

    def __getstate__(self) -> dict[str, Any]:
        # Pickle (and copy) the lists, not the native buffers.
        state = dict(self.__dict__)
        state["_prompts"], state["_ids"] = self.prompts, self.ids
        return state


def _positive_int(name: str, value: Any) -> int:
    """`value` as a positive int, or a ConfigError naming the option (not the OverflowError or
    TypeError the native layer would raise)."""
    from grpo_fast.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value}")
    return min(int(value), 2**63 - 1)


def _score_range(score_range: tuple[float, float] | None) -> tuple[float, float] | None:
    if score_range is None:
        return None
    lo, hi = score_range
    return (float(lo), float(hi))


class BatchIterator:
    """Iterates a file's `GroupBatch`es; `report()` gives the line/record/reject counters."""

    def __init__(self, path: PathLike, **kwargs: Any):
        self._reader = _native.BatchReader(os.fspath(path), **kwargs)

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> GroupBatch:
        d = self._reader.__next__()
        if d is None:
            raise StopIteration
        return GroupBatch._from_native(d)

    def report(self) -> dict[str, Any]:
        return self._reader.report()


def iter_batches(
    path: PathLike,
    *,
    batch_size: int = 65_536,
    on_error: ErrorPolicy = "strict",
    rejects: PathLike | None = None,
    score_range: tuple[float, float] | None = (0.0, 1.0),
    group_key: str | None = None,
    records: bool = False,
    mmap: bool = True,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> BatchIterator:
    """Stream `path` as `GroupBatch`es of about `batch_size` responses (whole groups only).

    on_error: `strict` raises `DataError` (file, line, field) at the first bad line; `report`
    writes every bad line with its reason to `rejects` and keeps going.
    score_range: allowed score interval, or None for any finite score.
    group_key: field that groups flat (one completion per line) records; default `prompt_id`,
    then `id`, then the prompt text.
    mmap: memory-map plain files (faster); turn off for files another process may truncate
    while they are read (a truncated mapping crashes the reader with SIGBUS).
    max_line_bytes: the longest line accepted (line ending excluded); a longer line is a bad
    line, and it is never held in memory whole.
    """
    return BatchIterator(
        path,
        on_error=on_error,
        rejects=os.fspath(rejects) if rejects is not None else None,
        score_range=_score_range(score_range),
        group_key=group_key,
        batch_responses=_positive_int("batch_size", batch_size),
        keep_records=records,
        mmap=mmap,
        max_line_bytes=_positive_int("max_line_bytes", max_line_bytes),
    )


def concat_batches(batches: Iterable[GroupBatch]) -> GroupBatch:
    batches = list(batches)
    if not batches:
        return GroupBatch(
            scores=np.zeros(0), correct=np.zeros(0, np.int8), text_bytes=np.zeros(0, np.uint32),
            offsets=np.zeros(1, np.int64), prompts=[], ids=[], lines=np.zeros(0, np.uint64),
        )
    if len(batches) == 1:
        return batches[0]
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for b in batches:
        offsets.append(b.offsets[1:] + base)
        base += b.num_responses
    records = None
    if all(b.records is not None for b in batches):
        records = [r for b in batches for r in b.records or []]
    return GroupBatch(
        scores=np.concatenate([b.scores for b in batches]),
        correct=np.concatenate([b.correct for b in batches]),
        text_bytes=np.concatenate([b.text_bytes for b in batches]),
        offsets=np.concatenate(offsets),
        prompts=[p for b in batches for p in b.prompts],
        ids=[i for b in batches for i in b.ids],
        lines=np.concatenate([b.lines for b in batches]),
        records=records,
        bytes_read=batches[-1].bytes_read,
        bytes_total=batches[-1].bytes_total,
    )


def read_groups(path: PathLike, **kwargs: Any) -> GroupBatch:
    """Read a whole file into one `GroupBatch` (see `iter_batches` for the options)."""
    return concat_batches(iter_batches(path, **kwargs))


def iter_records(path: PathLike, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Yield every record as a grouped-form dict, in file order (flat files are grouped)."""
    kwargs["records"] = True
    for batch in iter_batches(path, **kwargs):
        yield from batch.records or []


def response_record(record: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The record a verifier reads for one response of `record` (grouped form): the record's
    fields with the response's own fields over them. Flat input (one completion per line) keeps
    each line's fields (its gold `answer`, `tests`, ...) on its response, so they reach the
    verifier this way; a response with only the usual fields gets `record` itself."""
    extra = {k: v for k, v in response.items() if k not in _RESPONSE_OWN_FIELDS}
    if not extra:
        return record
    return {**record, **extra}


class RecordWriter:
    """Writes dicts as JSONL; compression follows the extension. Use as a context manager.

    A file is written to a temporary sibling and put in place (synced, then renamed over
    `path`) by `close()`, so `path` never holds a partial file: until then, or when the `with`
    block ends in an exception (or `abort()` is called), `path` keeps its old content. `-` writes
    to stdout as it goes."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        self._w = _native.JsonlWriter(self.path)

    def write(self, record: dict[str, Any]) -> None:
        self._w.write_records([record])

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        self._w.write_records(list(records))

    def write_lines(self, lines: Iterable[str]) -> None:
        """Write JSON objects already serialised, one per string (without a newline inside)."""
        self._w.write_lines(list(lines))

    @property
    def records_written(self) -> int:
        return self._w.records_written

    def close(self) -> None:
        """Finish the file and put it in place."""
        self._w.close()

    def abort(self) -> None:
        """Give up: nothing is written to `path` (stdout output already written stays)."""
        self._w.abort()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_records(path: PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write all `records` to `path`; returns how many were written."""
    with RecordWriter(path) as w:
        w.write_many(records)
        return w.records_written
