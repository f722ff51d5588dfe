"""`grpo-fast verify` end to end through click."""

from __future__ import annotations

import json

from click.testing import CliRunner

from grpo_fast.cli import main

RECORDS = [
    {"prompt": "2+2?", "answer": "4", "id": "a", "meta": {"src": "gsm8k"},
     "responses": [{"text": "<think>ok</think> \\boxed{4}", "tokens": 7}, {"text": "\\boxed{5}", "score": 0.5}]},
    {"prompt": "roots?", "answer": "$\\boxed{-2, 3}$",
     "responses": [{"text": "\\boxed{3, -2}"}, {"text": "I give up"}]},
    {"prompt": "no gold", "responses": [{"text": "\\boxed{1}"}]},
    {"prompt": "slow", "answer": "1", "responses": [{"text": "\\boxed{100000000! - 100000000! + 1}"}]},
]


def write(path, records, extra_lines=()):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        for line in extra_lines:
            f.write(line + "\n")


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_verify_writes_verdicts_and_keeps_fields(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write(src, RECORDS)
    res = CliRunner().invoke(main, ["verify", str(src), "-o", str(out), "--timeout", "1", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    got = read(out)
    assert len(got) == len(RECORDS)
    r0 = got[0]
    assert r0["id"] == "a" and r0["meta"] == {"src": "gsm8k"} and r0["responses"][0]["tokens"] == 7
    assert [r["score"] for r in r0["responses"]] == [1.0, 0.0]
    assert r0["responses"][0]["extracted"] == "4" and r0["responses"][0]["reason"] == "correct"
    assert [r["reason"] for r in got[1]["responses"]] == ["correct", "no_answer"]
    assert got[2]["responses"][0]["reason"] == "no_gold" and got[2]["responses"][0]["score"] is None
    assert got[3]["responses"][0]["reason"] == "timeout" and got[3]["responses"][0]["score"] is None
    assert summary["responses"] == 6
    assert summary["verified"] == 4 and summary["correct"] == 2
    assert summary["pass_rate"] == 0.5
    assert summary["extraction_failures"] == 1
    assert summary["timeouts"] == 1 and summary["errors"] == 1


def test_composite_verifier_option(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write(src, RECORDS[:1])
    res = CliRunner().invoke(main, ["verify", "--verifier", "math=0.9", "--verifier", "format=0.1",
                                    str(src), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    scores = [r["score"] for r in read(out)[0]["responses"]]
    assert scores == [1.0, 0.0]
    assert read(out)[0]["responses"][1]["components"]["format"]["reason"] == "no_think"


def test_bad_line_strict_fails_with_location(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write(src, RECORDS[:1], extra_lines=["{not json"])
    res = CliRunner().invoke(main, ["verify", str(src), "-o", str(out)])
    assert res.exit_code == 2
    assert "2" in res.output  # the line number of the bad line


def test_bad_line_report_goes_to_rejects(tmp_path):
    src, out, rej = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    write(src, RECORDS[:2], extra_lines=["{not json"])
    res = CliRunner().invoke(main, ["verify", str(src), "-o", str(out), "--on-error", "report",
                                    "--rejects", str(rej), "--json"])
    assert res.exit_code == 0, res.output
    assert len(read(out)) == 2
    assert rej.read_text().strip()
    assert json.loads(res.stdout)["rejected_lines"] == 1


def test_human_summary(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write(src, RECORDS[:2])
    res = CliRunner().invoke(main, ["verify", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    for label in ("verified / total", "pass rate", "extraction failures", "timeouts", "verification rate",
                  "wall time"):
        assert label in res.output


def test_unknown_verifier_is_a_clean_error(tmp_path):
    src = tmp_path / "in.jsonl"
    write(src, RECORDS[:1])
    res = CliRunner().invoke(main, ["verify", "--verifier", "nope", str(src), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "unknown verifier" in res.output


def test_last_number_fallback_option(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write(src, [{"prompt": "half?", "answer": "\\frac{1}{2}", "responses": [{"text": "she ate 1/2 of it"}]}])
    for mode, reason in (("auto", "no_answer"), ("always", "correct")):
        res = CliRunner().invoke(main, ["verify", str(src), "-o", str(out), "--last-number-fallback", mode])
        assert res.exit_code == 0, res.output
        assert read(out)[0]["responses"][0]["reason"] == reason
