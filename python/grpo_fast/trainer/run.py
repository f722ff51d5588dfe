"""A whole training run from a `GRPOConfig`: build (or load) model, tokenizer, prompts and verifier,
loop with a live display, checkpoint, and finish with metrics.jsonl, curves.png and a summary table.
The `grpo-fast train` command is a thin wrapper around `run_training`."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from grpo_fast.trainer import collectives as dist_utils
from grpo_fast.trainer.config import GRPOConfig


@dataclass
class RunResult:
    out_dir: Path
    history: list[dict[str, Any]]
    final_checkpoint: Path | None
    greedy_accuracy: float | None = None
    warnings: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    # The signal (signal.SIGINT / SIGTERM) that stopped the run early after saving; None if it ran to the end.
    interrupted_by: int | None = None


def resolve_verifier(spec: str, **options: Any) -> Any:
    """A verifier by name or `a=0.5,b=0.5` mix through the registry's one builder (see
    `grpo_fast.trainer.inputs.resolve_verifier`)."""
    from grpo_fast.trainer.inputs import resolve_verifier as resolve

    return resolve(spec, **options)


def is_tiny(model: Any) -> bool:
    """Small enough that per-op overhead, not arithmetic, sets the pace on CPU (the toy models have
    ~0.1M parameters): one thread is then fastest. A model with a real vocabulary (Qwen2's 151,936
    ids make even a 2-layer model ~20M parameters) spends its time in the LM head's matmuls and gets
    torch's default threads."""
    return sum(p.numel() for p in model.parameters()) < 5_000_000


def build_model_and_tokenizer(cfg: GRPOConfig, resume_from: Path | None = None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grpo_fast.trainer.inputs import check_model, load_pretrained

    if resume_from is not None:
        tok = load_pretrained(AutoTokenizer.from_pretrained, str(resume_from))
        model = load_pretrained(AutoModelForCausalLM.from_pretrained, str(resume_from), dtype=torch.float32)
        return model, tok
    if cfg.toy:
        from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model, get_toy_task

        task = get_toy_task(cfg.toy)
        tok = build_char_tokenizer(task.chars)
        model = build_tiny_model(tok, seed=cfg.seed)
        if task.warm_start is not None:
            task.warm_start(model, tok, cfg.seed)
        return model, tok
    check_model(cfg.model)
    tok = load_pretrained(AutoTokenizer.from_pretrained, cfg.model, padding_side="left")
    # float32 whatever the checkpoint's dtype: these are the master weights (bf16 runs as autocast).
    model = load_pretrained(AutoModelForCausalLM.from_pretrained, cfg.model, dtype=torch.float32)
    return model, tok


# Settings that change the numerics of every forward pass: a resumed run keeps the checkpoint's
# unless the user sets them again explicitly.
PRECISION_FIELDS = ("bf16",)


def keep_run_precision(cfg: GRPOConfig, checkpoint: Path, explicit: set[str], console: Any = None) -> GRPOConfig:
    """`cfg` with the checkpoint's precision settings where the user did not set them."""
    import json

    from grpo_fast.trainer.checkpoint import STATE_FILE

    saved = json.loads((Path(checkpoint) / STATE_FILE).read_text()).get("config", {})
    d = cfg.to_dict()
    for name in PRECISION_FIELDS:
        if name in saved and saved[name] != d[name]:
            if name in explicit:
                if console is not None:
                    console.print(f"[yellow]resuming with {name}={d[name]} although the run used {saved[name]}[/]")
            else:
                d[name] = saved[name]
    return GRPOConfig.from_dict(d)


def toy_overrides(cfg: GRPOConfig, explicit: set[str]) -> GRPOConfig:
    """`cfg` with a toy task's own settings where the user did not choose (see `config.toy_defaults`)."""
    from grpo_fast.trainer.config import toy_defaults

    return toy_defaults(cfg, explicit)


def run_training(cfg: GRPOConfig, *, resume: str | None = None, overwrite: bool = False, console: Any = None,
                 live: bool = True, explicit: set[str] | None = None) -> RunResult:
    """Run `cfg` to `max_steps`. `explicit` names the fields the user set (toy defaults don't override them).

    A non-empty `output_dir` is refused (ConfigError) unless `resume` continues it or `overwrite` deletes
    the previous run's outputs first (`checkpoint.run_outputs`). SIGINT / SIGTERM during the loop finish
    the current step, save a checkpoint, metrics and curves and return with `interrupted_by` set; a
    second signal raises `Interrupted` at once. A failed run removes the output folder if it created
    it and nothing was written."""
    created = _missing_dirs(Path(cfg.output_dir))
    with _StopOnSignal() as stop:
        try:
            return _run_training(cfg, resume=resume, overwrite=overwrite, console=console, live=live,
                                 explicit=explicit, stop=stop)
        except BaseException:
            out = Path(cfg.output_dir).absolute()
            if out in created and _nothing_trained(out) and os.environ.get("RANK", "0") == "0":
                shutil.rmtree(out, ignore_errors=True)  # this run made it and wrote only its config
            _remove_empty_dirs(created)
            raise


def _run_training(cfg: GRPOConfig, *, resume: str | None, overwrite: bool, console: Any, live: bool,
                  explicit: set[str] | None, stop: _StopOnSignal) -> RunResult:
    from rich.console import Console

    from grpo_fast.metrics import MetricsLogger, plot_curves, render_summary
    from grpo_fast.trainer.checkpoint import (
        checkpoint_dir,
        load_trainer_state,
        prepare_output_dir,
        save_checkpoint,
    )
    from grpo_fast.trainer.inputs import check_model, load_task_inputs

    console = console or Console(stderr=True)
    t0 = time.perf_counter()
    distributed = dist_utils.init_from_env()
    rank, _ = dist_utils.rank_and_world()
    if cfg.toy:
        cfg = toy_overrides(cfg, explicit or set())
    # The cheap checks first, before anything is written or loaded: the prompts (fields picked once,
    # here) and the verifier, then whether the model can be found at all.
    inputs = load_task_inputs(toy=cfg.toy, data=cfg.data, verifier=cfg.verifier, offline=cfg.offline,
                              prompt_field=cfg.prompt_field, answer_field=cfg.answer_field, columns=cfg.columns,
                              system_prompt=cfg.system_prompt, prompt_template=cfg.prompt_template,
                              use_chat_template=cfg.use_chat_template)
    cfg = dataclasses.replace(cfg, prompt_field=inputs.data.prompt_field, answer_field=inputs.data.answer_field)
    eval_records = load_eval_records(cfg)  # held-out prompts, read like the training prompts
    if resume is None and not cfg.toy:
        check_model(cfg.model)
    if cfg.sampler == "vllm" and cfg.vllm_mode == "colocate":
        from grpo_fast.sampler.vllm_engine import import_vllm

        import_vllm()  # a missing vLLM is one clear error, before anything is loaded or written
    out_dir = Path(cfg.output_dir)
    # Before the model is loaded: refuse a used --out, delete it (--overwrite), verify the checkpoint.
    resume_path = prepare_output_dir(out_dir, resume=resume, overwrite=overwrite, rank=rank)
    if resume_path is not None:
        cfg = keep_run_precision(cfg, resume_path, explicit or set(), console)
    if rank == 0 and inputs.data.note:  # after the checks: an error stays the only line
        console.print(inputs.data.note, markup=False, highlight=False, soft_wrap=True)

    model, tok = build_model_and_tokenizer(cfg, resume_path)
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    elif is_tiny(model) and not torch.cuda.is_available():
        torch.set_num_threads(1)
    # Seed sampling per rank; model init (toy) used its own seeded generator above.
    torch.manual_seed(cfg.seed + rank)

    records, verifier = inputs.records, inputs.verifier

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed and device == "cuda":
        device = f"cuda:{rank % torch.cuda.device_count()}"
    dist_utils.set_fsdp(cfg.fsdp and distributed)
    # A vLLM engine starts from the weights on disk that the policy was loaded from.
    model_path = str(resume_path) if resume_path is not None else (None if cfg.toy else cfg.model)
    trainer = make_trainer(cfg, model, tok, records, verifier, device=device, model_path=model_path)

    logger = MetricsLogger(out_dir, cfg.report_to if rank == 0 else (), resume=resume_path is not None,
                           config=cfg.to_dict(), kl_max=cfg.gate_kl_max,
                           check_adv_std=cfg.advantage_method in ("grpo", "batch_std"),
                           wandb_offline=cfg.wandb_offline) if rank == 0 else None
    vis = RunVisibility(cfg, trainer, out_dir, console, rank=rank, live=live, eval_records=eval_records,
                        resume=resume_path is not None)
    if resume_path is not None:
        load_trainer_state(trainer, resume_path)
        if logger is not None:
            logger.truncate_to(trainer.step_count)
        vis.truncate_to(trainer.step_count)
    if rank == 0:
        _save_config(cfg, out_dir / "config.json")
        _print_config(console, cfg, resume_path)
        for name in logger.unavailable:
            console.print(f"[yellow]--report-to {name}: package not installed, skipped[/]")
        for note in logger.notes:
            console.print(note, markup=False, highlight=False, soft_wrap=True)

    final_ckpt = None
    try:
        stop.arm()
        _loop(cfg, trainer, logger, console, live and rank == 0, out_dir, stop, vis)
        if cfg.save_final or stop.stopped:
            final_ckpt = save_checkpoint(trainer, checkpoint_dir(out_dir, trainer.step_count))
        acc = None
        # Under FSDP every rank takes part in the policy's forwards; rank 0's result is reported.
        if cfg.eval_prompts and verifier is not None and not stop.stopped and \
                (rank == 0 or dist_utils.is_fsdp(trainer.model)):
            acc = trainer.greedy_accuracy(records[:cfg.eval_prompts])
    finally:
        trainer.close()
        if logger is not None:
            logger.close()
        dist_utils.barrier()
    history = logger.history if logger is not None else []
    result = RunResult(out_dir, history, final_ckpt, acc, dict(logger.warn_counts) if logger else {},
                       time.perf_counter() - t0, interrupted_by=stop.stopped)
    if rank == 0 and history:
        title = f"GRPO {cfg.toy or cfg.model or ''} ({len(history)} steps)"
        _write_curves(plot_curves, history, out_dir / "curves.png", title)
        extra = {"wall time": f"{result.elapsed_s:.1f} s"}
        # Paths go below the table, one per line and never cut (a table outside a terminal is 80 wide).
        paths = {"metrics": str(out_dir / "metrics.jsonl"), "curves": str(out_dir / "curves.png")}
        if vis.completions_written:
            paths["completions"] = str(vis.completions.path)
        if final_ckpt is not None:
            paths["checkpoint"] = str(final_ckpt)
        if vis.best is not None:
            extra[f"best {vis.best['metric']}"] = f"{vis.best['value']:.4g} at step {vis.best['step']}"
            paths["best checkpoint"] = str(vis.best_path)
        if acc is not None:
            extra["greedy accuracy"] = f"{acc:.2%} on {cfg.eval_prompts} prompts"
        for k, n in result.warnings.items():
            extra[f"gate warnings: {k}"] = f"{n} steps"
        render_summary(history, console, title, extra, paths=paths)
    if rank == 0 and stop.stopped:
        console.print(f"[yellow]stopped by {signal.Signals(stop.stopped).name} after step {trainer.step_count}:[/] "
                      f"checkpoint {final_ckpt}, metrics {out_dir / 'metrics.jsonl'}, curves "
                      f"{out_dir / 'curves.png'}; continue with --resume latest", soft_wrap=True)
    return result


def make_trainer(cfg: GRPOConfig, model: Any, tokenizer: Any, records: list[dict[str, Any]], verifier: Any,
                 **kwargs: Any) -> Any:
    """A GRPOTrainer, or under FSDP (after `dist_utils.set_fsdp(True)` in a process group) the
    `FSDPTrainer` that keeps the sharded policy's collectives in step across ranks."""
    from grpo_fast.trainer.distributed import FSDPTrainer
    from grpo_fast.trainer.loop import GRPOTrainer

    cls = FSDPTrainer if dist_utils.fsdp_enabled() and dist_utils.is_distributed() else GRPOTrainer
    return cls(cfg, model, tokenizer, records, verifier, **kwargs)


def _loop(cfg: GRPOConfig, trainer: Any, logger: Any, console: Any, live: bool, out_dir: Path,
          stop: _StopOnSignal | None = None, vis: RunVisibility | None = None) -> None:
    """The steps. `live` (rank 0, not --quiet) shows progress: a rich bar in a terminal, else one
    plain line per logged step. `vis` adds the evaluations, the best checkpoint and the sample
    completions."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from grpo_fast import metrics as M
    from grpo_fast.metrics import format_step_line
    from grpo_fast.trainer.checkpoint import checkpoint_dir, save_checkpoint

    start = trainer.step_count
    terminal = bool(getattr(console, "is_terminal", False))
    progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[info]}"), console=console, disable=not (live and terminal),
                        transient=False)
    warned: set[str] = set()
    with progress:
        task = progress.add_task("train", total=cfg.max_steps, completed=start, info="")
        for _ in range(start, cfg.max_steps):
            m = trainer.step()
            step = trainer.step_count
            stopping = stop is not None and stop.requested()  # a signal came: this is the last step
            evaluated = vis.evaluate(step) if vis is not None and not stopping else {}
            m.update(evaluated)
            if logger is not None and (step % cfg.logging_steps == 0 or step == cfg.max_steps or stopping
                                       or evaluated):
                for w in logger.log(step, m):
                    key = w.split(" ")[0]
                    if key not in warned:  # each kind of warning once on screen; all are in metrics.jsonl
                        warned.add(key)
                        console.print(f"[yellow]step {step}: {w}[/]")
                if live and not terminal:  # nohup, a batch job, CI: a plain line instead of the bar
                    console.print(format_step_line(step, cfg.max_steps, m), markup=False, highlight=False,
                                  soft_wrap=True)
            if vis is not None:
                vis.after_step(step, m, evaluated)
            r = m.get(M.REWARD, float("nan"))
            info = (f"reward {r:.3f}  kl {m.get(M.KL, 0):.4f}  entropy {m.get(M.ENTROPY, 0):.3f}  "
                    f"len {m.get(M.MEAN_LENGTH, 0):.1f}  zero-std {m.get(M.FRAC_REWARD_ZERO_STD, 0):.0%}")
            progress.update(task, advance=1, info=info if not math.isnan(r) else "")
            if stopping:
                break  # run_training saves the checkpoint
            if cfg.save_steps and step % cfg.save_steps == 0 and step < cfg.max_steps:
                save_checkpoint(trainer, checkpoint_dir(out_dir, step))
                dist_utils.barrier()


def load_eval_records(cfg: GRPOConfig) -> list[dict[str, Any]]:
    """The held-out prompts of `cfg.eval_data` (at most `eval_max_prompts`), read and mapped like the
    training prompts (the same prompt and answer fields, columns, template); [] without eval_data."""
    if not cfg.eval_data:
        return []
    from grpo_fast.trainer.inputs import load_task_inputs

    return load_task_inputs(data=cfg.eval_data, need_verifier=False, prompt_field=cfg.prompt_field,
                            answer_field=cfg.answer_field, columns=cfg.columns, system_prompt=cfg.system_prompt,
                            prompt_template=cfg.prompt_template, use_chat_template=cfg.use_chat_template,
                            limit=cfg.eval_max_prompts).records


class RunVisibility:
    """What a run shows besides the step metrics: evaluation on held-out prompts (`eval_data`, every
    `eval_steps` steps and at the end; `eval/...` metrics), the best checkpoint by `save_best_metric`
    (`checkpoint-best`, saved atomically by `save_checkpoint`), and sample completions every
    `log_completions_steps` steps (completions.jsonl, and a table in a terminal)."""

    def __init__(self, cfg: GRPOConfig, trainer: Any, out_dir: Path, console: Any, *, rank: int, live: bool,
                 eval_records: list[dict[str, Any]], resume: bool):
        from grpo_fast.metrics import CompletionLog
        from grpo_fast.trainer.checkpoint import best_checkpoint_dir, read_best

        self.cfg, self.trainer, self.console, self.rank = cfg, trainer, console, rank
        self.show = live and rank == 0 and bool(getattr(console, "is_terminal", False))
        self.live = live and rank == 0
        self.eval_records = eval_records
        self.completions = CompletionLog(out_dir, resume=resume) if rank == 0 else None
        self.completions_written = False
        self.best_path = best_checkpoint_dir(out_dir)
        # A resumed run keeps the best so far: checkpoint-best is replaced only by a better value.
        self.best = read_best(out_dir, cfg.save_best_metric) if cfg.save_best_metric and resume else None

    def truncate_to(self, step: int) -> None:
        if self.completions is not None:
            self.completions.truncate_to(step)

    def evaluate(self, step: int) -> dict[str, float]:
        """The eval metrics at `step` when it is an eval step (every `eval_steps`, and the last), else
        {}. Rank 0 evaluates (under FSDP every rank takes part and rank 0's result counts)."""
        cfg = self.cfg
        if not self.eval_records or not (step == cfg.max_steps or (cfg.eval_steps and step % cfg.eval_steps == 0)):
            return {}
        if self.rank != 0 and not dist_utils.is_fsdp(self.trainer.model):
            return {"_evaluated": 1.0}  # the other DDP ranks only take part in saving checkpoint-best
        out = self.trainer.evaluate(self.eval_records, cfg.eval_num_samples, seed=cfg.seed + step)
        return out if self.rank == 0 else {"_evaluated": 1.0}

    def after_step(self, step: int, m: dict[str, float], evaluated: dict[str, float]) -> None:
        """After the step's metrics were logged: the eval line, checkpoint-best, sample completions."""
        if evaluated and self.live:
            from grpo_fast.metrics import format_eval_line

            self.console.print(format_eval_line(step, evaluated), markup=False, highlight=False, soft_wrap=True)
        if evaluated and self.cfg.save_best_metric:
            self._keep_best(step, m)
        cfg = self.cfg
        batch = getattr(self.trainer, "last_batch", None)
        if self.completions is None or batch is None or not cfg.log_completions_steps or \
                step % cfg.log_completions_steps != 0:
            return
        rows = batch.completion_records(cfg.log_completions_count)
        self.completions.write(rows)
        self.completions_written = self.completions_written or bool(rows)
        if self.show and rows:
            from grpo_fast.metrics import render_completions

            render_completions(self.console, rows, step)

    def _keep_best(self, step: int, m: dict[str, float]) -> None:
        """Save checkpoint-best when the eval metric beat the best so far (rank 0 decides; every rank
        saves, as `save_checkpoint` needs)."""
        from grpo_fast.trainer.checkpoint import save_checkpoint

        name = self.cfg.save_best_metric
        value = m.get(name) if self.rank == 0 else None
        better = value is not None and not math.isnan(value) and (self.best is None or value > self.best["value"])
        if dist_utils.is_distributed():
            better = dist_utils.all_reduce_max(1.0 if better else 0.0) > 0
        if not better:
            return
        best = {"metric": name, "value": float(value) if value is not None else None, "step": step}
        save_checkpoint(self.trainer, self.best_path, extra_state={"best": best})
        if self.rank == 0:
            self.best = best
            if self.live:
                self.console.print(f"new best {name} {value:.4g} at step {step}: {self.best_path}", markup=False,
                                   highlight=False, soft_wrap=True)


def _print_config(console: Any, cfg: GRPOConfig, resume_path: Path | None) -> None:
    defaults = GRPOConfig()
    changed = {k: v for k, v in cfg.to_dict().items() if getattr(defaults, k) != (tuple(v) if isinstance(v, list) else v)}
    # A multi-line value (a prompt template) is shown quoted, so the config stays one line.
    parts = ", ".join(f"{k}={v!r}" if isinstance(v, str) and "\n" in v else f"{k}={v}" for k, v in changed.items())
    console.print(f"[bold]effective config[/] (non-default fields; all in {cfg.output_dir}/config.json): {parts}",
                  soft_wrap=True)  # one line: paths in it are never cut
    if resume_path is not None:
        console.print(f"resuming from {resume_path}")


# ---------------------------------------------------------------------------------------------
# safety helpers: signals, the output folder, atomic writes


class Interrupted(KeyboardInterrupt):
    """A second SIGINT / SIGTERM (or one before the training loop started): the run stops at once."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopOnSignal:
    """SIGINT / SIGTERM handlers for the duration of a run (main thread only; the previous handlers
    come back on exit). Before `arm()` a signal raises `Interrupted` at once; after it, the first
    signal only sets a flag that the loop reads after each step (`requested`), a second one raises."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal this process got
        self.stopped: int | None = None  # the signal all ranks agreed to stop on (set by `requested`)
        self.armed = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._previous.clear()

    def arm(self) -> None:
        self.armed = True

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.armed or self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum
        if os.environ.get("RANK", "0") == "0":
            again = "Ctrl-C" if signum == signal.SIGINT else "the signal"
            os.write(2, f"\n{signal.Signals(signum).name}: finishing the current step, then saving a checkpoint "
                        f"({again} again stops at once)\n".encode())

    def requested(self) -> bool:
        """Whether to stop after this step. Under DDP a collective: every rank calls it every step, and
        all stop together when any of them got a signal."""
        got = float(self.signum or 0)
        if dist_utils.is_distributed():
            got = dist_utils.all_reduce_max(got)
        if got:
            self.stopped = int(got)
        return bool(got)


def _missing_dirs(path: Path) -> list[Path]:
    """The folders that creating `path` would create, deepest first."""
    out = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def _nothing_trained(out_dir: Path) -> bool:
    """No checkpoint and no metrics line in `out_dir`: a run that failed before its first step."""
    if any(out_dir.glob("checkpoint-*")):
        return False
    metrics = out_dir / "metrics.jsonl"
    return not metrics.exists() or not metrics.read_text().strip()


def _remove_empty_dirs(dirs: list[Path]) -> None:
    for d in dirs:  # deepest first
        try:
            d.rmdir()  # only when empty
        except OSError:
            return


def _save_config(cfg: GRPOConfig, path: Path) -> None:
    from grpo_fast.files import replacing

    with replacing(path) as tmp:
        cfg.save(tmp)


def _write_curves(plot: Any, history: list[dict[str, Any]], path: Path, title: str) -> None:
    from grpo_fast.files import replacing

    with replacing(path, suffix=".png") as tmp:
        plot(history, tmp, title=title)
