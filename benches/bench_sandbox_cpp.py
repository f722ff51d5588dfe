"""C++ programs against tests: grpo-sandboxd against what a harness does without it, side by side.

A C++ a+b solution against N stdin/stdout tests (`--tests`, default 10 and 100): (a) the
unsandboxed way, `subprocess.run(["g++", ...])` into a temporary directory, then
`subprocess.run([binary])` per test; (b) grpo-sandboxd, `/run_tests` with `language: "cpp"`
(compiled once inside the sandbox, a fresh sandboxed process per test). The methods take turns
in rounds (the VM's speed drifts); a cell is the median round. Prints requests/s, p50 latency and
the ratio, at concurrency 1 and 2.

    python benches/bench_sandbox_cpp.py
    python benches/bench_sandbox_cpp.py --runs 12 --tests 10,100 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from grpo_fast.sandbox import Client

PROGRAM = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"
FLAGS = ["-O2", "-std=gnu++17", "-pipe"]


def tests_of(n: int) -> list[dict]:
    return [{"stdin": f"{i} {i + 1}\n", "expected_stdout": f"{2 * i + 1}\n"} for i in range(n)]


def subprocess_job(tests: list[dict]):
    gxx = shutil.which("g++") or "g++"

    def job() -> bool:
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "main.cpp"), os.path.join(d, "main")
            Path(src).write_text(PROGRAM)
            if subprocess.run([gxx, *FLAGS, "-o", exe, src], capture_output=True).returncode:
                return False
            return all(subprocess.run([exe], input=t["stdin"], capture_output=True, text=True, timeout=10).stdout
                       .strip() == t["expected_stdout"].strip() for t in tests)

    return job


def sandboxd_job(client: Client, tests: list[dict]):
    def job() -> bool:
        return client.run_tests(PROGRAM, tests, language="cpp", timeout_ms=10_000)["all_passed"]

    return job


def burst(job, runs: int, concurrency: int) -> tuple[float, list[float], int]:
    lat: list[float] = []

    def one(_: int) -> bool:
        t = time.perf_counter()
        good = job()
        lat.append((time.perf_counter() - t) * 1000)
        return good

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        ok = sum(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - t0), lat, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=12, help="requests per cell")
    ap.add_argument("--tests", default="10,100", help="tests per request, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--socket", default=None, help="an existing daemon (default: one started here)")
    args = ap.parse_args()
    if shutil.which("g++") is None:
        raise SystemExit("no g++ on PATH: nothing to compare")
    sock = args.socket or os.path.join(tempfile.mkdtemp(prefix="bench-cpp-"), "sandboxd.sock")
    client = Client(sock, daemon_args=["--slots", "2"])
    if "cpp" not in client.health()["languages"]:
        raise SystemExit("the daemon runs no C++ (no /usr/bin/g++ when it started)")
    rows = []
    try:
        for n in [int(x) for x in args.tests.split(",")]:
            tests = tests_of(n)
            for c in (1, 2):
                methods = {"subprocess.run (g++, then a process per test)": subprocess_job(tests),
                           "grpo-sandboxd": sandboxd_job(client, tests)}
                for job in methods.values():
                    job()  # warm: page cache, the daemon's slots
                cells: dict[str, list] = {m: [] for m in methods}
                share = max(1, args.runs // args.rounds)
                for _ in range(args.rounds):
                    for name, job in methods.items():
                        rps, lat, ok = burst(job, share, c)
                        if ok != share:
                            raise SystemExit(f"{name}: {share - ok} wrong answers")
                        cells[name].append((rps, lat))
                base = statistics.median(r for r, _ in cells[next(iter(methods))])
                for name, parts in cells.items():
                    rps = statistics.median(r for r, _ in parts)
                    p50 = statistics.median(x for _, lat in parts for x in lat)
                    rows.append((n, c, name, rps, p50, rps / base))
                    print(f"{n} tests c={c} {name}: {rps:.2f} req/s, p50 {p50:.0f} ms, {rps / base:.2f}x", flush=True)
    finally:
        if client.started_daemon:
            client.close()
    print("\n| tests | c | method | requests/s | p50 ms | vs subprocess |")
    print("|---|---|---|---|---|---|")
    for n, c, name, rps, p50, ratio in rows:
        print(f"| {n} | {c} | {name} | {rps:.2f} | {p50:.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
