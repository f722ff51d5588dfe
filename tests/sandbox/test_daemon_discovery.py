"""The daemon is found the way an installed tool is run: `/path/venv/bin/grpo-fast ...` called by path
from a service, a cron job or a training job, with that environment's folder not on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from grpo_fast.sandbox import find_daemon_binary


@pytest.fixture(scope="module")
def venv_with_daemon(tmp_path_factory) -> Path:
    built = find_daemon_binary()
    if built is None:
        pytest.skip("no grpo-sandboxd binary built")
    root = tmp_path_factory.mktemp("venv")
    # system site packages: the venv sees this checkout's grpo_fast, as `pip install` would put it there.
    venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(root)
    shutil.copy2(built, root / "bin" / "grpo-sandboxd")
    return root


def _bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPO_SANDBOX")}
    env["PATH"] = "/usr/bin:/bin"  # the venv's bin folder is not on it
    env["GRPO_SANDBOX_SOCKET"] = str(tmp_path / "sock" / "sandboxd.sock")
    env["CARGO_TARGET_DIR"] = str(tmp_path / "no-cargo-build")  # rule out the checkout's own build
    return env


def test_found_beside_the_interpreter(venv_with_daemon, tmp_path):
    py = venv_with_daemon / "bin" / "python"
    out = subprocess.run(
        [str(py), "-c", "from grpo_fast.sandbox import find_daemon_binary; print(find_daemon_binary())"],
        env=_bare_env(tmp_path), capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == str(venv_with_daemon / "bin" / "grpo-sandboxd")


def test_cli_by_path_starts_the_venvs_daemon(venv_with_daemon, tmp_path):
    prog = tmp_path / "add.py"
    prog.write_text("a, b = map(int, input().split())\nprint(a + b)\n")
    py = venv_with_daemon / "bin" / "python"
    env = _bare_env(tmp_path)
    # The CLI starts the daemon on demand and stops it when it exits.
    out = subprocess.run(
        [str(py), "-m", "grpo_fast.cli", "sandbox", "run", str(prog), "--stdin", "20 22"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "42" in out.stdout
