"""`grpo-fast stats | advantages | doctor` end to end, through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "arithmetic_groups.jsonl")


def cli(*args, input=None):
    return subprocess.run([sys.executable, "-m", "grpo_fast.cli", *args], capture_output=True, text=True,
                          input=input)


def scored_file(tmp_path) -> str:
    lines = [
        {"prompt": "a", "responses": [{"text": "x", "score": 1.0}, {"text": "y", "score": 0.0}]},
        {"prompt": "b", "responses": [{"text": "x", "score": 1.0}, {"text": "y", "score": 1.0}]},
        {"prompt": "c", "responses": [{"text": "x"}, {"text": "y", "correct": True}]},
    ]
    p = tmp_path / "s.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(p)


def test_stats_json(tmp_path):
    r = cli("stats", "--json", scored_file(tmp_path))
    assert r.returncode == 0, r.stderr
    (s,) = json.loads(r.stdout)
    assert s["groups"] == 3 and s["responses"] == 6
    assert s["verified"] == 5
    assert s["passed"] == 4
    assert s["zero_std_groups"] == 1
    assert s["group_sizes"] == {"2": 3}
    assert s["advantages"]["grpo"]["mean"] == pytest.approx(0.0)


def test_stats_table_on_the_example():
    r = cli("stats", EXAMPLE)
    assert r.returncode == 0, r.stderr
    assert "prompts (groups)" in r.stderr and "200" in r.stderr


def test_stats_bad_line_strict_and_report(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt":"a","responses":[{"text":"x","score":1}]}\n{"prompt":"b","responses":[{"text":"x","score":"1"}]}\n')
    r = cli("stats", str(p))
    assert r.returncode == 2
    assert f"{p}:2: responses[0].score: expected number, got string" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("stats", "--on-error", "report", "--json", str(p))
    assert r.returncode == 0, r.stderr
    (s,) = json.loads(r.stdout)
    assert s["read"]["rejected"] == 1
    assert os.path.exists(str(p) + ".rejects.jsonl")


def test_advantages_writes_every_response(tmp_path):
    out = tmp_path / "adv.jsonl.zst"
    r = cli("advantages", scored_file(tmp_path), "-o", str(out), "--method", "dr_grpo")
    assert r.returncode == 0, r.stderr
    import grpo_fast

    recs = list(grpo_fast.iter_records(out))
    assert [x["advantage"] for x in recs[0]["responses"]] == [0.5, -0.5]
    assert [x["advantage"] for x in recs[1]["responses"]] == [0.0, 0.0]


def test_advantages_to_stdout():
    r = cli("advantages", EXAMPLE, "-o", "-")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 200
    assert all("advantage" in resp for resp in json.loads(lines[0])["responses"])


def test_doctor_json():
    r = cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(r.stdout)}
    assert checks["native extension"]["ok"] is True
    assert checks["python"]["ok"] is True


@pytest.mark.parametrize("cmd", ["stats", "advantages", "doctor"])
def test_help_has_examples(cmd):
    r = cli(cmd, "--help")
    assert r.returncode == 0
    assert "Examples:" in r.stdout
