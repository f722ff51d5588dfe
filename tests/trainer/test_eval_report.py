"""Evaluation as a specification: unbiased pass@k against its formula, maj@k against enumeration of
every k-subset, the report of `grpo-fast eval` from a verified file (values worked out by hand) and
from the tiny local model, and the baseline comparison."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from fractions import Fraction

import pytest
from click.testing import CliRunner

from grpo_fast.errors import ConfigError
from grpo_fast.evaluation import Sample, answer_keys, compare, maj_at_k, parse_ks, pass_at_k, summarize

# ------------------------------------------------------------------------------------------- pass@k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 3, 1, 0.3),  # pass@1 is the share correct
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 2, 2, 1 - 1 / 6),  # 1 - C(2,2)/C(4,2)
        (4, 0, 2, 0.0),  # nothing correct
        (4, 4, 3, 1.0),  # everything correct
        (5, 1, 5, 1.0),  # n - c < k: every 5-subset holds the correct one
        (16, 1, 8, 0.5),  # one correct of 16: in half of the 8-subsets
        (1000, 1, 1, 0.001),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (0, 0, 1), (7, 7, 8)])
def test_pass_at_k_is_undefined_below_k_samples(n, c, k):
    assert pass_at_k(n, c, k) is None


def test_pass_at_k_equals_the_binomial_formula_exactly():
    for n in range(0, 13):
        for c in range(n + 1):
            for k in range(1, 14):
                got = pass_at_k(n, c, k)
                if n < k:
                    assert got is None
                    continue
                exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
                assert got == pytest.approx(float(exact), abs=1e-12), (n, c, k)


def test_pass_at_k_stays_finite_where_binomials_overflow_floats():
    # C(2000, 1000) is ~1e600: the product form never forms it.
    v = pass_at_k(2000, 3, 1000)
    assert v == pytest.approx(1 - (1000 * 999 * 998) / (2000 * 1999 * 1998), rel=1e-9)
    assert pass_at_k(400, 200, 200) == 1.0


def test_pass_at_k_rejects_impossible_counts():
    for n, c, k in [(3, 4, 1), (3, -1, 1), (3, 1, 0)]:
        with pytest.raises(ConfigError):
            pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("spec", "ks"), [("1,8,16", [1, 8, 16]), ("16, 1,8,8", [1, 8, 16]), ([4, 2], [2, 4])]
)
def test_parse_ks(spec, ks):
    assert parse_ks(spec) == ks


@pytest.mark.parametrize("spec", ["", "1,x", "0,4", "-2"])
def test_parse_ks_rejects(spec):
    with pytest.raises(ConfigError):
        parse_ks(spec)


# ------------------------------------------------------------------------------------------- maj@k


def _maj_by_enumeration(votes, k):
    total, count = Fraction(0), 0
    for subset in itertools.combinations(range(len(votes)), k):
        count += 1
        tally = Counter(votes[i] for i in subset if votes[i][0] is not None)
        if not tally:
            continue
        top = max(tally.values())
        leaders = [key for key, m in tally.items() if m == top]
        total += Fraction(sum(ok for _, ok in leaders), len(leaders))
    return total / count


@pytest.mark.parametrize(
    ("votes", "k", "expected"),
    [
        ([("A", True), ("A", True), ("B", False)], 3, 1.0),  # A wins 2:1
        ([("A", True), ("A", True), ("B", False)], 1, 2 / 3),  # maj@1 is the share correct
        ([("A", True), ("A", True), ("B", False)], 2, 2 / 3),  # {A,A} right; {A,B} twice, a tie: half right
        ([("A", False), ("A", False), ("B", True)], 3, 0.0),  # the right answer is outvoted
        ([(None, False), ("A", True)], 1, 0.5),  # a sample without an answer votes for nothing
        ([(None, False), ("A", True)], 2, 1.0),
        ([(None, False), (None, False)], 2, 0.0),  # no votes at all: wrong
        ([("A", True), ("B", False), ("C", False), ("D", False)], 4, 0.25),  # a four-way tie
    ],
)
def test_maj_at_k_hand_computed(votes, k, expected):
    assert maj_at_k(votes, k) == pytest.approx(expected, abs=1e-12)


def test_maj_at_k_is_the_average_over_every_k_subset():
    rng = random.Random(7)
    for _ in range(150):
        n = rng.randint(1, 9)
        keys = [None, "a", "b", "c", "d"][: rng.randint(1, 5)]
        votes = [
            (key := rng.choice(keys), key == "a" or (key == "d" and rng.random() < 0.5)) for _ in range(n)
        ]
        for k in range(1, n + 1):
            assert maj_at_k(votes, k) == pytest.approx(float(_maj_by_enumeration(votes, k)), abs=1e-12)
        assert maj_at_k(votes, n + 1) is None


def test_maj_at_k_handles_many_distinct_answers():
    # 64 different answers, one right: every 16-subset is a tie of singletons.
    votes = [(i, i == 0) for i in range(64)]
    assert maj_at_k(votes, 16) == pytest.approx(1 / 64)


def test_answer_keys_group_equal_answers():
    keys = answer_keys(["\\frac{1}{2}", "0.5", "\\dfrac12", "2", None, "x = 2", "", "1/2"])
    assert keys[0] == keys[1] == keys[2] == keys[7]
    assert keys[3] == keys[5] != keys[0]
    assert keys[4] is None and keys[6] is None


# --------------------------------------------------------------------------------------- summaries


def _s(correct, extracted=None, score=None, length=3):
    return Sample(
        score if score is not None else (None if correct is None else float(correct)),
        correct,
        extracted,
        length,
    )


def test_summarize_leaves_out_prompts_below_k_and_counts_them():
    groups = [
        [_s(True, "4"), _s(True, "4"), _s(False, "5"), _s(False, "6")],  # n=4, c=2
        [_s(False, "1"), _s(None, "2"), _s(True, "3")],  # one without a verdict: n=2, c=1
    ]
    res = summarize(groups, [1, 2, 3])
    assert res["pass@1"] == pytest.approx((0.5 + 0.5) / 2)
    assert res["pass@2"] == pytest.approx(((1 - 1 / 6) + 1.0) / 2)
    assert res["pass@3"] == pytest.approx(1 - 0 / 4)  # only the first prompt: 1 - C(2,3)/C(4,3) = 1
    assert res["k"] == {
        "1": {"prompts": 2, "skipped": 0},
        "2": {"prompts": 2, "skipped": 0},
        "3": {"prompts": 1, "skipped": 1},
    }
    assert res["verification_rate"] == pytest.approx(6 / 7)
    assert res["accuracy"] == pytest.approx(3 / 6)
    assert res["responses"] == 7 and res["mean_length"] == 3.0


def test_summarize_without_extracted_answers_has_no_maj():
    res = summarize([[_s(True), _s(False)]], [1, 2])
    assert res["maj@2"] is None and "maj_note" in res
    assert res["pass@2"] == 1.0


def test_compare_gates():
    model = {"pass@1": 0.62, "accuracy": 0.62, "maj@4": 0.7}
    base = {"pass@1": 0.5, "accuracy": 0.5, "maj@4": None}
    c = compare(model, base, 0.95)
    assert c["pass@1_above_baseline"] == pytest.approx(0.12)
    assert c["capability_retention"] == pytest.approx(1.24)
    assert c["gates"] == {"pass@1_above_baseline": True, "capability_retention>=0.95": True}
    assert c["difference"]["maj@4"] is None
    worse = compare({"pass@1": 0.45}, {"pass@1": 0.5}, 0.95)
    assert worse["gates"] == {"pass@1_above_baseline": False, "capability_retention>=0.95": False}
    assert compare({"pass@1": 0.3}, {"pass@1": 0.0})["capability_retention"] is None


# ------------------------------------------------------------------------------ eval --from a file

GSM = [
    # (prompt, gold, completions): what a small model writes on GSM8K-style questions
    (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "#### 72",
        [
            "In May she sold 48 / 2 = 24 clips. Altogether 48 + 24 = 72.\n#### 72",
            "April: 48, May: 24. Total is $\\boxed{72}$.",
            "She sold 48+24=72 clips. The answer is 72.",
            "48 + 48/2 = 72, so the final answer is \\boxed{72}.",
        ],
    ),
    (
        "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
        "How much did she earn?",
        "#### 10",
        [
            "12/60 = 0.2 per minute, 0.2 * 50 = 10. The answer is $\\boxed{10}$.",
            "She earns 12 * 50 = 600... so \\boxed{600}",
            "Per minute 12/60, for 50 minutes: \\boxed{600}",
            "I am not sure how to solve this.",
        ],
    ),
    (
        "Betty needs $100 for a wallet. She has half of the money. Her parents give $15 and her "
        "grandparents twice as much. How much more money does Betty need?",
        "#### 5",
        [
            "She has 50, parents 15, grandparents 30: 95. She needs \\boxed{6}.",
            "50 + 15 + 30 = 95, so \\boxed{4} more",
            "Needs 100 - 95 = \\boxed{6}",
            "\\boxed{15}",
        ],
    ),
]


def _write_groups(path, data, verified_with=None):
    lines = []
    for i, (prompt, gold, comps) in enumerate(data):
        lines.append(
            json.dumps(
                {
                    "id": f"gsm-{i}",
                    "prompt": prompt,
                    "answer": gold,
                    "responses": [{"text": t} for t in comps],
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _eval(args):
    from grpo_fast.cli.eval import eval_cmd

    return CliRunner().invoke(eval_cmd, args)


def test_eval_from_file_with_hand_computed_pass_and_maj(tmp_path):
    groups = _write_groups(tmp_path / "groups.jsonl", GSM)
    report = tmp_path / "report.json"
    r = _eval(
        ["--from", str(groups), "--verifier", "math", "-k", "1,2,4,8", "--json", "--report", str(report)]
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # Correct per prompt: 4 of 4, 1 of 4, 0 of 4.
    assert res["prompts"] == 3 and res["responses"] == 12 and res["verification_rate"] == 1.0
    assert res["accuracy"] == pytest.approx(5 / 12)
    assert res["pass@1"] == pytest.approx((1 + 0.25 + 0) / 3)
    assert res["pass@2"] == pytest.approx((1 + (1 - 3 / 6) + 0) / 3)  # 1 - C(3,2)/C(4,2) for the second
    assert res["pass@4"] == pytest.approx(2 / 3)
    # n = 4 < 8: undefined, every prompt skipped.
    assert res["pass@8"] is None and res["k"]["8"] == {"prompts": 0, "skipped": 3}
    # maj@4: 72 wins; 600 outvotes 10 (the fourth has no answer); no right answer in the third.
    assert res["maj@4"] == pytest.approx(1 / 3)
    assert res["maj@1"] == pytest.approx(res["pass@1"])
    assert res["length_unit"] == "characters"
    assert json.loads(report.read_text()) == res
    assert sorted(p.name for p in tmp_path.iterdir()) == ["groups.jsonl", "report.json"]  # no temp file left
    assert "pass@8 (0 prompts, 3 skipped: n < k)" in r.stderr


def test_eval_from_a_verified_file_uses_the_stored_verdicts(tmp_path):
    from grpo_fast.cli.verify import verify

    groups = _write_groups(tmp_path / "groups.jsonl", GSM)
    verified = tmp_path / "verified.jsonl"
    v = CliRunner().invoke(verify, [str(groups), "-o", str(verified)])
    assert v.exit_code == 0, v.output
    r = _eval(["--from", str(verified), "-k", "1,4", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["verifier"] == "stored verdicts"
    assert res["pass@4"] == pytest.approx(2 / 3) and res["maj@4"] == pytest.approx(1 / 3)


def test_eval_from_flat_records_of_another_sampler(tmp_path):
    flat = tmp_path / "flat.jsonl"
    flat.write_text(
        "".join(
            json.dumps({"prompt_id": i, "prompt": p, "answer": g, "completion": t}) + "\n"
            for i, (p, g, comps) in enumerate(GSM)
            for t in comps
        )
    )
    r = _eval(["--from", str(flat), "--verifier", "math", "-k", "1,4", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["prompts"] == 3 and res["pass@4"] == pytest.approx(2 / 3)


def test_eval_from_an_unverified_file_says_what_to_do(tmp_path):
    groups = _write_groups(tmp_path / "groups.jsonl", GSM)
    r = _eval(["--from", str(groups)])
    assert r.exit_code == 2
    assert "no response has a verdict" in r.output and "--verifier" in r.output


def test_eval_from_files_against_a_baseline_file(tmp_path):
    model = _write_groups(tmp_path / "model.jsonl", GSM)
    # The baseline got the first prompt wrong everywhere and has a prompt the model lacks.
    base_data = [
        (GSM[0][0], GSM[0][1], ["\\boxed{70}"] * 4),
        GSM[1],
        GSM[2],
        ("What is 2+2?", "4", ["\\boxed{4}"] * 4),
    ]
    base = tmp_path / "base.jsonl"
    base.write_text(
        "".join(
            json.dumps({"id": f"gsm-{i}", "prompt": p, "answer": g, "responses": [{"text": t} for t in c]})
            + "\n"
            for i, (p, g, c) in enumerate(base_data)
        )
    )
    r = _eval(["--from", str(model), "--baseline-from", str(base), "--verifier", "math", "-k", "1", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["pass@1"] == pytest.approx(1.25 / 3)
    assert res["baseline"]["pass@1"] == pytest.approx(0.25 / 3)  # on the 3 common prompts
    comp = res["comparison"]
    assert comp["pass@1_above_baseline"] == pytest.approx(1.0 / 3)
    assert comp["capability_retention"] == pytest.approx(5.0)
    assert comp["gates"] == {"pass@1_above_baseline": True, "capability_retention>=0.95": True}
    assert "3 prompts both files have (0 only in" in comp["note"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "x.jsonl", "--model", "m"], "leave out --model"),
        (["--data", "x.jsonl"], "give --model"),
        (
            ["--model", "m", "--baseline-from", "b.jsonl", "--data", "x.jsonl"],
            "--baseline-from goes with --from",
        ),
        (["--from", "x.jsonl", "-k", "0"], "k must be >= 1"),
    ],
)
def test_eval_argument_errors(tmp_path, args, message):
    r = _eval(args)
    assert r.exit_code == 2 and message in r.output


# ------------------------------------------------------------------------------ eval with a model


def _first_char_is_digit(prompt, response, record):
    from grpo_fast.verifiers.base import Verdict

    ok = response[:1].isdigit()
    return Verdict(1.0 if ok else 0.0, ok, "correct" if ok else "wrong", extracted=response[:1] or None)


@pytest.fixture(scope="module")
def digit_verifier():
    """A verifier an untrained model passes part of the time (the toy tasks' are near 0): the
    completion starts with a digit. Registered under a name so `--verifier` finds it."""
    from grpo_fast.verifiers.base import _REGISTRY, register_verifier
    from grpo_fast.verifiers.registry import FunctionVerifier

    register_verifier("eval_test_first_digit")(lambda: FunctionVerifier(_first_char_is_digit, "first_digit"))
    yield "eval_test_first_digit"
    _REGISTRY.pop("eval_test_first_digit", None)


def test_eval_model_report_matches_its_own_scored_groups(tmp_path, tiny_checkpoint, digit_verifier):
    out = tmp_path / "scored.jsonl"
    r = _eval(
        [
            "--model",
            str(tiny_checkpoint),
            "--toy",
            "digit_sum",
            "--limit",
            "12",
            "--verifier",
            digit_verifier,
            "-n",
            "6",
            "-k",
            "1,3,6,8",
            "--seed",
            "3",
            "--json",
            "-o",
            str(out),
        ]
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    counts = [(len(rec["responses"]), sum(x["correct"] for x in rec["responses"])) for rec in recs]
    assert res["prompts"] == 12 and res["responses"] == 72 and res["samples_per_prompt"] == 6
    for k in (1, 3, 6):
        assert res[f"pass@{k}"] == pytest.approx(sum(pass_at_k(n, c, k) for n, c in counts) / 12)
    assert res["pass@8"] is None and res["k"]["8"]["skipped"] == 12
    votes = [[(x["extracted"], x["correct"]) for x in rec["responses"]] for rec in recs]
    keyed = [list(zip(answer_keys([v[0] for v in vs]), [v[1] for v in vs], strict=True)) for vs in votes]
    assert res["maj@3"] == pytest.approx(sum(maj_at_k(v, 3) for v in keyed) / 12)
    assert 0 < res["pass@1"] < res["pass@6"]  # the verifier passes part of the samples
    assert res["mean_length"] == pytest.approx(
        sum(x["num_tokens"] for rec in recs for x in rec["responses"]) / 72
    )
    assert res["length_unit"] == "tokens"


def test_eval_model_against_itself_as_baseline(tmp_path, tiny_checkpoint, digit_verifier):
    r = _eval(
        [
            "--model",
            str(tiny_checkpoint),
            "--baseline",
            str(tiny_checkpoint),
            "--toy",
            "digit_sum",
            "--limit",
            "6",
            "--verifier",
            digit_verifier,
            "-n",
            "4",
            "-k",
            "1,4",
            "--json",
        ]
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # Same model, same prompts, same seed: the same samples, so no difference at all.
    assert res["baseline"]["pass@1"] == res["pass@1"] > 0
    assert all(d == 0.0 for d in res["comparison"]["difference"].values())
    assert res["comparison"]["capability_retention"] == 1.0
    assert res["comparison"]["gates"] == {"pass@1_above_baseline": False, "capability_retention>=0.95": True}
    assert "pass@1 above baseline" in r.stderr and "FAIL" in r.stderr
