"""DDP on 2 CPU processes (gloo): an update split across two ranks has the single-process gradient
on the union of their groups, for each aggregation; and `torchrun ... grpo-fast train` runs."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from grpo_fast.sampler.base import Completion, CompletionGroup
from grpo_fast.trainer.loop import ScoredGroup


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _groups(tok, which: str) -> list[ScoredGroup]:
    # Different completion lengths per rank, so token-normalised losses need the global count.
    spec = {
        "a": [("3=", ["4", "55", "6"], [1.0, 0.0, 0.0]), ("1=", ["2", "2", "333"], [1.0, 1.0, 0.0])],
        "b": [("7=", ["8", "9", "0", "12"], [1.0, 0.0, 0.5, 0.0])],
    }[which]
    out = []
    for prompt, answers, scores in spec:
        comps = [Completion(a, tok(a, add_special_tokens=False)["input_ids"] + [tok.eos_token_id], [], "stop")
                 for a in answers]
        out.append(ScoredGroup(CompletionGroup(prompt, prompt, tok(prompt)["input_ids"], comps, {}), scores))
    return out


def _trainer(loss_type: str):
    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.loop import GRPOTrainer
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    cfg = GRPOConfig(toy="next_digit", learning_rate=1e-2, loss_type=loss_type, beta=0.05, max_completion_length=3,
                     use_chat_template=False)
    return GRPOTrainer(cfg, build_tiny_model(tok, seed=0), tok, [], None)


LOSS_TYPES = ("grpo", "dapo", "dr_grpo")


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for loss_type in LOSS_TYPES:  # one spawn for all: starting processes is the slow part
            t = _trainer(loss_type)
            t.train_on_groups(_groups(t.tokenizer, "ab"[rank]))
            # The gradient of the (clipped) step, and the weights after it.
            torch.save(([p.grad.detach() for p in t.model.parameters()], [p.detach() for p in t.model.parameters()]),
                       os.path.join(out, f"{loss_type}-rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    _exit_skipping_teardown()


def _exit_skipping_teardown() -> None:
    """End a spawned worker that succeeded. Seen here: gloo's C++ threads can abort the
    interpreter's teardown ("terminate called without an active exception") after all results are
    written. Callers reach this only on success; an exception still fails the spawn as usual."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return out


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_two_rank_update_equals_single_process_on_the_union(two_rank_results, loss_type):
    r0 = torch.load(two_rank_results / f"{loss_type}-rank0.pt")
    r1 = torch.load(two_rank_results / f"{loss_type}-rank1.pt")
    single = _trainer(loss_type)
    start = [p.detach().clone() for p in single.model.parameters()]
    tok = single.tokenizer
    single.train_on_groups(_groups(tok, "a") + _groups(tok, "b"))
    for g0, g1, w0, w1, s in zip(r0[0], r1[0], r0[1], r1[1], single.model.parameters(), strict=True):
        assert torch.equal(w0, w1) and torch.equal(g0, g1)  # the ranks stay in sync
        # The all-reduced gradient is the big-batch gradient (up to float32 summation order). Weights
        # are not compared: Adam's first step is ~lr * sign(g), which amplifies roundoff in tiny g.
        assert torch.allclose(g0, s.grad, atol=1e-6, rtol=1e-4), loss_type
    assert any(not torch.equal(s.detach(), s0) for s, s0 in zip(single.model.parameters(), start, strict=True))
    assert any(not torch.equal(s.detach(), s0) for s, s0 in zip(single.model.parameters(), start, strict=True))


def test_torchrun_launches_the_train_command(tmp_path):
    if shutil.which("torchrun") is None and not _has_torch_run_module():
        pytest.skip("torchrun not available")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
           str(_free_port()), "-m", "grpo_fast.trainer.launch", "--toy", "next_digit", "--max-steps", "3",
           "--out", str(out), "-q", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
    assert (out / "checkpoint-3" / "rng_state_1.pt").exists()


def _has_torch_run_module() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch.distributed.run") is not None


def test_accelerate_launch_runs_the_train_command(tmp_path):
    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("accelerate not installed")
    out = tmp_path / "acc"
    # accelerate's multi-process launcher is behind --multi_gpu even without a GPU; the trainer then
    # picks gloo on CPU (its --cpu flag means a single process).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
           "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "grpo_fast.trainer.launch", "--toy", "next_digit", "--max-steps", "2", "--out", str(out),
           "-q", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
