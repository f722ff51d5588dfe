"""What writers killed with -9 leave beside their target (`.NAME.tmp-PID-N` from the Rust writer,
`.NAME.tmp-PID` from `files.replacing`) is removed by the next write to that target, and nothing
else is: not a live writer's file (here or, through its lock, elsewhere), not a name that only
looks like one. Each leftover comes from a real writer process killed with SIGKILL."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import subprocess
import sys
import time

from grpo_fast.files import atomic_write_text, remove_abandoned_temps, replacing


def _group(i: int) -> bytes:
    a, b = 2 * (i % 50 + 2), i % 50 + 2
    work = (
        f"Natalia sold {a} clips in April. In May she sold half as many, {b} clips. "
        f"Altogether she sold {a} + {b} = {a + b} clips in April and May."
    )
    rec = {
        "id": f"gsm8k-{i}",
        "prompt": f"Natalia sold clips to {a} of her friends in April, and then she sold half as many "
        "clips in May. How many clips did Natalia sell altogether in April and May?",
        "answer": f"#### {a + b}",
        "responses": [
            {"text": f"{work}\nThe answer is \\boxed{{{a + b}}}.", "score": 1.0},
            {"text": f"{work}\nThe answer is \\boxed{{{a + b + 1}}}.", "score": 0.0},
            {"text": f"{work}\nThe answer is \\boxed{{{a}}}.", "score": 0.0},
            {"text": f"She sold {a} + {b} = {a + b}. \\boxed{{{a + b}}}", "score": 1.0},
        ],
    }
    return json.dumps(rec).encode() + b"\n"


def _start_advantages(out) -> subprocess.Popen:
    """`grpo-fast advantages - -o OUT` fed through a pipe we hold: it writes its temporary output
    and waits for the rest of its input."""
    return subprocess.Popen(
        [sys.executable, "-m", "grpo_fast.cli", "advantages", "-", "--method", "rloo", "-o", str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_temp(folder, pattern, proc, timeout=120.0, nonempty=True) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in glob.glob(os.path.join(folder, pattern)):
            if os.path.getsize(t) > 0 or not nonempty:
                return t
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.01)
    raise AssertionError("no temporary output in time")


def test_a_killed_rust_writers_temp_goes_at_the_next_write_and_a_live_ones_stays(tmp_path):
    out = tmp_path / "with_adv.jsonl"
    body = b"".join(_group(i) for i in range(40000))  # past the 1 MiB write buffer
    killed = _start_advantages(out)
    killed.stdin.write(body[: len(body) // 2])
    killed.stdin.flush()
    left = _wait_for_temp(tmp_path, ".with_adv.jsonl.tmp-*", killed)
    killed.kill()
    killed.wait()
    killed.stdin.close()
    assert killed.returncode == -9 and os.path.exists(left)
    assert os.path.basename(left).startswith(f".with_adv.jsonl.tmp-{killed.pid}-")

    # A writer of the same output still running when the next one starts keeps its file.
    live = _start_advantages(out)
    live.stdin.write(body[: len(body) // 2])
    live.stdin.flush()
    live_temp = _wait_for_temp(tmp_path, f".with_adv.jsonl.tmp-{live.pid}-*", live, nonempty=False)
    # Names that only look like a leftover, and another output's leftover, stay.
    lookalikes = [
        tmp_path / f".with_adv.jsonl.tmp-{killed.pid}-0.bak",
        tmp_path / f".with_adv.jsonl.tmp-{killed.pid}",
        tmp_path / f"with_adv.jsonl.tmp-{killed.pid}-0",
        tmp_path / f".other.jsonl.tmp-{killed.pid}-0",
    ]
    for p in lookalikes:
        p.write_text("keep me\n")

    src = tmp_path / "in.jsonl"
    src.write_bytes(body[:50_000].rsplit(b"\n", 1)[0] + b"\n")
    r = subprocess.run(
        [sys.executable, "-m", "grpo_fast.cli", "advantages", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(left), "the killed writer's temporary file was left"
    assert os.path.exists(live_temp), "a live writer's temporary file was removed"
    assert all(p.read_text() == "keep me\n" for p in lookalikes)

    # The live writer finishes normally: its output replaces the other run's, whole.
    live.stdin.write(body[len(body) // 2 :])
    live.stdin.close()
    assert live.wait(timeout=300) == 0, live.stderr.read().decode()
    lines = out.read_bytes().splitlines()
    assert len(lines) == 40000 and all("advantage" in json.loads(x)["responses"][0] for x in lines[:50])
    assert sorted(glob.glob(str(tmp_path / ".with_adv.jsonl.tmp-*"))) == sorted(
        str(p) for p in lookalikes if p.name.startswith(".with_adv")
    )


_REPLACING_WRITER = """
import sys, time
from grpo_fast.files import replacing
with replacing(sys.argv[1]) as tmp:
    tmp.write_text("half of a report")
    print("writing", flush=True)
    time.sleep(600)
"""


def _start_replacing(path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _REPLACING_WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "writing\n", proc.stderr.read()
    return proc


def test_a_killed_replacing_writers_temp_goes_at_the_next_write(tmp_path):
    report = tmp_path / "report.json"
    report.write_text('{"old": true}\n')
    killed = _start_replacing(report)
    left = tmp_path / f".report.json.tmp-{killed.pid}"
    killed.kill()
    killed.wait()
    assert left.exists() and report.read_text() == '{"old": true}\n'

    live = _start_replacing(report)
    live_temp = tmp_path / f".report.json.tmp-{live.pid}"
    other = tmp_path / f".report.json.tmp-{killed.pid}.png"  # another suffix: another writer's pattern
    other.write_text("x")
    try:
        atomic_write_text(report, '{"new": true}\n')
        assert report.read_text() == '{"new": true}\n'
        assert not left.exists(), "the killed writer's temporary file was left"
        assert live_temp.exists(), "a live writer's temporary file was removed"
        assert other.exists()
    finally:
        live.kill()
        live.wait()
    # Dead now: the next write takes its file too.
    atomic_write_text(report, '{"newer": true}\n')
    assert not live_temp.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["report.json", other.name])


def test_a_locked_leftover_of_a_dead_pid_stays(tmp_path):
    """A writer in another PID namespace or on another host (a shared folder) shows a PID that is
    not alive here: its lock is what keeps its file."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    target = tmp_path / "curve.png"
    temp = tmp_path / f".curve.png.tmp-{dead.pid}.png"
    temp.write_bytes(b"\x89PNG half")
    with open(temp, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert remove_abandoned_temps(target, ".png") == []
        with replacing(target, suffix=".png") as tmp:
            tmp.write_bytes(b"\x89PNG whole")
        assert temp.exists()
    assert remove_abandoned_temps(target, ".png") == [temp]
    assert target.read_bytes() == b"\x89PNG whole"
