"""GPU acceptance checks for the training engine (run by benches/gpu_check.sh on a CUDA machine).

On a random-init model with Qwen2.5-0.5B's architecture, built locally (no download):
  1. vLLM colocate: sample, one optimiser step in bf16 autocast, weights synced, and the engine's
     log-probs of a fixed completion equal the trainer's within SYNC_TOL (float32 engine) after the step;
  2. sleep mode: the engine sleeps during the update and wakes for the next generation;
  3. vLLM server: `grpo-fast vllm-serve` on the same GPU, the same step and sync proof over HTTP;
  4. a few bf16 training steps with vLLM colocate, timed.
Prints one line per check and a summary table; exits non-zero if any check fails."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

# float32 engine vs float32 master weights under the trainer's float32 forward: kernels differ in
# summation order only. (A bf16 engine is ~1e-2 off per token, which is what rollout correction is for.)
SYNC_TOL = 2e-3
PROMPTS = [{"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a in range(8) for b in range(8)]


def _cfg(**kw):
    from grpo_fast.trainer.config import GRPOConfig

    base = dict(prompts_per_step=8, num_generations=8, max_completion_length=64, learning_rate=1e-4,
                beta=0.01, generation_chunks=1, sampler="vllm", vllm_dtype="float32", vllm_max_model_len=512,
                vllm_gpu_memory_utilization=0.25, verifier="math")
    base.update(kw)
    return GRPOConfig(**base)


class LengthParity:
    """Reward variance on a random model: 1 when the completion's length is even."""

    name = "length_parity"

    def verify_batch(self, items):
        from grpo_fast.verifiers.base import Verdict

        return [Verdict(float(len(it.response) % 2 == 0), None, "parity") for it in items]


def _trainer(model_dir, **kw):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grpo_fast.trainer.loop import GRPOTrainer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    return GRPOTrainer(_cfg(**kw), model, tok, PROMPTS, LengthParity(), device="cuda", model_path=str(model_dir))


def _sync_proof(t):
    import torch

    from grpo_fast.trainer.logprobs import sequence_logprobs

    prompt = t.sampler.encode_prompts(["What is 2 + 2?"])[1][0]
    completion = list(range(100, 132))

    def ours():
        ids = torch.tensor([prompt + completion], device=t.device)
        with torch.no_grad():
            return sequence_logprobs(t.model, ids, torch.ones_like(ids), len(completion), 1.0)[0][0].tolist()

    before = ours()
    m = t.step()
    after = ours()
    engine = t.sampler.score([prompt], [completion])[0]
    moved = max(abs(a - b) for a, b in zip(after, before, strict=True))
    off = max(abs(a - b) for a, b in zip(after, engine, strict=True))
    return m, moved, off


def check_colocate(model_dir, results):
    t = _trainer(model_dir, bf16=True)
    try:
        m, moved, off = _sync_proof(t)
        ok = moved > 10 * SYNC_TOL and off < SYNC_TOL
        results.append(("colocate: step + weight sync", ok, f"policy moved {moved:.3g}, engine off by {off:.3g} "
                        f"(tol {SYNC_TOL}); gen {m['generation_s']:.2f} s, update {m['update_s']:.2f} s, "
                        f"sync {m['weight_sync_s']:.2f} s; sampling/kl {m.get('sampling/kl', float('nan')):.2e}"))
    finally:
        t.close()


def check_sleep(model_dir, results):
    import torch

    t = _trainer(model_dir, bf16=True, vllm_enable_sleep_mode=True, vllm_dtype="bfloat16")
    try:
        t.step()
        torch.cuda.synchronize()
        t.sampler.sleep()
        asleep = torch.cuda.mem_get_info()[0]
        t.sampler.wake_up()
        awake = torch.cuda.mem_get_info()[0]
        m = t.step()
        freed = (asleep - awake) / 2**30
        results.append(("colocate: sleep mode", freed > 0.1 and m["grad_norm"] > 0,
                        f"sleeping freed {freed:.2f} GiB; step after waking: reward {m['reward']:.3f}"))
    finally:
        t.close()


def check_server(model_dir, results):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "grpo_fast.cli", "vllm-serve", "--model", str(model_dir),
                             "--port", str(port), "--dtype", "float32", "--max-model-len", "512",
                             "--gpu-memory-utilization", "0.25"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stdout.read()[-2000:]) from None
                time.sleep(2)
        t = _trainer(model_dir, bf16=True, vllm_mode="server", vllm_server_url=url)
        try:
            m, moved, off = _sync_proof(t)
            ok = moved > 10 * SYNC_TOL and off < SYNC_TOL
            results.append(("server: step + weight sync", ok, f"policy moved {moved:.3g}, engine off by {off:.3g}; "
                            f"upload + load {m['weight_sync_s']:.2f} s"))
        finally:
            t.close()
    finally:
        proc.terminate()
        proc.wait(60)


def check_bf16_steps(model_dir, results, steps):
    t = _trainer(model_dir, bf16=True, vllm_dtype="bfloat16")
    try:
        times = [t.step() for _ in range(steps)]
        last = times[1:] or times
        s = sum(m["step_time_s"] for m in last) / len(last)
        g = sum(m["generation_s"] for m in last) / len(last)
        u = sum(m["update_s"] for m in last) / len(last)
        results.append(("bf16 steps (vLLM bf16 colocate)", all(m["grad_norm"] > 0 for m in times),
                        f"{s:.2f} s/step (generation {g:.2f}, update {u:.2f}); "
                        f"ratio mean {last[-1].get('sampling/importance_sampling_ratio/mean', float('nan')):.4f}"))
    finally:
        t.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model folder (gpu_check.sh builds Qwen2.5-0.5B's shape)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args()
    import torch

    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}", flush=True)
    results = []
    for name, fn in (("colocate", lambda: check_colocate(a.model, results)),
                     ("sleep", lambda: check_sleep(a.model, results)),
                     ("server", lambda: check_server(a.model, results)),
                     ("bf16", lambda: check_bf16_steps(a.model, results, a.steps))):
        t0 = time.time()
        try:
            fn()
        except Exception as exc:  # report and go on: one broken check should not hide the others
            results.append((name, False, f"{type(exc).__name__}: {exc}"[:500]))
        print(f"[{'ok' if results[-1][1] else 'FAIL'}] {results[-1][0]} ({time.time() - t0:.0f} s): {results[-1][2]}",
              flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"check": n, "ok": ok, "detail": d} for n, ok, d in results], f, indent=2)
    print(f"{sum(ok for _, ok, _ in results)} passed, {sum(not ok for _, ok, _ in results)} failed")
    sys.exit(0 if all(ok for _, ok, _ in results) else 1)


if __name__ == "__main__":
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    main()
