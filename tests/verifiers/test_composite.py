"""Composites: the primary part decides `correct`, gates zero the score, every part's verdict is kept;
specs with roles, config files, unknown names and options with "did you mean", per-record verifiers,
and all of it through `grpo-fast verify`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grpo_fast.cli import main
from grpo_fast.errors import ConfigError
from grpo_fast.verifiers import (
    CompositeVerifier,
    FunctionVerifier,
    Verdict,
    VerifyItem,
    build_verifier,
    check_fields,
    get_verifier,
    load_config,
    parse_spec,
)

GOOD = "<think>2 + 2 = 4</think> So \\boxed{4}."
NO_THINK = "2 + 2 = 4, so \\boxed{4}."
WRONG = "<think>2 + 2 = 5</think> So \\boxed{5}."
WRONG_NO_THINK = "It is \\boxed{5}."


def items(*responses, answer="4"):
    return [VerifyItem("What is 2 + 2?", r, {"answer": answer}) for r in responses]


@pytest.mark.parametrize(
    ("spec", "name", "weight", "gate", "primary"),
    [
        ("format@gate", "format", 0.0, True, False),
        ("format@gate=0.2", "format", 0.2, True, False),
        ("math=2@primary", "math", 2.0, False, True),
        ("math@primary", "math", 1.0, False, True),
        ("my.mod:fn@gate+primary", "my.mod:fn", 0.0, True, True),
        (" code = 0.5 ", "code", 0.5, False, False),
    ],
)
def test_spec_roles(spec, name, weight, gate, primary):
    p = parse_spec(spec)
    assert (p.name, p.effective_weight, p.gate, p.primary) == (name, weight, gate, primary)


def test_gate_then_math():
    """`format@gate,math`: the score is math's when the format passes, else 0; `correct` is math's."""
    with build_verifier("format@gate,math") as v:
        out = v.verify_batch(items(GOOD, NO_THINK, WRONG, WRONG_NO_THINK))
    assert [o.score for o in out] == [1.0, 0.0, 0.0, 0.0]
    assert [o.correct for o in out] == [True, True, False, False]
    assert [o.reason for o in out] == ["correct", "no_think", "wrong", "no_think"]
    assert out[1].details["gate"] == "format" and "gate" not in out[0].details
    comps = out[1].details["components"]
    # Each part's own verdict and its share of the total stay in the output.
    assert comps["format"] == {
        "score": 0.0,
        "correct": False,
        "reason": "no_think",
        "weight": 0.0,
        "gate": True,
    }
    assert comps["math"] == {"score": 1.0, "correct": True, "reason": "correct", "weight": 1.0}
    assert out[1].components["math"].extracted == "4" and out[1].extracted == "4"


def test_gate_with_a_weight_also_scores():
    with build_verifier(["format@gate=0.2", "math=0.8"]) as v:
        out = v.verify_batch(items(GOOD, NO_THINK, WRONG))
    assert [o.score for o in out] == pytest.approx([1.0, 0.0, 0.2])


def test_primary_by_default_is_the_first_correctness_part():
    """`format` does not judge correctness, so math is primary even when listed second."""
    with build_verifier("format=0.5,math=0.5") as v:
        assert v.primary == 1
        out = v.verify_batch(items(NO_THINK, WRONG))
    assert [(o.score, o.correct, o.reason) for o in out] == [(0.5, True, "no_think"), (0.5, False, "wrong")]


def test_explicit_primary_between_two_correctness_parts():
    """Two parts that judge correctness: the one marked primary decides; the other only scores."""
    lenient = FunctionVerifier(lambda p, r, rec: True, "lenient")
    comp = CompositeVerifier([(get_verifier("math"), 1.0), (lenient, 1.0)], primary=1)
    out = comp.verify_batch(items(WRONG))[0]
    assert (out.score, out.correct) == (0.5, True) and out.reason == "wrong"
    first = CompositeVerifier([(get_verifier("math"), 1.0), (lenient, 1.0)])
    assert first.verify_batch(items(WRONG))[0].correct is False
    with pytest.raises(ConfigError, match="several verifiers marked primary"):
        build_verifier("math@primary,factual@primary")


def test_no_verdict_propagates_unless_a_gate_failed():
    slow = FunctionVerifier(lambda p, r, rec: Verdict(None, None, "timeout"), "slow")
    fmt = get_verifier("format")
    comp = CompositeVerifier([(fmt, 0.0), (slow, 1.0)], gates=[0])
    ok_format, bad_format = comp.verify_batch(items(GOOD, NO_THINK))
    assert (ok_format.score, ok_format.correct, ok_format.reason) == (None, None, "timeout")
    # The gate failed: the missing verdict does not matter, the score is 0.
    assert (bad_format.score, bad_format.reason) == (0.0, "no_think")
    # A gate without a verdict leaves the composite without one.
    gate_slow = CompositeVerifier([(slow, 0.0), (get_verifier("math"), 1.0)], gates=[0])
    assert gate_slow.verify_batch(items(GOOD))[0].score is None
    # A part with weight 0 that is not a gate does not need a verdict.
    side = CompositeVerifier([(get_verifier("math"), 1.0), (slow, 0.0)])
    assert side.verify_batch(items(GOOD))[0].score == 1.0


def test_a_score_only_gate_passes_on_full_score():
    half = FunctionVerifier(lambda p, r, rec: 0.5, "half")
    full = FunctionVerifier(lambda p, r, rec: 1.0, "full")
    math = get_verifier("math")
    assert CompositeVerifier([(half, 0), (math, 1)], gates=[0]).verify_batch(items(GOOD))[0].score == 0.0
    assert CompositeVerifier([(full, 0), (math, 1)], gates=[0]).verify_batch(items(GOOD))[0].score == 1.0


def test_gate_alone_needs_another_part():
    with pytest.raises(ConfigError, match="weights must not all be zero"):
        build_verifier("format@gate,math=0")


# --- unknown names and options fail fast with "did you mean" ----------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: build_verifier("maht"), "unknown verifier 'maht'; did you mean 'math'"),
        (lambda: build_verifier("factaul"), "did you mean 'factual'"),
        (lambda: build_verifier("format@gaet,math"), "did you mean 'gate'"),
        (
            lambda: build_verifier("math", part_options={"math": {"answer_feild": "a"}}),
            "did you mean 'answer_field'",
        ),
        (
            lambda: build_verifier("factual", part_options={"factual": {"treshold": 0.5}}),
            "did you mean 'threshold'",
        ),
        (
            lambda: build_verifier("factual", part_options={"factual": {"metric": "exct"}}),
            "did you mean 'exact'",
        ),
        (lambda: build_verifier("format", part_options={"format": {"mode": "xm"}}), "did you mean 'xml'"),
        (lambda: build_verifier("code", part_options={"code": {"scoring": "al"}}), "scoring"),
        (
            lambda: build_verifier("code", language="pyhton"),
            "unknown language 'pyhton'; did you mean 'python'",
        ),
        (
            lambda: get_verifier("grpo_fast.verifiers.factual:FactualVerifer"),
            "did you mean 'FactualVerifier'",
        ),
    ],
)
def test_unknown_names_and_options(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_shared_options_reach_only_the_parts_that_take_them():
    # `timeout` is math's; format ignores it. An option of one verifier's own is checked strictly.
    with build_verifier("format@gate,math", timeout=7.0, answer_field="gold") as v:
        assert v.parts[1][0].timeout == 7.0 and v.parts[1][0].answer_field == "gold"


def test_field_check_names_the_closest_field():
    recs = [VerifyItem("p", "x", {"anwser": "4", "prompt": "p"})]
    with build_verifier("math") as v, pytest.raises(ConfigError, match="did you mean 'anwser'"):
        check_fields(v, recs)
    with build_verifier("format@gate,factual", answer_field="answers") as v:
        with pytest.raises(ConfigError, match="no record has the field 'answers'; did you mean 'answer'"):
            check_fields(v, items(GOOD))
    # A field some records have is fine (the others get no_gold verdicts).
    with build_verifier("math") as v:
        check_fields(v, [*items(GOOD), VerifyItem("p", "x", {})])


# --- config files ------------------------------------------------------------------------------------

TOML = """
[[verifier]]
name = "format"
gate = true
mode = "json"
schema = "answer.schema.json"

[[verifier]]
name = "factual"
primary = true
answer_field = "gold"
"""
YAML = """
verifiers:
  - name: format
    gate: true
    mode: json
    schema: answer.schema.json
  - name: factual
    primary: true
    answer_field: gold
"""
SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}


def json_answer_items():
    rec = {"gold": "Canberra"}
    return [
        VerifyItem("Capital of Australia? Reply as JSON.", '{"answer": "Canberra"}', rec),
        VerifyItem("Capital of Australia? Reply as JSON.", '{"answer": "Sydney"}', rec),
        VerifyItem("Capital of Australia? Reply as JSON.", "Canberra", rec),
    ]


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".json"])
def test_config_file(tmp_path, suffix):
    (tmp_path / "answer.schema.json").write_text(json.dumps(SCHEMA))
    cfg = tmp_path / f"verifiers{suffix}"
    text = {
        ".toml": TOML,
        ".yaml": YAML,
        ".json": json.dumps(
            {
                "verifiers": [
                    {"name": "format", "gate": True, "mode": "json", "schema": "answer.schema.json"},
                    {"name": "factual", "primary": True, "answer_field": "gold"},
                ]
            }
        ),
    }[suffix]
    cfg.write_text(text)
    parts = load_config(str(cfg))
    assert [(p.name, p.gate, p.primary) for p in parts] == [("format", True, False), ("factual", False, True)]
    # The schema path is relative to the config file, not the working directory.
    assert parts[0].options["schema"] == str(tmp_path / "answer.schema.json")
    for v in (build_verifier(config=str(cfg)), build_verifier(str(cfg))):
        with v:
            out = v.verify_batch(json_answer_items())
        # factual reads the `answer` of a JSON object; the third response fails the gate.
        assert [(o.score, o.correct, o.reason) for o in out] == [
            (1.0, True, "correct"),
            (0.0, False, "wrong"),
            (0.0, True, "bad_json"),  # right answer, wrong format: correct, but no reward
        ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[[verifier]]\nname = "math"\nanswer_feild = "x"\n', "did you mean 'answer_field'"),
        ('[[verifier]]\nname = "mth"\n', "did you mean 'math'"),
        ('[[verifiers]]\nname = "math"\n[extra]\nx = 1\n', "unknown key 'extra'"),
        ("[[verifier]]\nweight = 1\n", "has no `name`"),
        ('[[verifier]]\nname = "math"\ngate = "yes"\n', "gate must be true or false"),
        ('[[verifier]]\nname = "math"\nweight = -1\n', "weight must be finite"),
        ("[[verifier]\n", "not valid"),
        ("verifiers = []\n", "lists no verifiers"),
    ],
)
def test_bad_config(tmp_path, text, match):
    cfg = tmp_path / "v.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        build_verifier(config=str(cfg))
    assert err.value.file == str(cfg)


def test_config_and_specs_are_exclusive(tmp_path):
    cfg = tmp_path / "v.toml"
    cfg.write_text('[[verifier]]\nname = "math"\n')
    with pytest.raises(ConfigError, match="not both"):
        build_verifier(["math"], config=str(cfg))


# --- per-record verifiers ------------------------------------------------------------------------------


def test_per_record_routes_by_field():
    recs = [
        VerifyItem("2+2?", "\\boxed{4}", {"verifier": "math", "answer": "4"}),
        VerifyItem("Capital?", "Final answer: Canberra", {"verifier": "factual", "answer": "Canberra"}),
        VerifyItem("JSON", '{"a": 1}', {"verifier": "format", "mode": "json"}),
        VerifyItem("2+2?", "2+2 is \\boxed{4}", {"verifier": "format@gate,math", "answer": "4"}),
        VerifyItem("?", "x", {"verifier": "maht", "answer": "4"}),
        VerifyItem("?", "x", {"verifier": "os:system"}),
        VerifyItem("?", "x", {}),
    ]
    with build_verifier("per_record") as v:
        out = v.verify_batch(recs)
    assert [o.reason for o in out[:4]] == ["correct", "correct", "no_think", "no_think"]
    assert out[3].score == 0.0 and out[3].correct is True and out[0].details["verifier"] == "math"
    assert out[4].reason == "error" and "did you mean 'math'" in out[4].details["message"]
    # A data file may not import code.
    assert out[5].reason == "error" and "only built-in or installed" in out[5].details["message"]
    assert (out[6].score, out[6].reason) == (None, "no_verifier")
    with build_verifier("per_record", part_options={"format": {"mode": "json"}}) as v:
        assert v.verify_batch(recs[2:3])[0].reason == "correct"


# --- through the CLI ----------------------------------------------------------------------------------


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_cli_gate_keeps_components(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write(
        src,
        [
            {
                "prompt": "2+2?",
                "answer": "4",
                "responses": [{"text": GOOD}, {"text": NO_THINK}, {"text": WRONG}],
            }
        ],
    )
    res = CliRunner().invoke(
        main, ["verify", "--verifier", "format@gate", "--verifier", "math", str(src), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    resp = read(out)[0]["responses"]
    assert [(r["score"], r["correct"], r["reason"]) for r in resp] == [
        (1.0, True, "correct"),
        (0.0, True, "no_think"),
        (0.0, False, "wrong"),
    ]
    assert resp[1]["components"]["math"]["score"] == 1.0 and resp[1]["components"]["format"]["gate"] is True


def test_cli_factual_kb_and_not_in_kb(tmp_path):
    kb, src, out = tmp_path / "kb.csv", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    kb.write_text("question,answer,aliases\nWhat is the capital of Australia?,Canberra,\n")
    write(
        src,
        [
            {"prompt": "What is the capital of Australia?", "responses": [{"text": "\\boxed{Canberra}"}]},
            {"prompt": "Who painted the Mona Lisa?", "responses": [{"text": "\\boxed{Leonardo}"}]},
        ],
    )
    res = CliRunner().invoke(
        main, ["verify", "--verifier", "factual", "--kb", str(kb), str(src), "-o", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["verified"] == 1 and summary["correct"] == 1 and summary["verification_rate"] == 0.5
    assert summary["reasons"] == {"correct": 1, "not_in_kb": 1}
    assert read(out)[1]["responses"][0]["score"] is None


def test_cli_schema_and_regex(tmp_path):
    schema, src, out = tmp_path / "s.json", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    schema.write_text(json.dumps(SCHEMA))
    write(src, [{"prompt": "p", "responses": [{"text": '{"answer": "x"}'}, {"text": '{"answer": 1}'}]}])
    res = CliRunner().invoke(
        main, ["verify", "--verifier", "format", "--schema", str(schema), str(src), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    resp = read(out)[0]["responses"]
    assert [r["reason"] for r in resp] == ["correct", "schema_mismatch"]
    assert resp[1]["message"] == "schema: $.answer: 1 is not of type 'string'"
    write(src, [{"prompt": "p", "responses": [{"text": "ada@example.org"}, {"text": "ada at example"}]}])
    res = CliRunner().invoke(
        main,
        ["verify", "--verifier", "format", "--regex", r"[\w.+-]+@[\w-]+\.[\w.]+", str(src), "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert [r["correct"] for r in read(out)[0]["responses"]] == [True, False]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--verifier", "maht"], "did you mean 'math'"),
        (["--verifier", "math", "--kb", "kb.jsonl"], "options of the factual verifier"),
        (["--answer-field", "anwser"], "did you mean 'answer'"),
        (["--verifier", "math", "--verifier-config", "v.toml"], "not both"),
    ],
)
def test_cli_fails_fast(tmp_path, args, match):
    src = tmp_path / "in.jsonl"
    write(src, [{"prompt": "2+2?", "answer": "4", "responses": [{"text": GOOD}]}])
    (tmp_path / "v.toml").write_text('[[verifier]]\nname = "math"\n')
    (tmp_path / "kb.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    res = CliRunner().invoke(
        main, ["verify", str(src), "-o", str(tmp_path / "o.jsonl"), *args], catch_exceptions=False
    )
    assert res.exit_code != 0 and match in res.output


def test_trainer_resolves_gated_specs():
    """The trainer builds its verifier from the same spec string."""
    from grpo_fast.trainer.inputs import resolve_verifier

    with resolve_verifier("format@gate,math", answer_field="answer") as v:
        assert isinstance(v, CompositeVerifier) and v.gates == [0] and v.primary == 1
        assert [o.score for o in v.verify_batch(items(GOOD, NO_THINK))] == [1.0, 0.0]
