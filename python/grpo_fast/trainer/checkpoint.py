"""Checkpoints: the policy in Hugging Face format (safetensors) + tokenizer, plus everything needed
to continue a run bit-for-bit on CPU: optimiser, LR schedule, reference model, RNG states, prompt
position and step."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grpo_fast.errors import ConfigError

STATE_FILE = "trainer_state.json"
OPTIM_FILE = "optimizer.pt"
REF_FILE = "ref_model.safetensors"


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / f"checkpoint-{step}"


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    best = None
    for p in Path(out_dir).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and (p / STATE_FILE).exists() and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), p)
    return best[1] if best else None


def resolve_resume(resume: str, out_dir: str | Path) -> Path:
    """`latest` -> the newest complete checkpoint under out_dir; otherwise a checkpoint directory."""
    if resume == "latest":
        p = latest_checkpoint(out_dir)
        if p is None:
            raise ConfigError(f"--resume latest: no checkpoint under {out_dir}", field="resume")
        return p
    p = Path(resume)
    if not (p / STATE_FILE).exists():
        raise ConfigError(f"--resume {resume}: not a checkpoint directory (no {STATE_FILE})", field="resume")
    return p


def _rng_state() -> dict[str, Any]:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(trainer: Any, path: str | Path, extra_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint of `trainer` (a GRPOTrainer) to `path`. Under DDP every rank writes its own
    RNG file; rank 0 writes the rest."""
    from grpo_fast.trainer import distributed as dist_utils

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rank = trainer.rank
    fsdp = dist_utils.is_fsdp(trainer.model)
    model_sd = None
    if fsdp:  # gather full weights and optimiser state on rank 0 (a collective: all ranks join)
        model_sd, optim_sd = dist_utils.full_state_dicts(trainer.model, trainer.optimizer)
    torch.save(_rng_state(), path / f"rng_state_{rank}.pt")
    if rank != 0:
        return path
    from transformers.utils import logging as hf_logging

    # transformers shows a per-shard progress bar on save; the run has its own progress display.
    hf_logging.disable_progress_bar()
    trainer.model.save_pretrained(path, safe_serialization=True, state_dict=model_sd)
    if fsdp:  # the sharded model's class is FSDP<Name>; the saved model is the plain <Name>
        cfg_file = path / "config.json"
        hf_cfg = json.loads(cfg_file.read_text())
        hf_cfg["architectures"] = [a.removeprefix("FSDP") for a in hf_cfg.get("architectures") or []]
        cfg_file.write_text(json.dumps(hf_cfg, indent=2, sort_keys=True) + "\n")
    trainer.tokenizer.save_pretrained(path)
    torch.save({"optimizer": optim_sd if fsdp else trainer.optimizer.state_dict(),
                "scheduler": trainer.scheduler.state_dict(), "fsdp": fsdp}, path / OPTIM_FILE)
    if trainer.ref_model is not None:
        from safetensors.torch import save_model

        save_model(trainer.ref_model, str(path / REF_FILE))  # handles tied embeddings
    state = {
        "step": trainer.step_count,
        "prompt_position": trainer.prompts.position if trainer.prompts is not None else 0,
        "world_size": trainer.world,
        "config": trainer.cfg.to_dict(),
        **(extra_state or {}),
    }
    # Written last: its presence marks the checkpoint complete (see latest_checkpoint).
    (path / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return path


def load_trainer_state(trainer: Any, path: str | Path) -> dict[str, Any]:
    """Restore optimiser, scheduler, reference model, RNG and position into a trainer whose policy was
    already loaded from `path`. Returns the saved trainer state."""
    path = Path(path)
    state = json.loads((path / STATE_FILE).read_text())
    if state.get("world_size", 1) != trainer.world:
        raise ConfigError(f"checkpoint was written with {state.get('world_size')} processes, resuming with "
                          f"{trainer.world}; the prompt order would differ", field="resume")
    from grpo_fast.trainer import distributed as dist_utils

    opt = torch.load(path / OPTIM_FILE, map_location="cpu" if dist_utils.is_fsdp(trainer.model) else trainer.device,
                     weights_only=False)
    if bool(opt.get("fsdp", False)) != dist_utils.is_fsdp(trainer.model):
        raise ConfigError("the checkpoint's optimiser state was saved " + ("with" if opt.get("fsdp") else "without")
                          + " fsdp; resume with the same setting", field="resume")
    if dist_utils.is_fsdp(trainer.model):
        dist_utils.load_full_optimizer_state(trainer.model, trainer.optimizer, opt["optimizer"])
    else:
        trainer.optimizer.load_state_dict(opt["optimizer"])
    trainer.scheduler.load_state_dict(opt["scheduler"])
    if trainer.ref_model is not None:
        ref = path / REF_FILE
        if ref.exists():
            from safetensors.torch import load_model

            load_model(trainer.ref_model, str(ref), device=str(trainer.device))
    trainer.step_count = int(state["step"])
    if trainer.prompts is not None:
        trainer.prompts.position = int(state["prompt_position"])
    rng_file = path / f"rng_state_{trainer.rank}.pt"
    _set_rng_state(torch.load(rng_file, weights_only=False))
    return state
