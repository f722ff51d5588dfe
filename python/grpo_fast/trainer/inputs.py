"""What a run, `generate` or `eval` works on, checked before anything heavy is loaded: the prompts
and the verifier (a toy task's, or from `--data`; written once here for all three commands), and
the model (`check_model`: a local folder with config.json, or a Hugging Face Hub id that is in the
local cache or reachable, decided in seconds without a traceback).

Every failure is a `GrpoError` with one line of text, which the CLI prints as `error: ...`."""

from __future__ import annotations

import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from grpo_fast.errors import ConfigError
from grpo_fast.trainer.prompt_data import PromptData, load_prompt_data, load_scored_groups, prepare_records

# `name` or `org/name`: what the Hub accepts as a model id.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
# How long `check_model` waits for the Hub's host to accept a connection.
HUB_CONNECT_TIMEOUT_S = 3.0


# ---------------------------------------------------------------------------------------------
# prompts and verifier


@dataclass
class TaskInputs:
    """The prompt records (with the fields that were picked) and the verifier of a run (None when
    it needs none: offline training, `generate`). `toy` is the toy task when there is one."""

    data: PromptData
    verifier: Any | None
    toy: Any | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.data.records


def resolve_verifier(spec: str, **options: Any) -> Any:
    """A verifier by name, `name=weight` mix or `module:attr`, through the registry's one builder
    (`grpo_fast.verifiers.registry.build_verifier`); `options` (e.g. `answer_field`) reach the
    verifiers that take them. Importing the toy tasks registers `toy_exact` / `toy_digits`."""
    import grpo_fast.trainer.toy_tasks  # noqa: F401 - registers the toy verifiers
    from grpo_fast.verifiers.registry import build_verifier

    try:
        return build_verifier(spec, **options)
    except ConfigError as exc:
        if exc.field is None:
            exc.field = "verifier"
        raise


def load_task_inputs(*, toy: str | None = None, data: str | None = None, verifier: str | None = None,
                     offline: bool = False, need_verifier: bool = True, prompt_field: str | None = None,
                     answer_field: str | None = None, columns: dict[str, str] | None = None,
                     system_prompt: str | None = None, prompt_template: str | None = None,
                     use_chat_template: bool = True, limit: int | None = None) -> TaskInputs:
    """The toy-or-data choice, once for `train`, `generate` and `eval`: a toy task's records and
    verifier, already-scored groups (`offline`), or prompts from `data` with the `verifier` (default
    `math`) reading the picked answer field. Cheap: nothing is loaded but the data."""
    fmt = dict(prompt_field=prompt_field, answer_field=answer_field, columns=columns,
               system_prompt=system_prompt, prompt_template=prompt_template, use_chat_template=use_chat_template)
    task = None
    if toy:
        from grpo_fast.trainer.toy_tasks import get_toy_task

        task = get_toy_task(toy)
        records = list(task.records)[:limit] if limit is not None else list(task.records)
        prompts = prepare_records(records, file=f"toy task {toy}", **fmt)
        spec = verifier or task.verifier
    elif offline:
        if not data:
            raise ConfigError("--offline needs --data with scored groups", field="data")
        records = load_scored_groups(data, prompt_field)
        prompts = prepare_records(records[:limit] if limit is not None else records, file=str(data), **fmt)
        spec = None
    else:
        if not data:
            raise ConfigError("give --data FILE with prompts (JSONL, Parquet or a datasets folder), or --toy TASK",
                              field="data")
        prompts = load_prompt_data(data, limit=limit, **fmt)
        spec = verifier or "math"
    ver = None
    if need_verifier and spec:
        ver = resolve_verifier(spec, **({"answer_field": prompts.answer_field} if prompts.answer_field else {}))
    return TaskInputs(prompts, ver, task)


# ---------------------------------------------------------------------------------------------
# the model


def hub_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE as set now (huggingface_hub reads them at import)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def check_model(model: str | None) -> str:
    """Fail fast, in one line, when `model` cannot be loaded: a local folder must hold config.json
    (else the model folders found below it are named: `runs/demo` -> `runs/demo/train/checkpoint-150`);
    a Hub id must be in the local Hugging Face cache, or the Hub must answer within a few seconds
    (never with HF_HUB_OFFLINE=1). Returns `model`."""
    if not model:
        raise ConfigError("give --model (a local model folder or a Hugging Face Hub id) or --toy TASK", field="model")
    p = Path(model).expanduser()
    if p.is_dir():
        if _is_model_folder(p):
            return model
        why = "its config.json is not a model's" if (p / "config.json").is_file() else "it has no config.json"
        found = find_model_folders(p)
        raise ConfigError(f"{model} is not a model folder ({why})"
                          + (f"; model folders below it: {', '.join(found)}" if found else ""), field="model")
    if p.exists():
        raise ConfigError(f"{model} is a file, not a model folder (a folder with config.json and the weights)",
                          field="model")
    if _looks_local(model):
        base = next((a for a in p.parents if a.is_dir()), Path("."))
        found = find_model_folders(base, prefer=p.name)
        where = "here" if str(base) == "." else f"under {base}"
        raise ConfigError(f"no such model folder: {model}"
                          + (f"; model folders {where}: {', '.join(found)}" if found else ""), field="model")
    return _check_hub_model(model)


def _is_model_folder(p: Path) -> bool:
    """A transformers model's config.json names its `model_type` (or `architectures`); a run folder's
    config.json (the GRPOConfig) does not."""
    import json

    try:
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and ("model_type" in cfg or "architectures" in cfg)


def _looks_local(model: str) -> bool:
    if model.startswith((".", "/", "~")) or "\\" in model or not _HUB_ID.fullmatch(model):
        return True
    # `runs/x` is a path when `runs` exists here; a Hub id's owner rarely does.
    return "/" in model and Path(model.split("/")[0]).is_dir()


def find_model_folders(base: Path, prefer: str | None = None, limit: int = 3, max_depth: int = 4,
                       max_dirs: int = 2000) -> list[str]:
    """Up to `limit` model folders below `base` (depth <= max_depth, at most `max_dirs`
    folders looked at; hidden ones skipped): those named `prefer` first, then the latest checkpoints."""
    found: list[Path] = []
    level, seen = [base], 0
    for _ in range(max_depth):
        nxt = []
        for d in level:
            try:
                children = sorted(c for c in d.iterdir() if c.is_dir() and not c.name.startswith((".", "__")))
            except OSError:
                continue
            for c in children:
                seen += 1
                if seen > max_dirs:
                    break
                if _is_model_folder(c):
                    found.append(c)
                else:
                    nxt.append(c)
        level = nxt

    def key(c: Path) -> tuple[int, int, str]:
        m = _CHECKPOINT.fullmatch(c.name)
        return (0 if c.name == prefer else 1, -int(m.group(1)) if m else 0, str(c))

    found.sort(key=key)
    shown = [str(c) for c in found[:limit]]
    if len(found) > limit:
        shown.append(f"... ({len(found)} in all)")
    return shown


def _check_hub_model(repo_id: str) -> str:
    try:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.errors import HFValidationError
    except ImportError:
        return repo_id  # transformers will say what is wrong
    try:
        cached = try_to_load_from_cache(repo_id, "config.json")
    except HFValidationError:
        raise ConfigError(f"no such model folder: {repo_id}", field="model") from None
    if isinstance(cached, str):
        return repo_id
    if hub_offline():
        raise ConfigError(f"{repo_id} is neither a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE "
                          f"is set: download it first (`hf download {repo_id}`) or give a local model folder",
                          field="model")
    host, problem = _hub_unreachable()
    if problem is not None:
        raise ConfigError(f"{repo_id} is neither a local folder nor in the Hugging Face cache, and the Hub ({host}) "
                          f"cannot be reached ({problem}): connect, download it where there is a network "
                          f"(`hf download {repo_id}`), or give a local model folder", field="model")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    try:
        hf_hub_download(repo_id, "config.json", etag_timeout=10)
    except GatedRepoError:
        raise ConfigError(f"{repo_id} is gated on the Hub: accept its terms on its page and log in "
                          "(`hf auth login`)", field="model") from None
    except RepositoryNotFoundError:
        raise ConfigError(f"no model {repo_id} on the Hub and no such local folder (a typo? a private model needs "
                          "`hf auth login`)", field="model") from None
    except EntryNotFoundError:
        raise ConfigError(f"{repo_id} on the Hub has no config.json: not a transformers model", field="model") from None
    except Exception as exc:  # network trouble after the connection test, HTTP errors
        raise ConfigError(f"cannot fetch {repo_id} from the Hub: {_first_line(exc)}", field="model") from None
    return repo_id


def _hub_unreachable(timeout: float | None = None) -> tuple[str, str | None]:
    """(host, None) when the Hub's host (or the HTTPS proxy) accepts a TCP connection within
    `timeout` seconds, else (host, why). Name resolution runs in a thread, so it cannot hang us."""
    timeout = HUB_CONNECT_TIMEOUT_S if timeout is None else timeout
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        try:
            from huggingface_hub import constants

            endpoint = constants.ENDPOINT
        except ImportError:
            endpoint = "https://huggingface.co"
    u = urlparse(endpoint)
    host, port = u.hostname or "huggingface.co", u.port or (443 if u.scheme == "https" else 80)
    proxy = os.environ.get(f"{u.scheme.upper()}_PROXY") or os.environ.get(f"{u.scheme}_proxy") or \
        os.environ.get("ALL_PROXY") or os.environ.get("all_proxy")
    if proxy:
        pu = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = pu.hostname or host, pu.port or 80
    result: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as exc:
            result.append(exc.strerror or str(exc) or type(exc).__name__)

    t = threading.Thread(target=probe, name="grpo-hub-probe", daemon=True)
    t.start()
    t.join(timeout + 1.0)
    label = f"{host}:{port}" + (" via proxy" if proxy else "")
    if not result:
        return label, f"no answer within {timeout:g} s"
    return label, result[0]


def load_pretrained(load: Any, model: str, **kwargs: Any) -> Any:
    """`load(model, **kwargs)` (a `from_pretrained`): for a Hub id from the local cache first
    (`local_files_only=True`), from the network only when that fails and the Hub is not offline.
    Errors become one-line ConfigErrors."""
    try:
        if Path(model).expanduser().exists():
            return load(model, **kwargs)
        try:
            return load(model, local_files_only=True, **kwargs)
        except OSError:
            if hub_offline():
                raise
            return load(model, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load {model}: {_first_line(exc)}", field="model") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
