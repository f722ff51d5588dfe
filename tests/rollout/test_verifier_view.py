"""What verifiers judge in a multi-turn rollout: the model's own text, with every tool output left out
(`Rollout.text`). An answer that only the model's program printed earns nothing; the same answer
written by the model does. Real daemon, real math verifier; the model's text is scripted."""

from __future__ import annotations

import pytest
from scripted import ScriptedSampler

from grpo_fast.cli.generate import response_record
from grpo_fast.rollout import Rollout, RolloutLimits, ToolSampler
from grpo_fast.tools import FunctionTool, build_tools
from grpo_fast.trainer.inputs import resolve_verifier
from grpo_fast.verifiers.base import VerifyItem

EOS = "<|im_end|>"
PRINTS_BOXED = '```python\nprint("\\\\boxed{%d}" % (6 * 7))\n```\n```output\n'


def rollout(tok, sandbox, turns, fmt="code", tools=None):
    def script(prompt, ctx, k):
        text = tok.decode(ctx)
        return turns[min(text.count("```output") + text.count("<|im_start|>tool"), len(turns) - 1)]

    tools = tools if tools is not None else build_tools(["python"], sandbox=sandbox)
    s = ToolSampler(ScriptedSampler(tok, script), tools, tool_format=fmt,
                    limits=RolloutLimits(max_tokens=2000))
    [g] = s.generate(["What is 6*7?"], 1)
    s.close()
    return g.completions[0]


@pytest.fixture(scope="module")
def math_verifier():
    v = resolve_verifier("math")
    yield v
    v.close()


def judge(verifier, r: Rollout):
    [v] = verifier.verify_batch([VerifyItem("What is 6*7?", r.text, {"answer": "42"})])
    return v


@pytest.mark.parametrize(("case", "last_turn", "correct"), [
    ("only the program printed the boxed answer", "Done." + EOS, False),
    ("the program printed it and the model wrote it too", "So the answer is \\boxed{42}." + EOS, True),
    ("the model wrote a wrong answer after the right output", "So \\boxed{41}." + EOS, False),
])
def test_code_format_the_verifier_sees_the_models_text_only(qwen_tok, sandbox, math_verifier, case, last_turn,
                                                            correct):
    r = rollout(qwen_tok, sandbox, [PRINTS_BOXED, last_turn])
    assert r.tool_calls[0].output == "\\boxed{42}\n"
    assert "\\boxed{42}\n" in r.transcript_text  # the model was shown the output
    assert r.text == PRINTS_BOXED + "```\n" + last_turn[:-len(EOS)]  # the verifier is not
    assert judge(math_verifier, r).correct is correct, case


def boxed_lookup(question: str) -> str:
    """Look up the answer to a question.

    Args:
        question: the question
    """
    return "\\boxed{42}"


def test_chat_format_the_tool_message_reaches_the_verifier_empty(qwen_tok, sandbox, math_verifier):
    call = '<tool_call>{"name": "boxed_lookup", "arguments": {"question": "6*7"}}</tool_call>' + EOS
    r = rollout(qwen_tok, sandbox, [call, "Done." + EOS], fmt="chat", tools=[FunctionTool(boxed_lookup)])
    assert r.tool_calls[0].output == "\\boxed{42}"
    assert "<|im_start|>tool\n\\boxed{42}<|im_end|>" in r.transcript_text
    # The tool turn is still there (the model's turns stay apart), its content is not.
    assert "<|im_start|>tool\n<|im_end|>" in r.text and "\\boxed{42}" not in r.text
    assert judge(math_verifier, r).correct is False
    r = rollout(qwen_tok, sandbox, [call, "It is \\boxed{42}." + EOS], fmt="chat",
                tools=[FunctionTool(boxed_lookup)])
    assert judge(math_verifier, r).correct is True


def test_generate_records_carry_the_judged_text_and_the_whole_transcript(qwen_tok, sandbox):
    r = rollout(qwen_tok, sandbox, [PRINTS_BOXED, "Done." + EOS])
    rec = response_record(r, Rollout)
    # `grpo-fast verify` judges `text`; `turns` keeps what the model was shown.
    assert rec["text"] == r.text and "\\boxed{42}" not in rec["text"].replace(PRINTS_BOXED, "")
    assert "".join(t["content"] for t in rec["turns"]) == r.transcript_text
