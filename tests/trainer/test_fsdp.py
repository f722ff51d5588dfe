"""FSDP on 2 CPU processes (gloo): a sharded update equals the single-process update on the union of
the ranks' groups (also when one rank has nothing to train on and pads), its checkpoint is a full HF
model, and `torchrun ... grpo-fast train --fsdp` runs and resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from test_ddp import _exit_skipping_teardown, _free_port, _groups, _has_torch_run_module

# rank 0's groups, rank 1's groups: "b" has other completion lengths; "" = nothing (rank 1 pads).
CASES = {"ab": ("a", "b"), "a_": ("a", "")}


def _trainer():
    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.run import make_trainer
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    cfg = GRPOConfig(toy="next_digit", learning_rate=1e-2, loss_type="dapo", beta=0.05, max_completion_length=3,
                     use_chat_template=False, fsdp=True)
    t = make_trainer(cfg, build_tiny_model(tok, seed=0), tok, [], None)
    # Adam's update g / (|g| + eps) is ~sign(g) for |g| << eps and turns float32 summation-order roundoff
    # in tiny gradients (~1e-9 here) into 1e-6 weight differences; a larger eps keeps the update
    # well-conditioned in g, so the weights can be compared to 1e-6 (the gradients are compared as is).
    for group in t.optimizer.param_groups:
        group["eps"] = 1e-4
    return t


def _full(t):
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from grpo_fast.trainer import collectives as dist_utils
    from grpo_fast.trainer.checkpoint import save_checkpoint

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    dist_utils.set_fsdp(True)
    try:
        for case, which in CASES.items():
            t = _trainer()
            assert dist_utils.is_fsdp(t.model)
            w = which[rank]
            t.train_on_groups(_groups(t.tokenizer, w) if w else [])
            names = [n for n, _ in t.model.named_parameters()]
            grads = [_full(p.grad).detach() for p in t.model.parameters()]
            weights = [_full(p).detach() for p in t.model.parameters()]
            if case == "ab":
                save_checkpoint(t, os.path.join(out, "ckpt"))
            if rank == 0:
                torch.save((names, grads, weights), os.path.join(out, f"{case}.pt"))
    finally:
        dist.destroy_process_group()
    _exit_skipping_teardown()


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp")
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return out


def _single(which: tuple[str, str]):
    from grpo_fast.trainer import collectives as dist_utils

    dist_utils.set_fsdp(False)
    single = _trainer()
    tok = single.tokenizer
    single.train_on_groups([g for w in which if w for g in _groups(tok, w)])
    return single


@pytest.mark.parametrize("case", CASES)
def test_fsdp_update_equals_single_process_on_the_union(two_rank_results, case):
    names, grads, weights = torch.load(two_rank_results / f"{case}.pt")
    single = _single(CASES[case])
    assert names == [n for n, _ in single.model.named_parameters()]
    for n, g, w, s in zip(names, grads, weights, single.model.parameters(), strict=True):
        assert torch.allclose(g, s.grad, atol=1e-6, rtol=1e-4), n
        assert torch.allclose(w, s.detach(), atol=1e-6, rtol=0), n


def test_fsdp_checkpoint_is_a_full_hf_model(two_rank_results):
    from transformers import AutoModelForCausalLM

    names, _, weights = torch.load(two_rank_results / "ab.pt")
    ckpt = two_rank_results / "ckpt"
    assert json.loads((ckpt / "config.json").read_text())["architectures"][0].startswith("FSDP") is False
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    params = dict(model.named_parameters())
    for n, w in zip(names, weights, strict=True):
        assert torch.equal(params[n].detach(), w), n
    opt = torch.load(ckpt / "optimizer.pt", weights_only=False) if (ckpt / "optimizer.pt").exists() else None
    if opt is not None:
        assert opt["fsdp"] is True


def test_torchrun_fsdp_train_command_runs_and_resumes(tmp_path):
    if not _has_torch_run_module():
        pytest.skip("torchrun not available")
    out = tmp_path / "fsdp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(steps: int, *extra: str) -> None:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
               str(_free_port()), "-m", "grpo_fast.trainer.launch", "--toy", "next_digit", "--fsdp", "--beta",
               "0.04", "--max-steps", str(steps), "--save-steps", "1", "--out", str(out), "-q", "--json", *extra]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
        assert p.returncode == 0, p.stderr[-3000:]

    run(2)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert json.loads((out / "config.json").read_text())["fsdp"] is True
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
    run(3, "--resume", "latest")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
