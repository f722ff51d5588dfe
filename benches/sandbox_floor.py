"""The floor for benches/bench_sandbox.py, measured in a clean interpreter: fork() of this
pre-imported process, the program exec'd in the child with stdin/stdout piped, no isolation, no
IPC. Standard library only, so the forked process is as small as a sandbox zygote.

    /usr/bin/python3 benches/sandbox_floor.py '{"kind": "run", "code": "...", "stdin": "", "runs": 200, "concurrency": 2}'
prints {"rps": ..., "p50": ..., "p99": ..., "ok": ...} as JSON.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time


def run_one(code_obj, stdin: bytes, in_child=None) -> bytes:
    """Forks, runs the code object in the child with `stdin` piped in, returns its stdout;
    `in_child()` runs in the child before the program (sandbox_isolated_floor.py isolates there)."""
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(r_in, 0)
            os.dup2(w_out, 1)
            for fd in (r_in, w_in, r_out, w_out):
                os.close(fd)
            if in_child is not None:
                in_child()
            sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False))
            exec(code_obj, {"__name__": "__main__"})
            sys.stdout.flush()
        finally:
            os._exit(0)
    os.close(r_in)
    os.close(w_out)
    os.write(w_in, stdin)
    os.close(w_in)
    chunks = []
    while True:
        b = os.read(r_out, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r_out)
    os.waitpid(pid, 0)
    return b"".join(chunks)


def main() -> None:
    spec = json.loads(sys.argv[1])
    code_obj = compile(spec["code"], "main.py", "exec")
    tests = spec.get("tests") or []
    expected = spec.get("expected")

    def job() -> bool:
        if spec["kind"] == "tests":
            return all(run_one(code_obj, t["stdin"].encode()).decode().strip() == t["expected_stdout"].strip()
                       for t in tests)
        out = run_one(code_obj, spec.get("stdin", "").encode()).decode()
        return expected is None or out == expected

    for _ in range(3):
        job()
    # Concurrency by processes, not threads: a fork from a threaded process would hand each
    # child the other threads' pipe ends (and the floor would measure that mess).
    c = spec["concurrency"]
    share = [spec["runs"] // c + (1 if i < spec["runs"] % c else 0) for i in range(c)]
    readers = []
    c0 = os.times()
    t0 = time.perf_counter()
    for n in share:
        r, w = os.pipe()
        if os.fork() == 0:
            os.close(r)
            lat, ok = [], 0
            for _ in range(n):
                t = time.perf_counter()
                ok += job()
                lat.append((time.perf_counter() - t) * 1000)
            os.write(w, json.dumps({"lat": lat, "ok": ok}).encode())
            os._exit(0)
        os.close(w)
        readers.append(r)
    lat, ok = [], 0
    for r in readers:
        chunks = []
        while True:
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)
        part = json.loads(b"".join(chunks))
        lat += part["lat"]
        ok += part["ok"]
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    elapsed = time.perf_counter() - t0
    c1 = os.times()
    cpu_ms = (c1.user + c1.system + c1.children_user + c1.children_system
              - c0.user - c0.system - c0.children_user - c0.children_system) * 1e3 / spec["runs"]
    lat.sort()
    print(json.dumps({"rps": spec["runs"] / elapsed, "cpu_ms": cpu_ms, "lat": lat, "p50": statistics.median(lat),
                      "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "ok": ok, "runs": spec["runs"]}))

if __name__ == "__main__":
    main()
