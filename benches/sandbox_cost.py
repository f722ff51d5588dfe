"""What one sandboxed run costs the machine: CPU (steal excluded) and page faults per run, split
by process (the zygotes, the children they reap, the daemon, this client), for trivial runs at a
given concurrency. With several daemon binaries (`--binary A --binary B`) they take turns in
short bursts and the medians are compared: an A/B that holds up on a VM whose speed drifts.

    python benches/sandbox_cost.py                       # the daemon found as the client finds it
    python benches/sandbox_cost.py --runs 3000 --concurrency 2
    python benches/sandbox_cost.py --binary /tmp/a/grpo-sandboxd --binary /tmp/b/grpo-sandboxd --rounds 8
    python benches/sandbox_cost.py --binary "" --floor     # the daemon against both floors, in turns

The floors: the bare fork (benches/sandbox_floor.py) and the isolated floor, the same fork with
the per-run isolation grpo-sandboxd takes and nothing else (benches/sandbox_isolated_floor.py
--mode seccomp): the best any sandbox with that isolation could do on this machine.

Linux only (reads /proc); a daemon started here needs root for native isolation.
"""

from __future__ import annotations

import argparse
import json
import os
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
TCK = os.sysconf("SC_CLK_TCK")
FLOOR = Path(__file__).resolve().parent / "sandbox_floor.py"
ISOLATED_FLOOR = Path(__file__).resolve().parent / "sandbox_isolated_floor.py"


def machine() -> tuple[int, int]:
    """(busy, steal) ticks of the whole machine (busy excludes idle, iowait and steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4] - v[7], v[7]


def processes() -> dict[int, tuple[str, int, int, int, int, int]]:
    """pid -> (command, parent, own ticks, reaped children's ticks, own minor faults, children's)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        out[int(d)] = (comm, int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]), int(f[7]), int(f[8]))
    return out


def burst(client: Client, runs: int, concurrency: int, pool: ThreadPoolExecutor) -> float:
    t0 = time.perf_counter()
    results = list(pool.map(lambda _: client.run(TRIVIAL, "hello\n"), range(runs)))
    elapsed = time.perf_counter() - t0
    bad = sum(r["stdout"] != "olleh\n" for r in results)
    if bad:
        raise SystemExit(f"{bad} wrong answers")
    return runs / elapsed


def floor_python() -> str:
    return os.path.realpath("/usr/bin/python3") if os.path.exists("/usr/bin/python3") else sys.executable


def floor_burst(runs: int, concurrency: int) -> tuple[float, float]:
    """(runs/s, CPU ms per run) of benches/sandbox_floor.py: a fork of a pre-imported interpreter."""
    spec = {"kind": "run", "code": TRIVIAL, "stdin": "hello\n", "expected": "olleh\n", "runs": runs,
            "concurrency": concurrency}
    out = json.loads(subprocess.run([floor_python(), str(FLOOR), json.dumps(spec)], check=True,
                                    capture_output=True).stdout)
    if out["ok"] != runs:
        raise SystemExit(f"floor: {runs - out['ok']} wrong answers")
    return out["rps"], out["cpu_ms"]


def isolated_floor_burst(runs: int, concurrency: int) -> tuple[float, float]:
    """(runs/s, machine CPU ms per run) of the isolated floor; needs root."""
    out = json.loads(subprocess.run([floor_python(), "-I", "-S", str(ISOLATED_FLOOR), "--mode", "seccomp", "--runs",
                                     str(runs), "--concurrency", str(concurrency)], check=True,
                                    capture_output=True).stdout)
    return out["rps"], out["cpu_ms"]


def breakdown(client: Client, runs: int, concurrency: int) -> None:
    with ThreadPoolExecutor(concurrency) as pool:
        burst(client, 50, concurrency, pool)
        p0, m0, me0 = processes(), machine(), os.times()
        rps = burst(client, runs, concurrency, pool)
        p1, m1, me1 = processes(), machine(), os.times()
    per = 1e3 / TCK / runs
    print(f"{rps:.1f} runs/s at concurrency {concurrency}; per run: machine CPU {(m1[0] - m0[0]) * per:.3f} ms "
          f"(steal {(m1[1] - m0[1]) * per:.3f} ms), this client {(me1.user + me1.system - me0.user - me0.system) * 1e3 / runs:.3f} ms")
    daemon = client._proc.pid if client._proc is not None else None
    ours = {daemon}
    for pid in sorted(p1):  # the daemon's descendants (children have higher pids, mostly)
        for _ in range(2):
            if p1[pid][1] in ours:
                ours.add(pid)
    other = kernel = 0
    for pid, (comm, ppid, own, kids, flt, kflt) in sorted(p1.items()):
        if pid not in p0 or pid == os.getpid():
            continue
        d_own, d_kids = own - p0[pid][2], kids - p0[pid][3]
        d_flt, d_kflt = flt - p0[pid][4], kflt - p0[pid][5]
        if pid not in ours:
            if ppid == 2 or pid == 2:
                kernel += d_own
            else:
                other += d_own + d_kids
            continue
        if d_own + d_kids == 0 and d_flt + d_kflt == 0:
            continue
        role = "zygote" if comm.startswith("python") else ("daemon" if pid == daemon else comm)
        print(f"  {role:14s} pid {pid:7d}: CPU {d_own * per:.3f} ms + reaped children {d_kids * per:.3f} ms; "
              f"faults {d_flt / runs:.1f} + children's {d_kflt / runs:.1f}")
    print(f"  kernel threads: CPU {kernel * per:.3f} ms; other processes: {other * per:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--binary", action="append", default=[], help="daemon binary; repeat for an A/B")
    ap.add_argument("--rounds", type=int, default=6, help="A/B: bursts per binary")
    ap.add_argument("--floor", action="store_true",
                    help="A/B: the bare fork and the isolated floor (as root) take turns too")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sandbox-cost-")
    clients = [Client(os.path.join(tmp, f"d{i}.sock"), binary=b or None, daemon_args=["--slots", str(args.slots)])
               for i, b in enumerate(args.binary or [""])]
    try:
        if len(clients) == 1 and not args.floor:
            breakdown(clients[0], args.runs, args.concurrency)
            return
        n = max(50, args.runs // args.rounds)
        rps: dict[int, list[float]] = {i: [] for i in range(len(clients))}
        cpu: dict[int, list[float]] = {i: [] for i in range(len(clients))}
        floor_rps: list[float] = []
        floor_cpu: list[float] = []
        iso_rps: list[float] = []
        iso_cpu: list[float] = []
        isolated = args.floor and os.geteuid() == 0
        with ThreadPoolExecutor(args.concurrency) as pool:
            for c in clients:
                burst(c, 50, args.concurrency, pool)
            for _ in range(args.rounds):
                for i, c in enumerate(clients):
                    m0 = machine()
                    rps[i].append(burst(c, n, args.concurrency, pool))
                    cpu[i].append((machine()[0] - m0[0]) * 1e3 / TCK / n)
                if args.floor:  # its own CPU (it and its children), so its start-up is left out
                    r, ms = floor_burst(n, args.concurrency)
                    floor_rps.append(r)
                    floor_cpu.append(ms)
                if isolated:
                    r, ms = isolated_floor_burst(n, args.concurrency)
                    iso_rps.append(r)
                    iso_cpu.append(ms)
        for i, b in enumerate(args.binary or [""]):
            ratio = f", {statistics.median(rps[i]) / statistics.median(floor_rps):.2f}x the floor" if args.floor else ""
            if isolated:
                ratio += f", {statistics.median(rps[i]) / statistics.median(iso_rps):.2f}x the isolated floor"
            print(f"{b or 'grpo-sandboxd'}: {statistics.median(rps[i]):.1f} runs/s (median of {args.rounds}), "
                  f"machine CPU {statistics.median(cpu[i]):.3f} ms per run{ratio}")
        if args.floor:
            print(f"floor (bare fork): {statistics.median(floor_rps):.1f} runs/s, CPU {statistics.median(floor_cpu):.3f} ms per run")
        if isolated:
            print(f"isolated floor (bare fork + per-run isolation): {statistics.median(iso_rps):.1f} runs/s "
                  f"({statistics.median(iso_rps) / statistics.median(floor_rps):.2f}x the floor), "
                  f"machine CPU {statistics.median(iso_cpu):.3f} ms per run")
    finally:
        for c in clients:
            c.close()


if __name__ == "__main__":
    main()
