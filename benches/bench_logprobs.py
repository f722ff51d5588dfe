"""Benchmark: peak memory and time of the trainer's log-prob pass on a random-init Qwen2 with Qwen2.5's
151,936-token vocabulary (hidden 128, 2 layers), for

  old   the trainer's previous loop.sequence_logprobs (copied here: LM head over every position, fp32
        log-softmax kept),
  ours  grpo_fast.trainer.logprobs.sequence_logprobs (fused, chunked LM head; --chunk tokens per chunk),
  trl   TRL 1.16's path: `add_fused_lm_head(model, temperature, outputs=("log_probs", "entropy"))` as
        GRPOTrainer patches its policy, then `model(input_ids, attention_mask, labels=labels,
        fused_lm_head=True)` with the prompt positions' labels at -100, as in
        GRPOTrainer._get_per_token_logps_and_entropies (on CPU TRL projects every position, in tiles of
        4096 tokens x 32768 vocabulary entries).

each in `nograd` mode (torch.no_grad; old/ours without entropy, like the trainer's old/ref log-probs)
and `train` mode (forward + backward of sum(logps * mask) / n; old/ours with_entropy=True, as the
trainer's policy pass). Every measurement runs in a fresh subprocess: peak MB is the process's peak
RSS during the pass (VmHWM, reset through /proc/self/clear_refs just before) minus its RSS before it,
so the model, the inputs and the imports are not counted; seconds are the pass's wall time.

The old path needs ~4x the fp32 logits of every position (~37 GB at 32 x 512), so it runs at
--old-rows rows only (ours and TRL's are measured at that size too, for the same-size ratio).

    python benches/bench_logprobs.py                       # 4 x 512 (old, ours, trl) + 32 x 512 (ours, trl)
    python benches/bench_logprobs.py --rows 8 --tokens 128 --old-rows 2
    python benches/bench_logprobs.py --sweep --rows 8      # ours only, chunk sizes 64 .. 2048
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

VOCAB = 151936


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) to the current RSS
        return True
    except OSError:
        return False


def old_sequence_logprobs(model, input_ids, attention_mask, n_completion, temperature, with_entropy=False,
                          entropy_grad=False):
    """loop.sequence_logprobs before logprobs.py replaced it (verbatim)."""
    import torch

    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                   use_cache=False).logits
    logits = logits[:, -n_completion - 1:-1, :].float() / temperature
    logp_all = logits.log_softmax(-1)
    targets = input_ids[:, -n_completion:]
    logps = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    ent = None
    if with_entropy or entropy_grad:
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            ent = -(logp_all.exp() * logp_all).sum(-1)
    return logps, ent


def run_case(impl: str, mode: str, rows: int, tokens: int, prompt: int, chunk: int, hidden: int,
             tied: bool) -> dict:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied)
    model = Qwen2ForCausalLM(cfg).float()
    model.train(mode == "train")
    T = prompt + tokens
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (rows, T), generator=g)
    att = torch.ones(rows, T, dtype=torch.long)
    for r in range(rows):  # left padding of 0..prompt/2 tokens
        att[r, : r % (prompt // 2 + 1)] = 0
    mask = torch.ones(rows, tokens)
    temperature = 0.9

    if impl == "trl":
        from trl.trainer.utils import add_fused_lm_head

        add_fused_lm_head(model, temperature=temperature, outputs=("log_probs", "entropy"))

        def fwd(ids, att, C, want_entropy):
            labels = ids.masked_fill(att == 0, -100)
            labels[:, :-C] = -100
            out = model(input_ids=ids, attention_mask=att, labels=labels, fused_lm_head=True)
            return out.log_probs[:, -C:], (out.entropy[:, -C:] if want_entropy else None)
    else:
        if impl == "old":
            f, kw = old_sequence_logprobs, {}
        else:
            from grpo_fast.trainer.logprobs import sequence_logprobs as f
            kw = {"chunk_tokens": chunk}

        def fwd(ids, att, C, want_entropy):
            return f(model, ids, att, C, temperature, with_entropy=want_entropy, **kw)

    def one_pass(ids, att, C, m):
        if mode == "nograd":
            with torch.no_grad():
                lp, _ = fwd(ids, att, C, False)
            return lp
        lp, _ = fwd(ids, att, C, True)
        ((lp * m).sum() / m.sum()).backward()
        return lp.detach()

    one_pass(ids[:1, -8:], att[:1, -8:], 4, mask[:1, :4])  # warm-up: lazy initialisation, kernels
    model.zero_grad(set_to_none=True)
    rss0 = _status_kb("VmRSS")
    reset = _reset_peak()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    lp = one_pass(ids, att, tokens, mask)
    dt = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if not reset and peak <= maxrss0:
        peak = None  # ru_maxrss did not move past the setup's peak: unknown
    return {"impl": impl, "mode": mode, "rows": rows, "tokens": tokens, "seconds": dt, "cpu_s": cpu,
            "peak_mb": None if peak is None else (peak - rss0) / 1024, "checksum": float(lp.double().sum()),
            "peak_source": "VmHWM" if reset else "ru_maxrss"}


def measure(args, impl: str, mode: str, rows: int, chunk: int) -> dict:
    cmd = [sys.executable, __file__, "--_case", impl, mode, str(rows), str(args.tokens), str(args.prompt),
           str(chunk), str(args.hidden), str(int(args.tied))]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.case_timeout,
                           env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    except subprocess.TimeoutExpired:
        return {"impl": impl, "mode": mode, "rows": rows, "tokens": args.tokens, "error": "timeout"}
    if p.returncode != 0:
        return {"impl": impl, "mode": mode, "rows": rows, "tokens": args.tokens,
                "error": (p.stderr.strip().splitlines() or [f"rc {p.returncode}"])[-1][:80]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def fmt(r: dict | None, key: str, spec: str) -> str:
    if r is None or r.get(key) is None:
        return "-" if r is None or "error" not in r else r["error"][:24]
    return format(r[key], spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=32, help="completions per pass (B)")
    ap.add_argument("--tokens", type=int, default=512, help="completion tokens per row (C)")
    ap.add_argument("--prompt", type=int, default=32, help="prompt tokens per row")
    ap.add_argument("--old-rows", type=int, default=4, help="rows for the old path (and the same-size comparison); "
                    "0 skips it")
    ap.add_argument("--chunk", type=int, default=None, help="ours: tokens per chunk (default: the module's)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--tied", action="store_true", help="tie the LM head to the input embedding")
    ap.add_argument("--modes", default="nograd,train")
    ap.add_argument("--sweep", action="store_true", help="ours only, over chunk sizes (train and nograd)")
    ap.add_argument("--case-timeout", type=float, default=240.0)
    ap.add_argument("--_case", nargs=8, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._case:
        impl, mode, rows, tokens, prompt, chunk, hidden, tied = args._case
        print(json.dumps(run_case(impl, mode, int(rows), int(tokens), int(prompt), int(chunk), int(hidden),
                                  bool(int(tied)))))
        return

    from grpo_fast.trainer.logprobs import DEFAULT_CHUNK_TOKENS

    chunk = args.chunk or DEFAULT_CHUNK_TOKENS
    modes = args.modes.split(",")
    print(f"Qwen2 random init: vocab {VOCAB}, hidden {args.hidden}, 2 layers, "
          f"{'tied' if args.tied else 'untied'} head, fp32, prompt {args.prompt} + completion {args.tokens} tokens, "
          f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}; one subprocess per cell", flush=True)

    if args.sweep:
        print(f"\nours, {args.rows} x {args.tokens} completion tokens, by chunk size")
        print(f"{'chunk':>6} | " + " | ".join(f"{m + ' s':>9} {m + ' cpu s':>12} {m + ' MB':>10}" for m in modes))
        for c in (64, 128, 256, 512, 1024, 2048):
            rs = [measure(args, "ours", m, args.rows, c) for m in modes]
            print(f"{c:>6} | " + " | ".join(f"{fmt(r, 'seconds', '.2f'):>9} {fmt(r, 'cpu_s', '.2f'):>12} "
                                             f"{fmt(r, 'peak_mb', '.0f'):>10}" for r in rs), flush=True)
        return

    sizes = []
    if args.old_rows:
        sizes.append((args.old_rows, ("old", "ours", "trl")))
    sizes.append((args.rows, ("ours", "trl")))
    print(f"ours: chunk_tokens={chunk}\n")
    hdr = (f"{'rows x C':>10} {'mode':>6} | {'old s':>7} {'old MB':>8} | {'ours s':>7} {'ours MB':>8} | "
           f"{'trl s':>7} {'trl MB':>8} | {'ours/trl s':>10} {'ours/trl MB':>11} | {'old/ours MB':>11}")
    print(hdr)
    print("-" * len(hdr))
    for rows, impls in sizes:
        for mode in modes:
            res = {i: measure(args, i, mode, rows, chunk) for i in impls}
            o, t, old = res.get("ours"), res.get("trl"), res.get("old")

            def ratio(a, b, k):
                if a is None or b is None or a.get(k) is None or b.get(k) in (None, 0):
                    return "-"
                return f"{a[k] / b[k]:.2f}"
            print(f"{f'{rows} x {args.tokens}':>10} {mode:>6} | {fmt(old, 'seconds', '.2f'):>7} "
                  f"{fmt(old, 'peak_mb', '.0f'):>8} | {fmt(o, 'seconds', '.2f'):>7} {fmt(o, 'peak_mb', '.0f'):>8} | "
                  f"{fmt(t, 'seconds', '.2f'):>7} {fmt(t, 'peak_mb', '.0f'):>8} | {ratio(o, t, 'seconds'):>10} "
                  f"{ratio(o, t, 'peak_mb'):>11} | {ratio(old, o, 'peak_mb'):>11}", flush=True)
            if old is not None and o is not None and "checksum" in old and "checksum" in o:
                d = abs(old["checksum"] - o["checksum"]) / max(1.0, abs(old["checksum"]))
                if d > 1e-4:
                    print(f"   !! old and ours disagree: sum of log-probs {old['checksum']:.6g} vs {o['checksum']:.6g}")


if __name__ == "__main__":
    main()
