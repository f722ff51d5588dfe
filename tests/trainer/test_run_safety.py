"""Data-safety of a training run: a used --out is refused unless --resume / --overwrite, SIGINT /
SIGTERM save a checkpoint before exiting, checkpoints are written atomically, and a damaged
checkpoint is named (file and what is wrong) instead of a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from grpo_fast.cli.train import _OVERWRITE_HELP, train
from grpo_fast.errors import ConfigError
from grpo_fast.trainer import checkpoint as ck
from grpo_fast.trainer.checkpoint import (
    checkpoint_dir,
    latest_checkpoint,
    load_trainer_state,
    save_checkpoint,
    verify_checkpoint,
)
from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.run import run_training

SMALL = ["--toy", "next_digit", "--prompts-per-step", "4", "--group-size", "4", "-q"]


def _cli(args):
    return CliRunner().invoke(train, [*SMALL, *args])


def _steps(out):
    return [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]


def _snapshot(d):
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))}


def _one_error_line(r, *needles):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "Aborted" not in r.output, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------------
# 1. a used --out


def test_rerun_into_used_out_is_refused_and_changes_nothing(tmp_path):
    out = tmp_path / "run"
    r = _cli(["--max-steps", "3", "--save-steps", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    before = _snapshot(out)
    r = _cli(["--max-steps", "2", "--out", str(out)])
    _one_error_line(r, str(out), "not empty", "--resume", "--overwrite")
    assert _snapshot(out) == before
    assert _steps(out) == [1, 2, 3]


def test_overwrite_starts_afresh_and_keeps_foreign_files(tmp_path):
    out = tmp_path / "run"
    r = _cli(["--max-steps", "3", "--save-steps", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    (out / "notes.txt").write_text("mine")
    r = _cli(["--max-steps", "2", "--out", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert _steps(out) == [1, 2]
    assert (out / "notes.txt").read_text() == "mine"
    assert latest_checkpoint(out).name == "checkpoint-2"
    # --resume still continues a used --out; together with --overwrite it is refused.
    _one_error_line(_cli(["--max-steps", "3", "--out", str(out), "--resume", "latest", "--overwrite"]), "--overwrite")


def test_overwrite_help_names_what_it_removes():
    assert _OVERWRITE_HELP == ck.OVERWRITE_HELP
    r = CliRunner().invoke(train, ["--help"])
    assert "--overwrite" in r.output and "metrics.jsonl" in " ".join(r.output.split())


def test_python_api_refuses_a_used_out_unless_overwrite(tmp_path):
    out = tmp_path / "api"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 7}\n')
    (out / "checkpoint-3").mkdir()
    cfg = GRPOConfig(toy="next_digit", output_dir=str(out), max_steps=1, prompts_per_step=4, num_generations=4)
    explicit = {"max_steps", "prompts_per_step", "num_generations"}
    before_int, before_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(ConfigError, match="not empty"):
        run_training(cfg, live=False, explicit=explicit)
    assert (out / "metrics.jsonl").read_text() == '{"step": 7}\n' and (out / "checkpoint-3").is_dir()
    with pytest.raises(ConfigError, match="--overwrite"):
        run_training(cfg, resume="latest", overwrite=True, live=False, explicit=explicit)
    res = run_training(cfg, overwrite=True, live=False, explicit=explicit)
    assert res.interrupted_by is None and _steps(out) == [1]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    # the run's signal handlers are gone again
    assert signal.getsignal(signal.SIGINT) is before_int and signal.getsignal(signal.SIGTERM) is before_term


def test_failed_train_leaves_no_folder_it_created(tmp_path, tiny_checkpoint):
    out = tmp_path / "new" / "sub"
    # --offline without --data fails after the model is loaded
    r = CliRunner().invoke(train, ["--model", str(tiny_checkpoint), "--offline", "--out", str(out), "-q"])
    _one_error_line(r, "--data")
    assert not (tmp_path / "new").exists()
    r = CliRunner().invoke(train, [*SMALL, "--out", str(out), "--resume", "latest"])
    _one_error_line(r, "no checkpoint")
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------------------------------------
# 2. SIGINT / SIGTERM


def _start(out, *extra):
    cmd = [sys.executable, "-m", "grpo_fast", "train", "--toy", "next_digit", "--max-steps", "500", "--out", str(out),
           "-q", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_metrics(p, out, timeout=120):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        f = out / "metrics.jsonl"
        if f.exists() and f.read_text().strip():
            return
        if p.poll() is not None:
            pytest.fail(f"train exited early ({p.returncode}): {p.stderr.read()[-3000:]}")
        time.sleep(0.05)
    p.kill()
    pytest.fail("no metrics line in time")


def test_sigterm_saves_checkpoint_and_curves_then_resume_continues(tmp_path):
    out = tmp_path / "pre"
    p = _start(out)
    _wait_for_metrics(p, out)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err[-3000:]
    n = _steps(out)[-1]
    assert _steps(out) == list(range(1, n + 1))
    assert latest_checkpoint(out) == checkpoint_dir(out, n)
    verify_checkpoint(checkpoint_dir(out, n))
    assert (out / "curves.png").stat().st_size > 0
    assert f"checkpoint {checkpoint_dir(out, n)}" in " ".join(err.split()) and "Traceback" not in err
    r = subprocess.run([sys.executable, "-m", "grpo_fast", "train", "--toy", "next_digit", "--out", str(out), "-q",
                        "--resume", "latest", "--max-steps", str(n + 2)], capture_output=True, text=True,
                       timeout=180, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming from {checkpoint_dir(out, n)}" in " ".join(r.stderr.split())
    assert _steps(out) == list(range(1, n + 3))
    assert latest_checkpoint(out) == checkpoint_dir(out, n + 2)


def test_sigint_saves_and_exits_130_and_a_second_one_exits_at_once(tmp_path):
    out = tmp_path / "int"
    p = _start(out)
    _wait_for_metrics(p, out)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-3000:]
    n = _steps(out)[-1]
    assert latest_checkpoint(out) == checkpoint_dir(out, n) and (out / "curves.png").exists()
    # Twice in a row: out at once (still 130, no traceback); whatever checkpoint exists is complete.
    out2 = tmp_path / "int2"
    p = _start(out2)
    _wait_for_metrics(p, out2)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "Aborted" not in err
    last = latest_checkpoint(out2)
    if last is not None:
        verify_checkpoint(last)
    assert not list(out2.glob(".checkpoint-*"))


# ---------------------------------------------------------------------------------------------
# 3. atomic saves


@pytest.fixture
def toy_trainer():
    from grpo_fast.trainer.run import build_model_and_tokenizer, make_trainer, resolve_verifier, toy_overrides
    from grpo_fast.trainer.toy_tasks import get_toy_task

    cfg = toy_overrides(GRPOConfig(toy="next_digit", prompts_per_step=4, num_generations=4), set())
    model, tok = build_model_and_tokenizer(cfg)
    t = make_trainer(cfg, model, tok, list(get_toy_task("next_digit").records), resolve_verifier(cfg.verifier))
    yield t
    t.close()


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_failed_resave_leaves_the_previous_checkpoint_intact(tmp_path, toy_trainer, monkeypatch):
    t = toy_trainer
    t.step_count = 2
    save_checkpoint(t, checkpoint_dir(tmp_path, 2))
    t.step_count = 3
    save_checkpoint(t, checkpoint_dir(tmp_path, 3))
    old = _weights(checkpoint_dir(tmp_path, 3))
    with torch.no_grad():
        for p in t.model.parameters():
            p.add_(1.0)
    real_save = torch.save

    def dying_save(obj, f, *a, **kw):  # the process "dies" while writing the optimiser state
        if str(f).endswith(ck.OPTIM_FILE):
            raise OSError("No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(ck.torch, "save", dying_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(t, checkpoint_dir(tmp_path, 3))
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == checkpoint_dir(tmp_path, 3)
    verify_checkpoint(checkpoint_dir(tmp_path, 3))
    assert all(torch.equal(old[k], v) for k, v in _weights(checkpoint_dir(tmp_path, 3)).items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-3"]
    # A successful re-save replaces it (new weights, nothing left aside).
    save_checkpoint(t, checkpoint_dir(tmp_path, 3))
    new = _weights(checkpoint_dir(tmp_path, 3))
    assert all(torch.equal(old[k] + 1.0, v) for k, v in new.items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-3"]


def test_killed_save_leftovers_are_ignored_then_cleaned(tmp_path, toy_trainer):
    t = toy_trainer
    t.step_count = 2
    save_checkpoint(t, checkpoint_dir(tmp_path, 2))
    t.step_count = 3
    save_checkpoint(t, checkpoint_dir(tmp_path, 3))
    # kill -9 while writing checkpoint-5: a half-written temporary folder (even with a state file) ...
    tmp5 = tmp_path / ".checkpoint-5.tmp-4242"
    shutil.copytree(checkpoint_dir(tmp_path, 3), tmp5)
    (tmp5 / "optimizer.pt").write_bytes(b"\x00" * 10)
    # ... and kill -9 between the two renames of a re-save of checkpoint-3: only the aside copy is left.
    os.rename(checkpoint_dir(tmp_path, 3), tmp_path / ".checkpoint-3.old-4242")
    os.mkdir(tmp_path / ".checkpoint-3.tmp-4242")
    assert latest_checkpoint(tmp_path) == checkpoint_dir(tmp_path, 2)  # complete, the temporaries are ignored
    t.step_count = 4
    save_checkpoint(t, checkpoint_dir(tmp_path, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-3", "checkpoint-4"]
    verify_checkpoint(checkpoint_dir(tmp_path, 3))  # the aside copy was put back
    assert latest_checkpoint(tmp_path) == checkpoint_dir(tmp_path, 4)


def test_publish_failure_puts_the_old_checkpoint_back(tmp_path, toy_trainer, monkeypatch):
    t = toy_trainer
    t.step_count = 3
    save_checkpoint(t, checkpoint_dir(tmp_path, 3))
    real_rename = os.rename

    def rename(a, b):
        if str(a).endswith(".tmp-" + str(os.getpid())) and str(b).endswith("checkpoint-3"):
            raise OSError("interrupted")
        return real_rename(a, b)

    monkeypatch.setattr(ck.os, "rename", rename)
    with pytest.raises(OSError, match="interrupted"):
        save_checkpoint(t, checkpoint_dir(tmp_path, 3))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3"]
    verify_checkpoint(checkpoint_dir(tmp_path, 3))


def test_metrics_truncate_is_atomic(tmp_path, monkeypatch):
    from grpo_fast.metrics import MetricsLogger

    f = tmp_path / "metrics.jsonl"
    f.write_text("".join(json.dumps({"step": i}) + "\n" for i in range(1, 6)))
    log = MetricsLogger(tmp_path, resume=True)

    def boom(fd):
        raise OSError("killed")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        log.truncate_to(2)
    monkeypatch.undo()
    assert _steps(tmp_path) == [1, 2, 3, 4, 5] and [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
    log.truncate_to(2)
    assert _steps(tmp_path) == [1, 2]


def test_resume_after_a_cut_metrics_line(tmp_path):
    out = tmp_path / "cut"
    r = _cli(["--max-steps", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "rew')  # killed while appending step 3's line
    r = _cli(["--max-steps", "3", "--out", str(out), "--resume", "latest"])
    assert r.exit_code == 0, r.output
    assert _steps(out) == [1, 2, 3]


# ---------------------------------------------------------------------------------------------
# 4. damaged checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("done") / "run"
    r = _cli(["--max-steps", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


DAMAGE = {
    "optimizer.pt": (lambda c: _truncate(c / "optimizer.pt"), "truncated or corrupt"),
    "rng_state_0.pt": (lambda c: _truncate(c / "rng_state_0.pt"), "truncated or corrupt"),
    "model.safetensors": (lambda c: _truncate(c / "model.safetensors", 0.9), "truncated or corrupt"),
    "tokenizer.json": (lambda c: (c / "tokenizer.json").unlink(), "missing"),
    "ref_model.safetensors": (lambda c: _truncate(c / "ref_model.safetensors"), "truncated or corrupt"),
    "trainer_state.json": (lambda c: _truncate(c / "trainer_state.json"), "truncated or corrupt"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_damaged_checkpoint_is_named_in_one_line(tmp_path, finished_run, name, manifest):
    if not manifest and name == "tokenizer.json":
        pytest.skip("without a manifest a missing tokenizer file is not detectable up front")
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    c = out / "checkpoint-2"
    if not manifest:  # as written before manifests existed
        state = json.loads((c / "trainer_state.json").read_text())
        del state["files"]
        (c / "trainer_state.json").write_text(json.dumps(state))
    damage, what = DAMAGE[name]
    damage(c)
    r = _cli(["--max-steps", "4", "--out", str(out), "--resume", "latest"])
    line = _one_error_line(r, f"checkpoint {c}", name, what)
    assert "resuming" not in r.output, line
    assert _steps(out) == [1, 2]  # nothing was written


def test_load_trainer_state_names_a_damaged_file(tmp_path, finished_run, toy_trainer):
    c = tmp_path / "checkpoint-2"
    shutil.copytree(finished_run / "checkpoint-2", c)
    _truncate(c / "optimizer.pt")
    with pytest.raises(ConfigError, match=r"checkpoint .*checkpoint-2: optimizer\.pt is truncated or corrupt"):
        load_trainer_state(toy_trainer, c)
    shutil.copy(finished_run / "checkpoint-2" / "optimizer.pt", c / "optimizer.pt")
    (c / "rng_state_0.pt").unlink()
    with pytest.raises(ConfigError, match=r"rng_state_0\.pt is missing"):
        load_trainer_state(toy_trainer, c)
    shutil.copy(finished_run / "checkpoint-2" / "rng_state_0.pt", c / "rng_state_0.pt")
    assert load_trainer_state(toy_trainer, c)["step"] == 2 and toy_trainer.step_count == 2


def test_resume_from_a_damaged_checkpoint_in_another_folder_creates_nothing(tmp_path, finished_run):
    src = tmp_path / "src"
    shutil.copytree(finished_run, src)
    _truncate(src / "checkpoint-2" / "model.safetensors", 0.99)
    new = tmp_path / "fresh"
    r = _cli(["--max-steps", "4", "--out", str(new), "--resume", str(src / "checkpoint-2")])
    _one_error_line(r, "model.safetensors")
    assert not new.exists()
