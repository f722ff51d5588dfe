"""The progress file of `generate`/`eval` (`grpo_fast.resume.PartialRun`) on its own: what it keeps,
what it refuses, what it drops (only a last line cut off by a kill), and where batches fall."""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest

from grpo_fast.errors import ConfigError, DataError
from grpo_fast.resume import (
    PartialRun,
    Terminated,
    _deferred_signals,
    batch_ranges,
    fingerprint,
    stop_on_signals,
)

OPTIONS = {"model": "Qwen/Qwen2.5-0.5B-Instruct", "num_generations": 4, "temperature": 1.0, "seed": 0}


def _group(i: int) -> dict:
    return {
        "id": f"gsm8k-{i}",
        "prompt": f"Natalia sold clips to {i} friends...",
        "answer": f"#### {i + 1}",
        "responses": [
            {
                "text": f"So the answer is \\boxed{{{i + 1}}}.",
                "num_tokens": 12,
                "finish_reason": "stop",
                "logprob": -3.25,
            }
        ],
    }


def _keys(n: int) -> list[str]:
    return [fingerprint(_group(i), _group(i)["prompt"]) for i in range(n)]


def _run(out, n=10, resume=True, options=OPTIONS) -> PartialRun:
    return PartialRun(str(out), command="generate", options=options, keys=_keys(n), resume=resume)


def test_kept_lines_read_back_exactly_and_the_file_goes_when_done(tmp_path):
    out = tmp_path / "groups.jsonl"
    with _run(out) as run:
        lines = run.add(0, [_group(0), _group(1)])
        run.add(2, [_group(2)])
        assert run.done == 3 and list(run.lines()) == [*lines, json.dumps(_group(2), separators=(",", ":"))]
    # closed with finished items: kept; the next run continues after them
    with _run(out) as run:
        assert run.done == 3 and [json.loads(x) for x in run.lines()] == [_group(i) for i in range(3)]
        run.add(3, [_group(i) for i in range(3, 10)])
        assert run.complete and list(run.records(8)) == [_group(8), _group(9)]
        run.discard()
    assert os.listdir(tmp_path) == []


def test_items_are_added_in_order_only(tmp_path):
    with _run(tmp_path / "g.jsonl") as run:
        with pytest.raises(ValueError):
            run.add(1, [_group(1)])
        with pytest.raises(ValueError):
            run.add(0, [_group(i) for i in range(11)])


def test_a_cut_off_last_line_is_the_only_thing_dropped(tmp_path):
    out = tmp_path / "g.jsonl"
    with _run(out) as run:
        run.add(0, [_group(i) for i in range(4)])
    path = tmp_path / "g.jsonl.partial"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"i":4,"key":"' + _keys(5)[4].encode() + b'","record":{"id":"gsm8k-4","pro')
    with _run(out) as run:
        assert run.done == 4 and "dropped its last line" in run.notes[0]
        assert path.read_bytes() == whole  # cut back to the last whole line before anything is appended
        run.add(4, [_group(4)])
    # a line cut exactly before its newline is cut off too (the newline is part of every write)
    full = path.read_bytes()
    path.write_bytes(full[:-1])
    with _run(out) as run:
        assert run.done == 4 and run.notes


def test_a_damaged_line_before_the_end_is_an_error_not_a_drop(tmp_path):
    out = tmp_path / "g.jsonl"
    with _run(out) as run:
        run.add(0, [_group(i) for i in range(4)])
    path = tmp_path / "g.jsonl.partial"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"answer"', b'"answer')
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    with pytest.raises(DataError) as e:
        _run(out)
    assert e.value.line == 3 and "not the progress line of item 2" in e.value.message
    assert path.read_bytes() == before


def test_without_resume_finished_items_are_refused_and_none_are_started_over(tmp_path):
    out = tmp_path / "g.jsonl"
    with _run(out) as run:
        run.add(0, [_group(0)])
    with pytest.raises(ConfigError, match=r"holds 1 finished groups .* add --resume"):
        _run(out, resume=False)
    # a file with no finished item (killed in its first batch) is simply started over
    path = tmp_path / "g.jsonl.partial"
    path.write_bytes(path.read_bytes().split(b"\n")[0] + b"\n")
    with _run(out, resume=False, options={**OPTIONS, "seed": 5}) as run:
        assert run.done == 0
    assert not path.exists(), "nothing finished: nothing left behind"
    # nor is a header cut off by a kill anything to keep
    path.write_bytes(b'{"grpo_fast_partial":1,"comm')
    with _run(out, resume=False) as run:
        assert run.done == 0 and "no finished groups" in run.notes[0]


def test_values_json_cannot_hold_are_an_error_naming_the_item(tmp_path):
    with _run(tmp_path / "g.jsonl") as run:
        bad = _group(0)
        bad["responses"][0]["logprob"] = math.nan
        with pytest.raises(DataError, match="item 1: cannot be written as JSON"):
            run.add(0, [bad])
        assert run.done == 0
        # NumPy values (Parquet and datasets records) are written as their numbers
        rec = {**_group(0), "difficulty": np.int64(3), "weights": np.array([0.5, 0.25])}
        line = run.add(0, [rec])[0]
        assert json.loads(line)["difficulty"] == 3 and json.loads(line)["weights"] == [0.5, 0.25]


def test_batches_fall_where_an_uninterrupted_run_puts_them():
    assert batch_ranges(0, 10, 0, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_ranges(0, 10, 8, 4) == [(8, 10)]
    assert batch_ranges(0, 10, 10, 4) == []
    # a batch cut in the middle is sampled whole again (its finished items are dropped by the caller)
    assert batch_ranges(0, 10, 5, 4) == [(4, 8), (8, 10)]
    # a second side (a baseline) is placed from its own start
    assert batch_ranges(30, 60, 38, 4) == [(38, 42), (42, 46), (46, 50), (50, 54), (54, 58), (58, 60)]
    assert batch_ranges(30, 60, 12, 4)[0] == (30, 34)


def test_a_signal_during_a_write_is_raised_once_the_write_is_done():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        reached = False
        with pytest.raises(Terminated):
            with _deferred_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                reached = True  # not raised inside: the batch would be written whole
        assert reached
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            # the handler raises at the next instruction
            for _ in range(100):
                pass
    assert signal.getsignal(signal.SIGTERM) is before
