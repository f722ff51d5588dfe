"""`grpo-fast sandbox ...` and `grpo-fast verify --verifier code` end to end against the daemon."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grpo_fast.cli import main


@pytest.fixture()
def env(sandbox, monkeypatch):
    monkeypatch.setenv("GRPO_SANDBOX_SOCKET", sandbox.socket_path)
    return sandbox


def test_status_json(env):
    r = CliRunner().invoke(main, ["sandbox", "status", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["isolation"]["mode"] == "native"


def test_run_file_with_stdin_and_tests(env, tmp_path):
    prog = tmp_path / "sum.py"
    prog.write_text("a, b = map(int, input().split())\nprint(a + b)\n")
    r = CliRunner().invoke(main, ["sandbox", "run", str(prog), "--stdin", "2 3"])
    assert r.exit_code == 0 and "5" in r.output, r.output
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps([{"input": "1 1", "output": "2"}, {"input": "2 2", "output": "5"}]))
    r = CliRunner().invoke(main, ["sandbox", "run", str(prog), "--tests", str(tests), "--json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["passed"] == 1


def test_help_has_examples():
    r = CliRunner().invoke(main, ["sandbox", "--help"])
    assert r.exit_code == 0 and "Examples" in r.output


def test_verify_with_the_code_verifier(env, tmp_path):
    rec = {
        "id": "sum",
        "prompt": "Read two integers and print their sum.",
        "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "4 4\n", "output": "8\n"}],
        "responses": [
            {"text": "```python\na, b = map(int, input().split())\nprint(a + b)\n```"},
            {"text": "```python\nprint(3)\n```"},
            {"text": "no idea"},
        ],
    }
    src = tmp_path / "groups.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    out = tmp_path / "verified.jsonl"
    r = CliRunner().invoke(main, ["verify", "--verifier", "code", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    got = json.loads(out.read_text().splitlines()[0])
    assert [x["score"] for x in got["responses"]] == [1.0, 0.5, 0.0]
    assert "execution_output" in json.dumps(got["responses"][1])
