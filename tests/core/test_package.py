"""The top-level package: every name in `__all__` resolves, and the light entry points (the
sandbox client, the errors) do not drag in numpy or the verifiers' heavy imports."""

from __future__ import annotations

import subprocess
import sys

import grpo_fast


def test_every_name_in_all_resolves_and_is_listed_by_dir():
    for name in grpo_fast.__all__:
        assert getattr(grpo_fast, name) is not None, name
    assert set(grpo_fast.__all__) <= set(dir(grpo_fast))
    from grpo_fast.advantages import compute_advantages

    assert grpo_fast.compute_advantages is compute_advantages


def test_an_unknown_name_is_an_attribute_error():
    try:
        grpo_fast.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("no AttributeError")


def test_the_sandbox_client_imports_without_numpy_or_sympy():
    probe = "import sys, grpo_fast.sandbox, grpo_fast.errors; print(sorted(m for m in ('numpy', 'sympy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
