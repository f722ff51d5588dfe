"""The registry (names, entry points, module:attr) and weighted composition."""

from __future__ import annotations

import sys
import textwrap

import pytest

from grpo_fast.errors import ConfigError
from grpo_fast.verifiers import (
    CompositeVerifier,
    FormatVerifier,
    FunctionVerifier,
    MathVerifier,
    Verdict,
    VerifyItem,
    available,
    build_verifier,
    get_verifier,
    parse_spec,
)

GOOD = "<think>2 + 2 = 4</think> So \\boxed{4}."
NO_THINK = "2 + 2 = 4, so \\boxed{4}."
WRONG_GOOD_FORMAT = "<think>2 + 2 = 5</think> So \\boxed{5}."


def items(*responses: str, answer: str = "4") -> list[VerifyItem]:
    return [VerifyItem("What is 2 + 2?", r, {"answer": answer}) for r in responses]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("math", ("math", 1.0)), ("math=0.9", ("math", 0.9)), (" format = 0.1", ("format", 0.1)),
     ("pkg.mod:fn=2", ("pkg.mod:fn", 2.0))],
)
def test_parse_spec(spec, expected):
    part = parse_spec(spec)
    assert (part.name, part.effective_weight) == expected and not part.gate and not part.primary


@pytest.mark.parametrize("spec", ["=1", "math=abc", "math=-1", "math=inf", "math=nan"])
def test_parse_spec_rejects_bad_weights(spec):
    with pytest.raises(ConfigError):
        parse_spec(spec)


def test_builtins_are_registered():
    assert {"math", "format"} <= set(available())
    assert isinstance(get_verifier("math"), MathVerifier)
    assert isinstance(get_verifier("format"), FormatVerifier)


def test_options_reach_only_verifiers_that_take_them():
    v = get_verifier("math", timeout=7.5, workers=1)
    assert v.timeout == 7.5
    # FormatVerifier takes no timeout: the option is not forced on it.
    assert isinstance(get_verifier("format", timeout=7.5), FormatVerifier)


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ConfigError, match="math"):
        get_verifier("no-such-verifier")


def test_module_function_and_class(tmp_path, monkeypatch):
    (tmp_path / "my_graders.py").write_text(textwrap.dedent('''
        from grpo_fast.verifiers import Verdict, Verifier

        def exact(prompt, response, record):
            return response.strip() == record["answer"]

        def half(prompt, response, record):
            return 0.5

        def broken(prompt, response, record):
            raise RuntimeError("boom")

        class Length(Verifier):
            name = "length"
            def __init__(self, limit=10):
                self.limit = limit
            def verify_batch(self, items):
                return [Verdict(float(len(i.response) <= self.limit), None, "scored") for i in items]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    v = get_verifier("my_graders:exact")
    assert isinstance(v, FunctionVerifier)
    assert [x.correct for x in v.verify_batch(items("4", "5"))] == [True, False]
    assert get_verifier("my_graders:half").verify_batch(items("x"))[0].score == 0.5
    err = get_verifier("my_graders:broken").verify_batch(items("x"))[0]
    assert err.reason == "error" and err.score is None and "boom" in err.details["message"]
    length = get_verifier("my_graders:Length", limit=3)
    assert [x.score for x in length.verify_batch(items("abc", "abcd"))] == [1.0, 0.0]
    with pytest.raises(ConfigError):
        get_verifier("my_graders:missing")
    with pytest.raises(ConfigError):
        get_verifier("no_such_module_xyz:fn")
    sys.modules.pop("my_graders", None)


def test_entry_point_group(tmp_path, monkeypatch):
    """A verifier published by another package under the `grpo_fast.verifiers` group."""
    (tmp_path / "plugin_graders.py").write_text("def always(prompt, response, record):\n    return True\n")
    dist = tmp_path / "plugin_graders-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-graders\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[grpo_fast.verifiers]\nalways = plugin_graders:always\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "always" in available()
    v = get_verifier("always")
    assert v.verify_batch(items("anything"))[0].correct is True


def test_weighted_composition():
    with build_verifier(["math=0.9", "format=0.1"]) as v:
        assert isinstance(v, CompositeVerifier)
        out = v.verify_batch(items(GOOD, NO_THINK, WRONG_GOOD_FORMAT))
    assert [o.score for o in out] == pytest.approx([1.0, 0.9, 0.1])
    # `correct` is the math part's: a right answer without <think> is correct (it only scores less).
    assert [o.correct for o in out] == [True, True, False]
    assert out[1].reason == "no_think" and out[2].reason == "wrong"
    assert out[0].details["components"]["math"]["reason"] == "correct"


def test_composite_keeps_each_parts_verdict():
    with build_verifier("math=0.9,format=0.1") as v:
        out = v.verify_batch(items(GOOD, NO_THINK, WRONG_GOOD_FORMAT))
    assert [set(o.components) for o in out] == [{"math", "format"}] * 3
    assert [(o.components["math"].score, o.components["format"].score) for o in out] == \
        [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0)]
    assert out[1].components["format"].reason == "no_think" and out[1].components["math"].correct is True
    assert out[0].components["math"].extracted == "4"


def test_a_float_score_is_not_a_correctness():
    half = FunctionVerifier(lambda p, r, rec: 0.5, "half")
    full = FunctionVerifier(lambda p, r, rec: 1.0, "full")
    assert [(x.score, x.correct) for x in half.verify_batch(items("x"))] == [(0.5, None)]
    assert full.verify_batch(items("x"))[0].correct is None
    # Beside math the float part is only a reward; math decides correctness.
    comp = CompositeVerifier([(get_verifier("math"), 0.5), (half, 0.5)])
    out = comp.verify_batch(items(GOOD, WRONG_GOOD_FORMAT))
    assert [o.correct for o in out] == [True, False] and [o.score for o in out] == pytest.approx([0.75, 0.25])
    # Nothing that judges correctness gives one: no correctness at all (not "incorrect").
    assert CompositeVerifier([(half, 1), (full, 1)]).verify_batch(items("x"))[0].correct is None
    # Only parts that do not judge correctness: they count, as before.
    only_format = CompositeVerifier([(FormatVerifier(), 1), (FormatVerifier(think_tags=None), 1)])
    out = only_format.verify_batch(items(GOOD, NO_THINK))
    assert [o.correct for o in out] == [True, False] and set(out[0].components) == {"format", "format#2"}


def test_comma_separated_composition():
    with build_verifier("math=0.9,format=0.1") as v:
        assert isinstance(v, CompositeVerifier)
        assert v.verify_batch(items(NO_THINK))[0].score == pytest.approx(0.9)


def test_weights_are_normalised():
    with build_verifier(["math=3", "format=1"]) as v:
        assert v.verify_batch(items(NO_THINK))[0].score == pytest.approx(0.75)


def test_composite_without_verdict_has_none():
    class NoVerdict(FunctionVerifier):
        pass

    comp = CompositeVerifier([(get_verifier("format"), 0.5),
                              (NoVerdict(lambda p, r, rec: Verdict(None, None, "timeout"), "slow"), 0.5)])
    out = comp.verify_batch(items(GOOD))[0]
    assert out.score is None and out.correct is None and out.reason == "timeout"


def test_composite_rejects_zero_weights():
    with pytest.raises(ConfigError):
        build_verifier(["math=0", "format=0"])


@pytest.mark.parametrize(
    ("response", "reason"),
    [(GOOD, "correct"), (NO_THINK, "no_think"), ("<think> </think> \\boxed{4}", "empty_think"),
     ("<think>a</think><think>b</think>\\boxed{4}", "no_think"), ("<think>a</think> it is 4", "no_answer")],
)
def test_format_verifier(response, reason):
    assert FormatVerifier().verify_batch(items(response))[0].reason == reason


def test_format_verifier_pattern_and_options():
    assert FormatVerifier(pattern=r"ANSWER: \d+").verify_batch(items("ANSWER: 4"))[0].correct
    assert FormatVerifier(think_tags=None).verify_batch(items("\\boxed{4}"))[0].correct
    assert FormatVerifier(answer_source="any").verify_batch(items("<think>a</think> The answer is 4."))[0].correct
    with pytest.raises(ConfigError):
        FormatVerifier(pattern="(")
