"""Fixtures for the rollout tests: a real grpo-sandboxd on a temporary socket (once per session) and
the tiny Qwen-style tokenizer (chat template, one token per character)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scripted.py


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    from grpo_fast.sandbox.client import Client, find_daemon_binary

    exe = find_daemon_binary()
    if exe is None:
        pytest.skip("grpo-sandboxd is not built: run `cargo build --release -p grpo-sandbox` or set GRPO_SANDBOXD")
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root (CI runs as root)")
    tmp = tmp_path_factory.mktemp("sandboxd-rollout")
    cfg = tmp / "sandboxd.toml"
    # Host uids of its own, so another daemon on this machine never shares ours.
    cfg.write_text(f"[isolation]\nuid_base = {1_700_000 + (os.getpid() % 4096) * 16}\n")
    client = Client(str(tmp / "sandboxd.sock"), binary=exe, daemon_args=["--slots", "2", "--config", str(cfg)])
    assert client.started_daemon
    yield client
    client.close()


@pytest.fixture(scope="session")
def qwen_tok():
    from grpo_fast.trainer.local_model import build_tokenizer

    return build_tokenizer(vocab_size=256)
