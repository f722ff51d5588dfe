"""`grpo-fast generate` and `grpo-fast eval` on a saved tiny model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner


def test_generate_writes_one_group_per_prompt(tmp_path, tiny_checkpoint):
    from grpo_fast.cli.generate import generate

    out = tmp_path / "groups.jsonl"
    r = CliRunner().invoke(generate, ["--model", str(tiny_checkpoint), "--toy", "digit_sum", "--limit", "5", "-n", "3",
                                      "--max-new-tokens", "3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["prompt"] for x in recs] == ["0+0=", "0+1=", "0+2=", "0+3=", "0+4="]
    for rec in recs:
        assert len(rec["responses"]) == 3 and rec["answer"] == str(int(rec["prompt"][0]) + int(rec["prompt"][2]))
        for resp in rec["responses"]:
            assert 1 <= resp["num_tokens"] <= 3 and resp["finish_reason"] in ("stop", "length")
            assert resp["logprob"] <= 0


def test_eval_scores_with_the_verifier_and_writes_verdicts(tmp_path, tiny_checkpoint):
    from grpo_fast.cli.eval import eval_cmd

    out = tmp_path / "scored.jsonl"
    r = CliRunner().invoke(eval_cmd, ["--model", str(tiny_checkpoint), "--toy", "next_digit", "-n", "4", "--json",
                                      "-o", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[0])
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    scores = [resp["score"] for rec in recs for resp in rec["responses"]]
    assert res["prompts"] == 10 and len(scores) == 40
    assert res["mean_score"] == pytest.approx(sum(scores) / 40)
    assert res["accuracy"] <= 0.2  # an untrained model is near chance
    assert 0.0 <= res["pass@4"] <= 1.0 and res["verification_rate"] == 1.0


def test_eval_reads_the_gold_from_a_math_solution(tmp_path, tiny_checkpoint):
    """MATH-shaped records (`problem`, `solution` with \\boxed{}): both fields are found, every
    completion gets a verdict (before, the gold was looked for in `answer` only: 0% verified)."""
    from grpo_fast.cli.eval import eval_cmd

    data = tmp_path / "math.jsonl"
    data.write_text("".join(json.dumps({"problem": f"{d}=", "solution": f"so $\\boxed{{{d + 1}}}$"}) + "\n"
                            for d in range(3)))
    r = CliRunner().invoke(eval_cmd, ["--model", str(tiny_checkpoint), "--data", str(data), "--max-new-tokens", "2",
                                      "--no-chat-template", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[0])
    assert res["prompts"] == 3 and res["verification_rate"] == 1.0
    assert "gold answers from 'solution'" in r.output
