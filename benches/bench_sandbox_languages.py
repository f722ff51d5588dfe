"""Programs in C++, Java and JavaScript against tests: grpo-sandboxd against what a harness does
without it, side by side.

An a+b solution against N stdin/stdout tests (`--tests`, default 10 and 100): (a) the unsandboxed
way, the compiler by `subprocess.run` into a temporary directory (g++; javac), then
`subprocess.run` of the program per test (the binary; `java`; `node`); (b) grpo-sandboxd,
`/run_tests` with the language (compiled once inside the sandbox, a fresh sandboxed process per
test; a new program every request, so the daemon's build cache never hits), and (c) the same with
one program sent again and again (its build from the cache: no compile). The methods take turns in rounds (the VM's speed drifts); a cell is the median round.
Prints requests/s, p50 latency and the ratio, at concurrency 1 and 2, per language.

    python benches/bench_sandbox_languages.py                      # cpp
    python benches/bench_sandbox_languages.py --language cpp,java,javascript --tests 10
    python benches/bench_sandbox_languages.py --runs 12 --tests 10,100 --rounds 3
"""

from __future__ import annotations

import argparse
import itertools
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

# language -> (source file, program, compile argv (None: nothing to compile), run argv); in
# the argvs, {d} is the temporary directory. The unsandboxed side runs the tools as a harness
# would, with their defaults.
LANGUAGES = {
    "cpp": ("main.cpp",
            "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n",
            ["g++", "-O2", "-std=gnu++17", "-pipe", "-o", "{d}/main", "{d}/main.cpp"], ["{d}/main"]),
    "java": ("Main.java",
             "import java.util.*;\npublic class Main { public static void main(String[] x) { Scanner s = new Scanner(System.in);"
             " long a = s.nextLong(), b = s.nextLong(); System.out.println(a + b); } }\n",
             ["javac", "-d", "{d}", "{d}/Main.java"], ["java", "-cp", "{d}", "Main"]),
    "javascript": ("main.js",
                   "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n"
                   "console.log(a + b);\n",
                   None, ["node", "{d}/main.js"]),
}


def tests_of(n: int) -> list[dict]:
    return [{"stdin": f"{i} {i + 1}\n", "expected_stdout": f"{2 * i + 1}\n"} for i in range(n)]


def subprocess_job(language: str, tests: list[dict]):
    source, program, compile_argv, run_argv = LANGUAGES[language]

    def job() -> bool:
        with tempfile.TemporaryDirectory() as d:
            Path(d, source).write_text(program)
            if compile_argv and subprocess.run([a.format(d=d) for a in compile_argv], capture_output=True).returncode:
                return False
            argv = [a.format(d=d) for a in run_argv]
            return all(subprocess.run(argv, input=t["stdin"], capture_output=True, text=True, timeout=10).stdout
                       .strip() == t["expected_stdout"].strip() for t in tests)

    return job


def sandboxd_job(client: Client, language: str, tests: list[dict], fresh: bool = True):
    """`fresh`: every request a program the daemon has not seen (a comment makes it new), so its
    build cache does not hide the compile; else the same program each time (cache hits)."""
    program = LANGUAGES[language][1]
    count = itertools.count()

    def job() -> bool:
        code = f"{program}// {os.getpid()}.{time.monotonic_ns()}.{next(count)}\n" if fresh else program
        return client.run_tests(code, tests, language=language, timeout_ms=10_000)["all_passed"]

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
    ap.add_argument("--language", default="cpp", help="comma-separated: " + ", ".join(LANGUAGES))
    args = ap.parse_args()
    sock = args.socket or os.path.join(tempfile.mkdtemp(prefix="bench-lang-"), "sandboxd.sock")
    client = Client(sock, daemon_args=["--slots", "2"])
    rows = []
    try:
        for language in args.language.split(","):
            tools = [argv[0] for argv in LANGUAGES[language][2:] if argv and not argv[0].startswith("{d}")]
            if language not in client.health()["languages"] or not all(shutil.which(t) for t in tools):
                print(f"{language}: skipped (the daemon or this PATH lacks {', '.join(tools)})")
                continue
            for n in [int(x) for x in args.tests.split(",")]:
                tests = tests_of(n)
                for c in (1, 2):
                    methods = {f"subprocess.run ({' + '.join(tools)}, a process per test)": subprocess_job(language, tests),
                               "grpo-sandboxd": sandboxd_job(client, language, tests)}
                    if LANGUAGES[language][2]:  # a compiled language: the program seen again
                        methods["grpo-sandboxd, build cached"] = sandboxd_job(client, language, tests, fresh=False)
                    for job in methods.values():
                        job()  # warm: page cache, the daemon's slots
                    cells: dict[str, list] = {m: [] for m in methods}
                    share = max(1, args.runs // args.rounds)
                    for _ in range(args.rounds):
                        for name, job in methods.items():
                            rps, lat, ok = burst(job, share, c)
                            if ok != share:
                                raise SystemExit(f"{language} {name}: {share - ok} wrong answers")
                            cells[name].append((rps, lat))
                    base = statistics.median(r for r, _ in cells[next(iter(methods))])
                    for name, parts in cells.items():
                        rps = statistics.median(r for r, _ in parts)
                        p50 = statistics.median(x for _, lat in parts for x in lat)
                        rows.append((language, n, c, name, rps, p50, rps / base))
                        print(f"{language} {n} tests c={c} {name}: {rps:.2f} req/s, p50 {p50:.0f} ms, "
                              f"{rps / base:.2f}x", flush=True)
    finally:
        if client.started_daemon:
            client.close()
    print("\n| language | tests | c | method | requests/s | p50 ms | vs subprocess |")
    print("|---|---|---|---|---|---|---|")
    for language, n, c, name, rps, p50, ratio in rows:
        print(f"| {language} | {n} | {c} | {name} | {rps:.2f} | {p50:.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
