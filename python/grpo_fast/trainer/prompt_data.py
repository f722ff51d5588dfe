"""Reading training inputs: prompt records from JSONL, Parquet or a local Hugging Face `datasets`
directory, and already-scored groups for offline training. pyarrow / datasets are imported only
for those formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grpo_fast.errors import DataError, GrpoIOError


def load_prompt_records(path: str | Path, prompt_field: str = "prompt", limit: int | None = None) -> list[dict[str, Any]]:
    """All records of `path`, each checked to have `prompt_field` (a string or a list of chat messages)."""
    p = Path(path)
    if not p.exists():
        raise GrpoIOError(f"no such file or directory: {p}", file=str(p))
    if p.is_dir():
        try:
            from datasets import load_from_disk
        except ImportError as exc:
            raise GrpoIOError(f"{p} is a directory; reading a Hugging Face datasets directory needs "
                              "`pip install datasets`", file=str(p)) from exc
        ds = load_from_disk(str(p))
        if hasattr(ds, "keys"):  # a DatasetDict: take the train split, else the first
            ds = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
        records = [dict(r) for r in ds]
    elif p.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise GrpoIOError("reading Parquet needs `pip install pyarrow`", file=str(p)) from exc
        records = pq.read_table(str(p)).to_pylist()
    else:
        records = list(_read_jsonl(p))
    if limit is not None:
        records = records[:limit]
    for i, r in enumerate(records):
        v = r.get(prompt_field)
        if not (isinstance(v, str) or (isinstance(v, list) and all(isinstance(m, dict) for m in v))):
            raise DataError(f"record has no usable {prompt_field!r} (a string or a list of chat messages)",
                            file=str(p), line=i + 1, field=prompt_field)
    if not records:
        raise DataError("no records", file=str(p))
    return records


def _read_jsonl(p: Path):
    with p.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=str(p), line=n) from exc
            if not isinstance(rec, dict):
                raise DataError("a record must be a JSON object", file=str(p), line=n)
            yield rec


def load_scored_groups(path: str | Path, prompt_field: str = "prompt") -> list[dict[str, Any]]:
    """Verified records for offline training: each needs `responses` with a `text` and a `score`
    (a number, or null for "no verdict"). Uses `grpo_fast.data` (the Rust reader) when present."""
    p = Path(path)
    records = None
    try:
        from grpo_fast import data as gdata  # the streaming Rust reader, when built

        reader = getattr(gdata, "read_records", None) or getattr(gdata, "iter_records", None)
        if reader is not None:
            records = [r if isinstance(r, dict) else dict(r) for r in reader(str(p))]
    except ImportError:
        records = None
    if records is None:
        records = load_prompt_records(p, prompt_field)
    for i, r in enumerate(records):
        resp = r.get("responses")
        if not isinstance(resp, list) or not resp:
            raise DataError("offline training needs a non-empty `responses` list", file=str(p), line=i + 1,
                            field="responses")
        for j, x in enumerate(resp):
            if not isinstance(x, dict) or not isinstance(x.get("text"), str):
                raise DataError("response needs a `text` string", file=str(p), line=i + 1, field=f"responses[{j}].text")
            s = x.get("score")
            if s is not None and (isinstance(s, bool) or not isinstance(s, (int, float))):
                raise DataError("score must be a number or null", file=str(p), line=i + 1,
                                field=f"responses[{j}].score")
    return records
