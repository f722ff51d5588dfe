"""Reading training inputs: prompt records from JSONL, Parquet or a local Hugging Face `datasets`
directory, and already-scored groups for offline training. pyarrow / datasets are imported only
for those formats.

Data sets name their fields differently (MATH: `problem` / `solution`, GSM8K: `question` /
`answer` with `#### 72`), so the prompt and gold-answer fields are found here, once, for `train`,
`generate` and `eval`: an explicit field, else the first well-known name the first record has
(`PROMPT_FIELDS`, `ANSWER_FIELDS`), after an optional renaming (`columns`). `PromptFormat` builds the
prompt a sampler sees from a record (template, system prompt); the chat template comes after it, in
`grpo_fast.sampler.base.format_prompt`. Gold answers are left as stored: the `math` verifier extracts
the final answer of a GSM8K (`#### 72`) or MATH (`\\boxed{}`) solution itself."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpo_fast.errors import DataError, GrpoIOError

# Looked for in this order when no field is named.
PROMPT_FIELDS = ("prompt", "question", "problem", "query", "input")
ANSWER_FIELDS = ("answer", "solution", "gold", "ground_truth", "target")

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _is_prompt(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(m, dict) for m in v))


def _fields_of(record: Mapping[str, Any]) -> str:
    names = list(record)
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "none"


def template_fields(template: str) -> list[str]:
    """The record fields a prompt template names, in order of first use."""
    out: list[str] = []
    for m in _PLACEHOLDER.finditer(template):
        if m.group(1) and m.group(1) not in out:
            out.append(m.group(1))
    return out


@dataclass(frozen=True)
class PromptFormat:
    """How a record becomes the prompt a sampler gets (a string, or chat messages); the sampler
    applies the tokenizer's chat template after this. See `GRPOConfig.prompt_template` and
    `GRPOConfig.system_prompt`."""

    prompt_field: str | None = None
    system_prompt: str | None = None
    prompt_template: str | None = None
    use_chat_template: bool = True

    @classmethod
    def from_config(cls, cfg: Any) -> PromptFormat:
        return cls(cfg.prompt_field, cfg.system_prompt, cfg.prompt_template, cfg.use_chat_template)

    def field_for(self, record: Mapping[str, Any]) -> str | None:
        """The record's prompt field: the named one, else the first well-known name it has."""
        if self.prompt_field:
            return self.prompt_field
        return next((f for f in PROMPT_FIELDS if f in record), None)

    def build(self, record: Mapping[str, Any], *, file: str | None = None, line: int | None = None) -> Any:
        """The prompt of `record`: the template filled from its fields (or its prompt field), then the
        system prompt. Raises DataError naming a missing or unusable field."""
        field = self.field_for(record)
        if self.prompt_template is not None:
            values = dict(record)
            if field is not None and field in record:
                values.setdefault("prompt", record[field])
            content: Any = self._render(values, record, file, line)
        else:
            if field is None or field not in record:
                looked = repr(field) if field else "a prompt field (" + ", ".join(PROMPT_FIELDS) + ")"
                raise DataError(f"record has no {looked}; it has: {_fields_of(record)} (name the prompt field "
                                "with --prompt-field, or map one with --column SOURCE=prompt)",
                                file=file, line=line, field=field or "prompt")
            content = record[field]
            if not _is_prompt(content):
                raise DataError(f"record has no usable {field!r} (a string or a list of chat messages)",
                                file=file, line=line, field=field)
        if not self.system_prompt:
            return content
        if isinstance(content, list):
            return [{"role": "system", "content": self.system_prompt},
                    *(m for m in content if m.get("role") != "system")]
        if not self.use_chat_template:
            return f"{self.system_prompt}\n{content}"
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": content}]

    def _render(self, values: Mapping[str, Any], record: Mapping[str, Any], file: str | None,
                line: int | None) -> str:
        def sub(m: re.Match) -> str:
            if m.group(0) == "{{":
                return "{"
            if m.group(0) == "}}":
                return "}"
            name = m.group(1)
            if name not in values or values[name] is None:
                raise DataError(f"the prompt template names {{{name}}} but the record has no field {name!r}; it "
                                f"has: {_fields_of(record)}", file=file, line=line, field=name)
            v = values[name]
            if isinstance(v, (list, dict)):
                raise DataError(f"the prompt template names {{{name}}}, which is a {type(v).__name__}, not text",
                                file=file, line=line, field=name)
            return str(v)

        return _PLACEHOLDER.sub(sub, self.prompt_template or "")


@dataclass
class PromptData:
    """Records ready for the trainer, `generate` or `eval`, with the fields that were picked.
    `answer_field` is None when no record field holds a gold answer (fine for verifiers that need
    none); `note` is the one line to show when a field was picked automatically."""

    records: list[dict[str, Any]]
    format: PromptFormat
    answer_field: str | None
    note: str | None = None

    @property
    def prompt_field(self) -> str | None:
        return self.format.prompt_field

    def prompts(self, records: Sequence[Mapping[str, Any]] | None = None) -> list[Any]:
        return [self.format.build(r) for r in (self.records if records is None else records)]


def prepare_records(records: Sequence[Mapping[str, Any]], *, file: str | None = None,
                    prompt_field: str | None = None, answer_field: str | None = None,
                    columns: Mapping[str, str] | None = None, system_prompt: str | None = None,
                    prompt_template: str | None = None, use_chat_template: bool = True,
                    need_prompt: bool = True) -> PromptData:
    """The one place where records become training inputs: rename `columns` (`{source: target}`),
    pick the prompt and answer fields (named, else the first well-known name of the first record),
    and check that every record yields a prompt (errors name file, line and field)."""
    if not records:
        raise DataError("no records", file=file)
    out = []
    for i, r in enumerate(records):
        r = dict(r)
        for src, dst in (columns or {}).items():
            if src not in r:
                raise DataError(f"--column {src}={dst}: the record has no field {src!r}; it has: {_fields_of(r)}",
                                file=file, line=i + 1, field=src)
            r[dst] = r.pop(src)
        out.append(r)
    first = out[0]
    notes = []
    if prompt_field is None:
        prompt_field = next((f for f in PROMPT_FIELDS if f in first), None)
        if prompt_field is None and prompt_template is None and need_prompt:
            raise DataError(f"no prompt field: the record has none of {', '.join(PROMPT_FIELDS)}; it has: "
                            f"{_fields_of(first)} (name it with --prompt-field, or map it with --column SOURCE=prompt)",
                            file=file, line=1, field="prompt")
        if prompt_field not in (None, "prompt") and prompt_template is None:
            notes.append(f"prompts from {prompt_field!r} (picked automatically; --prompt-field chooses)")
    if answer_field is None:
        answer_field = next((f for f in ANSWER_FIELDS if f in first), None)
        if answer_field is None:
            notes.append("no gold answer field (looked for " + ", ".join(ANSWER_FIELDS) + "; --answer-field names one)")
        elif answer_field != "answer":
            notes.append(f"gold answers from {answer_field!r} (picked automatically; --answer-field chooses)")
    elif answer_field not in first:
        raise DataError(f"--answer-field {answer_field}: the record has no field {answer_field!r}; it has: "
                        f"{_fields_of(first)}", file=file, line=1, field=answer_field)
    fmt = PromptFormat(prompt_field, system_prompt, prompt_template, use_chat_template)
    if need_prompt:
        for i, r in enumerate(out):
            fmt.build(r, file=file, line=i + 1)
    note = "data: " + "; ".join(notes) if notes else None
    return PromptData(out, fmt, answer_field, note)


def load_prompt_data(path: str | Path, *, limit: int | None = None, **kwargs: Any) -> PromptData:
    """`prepare_records` over the records of `path` (JSONL, Parquet or a `datasets` directory)."""
    records = read_records(path)
    if limit is not None:
        records = records[:limit]
    return prepare_records(records, file=str(path), **kwargs)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a JSONL / Parquet file or a local Hugging Face `datasets` directory, unchecked."""
    p = Path(path)
    if not p.exists():
        raise GrpoIOError(f"no such file or directory: {p}", file=str(p))
    if p.is_dir():
        try:
            from datasets import load_from_disk
        except ImportError as exc:
            raise GrpoIOError(f"{p} is a directory; reading a Hugging Face datasets directory needs "
                              "`pip install datasets`", file=str(p)) from exc
        try:
            ds = load_from_disk(str(p))
        except FileNotFoundError as exc:
            raise GrpoIOError(f"{p} is a directory but not a saved Hugging Face dataset ({exc})",
                              file=str(p)) from exc
        if hasattr(ds, "keys"):  # a DatasetDict: take the train split, else the first
            ds = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
        return [dict(r) for r in ds]
    if p.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise GrpoIOError("reading Parquet needs `pip install pyarrow`", file=str(p)) from exc
        return pq.read_table(str(p)).to_pylist()
    return list(_read_jsonl(p))


def load_prompt_records(path: str | Path, prompt_field: str | None = "prompt",
                        limit: int | None = None) -> list[dict[str, Any]]:
    """All records of `path`, each checked to have `prompt_field` (a string or a list of chat
    messages; None = the first well-known prompt field). `load_prompt_data` also picks the answer
    field and applies renaming, templates and the system prompt."""
    return load_prompt_data(path, limit=limit, prompt_field=prompt_field).records


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
