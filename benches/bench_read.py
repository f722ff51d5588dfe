"""Read + group + advantages over a rollouts file: grpo-fast vs what users write by hand.

Each contender runs in its own subprocess (so peak memory is its own) and does the same job:
parse every record, build per-response scores and group offsets, compute GRPO advantages
(sample std, eps 1e-4, zero-variance groups -> 0) and the mean score / pass rate.

    python benches/bench_read.py                      # generates 1 GiB if missing
    python benches/bench_read.py --size-mb 200 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def numpy_advantages(scores, offsets):
    import numpy as np

    sizes = np.diff(offsets)
    idx = np.repeat(np.arange(len(sizes)), sizes)
    sums = np.bincount(idx, scores, minlength=len(sizes))
    means = sums / np.maximum(sizes, 1)
    dev = scores - means[idx]
    var = np.bincount(idx, dev * dev, minlength=len(sizes)) / np.maximum(sizes - 1, 1)
    std = np.sqrt(var)
    adv = dev / (std[idx] + 1e-4)
    adv[(std[idx] == 0) | (sizes[idx] < 2)] = 0.0
    return adv


def run_python(path: str, loads) -> dict:
    import numpy as np

    scores: list[float] = []
    offsets = [0]
    with open(path, "rb") as f:
        for line in f:
            rec = loads(line)
            for r in rec["responses"]:
                scores.append(float(r["score"]))
            offsets.append(len(scores))
    s = np.asarray(scores)
    adv = numpy_advantages(s, np.asarray(offsets))
    return {"responses": len(s), "mean": float(s.mean()), "pass": float((s == 1.0).mean()),
            "adv_std": float(adv.std())}


def run_grpo_fast(path: str) -> dict:
    import numpy as np

    import grpo_fast

    n, total, passed, sq = 0, 0.0, 0, []
    for b in grpo_fast.iter_batches(path):
        adv = grpo_fast.compute_advantages(b.scores, b.offsets)
        n += b.num_responses
        total += float(b.scores.sum())
        passed += int((b.scores == 1.0).sum())
        sq.append(adv)
    adv = np.concatenate(sq)
    return {"responses": n, "mean": total / n, "pass": passed / n, "adv_std": float(adv.std())}


def worker(impl: str, path: str) -> None:
    start = time.perf_counter()
    if impl == "json":
        out = run_python(path, json.loads)
    elif impl == "orjson":
        import orjson

        out = run_python(path, orjson.loads)
    else:
        out = run_grpo_fast(path)
    out["seconds"] = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mb"] = ru.ru_maxrss / 1024
    # CPU seconds are less sensitive than wall time to other load on the machine.
    out["cpu_seconds"] = ru.ru_utime + ru.ru_stime
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default=None, help="rollouts file (default: bench-data/rollouts-<size>mb.jsonl)")
    ap.add_argument("--size-mb", type=float, default=1024)
    ap.add_argument("--style", choices=["plain", "latex"], default="plain",
                    help="text of the generated responses (see gen_rollouts.py)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the best is reported")
    ap.add_argument("--skip", default="", help="comma-separated contenders to skip: json,orjson")
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    suffix = "" if args.style == "plain" else f"-{args.style}"
    path = args.file or os.path.join("bench-data", f"rollouts-{int(args.size_mb)}mb{suffix}.jsonl")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_rollouts.py"), "--size-mb", str(args.size_mb),
                        "--out", path, "--style", args.style], check=True)
    size_mb = os.path.getsize(path) / (1 << 20)
    print(f"file: {path} ({size_mb:.0f} MiB), cores: {os.cpu_count()}")
    results = {}
    skip = set(filter(None, args.skip.split(",")))
    for impl in ["json", "orjson", "grpo-fast"]:
        if impl in skip:
            continue
        best = None
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, __file__, "--worker", impl, path],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if best is None or r["seconds"] < best["seconds"]:
                best = r
        results[impl] = best
        print(f"  {impl:10s} {best['seconds']:7.2f} s  {size_mb / best['seconds']:8.1f} MB/s  "
              f"{best['responses'] / best['seconds'] / 1e6:6.2f} M responses/s  CPU {best['cpu_seconds']:6.2f} s  "
              f"peak RSS {best['peak_rss_mb']:7.0f} MB  "
              f"(mean {best['mean']:.4f}, pass {best['pass']:.4f}, adv std {best['adv_std']:.4f})")
    ref = results.get("grpo-fast")
    if ref:
        for impl in ("json", "orjson"):
            if impl in results:
                r = results[impl]
                agree = abs(r["mean"] - ref["mean"]) < 1e-9 and abs(r["adv_std"] - ref["adv_std"]) < 1e-6
                print(f"grpo-fast vs {impl}: {r['seconds'] / ref['seconds']:.1f}x faster (wall), "
                      f"{r['cpu_seconds'] / ref['cpu_seconds']:.1f}x less CPU time, "
                      f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.1f}x less peak memory, results agree: {agree}")


if __name__ == "__main__":
    main()
