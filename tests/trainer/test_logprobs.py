"""The chunked, fused LM-head log-prob pass (`grpo_fast.trainer.logprobs`) against a naive reference:
the model's full logits, one fp32/fp64 log-softmax over the completion positions. Log-probs, entropies
and the gradients wrt every parameter (loss = sum(logps * w) + entropy term), with left-padded
prompts, right-padded completions of different lengths, temperature != 1 and chunk sizes that do not
divide the token count; tied and untied heads, a head with a bias, LoRA (peft), DDP and FSDP2
wrappers, autocast, and the fallbacks (no output embedding, post-processed logits, fused=False).

The exact comparisons run in float64 (the model is cast to double): in float32 the two paths sum the
151,936 exponentials in different orders and round log-probs of magnitude ~12 at ~1e-6 already
(float32 eps x 12 ~ 7e-7 per operation), so 1e-6 is not a meaningful float32 bound; float64 agrees
to ~1e-12 and is compared at 1e-9. A separate float32 test checks the practical accuracy (2e-5)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from grpo_fast.trainer import logprobs as lpmod
from grpo_fast.trainer.logprobs import fused_head, sequence_logprobs, token_logprobs_from_logits

transformers = pytest.importorskip("transformers")

VOCAB = 151936
PROMPTS = [[11, 12, 13, 14], [21, 22, 23, 24, 25, 26], [31, 32]]
COMPLETIONS = [[101, 150000, 103, 104, 151935], [201, 0, 203], [301, 302, 303, 304, 305, 306, 77]]


def _batch(prompts=PROMPTS, completions=COMPLETIONS, pad=0):
    P = max(map(len, prompts))
    C = max(map(len, completions))
    ids, att = [], []
    for p, c in zip(prompts, completions, strict=True):
        ids.append([pad] * (P - len(p)) + p + c + [pad] * (C - len(c)))
        att.append([0] * (P - len(p)) + [1] * (len(p) + len(c)) + [0] * (C - len(c)))
    cm = torch.tensor([[1.0] * len(c) + [0.0] * (C - len(c)) for c in completions])
    return torch.tensor(ids), torch.tensor(att), cm, C


def _qwen(tied: bool, vocab: int = VOCAB, dtype=torch.float64, seed: int = 0):
    torch.manual_seed(seed)
    cfg = transformers.Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied)
    m = transformers.Qwen2ForCausalLM(cfg).to(dtype)
    # A random init gives near-uniform distributions; sharper ones (log-probs from ~-40 to ~0) test more.
    with torch.no_grad():
        m.get_output_embeddings().weight.mul_(8.0)
    return m


_MODELS: dict[bool, nn.Module] = {}


def _cached_qwen(tied: bool):
    if tied not in _MODELS:
        _MODELS[tied] = _qwen(tied)
    return _MODELS[tied]


@pytest.fixture(params=[True, False], ids=["tied", "untied"])
def qwen64(request):
    return _cached_qwen(request.param)


@pytest.fixture
def qwen_untied():
    return _cached_qwen(False)


def naive(model, ids, att, C, temperature, **_):
    """The reference: the model's logits at every position, one log-softmax, no chunking."""
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=False).logits
    z = logits[:, -C - 1:-1].to(torch.promote_types(logits.dtype, torch.float32)) / temperature
    lp_all = z.log_softmax(-1)
    lp = lp_all.gather(-1, ids[:, -C:].unsqueeze(-1)).squeeze(-1)
    ent = -(lp_all.exp() * lp_all).sum(-1)
    return lp, ent


def _grads(model, fn, ids, att, C, temperature, w_lp, w_ent, **kw):
    """(log-probs, entropies, {param name: grad}) of loss = sum(lp * w_lp) + sum(ent * w_ent)."""
    model.zero_grad(set_to_none=True)
    lp, ent = fn(model, ids, att, C, temperature, with_entropy=True, entropy_grad=w_ent is not None, **kw)
    loss = (lp * w_lp).sum()
    if w_ent is not None:
        loss = loss + (ent * w_ent).sum()
    loss.backward()
    g = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return lp.detach(), ent.detach(), g


def _assert_grads_close(g, g_ref, rtol):
    assert g.keys() == g_ref.keys() and g
    for n in g_ref:
        scale = g_ref[n].abs().max().clamp(min=1e-12)
        err = (g[n] - g_ref[n]).abs().max() / scale
        assert err <= rtol, f"{n}: relative grad error {float(err):.3g}"


def _weights(C, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(PROMPTS), C, generator=g).to(dtype), torch.randn(len(PROMPTS), C, generator=g).to(dtype)


# ---------------------------------------------------------------------------------- exact (float64)
@pytest.mark.parametrize("chunk", [4, 256])
def test_logprobs_entropy_and_grads_match_the_naive_reference(qwen64, chunk):
    ids, att, _, C = _batch()
    T = 0.7
    w_lp, w_ent = _weights(C)
    assert fused_head(qwen64)[1] is None
    lp_ref, ent_ref, g_ref = _grads(qwen64, naive, ids, att, C, T, w_lp, w_ent)
    assert lp_ref.min() < -15  # not a near-uniform distribution (log 151936 = 11.9)
    lp, ent, g = _grads(qwen64, sequence_logprobs, ids, att, C, T, w_lp, w_ent, chunk_tokens=chunk, fused=True)
    assert lp.dtype == torch.float64 and lp.shape == (3, C) and ent.shape == (3, C)
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-9)
    _assert_grads_close(g, g_ref, 1e-9)
    # The head's weight got the gradient of the fused projection (tied: plus the embedding lookup's).
    assert "lm_head.weight" in g or "model.embed_tokens.weight" in g


def test_logprob_only_and_entropy_only_gradients(qwen_untied):
    qwen64 = qwen_untied
    ids, att, _, C = _batch()
    w_lp, w_ent = _weights(C, seed=2)
    # log-probs only (entropy returned, not differentiated)
    _, _, g_ref = _grads(qwen64, naive, ids, att, C, 1.3, w_lp, None)
    _, ent, g = _grads(qwen64, sequence_logprobs, ids, att, C, 1.3, w_lp, None, chunk_tokens=4, fused=True)
    _assert_grads_close(g, g_ref, 1e-9)
    # entropy only
    qwen64.zero_grad(set_to_none=True)
    ent_ref = naive(qwen64, ids, att, C, 1.3)[1]
    (ent_ref * w_ent).sum().backward()
    g_ref = {n: p.grad.clone() for n, p in qwen64.named_parameters()}
    qwen64.zero_grad(set_to_none=True)
    _, ent = sequence_logprobs(qwen64, ids, att, C, 1.3, entropy_grad=True, chunk_tokens=4, fused=True)
    (ent * w_ent).sum().backward()
    g = {n: p.grad.clone() for n, p in qwen64.named_parameters()}
    qwen64.zero_grad(set_to_none=True)
    _assert_grads_close(g, g_ref, 1e-9)


def test_entropy_only_when_asked_and_differentiable_only_with_entropy_grad(qwen_untied):
    qwen64 = qwen_untied
    ids, att, _, C = _batch()
    lp, ent = sequence_logprobs(qwen64, ids, att, C, 1.0)
    assert ent is None and lp.requires_grad
    lp, ent = sequence_logprobs(qwen64, ids, att, C, 1.0, with_entropy=True)
    assert lp.requires_grad and not ent.requires_grad
    lp, ent = sequence_logprobs(qwen64, ids, att, C, 1.0, entropy_grad=True)
    assert ent.requires_grad
    with torch.no_grad():
        lp, ent = sequence_logprobs(qwen64, ids, att, C, 1.0, with_entropy=True, entropy_grad=True)
    assert not lp.requires_grad and not ent.requires_grad
    torch.testing.assert_close(ent, naive(qwen64, ids, att, C, 1.0)[1].detach(), rtol=0, atol=1e-9)


def test_fallback_path_matches_the_reference(qwen64):
    ids, att, _, C = _batch()
    w_lp, w_ent = _weights(C, seed=3)
    lp_ref, ent_ref, g_ref = _grads(qwen64, naive, ids, att, C, 0.9, w_lp, w_ent)
    lp, ent, g = _grads(qwen64, sequence_logprobs, ids, att, C, 0.9, w_lp, w_ent, chunk_tokens=7, fused=False)
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-9)
    _assert_grads_close(g, g_ref, 1e-9)


@pytest.mark.parametrize("fused", [True, False])
def test_skip_padding_scores_only_real_completion_tokens(qwen_untied, fused):
    qwen64 = qwen_untied
    ids, att, cm, C = _batch()
    w_lp, w_ent = _weights(C, seed=4)
    w_lp, w_ent = w_lp * cm, w_ent * cm
    lp_ref, ent_ref, g_ref = _grads(qwen64, naive, ids, att, C, 0.8, w_lp, w_ent)
    lp, ent, g = _grads(qwen64, sequence_logprobs, ids, att, C, 0.8, w_lp, w_ent, chunk_tokens=3, fused=fused,
                        skip_padding=True)
    real = cm.bool()
    torch.testing.assert_close(lp[real], lp_ref[real], rtol=0, atol=1e-9)
    torch.testing.assert_close(ent[real], ent_ref[real], rtol=0, atol=1e-9)
    assert (lp[~real] == 0).all() and (ent[~real] == 0).all() and (~real).any()
    _assert_grads_close(g, g_ref, 1e-9)


def test_lm_head_weight_gets_the_same_gradient_through_the_fused_head():
    # Direct check of the autograd.Function on random tensors, independent of any model.
    torch.manual_seed(0)
    N, H, V = 13, 8, 1000
    h = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    w = (torch.randn(V, H, dtype=torch.float64) * 2).requires_grad_()
    b = torch.randn(V, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, V, (N,))
    gl, ge = torch.randn(N, dtype=torch.float64), torch.randn(N, dtype=torch.float64)
    lp, ent = lpmod._LMHeadLogProb.apply(h, w, b, t, 0.6, 4, True, True)
    grads = torch.autograd.grad((lp * gl).sum() + (ent * ge).sum(), (h, w, b))
    z = (h @ w.T + b) / 0.6
    lpa = z.log_softmax(-1)
    lp_ref, ent_ref = lpa.gather(-1, t[:, None]).squeeze(-1), -(lpa.exp() * lpa).sum(-1)
    grads_ref = torch.autograd.grad((lp_ref * gl).sum() + (ent_ref * ge).sum(), (h, w, b))
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-10)
    for a, r in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-12)
    # and against finite differences, on a small vocabulary
    hs, ws, bs = h[:3, :4].detach(), w[:50, :4].detach(), b[:50].detach()
    assert torch.autograd.gradcheck(lambda h, w, b: lpmod._LMHeadLogProb.apply(h, w, b, t[:3] % 50, 0.6, 2, True, True),
                                    (hs.requires_grad_(), ws.requires_grad_(), bs.requires_grad_()))


# ------------------------------------------------------------------------------ float32 and autocast
def test_float32_model_is_close_to_the_float32_reference():
    m = _qwen(tied=False, dtype=torch.float32)
    ids, att, _, C = _batch()
    w_lp, w_ent = _weights(C, dtype=torch.float32)
    lp_ref, ent_ref, g_ref = _grads(m, naive, ids, att, C, 0.7, w_lp, w_ent)
    lp, ent, g = _grads(m, sequence_logprobs, ids, att, C, 0.7, w_lp, w_ent, chunk_tokens=5, fused=True)
    assert lp.dtype == torch.float32 and ent.dtype == torch.float32
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=2e-5)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=2e-5)
    _assert_grads_close(g, g_ref, 1e-4)


def test_bf16_autocast_matches_the_models_own_autocast_logits():
    m = _qwen(tied=True, vocab=5000, dtype=torch.float32)
    ids, att, _, C = _batch()
    ids = ids % 5000
    w_lp, w_ent = _weights(C, seed=10, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # logits in bf16 (autocast), softmax in fp32
        lp_ref, ent_ref, g_ref = _grads(m, naive, ids, att, C, 0.7, w_lp, w_ent)
        lp, ent, g = _grads(m, sequence_logprobs, ids, att, C, 0.7, w_lp, w_ent, chunk_tokens=4, fused=True)
    assert lp.dtype == torch.float32 and g["model.embed_tokens.weight"].dtype == torch.float32
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-5)
    # the reference rounds the logits' gradient to bf16 and its head GEMMs' outputs too; ours keeps fp32
    _assert_grads_close(g, g_ref, 1e-2)


# -------------------------------------------------------------------------------------- wrappers
def test_peft_lora_model_uses_the_base_models_head():
    peft = pytest.importorskip("peft")
    m = _qwen(tied=False)
    lora = peft.get_peft_model(m, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 lora_dropout=0.0, init_lora_weights=False))
    assert fused_head(lora)[0] is m.get_output_embeddings()
    ids, att, _, C = _batch()
    w_lp, w_ent = _weights(C, seed=5)
    lp_ref, ent_ref, g_ref = _grads(lora, naive, ids, att, C, 0.7, w_lp, w_ent)
    lp, ent, g = _grads(lora, sequence_logprobs, ids, att, C, 0.7, w_lp, w_ent, chunk_tokens=6, fused=True)
    assert g.keys() == g_ref.keys() and all("lora_" in n for n in g)  # the head is frozen: no grad for it
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-9)
    _assert_grads_close(g, g_ref, 1e-9)


class _TinyLM(nn.Module):
    """A causal LM that is not a transformers model: a running mean of token + position embeddings,
    an MLP, a head with a bias; `logit_scale` post-processes its logits without announcing it."""

    def __init__(self, vocab=1000, hidden=16, bias=True, logit_scale=1.0):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.pos = nn.Embedding(vocab, hidden), nn.Embedding(64, hidden)
        self.mix = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, vocab, bias=bias)
        with torch.no_grad():
            self.head.weight.mul_(4.0)
            if bias:
                self.head.bias.normal_()
        self.logit_scale = logit_scale

    def forward(self, input_ids, attention_mask, position_ids, use_cache=None, logits_to_keep=0):
        x = self.emb(input_ids) + self.pos(position_ids)
        m = attention_mask.unsqueeze(-1).to(x.dtype)
        h = torch.tanh(self.mix((x * m).cumsum(1) / m.cumsum(1).clamp(min=1)))
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        return SimpleNamespace(logits=self.head(h) * self.logit_scale)


class _TinyLMWithHead(_TinyLM):
    def get_output_embeddings(self):
        return self.head


def test_head_with_bias():
    m = _TinyLMWithHead().double()
    ids, att, _, C = _batch()
    ids = ids % 1000
    w_lp, w_ent = _weights(C, seed=6)
    assert fused_head(m)[0] is m.head
    lp_ref, ent_ref, g_ref = _grads(m, naive, ids, att, C, 1.7, w_lp, w_ent)
    lp, ent, g = _grads(m, sequence_logprobs, ids, att, C, 1.7, w_lp, w_ent, chunk_tokens=1, fused=True)
    assert "head.bias" in g
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-9)
    _assert_grads_close(g, g_ref, 1e-9)


def test_model_without_output_embeddings_falls_back():
    m = _TinyLM().double()
    ids, att, _, C = _batch()
    ids = ids % 1000
    assert fused_head(m) == (None, "no get_output_embeddings()")
    with pytest.raises(ValueError, match="does not apply"):
        sequence_logprobs(m, ids, att, C, 1.0, fused=True)
    w_lp, w_ent = _weights(C, seed=7)
    lp_ref, _, g_ref = _grads(m, naive, ids, att, C, 0.5, w_lp, w_ent)
    lp, _, g = _grads(m, sequence_logprobs, ids, att, C, 0.5, w_lp, w_ent, chunk_tokens=4)
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
    _assert_grads_close(g, g_ref, 1e-9)


def test_unannounced_logit_postprocessing_is_caught_not_silently_wrong():
    m = _TinyLMWithHead(logit_scale=0.5).double()
    ids, att, _, C = _batch()
    ids = ids % 1000
    with pytest.raises(RuntimeError, match="fused=False"):
        sequence_logprobs(m, ids, att, C, 1.0)
    lp, _ = sequence_logprobs(m, ids, att, C, 1.0, fused=False)
    torch.testing.assert_close(lp, naive(m, ids, att, C, 1.0)[0], rtol=0, atol=1e-9)


def test_softcapped_logits_take_the_fallback():
    cfg = transformers.Gemma2Config(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                    final_logit_softcapping=2.0, attn_implementation="sdpa")
    torch.manual_seed(0)
    m = transformers.Gemma2ForCausalLM(cfg).double()
    with torch.no_grad():  # logits far beyond the cap, so that skipping it would be visible
        m.get_output_embeddings().weight.mul_(20.0)
    head, why = fused_head(m)
    assert head is None and "final_logit_softcapping" in why
    ids, att, _, C = _batch()
    ids = ids % 1000
    w_lp, w_ent = _weights(C, seed=8)
    lp_ref, ent_ref, g_ref = _grads(m, naive, ids, att, C, 0.7, w_lp, w_ent)
    with pytest.raises(ValueError, match="final_logit_softcapping"):
        sequence_logprobs(m, ids, att, C, 0.7, fused=True)
    lp, ent, g = _grads(m, sequence_logprobs, ids, att, C, 0.7, w_lp, w_ent, chunk_tokens=5)
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-9)
    _assert_grads_close(g, g_ref, 1e-9)


_DIST_SCRIPT = textwrap.dedent("""
    import sys, copy, torch, torch.distributed as dist
    sys.path.insert(0, sys.argv[1])
    from test_logprobs import _qwen, _batch, _grads, _weights, _assert_grads_close, naive
    from grpo_fast.trainer.logprobs import sequence_logprobs, fused_head, is_fsdp_wrapped
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    ids, att, _, C = _batch()
    ids = ids % 1000
    w_lp, w_ent = _weights(C, seed=9)
    for tied in (True, False):
        m = _qwen(tied, vocab=1000)
        lp_ref, ent_ref, g_ref = _grads(m, naive, ids, att, C, 0.7, w_lp, w_ent)
        ddp = torch.nn.parallel.DistributedDataParallel(copy.deepcopy(m))
        assert fused_head(ddp)[0] is ddp.module.get_output_embeddings()
        lp, ent, g = _grads(ddp, sequence_logprobs, ids, att, C, 0.7, w_lp, w_ent, chunk_tokens=4, fused=True)
        torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
        _assert_grads_close({k.removeprefix("module."): v for k, v in g.items()}, g_ref, 1e-9)

        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        sharded = copy.deepcopy(m)
        mesh = init_device_mesh("cpu", (1,))
        for layer in sharded.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(sharded, mesh=mesh)
        assert is_fsdp_wrapped(sharded) and fused_head(sharded) == (None, "FSDP-sharded model")
        lp, ent, g = _grads(sharded, sequence_logprobs, ids, att, C, 0.7, w_lp, w_ent, chunk_tokens=4)
        torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-9)
        torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-9)
        g = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v) for k, v in g.items()}
        _assert_grads_close(g, g_ref, 1e-9)
    dist.destroy_process_group()
    print("OK")
""")


def test_ddp_uses_the_fused_head_and_fsdp2_falls_back():
    # In a subprocess: a process group would leak into the other tests of this process.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-c", _DIST_SCRIPT, os.path.dirname(__file__)], capture_output=True,
                       text=True, timeout=240, env=env)
    assert p.returncode == 0 and p.stdout.strip().endswith("OK"), p.stdout[-2000:] + p.stderr[-4000:]


# ----------------------------------------------------------------------------------- helpers / TRL
def test_token_logprobs_from_logits():
    torch.manual_seed(0)
    logits = (torch.randn(2, 5, 3000, dtype=torch.float64) * 5).requires_grad_()
    t = torch.randint(0, 3000, (2, 5))
    gl, ge = torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    lp, ent = token_logprobs_from_logits(logits, t, 0.8, entropy_grad=True, chunk_tokens=3)
    g = torch.autograd.grad((lp * gl).sum() + (ent * ge).sum(), logits)[0]
    lpa = (logits / 0.8).log_softmax(-1)
    lp_ref, ent_ref = lpa.gather(-1, t[..., None]).squeeze(-1), -(lpa.exp() * lpa).sum(-1)
    g_ref = torch.autograd.grad((lp_ref * gl).sum() + (ent_ref * ge).sum(), logits)[0]
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(ent, ent_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12)
    # bf16 logits: fp32 result, the same as upcasting first
    lp16, ent16 = token_logprobs_from_logits(logits.detach().bfloat16(), t, 0.8, with_entropy=True)
    lpa = (logits.detach().bfloat16().float() / 0.8).log_softmax(-1)
    assert lp16.dtype == torch.float32 and ent16.dtype == torch.float32
    torch.testing.assert_close(lp16, lpa.gather(-1, t[..., None]).squeeze(-1), rtol=0, atol=1e-5)
    torch.testing.assert_close(ent16, -(lpa.exp() * lpa).sum(-1), rtol=0, atol=1e-5)


def test_agrees_with_trls_fused_lm_head():
    utils = pytest.importorskip("trl.trainer.utils")
    m = _qwen(tied=True, vocab=5000, dtype=torch.float64)
    ids, att, _, C = _batch()
    ids = ids % 5000
    ours, ours_ent = sequence_logprobs(m, ids, att, C, 0.7, with_entropy=True, fused=True)
    utils.add_fused_lm_head(m, temperature=0.7, outputs=("log_probs", "entropy"))
    labels = ids.masked_fill(att == 0, -100)
    labels[:, :-C] = -100
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    out = m(input_ids=ids, attention_mask=att, position_ids=pos, labels=labels, fused_lm_head=True)
    real = att[:, -C:].bool()  # TRL returns 0 at padded completion positions
    # TRL folds the logits in float32 whatever the model's dtype
    torch.testing.assert_close(ours[real].float(), out.log_probs[:, -C:][real], rtol=0, atol=2e-5)
    torch.testing.assert_close(ours_ent[real].float(), out.entropy[:, -C:][real], rtol=0, atol=2e-5)


def test_rejects_a_completion_length_that_does_not_fit():
    m = _TinyLMWithHead()
    ids, att, _, _ = _batch()
    with pytest.raises(ValueError, match="n_completion"):
        sequence_logprobs(m, ids % 1000, att, ids.shape[1], 1.0)
