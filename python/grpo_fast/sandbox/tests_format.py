"""The `tests` field of code records, in the shapes public data sets use, turned into the daemon's
/run_tests fields (`tests` and/or `test_code` + `entry_point`). docs/sandbox.md lists the shapes."""

from __future__ import annotations

import json
from typing import Any

from grpo_fast.errors import DataError


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return "\n".join(v) + ("\n" if v else "")
    return json.dumps(v) if not isinstance(v, (int, float)) else str(v)


def _call_case(fn: str, args: Any, expected: Any, kwargs: dict | None = None) -> dict:
    if isinstance(args, str):  # APPS stores call inputs as JSON text at times
        try:
            args = json.loads(args)
        except ValueError:
            args = [args]
    if not isinstance(args, list):
        args = [args]
    case = {"call": fn, "args": args, "expected": expected}
    if kwargs:
        case["kwargs"] = kwargs
    return case


def _one(t: Any, fn_name: str | None, where: str) -> dict | str:
    """One list element: a test dict (stdio or call) or an assertion string."""
    if isinstance(t, str):
        return t
    if not isinstance(t, dict):
        raise DataError(f"{where}: a test is a dict or an assertion string, not {type(t).__name__}", field=where)
    fn = t.get("call") or t.get("fn") or t.get("fn_name") or fn_name
    if fn and ("args" in t or "input" in t or "inputs" in t):
        args = t.get("args", t.get("input", t.get("inputs")))
        # Key presence, not truthiness: `"expected": null` (APPS `outputs: [null]`) means the
        # function should return None, which differs from giving no expected value at all.
        key = next((k for k in ("expected", "output", "outputs") if k in t), None)
        if key is None:
            raise DataError(f"{where}: a call test needs `expected` (or `output`)", field=where)
        return _call_case(fn, args, t[key], t.get("kwargs"))
    stdin = t.get("stdin", t.get("input"))
    out = t.get("expected_stdout", t.get("output", t.get("expected")))
    if out is None:
        raise DataError(f"{where}: a stdin/stdout test needs `output` (or `expected_stdout`)", field=where)
    return {"stdin": _text(stdin) if stdin is not None else "", "expected_stdout": _text(out)}


def normalize_tests(tests: Any, record: dict | None = None) -> dict:
    """Returns {"tests": [...], "test_code": str | None, "entry_point": str | None}.

    Accepted shapes (see docs/sandbox.md):
      [{"input": "1 2\\n", "output": "3\\n"}, ...]               stdin/stdout (also stdin/expected_stdout)
      {"inputs": [...], "outputs": [...]}                       APPS / CodeContests stdin/stdout
      {"fn_name": "f", "inputs": [[1, 2]], "outputs": [3]}      APPS call-based
      [{"call": "f", "args": [1, 2], "expected": 3}, ...]       function call
      ["assert f(1) == 2", ...]                                 MBPP test_list
      "def check(candidate): ..." or "assert ..."               test code (with record["entry_point"])
      {"test": "def check(candidate): ...", "entry_point": "f"} HumanEval
    """
    record = record or {}
    entry = record.get("entry_point")
    setup = record.get("test_setup_code") or ""
    imports = record.get("test_imports") or []
    if isinstance(tests, str):
        tests = {"test_code": tests}
    if isinstance(tests, dict):
        entry = tests.get("entry_point", entry)
        code = tests.get("test_code", tests.get("test"))
        if code is not None:
            return _assert_style([code], entry, setup, imports)
        ins, outs = tests.get("inputs"), tests.get("outputs")
        if ins is None or outs is None or len(ins) != len(outs):
            raise DataError("tests: a dict needs `inputs` and `outputs` of equal length, or `test`", field="tests")
        fn = tests.get("fn_name")
        tests = [({"fn": fn, "inputs": i, "outputs": o} if fn else {"input": i, "output": o}) for i, o in zip(ins, outs, strict=True)]
    if not isinstance(tests, list):
        raise DataError(f"tests: expected a list, dict or string, not {type(tests).__name__}", field="tests")
    cases, asserts = [], []
    for i, t in enumerate(tests):
        one = _one(t, None, f"tests[{i}]")
        (asserts if isinstance(one, str) else cases).append(one)
    out = {"tests": cases, "test_code": None, "entry_point": entry}
    if asserts:
        out.update(_assert_style(asserts, entry, setup, imports))
        out["tests"] = cases
    return out


def _assert_style(parts: list[str], entry: str | None, setup: str, imports: list[str]) -> dict:
    head = "\n".join([*imports, setup]).strip()
    code = "\n".join(p.rstrip("\n") for p in parts) + "\n"
    return {"tests": [], "test_code": (head + "\n" + code) if head else code, "entry_point": entry}
