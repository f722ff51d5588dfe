"""Prompt sources for training: JSONL, Parquet, a local Hugging Face `datasets` directory, with a
configurable prompt field; errors carry file, line and field."""

from __future__ import annotations

import json

import pytest

from grpo_fast.errors import DataError, GrpoIOError
from grpo_fast.trainer.prompt_data import load_prompt_records, load_scored_groups

ROWS = [{"question": f"{d}=", "answer": str((d + 1) % 10)} for d in range(4)]


def test_jsonl_with_custom_prompt_field(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    assert load_prompt_records(p, "question") == ROWS


def test_chat_message_prompts_are_accepted(tmp_path):
    p = tmp_path / "chat.jsonl"
    p.write_text(json.dumps({"prompt": [{"role": "user", "content": "3="}], "answer": "4"}) + "\n")
    assert load_prompt_records(p)[0]["prompt"][0]["content"] == "3="


@pytest.mark.parametrize(("lines", "line", "field", "why"), [
    (['{"prompt": "1="}', "{not json"], 2, None, "invalid JSON"),
    (['{"prompt": "1="}', '{"question": "2="}'], 2, "prompt", "missing prompt field"),
    (['{"prompt": 5}'], 1, "prompt", "prompt not a string"),
    (["[1, 2]"], 1, None, "record not an object"),
])
def test_bad_records_name_file_line_and_field(tmp_path, lines, line, field, why):
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as exc:
        load_prompt_records(p)
    assert (exc.value.file, exc.value.line, exc.value.field) == (str(p), line, field), why


def test_missing_file_is_an_io_error(tmp_path):
    with pytest.raises(GrpoIOError):
        load_prompt_records(tmp_path / "nope.jsonl")


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), p)
    assert load_prompt_records(p, "question") == ROWS


def test_datasets_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    d = tmp_path / "ds"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(d))
    assert load_prompt_records(d, "question") == ROWS


def test_scored_groups_need_responses_with_text_and_numeric_scores(tmp_path):
    p = tmp_path / "v.jsonl"
    p.write_text(json.dumps({"prompt": "1=", "responses": [{"text": "2", "score": 1.0}, {"text": "3", "score": None}]})
                 + "\n")
    recs = load_scored_groups(p)
    assert recs[0]["responses"][1]["score"] is None
    p.write_text(json.dumps({"prompt": "1=", "responses": [{"text": "2", "score": "high"}]}) + "\n")
    with pytest.raises(DataError):
        load_scored_groups(p)
