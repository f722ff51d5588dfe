"""`grpo-fast generate` and `eval` stopped midway and continued with --resume: a real `generate`
process stopped by SIGTERM, Ctrl-C and kill -9 (with its last line cut off mid-write) ends, after
the resumes, with exactly the bytes of a run that never stopped; what each stop kept is the
uninterrupted run's first groups, byte for byte; a changed input or option is refused and leaves the
progress file as it was; nothing is left behind."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

N_PROMPTS = 400
BATCH = 2


def _args(ck, data, out, *extra):
    return [
        "--model",
        str(ck),
        "--data",
        str(data),
        "-n",
        "4",
        "--max-new-tokens",
        "40",
        "--batch-size",
        str(BATCH),
        "-o",
        str(out),
        *extra,
    ]


def _start(args, err_path):
    err = open(err_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "grpo_fast.cli", "generate", *args], stdout=subprocess.DEVNULL, stderr=err
    )
    err.close()
    return proc


def _items(partial) -> list[bytes]:
    """The complete item lines of a progress file (its header left out)."""
    try:
        data = open(partial, "rb").read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # a cut-off last line has no newline
    return lines[1:]


def _wait_for_items(partial, proc, at_least: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_items(partial)) < at_least:
        assert proc.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline, "no progress in time"
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be stopped"


def _record_bytes(item_line: bytes) -> bytes:
    head, _, rest = item_line.partition(b',"record":')
    assert head.startswith(b'{"i":') and rest.endswith(b"}")
    return rest[:-1]


def _leftovers(folder) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "*.partial")) + glob.glob(os.path.join(folder, ".*tmp*")))


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_checkpoint):
    """Prompts shaped like a user's data file (ids, prompt, gold answer), the uninterrupted run's
    output, and the progress file of a run stopped by SIGTERM after a few batches."""
    d = tmp_path_factory.mktemp("resume")
    data = d / "prompts.jsonl"
    with open(data, "w") as f:
        for i in range(N_PROMPTS):
            a, b = (i // 10) % 10, i % 10
            f.write(json.dumps({"id": f"sum-{i}", "prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n")
    ref = d / "ref" / "groups.jsonl"
    ref.parent.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "grpo_fast.cli", "generate", *_args(tiny_checkpoint, data, ref)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert _leftovers(ref.parent) == []

    stopped = d / "stopped"
    stopped.mkdir()
    out = stopped / "groups.jsonl"
    proc = _start(_args(tiny_checkpoint, data, out), stopped / "err.txt")
    _wait_for_items(str(out) + ".partial", proc, 6)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    err = (stopped / "err.txt").read_text()
    return {"data": data, "ref": ref.read_bytes(), "partial": (str(out) + ".partial"), "err": err, "out": out}


def test_sigterm_keeps_whole_batches_of_the_uninterrupted_run(setup):
    items = _items(setup["partial"])
    raw = open(setup["partial"], "rb").read()
    assert raw.endswith(b"\n"), "a stop by SIGTERM waits for the batch being written"
    assert len(items) % BATCH == 0 and 6 <= len(items) < N_PROMPTS
    ref_lines = setup["ref"].split(b"\n")
    for i, line in enumerate(items):
        assert line.startswith(b'{"i":%d,' % i)
        assert _record_bytes(line) == ref_lines[i]
    assert not setup["out"].exists(), "the output appears only when every prompt is done"
    assert f"stopped by SIGTERM: {len(items)} of {N_PROMPTS} groups are finished and kept in" in setup["err"]
    assert "--resume" in setup["err"]


def test_stops_and_resumes_end_with_the_uninterrupted_output(setup, tiny_checkpoint, tmp_path):
    """SIGTERM (the fixture), then --resume stopped by Ctrl-C, then --resume killed with -9 and its
    last line cut in half (what a kill in the middle of a write leaves), then --resume to the end."""
    out = tmp_path / "groups.jsonl"
    partial = str(out) + ".partial"
    with open(partial, "wb") as f:
        f.write(open(setup["partial"], "rb").read())
    args = _args(tiny_checkpoint, setup["data"], out, "--resume")

    kept = len(_items(partial))
    proc = _start(args, tmp_path / "err1.txt")
    _wait_for_items(partial, proc, kept + 4)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    err = (tmp_path / "err1.txt").read_text()
    assert f"resuming: {kept} of {N_PROMPTS} groups were finished" in err
    assert "stopped by Ctrl-C" in err and "--resume" in err

    kept = len(_items(partial))
    proc = _start(args, tmp_path / "err2.txt")
    _wait_for_items(partial, proc, kept + 6)
    proc.kill()
    assert proc.wait(timeout=120) == -9
    raw = open(partial, "rb").read()
    last_start = raw.rstrip(b"\n").rfind(b"\n") + 1
    cut = raw[: last_start + (len(raw) - last_start) // 2]
    with open(partial, "wb") as f:
        f.write(cut)
    kept = len(_items(partial))

    r = subprocess.run(
        [sys.executable, "-m", "grpo_fast.cli", "generate", *args], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "dropped its last line" in r.stderr and "a kill cut off" in r.stderr
    assert f"resuming: {kept} of {N_PROMPTS} groups were finished" in r.stderr
    assert out.read_bytes() == setup["ref"]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "change, why",
    [
        (["--temperature", "0.7"], "temperature: 1.0 then, 0.7 now"),
        (["-n", "3"], "num_generations: 4 then, 3 now"),
        (["--seed", "1"], "seed: 0 then, 1 now"),
        (["--max-new-tokens", "39"], "max_new_tokens: 40 then, 39 now"),
        (["--batch-size", "4"], "batch_size: 2 then, 4 now"),
        (["--top-k", "5"], "top_k: 0 then, 5 now"),
        (["--prompt-template", "{prompt} "], 'prompt_template: null then, "{prompt} " now'),
        (["--system-prompt", "Add."], "system_prompt"),
        (["--tools", "python"], "tools: {} then"),
        (["--limit", "5"], "it holds more groups"),
    ],
)
def test_a_changed_option_is_refused(setup, tiny_checkpoint, tmp_path, change, why):
    out = tmp_path / "groups.jsonl"
    partial = tmp_path / "groups.jsonl.partial"
    partial.write_bytes(open(setup["partial"], "rb").read())
    before = _md5(partial)
    from grpo_fast.cli.generate import generate

    args = _args(tiny_checkpoint, setup["data"], out, "--resume")
    # the later value of a repeated option wins
    r = CliRunner().invoke(generate, [*args, *change])
    assert r.exit_code == 2, r.output
    assert "cannot resume from" in r.output and why in r.output, r.output
    assert _md5(partial) == before and not out.exists()


def test_a_changed_input_or_model_is_refused(setup, tiny_checkpoint, tmp_path, tmp_path_factory):
    from grpo_fast.cli.generate import generate
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    out = tmp_path / "groups.jsonl"
    partial = tmp_path / "groups.jsonl.partial"
    partial.write_bytes(open(setup["partial"], "rb").read())
    before = _md5(partial)
    # One prompt among those already sampled changed (a fixed typo, a re-generated data set).
    lines = setup["data"].read_text().splitlines()
    rec = json.loads(lines[3])
    rec["prompt"] = "9+9="
    lines[3] = json.dumps(rec)
    changed = tmp_path / "prompts.jsonl"
    changed.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(generate, _args(tiny_checkpoint, changed, out, "--resume"))
    assert r.exit_code == 2 and "item 4 is not the one the earlier run sampled" in r.output, r.output
    # A field the prompt does not use changed: the record is part of the output, so refused too.
    rec = json.loads(setup["data"].read_text().splitlines()[0])
    lines = setup["data"].read_text().splitlines()
    lines[0] = json.dumps({**rec, "answer": "1"})
    changed.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(generate, _args(tiny_checkpoint, changed, out, "--resume"))
    assert r.exit_code == 2 and "item 1 is not the one" in r.output, r.output
    # Another checkpoint (a training run saved again at another step).
    other = tmp_path_factory.mktemp("other-ck")
    tok = build_char_tokenizer()
    build_tiny_model(tok, seed=1).save_pretrained(other)
    tok.save_pretrained(other)
    r = CliRunner().invoke(generate, _args(other, setup["data"], out, "--resume"))
    assert r.exit_code == 2 and "model: its files changed (" in r.output, r.output
    assert _md5(partial) == before and not out.exists()


def test_no_resume_without_the_flag_and_none_while_another_run_writes(setup, tiny_checkpoint, tmp_path):
    import fcntl

    from grpo_fast.cli.generate import generate

    out = tmp_path / "groups.jsonl"
    partial = tmp_path / "groups.jsonl.partial"
    partial.write_bytes(open(setup["partial"], "rb").read())
    before = _md5(partial)
    n = len(_items(partial))
    r = CliRunner().invoke(generate, _args(tiny_checkpoint, setup["data"], out))
    assert r.exit_code == 2
    assert f"holds {n} finished groups of an earlier run" in r.output and "add --resume" in r.output
    # The progress file is locked by the run writing it: a second command is refused.
    with open(partial, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        r = CliRunner().invoke(generate, _args(tiny_checkpoint, setup["data"], out, "--resume"))
    assert r.exit_code == 2 and "is in use: another command is writing" in r.output, r.output
    # Nor is a file of the same name that is not a progress file ever taken over.
    foreign = tmp_path / "notes.jsonl.partial"
    foreign.write_text('{"my": "own notes"}\n')
    r = CliRunner().invoke(
        generate, _args(tiny_checkpoint, setup["data"], tmp_path / "notes.jsonl", "--resume")
    )
    assert r.exit_code == 2 and "is not a grpo-fast progress file" in r.output
    assert foreign.read_text() == '{"my": "own notes"}\n'
    # eval refuses generate's progress file (another command's samples).
    from grpo_fast.cli.eval import eval_cmd

    r = CliRunner().invoke(
        eval_cmd,
        [
            "--model",
            str(tiny_checkpoint),
            "--data",
            str(setup["data"]),
            "-n",
            "4",
            "--max-new-tokens",
            "40",
            "--batch-size",
            "2",
            "--verifier",
            "toy_exact",
            "-o",
            str(out),
            "--resume",
        ],
    )
    assert r.exit_code == 2 and 'command: "generate" then, "eval" now' in r.output, r.output
    assert _md5(partial) == before and not out.exists()


def test_resume_without_an_earlier_run_starts_one_and_stdout_streams(tiny_checkpoint, tmp_path, capfd):
    from grpo_fast.cli.generate import generate

    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{d}+1=", "answer": str(d + 1)}) + "\n" for d in range(5)))
    out = tmp_path / "g.jsonl"
    r = CliRunner().invoke(
        generate,
        [
            "--model",
            str(tiny_checkpoint),
            "--data",
            str(data),
            "-n",
            "2",
            "--max-new-tokens",
            "3",
            "-o",
            str(out),
            "--resume",
        ],
    )
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["prompt"] for x in out.read_text().splitlines()] == [f"{d}+1=" for d in range(5)]
    assert _leftovers(tmp_path) == []
    # Records to stdout: written through, no progress file; --resume is refused.
    capfd.readouterr()
    r = CliRunner().invoke(
        generate,
        [
            "--model",
            str(tiny_checkpoint),
            "--data",
            str(data),
            "-n",
            "2",
            "--max-new-tokens",
            "3",
            "--batch-size",
            "2",
            "-o",
            "-",
        ],
    )
    assert r.exit_code == 0, r.output
    streamed = capfd.readouterr().out.splitlines()
    assert [json.loads(x)["prompt"] for x in streamed] == [f"{d}+1=" for d in range(5)]
    r = CliRunner().invoke(
        generate, ["--model", str(tiny_checkpoint), "--data", str(data), "-o", "-", "--resume"]
    )
    assert r.exit_code == 2 and "--resume needs an output file" in r.output


def test_eval_stopped_by_sigterm_resumes_to_the_same_report_and_groups(
    tiny_checkpoint, tmp_path, tmp_path_factory
):
    """eval with a baseline, stopped by a real SIGTERM while it samples the baseline (the model's
    groups all kept), then resumed: the scored groups and the report are the uninterrupted run's,
    and the model is not sampled again."""
    from grpo_fast.cli.eval import eval_cmd
    from grpo_fast.sampler.transformers_backend import TransformersSampler
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    base = tmp_path_factory.mktemp("base-ck")
    tok = build_char_tokenizer()
    build_tiny_model(tok, seed=3).save_pretrained(base)
    tok.save_pretrained(base)
    data = tmp_path / "p.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": i, "prompt": f"{i % 10}=", "answer": str((i + 1) % 10)}) + "\n"
            for i in range(30)
        )
    )

    def args(folder):
        folder.mkdir(exist_ok=True)
        return [
            "--model",
            str(tiny_checkpoint),
            "--baseline",
            str(base),
            "--data",
            str(data),
            "-n",
            "4",
            "--temperature",
            "1.0",
            "--max-new-tokens",
            "4",
            "--batch-size",
            "4",
            "--verifier",
            "toy_exact",
            "-k",
            "1,4",
            "-o",
            str(folder / "scored.jsonl"),
            "--report",
            str(folder / "report.json"),
        ]

    r = CliRunner().invoke(eval_cmd, args(tmp_path / "ref"))
    assert r.exit_code == 0, r.output

    calls = []
    orig = TransformersSampler.generate

    def stop_in_baseline(self, prompts, n, **kw):
        calls.append(len(prompts))
        if len(calls) == 11:  # 8 batches of the model (30 prompts), then the 3rd of the baseline
            os.kill(os.getpid(), signal.SIGTERM)
        return orig(self, prompts, n, **kw)

    run = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TransformersSampler, "generate", stop_in_baseline)
        r = CliRunner().invoke(eval_cmd, args(run))
    assert r.exit_code == 143, r.output
    # the model's 30 groups and the baseline's first 2 batches; the batch being sampled is lost
    assert "stopped by SIGTERM: 38 of 60 groups are finished and kept in" in r.output
    assert not (run / "scored.jsonl").exists() and not (run / "report.json").exists()
    assert len(_items(run / "scored.jsonl.partial")) == 38

    calls.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TransformersSampler, "generate", stop_in_baseline)
        r = CliRunner().invoke(eval_cmd, [*args(run), "--resume"])
    assert r.exit_code == 0, r.output
    assert calls == [4, 4, 4, 4, 4, 2], "only the baseline's 5 unfinished batches are sampled"
    ref = tmp_path / "ref"
    assert (run / "scored.jsonl").read_bytes() == (ref / "scored.jsonl").read_bytes()
    report = json.loads((run / "report.json").read_text())
    assert report == json.loads((ref / "report.json").read_text())
    assert report["prompts"] == 30 and report["baseline"]["prompts"] == 30
    assert _leftovers(run) == [] and _leftovers(ref) == []
