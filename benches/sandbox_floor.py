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
from concurrent.futures import ThreadPoolExecutor


def run_one(code_obj, stdin: bytes) -> bytes:
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(r_in, 0)
            os.dup2(w_out, 1)
            for fd in (r_in, w_in, r_out, w_out):
                os.close(fd)
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
    lat: list[float] = []
    ok = [0]

    def one(_: int) -> None:
        t = time.perf_counter()
        ok[0] += job()
        lat.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=spec["concurrency"]) as pool:
        list(pool.map(one, range(spec["runs"])))
    elapsed = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({"rps": spec["runs"] / elapsed, "p50": statistics.median(lat),
                      "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "ok": ok[0], "runs": spec["runs"]}))


if __name__ == "__main__":
    main()
