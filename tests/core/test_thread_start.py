"""A process that cannot start worker threads gets a GrpoIOError naming the cause, never a panic.

rayon starts its pool on first use and panics when a thread cannot be created; under a memory
limit (RLIMIT_AS) that is exactly what happens. The child below makes every thread need 1 GiB of
address space (RUST_MIN_STACK sets the stack of threads Rust starts) and caps the address space
256 MiB above what it already uses, so the first thread cannot start while Python keeps room.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import json, resource, sys
    import grpo_fast.errors as errors
    from grpo_fast.data import iter_records, write_records

    vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
    out = []
    for name, call in [
        ("read", lambda: list(iter_records(sys.argv[1]))),
        ("read again", lambda: list(iter_records(sys.argv[1]))),
        ("write", lambda: write_records(sys.argv[2], [{"a": 1}])),
    ]:
        try:
            call()
            out.append([name, "ok", ""])
        except errors.GrpoError as exc:
            out.append([name, type(exc).__name__, str(exc)])
    print(json.dumps(out))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux")
def test_threads_that_cannot_start_raise_grpo_io_error(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"prompt": "p", "responses": [{"text": "a", "score": 1}]}\n')
    env = {**os.environ, "RUST_MIN_STACK": str(1 << 30), "RAYON_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, "-c", CHILD, str(data), str(tmp_path / "out.jsonl")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "PanicException" not in r.stderr
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for name, kind, msg in results:
        assert kind == "GrpoIOError", (name, kind, msg)
        assert "worker threads" in msg and "RAYON_NUM_THREADS" in msg
    assert not (tmp_path / "out.jsonl").exists()


def test_threads_start_normally(tmp_path):
    """The same reads succeed without the limit (the check itself costs nothing)."""
    from grpo_fast.data import iter_records

    data = tmp_path / "in.jsonl"
    data.write_text('{"prompt": "p", "responses": [{"text": "a", "score": 1}]}\n')
    assert [r["prompt"] for r in iter_records(data)] == ["p"]
