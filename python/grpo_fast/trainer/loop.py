"""The GRPO step: sample a group per prompt (any `Sampler`) -> verify (overlapped with generation) ->
group-relative advantages (Rust core) -> clipped policy update with the sampler-mismatch correction
-> weights back to the sampler. The offline step (already-scored groups) runs through the same
update, and the trainer holds the state a checkpoint needs to resume bit-for-bit."""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from grpo_fast import metrics as M
from grpo_fast.errors import ConfigError, DataError
from grpo_fast.evaluation import pass_at_k
from grpo_fast.rollout import Rollout, rollout_metrics
from grpo_fast.sampler.base import Completion, CompletionGroup, Sampler
from grpo_fast.trainer import collectives as dist_utils
from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.logprobs import sequence_logprobs
from grpo_fast.trainer.loss import grpo_loss, rollout_correction
from grpo_fast.trainer.prompt_data import ANSWER_FIELDS, PromptFormat
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem


class PromptStream:
    """Endless, reproducible prompt order: a fresh permutation of the records per epoch, derived from
    (seed, epoch), so the position alone is the resumable state. Under DDP, rank r takes every
    world-th prompt of the same order."""

    def __init__(self, records: Sequence[dict[str, Any]], seed: int, rank: int = 0, world: int = 1):
        if not records:
            raise ConfigError("no prompts to train on", field="data")
        self.records = list(records)
        self.seed, self.rank, self.world = seed, rank, world
        self.position = 0  # index into the global (all-rank) stream

    def _at(self, i: int) -> dict[str, Any]:
        epoch, j = divmod(i, len(self.records))
        order = list(range(len(self.records)))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return self.records[order[j]]

    def take(self, k: int) -> list[dict[str, Any]]:
        out = [self._at(self.position + i * self.world + self.rank) for i in range(k)]
        self.position += k * self.world
        return out


@dataclass
class ScoredGroup:
    """A group after verification: its completions, one score per completion (NaN = no verdict)."""

    group: CompletionGroup
    scores: list[float]
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def std(self) -> float:
        s = [x for x in self.scores if not math.isnan(x)]
        return float(np.std(s)) if len(s) > 1 else 0.0


@dataclass
class LastBatch:
    """The groups a step trained on and their advantages (flat, in completion order), kept by
    reference until the next step (no copies): what `completions.jsonl` is written from."""

    step: int
    groups: list[ScoredGroup]
    advantages: np.ndarray

    def completion_records(self, max_groups: int) -> list[dict[str, Any]]:
        """One JSON-ready dict per completion of the first `max_groups` groups: step, group, prompt,
        completion, score, advantage, correct, reason, extracted, rewards (per part), finish_reason,
        num_tokens."""
        rows: list[dict[str, Any]] = []
        k = 0
        for gi, g in enumerate(self.groups):
            n = len(g.scores)
            if gi >= max_groups:
                break
            verdicts = g.verdicts or [None] * n
            for j, (c, s, v) in enumerate(zip(g.group.completions, g.scores, verdicts, strict=True)):
                comps = getattr(v, "components", None)
                rows.append({
                    "step": self.step, "group": gi, "prompt": g.group.prompt, "completion": c.text,
                    "score": None if math.isnan(s) else s,
                    "advantage": float(self.advantages[k + j]) if k + j < len(self.advantages) else None,
                    "correct": getattr(v, "correct", None), "reason": getattr(v, "reason", None),
                    "extracted": getattr(v, "extracted", None),
                    "rewards": {name: cv.score for name, cv in comps.items()} if comps else None,
                    "finish_reason": c.finish_reason, "num_tokens": len(c.token_ids),
                    **({"turns": c.transcript(), "stop_reason": c.stop_reason} if isinstance(c, Rollout) else {}),
                })
            k += n
        return rows


Row = tuple[list[int], list[int], float, bool, "list[float] | None"]
"""(prompt_ids, completion_ids, advantage, counts_in_loss, sampler_logprobs or None)."""


@dataclass
class Batch:
    """Padded tensors for a list of rows (see `Row`). `sampler_logps` is NaN where the sampler gave
    no log-prob (and on padding)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    advantages: torch.Tensor
    n_completion: int
    sampler_logps: torch.Tensor | None = None

    def slice(self, idx: slice) -> Batch:
        s = self.sampler_logps[idx] if self.sampler_logps is not None else None
        return Batch(self.input_ids[idx], self.attention_mask[idx], self.completion_mask[idx],
                     self.advantages[idx], self.n_completion, s)


def build_batch(rows: Sequence[tuple], pad_id: int, device: Any = "cpu") -> Batch:
    """rows: (prompt_ids, completion_ids, advantage, counts_in_loss[, sampler_logprobs]). Prompts are
    left-padded to a common width, completions right-padded; the completion mask is 0 on padding and
    on rows that don't count. `counts_in_loss` is a bool for the whole row, or one 0/1 per completion
    token (a multi-turn rollout: its tool tokens are context, 0)."""
    P = max(len(r[0]) for r in rows)
    C = max(1, max(len(r[1]) for r in rows))
    ids, att, cm, adv, slp = [], [], [], [], []
    nan = float("nan")
    for r in rows:
        p, c, a, counts = r[:4]
        lps = r[4] if len(r) > 4 else None
        ids.append([pad_id] * (P - len(p)) + p + c + [pad_id] * (C - len(c)))
        att.append([0] * (P - len(p)) + [1] * (len(p) + len(c)) + [0] * (C - len(c)))
        cm.append(token_mask(counts, len(c)) + [0] * (C - len(c)))
        adv.append(a)
        slp.append((list(lps) if lps is not None else [nan] * len(c)) + [nan] * (C - len(c)))
    t = lambda x, dt: torch.tensor(x, dtype=dt, device=device)  # noqa: E731
    has_sampler = any(len(r) > 4 and r[4] is not None for r in rows)
    return Batch(t(ids, torch.long), t(att, torch.long), t(cm, torch.float32), t(adv, torch.float32), C,
                 t(slp, torch.float32) if has_sampler else None)


def token_mask(counts: bool | Sequence[int], n: int) -> list[int]:
    """A row's loss mask: all 1 or all 0 for a bool, else the given per-token mask (checked for length)."""
    if isinstance(counts, bool):
        return [1 if counts else 0] * n
    if len(counts) != n:
        raise ValueError(f"a loss mask of {len(counts)} tokens for a completion of {n}")
    return [1 if x else 0 for x in counts]


def micro_batches(rows: Sequence[tuple], pad_id: int, device: Any, *, size: int | None = None,
                  parts: int = 1) -> list[Batch]:
    """Rows sorted by length and cut into micro-batches of `size` rows (or into `parts` equal parts),
    each padded only to its own longest prompt and completion. The loss is normalised over the whole
    step, so the order of rows does not change the update, only how much padding is computed."""
    if not rows:
        return []
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i][0]) + len(rows[i][1]), i))
    n = size if size else math.ceil(len(rows) / max(1, parts))
    return [build_batch([rows[i] for i in order[j:j + n]], pad_id, device) for j in range(0, len(order), n)]


def lr_lambda(cfg: GRPOConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_scheduler_type == "constant":
            return 1.0
        total = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / total)
        if cfg.lr_scheduler_type == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return f


def compute_group_advantages(scores: np.ndarray, offsets: np.ndarray, method: str) -> np.ndarray:
    """Group-relative advantages from the Rust estimators (`grpo_fast.advantages`)."""
    from grpo_fast.advantages import compute_advantages

    return np.asarray(compute_advantages(scores, offsets, method=method), dtype=np.float64)


class GRPOTrainer:
    """Runs GRPO steps on `model`. `records` are prompt records ({prompt_field: ..., plus whatever the
    verifier reads}); `verifier` scores completions. One `step()` = one generation batch and
    `num_iterations` optimiser steps on it."""

    def __init__(self, cfg: GRPOConfig, model: Any, tokenizer: Any, records: Sequence[dict[str, Any]],
                 verifier: Verifier | None, sampler: Sampler | None = None, device: Any = "cpu",
                 model_path: str | None = None):
        """`records`: prompt records, or with `cfg.offline` scored groups (`responses[].score`).
        `sampler`: None builds `cfg.sampler`; a vLLM engine starts from `model_path` (None: the policy
        is saved to a temporary folder for it). `model` must hold float32 weights when `cfg.bf16`
        (the master weights); autocast does the bf16 compute."""
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.rank, self.world = dist_utils.rank_and_world()
        self.model = model.to(self.device)
        self.model.train()
        if cfg.gradient_checkpointing:
            # transformers >= 5 renamed it; older versions only have the first name.
            enable = getattr(self.model, "activation_checkpointing_enable", None) or \
                self.model.gradient_checkpointing_enable
            enable()
        if cfg.use_lora:
            self.model = _apply_lora(self.model, cfg)
        # The reference model exists only when the KL term is on (beta = 0 loads nothing).
        self.ref_model = None
        if cfg.beta != 0.0:
            self.ref_model = copy.deepcopy(self.model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
            if cfg.ref_model_offload:
                self.ref_model.to("cpu")
        self.ddp_model = dist_utils.wrap_ddp(self.model) if self.world > 1 else self.model
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if sampler is None:
            sampler = sampler_from_config(cfg, self.model, tokenizer, model_path)
        self.sampler = sampler
        # A sampler with weights of its own holds the weights of this step count (its start weights
        # are the policy's at step 0 only if it was started from them; see `sync_sampler`).
        self._sampler_step: int | None = 0 if (model_path is not None or sampler.shares_policy) else None
        self.verifier = verifier
        # Records -> the prompts the sampler gets (field, template, system prompt); see prompt_data.
        self.prompt_format = PromptFormat.from_config(cfg)
        self._gold_checked = False  # the first online batch is checked for missing gold answers
        self.offline_data: list[ScoredGroup] | None = None
        self.prompts: PromptStream | None = None
        if cfg.offline:
            self.offline_data = self.offline_groups(records)
        elif records:
            self.prompts = PromptStream(records, cfg.seed, self.rank, self.world)
        self.step_count = 0
        # The last step's groups and advantages (see `LastBatch`); None before the first step.
        self.last_batch: LastBatch | None = None
        self._pool: ThreadPoolExecutor | None = None

    def offline_groups(self, records: Sequence[dict[str, Any]]) -> list[ScoredGroup]:
        """Scored records -> ScoredGroups with tokenized completions (EOS appended to a completion
        that fits; a longer one is cut and counts as truncated)."""
        cfg, tok = self.cfg, self.tokenizer
        texts, ids = self.sampler.encode_prompts([self.prompt_format.build(r) for r in records])
        out = []
        for r, text, pid in zip(records, texts, ids, strict=True):
            comps, scores, verdicts = [], [], []
            for j, x in enumerate(r["responses"]):
                if x.get("turns") is not None:
                    comps.append(self._offline_rollout(x, line=len(out) + 1, field=f"responses[{j}]"))
                else:
                    full = tok(x["text"], add_special_tokens=False)["input_ids"]
                    truncated = len(full) > cfg.max_completion_length
                    toks = full[:cfg.max_completion_length] if truncated else [*full, tok.eos_token_id]
                    comps.append(Completion(x["text"], toks, None, "length" if truncated else "stop"))
                s = x.get("score")
                scores.append(float("nan") if s is None else float(s))
                verdicts.append(Verdict(s, x.get("correct"), x.get("reason") or "offline", x.get("extracted"),
                                        components=_file_components(x.get("components"))))
            out.append(ScoredGroup(CompletionGroup(self.prompt_format.build(r), text, pid, comps, r), scores, verdicts))
        return out

    def _offline_rollout(self, response: dict[str, Any], *, line: int, field: str) -> Rollout:
        """A scored response with `turns` (as `generate --tools` writes them) as the multi-turn rollout
        it was: model and tool segments, tool tokens masked from the loss, as online."""
        try:
            return Rollout.from_turns(response["turns"], self.tokenizer,
                                      end_of_turn_token=self.cfg.tool_format == "chat",
                                      stop_reason=response.get("stop_reason") or "answer",
                                      max_tokens=self.cfg.max_completion_length)
        except DataError as exc:
            raise DataError(exc.message, file=self.cfg.data, line=line,
                            field=f"{field}.{exc.field}" if exc.field else field) from None

    # ---------------------------------------------------------------------------------- sampling
    def _pool_get(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.cfg.verifier_workers, thread_name_prefix="grpo-verify")
        return self._pool

    def _verify(self, groups: list[CompletionGroup]) -> list[ScoredGroup]:
        items = [VerifyItem(g.prompt_text if isinstance(g.prompt, list) else g.prompt, c.text, g.record)
                 for g in groups for c in g.completions]
        verdicts = self.verifier.verify_batch(items) if items else []
        if len(verdicts) != len(items):
            raise RuntimeError(f"verifier returned {len(verdicts)} verdicts for {len(items)} items")
        out, k = [], 0
        for g in groups:
            n = len(g.completions)
            vs = verdicts[k:k + n]
            k += n
            scores = [float("nan") if v.score is None else float(v.score) for v in vs]
            out.append(ScoredGroup(g, scores, vs))
        return out

    def sample_and_verify(self, records: list[dict[str, Any]], timings: dict[str, float]) -> list[ScoredGroup]:
        """Generate in `generation_chunks` calls; each chunk is handed to a verifier worker
        as soon as it exists, so chunk k is scored while chunk k+1 is generated. Time spent waiting for
        verdicts after the last chunk is `reward_wait_s`."""
        cfg = self.cfg
        chunk = max(1, math.ceil(len(records) / cfg.generation_chunks))
        futures: list[Future] = []
        pool = self._pool_get()
        t0 = time.perf_counter()
        for i in range(0, len(records), chunk):
            recs = records[i:i + chunk]
            prompts = [self.prompt_format.build(r) for r in recs]
            # An engine with its own RNG gets a seed drawn from ours, so a run (and its resume) samples
            # the same completions; the shared-model sampler draws from our RNG directly.
            seed = None if self.sampler.shares_policy else int(torch.randint(0, 2**31 - 1, (1,)))
            groups = self.sampler.generate(prompts, cfg.num_generations, records=recs, seed=seed)
            futures.append(pool.submit(self._verify, groups))
        t1 = time.perf_counter()
        scored = [sg for f in futures for sg in f.result()]
        t2 = time.perf_counter()
        timings[M.GENERATION_S] = timings.get(M.GENERATION_S, 0.0) + (t1 - t0)
        timings[M.REWARD_WAIT_S] = timings.get(M.REWARD_WAIT_S, 0.0) + (t2 - t1)
        return scored

    def collect(self, timings: dict[str, float]) -> tuple[list[ScoredGroup], list[ScoredGroup], int]:
        """One step's groups: (groups to train on, all groups sampled, generation rounds). With dynamic
        sampling, keep drawing prompts until `prompts_per_step` groups have non-zero reward std (or the
        round limit is hit)."""
        cfg = self.cfg
        all_groups: list[ScoredGroup] = []
        rounds = 0
        if not cfg.dynamic_sampling:
            all_groups = self.sample_and_verify(self.prompts.take(cfg.prompts_per_step), timings)
            rounds = 1
            kept = all_groups
        else:
            kept = []
            while rounds < cfg.max_sampling_rounds and len(kept) < cfg.prompts_per_step:
                got = self.sample_and_verify(self.prompts.take(cfg.prompts_per_step), timings)
                rounds += 1
                all_groups.extend(got)
                kept.extend(g for g in got if g.std > 0)
            kept = kept[:cfg.prompts_per_step]
        return kept, all_groups, rounds

    # ---------------------------------------------------------------------------------- update
    def step(self) -> dict[str, float]:
        """Run one step (online: sample, verify, update; offline: the next scored groups); returns
        its metrics. A sampler with weights of its own gets the updated weights at the end."""
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        if self.offline_data is not None:
            k = self.cfg.prompts_per_step
            i = (self.step_count * k) % max(1, len(self.offline_data))
            kept = (self.offline_data[i:] + self.offline_data[:i])[:k]
            all_groups, rounds = kept, 0
        else:
            if self.verifier is None or self.prompts is None:
                raise ConfigError("online training needs prompts and a verifier", field="verifier")
            self.sync_sampler(timings)
            kept, all_groups, rounds = self.collect(timings)
            timings.update(rollout_metrics([c for g in all_groups for c in g.group.completions],
                                           self.sampler.take_stats()))
            if not self._gold_checked:
                self._gold_checked = True
                self.check_gold(all_groups)
            self.sampler.sleep()  # a colocated engine gives its memory back for the update
        metrics = self.train_on_groups(kept, all_groups=all_groups)
        if self.offline_data is None:
            self.sync_sampler(timings)
            metrics[M.SAMPLING_ROUNDS] = float(rounds)
        metrics.update(timings)
        metrics[M.STEP_TIME_S] = time.perf_counter() - t_start
        n_tok = metrics.get(M.NUM_TOKENS, 0.0)
        metrics[M.TOKENS_PER_S] = n_tok / max(metrics[M.STEP_TIME_S], 1e-9)
        return metrics

    def check_gold(self, groups: list[ScoredGroup]) -> None:
        """Stop (a DataError) when not one completion of `groups` got a verdict and most were
        `no_gold`: the records lack the field the verifier reads its gold answer from, and training
        on them would learn nothing. Run on the first online batch."""
        verdicts = [v for g in groups for v in g.verdicts]
        if not verdicts or any(v.score is not None for v in verdicts):
            return
        if sum(v.reason == "no_gold" for v in verdicts) * 2 < len(verdicts):
            return
        field = _gold_field(self.verifier) or self.cfg.answer_field or "answer"
        record = groups[0].group.record if groups else {}
        have = [f for f in record if f != field]
        hint = next((f for f in ANSWER_FIELDS if f in record and f != field), None)
        raise DataError(
            f"none of the {len(verdicts)} completions of the first batch could be verified: the records have no "
            f"gold answer in {field!r} (the field the verifier reads; they have: {', '.join(have) or 'none'}); "
            + (f"use --answer-field {hint}" if hint else "name the gold field with --answer-field")
            + " or map it with --column SOURCE=answer", field=field)

    def sync_sampler(self, timings: dict[str, float] | None = None) -> None:
        """Give the sampler the policy's current weights unless it already has them (the transformers
        sampler always has: it runs the policy itself)."""
        if self.sampler.shares_policy or self._sampler_step == self.step_count:
            return
        t = time.perf_counter()
        self.sampler.update_weights(self.model)
        self._sampler_step = self.step_count
        if timings is not None:
            timings[M.WEIGHT_SYNC_S] = timings.get(M.WEIGHT_SYNC_S, 0.0) + time.perf_counter() - t

    def train_on_groups(self, groups: list[ScoredGroup], all_groups: list[ScoredGroup] | None = None) -> dict[str, float]:
        """Advantages for `groups` and `num_iterations` optimiser steps on them. `all_groups` (default:
        `groups`) are what the reward statistics are reported over (dynamic sampling drops some)."""
        cfg = self.cfg
        all_groups = groups if all_groups is None else all_groups
        t_up = time.perf_counter()

        scores = np.array([s for g in groups for s in g.scores], dtype=np.float64)
        offsets = np.zeros(len(groups) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(g.scores) for g in groups])
        if len(scores):
            adv = compute_group_advantages(scores, offsets, cfg.advantage_method)
        else:
            adv = np.zeros(0)
        if cfg.zero_advantages:
            adv = np.zeros_like(adv)

        rows = []
        k = 0
        for g in groups:
            skip_group = cfg.skip_zero_std_groups and g.std == 0.0
            for c, s in zip(g.group.completions, g.scores, strict=True):
                k += 1
                # No verdict: left out entirely (not even a zero row in a per-sequence mean), as if the
                # completion had not been sampled. Skipped zero-std groups likewise.
                if math.isnan(s) or skip_group:
                    continue
                # Truncated completions (DAPO overlong filtering) stay as masked rows, like TRL's.
                counts = not (cfg.mask_truncated_completions and c.finish_reason == "length")
                # A multi-turn rollout trains on its model tokens only: tool output is context.
                mask = c.loss_mask if counts and isinstance(c, Rollout) else counts
                rows.append((g.group.prompt_ids, c.token_ids, float(adv[k - 1]), mask,
                             None if self.sampler.shares_policy else c.logprobs))

        metrics = self._reward_metrics(all_groups, adv)
        stats = self._update(rows)
        metrics.update(stats)
        metrics[M.UPDATE_S] = time.perf_counter() - t_up
        self.step_count += 1
        self.last_batch = LastBatch(self.step_count, groups, adv)
        if cfg.ref_model_sync_steps and self.ref_model is not None and self.step_count % cfg.ref_model_sync_steps == 0:
            self.ref_model.load_state_dict(self.model.state_dict())
        return metrics

    def _logps(self, model: Any, mb: Batch, *, with_entropy: bool = False,
               entropy_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The completion tokens' log-probs under `model`, under the run's autocast: the training
        forward, the old-policy and the reference passes all go through here, so their numerics match."""
        with _autocast(self.cfg, self.device):
            return sequence_logprobs(model, mb.input_ids, mb.attention_mask, mb.n_completion, self.cfg.temperature,
                                     with_entropy=with_entropy, entropy_grad=entropy_grad,
                                     chunk_tokens=self.cfg.logprob_chunk_size)

    @torch.no_grad()
    def _reference_logps(self, batches: list[Batch]) -> list[torch.Tensor | None]:
        if self.ref_model is None:
            return [None] * len(batches)
        offload = self.cfg.ref_model_offload and self.device.type != "cpu"
        if offload:
            self.ref_model.to(self.device)
        try:
            return [self._logps(self.ref_model, mb)[0] for mb in batches]
        finally:
            if offload:
                self.ref_model.to("cpu")

    def _update(self, rows: list[Row]) -> dict[str, float]:
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        # Global normalisers (all micro-batches, all ranks) so accumulation and DDP match one big batch.
        local_tokens = float(sum(sum(token_mask(r[3], len(r[1]))) for r in rows))
        local_seqs = float(len(rows))
        g_tokens, g_seqs = dist_utils.all_reduce_sum([local_tokens, local_seqs])
        per_rank_tokens = g_tokens / self.world
        per_rank_seqs = g_seqs / self.world
        if g_tokens == 0:
            # Nothing to learn from on any rank (e.g. every group skipped as zero-std): no optimiser step,
            # since Adam would still move the weights on its momentum. The LR schedule still advances.
            lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step()
            return {**dict.fromkeys(M.UPDATE_METRICS, float("nan")), M.LEARNING_RATE: lr, M.NUM_TOKENS: 0.0,
                    M.SKIPPED_UPDATE: 1.0}

        batches = micro_batches(rows, self.pad_id, self.device, size=cfg.micro_batch_size,
                                parts=cfg.gradient_accumulation_steps)
        # The behaviour policy: with one update per batch the training forward's own log-probs
        # (detached) are the old policy's, so no extra pass is needed; with more they are fixed first.
        old_logps: list[torch.Tensor | None] = [None] * len(batches)
        if cfg.num_iterations > 1:
            with torch.no_grad():
                old_logps = [self._logps(self.model, mb)[0] for mb in batches]
        ref_logps = self._reference_logps(batches)

        acc = {"loss": 0.0, "kl": 0.0, "clip_low": 0.0, "clip_high": 0.0, "clip_region": 0.0, "entropy": 0.0,
               "grad_norm": 0.0}
        mismatch = _MismatchStats()
        is_weights: list[torch.Tensor | None] = [None] * len(batches)
        tok_seen = 0.0
        for it in range(cfg.num_iterations):
            self.optimizer.zero_grad(set_to_none=True)
            # Every rank must run the same number of backward passes (each one is a DDP all-reduce);
            # a rank with fewer micro-batches (or none) joins with zero-gradient passes.
            for _ in range(self._micro_batches_all_ranks(len(batches)) - len(batches)):
                (sum(p.sum() for p in params) * 0.0).backward()
            for i, mb in enumerate(batches):
                logps, ent = self._logps(self.ddp_model, mb, with_entropy=True, entropy_grad=bool(cfg.entropy_coef))
                old = old_logps[i] if old_logps[i] is not None else logps.detach()
                if it == 0 and mb.sampler_logps is not None:
                    # The sampler's log-probs are not exactly the trainer's (kernels, precision,
                    # batching): weight each token by pi_trainer / pi_sampler, truncated or masked.
                    rc = rollout_correction(old, mb.sampler_logps, mb.completion_mask,
                                            level=cfg.rollout_correction_level, mode=cfg.rollout_correction_mode,
                                            cap=cfg.rollout_correction_cap, low=cfg.rollout_correction_min)
                    mismatch.add(rc.metrics, float(mb.completion_mask.sum()))
                    if cfg.rollout_correction:
                        is_weights[i] = rc.weights
                out = grpo_loss(logps, old, mb.advantages, mb.completion_mask, epsilon_low=cfg.epsilon,
                                epsilon_high=cfg.epsilon_high, beta=cfg.beta, ref_logps=ref_logps[i],
                                loss_type=cfg.loss_type, importance_sampling_level=cfg.importance_sampling_level,
                                max_completion_length=cfg.max_completion_length,
                                num_items=per_rank_tokens, num_sequences=per_rank_seqs, is_weights=is_weights[i])
                loss = out.loss
                m = mb.completion_mask
                if cfg.entropy_coef:
                    # Entropy bonus, token-mean over the global batch like the dapo aggregation.
                    loss = loss - cfg.entropy_coef * (ent * m).sum() / max(per_rank_tokens, 1.0)
                    ent = ent.detach()
                loss.backward()
                w = out.num_tokens
                acc["loss"] += float(loss.detach())
                acc["kl"] += out.kl * w
                acc["clip_low"] += out.clip_low * w
                acc["clip_high"] += out.clip_high * w
                acc["clip_region"] += out.clip_region * w
                acc["entropy"] += float((ent * m).sum())
                tok_seen += w
            if cfg.max_grad_norm and cfg.max_grad_norm > 0:
                gn = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            else:
                gn = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params if p.grad is not None))
            acc["grad_norm"] += float(gn)
            self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        it = cfg.num_iterations
        denom = max(tok_seen, 1.0)
        return {
            M.LOSS: acc["loss"] / it,
            M.KL: acc["kl"] / denom,
            M.CLIP_LOW: acc["clip_low"] / denom,
            M.CLIP_HIGH: acc["clip_high"] / denom,
            M.CLIP_REGION: acc["clip_region"] / denom,
            M.ENTROPY: acc["entropy"] / denom,
            M.GRAD_NORM: acc["grad_norm"] / it,
            M.LEARNING_RATE: lr,
            M.NUM_TOKENS: local_tokens,
            **mismatch.result(),
        }

    def _micro_batches_all_ranks(self, local: int) -> int:
        if self.world == 1:
            return local
        return int(dist_utils.all_reduce_max(float(local)))

    def _reward_metrics(self, groups: list[ScoredGroup], adv: np.ndarray) -> dict[str, float]:
        scores = np.array([s for g in groups for s in g.scores], dtype=np.float64)
        valid = scores[~np.isnan(scores)]
        comps = [c for g in groups for c in g.group.completions]
        lengths = np.array([len(c.token_ids) for c in comps], dtype=np.float64)
        verdicts = [v for g in groups for v in g.verdicts]
        group_stds = [g.std for g in groups]
        n = max(len(scores), 1)
        return {
            M.REWARD: float(valid.mean()) if len(valid) else float("nan"),
            M.REWARD_STD: float(np.mean(group_stds)) if group_stds else 0.0,
            M.ACCURACY: accuracy(verdicts),
            M.FRAC_REWARD_ZERO_STD: float(np.mean([s == 0.0 for s in group_stds])) if group_stds else 0.0,
            M.ADVANTAGE_STD: float(np.std(adv[adv != 0])) if np.any(adv != 0) else 0.0,
            M.VERIFICATION_RATE: float(len(valid) / n),
            M.NO_VERDICT: float(len(scores) - len(valid)),
            M.MEAN_LENGTH: float(lengths.mean()) if len(lengths) else 0.0,
            M.MIN_LENGTH: float(lengths.min()) if len(lengths) else 0.0,
            M.MAX_LENGTH: float(lengths.max()) if len(lengths) else 0.0,
            M.CLIPPED_RATIO: float(np.mean([c.finish_reason == "length" for c in comps])) if comps else 0.0,
            M.NUM_GROUPS: float(len(groups)),
            **part_reward_metrics(verdicts, getattr(self.verifier, "name", None)),
        }

    # ---------------------------------------------------------------------------------- eval
    @torch.no_grad()
    def greedy_accuracy(self, records: Sequence[dict[str, Any]]) -> float:
        """Share of `records` answered correctly by greedy decoding (one completion each), through
        the run's sampler, over the verdicts that carry a correctness (NaN when none does)."""
        if self.verifier is None or not records:
            return float("nan")
        return self.evaluate(records)[M.EVAL_ACCURACY]

    @torch.no_grad()
    def evaluate(self, records: Sequence[dict[str, Any]], num_samples: int = 1, seed: int | None = None) -> dict[str, float]:
        """Held-out evaluation through the run's sampler: greedy pass@1 (`eval/accuracy`, over the
        verdicts that carry a correctness) and the mean greedy score (`eval/mean_score`); with
        `num_samples` k > 1 also `eval/pass@k`, the share of prompts with a correct answer among k
        completions sampled at the run's sampling settings (`grpo_fast.evaluation.pass_at_k`; a prompt
        with fewer than k judged completions is left out). It draws from a forked RNG seeded with
        `seed` (default: the run's seed), so an evaluation leaves the run's random stream, and so a
        bit-for-bit resume, as it was."""
        nan = float("nan")
        if self.verifier is None or not records:
            return {M.EVAL_ACCURACY: nan, M.EVAL_MEAN_SCORE: nan, M.EVAL_NUM_PROMPTS: float(len(records))}
        self.sync_sampler()
        prompts = [self.prompt_format.build(r) for r in records]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.cfg.seed if seed is None else seed)
            greedy = self._verify(self.sampler.generate(prompts, 1, records=list(records), temperature=0.0))
            verdicts = [v for g in greedy for v in g.verdicts]
            vals = [s for g in greedy for s in g.scores if not math.isnan(s)]
            out = {M.EVAL_ACCURACY: accuracy(verdicts), M.EVAL_MEAN_SCORE: float(np.mean(vals)) if vals else nan,
                   M.EVAL_NUM_PROMPTS: float(len(records))}
            if num_samples > 1:
                engine_seed = None if self.sampler.shares_policy else int(torch.randint(0, 2**31 - 1, (1,)))
                sampled = self._verify(self.sampler.generate(prompts, num_samples, records=list(records),
                                                             seed=engine_seed))
                hits = [[v.correct for v in g.verdicts if v.correct is not None] for g in sampled]
                # The one pass@k of grpo-fast eval; a prompt with fewer than k judged samples is left out.
                per_prompt = [pass_at_k(len(h), sum(h), num_samples) for h in hits]
                judged = [p for p in per_prompt if p is not None]
                out[M.eval_pass_at(num_samples)] = float(np.mean(judged)) if judged else nan
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.sampler.close()


def accuracy(verdicts: Sequence[Verdict]) -> float:
    """Share of `verdicts` judged correct, over those that carry a correctness (a verifier that only
    scores is not "incorrect"); NaN when none does."""
    judged = [v.correct for v in verdicts if v is not None and v.correct is not None]
    return float(np.mean(judged)) if judged else float("nan")


def part_reward_metrics(verdicts: Sequence[Verdict], single_name: str | None = None) -> dict[str, float]:
    """`rewards/<name>/mean` and `/std` over the completions each part scored: the parts of a composite
    verdict (`Verdict.components`), else the one verifier under `single_name` (like TRL's per reward
    function). Completions without a score from a part are left out of its statistics."""
    per: dict[str, list[float]] = {}
    for v in verdicts:
        if v is None:
            continue
        if v.components:
            for name, cv in v.components.items():
                per.setdefault(name, [])
                if cv.score is not None:
                    per[name].append(float(cv.score))
        elif single_name:
            per.setdefault(single_name, [])
            if v.score is not None:
                per[single_name].append(float(v.score))
    out = {}
    for name, xs in per.items():
        out[M.reward_metric(name, "mean")] = float(np.mean(xs)) if xs else float("nan")
        out[M.reward_metric(name, "std")] = float(np.std(xs)) if xs else float("nan")
    return out


def _file_components(raw: Any) -> dict[str, Verdict] | None:
    """A scored file's per-part verdicts (`components`, as `grpo-fast verify` writes them)."""
    if not isinstance(raw, dict) or not raw:
        return None
    out = {}
    for name, c in raw.items():
        if isinstance(c, dict):
            s = c.get("score")
            out[str(name)] = Verdict(float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else None,
                                     c.get("correct"), str(c.get("reason") or ""))
    return out or None


class _MismatchStats:
    """The sampler-mismatch metrics of a step, over its micro-batches: means weighted by tokens,
    min of the minima, max of the maxima."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def add(self, metrics: dict[str, float], tokens: float) -> None:
        for k, v in metrics.items():
            if k.endswith("/min"):
                self.sums[k] = min(self.sums.get(k, math.inf), v)
            elif k.endswith("/max"):
                self.sums[k] = max(self.sums.get(k, -math.inf), v)
            else:
                self.sums[k] = self.sums.get(k, 0.0) + v * tokens
        self.weight += tokens

    def result(self) -> dict[str, float]:
        if not self.sums:
            return {}
        w = max(self.weight, 1.0)
        return {k: (v if k.endswith(("/min", "/max")) else v / w) for k, v in self.sums.items()}


def _gold_field(verifier: Any) -> str | None:
    """The record field `verifier` reads the gold answer from (a composite: its first part's that has one)."""
    field = getattr(verifier, "answer_field", None)
    if isinstance(field, str):
        return field
    for part in getattr(verifier, "parts", None) or ():
        found = _gold_field(part[0] if isinstance(part, tuple) else part)
        if found:
            return found
    return None


def sampler_from_config(cfg: GRPOConfig, model: Any, tokenizer: Any, model_path: str | None) -> Sampler:
    """The run's sampler. The transformers one returns no log-probs: it runs this very model, so the
    trainer's own log-probs are the behaviour policy's."""
    from grpo_fast.sampler.factory import build_sampler

    sampler = build_sampler(
        cfg.sampler, model=model, tokenizer=tokenizer, model_path=model_path,
        max_new_tokens=cfg.max_completion_length, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
        use_chat_template=cfg.use_chat_template, max_prompt_length=cfg.max_prompt_length, seed=cfg.seed,
        return_logprobs=False, vllm_mode=cfg.vllm_mode, vllm_server_url=cfg.vllm_server_url,
        vllm_server_timeout=cfg.vllm_server_timeout, vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        vllm_enable_sleep_mode=cfg.vllm_enable_sleep_mode, vllm_dtype=cfg.vllm_dtype,
        vllm_max_model_len=cfg.vllm_max_model_len)
    return with_tools(cfg, sampler)


def with_tools(cfg: GRPOConfig, sampler: Sampler) -> Sampler:
    """`sampler` as a multi-turn `ToolSampler` when the config names tools, else unchanged."""
    if not cfg.tools and not cfg.tool_functions:
        return sampler
    from grpo_fast.rollout import RolloutLimits, ToolSampler
    from grpo_fast.tools import build_tools

    tools = build_tools(cfg.tools, cfg.tool_functions, sandbox=cfg.tool_sandbox, timeout_s=cfg.tool_timeout,
                        max_output_chars=cfg.tool_max_output_chars, session=cfg.tool_session,
                        setup_code=cfg.tool_setup_code or "")
    limits = RolloutLimits(max_tool_calls=cfg.max_tool_calls, max_turns=cfg.max_turns,
                           max_tokens=cfg.max_completion_length)
    return ToolSampler(sampler, tools, tool_format=cfg.tool_format, limits=limits, waves=cfg.tool_waves)


class _NullCtx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _autocast(cfg: GRPOConfig, device: torch.device):
    if cfg.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return _NullCtx()


def _apply_lora(model: Any, cfg: GRPOConfig) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ConfigError("use_lora needs `pip install grpo-fast[lora]` (peft)", field="use_lora") from exc
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lcfg)
