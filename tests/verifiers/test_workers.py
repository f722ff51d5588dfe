"""The worker pool on its own: start-up, a worker that dies, a worker that never answers."""

from __future__ import annotations

import time

import pytest

from grpo_fast.verifiers._workers import DIFFERENT, EQUAL, TIMEOUT, WorkerPool

BOUND = 60


@pytest.mark.timeout(BOUND)
def test_start_is_idempotent_and_map_works():
    pool = WorkerPool(workers=1, timeout=10)
    try:
        pool.start()
        t = time.monotonic()
        pool.start()  # already warm: returns at once
        assert time.monotonic() - t < 1.0
        assert pool.map([("2y=4x+6", "y=2x+3"), ("x+y=1", "x-y=1")]) == [(EQUAL, ""), (DIFFERENT, "")]
    finally:
        pool.close()


@pytest.mark.timeout(BOUND)
def test_a_dead_worker_is_replaced():
    pool = WorkerPool(workers=1, timeout=10)
    try:
        pool.start(warm=False)
        pool._procs[0].proc.kill()  # killed from outside (OOM killer, a stray signal, ...)
        pool._procs[0].proc.wait()
        assert pool.map([("2y=4x+6", "y=2x+3")]) == [(EQUAL, "")]
    finally:
        pool.close()


@pytest.mark.timeout(BOUND)
def test_overrun_kills_the_worker_and_counts(tmp_path, monkeypatch):
    """A worker module that never answers: every item is a timeout, none hangs."""
    (tmp_path / "silent_worker.py").write_text(
        "import sys, time\nprint('[\"ready\"]', flush=True)\nfor line in sys.stdin:\n    time.sleep(3600)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    pool = WorkerPool(workers=2, timeout=0.5, module="silent_worker")
    try:
        out = pool.map([("1", "1"), ("2", "2"), ("3", "3")])
        assert [s for s, _ in out] == [TIMEOUT] * 3
        assert pool.timeouts == 3 and pool.restarts >= 3
    finally:
        pool.close()


def test_bad_timeout_is_rejected():
    from grpo_fast.errors import VerifierError

    with pytest.raises(VerifierError):
        WorkerPool(timeout=0)
