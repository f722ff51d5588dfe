"""The reader's limits, seen from Python and the CLI: the longest line (bounded memory, capped
rejects), invalid UTF-8 kept exactly, the fast (columnar) and the records path agreeing on group
keys and nesting (property-tested), integers beyond 64 bits kept, huge scores, bad options."""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import grpo_fast
from grpo_fast.errors import ConfigError, DataError, GrpoError


def cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "grpo_fast.cli", *args], capture_output=True, text=True, **kw
    )


def gzip_of_zeros(path, mib: int) -> None:
    """A gzip file of `mib` MiB of zero bytes and no newline: one endless line (~1 KB per MiB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    block = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(c.compress(block))
        f.write(c.flush())


def _limit_memory(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


# Address space, not memory, is what RLIMIT_AS counts: keep the reservations that grow with the
# machine's core count (thread stacks, malloc arenas) the same everywhere.
_SMALL_PROCESS = {**os.environ, "RAYON_NUM_THREADS": "2", "MALLOC_ARENA_MAX": "2"}


def test_an_endless_line_is_rejected_in_bounded_memory(tmp_path):
    # 768 MiB of zeros in a 0.75 MB gzip, read under a 640 MiB address-space limit: holding the
    # line (as the reader once did) cannot fit; it is rejected and never held.
    src, rej = tmp_path / "zeros.jsonl.gz", tmp_path / "r.jsonl"
    gzip_of_zeros(src, 768)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpo_fast.cli",
            "stats",
            str(src),
            "--on-error",
            "report",
            "--rejects",
            str(rej),
            "--json",
        ],
        capture_output=True,
        text=True,
        preexec_fn=_limit_memory(640 << 20),
        env=_SMALL_PROCESS,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (s,) = json.loads(r.stdout)
    assert s["read"]["rejected"] == 1 and s["groups"] == 0
    (entry,) = [json.loads(line) for line in rej.read_text().splitlines()]
    assert entry["line"] == 1 and entry["raw_bytes"] == 768 << 20 and entry["raw_truncated"] is True
    assert "line is 805306368 bytes long, over the limit of 67108864 bytes" in entry["error"]
    assert rej.stat().st_size < 512 << 10  # 64 KiB of NULs, escaped
    # Strict: one clear error line, no allocation backtrace.
    r = subprocess.run(
        [sys.executable, "-m", "grpo_fast.cli", "stats", str(src)],
        capture_output=True,
        text=True,
        preexec_fn=_limit_memory(640 << 20),
        env=_SMALL_PROCESS,
    )
    assert r.returncode == 2
    assert f"{src}:1: line is 805306368 bytes long" in r.stderr and "alloc" not in r.stderr


def test_the_limit_is_an_option_and_long_rejected_lines_are_capped(tmp_path):
    # A 40 MB line under the default limit is still a bad line here (not JSON): its rejects entry
    # keeps 64 KiB, not the 240 MB its NULs would escape to.
    src, rej = tmp_path / "z.jsonl.gz", tmp_path / "r.jsonl"
    gzip_of_zeros(src, 40)
    r = cli("stats", str(src), "--on-error", "report", "--rejects", str(rej), "--json")
    assert r.returncode == 0, r.stderr
    (entry,) = [json.loads(line) for line in rej.read_text().splitlines()]
    assert entry["raw_bytes"] == 40 << 20 and len(entry["raw"]) == 64 << 10
    assert "invalid JSON" in entry["error"] or "control character" in entry["error"]
    assert rej.stat().st_size < 512 << 10
    # The option moves the limit, in every command.
    good = {"prompt": "p", "responses": [{"text": "x" * 500, "score": 1.0}, {"text": "y", "score": 0.0}]}
    f = tmp_path / "g.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "prompt": "q"}) + "\n")
    for args in (["stats", str(f)], ["advantages", str(f), "-o", str(tmp_path / "o.jsonl")]):
        r = cli(*args, "--max-line-bytes", "100")
        assert r.returncode == 2 and f"{f}:1: line is" in r.stderr and "limit of 100 bytes" in r.stderr
        assert cli(*args, "--max-line-bytes", "1000").returncode == 0
    with pytest.raises(DataError, match="over the limit of 100 bytes"):
        grpo_fast.read_groups(f, max_line_bytes=100)
    assert grpo_fast.read_groups(f, max_line_bytes=600).num_groups == 2


def test_invalid_utf8_is_kept_exactly(tmp_path):
    line = b'{"prompt": "caf\xe9 \xff", "responses": [{"text": "a", "score": 1}]}'
    src, rej = tmp_path / "latin1.jsonl", tmp_path / "r.jsonl"
    src.write_bytes(b'{"prompt":"ok","responses":[{"text":"a"}]}\n' + line + b"\r\n")
    batch = grpo_fast.read_groups(src, on_error="report", rejects=rej)
    assert batch.num_groups == 1
    (entry,) = [json.loads(x) for x in rej.read_text().splitlines()]
    assert entry["line"] == 2 and "invalid UTF-8" in entry["error"]
    assert base64.b64decode(entry["raw_base64"]) == line
    assert entry["raw"] == line.decode("utf-8", "replace")


@pytest.mark.parametrize("bad", [-1, 0, 1.5, True, "8"])
def test_bad_batch_sizes_are_config_errors(tmp_path, bad):
    f = tmp_path / "x.jsonl"
    f.write_text('{"prompt":"p","responses":[{"text":"a"}]}\n')
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        grpo_fast.iter_batches(f, batch_size=bad)
    with pytest.raises(ConfigError, match="max_line_bytes must be a positive integer"):
        grpo_fast.iter_batches(f, max_line_bytes=bad)
    assert issubclass(ConfigError, GrpoError)
    assert [b.num_groups for b in grpo_fast.iter_batches(f, batch_size=2**80)] == [1]


def test_huge_scores_give_their_advantages(tmp_path):
    # --any-score with scores near 1e160: the squares overflow f64 unless scaled first.
    src = tmp_path / "big.jsonl"
    unit = [1.0, 0.0, 1.0, 0.0, 0.5]
    records = [
        {"prompt": f"p{k}", "responses": [{"text": "t", "score": s * scale} for s in unit]}
        for k, scale in enumerate((1.0, 1e160, -1e160, 1e300))
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    got = {}
    for method in ("grpo", "dr_grpo", "rloo", "batch_std"):
        out = tmp_path / f"{method}.jsonl"
        r = cli("advantages", str(src), "-o", str(out), "--any-score", "--method", method, "--eps", "0")
        assert r.returncode == 0, r.stderr
        got[method] = [
            [x["advantage"] for x in rec["responses"]]
            for rec in map(json.loads, out.read_text().splitlines())
        ]
    ref = got["grpo"][0]
    assert ref[0] > 0 and ref[1] < 0
    for k, scale in enumerate((1.0, 1e160, -1e160, 1e300)):
        assert np.allclose(got["grpo"][k], np.array(ref) * np.sign(scale), rtol=1e-12)
        assert np.allclose(got["dr_grpo"][k], np.array(got["dr_grpo"][0]) * scale, rtol=1e-12)
        assert all(np.isfinite(got["rloo"][k])) and any(got["rloo"][k])
    r = cli("stats", str(src), "--any-score", "--json", "--eps", "0")
    (s,) = json.loads(r.stdout)
    assert s["score_std"] is not None and s["score_std"] > 1e299
    assert s["advantages"]["grpo"]["std"] == pytest.approx(np.std(np.concatenate([ref] * 4)), rel=1e-9)
    # Past f64 (a spread beyond 1.8e308): a clear error, not inf or NaN.
    src.write_text(
        json.dumps(
            {"prompt": "p", "responses": [{"text": "a", "score": 1.7e308}, {"text": "b", "score": -1.7e308}]}
        )
        + "\n"
    )
    r = cli("advantages", str(src), "-o", str(tmp_path / "o.jsonl"), "--any-score", "--method", "rloo")
    assert r.returncode == 2 and "overflows a 64-bit float" in r.stderr


BIG = [123456789012345678901234567890, -98765432109876543210, 2**64, 2**64 + 1, -(2**63) - 1, 10**300]


def test_integers_beyond_64_bits_round_trip(tmp_path):
    rec = {
        "prompt": "p",
        "id": BIG[0],
        "seed": BIG[1],
        "ids": BIG[2:],
        "responses": [{"text": "a", "score": 1, "tokens": [BIG[3], 7]}, {"text": "b", "score": 0}],
    }
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    (back,) = grpo_fast.iter_records(src)
    assert back == rec and all(type(x) is int for x in back["ids"])
    # Written from Python, read by Python's json: the same integers.
    out = tmp_path / "out.jsonl"
    grpo_fast.write_records(out, [back])
    assert json.loads(out.read_text()) == rec
    assert str(BIG[0]) in out.read_text()
    # Through the advantages command (Rust only) too.
    r = cli("advantages", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    written = json.loads(out.read_text())
    for resp in written["responses"]:
        del resp["advantage"]
    assert written == rec
    # NumPy integers are integers too (not floats rounded to 53 bits).
    grpo_fast.write_records(out, [{"a": np.int64(2**62 + 1), "b": np.uint64(2**64 - 1), "c": np.float32(0.5)}])
    assert out.read_text() == '{"a":4611686018427387905,"b":18446744073709551615,"c":0.5}\n'
    # A Python string that would read back as an integer is refused.
    with pytest.raises(ConfigError, match="reserved"):
        grpo_fast.write_records(tmp_path / "x.jsonl", [{"prompt": "\0grpo-fast:integer:5", "responses": []}])


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [125, 126, 127])
def test_stats_and_advantages_agree_on_deep_nesting(tmp_path, levels):
    # The record is level 1, so `levels` arrays in a field reach level levels + 1; the limit is 127.
    line = f'{{"prompt":"p","extra":{_nested(levels)},"responses":[{{"text":"a","score":1}},{{"text":"b","score":0}}]}}'
    src = tmp_path / "deep.jsonl"
    src.write_text(line + "\n")
    stats = cli("stats", str(src), "--json")
    adv = cli("advantages", str(src), "-o", str(tmp_path / "o.jsonl"))
    fits = levels + 1 <= 127
    assert (stats.returncode == 0) == (adv.returncode == 0) == fits, (stats.stderr, adv.stderr)
    if not fits:
        assert (
            "nested deeper than 127 levels" in stats.stderr and "nested deeper than 127 levels" in adv.stderr
        )


def test_writing_records_deeper_than_the_reader_reads_is_refused(tmp_path):
    deep: list = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ConfigError, match="nested deeper than 127 levels"):
        grpo_fast.write_records(
            tmp_path / "x.jsonl", [{"prompt": "p", "responses": [{"text": "a"}], "x": deep}]
        )
    assert not (tmp_path / "x.jsonl").exists()


# Keys as JSON text: spellings of one value (ints, -0, 1 vs 1.0 vs 1e0, integers past 64 bits,
# escaped strings), arrays and objects of them.
_SCALARS = [
    "0",
    "-0",
    "0.0",
    "1",
    "1.0",
    "1e0",
    "10E-1",
    "2",
    "-3",
    "0.5",
    "5e-1",
    "18446744073709551615",
    "18446744073709551616",
    "18446744073709551617",
    "1.8446744073709551616e19",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    '"a"',
    '"\\u0061"',
    '"A"',
    '"é"',
    '"\\u00e9"',
    '"1"',
    '"a\\/b"',
    '"a/b"',
    "true",
    "false",
    "null",
]
_key = st.recursive(
    st.sampled_from(_SCALARS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + " , ".join(xs) + "]"),
        st.lists(inner, max_size=3).map(
            lambda xs: "{" + ",".join(f'"k{i}": {x}' for i, x in enumerate(xs)) + "}"
        ),
    ),
    max_leaves=6,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lines=st.lists(
        st.tuples(_key, st.sampled_from(["prompt_id", "id"]), st.integers(0, 3)), min_size=1, max_size=20
    )
)
def test_both_paths_group_flat_lines_alike(tmp_path, lines):
    src = tmp_path / "flat.jsonl"
    src.write_text(
        "".join(
            f'{{"{field}": {key}, "prompt": "same", "completion": "c{i}", "score": {s / 4}}}\n'
            for i, (key, field, s) in enumerate(lines)
        )
    )
    fast = grpo_fast.read_groups(src)
    records = grpo_fast.read_groups(src, records=True)
    assert fast.ids == records.ids
    assert fast.offsets.tolist() == records.offsets.tolist()
    assert np.array_equal(fast.scores, records.scores)
    assert fast.lines.tolist() == records.lines.tolist()
    # And the groups are those of the keys' values, as Python's json reads them (1 == 1.0, -0 == 0,
    # integers exact). Objects here have their keys in one order, so equality is plain ==.
    values: list = []
    for key, _, _ in lines:
        v = json.loads(key)
        if not any(_same(v, w) for w in values):
            values.append(v)
    assert fast.num_groups == len(values)
    assert [len(r["responses"]) for r in records.records] == [
        sum(_same(json.loads(k), v) for k, _, _ in lines) for v in values
    ]


def _same(a, b) -> bool:
    # JSON values: numbers by value (bool is not a number), the rest structurally.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_stdin_rejects_go_to_the_working_folder(tmp_path):
    r = cli("stats", "-", "--on-error", "report", "--json", input="not json\n", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["rejects_file"] == "rejects.jsonl"
    assert os.path.exists(tmp_path / "rejects.jsonl")
