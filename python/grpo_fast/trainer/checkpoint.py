"""Checkpoints: the policy in Hugging Face format (safetensors) + tokenizer, plus everything needed
to continue a run bit-for-bit on CPU: optimiser, LR schedule, reference model, RNG states, prompt
position and step.

Saves are atomic: a checkpoint is written into a hidden sibling folder (`.checkpoint-N.tmp-<id>`) and
renamed into place only when complete, so a process killed at any moment never leaves a
`checkpoint-N` that `latest_checkpoint` would pick up half-written. `trainer_state.json`, written
last, carries a manifest (every file's size, and the sha256 of the small ones) that
`verify_checkpoint` checks before a resume loads anything."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grpo_fast.errors import ConfigError
from grpo_fast.files import atomic_write_text, fsync_dir

STATE_FILE = "trainer_state.json"
OPTIM_FILE = "optimizer.pt"
REF_FILE = "ref_model.safetensors"
MANIFEST_KEY = "files"
# Files up to this size get a sha256 in the manifest; larger ones (the weights) only their size.
HASH_MAX_BYTES = 16 << 20

_CKPT_RE = re.compile(r"checkpoint-(\d+)")
# Hidden siblings of a checkpoint folder: `.NAME.tmp-ID` (being written) and `.NAME.old-ID` (the
# previous NAME while it is being replaced).
_SIBLING_RE = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<id>[^./]+)")


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / f"checkpoint-{step}"


# The best checkpoint by an eval metric (`save_best_metric`). Its name has no step number, so
# `latest_checkpoint` (and `--resume latest`) never picks it; resume from it by its path.
BEST_CHECKPOINT = "checkpoint-best"


def best_checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / BEST_CHECKPOINT


def read_best(out_dir: str | Path, metric: str) -> dict[str, Any] | None:
    """What `checkpoint-best` under out_dir was kept for (`{"metric", "value", "step"}`), when it was
    kept for `metric`; None when there is none (or it is damaged, or was kept for another metric)."""
    f = best_checkpoint_dir(out_dir) / STATE_FILE
    try:
        best = json.loads(f.read_text()).get("best")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(best, dict) or best.get("metric") != metric or not isinstance(best.get("value"), (int, float)):
        return None
    return best


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The highest-step `checkpoint-N` under out_dir that has its trainer_state.json. Temporary
    folders of an unfinished save (`.checkpoint-N.tmp-*`) are never considered."""
    best = None
    for p in Path(out_dir).glob("checkpoint-*"):
        m = _CKPT_RE.fullmatch(p.name)
        if m and p.is_dir() and (p / STATE_FILE).exists() and (best is None or int(m.group(1)) > best[0]):
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


# ---------------------------------------------------------------------------------------------
# atomic file and folder writes


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_dir_for(path: Path, world: int) -> Path:
    # Under DDP every rank writes its RNG file into the same folder, so its name must not depend on
    # the process; a single process uses its pid.
    ident = f"ddp{world}" if world > 1 else str(os.getpid())
    return path.with_name(f".{path.name}.tmp-{ident}")


def clean_stale_saves(parent: str | Path) -> list[Path]:
    """Remove what unfinished saves left in `parent`: `.NAME.tmp-*` folders, and `.NAME.old-*` folders
    whose replacement is in place. A `.NAME.old-*` without a NAME (the process died between the two
    renames of a replacement) is a complete checkpoint: it is renamed back. Returns what was removed."""
    parent = Path(parent)
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for p in sorted(parent.iterdir()):
        m = _SIBLING_RE.fullmatch(p.name)
        if not m or not p.is_dir():
            continue
        target = parent / m["name"]
        if m["kind"] == "old" and not target.exists() and (p / STATE_FILE).exists():
            os.rename(p, target)
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _publish(tmp: Path, path: Path) -> None:
    """Rename the finished `tmp` to `path`. An existing `path` is first renamed aside and deleted only
    once the new one is in place, so at every moment one complete copy exists under a known name."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.rename(old, path)  # put the previous checkpoint back
        raise
    fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name == STATE_FILE:
            continue
        size = p.stat().st_size
        entry: dict[str, Any] = {"size": size}
        if size <= HASH_MAX_BYTES:
            entry["sha256"] = _sha256(p)
        out[p.relative_to(folder).as_posix()] = entry
    return out


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# save / load


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
    """Write a checkpoint of `trainer` (a GRPOTrainer) to `path`, atomically (see the module doc).
    Every rank must call it: under DDP each rank writes its own RNG file into the shared temporary
    folder, rank 0 writes the rest and, after a barrier, the manifest and the rename."""
    from grpo_fast.trainer import collectives as dist_utils

    path = Path(path)
    rank, world = trainer.rank, trainer.world
    tmp = _temp_dir_for(path, world)
    if rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_saves(path.parent)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    dist_utils.barrier()  # the temporary folder exists (and nothing stale is in it) before anyone writes
    try:
        _write_checkpoint_files(trainer, tmp)
        dist_utils.barrier()  # every rank's RNG file is written
        if rank == 0:
            state = {
                "step": trainer.step_count,
                "prompt_position": trainer.prompts.position if trainer.prompts is not None else 0,
                "world_size": world,
                "config": trainer.cfg.to_dict(),
                **(extra_state or {}),
                MANIFEST_KEY: _manifest(tmp),
            }
            for name in state[MANIFEST_KEY]:
                _fsync_file(tmp / name)
            # Written last: its presence marks the checkpoint complete (see latest_checkpoint).
            atomic_write_text(tmp / STATE_FILE, json.dumps(state, indent=2) + "\n")
            _publish(tmp, path)
    except Exception:
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    dist_utils.barrier()  # no rank goes on before the checkpoint is in place
    return path


def _write_checkpoint_files(trainer: Any, folder: Path) -> None:
    from grpo_fast.trainer import collectives as dist_utils

    fsdp = dist_utils.is_fsdp(trainer.model)
    model_sd = optim_sd = None
    if fsdp:  # gather full weights and optimiser state on rank 0 (a collective: all ranks join)
        model_sd, optim_sd = dist_utils.full_state_dicts(trainer.model, trainer.optimizer)
    rng_file = folder / f"rng_state_{trainer.rank}.pt"
    torch.save(_rng_state(), rng_file)
    if trainer.rank != 0:
        _fsync_file(rng_file)
        return
    from transformers.utils import logging as hf_logging

    # transformers shows a per-shard progress bar on save; the run has its own progress display.
    hf_logging.disable_progress_bar()
    trainer.model.save_pretrained(folder, safe_serialization=True, state_dict=model_sd)
    if fsdp:  # the sharded model's class is FSDP<Name>; the saved model is the plain <Name>
        cfg_file = folder / "config.json"
        hf_cfg = json.loads(cfg_file.read_text())
        hf_cfg["architectures"] = [a.removeprefix("FSDP") for a in hf_cfg.get("architectures") or []]
        cfg_file.write_text(json.dumps(hf_cfg, indent=2, sort_keys=True) + "\n")
    trainer.tokenizer.save_pretrained(folder)
    torch.save({"optimizer": optim_sd if fsdp else trainer.optimizer.state_dict(),
                "scheduler": trainer.scheduler.state_dict(), "fsdp": fsdp}, folder / OPTIM_FILE)
    if trainer.ref_model is not None:
        from safetensors.torch import save_model

        save_model(trainer.ref_model, str(folder / REF_FILE))  # handles tied embeddings


def _damaged(path: Path, name: str, what: str) -> ConfigError:
    return ConfigError(f"checkpoint {path}: {name} {what}", field="resume")


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    msg = msg if len(msg) <= 160 else msg[:157] + "..."
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def read_trainer_state(path: str | Path) -> dict[str, Any]:
    """The checkpoint's trainer_state.json; a ConfigError naming the file when it is missing or damaged."""
    path = Path(path)
    f = path / STATE_FILE
    if not f.is_file():
        raise _damaged(path, STATE_FILE, "is missing (an incomplete or damaged checkpoint)")
    try:
        state = json.loads(f.read_text())
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError("no step")
        int(state["step"])
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise _damaged(path, STATE_FILE, f"is truncated or corrupt ({_short(exc)})") from exc
    return state


def _check_files(path: Path, state: dict[str, Any], names: list[str] | None = None) -> None:
    """Check files against the manifest in `state` (all of them, or `names`): present, the recorded
    size, the recorded sha256. Checkpoints written before manifests only get the presence check."""
    manifest = state.get(MANIFEST_KEY)
    if not isinstance(manifest, dict):
        for name in names or ():
            if not (path / name).is_file():
                raise _damaged(path, name, "is missing")
        return
    for name, info in manifest.items():
        if names is not None and name not in names:
            continue
        f = path / name
        if not f.is_file():
            raise _damaged(path, name, "is missing")
        size = f.stat().st_size
        if size != info.get("size"):
            raise _damaged(path, name, f"is truncated or corrupt ({size} bytes, the checkpoint recorded "
                                       f"{info.get('size')})")
        if "sha256" in info and _sha256(f) != info["sha256"]:
            raise _damaged(path, name, "is corrupt (its sha256 differs from the one the checkpoint recorded)")
    for name in names or ():
        if name not in manifest and not (path / name).is_file():
            raise _damaged(path, name, "is missing")


def _check_safetensors(path: Path, name: str) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path / name), framework="pt") as f:
            f.keys()
    except Exception as exc:
        raise _damaged(path, name, f"is truncated or corrupt ({_short(exc)})") from exc


def verify_checkpoint(path: str | Path, rank: int = 0) -> dict[str, Any]:
    """Check a checkpoint before anything is loaded from it (call before transformers reads the
    weights): trainer_state.json parses, every file in its manifest is there with its recorded size
    (and sha256 for the small ones), the files `rank` needs exist, and every safetensors header
    matches its file's length. Raises a ConfigError that names the checkpoint, the file and what is
    wrong; returns the trainer state."""
    path = Path(path)
    state = read_trainer_state(path)
    _check_files(path, state)
    adapter = (path / "adapter_config.json").exists()  # a LoRA policy saved by peft
    needed = [OPTIM_FILE, f"rng_state_{rank}.pt", "adapter_config.json" if adapter else "config.json"]
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.safetensors.index.json")):
        needed.append("adapter_model.safetensors" if adapter else "model.safetensors")
    _check_files(path, {}, needed)  # presence (also for checkpoints written before manifests)
    for p in sorted(path.glob("*.safetensors")):
        _check_safetensors(path, p.name)
    cfg_name = needed[2]
    try:
        json.loads((path / cfg_name).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(path, cfg_name, f"is truncated or corrupt ({_short(exc)})") from exc
    return state


def _load_file(path: Path, name: str, load: Any, what: str = "is truncated or corrupt") -> Any:
    try:
        return load()
    except ConfigError:
        raise
    except Exception as exc:
        raise _damaged(path, name, f"{what} ({_short(exc)})") from exc


def load_trainer_state(trainer: Any, path: str | Path) -> dict[str, Any]:
    """Restore optimiser, scheduler, reference model, RNG and position into a trainer whose policy was
    already loaded from `path`. Returns the saved trainer state. A missing or damaged file raises a
    ConfigError that names it."""
    path = Path(path)
    state = read_trainer_state(path)
    if state.get("world_size", 1) != trainer.world:
        raise ConfigError(f"checkpoint was written with {state.get('world_size')} processes, resuming with "
                          f"{trainer.world}; the prompt order would differ", field="resume")
    from grpo_fast.trainer import collectives as dist_utils

    rng_name = f"rng_state_{trainer.rank}.pt"
    ref = path / REF_FILE
    _check_files(path, state, [OPTIM_FILE, rng_name] + ([REF_FILE] if trainer.ref_model is not None and ref.exists()
                                                        else []))
    fsdp = dist_utils.is_fsdp(trainer.model)
    opt = _load_file(path, OPTIM_FILE, lambda: torch.load(path / OPTIM_FILE, map_location="cpu" if fsdp else trainer.device,
                                                          weights_only=False))
    if not isinstance(opt, dict) or "optimizer" not in opt or "scheduler" not in opt:
        raise _damaged(path, OPTIM_FILE, "is corrupt (no optimizer / scheduler state in it)")
    if bool(opt.get("fsdp", False)) != fsdp:
        raise ConfigError("the checkpoint's optimiser state was saved " + ("with" if opt.get("fsdp") else "without")
                          + " fsdp; resume with the same setting", field="resume")
    mismatch = "does not fit this run's optimiser (other model or trainable parameters?)"
    if fsdp:
        _load_file(path, OPTIM_FILE, lambda: dist_utils.load_full_optimizer_state(trainer.model, trainer.optimizer,
                                                                                  opt["optimizer"]), mismatch)
    else:
        _load_file(path, OPTIM_FILE, lambda: trainer.optimizer.load_state_dict(opt["optimizer"]), mismatch)
    _load_file(path, OPTIM_FILE, lambda: trainer.scheduler.load_state_dict(opt["scheduler"]), mismatch)
    if trainer.ref_model is not None and ref.exists():
        from safetensors.torch import load_model

        _check_safetensors(path, REF_FILE)
        _load_file(path, REF_FILE, lambda: load_model(trainer.ref_model, str(ref), device=str(trainer.device)))
    rng = _load_file(path, rng_name, lambda: torch.load(path / rng_name, weights_only=False))
    trainer.step_count = int(state["step"])
    if trainer.prompts is not None:
        trainer.prompts.position = int(state["prompt_position"])
    _load_file(path, rng_name, lambda: _set_rng_state(rng))
    return state


# ---------------------------------------------------------------------------------------------
# the output folder of a run

# What a run writes at the top of --out (besides checkpoint-N folders and hidden temporaries);
# `--overwrite` removes exactly these.
RUN_FILES = ("config.json", "metrics.jsonl", "completions.jsonl", "curves.png")
RUN_DIRS = ("tensorboard", "wandb", BEST_CHECKPOINT)
_RUN_TEMP_RE = re.compile(r"\.(config\.json|metrics\.jsonl|completions\.jsonl|curves)\.tmp-[^/]+")
OVERWRITE_HELP = ("checkpoint-N folders, checkpoint-best, config.json, metrics.jsonl, completions.jsonl, curves.png, "
                  "tensorboard/ and wandb/ (and temporaries of unfinished saves); other files are kept")


def run_outputs(out_dir: str | Path) -> list[Path]:
    """The files and folders under out_dir that a run of this tool writes."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    for p in sorted(out_dir.iterdir()):
        name = p.name
        if (p.is_dir() and (_CKPT_RE.fullmatch(name) or name in RUN_DIRS or _SIBLING_RE.fullmatch(name))) or \
                (not p.is_dir() and (name in RUN_FILES or _RUN_TEMP_RE.fullmatch(name))):
            found.append(p)
    return found


def remove_run_outputs(out_dir: str | Path) -> list[Path]:
    """Delete what `run_outputs` lists (the previous run in out_dir); returns it."""
    removed = run_outputs(out_dir)
    for p in removed:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    return removed


def _drop_partial_last_line(path: Path) -> None:
    """A process killed while appending can leave half a line at the end of a JSONL file; cut it."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    keep = data[:data.rfind(b"\n") + 1]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(keep)
    os.replace(tmp, path)


def prepare_output_dir(out_dir: str | Path, *, resume: str | None, overwrite: bool, rank: int = 0) -> Path | None:
    """Check --out / --resume / --overwrite before anything is loaded or written, then create out_dir.

    Without `resume`, an out_dir that has anything in it is refused (a ConfigError) unless `overwrite`,
    which deletes the previous run's outputs (`run_outputs`) first. With `resume`, the checkpoint is
    resolved and verified (`verify_checkpoint`). Returns the checkpoint to resume from, or None. Every
    rank calls it; only rank 0 deletes."""
    from grpo_fast.trainer import collectives as dist_utils

    out_dir = Path(out_dir)
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite deletes it; give one of them",
                          field="overwrite")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output folder {out_dir} is a file", field="output_dir")
    resume_path = None
    dist_utils.barrier()  # every rank looks at out_dir before rank 0 changes anything in it
    if resume:
        resume_path = resolve_resume(resume, out_dir)
        verify_checkpoint(resume_path, rank)
        if rank == 0:
            _drop_partial_last_line(out_dir / "metrics.jsonl")
    elif out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            names = sorted(p.name for p in out_dir.iterdir())
            shown = ", ".join(names[:4]) + (f", ... ({len(names)} entries)" if len(names) > 4 else "")
            raise ConfigError(f"output folder {out_dir} is not empty ({shown}); continue that run with --resume "
                              "latest, start afresh in it with --overwrite, or choose another --out",
                              field="output_dir")
        if rank == 0:
            remove_run_outputs(out_dir)
    dist_utils.barrier()
    out_dir.mkdir(parents=True, exist_ok=True)
    return resume_path
