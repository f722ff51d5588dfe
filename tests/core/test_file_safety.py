"""Commands never destroy or corrupt a user's file: an output appears whole or not at all (a kill -9,
a full disk or an error leave the old one), an output may be the input, `-o -` keeps stdout for
records, and rejects files are kept whole and their place is printed. Each test drives the real
console script in a subprocess, on rollouts shaped like GSM8K model output."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REASONING = (
    "Natalia sold {a} clips in April. In May she sold half as many, {b} clips. "
    "Altogether she sold {a} + {b} = {c} clips in April and May."
)


def cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "grpo_fast.cli", *args], capture_output=True, text=True, **kw
    )


def start(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "grpo_fast.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kw,
    )


def group(i: int, *, scored: bool = True, pad: int = 0) -> dict:
    """One GSM8K-style group: 4 completions, the first two right."""
    a = 2 * (i % 50 + 2)
    b, c = a // 2, a + a // 2
    text = REASONING.format(a=a, b=b, c=c) + " " * pad
    responses = []
    for k, ans in enumerate((c, c, c + 1, a)):
        r = {"text": f"{text}\nThe answer is \\boxed{{{ans}}}.", "tokens": 40 + k}
        if scored:
            r["score"] = float(ans == c)
        responses.append(r)
    return {
        "id": f"gsm8k-{i}",
        "prompt": f"Natalia sold clips to {a} of her friends in April...",
        "answer": f"#### {c}",
        "responses": responses,
    }


def write_groups(path, n: int, **kw) -> bytes:
    body = "".join(json.dumps(group(i, **kw)) + "\n" for i in range(n)).encode()
    with open(path, "wb") as f:
        f.write(body)
    return body


def md5(path) -> str:
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def temps(folder) -> list[str]:
    return glob.glob(os.path.join(folder, ".*.tmp-*"))


def wait_for_temp_bytes(folder, proc, timeout: float = 60.0) -> str:
    """Waits until the command's temporary output holds data; returns its path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in temps(folder):
            try:
                if os.path.getsize(t) > 0:
                    return t
            except FileNotFoundError:
                pass
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.005)
    raise AssertionError("no output was written in time")


@pytest.mark.parametrize(
    "command, groups",
    [
        (
            ["advantages", "-", "--method", "rloo"],
            40000,
        ),  # past one batch (65,536 responses) in the first half
        (["verify", "-", "--workers", "1", "--chunk-size", "64"], 20000),
    ],
)
def test_kill_9_mid_write_keeps_the_old_output(tmp_path, command, groups):
    # The input comes through a pipe we control: half of it, then the process is killed while it
    # waits for the rest, its temporary output already holding data.
    out = tmp_path / "out.jsonl"
    out.write_text("the previous results\n")
    body = b"".join(json.dumps(group(i)).encode() + b"\n" for i in range(groups))
    proc = start(*command, "-o", str(out), stdin=subprocess.PIPE)
    proc.stdin.write(body[: len(body) // 2])
    proc.stdin.flush()
    temp = wait_for_temp_bytes(tmp_path, proc)
    proc.kill()
    proc.wait()
    proc.stdin.close()
    assert proc.returncode == -9
    assert out.read_text() == "the previous results\n"
    # What a kill leaves is the temporary file, beside the target and never at its path.
    assert os.path.dirname(temp) == str(tmp_path) and os.path.basename(temp).startswith(".out.jsonl.tmp-")


@pytest.mark.parametrize(
    "command",
    [
        ["advantages"],
        ["verify", "--workers", "1", "--chunk-size", "32"],
    ],
)
def test_kill_9_with_the_output_as_input_never_leaves_a_partial_file(tmp_path, command):
    src = tmp_path / "in.jsonl"
    n = 3000 if command[0] == "verify" else 60000
    write_groups(src, n)
    before = md5(src)
    proc = start(command[0], str(src), "-o", str(src), *command[1:])
    wait_for_temp_bytes(tmp_path, proc)
    proc.kill()
    proc.wait()
    if proc.returncode == -9:
        assert md5(src) == before, "the input was changed by a killed run"
    else:  # finished before the kill landed: then the file is the whole new output
        lines = src.read_bytes().splitlines()
        assert len(lines) == n and all(json.loads(line)["responses"] for line in lines)


@pytest.mark.parametrize(
    "command, added",
    [
        (["advantages", "--method", "grpo"], "advantage"),
        (["verify", "--workers", "1"], "correct"),
    ],
)
def test_output_may_be_the_input(tmp_path, command, added):
    src = tmp_path / "in.jsonl"
    write_groups(src, 300)
    expected = [group(i) for i in range(300)]
    for _ in range(3):
        r = cli(command[0], str(src), "-o", str(src), *command[1:])
        assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in src.read_text().splitlines()]
    assert len(got) == 300
    for g, e in zip(got, expected, strict=True):
        assert g["id"] == e["id"] and g["answer"] == e["answer"]
        assert all(
            added in resp and resp["text"] == er["text"]
            for resp, er in zip(g["responses"], e["responses"], strict=True)
        )
    if added == "correct":
        assert [r["correct"] for r in got[0]["responses"]] == [True, True, False, False]
    assert temps(tmp_path) == []


def _limit_file_size(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("command", [["advantages"], ["verify", "--workers", "1", "--chunk-size", "256"]])
def test_a_full_disk_leaves_the_old_output_and_no_temporary_file(tmp_path, command):
    # RLIMIT_FSIZE makes writes past 200 kB fail with EFBIG, as a full disk fails them with ENOSPC.
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_groups(src, 2000)
    out.write_text("old\n")
    r = subprocess.run(
        [sys.executable, "-m", "grpo_fast.cli", command[0], str(src), "-o", str(out), *command[1:]],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size(200_000),
    )
    assert r.returncode != 0
    assert "error:" in r.stderr and str(out) in r.stderr and "Traceback" not in r.stderr
    assert out.read_text() == "old\n"
    assert temps(tmp_path) == []


def test_a_device_output_is_written_in_place(tmp_path):
    src = tmp_path / "in.jsonl"
    write_groups(src, 50)
    r = cli("advantages", str(src), "-o", "/dev/null")
    assert r.returncode == 0, r.stderr
    r = cli("advantages", str(src), "-o", "/dev/full")
    assert r.returncode == 2
    assert "/dev/full" in r.stderr and "No space left" in r.stderr


def _json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines()]


def test_verify_to_stdout_keeps_stdout_for_records(tmp_path):
    src = tmp_path / "in.jsonl"
    write_groups(src, 40, scored=False)
    r = cli("verify", str(src), "-o", "-", "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    records = _json_lines(r.stdout)
    assert len(records) == 40 and all("responses" in x for x in records)
    summary = json.loads(r.stderr[r.stderr.index("{") :])
    assert summary["responses"] == 160 and summary["correct"] == 80 and summary["records"] == 40
    # Without --json the table goes to stderr too.
    r = cli("verify", str(src), "-o", "-", "--workers", "1")
    assert r.returncode == 0 and len(_json_lines(r.stdout)) == 40
    assert "verified / total" in r.stderr


def test_the_verify_help_example_prints_only_json(tmp_path):
    # `grpo-fast verify --verifier mypkg.graders:exact groups.jsonl -o - --timeout 10 --json`
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "graders.py").write_text(
        "def exact(prompt, response, record):\n"
        "    return float(response.strip().endswith(record['answer'].split()[-1] + '}.'))\n"
    )
    src = tmp_path / "groups.jsonl"
    write_groups(src, 25, scored=False)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = cli(
        "verify",
        "--verifier",
        "mypkg.graders:exact",
        str(src),
        "-o",
        "-",
        "--timeout",
        "10",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    records = _json_lines(r.stdout)
    assert len(records) == 25
    assert [x["score"] for x in records[0]["responses"]] == [1.0, 1.0, 0.0, 0.0]
    assert json.loads(r.stderr[r.stderr.index("{") :])["responses"] == 100


def test_advantages_to_stdout_keeps_stdout_for_records(tmp_path):
    src = tmp_path / "in.jsonl"
    write_groups(src, 60)
    for extra in ([], ["--json"]):
        r = cli("advantages", str(src), "-o", "-", *extra)
        assert r.returncode == 0, r.stderr
        records = _json_lines(r.stdout)
        assert len(records) == 60 and all("advantage" in resp for resp in records[0]["responses"])
    assert json.loads(r.stderr[r.stderr.index("{") :])["summary"]["groups"] == 60
    # With a file output, --json is the only thing on stdout.
    r = cli("advantages", str(src), "-o", str(tmp_path / "o.jsonl"), "--json")
    assert json.loads(r.stdout)["summary"]["responses"] == 240


BAD = ['{"prompt": "p", "responses": [{"text": "a", "score": "1"}]}', "not json at all"]


def _with_bad_lines(path, n: int) -> None:
    lines = [json.dumps(group(i)) for i in range(n)]
    lines[1:1] = BAD
    path.write_text("\n".join(lines) + "\n")


def test_report_mode_says_where_the_rejects_went(tmp_path):
    src = tmp_path / "in.jsonl"
    _with_bad_lines(src, 5)
    out = tmp_path / "out.jsonl"
    r = cli("verify", str(src), "-o", str(out), "--on-error", "report", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert f"2 rejected lines with reasons written to {out}.rejects.jsonl" in r.stderr
    assert len(_json_lines((tmp_path / "out.jsonl.rejects.jsonl").read_text())) == 2
    rejects = tmp_path / "bad.jsonl"
    r = cli("advantages", str(src), "-o", str(out), "--on-error", "report", "--rejects", str(rejects))
    assert r.returncode == 0, r.stderr
    assert f"rejects written to {rejects}" in r.stderr
    r = cli("stats", str(src), "--on-error", "report")
    assert f"2 rejected lines with reasons written to {src}.rejects.jsonl" in r.stderr


def test_stats_keeps_the_rejects_of_every_file(tmp_path):
    a, b, rej = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "r.jsonl"
    _with_bad_lines(a, 3)
    _with_bad_lines(b, 4)
    r = cli("stats", str(a), str(b), "--on-error", "report", "--rejects", str(rej), "--json")
    assert r.returncode == 0, r.stderr
    got = _json_lines(rej.read_text())
    assert [(x["file"], x["line"]) for x in got] == [(str(a), 2), (str(a), 3), (str(b), 2), (str(b), 3)]
    assert [x["raw"] for x in got] == BAD * 2
    assert [s["read"]["rejected"] for s in json.loads(r.stdout)] == [2, 2]
    assert sorted(os.listdir(tmp_path)) == ["a.jsonl", "b.jsonl", "r.jsonl"]


def test_rejects_may_not_overwrite_an_input_or_the_output(tmp_path):
    src = tmp_path / "in.jsonl"
    _with_bad_lines(src, 3)
    before = md5(src)
    for args in (
        ["stats", str(src), "--on-error", "report", "--rejects", str(src)],
        ["stats", str(src), str(src), "--on-error", "report", "--rejects", str(src)],
        ["advantages", str(src), "-o", str(src), "--on-error", "report", "--rejects", str(src)],
        [
            "verify",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--on-error",
            "report",
            "--rejects",
            str(tmp_path / "o.jsonl"),
        ],
    ):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "rejects file" in r.stderr and "choose another --rejects" in r.stderr
        assert md5(src) == before


def test_verify_fails_when_no_response_has_a_gold_answer(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    out.write_text("kept\n")
    with open(src, "w") as f:
        for i in range(6):
            f.write(
                json.dumps(
                    {
                        "prompt_id": i // 3,
                        "prompt": f"q{i // 3}",
                        "answer": None,
                        "completion": "so the answer is \\boxed{4}",
                    }
                )
                + "\n"
            )
    r = cli("verify", str(src), "-o", str(out), "--workers", "1")
    assert r.returncode == 2
    assert "no response in" in r.stderr and "gold answer" in r.stderr and "'answer'" in r.stderr
    assert out.read_text() == "kept\n"
    assert temps(tmp_path) == []


GSM8K = [  # (question, gold as GSM8K writes it, a line of reasoning, the right number)
    (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
        "In May she sold 48 / 2 = 24 clips.",
        72,
    ),
    (
        "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
        "How much did she earn?",
        "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n#### 10",
        "Per minute she earns 12 / 60 = 0.2 dollars.",
        10,
    ),
    (
        "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
        "Her parents give her $15 and her grandparents twice as much. How much more money does Betty need?",
        "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.\n#### 5",
        "Betty has 100 / 2 = 50 dollars, and gets 15 + 30 = 45 more.",
        5,
    ),
    (
        "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
        "He writes each friend 3*2=<<3*2=6>>6 pages a week.\n#### 624",
        "Each week he writes 3 * 2 * 2 = 12 pages.",
        624,
    ),
]


def test_flat_lines_keep_their_own_gold(tmp_path):
    # One completion per line, `{"prompt_id", "prompt", "answer", "completion"}`: each line's gold
    # reaches its verdict (once every response came out `no_gold`).
    src, out = tmp_path / "flat.jsonl", tmp_path / "out.jsonl"
    lines, right = [], 0
    for pid in range(19):
        question, gold, reasoning, number = GSM8K[pid % len(GSM8K)]
        for k in range(4):
            answer = number if k % 2 == 0 else number + 3
            right += answer == number
            completion = (
                f"Let me work through it step by step.\n{reasoning}\nSo the final answer is {answer}."
                if k < 2
                else f"We compute carefully... \\boxed{{{answer}}}"
            )
            lines.append(
                {"prompt_id": pid, "prompt": f"[{pid}] {question}", "answer": gold, "completion": completion}
            )
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert len(lines) == 76
    r = cli("verify", str(src), "-o", str(out), "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["responses"] == 76 and summary["records"] == 19
    assert summary["verified"] == 76 and summary["correct"] == right == 38
    got = _json_lines(out.read_text())
    assert got[0]["prompt_id"] == 0 and [x["correct"] for x in got[0]["responses"]] == [
        True,
        False,
        True,
        False,
    ]
    assert got[0]["responses"][0]["answer"] == GSM8K[0][1]
