"""The transformers sampler: groups of completions with token ids and log-probs that agree with the
trainer's padding-aware log-prob computation, and chat-template formatting."""

from __future__ import annotations

import pytest
import torch

from grpo_fast.sampler import TransformersSampler, format_prompt
from grpo_fast.trainer.loop import build_batch, sequence_logprobs
from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    return build_tiny_model(tok, seed=1), tok


def test_groups_have_n_completions_with_consistent_tokens(tiny):
    model, tok = tiny
    torch.manual_seed(0)
    s = TransformersSampler(model, tok, max_new_tokens=4, use_chat_template=False)
    groups = s.generate(["3=", "12+7="], n=5, records=[{"answer": "4"}, {"answer": "19"}])
    assert [len(g.completions) for g in groups] == [5, 5]
    assert groups[1].record == {"answer": "19"}
    assert groups[0].prompt_ids == tok("3=")["input_ids"]
    for g in groups:
        for c in g.completions:
            assert len(c.token_ids) == len(c.logprobs) <= 4
            assert all(lp <= 0 for lp in c.logprobs)
            if c.finish_reason == "stop":
                assert c.token_ids[-1] == tok.eos_token_id and tok.eos_token_id not in c.token_ids[:-1]
            else:
                assert len(c.token_ids) == 4 and tok.eos_token_id not in c.token_ids
            assert c.text == tok.decode([t for t in c.token_ids if t != tok.eos_token_id])


@pytest.mark.parametrize(("ids", "text", "finish"), [
    ([5, 2], "1", "stop"),  # EOS ends the completion and is not part of the text
    ([5, 3], "1<unk>", "length"),  # an UNK must stay visible: hiding it let a policy fake an EOS
    ([5, 0, 2], "1<pad>", "stop"),
    ([5, 2, 6, 2], "1", "stop"),  # everything after the first stop token is dropped
])
def test_split_completion_keeps_special_tokens_in_the_text(ids, text, finish):
    from grpo_fast.sampler.base import split_completion
    from grpo_fast.trainer.toy_tasks import ToyExactVerifier
    from grpo_fast.verifiers.base import VerifyItem

    tok = build_char_tokenizer()
    got_ids, got_text, got_finish = split_completion(tok, ids, [tok.eos_token_id])
    assert (got_text, got_finish) == (text, finish)
    assert got_ids == ids[:ids.index(2) + 1] if 2 in ids else ids
    verdict = ToyExactVerifier().verify_batch([VerifyItem("0=", got_text, {"answer": "1"})])[0]
    assert verdict.correct is (text == "1")


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logprobs_equal_trainer_logprobs_with_left_padding(tiny, temperature):
    """Prompts of different lengths are left-padded for generation; the trainer's forward pass (with
    position ids that skip the padding) must give the same log-probs for the sampled tokens."""
    model, tok = tiny
    torch.manual_seed(1)
    s = TransformersSampler(model, tok, max_new_tokens=4, temperature=temperature, use_chat_template=False)
    groups = s.generate(["3=", "12+7=", "1+1="], n=3)
    rows = [(g.prompt_ids, c.token_ids, 0.0, True) for g in groups for c in g.completions]
    batch = build_batch(rows, tok.pad_token_id)
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.n_completion, temperature)
    for i, (_, comp, _, _) in enumerate(rows):
        c = [c for g in groups for c in g.completions][i]
        got = lp[i, :len(comp)]
        assert torch.allclose(got, torch.tensor(c.logprobs), atol=1e-5), (i, got, c.logprobs)
        assert batch.completion_mask[i].sum() == len(comp)


def test_chat_template_is_applied_when_the_tokenizer_has_one(tiny):
    _, tok = tiny
    tok = build_char_tokenizer()
    assert format_prompt(tok, "3=") == "3="  # no template: the text as is
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}={% endif %}"
    assert format_prompt(tok, "3") == "3 ="
    assert format_prompt(tok, [{"role": "user", "content": "4"}]) == "4 ="
    assert format_prompt(tok, "3", use_chat_template=False) == "3"
    s = TransformersSampler(build_tiny_model(tok), tok, max_new_tokens=2)
    texts, ids = s.encode_prompts(["3"])
    # The template text carries no BOS; the sampler does not add special tokens to templated text.
    assert texts == ["3 ="] and ids[0] == tok("3 =", add_special_tokens=False)["input_ids"]
