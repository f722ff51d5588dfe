"""The Python data API over the Rust reader: columns, records, errors with file/line/field,
error policies, compression and round trips."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math

import numpy as np
import pytest

import grpo_fast
from grpo_fast import DataError, GrpoError, GrpoIOError


def rec(i: int, scores=(1.0, 0.0), **extra) -> dict:
    return {"prompt": f"q{i}", "id": i, "responses": [{"text": f"r{k}", "score": s} for k, s in enumerate(scores)],
            **extra}


def write_lines(path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_columns_match_the_records(tmp_path):
    records = [rec(0, (1.0, 0.0, 0.5)), rec(1, (0.25,)), rec(2, (1.0, 1.0))]
    p = write_lines(tmp_path / "a.jsonl", [json.dumps(r) for r in records])
    b = grpo_fast.read_groups(p)
    assert b.num_groups == 3
    assert b.scores.tolist() == [1.0, 0.0, 0.5, 0.25, 1.0, 1.0]
    assert b.offsets.tolist() == [0, 3, 4, 6]
    assert b.prompts == ["q0", "q1", "q2"]
    assert b.ids == ["0", "1", "2"]
    assert b.lines.tolist() == [1, 2, 3]
    assert b.group_index().tolist() == [0, 0, 0, 1, 2, 2]
    assert b.records is None


def test_prompts_and_ids_are_plain_lists_built_on_first_use(tmp_path):
    import copy
    import pickle

    records = [rec(0), {"prompt": "caf\u00e9 \"q\"", "responses": [{"text": "a"}]}, rec(2)]
    p = write_lines(tmp_path / "a.jsonl", [json.dumps(r) for r in records])
    batches = list(grpo_fast.iter_batches(p))
    assert batches[0].num_groups == 3  # without building the strings
    for make in (lambda b: b, copy.copy, copy.deepcopy, lambda b: pickle.loads(pickle.dumps(b))):
        b = make(next(iter(grpo_fast.iter_batches(p))))
        assert type(b.prompts) is list and b.prompts == ["q0", 'caf\u00e9 "q"', "q2"]
        assert b.ids == ["0", None, "2"]
        assert b.prompts is b.prompts
    b = batches[0]
    b.prompts = ["x", "y", "z"]
    assert dataclasses.replace(b).prompts == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("line", "field", "needle"),
    [
        ('{"prompt":"p","responses":[{"text":"a","score":"1.0"}]}', "responses[0].score", "expected number, got string"),
        ('{"prompt":"p","responses":[{"text":"a","score":NaN}]}', None, "NaN/Infinity"),
        ('{"prompt":"p","responses":[{"text":"a","score":Infinity}]}', None, "NaN/Infinity"),
        ('{"prompt":"p","responses":[{"text":"a","score":-0.5}]}', "responses[0].score", "outside [0, 1]"),
        ('{"prompt":"p","responses":[{"text":"a","score":2}]}', "responses[0].score", "outside [0, 1]"),
        ('[{"prompt":"p"}]', None, "expected a JSON object, got array"),
        ('{"responses":[{"text":"a"}]}', "prompt", "missing required field"),
        ('{"prompt":"p","responses":{"text":"a"}}', "responses", "expected array, got object"),
        ('{"prompt":"p","responses":[]}', "responses", "empty group"),
        ('{"prompt":"p","responses":[{"text":"a"', None, "truncated JSON"),
    ],
)
def test_bad_lines_raise_data_error_with_location(tmp_path, line, field, needle):
    p = write_lines(tmp_path / "bad.jsonl", [json.dumps(rec(0)), line, json.dumps(rec(2))])
    with pytest.raises(DataError) as info:
        grpo_fast.read_groups(p)
    e = info.value
    assert isinstance(e, GrpoError)
    assert (e.file, e.line, e.field) == (p, 2, field)
    assert needle in str(e)


def test_invalid_utf8_names_the_line(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(json.dumps(rec(0)).encode() + b'\n{"prompt":"\xff","responses":[{"text":"a"}]}\n')
    with pytest.raises(DataError, match=r":2: invalid UTF-8"):
        grpo_fast.read_groups(p)


def test_report_policy_keeps_every_good_line_and_writes_rejects(tmp_path):
    lines = [json.dumps(rec(0)), "not json", json.dumps(rec(2)), '{"prompt":"p","responses":[]}', json.dumps(rec(4))]
    p = write_lines(tmp_path / "m.jsonl", lines)
    rejects = tmp_path / "rejects.jsonl"
    it = grpo_fast.iter_batches(p, on_error="report", rejects=rejects)
    batches = list(it)
    report = it.report()
    assert sum(b.num_groups for b in batches) == 3
    assert report["records"] == 3 and report["rejected"] == 2
    bad = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [b["line"] for b in bad] == [2, 4]
    assert bad[0]["raw"] == "not json"
    assert bad[1]["field"] == "responses"


def test_empty_file_crlf_and_bom(tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    assert grpo_fast.read_groups(empty).num_groups == 0
    p = tmp_path / "w.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(rec(0)).encode() + b"\r\n\r\n" + json.dumps(rec(1)).encode() + b"\r\n")
    b = grpo_fast.read_groups(p)
    assert b.prompts == ["q0", "q1"]
    assert b.lines.tolist() == [1, 3]


def test_missing_file_and_truncated_gzip_are_io_errors(tmp_path):
    with pytest.raises(GrpoIOError, match=r"nope\.jsonl"):
        grpo_fast.read_groups(tmp_path / "nope.jsonl")
    data = gzip.compress("".join(json.dumps(rec(i)) + "\n" for i in range(3000)).encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(GrpoIOError, match="truncated"):
        grpo_fast.read_groups(cut)


def test_records_round_trip_unchanged_through_gzip_and_zstd(tmp_path):
    originals = [
        {"z": 1, "prompt": "p \"é\" \n", "responses": [{"text": "a", "score": 0.25, "reasoning": "r",
                                                        "execution_output": "o", "correct": False}],
         "answer": "\\frac{1}{2}", "tests": [{"input": "1", "output": "2"}], "id": "x"},
        {"prompt": "p2", "responses": [{"text": "b", "meta": {"deep": [1, 2.5, None, True]}}], "big": 2**62},
    ]
    src = write_lines(tmp_path / "src.jsonl", [json.dumps(r, ensure_ascii=False) for r in originals])
    for ext in ("jsonl", "jsonl.gz", "jsonl.zst"):
        out = tmp_path / f"out.{ext}"
        n = grpo_fast.write_records(out, grpo_fast.iter_records(src))
        assert n == 2
        back = list(grpo_fast.iter_records(out))
        assert back == originals
        assert [list(r) for r in back] == [list(r) for r in originals], "key order kept"


def test_writer_refuses_non_json_values(tmp_path):
    with grpo_fast.RecordWriter(tmp_path / "x.jsonl") as w, pytest.raises(GrpoError, match="non-finite"):
        w.write({"prompt": "p", "responses": [{"text": "a", "score": math.nan}]})


def test_flat_records_are_grouped(tmp_path):
    lines = [
        {"prompt_id": 7, "prompt": "P", "completion": "a", "reward": 1.0},
        {"prompt_id": 8, "prompt": "Q", "completion": "b", "reward": 0.0},
        {"prompt_id": 7, "prompt": "P", "completion": "c", "reward": 0.0},
    ]
    p = write_lines(tmp_path / "flat.jsonl", [json.dumps(x) for x in lines])
    b = grpo_fast.read_groups(p)
    assert b.prompts == ["P", "Q"]
    assert b.scores.tolist() == [1.0, 0.0, 0.0]
    assert b.offsets.tolist() == [0, 2, 3]
    recs = list(grpo_fast.iter_records(p))
    assert recs[0] == {"prompt_id": 7, "prompt": "P", "responses": [{"text": "a", "score": 1.0},
                                                                      {"text": "c", "score": 0.0}]}


def test_score_range_can_be_widened(tmp_path):
    p = write_lines(tmp_path / "r.jsonl", [json.dumps(rec(0, (-2.0, 3.5)))])
    with pytest.raises(DataError):
        grpo_fast.read_groups(p)
    assert grpo_fast.read_groups(p, score_range=None).scores.tolist() == [-2.0, 3.5]
    assert grpo_fast.read_groups(p, score_range=(-5, 5)).scores.tolist() == [-2.0, 3.5]


def test_batches_hold_whole_groups(tmp_path):
    p = write_lines(tmp_path / "many.jsonl", [json.dumps(rec(i, (1.0, 0.0, 1.0))) for i in range(500)])
    batches = list(grpo_fast.iter_batches(p, batch_size=10))
    assert all(b.num_responses % 3 == 0 for b in batches)
    assert sum(b.num_groups for b in batches) == 500
    assert batches[-1].bytes_read == batches[-1].bytes_total


def test_stdin_is_dash(tmp_path):
    import subprocess
    import sys

    data = "".join(json.dumps(rec(i)) + "\n" for i in range(5))
    code = "import grpo_fast; print(grpo_fast.read_groups('-').num_groups)"
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "5"


def test_fifty_megabyte_line(tmp_path):
    big = {"prompt": "big", "responses": [{"text": "x" * (50 << 20), "score": 0.5}]}
    p = tmp_path / "big.jsonl"
    with open(p, "w") as f:
        f.write(json.dumps(rec(0)) + "\n" + json.dumps(big) + "\n" + json.dumps(rec(2)) + "\n")
    b = grpo_fast.read_groups(p)
    assert b.num_groups == 3
    assert int(b.text_bytes[2]) == 50 << 20
    assert np.isclose(b.scores[2], 0.5)
