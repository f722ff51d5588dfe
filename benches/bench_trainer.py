"""Benchmark: grpo-fast's trainer against TRL 1.16's `GRPOTrainer`, side by side, on CPU.

Both train the same locally built model -- a random-init Qwen2 with Qwen2.5's 151,936-token vocabulary
(`grpo_fast.trainer.local_model.save_qwen2(preset="tiny")`: hidden 128, 2 layers; no download) -- on
the same simple math prompts ("What is 3+4?", gold answer in the record), with the same settings:

  4 prompts x group size 8 = 32 completions per optimiser step, up to --max-new-tokens (64) new tokens,
  temperature 1.0, beta 0.04 (a reference model in both), lr 1e-5 constant, loss_type dapo, clip 0.2,
  max_grad_norm 1.0, one micro-batch of 32 (--grad-accum to split), no gradient checkpointing (TRL's
  default is on: turned off), float32 weights and compute (no bf16: TRL's default bf16=True is turned
  off), the same seed and torch thread count, and the math reward (grpo-fast: verifier "math"; TRL:
  `grpo_fast.rewards.math_reward` as reward_funcs).

Prompts are plain strings in both. TRL 1.16 applies no chat template to a string prompt
(`GRPOTrainer._tokenize_prompts` tokenizes it as is; only conversational prompts go through
`apply_chat_template`), so grpo-fast runs with `use_chat_template=False` to see the same tokens.

Each run is a fresh subprocess (so peak RSS is one system's alone); systems alternate A B A B for
--rounds rounds; every run does --steps steps and steps 2..N are measured (step 1 is warm-up):

  s/step       wall time of a step. grpo-fast: around `GRPOTrainer.step()`; TRL: a TrainerCallback's
               on_step_begin -> on_step_end (one optimiser step, all its micro-batches). Mean and
               median over the measured steps of all rounds (the median shrugs off a step another
               process on a shared machine slowed down).
  gen s/step   generation. grpo-fast: the step's `generation_s` (the sampler's generate calls: prompt
               encoding, sampling, decoding). TRL: time inside `GRPOTrainer._generate` (wrapped with a
               timer here): prompt tokenization, `_generate_single_turn` (model.generate or vLLM,
               with the weight sync to vLLM), decoding -- the same work.
  update s/step  s/step - gen s/step, for both: rewards, advantages, the reference (and, where there
               is one, old-policy) log-prob pass, forward/backward, optimiser step, weight sync.
  tok/s        completion tokens of the measured steps / their wall time.
  peak RSS     the subprocess's ru_maxrss at the end; "peak increase" is that minus the RSS right
               after imports + the policy loaded (float32), i.e. trainer state, reference model,
               optimiser, activations and the sampler.

A random-init model almost never samples EOS out of 151,936 tokens, so completions are nearly always
--max-new-tokens long in both (no min-length forcing is used; the mean length is reported).

    python benches/bench_trainer.py                                   # 6 steps x 2 rounds, transformers
    python benches/bench_trainer.py --steps 2 --rounds 1 --max-new-tokens 16   # smoke test
    python benches/bench_trainer.py --sampler vllm                    # both with vLLM colocate on CPU
    python benches/bench_trainer.py --systems grpo-fast,grpo-fast-chunks4,trl --json

--sampler vllm: grpo-fast `sampler="vllm"` (colocate, vllm_dtype float32 = the checkpoint's dtype, as
TRL's engine gets), TRL `use_vllm=True, vllm_mode="colocate"`; VLLM_CPU_KVCACHE_SPACE=2 in both. If TRL's
colocate mode fails on this CPU build, its reason is printed and its row is left out. (With vllm-cpu
0.32, outside the 0.22-0.31 TRL 1.16 supports, it does: its first weight sync,
`VLLMGeneration.sync_weights` -> `model.load_weights([(name, param)])`, raises AttributeError:
'Parameter' object has no attribute 'weight_loader'.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SYSTEMS = {
    "grpo-fast": "grpo-fast GRPOTrainer, generation_chunks=1",
    "grpo-fast-chunks4": "grpo-fast GRPOTrainer, generation_chunks=4 (the config default)",
    "trl": "TRL GRPOTrainer",
}


# ----------------------------------------------------------------------------------------- helpers
def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _peak_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux


def math_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        out.append({"prompt": f"What is {a}+{b}?", "answer": str(a + b)})
    return out


# ------------------------------------------------------------------------------------ child: grpo-fast
def child_grpo_fast(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.loop import GRPOTrainer
    from grpo_fast.trainer.run import build_model_and_tokenizer, resolve_verifier

    chunks = 4 if spec["system"] == "grpo-fast-chunks4" else 1
    cfg = GRPOConfig(model=spec["model"], prompt_field="prompt", use_chat_template=False, sampler=spec["sampler"],
                     vllm_mode="colocate", vllm_dtype="float32", prompts_per_step=spec["prompts"], num_generations=spec["group"],
                     max_completion_length=spec["max_new_tokens"], temperature=1.0, beta=0.04, learning_rate=1e-5,
                     lr_scheduler_type="constant", loss_type="dapo", epsilon=0.2, max_grad_norm=1.0,
                     gradient_accumulation_steps=spec["grad_accum"], generation_chunks=chunks, seed=spec["seed"],
                     num_threads=spec["threads"], max_steps=spec["steps"], verifier="math", gate_kl_max=None,
                     output_dir=spec["tmp"])
    model, tok = build_model_and_tokenizer(cfg)  # float32 (master weights), tokenizer padding left
    torch.manual_seed(cfg.seed)  # what run_training does before building the trainer
    records = math_records(spec["n_prompts"], spec["seed"])
    verifier = resolve_verifier(cfg.verifier)
    baseline_kb = _rss_kb()

    trainer = GRPOTrainer(cfg, model, tok, records, verifier, device="cpu", model_path=spec["model"])
    steps = []
    try:
        for i in range(spec["steps"]):
            t0 = time.perf_counter()
            m = trainer.step()
            wall = time.perf_counter() - t0
            gen = float(m.get("generation_s", 0.0))
            steps.append({"step": i + 1, "step_s": wall, "gen_s": gen, "update_s": wall - gen,
                          "own_update_s": float(m.get("update_s", 0.0)),
                          "reward_wait_s": float(m.get("reward_wait_s", 0.0)),
                          "weight_sync_s": float(m.get("weight_sync_s", 0.0)),
                          "tokens": float(m.get("num_tokens", 0.0)),
                          "mean_len": float(m.get("completions/mean_length", 0.0)),
                          "loss": float(m.get("loss", float("nan"))), "kl": float(m.get("kl", float("nan")))})
    finally:
        trainer.close()
    return {"steps": steps, "baseline_kb": baseline_kb, "peak_kb": _peak_kb(), "threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------------ child: TRL
def child_trl(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from grpo_fast.rewards import math_reward

    tok = AutoTokenizer.from_pretrained(spec["model"], padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    dataset = datasets.Dataset.from_list(math_records(spec["n_prompts"], spec["seed"]))
    baseline_kb = _rss_kb()

    completions = spec["prompts"] * spec["group"]
    ga = spec["grad_accum"]
    vllm = spec["sampler"] == "vllm"
    args = GRPOConfig(
        output_dir=spec["tmp"], per_device_train_batch_size=completions // ga, gradient_accumulation_steps=ga,
        num_generations=spec["group"], max_completion_length=spec["max_new_tokens"], temperature=1.0,
        beta=0.04, learning_rate=1e-5, lr_scheduler_type="constant", loss_type="dapo", epsilon=0.2,
        max_grad_norm=1.0, max_steps=spec["steps"], logging_steps=1, report_to=[], use_cpu=True, bf16=False,
        gradient_checkpointing=False, seed=spec["seed"], save_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0,
        **(dict(use_vllm=True, vllm_mode="colocate") if vllm else {}))
    trainer = GRPOTrainer(model=model, reward_funcs=[math_reward], args=args, train_dataset=dataset,
                          processing_class=tok)
    # transformers' Trainer sets model.config.use_cache = args.use_cache (False) here; `generate` still
    # decodes with a KV cache (it follows GenerationConfig.use_cache, default True; checked: one new
    # position per decode step either way), so TRL's generation is not handicapped by it.

    # Generation time: TRL logs no per-step generation time of its own we can rely on (its
    # profiling_context goes to wandb/trackio only), so `GRPOTrainer._generate` is wrapped: it covers
    # prompt tokenization, `_generate_single_turn` (model.generate / vLLM incl. the weight sync) and
    # decoding -- the work grpo-fast's `generation_s` covers. Rewards, the reference pass and the
    # update come after it in `_generate_and_score_completions` / `compute_loss`.
    cur = {"gen": 0.0, "tokens": 0, "n": 0}
    orig = trainer._generate

    def timed_generate(prompts):
        t = time.perf_counter()
        out = orig(prompts)
        cur["gen"] += time.perf_counter() - t
        completion_ids = out[1]
        cur["tokens"] += sum(len(c) for c in completion_ids)
        cur["n"] += len(completion_ids)
        return out

    trainer._generate = timed_generate
    steps: list[dict[str, Any]] = []

    class StepTimer(TrainerCallback):
        t0 = 0.0

        def on_step_begin(self, args, state, control, **kw):
            cur.update(gen=0.0, tokens=0, n=0)
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            wall = time.perf_counter() - self.t0
            steps.append({"step": len(steps) + 1, "step_s": wall, "gen_s": cur["gen"], "update_s": wall - cur["gen"],
                          "tokens": float(cur["tokens"]), "mean_len": cur["tokens"] / max(cur["n"], 1)})

    trainer.add_callback(StepTimer())
    trainer.train()
    return {"steps": steps, "baseline_kb": baseline_kb, "peak_kb": _peak_kb(), "threads": torch.get_num_threads()}


def child_main(spec_json: str, result_path: str) -> None:
    spec = json.loads(spec_json)
    fn = child_trl if spec["system"].startswith("trl") else child_grpo_fast
    res = fn(spec)
    Path(result_path).write_text(json.dumps(res))


# ------------------------------------------------------------------------------------------ parent
def run_child(spec: dict[str, Any], verbose: bool) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    env["OMP_NUM_THREADS"] = str(spec["threads"])
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        spec = {**spec, "tmp": str(Path(tmp) / "out")}
        result = Path(tmp) / "result.json"
        log = Path(tmp) / "log.txt"
        cmd = [sys.executable, os.path.abspath(__file__), "--_child", json.dumps(spec), "--_result", str(result)]
        t = time.perf_counter()
        with open(log, "w") as lf:
            rc = subprocess.call(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t
        text = log.read_text(errors="replace") if log.exists() else ""
        if verbose:
            print(text, file=sys.stderr, flush=True)
        if rc != 0 or not result.exists():
            lines = text.strip().splitlines()
            errs = [ln for ln in lines if "Error" in ln or "Exception" in ln]
            # The innermost frame of TRL (or of this project) names where it broke.
            where = [ln.strip() for ln in lines if ln.strip().lstrip("[rank0]: ").startswith("File")
                     and ("/trl/" in ln or "/grpo_fast/" in ln)]
            msg = errs[-1] if errs else (lines[-1] if lines else f"exit code {rc}")
            msg = msg.replace("[rank0]: ", "").strip()
            if where:
                msg += f" (last frame: {where[-1].replace('[rank0]: ', '').strip()})"
            compat = [ln.split("UserWarning:", 1)[1].strip() for ln in lines
                      if "UserWarning: TRL currently supports vLLM" in ln]
            if compat:
                msg += f"; TRL's own warning: {compat[0]}"
            return {"error": msg[:600], "log_tail": "\n".join(lines[-25:]), "rc": rc}
        res = json.loads(result.read_text())
        res["process_wall_s"] = wall
        return res


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"] if runs else "no runs"}
    meas = [s for r in ok for s in r["steps"][1:]] or [s for r in ok for s in r["steps"]]
    n = len(meas)
    step = sum(s["step_s"] for s in meas) / n
    times = sorted(s["step_s"] for s in meas)
    out = {
        "measured_steps": n,
        "s_per_step": step,
        "s_per_step_median": times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2,
        "gen_s_per_step": sum(s["gen_s"] for s in meas) / n,
        "update_s_per_step": sum(s["update_s"] for s in meas) / n,
        "tokens_per_s": sum(s["tokens"] for s in meas) / max(sum(s["step_s"] for s in meas), 1e-9),
        "mean_completion_len": sum(s["mean_len"] for s in meas) / n,
        "peak_rss_mib": max(r["peak_kb"] for r in ok) / 1024,
        "peak_increase_mib": max(r["peak_kb"] - r["baseline_kb"] for r in ok) / 1024,
        "baseline_rss_mib": max(r["baseline_kb"] for r in ok) / 1024,
        "s_per_step_by_round": [sum(s["step_s"] for s in r["steps"][1:]) / max(len(r["steps"]) - 1, 1) for r in ok],
        "threads": sorted({r["threads"] for r in ok}),
    }
    if "own_update_s" in meas[0]:
        for k in ("own_update_s", "reward_wait_s", "weight_sync_s"):
            out[k + "_per_step"] = sum(s[k] for s in meas) / n
    return out


ROWS = [("s/step", "s_per_step", "{:.3f}"), ("s/step (median)", "s_per_step_median", "{:.3f}"), ("generation s/step", "gen_s_per_step", "{:.3f}"),
        ("update s/step", "update_s_per_step", "{:.3f}"), ("completion tok/s", "tokens_per_s", "{:.0f}"),
        ("mean completion length", "mean_completion_len", "{:.1f}"), ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
        ("peak increase MiB", "peak_increase_mib", "{:.0f}")]
RATIO_KEYS = {"s_per_step", "s_per_step_median", "gen_s_per_step", "update_s_per_step", "tokens_per_s", "peak_rss_mib",
              "peak_increase_mib"}


def print_table(summ: dict[str, dict[str, Any]], names: list[str]) -> None:
    cols = [n for n in names if "error" not in summ[n]]
    if not cols:
        for n in names:
            print(f"{n}: no row -- {summ[n]['error']}")
        return
    ours = [n for n in cols if not n.startswith("trl")]
    alts = [n for n in cols if n.startswith("trl")]
    pairs = [(o, t) for o in ours for t in alts]
    head = ["metric", *cols] + [f"{o} / {t}" for o, t in pairs]
    body = []
    for label, key, fmt in ROWS:
        row = [label] + [fmt.format(summ[n][key]) for n in cols]
        row += [f"{summ[o][key] / summ[t][key]:.2f}x" if key in RATIO_KEYS and summ[t][key] else "" for o, t in pairs]
        body.append(row)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))  # noqa: E731
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for r in body:
        print(line(r))
    for n in names:
        if "error" in summ[n]:
            print(f"{n}: no row -- {summ[n]['error']}")
    for o, t in pairs:
        r = summ[o]["s_per_step"] / summ[t]["s_per_step"]
        m = summ[o]["peak_rss_mib"] / summ[t]["peak_rss_mib"]
        print(f"targets ({o} vs {t}): s/step {r:.2f}x (target <= 0.80: {'met' if r <= 0.8 else 'MISSED'}); "
              f"peak RSS {m:.2f}x (target <= 1.00: {'met' if m <= 1.0 else 'MISSED'})")


def versions(sampler: str) -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for p in ("grpo-fast", "trl", "transformers", "torch", *(["vllm"] if sampler == "vllm" else [])):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "?"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="steps per run; step 1 is warm-up (default 6)")
    ap.add_argument("--rounds", type=int, default=2, help="A B rounds (default 2)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=4, help="prompts per step (default 4)")
    ap.add_argument("--group", type=int, default=8, help="completions per prompt (default 8)")
    ap.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step in both (default 1)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each run (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sampler", choices=("transformers", "vllm"), default="transformers")
    ap.add_argument("--systems", default="grpo-fast,trl",
                    help=f"comma-separated, run in this order each round; of {', '.join(SYSTEMS)}")
    ap.add_argument("--model", default=None, help="use this saved model instead of building the tiny Qwen2")
    ap.add_argument("--json", action="store_true", help="print the results as JSON (progress on stderr)")
    ap.add_argument("--verbose", action="store_true", help="show the subprocesses' output")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--_result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        child_main(a._child, a._result)
        return

    names = [s.strip() for s in a.systems.split(",") if s.strip()]
    for n in names:
        if n not in SYSTEMS:
            ap.error(f"unknown system {n!r}; choose from {', '.join(SYSTEMS)}")
    if (a.prompts * a.group) % a.grad_accum:
        ap.error("--grad-accum must divide prompts x group")
    log = (lambda *x: print(*x, file=sys.stderr, flush=True)) if a.json else (lambda *x: print(*x, flush=True))
    vers = versions(a.sampler)

    with tempfile.TemporaryDirectory(prefix="bench-trainer-model-") as mdir:
        model = a.model
        if model is None:
            from grpo_fast.trainer.local_model import save_qwen2

            model = str(save_qwen2(Path(mdir) / "qwen2-tiny", preset="tiny", seed=a.seed))
        log(f"alternative: TRL {vers['trl']} (trl.GRPOTrainer); grpo-fast {vers['grpo-fast']}; transformers "
            f"{vers['transformers']}; torch {vers['torch']}" + (f"; vllm {vers['vllm']}" if "vllm" in vers else ""))
        log(f"model: random-init Qwen2 tiny (hidden 128, 2 layers, vocab 151,936) at {model}; sampler {a.sampler}; "
            f"{a.prompts} prompts x {a.group} = {a.prompts * a.group} completions/step, {a.max_new_tokens} new tokens, "
            f"beta 0.04, lr 1e-5, grad-accum {a.grad_accum}, {a.threads} threads, seed {a.seed}; "
            f"{a.steps} steps x {a.rounds} rounds, steps 2..{a.steps} measured")
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for rnd in range(a.rounds):
            for n in names:
                if n.startswith("trl") and runs[n] and "error" in runs[n][-1]:
                    continue  # it failed once; it will fail again
                spec = dict(system=n, model=model, sampler=a.sampler, steps=a.steps, max_new_tokens=a.max_new_tokens,
                            prompts=a.prompts, group=a.group, grad_accum=a.grad_accum, threads=a.threads,
                            seed=a.seed, n_prompts=64)
                res = run_child(spec, a.verbose)
                runs[n].append(res)
                if "error" in res:
                    log(f"round {rnd + 1} {n}: FAILED: {res['error']}")
                    if a.verbose or not n.startswith("trl"):
                        log(res.get("log_tail", ""))
                else:
                    st = res["steps"][1:] or res["steps"]
                    log(f"round {rnd + 1} {n}: " + " ".join(f"{s['step_s']:.2f}" for s in res["steps"])
                        + f" s/step (gen {sum(s['gen_s'] for s in st) / len(st):.2f}), peak RSS "
                        f"{res['peak_kb'] / 1024:.0f} MiB (+{(res['peak_kb'] - res['baseline_kb']) / 1024:.0f} over "
                        f"{res['baseline_kb'] / 1024:.0f} after load), process {res['process_wall_s']:.0f} s")

    summ = {n: summarize(runs[n]) for n in names}
    for n in names:
        if a.sampler == "vllm" and n.startswith("trl") and "error" in summ[n]:
            log(f"{n}: TRL's vLLM colocate mode did not run on this build, its row is skipped: {summ[n]['error']}")
    if a.json:
        out = {"alternative": {"name": "TRL GRPOTrainer", "version": vers["trl"]}, "versions": vers,
               "settings": {k: v for k, v in vars(a).items() if not k.startswith("_")},
               "summary": summ, "runs": runs}
        for r in (x for v in runs.values() for x in v):
            r.pop("log_tail", None)
        print(json.dumps(out, indent=2))
        return
    print()
    print_table(summ, names)
    print("update = s/step - generation (rewards, advantages, reference/old log-prob passes, forward/backward, "
          "optimiser step, weight sync); ratios are grpo-fast / TRL")


if __name__ == "__main__":
    main()
