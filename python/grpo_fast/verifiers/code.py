"""The `code` verifier: runs the program in a response against the record's tests in the sandbox
daemon (`grpo-sandboxd`) and scores the fraction of tests passed (or all-or-nothing)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any

from grpo_fast.errors import ConfigError, DataError, SandboxError
from grpo_fast.sandbox.client import Client, tests_request
from grpo_fast.sandbox.pool import Pool, parse_endpoints
from grpo_fast.sandbox.tests_format import normalize_tests
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, did_you_mean, register_verifier

# ```lang\n ... ``` with the info string captured; an unterminated last fence runs to the end.
_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([^\n`]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)

# Fence tags per language the daemon runs (the daemon's own aliases are among them).
LANGUAGE_TAGS = {
    "python": {"python", "py", "python3", "py3"},
    "cpp": {"cpp", "c++", "cxx", "cc"},
    "c": {"c"},
    "rust": {"rust", "rs"},
    "java": {"java"},
    "javascript": {"javascript", "js", "node", "nodejs"},
}


def canonical_language(language: str) -> str:
    """`"c++"` -> `"cpp"`, `"py"` -> `"python"`; a name no table knows is kept as given."""
    low = language.strip().lower()
    return next((name for name, tags in LANGUAGE_TAGS.items() if low in tags), low)


def known_language(language: str) -> str:
    """The canonical name of a language grpo-fast can run (where the daemon has its compiler),
    else a ConfigError that lists them and names the closest ("did you mean 'python'?")."""
    name = canonical_language(language)
    if name in LANGUAGE_TAGS:
        return name
    aliases = sorted({tag for tags in LANGUAGE_TAGS.values() for tag in tags})
    raise ConfigError(
        f"code verifier: unknown language {language!r}{did_you_mean(name, aliases)} "
        f"(languages: {', '.join(LANGUAGE_TAGS)}; `grpo-fast sandbox status` lists what a daemon "
        "runs)",
        field="language",
    )


def extract_code(response: str, language: str = "python", fallback: str = "none") -> str | None:
    """The last fenced code block tagged with `language` (or one of its aliases); else the last
    untagged block; else, with fallback="response", the whole response; else None."""
    tags = LANGUAGE_TAGS.get(canonical_language(language), {language})
    tagged, untagged = None, None
    for m in _FENCE.finditer(response):
        info = m.group(2).strip().split()
        tag = info[0].lower() if info else ""
        if tag in tags:
            tagged = m.group(3)
        elif not tag:
            untagged = m.group(3)
    code = tagged if tagged is not None else untagged
    if code is None and fallback == "response":
        code = response
    return code


# Strings at least this long are hashed once per batch (by identity), then stand in by their digest:
# the copies in a group share their record's test inputs and outputs, which can be megabytes.
_LONG_TEXT = 4096


def request_key(body: dict[str, Any], memo: dict[int, tuple[bytes, str]] | None = None) -> bytes | None:
    """A digest of the request as the daemon would read it, equal for two bodies exactly when
    they are the same JSON value (dict keys in any order; a tuple as a list), so two requests with
    one key are one program run against the same tests under the same limits and options. None
    for a body that is not plain JSON (such a body is sent as it is and never shared). `memo`:
    the digests of long strings already seen in this batch, kept with the strings themselves so
    that no id is reused while the memo lives."""
    h = hashlib.sha256()
    try:
        _feed(h, body, {} if memo is None else memo)
    except (TypeError, RecursionError):
        return None
    return h.digest()


def _feed(h: Any, value: Any, memo: dict[int, tuple[bytes, str]]) -> None:
    """A typed, length-prefixed encoding of a JSON value: no two values share one (hashing JSON
    text instead costs four times as much, most of it escaping long test strings)."""
    if isinstance(value, str):
        if len(value) >= _LONG_TEXT:
            seen = memo.get(id(value))
            if seen is None:
                seen = memo[id(value)] = (
                    hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest(),
                    value,
                )
            h.update(b"S")
            h.update(seen[0])
        else:
            data = value.encode("utf-8", "surrogatepass")
            h.update(b"s%d:" % len(data))
            h.update(data)
    elif isinstance(value, dict):
        h.update(b"d%d:" % len(value))
        for k in sorted(value):  # a key that is not a string (JSON would turn it into one) is TypeError
            if not isinstance(k, str):
                raise TypeError(k)
            _feed(h, k, memo)
            _feed(h, value[k], memo)
    elif isinstance(value, (list, tuple)):
        h.update(b"l%d:" % len(value))
        for x in value:
            _feed(h, x, memo)
    elif value is None or isinstance(value, (bool, int, float)):
        text = repr(value).encode()  # bool before int: the type's initial tells True from 1
        h.update(b"%s%d:" % (type(value).__name__[:1].encode(), len(text)))
        h.update(text)
    else:
        raise TypeError(type(value).__name__)


def _excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…[truncated]"


@register_verifier("code")
class CodeVerifier(Verifier):
    """Scores code responses by running them against the record's `tests` (docs/sandbox.md).

    language: the programs' language, "python", "cpp", "c", "rust", "java" or "javascript"
        (aliases: py, c++, cxx, rs, js): the fenced block extracted and how the daemon runs it
        (C, C++, Rust and Java are compiled once per response, then run per test; all but
        Python take stdin/stdout tests only). A name grpo-fast does not know is a ConfigError at
        once; a language other than Python is checked against the daemon's `GET /languages` when
        the verifier is built (a daemon runs a compiled language only where its compiler is).
    language_field: a record field naming that record's own language (mixed data sets); a
        record's language the daemon does not run gets an `error` verdict saying so.
    scoring: "fraction" (tests passed / total) or "all" (1.0 only when every test passes; the
        daemon stops a program at its first failed test, since later ones cannot change that).
    tests_field: the record field holding the tests.
    timeout_ms, memory_mb: per-test limits (the daemon clamps them to its maxima).
    compare: stdout comparison: whitespace (default), exact, tokens or float.
    fallback: "none" (a response without a code block scores 0, reason no_answer) or "response"
        (treat the whole response as the program).
    socket, tcp: where the daemon listens (default: the local socket; started on demand).
    sandbox: several daemons to spread the work over (`"unix:/a.sock,tcp:host:8787"` or a list;
        see `grpo_fast.sandbox.Pool`); default `$GRPO_SANDBOX` when set. Wins over socket/tcp.
    fresh_process_per_test: run every test in a process of its own (slower; by default the tests
        of one response run one after another in one sandboxed process, each from a fresh
        `__main__`).
    dedupe: within one `verify_batch`, send each distinct request (the same program against the
        same tests with the same options) to the daemon once and give every copy that verdict,
        with its own details dict and `"deduplicated": True` in it (the first copy has no such
        key). A group of GRPO samples often repeats a program byte for byte. Turn it off where a
        program's verdict depends on randomness, the clock or the machine and the copies should be
        independent draws (with dedupe they share one).
    """

    name = "code"

    def __init__(
        self,
        language: str = "python",
        scoring: str = "fraction",
        tests_field: str = "tests",
        timeout_ms: int | None = None,
        memory_mb: int | None = None,
        compare: str = "whitespace",
        float_tolerance: float = 1e-6,
        fallback: str = "none",
        output_chars: int = 2000,
        socket: str | None = None,
        tcp: str | None = None,
        client: Client | Pool | None = None,
        sandbox: str | Sequence[str] | None = None,
        timeout: float | None = None,
        fresh_process_per_test: bool = False,
        language_field: str = "language",
        dedupe: bool = True,
    ):
        if scoring not in ("fraction", "all"):
            raise ConfigError(f"code verifier: scoring must be 'fraction' or 'all', not {scoring!r}")
        if compare not in ("whitespace", "exact", "tokens", "float"):
            raise ConfigError(f"code verifier: unknown compare mode {compare!r}")
        if fallback not in ("none", "response"):
            raise ConfigError(f"code verifier: fallback must be 'none' or 'response', not {fallback!r}")
        if timeout_ms is None and timeout is not None:  # the CLI's shared --timeout is in seconds
            timeout_ms = int(timeout * 1000)
        self.language = known_language(language)  # at build time, not as an error verdict per item
        self.language_field = language_field
        self.scoring = scoring
        self.tests_field = tests_field
        self.timeout_ms = timeout_ms
        self.memory_mb = memory_mb
        self.compare = compare
        self.float_tolerance = float_tolerance
        self.fallback = fallback
        self.output_chars = output_chars
        self.fresh_process_per_test = fresh_process_per_test
        if not isinstance(dedupe, bool):  # a config file's "false" string would otherwise be truthy
            raise ConfigError(f"code verifier: dedupe must be true or false, not {dedupe!r}", field="dedupe")
        self.dedupe = dedupe
        self._client = client
        self._socket = socket
        self._tcp = tcp
        if sandbox is None and client is None and socket is None and tcp is None:
            sandbox = os.environ.get("GRPO_SANDBOX") or None
        # Checked now, so a typo fails when the verifier is built, not at the first batch.
        self._endpoints = parse_endpoints(sandbox) if sandbox is not None else None
        self._available: dict[str, str] | None = None  # the daemon's languages: name or alias -> name
        if self.language != "python":  # every daemon runs Python; another needs its compiler there
            self.check_language(self.language)

    def daemon_languages(self) -> dict[str, str]:
        """What the daemon runs (`GET /languages`, asked once): each name and alias -> its name."""
        if self._available is None:
            found = {}
            for lang in self.client.languages():
                for alias in [lang["name"], *lang.get("aliases", [])]:
                    found[str(alias).lower()] = lang["name"]
            self._available = found
        return self._available

    def check_language(self, language: str) -> str:
        """`language`'s canonical name when the daemon runs it, else a ConfigError that says which
        languages it does run."""
        name = known_language(language)
        available = self.daemon_languages()
        if name in available:
            return name
        runs = ", ".join(sorted(set(available.values()), key=lambda n: (n != "python", n)))
        raise ConfigError(
            f"code verifier: the sandbox daemon does not run {name} (it has no {name} compiler); "
            f"it runs: {runs}",
            field="language",
        )

    @property
    def client(self) -> Client | Pool:
        if self._client is None:
            self._client = Pool(self._endpoints) if self._endpoints else Client(self._socket, tcp=self._tcp)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _language_of(self, record: dict[str, Any]) -> tuple[str | None, str | None]:
        """The record's own language where it names one, else the verifier's; or why not."""
        own = record.get(self.language_field) if self.language_field else None
        if own is None:
            return self.language, None
        if not isinstance(own, str):
            return None, f"record field `{self.language_field}` must be a language name, not {own!r}"
        try:
            return (self.check_language(own) if canonical_language(own) != "python" else "python"), None
        except ConfigError as exc:
            return None, exc.message

    def _request(self, item: VerifyItem) -> tuple[dict | None, Verdict | None, str | None]:
        language, problem = self._language_of(item.record)
        if language is None:
            return (
                None,
                Verdict(None, None, "error", None, {"message": problem, "status": "bad_language"}),
                None,
            )
        code = extract_code(item.response, language, self.fallback)
        if code is None or not code.strip():
            return (
                None,
                Verdict(0.0, False, "no_answer", None, {"execution_output": "", "status": "no_code"}),
                None,
            )
        tests = item.record.get(self.tests_field)
        if tests is None:
            return (
                None,
                Verdict(None, None, "error", code, {"message": f"record has no `{self.tests_field}`"}),
                code,
            )
        try:
            t = normalize_tests(tests, item.record)
        except DataError as exc:
            return None, Verdict(None, None, "error", code, {"message": exc.message}), code
        body = tests_request(
            code,
            t["tests"],
            test_code=t["test_code"],
            entry_point=t["entry_point"],
            language=language,
            compare=self.compare,
            float_tolerance=self.float_tolerance,
            timeout_ms=self.timeout_ms,
            memory_mb=self.memory_mb,
            fresh_process_per_test=self.fresh_process_per_test,
        )
        if self.scoring == "all":  # no later test can change an all-or-nothing score
            body["stop_at_first_failure"] = True
        body["kind"] = "run_tests"
        return body, None, code

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        bodies: list[dict] = []  # what the daemon gets: each distinct request once (with dedupe)
        pending: list[tuple[int, int, str, bool]] = []  # (item, its body, its code, a copy)
        first: dict[bytes, int] = {}  # request key -> its body's index in `bodies`
        memo: dict[int, tuple[bytes, str]] = {}
        for i, it in enumerate(items):
            body, early, code = self._request(it)
            if early is not None:
                verdicts[i] = early
                continue
            key = request_key(body, memo) if self.dedupe else None
            sent = first.get(key) if key is not None else None
            if sent is not None:
                pending.append((i, sent, code, True))
                continue
            if key is not None:
                first[key] = len(bodies)
            pending.append((i, len(bodies), code, False))
            bodies.append(body)
        if bodies:
            # A failure of the daemon as a whole raises SandboxError: it is not a per-item verdict.
            results = self.client.map(bodies)
            if len(results) != len(bodies):  # a copy must never get another request's verdict
                raise SandboxError(f"the sandbox answered {len(results)} of {len(bodies)} requests")
            for i, sent, code, copy in pending:
                # One verdict built per item, so each has a details dict of its own.
                verdict = self._verdict(results[sent], code)
                if copy and verdict.details is not None:
                    verdict.details["deduplicated"] = True
                verdicts[i] = verdict
        return [v for v in verdicts if v is not None]

    def _verdict(self, res: dict[str, Any], code: str) -> Verdict:
        if "error" in res:  # a per-item refusal by the daemon (bad tests, ...)
            return Verdict(None, None, "error", code, {"message": res.get("message", res["error"])})
        status = res.get("status")
        total = int(res.get("total") or 0)
        passed = int(res.get("passed") or 0)
        ff = res.get("first_failure") or {}
        output = ""
        if ff:
            parts = [ff.get("stdout") or "", ff.get("stderr") or ""]
            output = _excerpt("\n".join(p for p in parts if p), self.output_chars)
        details: dict[str, Any] = {
            "execution_output": output,
            "tests_passed": passed,
            "tests_total": total,
            "status": status,
        }
        # Tests that ran out of time, and (all-or-nothing) tests never run after the first failure.
        for key, status_ in (("tests_timed_out", "timeout"), ("tests_skipped", "skipped")):
            count = sum(1 for t in res.get("tests", []) if t.get("status") == status_)
            if count:
                details[key] = count
        if ff:
            details["first_failure"] = {
                k: ff.get(k) for k in ("index", "reason", "status", "check", "expected")
            }
        if status == "sandbox_error":
            details["message"] = res.get("message")
            return Verdict(None, None, "error", code, details)
        if status == "compile_error" or total == 0:
            return Verdict(0.0, False, "wrong", code, details)
        all_passed = passed == total
        score = (1.0 if all_passed else 0.0) if self.scoring == "all" else passed / total
        if all_passed:
            reason = "correct"
        elif any(t.get("status") == "timeout" for t in res.get("tests", [])) and passed == 0:
            reason = "timeout"
        else:
            reason = "wrong"
        return Verdict(score, all_passed, reason, code, details)
