"""`GRPOConfig`: every knob of the trainer with a documented default, the named presets, and
loading from YAML/TOML with overrides. Field names follow TRL's `GRPOConfig` where they mean the same."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from grpo_fast.errors import ConfigError


@dataclass
class GRPOConfig:
    """Configuration of a GRPO run. Defaults are conservative and close to TRL's `GRPOConfig`
    (see `PRESETS` for the DeepSeek-R1, DAPO and Dr. GRPO recipes)."""

    # --- what to train on -------------------------------------------------------------------
    model: str | None = None
    """Path or Hub id of the policy (a causal LM). Ignored with `toy`, which builds a tiny model."""
    toy: str | None = None
    """Run a built-in toy task (`next_digit`, `digit_sum`, `secret_fn`) with a tiny random-init model and a
    character tokenizer; no download. Overrides `model`, `data` and `verifier`."""
    data: str | None = None
    """Prompts (JSONL, Parquet, or a local HF `datasets` directory); with `offline`, scored groups."""
    prompt_field: str | None = None
    """Field of each record holding the prompt (a string, or a list of chat messages). None = the
    first of `prompt`, `question`, `problem`, `query`, `input` that the first record has (a one-line
    note says which was picked)."""
    answer_field: str | None = None
    """Field of each record holding the gold answer, passed to the verifiers that read one (`math`:
    a number, LaTeX, GSM8K's `... #### 72` or a MATH solution with `\\boxed{}`; the final answer is
    extracted from the text). None = the first of `answer`, `solution`, `gold`, `ground_truth`,
    `target` that the first record has."""
    columns: dict[str, str] = dataclasses.field(default_factory=dict)
    """Rename record fields as they are read, `{source: target}` (`--column problem=prompt`), before
    the prompt and answer fields are looked up."""
    system_prompt: str | None = None
    """A system message put before every prompt (a string prompt becomes the chat messages system +
    user; a system message the record has itself is replaced). Applied before the chat template;
    without one (`use_chat_template` off or a tokenizer without a template) it is joined to the prompt
    with a newline."""
    prompt_template: str | None = None
    """Build each prompt from the record's fields, e.g. `"{question}\\nPut the final answer in
    \\boxed{}."`: `{name}` is replaced by the record's field `name` (`{prompt}` is the prompt field
    whatever its name), `{{` / `}}` are literal braces, other braces stay as written. A record without
    a field the template names is an error naming it. Applied before the system prompt and the chat
    template."""
    offline: bool = False
    """Train on already-scored groups from `data` (records with `responses[].score`) instead of sampling."""
    verifier: str = "math"
    """Verifier name (or `name=weight,name=weight` composition) used to score completions online."""
    use_chat_template: bool = True
    """Format string prompts with the tokenizer's chat template when it has one (chat-message prompts
    always go through it). TRL leaves string prompts as they are; turn this off for the same."""
    output_dir: str = "runs/grpo"
    """Where metrics.jsonl, curves.png, config.json and checkpoints are written."""
    seed: int = 0
    """Seed for model init (toy), prompt order and sampling."""

    # --- batch and sampling -------------------------------------------------------------------
    prompts_per_step: int = 8
    """Prompts (groups) per optimisation step, per process. Completions per step = this * num_generations."""
    num_generations: int = 8
    """Group size G: completions sampled per prompt."""
    generation_chunks: int = 4
    """Split each step's prompts into this many generate calls; each chunk is verified by a worker while
    the next one is generated, so only the last chunk's verification is waited for. 1 = one call, no
    overlap (right when verification is instant, as for the toy tasks)."""
    max_prompt_length: int | None = 512
    """Prompts longer than this many tokens are truncated from the left. None = no limit."""
    max_completion_length: int = 256
    """Most new tokens per completion; also the constant normaliser of `dr_grpo`."""
    temperature: float = 1.0
    """Sampling temperature; log-probs in the loss use logits / temperature, like the sampler."""
    top_p: float = 1.0
    """Nucleus sampling threshold (1.0 = off)."""
    top_k: int = 0
    """Top-k sampling (0 = off)."""

    # --- sampler ------------------------------------------------------------------------------
    sampler: str = "transformers"
    """Who samples the completions: `transformers` (the policy object itself, `model.generate`; any
    device) or `vllm` (a vLLM engine kept in step with the policy after every training step)."""
    vllm_mode: str = "colocate"
    """With `sampler = vllm`: `colocate` runs the engine in the training process on the same
    device(s); `server` talks to a `grpo-fast vllm-serve` process over HTTP (other GPUs or hosts)."""
    vllm_server_url: str = "http://127.0.0.1:8000"
    """Address of `grpo-fast vllm-serve` in server mode (its token, if any, from $GRPO_VLLM_TOKEN)."""
    vllm_server_timeout: float = 600.0
    """Seconds to wait for one server request (a generation batch or a weight upload)."""
    vllm_gpu_memory_utilization: float = 0.3
    """Colocate: the share of GPU memory the engine may take (weights + KV cache); the rest is the trainer's."""
    vllm_enable_sleep_mode: bool = False
    """Colocate on GPU: put the engine to sleep (weights offloaded, KV cache freed) during the update
    and wake it for the next generation, so the optimiser step gets that memory back."""
    vllm_dtype: str = "auto"
    """Colocate: the engine's dtype (`auto` = the checkpoint's; bfloat16, float16, float32)."""
    vllm_max_model_len: int | None = None
    """Colocate: longest prompt + completion the engine plans for (None = the model's limit)."""

    # --- tools (multi-turn rollouts) -----------------------------------------------------------
    tools: tuple[str, ...] = ()
    """Code tools the model may call during a rollout, run in the sandbox daemon: `python` (and
    `cpp`, `c`, `rust`, `java`, `javascript`). Empty with no `tool_functions` = single-turn sampling."""
    tool_functions: tuple[str, ...] = ()
    """User Python functions as tools, `module:function` (or `path/to/file.py:function`); the schema
    comes from the signature and docstring. Called with the `chat` tool format."""
    tool_format: str = "code"
    """How the model calls tools: `code` (a fenced ```python block then ```output, ToRL-style) or
    `chat` (the chat template's tool calls: `<tool_call>{"name", "arguments"}</tool_call>`, results as
    `tool` messages; the prompt is rendered with the tools' schemas)."""
    max_tool_calls: int = 4
    """Most tool calls per rollout; a call beyond it ends the rollout as truncated."""
    max_turns: int = 8
    """Most model turns per rollout; a tool call in the last one ends the rollout as truncated.
    `max_completion_length` bounds all tokens after the prompt, tool tokens included."""
    tool_timeout: float = 5.0
    """Seconds each tool call may run (the sandbox enforces it; a timeout is shown to the model)."""
    tool_max_output_chars: int = 2048
    """Characters of a tool's output shown to the model (longer output keeps its start and end)."""
    tool_session: bool = False
    """Later python cells of a rollout see earlier definitions (the earlier cells are replayed, output
    discarded: cost grows with the square of the cells). Never shared across rollouts."""
    tool_setup_code: str | None = None
    """Python run silently before every cell (imports, helpers the task provides)."""
    tool_sandbox: str | None = None
    """Sandbox daemons for the code tools (`unix:/path.sock,tcp:host:port`); default `$GRPO_SANDBOX`,
    else a local daemon started on demand."""
    tool_waves: int = 2
    """Rollouts of a generation call are split into this many waves: while one wave's tool calls run
    (in one sandbox batch) the next wave generates. 1 = no overlap."""

    # --- advantages and rewards ---------------------------------------------------------------
    advantage_method: str = "grpo"
    """Advantage estimator from the Rust core: `grpo` ((r - mean) / std per group), `dr_grpo`
    (r - mean, no std), `rloo` (leave-one-out baseline), `batch_std` (group mean, batch std)."""
    skip_zero_std_groups: bool = False
    """Drop groups whose rewards are all equal from the update (their advantage is 0 anyway; they
    would still dilute the normaliser and contribute KL). Always counted in `frac_reward_zero_std`."""
    dynamic_sampling: bool = False
    """DAPO dynamic sampling: keep sampling more prompts until the step has `prompts_per_step` groups
    with non-zero reward std (or `max_sampling_rounds` is reached)."""
    max_sampling_rounds: int = 4
    """Upper bound on generation rounds per step under dynamic sampling."""
    mask_truncated_completions: bool = False
    """Exclude completions that hit `max_completion_length` without EOS from the loss (DAPO's overlong filtering)."""

    # --- loss ---------------------------------------------------------------------------------
    loss_type: str = "dapo"
    """Aggregation: `grpo` (per-sequence mean, then batch mean), `dapo`/`bnpo` (token sum / token count),
    `dr_grpo` (token sum / (B * max_completion_length))."""
    epsilon: float = 0.2
    """Lower clip range: ratios below 1 - epsilon are clipped for negative advantages."""
    epsilon_high: float | None = None
    """Upper clip range (1 + epsilon_high); None = same as `epsilon`. DAPO's clip-higher uses 0.28."""
    beta: float = 0.0
    """Weight of the k3 KL penalty to the reference model. 0 = no reference model is loaded at all."""
    importance_sampling_level: str = "token"
    """`token`: one ratio per token (GRPO); `sequence`: one length-normalised ratio per sequence (GSPO)."""
    num_iterations: int = 1
    """Updates per generated batch (PPO epochs, TRL's mu). > 1 stores the behaviour log-probs before
    the first update so later updates are importance-weighted and clipped against them."""
    ref_model_sync_steps: int = 0
    """Copy the policy into the reference model every this many steps (0 = never). Needs beta > 0."""
    entropy_coef: float = 0.0
    """Weight of an entropy bonus (subtracted from the loss); 0 = only monitored."""
    rollout_correction: bool = True
    """Correct for the sampler not being exactly the trainer's policy (vLLM's kernels, precision and
    batching differ; TRL and verl correct this too): each token's policy-gradient term is weighted by
    pi_trainer / pi_sampler of the sampled token, truncated or masked (next fields). Applies when the
    sampler returns log-probs of its own (vLLM); the transformers sampler runs the trainer's own
    model, so there is nothing to correct. The mismatch metrics (`sampling/...`) are logged whenever
    the sampler's log-probs are there, also with the correction off."""
    rollout_correction_level: str = "token"
    """`token`: one ratio per token; `sequence`: one per completion (the product of its token ratios)."""
    rollout_correction_mode: str = "truncate"
    """`truncate`: weight = min(ratio, cap) (truncated importance sampling); `mask`: tokens (or whole
    completions, at sequence level) whose ratio leaves [rollout_correction_min, cap] are dropped from
    the loss and the rest keep their ratio as weight."""
    rollout_correction_cap: float = 2.0
    """Upper bound of the ratio: the truncation point, or the top of the band in mask mode."""
    rollout_correction_min: float | None = None
    """Bottom of the band in mask mode (None = no lower bound)."""

    # --- optimisation -------------------------------------------------------------------------
    learning_rate: float = 1e-6
    """AdamW peak learning rate."""
    lr_scheduler_type: str = "constant"
    """`constant`, `cosine` or `linear` decay after warmup."""
    warmup_steps: int = 0
    """Linear warmup steps from 0 to `learning_rate`."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    adam_beta1: float = 0.9
    """AdamW beta1."""
    adam_beta2: float = 0.999
    """AdamW beta2."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0 = off)."""
    gradient_accumulation_steps: int = 1
    """Split each step's completions into this many micro-batches, one optimiser step per step."""
    max_steps: int = 100
    """Optimisation steps to run."""
    bf16: bool = False
    """bf16 autocast for every forward pass (CPU and GPU): the training forward and the old-policy
    and reference log-probs alike, so step 1's ratio is exactly 1 and its KL exactly 0. Weights and
    optimiser state stay float32 (master weights): AdamW steps of lr 1e-6 on bf16 weights would
    mostly round away."""
    gradient_checkpointing: bool = False
    """Trade compute for memory in the policy's backward pass."""
    micro_batch_size: int | None = None
    """Completions per forward/backward pass; None = the step's completions split into
    `gradient_accumulation_steps` passes. Completions are sorted by length before they are cut into
    micro-batches, and each pass is padded only to its own longest row."""
    logprob_chunk_size: int = 256
    """Completion tokens per slice of the LM head in the log-prob pass: the full-vocabulary logits
    exist for one slice at a time (forward and backward), never for the whole batch."""
    ref_model_offload: bool = False
    """Keep the reference model (beta > 0) in CPU memory and move it to the device only for its
    log-prob pass."""
    fsdp: bool = False
    """Under torchrun / accelerate, shard parameters, gradients and optimiser state across processes
    (FSDP) instead of replicating the model (DDP), for models too large to replicate. CPU/gloo and
    CUDA/nccl. Ignored in a single process. The reference model (beta > 0) stays a full copy per rank."""
    use_lora: bool = False
    """Train LoRA adapters (needs `peft`) instead of all weights."""
    lora_r: int = 16
    """LoRA rank (adapter width)."""
    lora_alpha: int = 32
    """LoRA scaling alpha."""

    # --- run control and logging --------------------------------------------------------------
    logging_steps: int = 1
    """Write a metrics line every this many steps."""
    save_steps: int = 0
    """Save a checkpoint every this many steps (0 = only at the end)."""
    save_final: bool = True
    """Save a checkpoint when the run ends."""
    report_to: tuple[str, ...] = ()
    """Extra loggers besides metrics.jsonl: `tensorboard`, `wandb` (online when a W&B API key is
    configured, else offline with a note; `WANDB_MODE` decides when set; see `wandb_offline`)."""
    num_threads: int | None = None
    """torch intra-op threads. None = 1 for tiny models under 5M parameters (per-op overhead dominates
    and a second thread made the CPU prototype 7-20x slower when the other core was busy), torch's
    default otherwise."""
    verifier_workers: int = 2
    """Worker threads that run verification beside generation."""
    eval_prompts: int = 0
    """After training, greedy-decode this many prompts and report accuracy (0 = skip)."""
    # --- visibility: sample completions, evaluation during training, W&B --------------------
    log_completions_steps: int = 10
    """Every this many steps, write the completions of `log_completions_count` of the step's groups
    to completions.jsonl in the output folder (prompt, completion, score, advantage, extracted answer,
    per-part rewards), and show them as a table in a terminal, like TRL's `log_completions` (0 = off)."""
    log_completions_count: int = 4
    """Groups (prompts, with all their completions) logged each `log_completions_steps` steps."""
    eval_data: str | None = None
    """Held-out prompts (read like `data`) to evaluate on every `eval_steps` steps and at the end:
    greedy `eval/accuracy` (pass@1) and `eval/mean_score`, `eval/pass@k` with `eval_num_samples`."""
    eval_steps: int = 0
    """Evaluate on `eval_data` every this many steps (0 = only at the end of the run)."""
    eval_num_samples: int = 1
    """Completions sampled per eval prompt for `eval/pass@k` (k = this; 1 = greedy only)."""
    eval_max_prompts: int | None = None
    """Evaluate on at most this many prompts of `eval_data` (its first ones; None = all)."""
    save_best_metric: str | None = None
    """Keep the checkpoint with the highest value of this eval metric (e.g. `eval/accuracy`) as
    `checkpoint-best` (never picked by `--resume latest`). Needs `eval_data`."""
    wandb_offline: bool = False
    """With `report_to` wandb: log offline even when an API key is configured (`WANDB_MODE`, when
    set, decides instead)."""
    gate_kl_max: float | None = 0.1
    """Warn when the mean KL to the reference exceeds this (None = no KL gate; the toy tasks turn it
    off because KL to a random-init reference is large by design)."""
    zero_advantages: bool = False
    """Control experiment: force all advantages to 0 (the policy should then not learn)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bad(name: str, msg: str) -> ConfigError:
            return ConfigError(f"{name}: {msg}", field=name)

        if self.loss_type not in ("grpo", "bnpo", "dapo", "dr_grpo"):
            raise bad("loss_type", f"must be grpo, bnpo, dapo or dr_grpo, got {self.loss_type!r}")
        if self.importance_sampling_level not in ("token", "sequence"):
            raise bad("importance_sampling_level", "must be token or sequence")
        if self.advantage_method not in ("grpo", "dr_grpo", "rloo", "batch_std"):
            raise bad("advantage_method", "must be grpo, dr_grpo, rloo or batch_std")
        if self.lr_scheduler_type not in ("constant", "cosine", "linear"):
            raise bad("lr_scheduler_type", "must be constant, cosine or linear")
        if self.num_generations < 2:
            raise bad("num_generations", "a group needs at least 2 completions for a relative advantage")
        for name in ("prompts_per_step", "max_completion_length", "num_iterations", "gradient_accumulation_steps",
                     "max_sampling_rounds", "verifier_workers"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if self.max_steps < 0:
            raise bad("max_steps", "must be >= 0")
        if self.epsilon < 0 or (self.epsilon_high is not None and self.epsilon_high < 0):
            raise bad("epsilon", "clip ranges must be >= 0")
        if self.beta < 0:
            raise bad("beta", "must be >= 0")
        if self.temperature <= 0:
            raise bad("temperature", "must be > 0")
        if self.ref_model_sync_steps and self.beta == 0:
            raise bad("ref_model_sync_steps", "refreshing a reference model needs beta > 0 (no reference model is kept)")
        if self.fsdp:
            for name, on in (("num_iterations", self.num_iterations > 1), ("ref_model_sync_steps", self.ref_model_sync_steps),
                             ("use_lora", self.use_lora), ("gradient_checkpointing", self.gradient_checkpointing)):
                if on:
                    raise bad(name, "not supported together with fsdp yet")
        if self.learning_rate < 0:
            raise bad("learning_rate", "must be >= 0")
        for r in self.report_to:
            if r not in ("tensorboard", "wandb"):
                raise bad("report_to", f"unknown logger {r!r}; use tensorboard or wandb")
        if self.generation_chunks < 1:
            raise bad("generation_chunks", "must be >= 1")
        if self.sampler not in ("transformers", "vllm"):
            raise bad("sampler", f"must be transformers or vllm, got {self.sampler!r}")
        if self.vllm_mode not in ("colocate", "server"):
            raise bad("vllm_mode", f"must be colocate or server, got {self.vllm_mode!r}")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise bad("vllm_gpu_memory_utilization", "must be in (0, 1]")
        if self.sampler == "vllm" and self.fsdp:
            raise bad("sampler", "the vLLM sampler is not supported together with fsdp yet")
        if self.rollout_correction_level not in ("token", "sequence"):
            raise bad("rollout_correction_level", "must be token or sequence")
        if self.rollout_correction_mode not in ("truncate", "mask"):
            raise bad("rollout_correction_mode", "must be truncate or mask")
        if not self.rollout_correction_cap > 0:
            raise bad("rollout_correction_cap", "must be > 0")
        if self.rollout_correction_min is not None and not 0 <= self.rollout_correction_min <= self.rollout_correction_cap:
            raise bad("rollout_correction_min", "must lie in [0, rollout_correction_cap]")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise bad("micro_batch_size", "must be >= 1 (or null)")
        if self.logprob_chunk_size < 1:
            raise bad("logprob_chunk_size", "must be >= 1")
        for name in ("log_completions_steps", "log_completions_count", "eval_steps"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.eval_num_samples < 1:
            raise bad("eval_num_samples", "must be >= 1")
        if self.eval_max_prompts is not None and self.eval_max_prompts < 1:
            raise bad("eval_max_prompts", "must be >= 1 (or null for all)")
        if self.save_best_metric is not None:
            if not self.eval_data:
                raise bad("save_best_metric", "needs eval_data (the best checkpoint is chosen by an eval metric)")
            if not self.save_best_metric.startswith("eval/"):
                raise bad("save_best_metric", f"must be an eval metric (eval/accuracy, eval/mean_score, "
                                              f"eval/pass@k), got {self.save_best_metric!r}")
            if self.save_best_metric.startswith("eval/pass@") and \
                    self.save_best_metric != f"eval/pass@{self.eval_num_samples}":
                raise bad("save_best_metric", f"{self.save_best_metric} is not logged: eval_num_samples = "
                                              f"{self.eval_num_samples} gives eval/pass@{self.eval_num_samples}")
        if self.tool_format not in ("code", "chat"):
            raise bad("tool_format", f"must be code or chat, got {self.tool_format!r}")
        if self.tool_functions and self.tool_format != "chat":
            raise bad("tool_functions", "function tools are called in the chat format: set tool_format = chat")
        for name in ("max_turns", "tool_max_output_chars", "tool_waves"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if self.max_tool_calls < 0:
            raise bad("max_tool_calls", "must be >= 0")
        if not self.tool_timeout > 0:
            raise bad("tool_timeout", "must be > 0 seconds")
        for name in ("prompt_field", "answer_field", "prompt_template"):
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                raise bad(name, "must not be empty (leave it unset for the default)")

    # --- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["report_to"] = list(self.report_to)
        d["tools"] = list(self.tools)
        d["tool_functions"] = list(self.tool_functions)
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Field name -> its docstring (read from the source, so help and docs never drift)."""
        return _field_docs()

    @classmethod
    def from_preset(cls, name: str | None = None, **overrides: Any) -> GRPOConfig:
        values: dict[str, Any] = {}
        if name:
            if name not in PRESETS:
                raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}", field="preset")
            values.update(PRESETS[name])
        values.update(overrides)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GRPOConfig:
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for k, v in values.items():
            key = k.replace("-", "_")
            if key not in known:
                raise ConfigError(f"unknown config field {k!r}", field=k)
            kwargs[key] = _coerce(key, known[key].type, v)
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path, preset: str | None = None, **overrides: Any) -> GRPOConfig:
        """Read a YAML or TOML file (keys are field names; an optional `preset` key picks a base);
        `preset` and `overrides` given here win over the file."""
        values = load_config_file(path)
        file_preset = values.pop("preset", None)
        values.update(overrides)
        return cls.from_preset(preset or file_preset, **values)


# Each preset lists only what it changes from the defaults.
PRESETS: dict[str, dict[str, Any]] = {
    # DeepSeek-R1 (Nature, 2025), first RL stage: a very wide clip (epsilon=10), small KL, G=16,
    # 32 prompts per step, reference refreshed every 400 steps.
    "deepseek-r1": dict(epsilon=10.0, beta=0.001, num_generations=16, temperature=1.0, learning_rate=3e-6,
                        prompts_per_step=32, ref_model_sync_steps=400, loss_type="grpo", advantage_method="grpo"),
    # DAPO: clip-higher 0.2/0.28, no KL, token-level loss, dynamic sampling, overlong filtering.
    "dapo": dict(epsilon=0.2, epsilon_high=0.28, beta=0.0, loss_type="dapo", dynamic_sampling=True,
                 skip_zero_std_groups=True, mask_truncated_completions=True, advantage_method="grpo"),
    # Dr. GRPO: advantages not divided by the group std, constant normaliser instead of length.
    "dr-grpo": dict(advantage_method="dr_grpo", loss_type="dr_grpo", beta=0.0),
    # The conservative default (TRL-like) under an explicit name.
    "default": {},
}


def resolve_config(file_values: Mapping[str, Any] | str | Path | None = None, *, preset: str | None = None,
                   overrides: Mapping[str, Any] | None = None,
                   explicit: Iterable[str] = ()) -> tuple[GRPOConfig, set[str]]:
    """The final config of a run and the fields the user chose: the one resolver behind `grpo-fast
    train`, its `--print-config` and the Python API.

    Later sources win: the preset (`preset`, else the file's `preset` key), the file's values
    (`file_values`: a mapping, or the path of a YAML / TOML file), then `overrides` (command-line
    flags, `--set`). The chosen fields are the file's, the overrides', the preset's and `explicit`;
    a toy task's own settings (`toy_defaults`) fill every other field. `run_training(cfg,
    explicit=...)` takes both (a resume keeps the checkpoint's precision unless it was chosen).

        cfg, explicit = resolve_config("train.toml", overrides={"max_steps": 20})
    """
    if isinstance(file_values, (str, Path)):
        file_values = load_config_file(file_values)
    values = dict(file_values or {})
    file_preset = values.pop("preset", None)
    values.update({k.replace("-", "_"): v for k, v in (overrides or {}).items()})
    chosen = {k.replace("-", "_") for k in values} | set(explicit)
    name = preset or file_preset
    cfg = GRPOConfig.from_preset(name, **values)
    if name:
        chosen |= set(PRESETS[name])
    if cfg.toy:
        cfg = toy_defaults(cfg, chosen)
    return cfg, chosen


def toy_defaults(cfg: GRPOConfig, explicit: Iterable[str]) -> GRPOConfig:
    """Settings a toy task needs unless the user chose them (`explicit`): its verifier and answer
    length, no chat template, and the learning rate / batch the CPU prototype learned with. Applying
    it twice changes nothing."""
    from grpo_fast.trainer.toy_tasks import get_toy_task

    task = get_toy_task(cfg.toy)  # type: ignore[arg-type]
    explicit = set(explicit)
    d = cfg.to_dict()
    defaults = dict(verifier=task.verifier, max_completion_length=task.max_completion_length,
                    use_chat_template=False, learning_rate=2e-3, prompts_per_step=32, num_generations=8,
                    max_steps=150, eval_prompts=len(task.records), gate_kl_max=None, generation_chunks=1)
    defaults.update(task.train_defaults)
    for k, v in defaults.items():
        if k not in explicit:
            d[k] = v
    return GRPOConfig.from_dict(d)


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}", file=str(p))
    text = p.read_text()
    try:
        if p.suffix in (".toml", ".tml"):
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            values = tomllib.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text) or {}
    except Exception as exc:  # parse errors of either format
        raise ConfigError(f"cannot parse {p}: {exc}", file=str(p)) from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{p}: the top level must be a table/mapping of config fields", file=str(p))
    # Allow the fields under a [grpo] / grpo: section as well as at the top level.
    if "grpo" in values and isinstance(values["grpo"], dict):
        values = {**{k: v for k, v in values.items() if k != "grpo"}, **values["grpo"]}
    return values


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is parsed as YAML (numbers, bools, null, lists)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value", field=text)
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except Exception:
        value = raw
    return key.strip().replace("-", "_"), value


def parse_mapping(name: str, v: Any) -> dict[str, str]:
    """`{a: b}`, `["a=b", "c=d"]` or `"a=b,c=d"` -> {"a": "b", "c": "d"} (the `columns` field)."""
    if isinstance(v, str):
        v = [x for x in v.split(",") if x.strip()]
    if isinstance(v, (list, tuple)):
        out = {}
        for item in v:
            src, sep, dst = str(item).partition("=")
            if not sep or not src.strip() or not dst.strip():
                raise ConfigError(f"{name}: {item!r} is not SOURCE=TARGET", field=name)
            out[src.strip()] = dst.strip()
        return out
    if isinstance(v, dict):
        return {str(k): str(x) for k, x in v.items()}
    raise ConfigError(f"{name}: {v!r} is not a mapping of field names", field=name)


def _coerce(name: str, tp: Any, v: Any) -> Any:
    """Check and convert a value read from a file or the command line to the field's type."""
    t = str(tp)
    # TOML has no null: "none" / "null" stand for None in optional fields.
    if isinstance(v, str) and "None" in t and v.strip().lower() in ("none", "null"):
        v = None
    if v is None:
        if "None" in t:
            return None
        raise ConfigError(f"{name}: may not be null", field=name)
    try:
        if t.startswith("dict"):
            return parse_mapping(name, v)
        if t.startswith("tuple"):
            if isinstance(v, str):
                v = [s for s in v.split(",") if s]
            return tuple(str(x) for x in v)
        if t.startswith("bool"):
            if isinstance(v, str):
                if v.lower() in ("1", "true", "yes", "on"):
                    return True
                if v.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(v)
            if not isinstance(v, bool):
                raise ValueError(v)
            return v
        if t.startswith("int"):
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise ValueError(v)
            return int(v)
        if t.startswith("float"):
            if isinstance(v, bool):
                raise ValueError(v)
            return float(v)
        if t.startswith("str"):
            return str(v)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {v!r} is not a valid {t}", field=name) from exc
    return v


def _field_docs() -> dict[str, str]:
    import ast
    import inspect
    import itertools

    src = inspect.getsource(GRPOConfig)
    tree = ast.parse(src)
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs

