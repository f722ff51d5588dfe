"""Memory-lean per-token log-probs (and entropy) of completion tokens: a drop-in replacement for
`loop.sequence_logprobs` that never materialises the (tokens x vocab) logits.

The old pass ran the LM head over every position (prompt included), upcast all logits to fp32 and kept
the whole log-softmax for the entropy: ~4x the fp32 logits at its peak (9.5 GB for 8 x 512 completion
tokens with Qwen2.5's 151,936-token vocabulary). Here:

* The model is called once, through whatever wrapper it has (DDP, peft: their hooks run), with
  `logits_to_keep=C+1`. A forward pre-hook on the output embedding captures what the LM head would
  see (the final hidden states after the final norm, for whatever architecture) and lets the head
  itself run on the last position only (B x vocab, used below as a consistency check). Capturing the
  head's input rather than asking for `output_hidden_states=True` avoids keeping every layer's
  hidden states alive (L+1 x B x T x H, ~3 GB for a 28-layer model at 32 x 1024 tokens in bf16, under
  no_grad where nothing else would keep them), and does not depend on `hidden_states[-1]` being the
  post-norm state (it is in transformers 5.19 for Qwen2/Llama, via `tie_last_hidden_states`).
* `_LMHeadLogProb` (a torch.autograd.Function) projects the C positions that predict the completion
  through the head in chunks of `chunk_tokens` tokens: per chunk, fp32 logits / temperature, their
  logsumexp, the target's logit and (only when asked) the entropy; the chunk's logits are dropped.
  Backward recomputes each chunk's logits and turns them, in place, into the gradient of the logits,
  then accumulates the gradients of the hidden states, the head weight (in fp32) and the bias. Peak
  memory for the head is O(chunk_tokens x vocab), independent of the batch.

Fallback (documented; `fused=False` forces it): when the fused path cannot be trusted to compute what
the model computes, the model is called with `logits_to_keep=C+1` (so its head runs over the C+1 last
positions only, not the prompt) and the log-probs are taken from those logits by `_LogitsLogProb`,
chunked the same way (with grad it keeps the logits in the model's dtype plus their gradient, not four
fp32 copies). That happens when:
  - the model has no `get_output_embeddings()`, or it is not a plain `nn.Linear` with floating-point
    weights (a LoRA-wrapped or quantised head, `modules_to_save`),
  - the model is FSDP-sharded (FSDP1 `FullyShardedDataParallel` or FSDP2 `fully_shard` modules
    anywhere in it, or a DTensor head weight): the head's weight is a shard outside FSDP's forward,
  - the config post-processes the logits (Gemma-2 `final_logit_softcapping`, Cohere `logit_scale`,
    `output_multiplier`, `lm_head_multiplier`, Granite `logits_scaling`),
  - the head is never called during the forward (e.g. logits computed with F.linear on the input
    embedding's weight).
Any other post-processing the config does not announce is caught by the consistency check on the
last position: the fused path raises instead of returning wrong numbers (pass `fused=False`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

# Tokens per chunk of the LM-head projection. The head's working set is two (chunk x vocab) fp32
# buffers (plus the bf16 logits under autocast): ~1.2 MB per token of chunk at Qwen2.5's 151,936-token
# vocabulary. Measured on CPU (`benches/bench_logprobs.py --sweep --rows 8`: 8 x 512 completion tokens,
# vocab 151,936, hidden 128, fp32, 2 threads; CPU seconds of the pass / peak MB above the model):
#     chunk        64      128     256     512    1024    2048
#     no grad   5.2 s    4.6 s   3.9 s   3.4 s   3.6 s   4.3 s
#               123 MB   195 MB  338 MB  646 MB 1238 MB 2415 MB
#     train    16.9 s   13.2 s   9.9 s  10.1 s  12.6 s  11.9 s
#               245 MB   293 MB  430 MB  727 MB 1342 MB 2530 MB
# Small chunks lose to per-chunk costs (each chunk re-reads the whole head weight and, in backward,
# read-modify-writes its whole fp32 gradient); beyond 512 the chunk no longer fits the caches. 256 is
# within noise of the fastest at half the memory of 512. On a GPU larger chunks cost little memory
# (config `logprob_chunk_size`).
DEFAULT_CHUNK_TOKENS = 256

# Config attributes with which a model post-processes its LM head's output (the fused path falls back).
_LOGIT_POSTPROCESSING_ATTRS = ("final_logit_softcapping", "logit_scale", "output_multiplier",
                               "lm_head_multiplier", "logits_scaling")

_KEEP_KWARG_CACHE: dict[type, str | None] = {}


# ------------------------------------------------------------------------------------ model plumbing
def unwrap_model(model: Any) -> Any:
    """The module that owns the LM head: peels DDP / DataParallel (`.module`), torch.compile
    (`._orig_mod`) and peft (`get_base_model()`) wrappers."""
    m = model
    for _ in range(16):
        if isinstance(m, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            m = m.module
        elif hasattr(m, "_orig_mod") and isinstance(m._orig_mod, nn.Module):
            m = m._orig_mod
        elif callable(getattr(type(m), "get_base_model", None)):  # peft PeftModel
            base = m.get_base_model()
            if base is m:
                break
            m = base
        else:
            break
    return m


def is_fsdp_wrapped(model: Any) -> bool:
    """Whether any module of `model` is FSDP-sharded (FSDP1 wrapper or FSDP2 `fully_shard`)."""
    if not isinstance(model, nn.Module):
        return False
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover - torch built without distributed
        return False
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch < 2.6
        FSDPModule = FullyShardedDataParallel
    return any(isinstance(m, (FullyShardedDataParallel, FSDPModule)) for m in model.modules())


def _is_dtensor(t: Any) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover
        return False
    return isinstance(t, DTensor)


def fused_head(model: Any) -> tuple[nn.Linear | None, str | None]:
    """(the LM head the fused path projects through, None) when the fused path applies to `model`,
    else (None, why not)."""
    if is_fsdp_wrapped(model):
        return None, "FSDP-sharded model"
    inner = unwrap_model(model)
    get = getattr(inner, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None:
        return None, "no get_output_embeddings()"
    if not isinstance(head, nn.Linear) or hasattr(head, "base_layer"):
        return None, f"output embeddings are a {type(head).__name__}, not a plain nn.Linear"
    w = head.weight
    if not torch.is_floating_point(w) or _is_dtensor(w) or w.dim() != 2:
        return None, "output embedding weight is not a plain floating-point matrix"
    cfg = getattr(inner, "config", None)
    if cfg is not None:
        text_cfg = cfg.get_text_config() if callable(getattr(cfg, "get_text_config", None)) else cfg
        for attr in _LOGIT_POSTPROCESSING_ATTRS:
            v = getattr(text_cfg, attr, None)
            if v is not None and not (attr != "final_logit_softcapping" and v == 1):
                return None, f"the config post-processes logits ({attr}={v})"
    return head, None


def _keep_kwarg(inner: Any) -> str | None:
    """Name of the forward's 'compute logits for the last k positions only' argument, if any."""
    t = type(inner)
    if t not in _KEEP_KWARG_CACHE:
        name = None
        try:
            params = inspect.signature(t.forward).parameters
            name = next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in params), None)
        except (TypeError, ValueError):
            pass
        _KEEP_KWARG_CACHE[t] = name
    return _KEEP_KWARG_CACHE[t]


def _model_kwargs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_keep: int) -> dict:
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    kw = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    name = _keep_kwarg(unwrap_model(model))
    if name is not None:
        kw[name] = n_keep
    return kw


def _logits_of(out: Any) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out[0]


# ------------------------------------------------------------------------------- per-chunk math
# Every (chunk, vocab) working tensor lives in a buffer allocated once per pass and reused for every
# chunk: on CPU a fresh 100+ MB tensor per chunk is a fresh mmap whose pages fault in one by one
# (the chunk-size sweep's system time fell from 46 s to 13 s with the buffers reused).
class _Buffers:
    def __init__(self, rows: int, vocab: int, acc: torch.dtype, cdt: torch.dtype, device: torch.device):
        self.shape, self.acc, self.cdt, self.device = (rows, vocab), acc, cdt, device
        self._bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, n: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        b = self._bufs.get(name)
        if b is None:
            b = self._bufs[name] = torch.empty(self.shape, dtype=dtype or self.acc, device=self.device)
        return b[:n]


def _chunk_forward(z: torch.Tensor, e: torch.Tensor, targets: torch.Tensor, want_entropy: bool
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """z: (n, V) temperature-scaled logits in the accumulation dtype (clobbered), e: a (n, V) scratch
    buffer. Returns (log p(target), logsumexp, entropy or None), each (n,)."""
    tgt = z.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    m = z.amax(-1)
    z.sub_(m.unsqueeze(-1))  # z - max (<= 0)
    torch.exp(z, out=e)
    s = e.sum(-1)
    log_s = s.log()
    logp = (tgt - m) - log_s
    ent = None
    if want_entropy:
        # H = log s - sum_j e_j (z_j - max) / s
        ent = log_s - e.mul_(z).sum(-1) / s
    return logp, m + log_s, ent


def _chunk_grad(z: torch.Tensor, p: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor,
                ent: torch.Tensor | None, g_logp: torch.Tensor | None, g_ent: torch.Tensor | None,
                temperature: float) -> torch.Tensor:
    """z: (n, V) temperature-scaled logits (acc dtype), overwritten with d loss / d raw logits, where
    d log p_t / d z_j = 1[j = t] - p_j and d H / d z_j = -p_j (log p_j + H), z = raw / temperature;
    p: a (n, V) scratch buffer (used only for the entropy's gradient)."""
    z.sub_(lse.unsqueeze(-1))  # log p
    if g_ent is not None:
        torch.exp(z, out=p)
        z.add_(ent.unsqueeze(-1)).mul_(p).mul_(-g_ent.unsqueeze(-1))
        if g_logp is not None:
            z.sub_(p.mul_(g_logp.unsqueeze(-1)))
    else:
        z.exp_().mul_(-g_logp.unsqueeze(-1))
    if g_logp is not None:
        z.scatter_add_(1, targets.unsqueeze(-1), g_logp.unsqueeze(-1))
    if temperature != 1.0:
        z.div_(temperature)
    return z


def _dtypes(hidden_or_logits: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.dtype, torch.dtype]:
    """(dtype the projection runs in, dtype the softmax math and the head's gradient accumulate in).
    Under autocast the projection runs in the autocast dtype (as the model's own head would)."""
    dev = hidden_or_logits.device.type
    if weight is not None and torch.is_autocast_enabled(dev):
        cdt = torch.get_autocast_dtype(dev)
    elif weight is not None:
        cdt = torch.promote_types(hidden_or_logits.dtype, weight.dtype)
    else:
        cdt = hidden_or_logits.dtype
    return cdt, torch.promote_types(cdt, torch.float32)


def _project(bufs: _Buffers, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
             temperature: float) -> torch.Tensor:
    """(h @ w.T + b) / temperature for one chunk, in the accumulation dtype, in the "z" buffer."""
    n = h.shape[0]
    z = bufs.get("z", n)
    raw = z if bufs.cdt == bufs.acc else bufs.get("raw", n, bufs.cdt)
    if b is None:
        torch.mm(h, w.t(), out=raw)
    else:
        torch.addmm(b, h, w.t(), out=raw)
    if raw is not z:
        z.copy_(raw)
    if temperature != 1.0:
        z.div_(temperature)
    return z


class _LMHeadLogProb(torch.autograd.Function):
    """log p(target) (and entropy) of softmax((hidden @ W.T + b) / temperature), in token chunks."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature, chunk, want_entropy, entropy_grad):
        ctx.set_materialize_grads(False)
        cdt, acc = _dtypes(hidden, weight)
        N = hidden.shape[0]
        logp = torch.empty(N, dtype=acc, device=hidden.device)
        lse = torch.empty(N, dtype=acc, device=hidden.device)
        ent = torch.empty(N, dtype=acc, device=hidden.device) if want_entropy else None
        bufs = _Buffers(min(N, chunk), weight.shape[0], acc, cdt, hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(cdt)
            b = bias.to(cdt) if bias is not None else None
            for s in range(0, N, chunk):
                e = min(N, s + chunk)
                z = _project(bufs, hidden[s:e].to(cdt), w, b, temperature)
                lp, ls, en = _chunk_forward(z, bufs.get("e", e - s), targets[s:e], want_entropy)
                logp[s:e], lse[s:e] = lp, ls
                if ent is not None:
                    ent[s:e] = en
        del bufs
        ctx.save_for_backward(hidden, weight, bias, targets, lse, ent if entropy_grad else None)
        ctx.temperature, ctx.chunk, ctx.cdt, ctx.acc = temperature, chunk, cdt, acc
        if ent is not None and not entropy_grad:
            ctx.mark_non_differentiable(ent)
        return logp, ent

    @staticmethod
    def backward(ctx, g_logp, g_ent):
        hidden, weight, bias, targets, lse, ent = ctx.saved_tensors
        if ent is None:
            g_ent = None
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        if (g_logp is None and g_ent is None) or not (need_h or need_w or need_b):
            return None, None, None, None, None, None, None, None
        cdt, acc, T = ctx.cdt, ctx.acc, ctx.temperature
        N, V = hidden.shape[0], weight.shape[0]
        g_logp = g_logp.to(acc) if g_logp is not None else None
        g_ent = g_ent.to(acc) if g_ent is not None else None
        grad_h = torch.empty(hidden.shape, dtype=cdt, device=hidden.device) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        grad_b = torch.zeros(V, dtype=acc, device=weight.device) if (need_b and bias is not None) else None
        fp32_out_gemm = weight.device.type == "cuda" and cdt != acc
        bufs = _Buffers(min(N, ctx.chunk), V, acc, cdt, hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(cdt)
            b = bias.to(cdt) if bias is not None else None
            for s in range(0, N, ctx.chunk):
                e = min(N, s + ctx.chunk)
                h = hidden[s:e].to(cdt)
                z = _project(bufs, h, w, b, T)
                gz = _chunk_grad(z, bufs.get("p", e - s) if g_ent is not None else z, targets[s:e], lse[s:e],
                                 None if ent is None else ent[s:e], None if g_logp is None else g_logp[s:e],
                                 None if g_ent is None else g_ent[s:e], T)
                if cdt != acc:
                    gz_c = bufs.get("raw", e - s, cdt)
                    gz_c.copy_(gz)
                else:
                    gz_c = gz
                if grad_h is not None:
                    torch.mm(gz_c, w, out=grad_h[s:e])
                if grad_w is not None:
                    if fp32_out_gemm:  # bf16/fp16 GEMM into the fp32 accumulator (CUDA, torch >= 2.8)
                        try:
                            torch.addmm(grad_w, gz_c.t(), h, out_dtype=acc, out=grad_w)
                        except (RuntimeError, NotImplementedError, TypeError):
                            fp32_out_gemm = False
                    if not fp32_out_gemm:
                        grad_w.addmm_(gz.t(), h.to(acc))
                if grad_b is not None:
                    grad_b += gz.sum(0)
        del bufs
        return (grad_h.to(hidden.dtype) if grad_h is not None else None,
                grad_w.to(weight.dtype) if grad_w is not None else None,
                grad_b.to(bias.dtype) if grad_b is not None else None,
                None, None, None, None, None)


class _LogitsLogProb(torch.autograd.Function):
    """log p(target) (and entropy) of softmax(logits[rows] / temperature) for (M, V) logits and the
    (N,) row indices to score, in token chunks: no fp32 copy of the logits is kept (only one chunk's);
    backward writes d loss / d logits chunk by chunk into a gradient of the logits' dtype."""

    @staticmethod
    def _load(bufs: _Buffers, logits: torch.Tensor, rows: torch.Tensor, temperature: float) -> torch.Tensor:
        n = rows.shape[0]
        z = bufs.get("z", n)
        if logits.dtype == z.dtype:
            torch.index_select(logits, 0, rows, out=z)
        else:
            z.copy_(logits.index_select(0, rows))
        if temperature != 1.0:
            z.div_(temperature)
        return z

    @staticmethod
    def forward(ctx, logits, rows, targets, temperature, chunk, want_entropy, entropy_grad):
        ctx.set_materialize_grads(False)
        cdt, acc = _dtypes(logits)
        N = rows.shape[0]
        logp = torch.empty(N, dtype=acc, device=logits.device)
        lse = torch.empty(N, dtype=acc, device=logits.device)
        ent = torch.empty(N, dtype=acc, device=logits.device) if want_entropy else None
        bufs = _Buffers(min(N, chunk), logits.shape[-1], acc, cdt, logits.device)
        for s in range(0, N, chunk):
            e = min(N, s + chunk)
            z = _LogitsLogProb._load(bufs, logits, rows[s:e], temperature)
            lp, ls, en = _chunk_forward(z, bufs.get("e", e - s), targets[s:e], want_entropy)
            logp[s:e], lse[s:e] = lp, ls
            if ent is not None:
                ent[s:e] = en
        del bufs
        ctx.save_for_backward(logits, rows, targets, lse, ent if entropy_grad else None)
        ctx.temperature, ctx.chunk = temperature, chunk
        if ent is not None and not entropy_grad:
            ctx.mark_non_differentiable(ent)
        return logp, ent

    @staticmethod
    def backward(ctx, g_logp, g_ent):
        logits, rows, targets, lse, ent = ctx.saved_tensors
        if ent is None:
            g_ent = None
        if (g_logp is None and g_ent is None) or not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None, None
        cdt, acc = _dtypes(logits)
        T = ctx.temperature
        g_logp = g_logp.to(acc) if g_logp is not None else None
        g_ent = g_ent.to(acc) if g_ent is not None else None
        grad = torch.zeros_like(logits)
        N = rows.shape[0]
        bufs = _Buffers(min(N, ctx.chunk), logits.shape[-1], acc, cdt, logits.device)
        for s in range(0, N, ctx.chunk):
            e = min(N, s + ctx.chunk)
            z = _LogitsLogProb._load(bufs, logits, rows[s:e], T)
            gz = _chunk_grad(z, bufs.get("p", e - s) if g_ent is not None else z, targets[s:e], lse[s:e],
                             None if ent is None else ent[s:e], None if g_logp is None else g_logp[s:e],
                             None if g_ent is None else g_ent[s:e], T)
            grad.index_copy_(0, rows[s:e], gz if gz.dtype == grad.dtype else gz.to(grad.dtype))
        del bufs
        return grad, None, None, None, None, None, None


# ------------------------------------------------------------------------------------- public API
def token_logprobs_from_logits(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0,
                               with_entropy: bool = False, entropy_grad: bool = False, *,
                               chunk_tokens: int = DEFAULT_CHUNK_TOKENS
                               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(targets) under softmax(logits / temperature), for logits (..., V) of any float dtype and
    targets (...), without an fp32 copy of all the logits (e.g. for samplers scoring their own
    tokens). Returns (logps, entropy or None) of shape targets.shape in fp32 (fp64 for fp64 logits);
    differentiable wrt the logits (the entropy only with `entropy_grad`)."""
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}")
    shape = targets.shape
    flat = logits.reshape(-1, logits.shape[-1])
    rows = torch.arange(flat.shape[0], device=flat.device)
    want_ent = with_entropy or entropy_grad
    lp, ent = _LogitsLogProb.apply(flat, rows, targets.reshape(-1), float(temperature), max(1, int(chunk_tokens)),
                                   want_ent, bool(entropy_grad and torch.is_grad_enabled()))
    return lp.view(shape), (ent.view(shape) if ent is not None else None)


def sequence_logprobs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_completion: int,
                      temperature: float, with_entropy: bool = False, entropy_grad: bool = False, *,
                      chunk_tokens: int | None = DEFAULT_CHUNK_TOKENS, fused: bool | None = None,
                      skip_padding: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (B, C) of the last C tokens of each row under `model` at `temperature`, and optionally
    the per-token entropy of the same distributions (differentiable with `entropy_grad`, for an entropy
    bonus). Rows are left-padded prompts followed by right-padded completions; position ids skip the
    left padding so they match generation. Same contract as `loop.sequence_logprobs`, with the LM head
    run in chunks of `chunk_tokens` tokens over the completion positions only (see the module doc).

    `fused`: None picks the fused LM-head path when it applies (`fused_head`), True requires it (raises
    otherwise), False always takes the fallback. `skip_padding=True` scores only the completion
    positions whose attention mask is 1 and returns 0 (log-prob and entropy) at padded ones, which
    saves the head's work on padding; the default scores every position, as the old pass did.
    Results are fp32 (fp64 for an fp64 model)."""
    C = int(n_completion)
    B, T = input_ids.shape
    if not 0 < C < T:
        raise ValueError(f"n_completion={C} must be in [1, {T - 1}] for sequences of length {T}")
    chunk = DEFAULT_CHUNK_TOKENS if chunk_tokens is None else max(1, int(chunk_tokens))
    want_ent = bool(with_entropy or entropy_grad)
    ent_grad = bool(entropy_grad and torch.is_grad_enabled())
    temperature = float(temperature)
    targets = input_ids[:, -C:]
    keep = attention_mask[:, -C:].reshape(-1).bool() if skip_padding else None

    head, why = (None, "fused=False") if fused is False else fused_head(model)
    if head is None and fused:
        raise ValueError(f"the fused LM-head path does not apply: {why}")

    captured: dict[str, torch.Tensor] = {}
    hook = None
    if head is not None:
        def pre_hook(_mod, args, kwargs):
            if "x" in captured:  # a second call of the head (not ours): leave it alone
                return None
            if args:
                x = args[0]
                captured["x"] = x
                return (x[..., -1:, :], *args[1:]), kwargs
            x = kwargs["input"]
            captured["x"] = x
            return args, {**kwargs, "input": x[..., -1:, :]}

        hook = head.register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        out = model(**_model_kwargs(model, input_ids, attention_mask, C + 1))
    finally:
        if hook is not None:
            hook.remove()

    x = captured.get("x")
    if head is not None and (x is None or x.dim() != 3 or x.shape[1] < C + 1):
        if fused:
            raise RuntimeError("the fused LM-head path did not see the LM head's input during the forward")
        head = None  # the head was not called on the hidden states: use the logits the model returned
    if head is not None:
        # Consistency check: the model's own logits for the last position (the head ran on it) must be
        # what the head computes from the captured hidden state, or the model post-processes its logits.
        model_logits = _logits_of(out)
        with torch.no_grad():
            ours = head(x[:, -1:]).float()
            theirs = model_logits[:, -1:].float()
            scale = max(1.0, float(theirs.abs().max()))
            if ours.shape != theirs.shape or float((ours - theirs).abs().max()) > 1e-2 * scale:
                raise RuntimeError("the model's logits are not its output embedding applied to the final hidden "
                                   "state (post-processed logits?); call sequence_logprobs(..., fused=False)")
        del out, model_logits
        L = x.shape[1]
        hidden = x[:, L - C - 1:L - 1].reshape(B * C, x.shape[-1])
        flat_t = targets.reshape(-1)
        if keep is not None:
            idx = keep.nonzero().squeeze(-1)
            hidden, flat_t = hidden.index_select(0, idx), flat_t.index_select(0, idx)
        lp, ent = _LMHeadLogProb.apply(hidden, head.weight, head.bias, flat_t, temperature, chunk, want_ent,
                                       ent_grad)
    else:
        logits = _logits_of(out)
        del out
        L, V = logits.shape[1], logits.shape[2]
        flat = logits.reshape(B * L, V)  # a view: the model's logits are contiguous
        del logits
        # Row b's completion token j is predicted at position L - C - 1 + j of its L kept positions.
        rows = (torch.arange(B, device=flat.device).unsqueeze(-1) * L
                + torch.arange(L - C - 1, L - 1, device=flat.device)).reshape(-1)
        flat_t = targets.reshape(-1)
        if keep is not None:
            idx = keep.nonzero().squeeze(-1)
            rows, flat_t = rows[idx], flat_t[idx]
        lp, ent = _LogitsLogProb.apply(flat, rows, flat_t, temperature, chunk, want_ent, ent_grad)
        del flat
    if keep is not None:
        lp = lp.new_zeros(B * C).index_put((idx,), lp)
        ent = ent.new_zeros(B * C).index_put((idx,), ent) if ent is not None else None
    return lp.view(B, C), (ent.view(B, C) if ent is not None else None)
