"""The `format` verifier: does a response have the expected shape? The R1 reasoning layout
(`<think>...</think>` then a final answer), valid JSON, JSON matching a JSON Schema, a full match of a
regular expression, or well-formed XML. Usually a gate or a small weight beside a correctness verifier."""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from xml.parsers import expat

from grpo_fast import _native
from grpo_fast.errors import ConfigError
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, check_choice, register_verifier

MODES = ("r1", "json", "regex", "xml")
# ```json ... ``` (or ~~~), the info string captured; the last such block is the document.
_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([^\n`]*)\n(.*?)^[ \t]*\1[ \t]*$", re.S | re.M)
_CACHE_SIZE = 1024


class _Reject(Exception):
    """A response fails the check; the message is the human-readable reason."""


class _LRU(OrderedDict):
    def get_or(self, key: str, make: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)
        return value


def _load_schema(schema: Any) -> dict[str, Any] | bool:
    """A schema given as a dict, as inline JSON text, or as the path of a JSON (or YAML) file."""
    if isinstance(schema, (dict, bool)):
        return schema
    if not isinstance(schema, str) or not schema.strip():
        raise ConfigError(f"schema must be a JSON object, JSON text or a file path, not {schema!r}")
    text = schema.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"inline schema is not JSON: {exc.msg} at line {exc.lineno} col {exc.colno}"
            ) from None
    if not os.path.isfile(text):
        raise ConfigError(f"schema file not found: {text}", file=text)
    with open(text, encoding="utf-8") as f:
        raw = f.read()
    if text.lower().endswith((".yaml", ".yml")):
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"schema file is not YAML: {exc}", file=text) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"schema file is not JSON: {exc.msg}", file=text, line=exc.lineno) from None


def _compile_schema(schema: Any) -> Any:
    """A jsonschema validator for `schema` (its draft from `$schema`, default the latest), formats
    checked (`"format": "email"`), references inside the schema only. Raises
    `jsonschema.SchemaError` for an invalid schema."""
    import jsonschema
    import referencing

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    # An empty registry: a `$ref` to another document is unresolvable rather than fetched over the
    # network (jsonschema's default still retrieves remote references, with a warning).
    return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=referencing.Registry())


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON does not have them.
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> Any:
    """The JSON document `text`, or `_Reject` with "JSON: <what> at line L col C"."""
    if not text.strip():
        raise _Reject("JSON: the response is empty")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _Reject(
            f"JSON: {exc.msg[:1].lower() + exc.msg[1:]} at line {exc.lineno} col {exc.colno}"
        ) from None
    except ValueError as exc:
        raise _Reject(f"JSON: {exc}") from None
    except RecursionError:
        raise _Reject("JSON: nested too deeply") from None


def check_xml(text: str) -> None:
    """Raise `_Reject` unless `text` is one well-formed XML document. Document type declarations are
    refused outright (as defusedxml does): they are where entity expansion ("billion laughs") and
    external entities come from, and a model's output has no use for them."""
    parser = expat.ParserCreate()

    def no_dtd(*_: Any) -> None:
        raise _Reject("XML: document type declarations (<!DOCTYPE>) are not allowed")

    def no_entity(*_: Any) -> None:
        raise _Reject("XML: entity declarations are not allowed")

    parser.StartDoctypeDeclHandler = no_dtd
    parser.EntityDeclHandler = no_entity
    parser.ExternalEntityRefHandler = lambda *_: False
    try:
        parser.Parse(text.encode("utf-8", "surrogatepass"), True)
    except expat.ExpatError as exc:
        what = expat.errors.messages.get(exc.code, str(exc))
        raise _Reject(f"XML: {what} at line {exc.lineno} col {exc.offset + 1}") from None
    except RecursionError:
        raise _Reject("XML: nested too deeply") from None


def _schema_error(exc: Any) -> str:
    path = getattr(exc, "json_path", "$")
    return f"schema: {path}: {exc.message}"


@register_verifier("format")
class FormatVerifier(Verifier):
    """Score 1.0 when the response has the format, else 0.0 with a short `reason` and, for JSON,
    schema, regex and XML failures, a readable `details["message"]` ("JSON: expecting ',' delimiter
    at line 1 col 9", "schema: $.age: 'x' is not of type 'integer'").

    mode: `r1` (reasoning in the think tags, once, at the start, then a final answer), `json`,
        `regex` or `xml`. Default: `json` when a schema is given, `regex` when a pattern is, else
        `r1`.
    think_tags: the (open, close) reasoning tags. In `r1` mode they must wrap the reasoning; in the
        other modes the text after the closing tag is what is checked (the whole response when there
        is none). None: no tags (`r1` then checks only the answer).
    require_answer, answer_source: `r1` mode: a final answer must follow the reasoning, in
        `\\boxed{}` (`boxed`) or anything the math extractor reads (`any`).
    pattern: a regular expression the text must match in full (`regex` mode); pattern_field: a
        record field holding the pattern per record (wins over `pattern`).
    schema: a JSON Schema the JSON must satisfy (a dict, inline JSON text, or a .json/.yaml file);
        schema_field: a record field holding the schema per record (a dict or JSON text; wins over
        `schema`). A record without one, when there is no `schema`, gets no verdict (`no_schema`).
    allow_fence: `json`/`xml` modes: when the text holds a fenced block (```json ... ```), check
        its last fenced block rather than the whole text (chat models fence their documents).
    """

    name = "format"
    # A well-formatted wrong answer is not correct, nor a right answer without <think> wrong: in a
    # composite, `correct` comes from the other parts.
    judges_correctness = False

    def __init__(
        self,
        mode: str | None = None,
        think_tags: tuple[str, str] | None = ("<think>", "</think>"),
        require_answer: bool = True,
        answer_source: str = "boxed",
        pattern: str | None = None,
        pattern_field: str | None = None,
        schema: Any = None,
        schema_field: str | None = None,
        allow_fence: bool = True,
    ):
        if mode is None:
            mode = (
                "json"
                if (schema is not None or schema_field)
                else "regex"
                if (pattern or pattern_field)
                else "r1"
            )
        self.mode = check_choice(mode, MODES, "format mode")
        self.answer_source = check_choice(answer_source, ("boxed", "any"), "answer_source")
        if think_tags is not None and (
            len(think_tags) != 2 or not all(isinstance(t, str) and t for t in think_tags)
        ):
            raise ConfigError(f"think_tags must be two non-empty strings or None, not {think_tags!r}")
        if self.mode == "regex" and not (pattern or pattern_field):
            raise ConfigError("format mode regex needs a pattern (--regex) or a pattern_field")
        if self.mode != "regex" and (pattern or pattern_field):
            raise ConfigError(f"a pattern is for format mode regex, not {self.mode}")
        if self.mode != "json" and (schema is not None or schema_field):
            raise ConfigError(f"a schema is for format mode json, not {self.mode}")
        self.pattern = _native.FullMatch(pattern) if pattern else None
        self.schema = _load_schema(schema) if schema is not None else None
        self._validator = None
        if self.schema is not None:
            import jsonschema

            try:
                self._validator = _compile_schema(self.schema)
            except jsonschema.SchemaError as exc:
                raise ConfigError(f"invalid JSON Schema: {exc.message} (at {exc.json_path})") from None
        self.think_tags = tuple(think_tags) if think_tags is not None else None
        self.require_answer = require_answer
        self.pattern_field = pattern_field
        self.schema_field = schema_field
        self.allow_fence = allow_fence
        self._patterns: _LRU = _LRU()
        self._validators: _LRU = _LRU()

    def required_fields(self) -> list[str]:
        fields = []
        if self.schema_field and self.schema is None:
            fields.append(self.schema_field)
        if self.pattern_field and self.pattern is None:
            fields.append(self.pattern_field)
        return fields

    # -- the checks --------------------------------------------------------------------------------

    def _r1(self, text: str) -> tuple[bool, str, str | None]:
        rest = text
        if self.think_tags:
            open_tag, close_tag = self.think_tags
            stripped = text.lstrip()
            if (
                not stripped.startswith(open_tag)
                or stripped.count(open_tag) != 1
                or stripped.count(close_tag) != 1
            ):
                return False, "no_think", None
            body, _, rest = stripped[len(open_tag) :].partition(close_tag)
            if not body.strip():
                return False, "empty_think", None
        if self.require_answer:
            found = _native.math_extract(rest, False)
            if found is None or (self.answer_source == "boxed" and found[1] != "boxed"):
                return False, "no_answer", None
            return True, "correct", found[0]
        return True, "correct", None

    def _content(self, text: str) -> str:
        """The text a content mode checks: after the reasoning, inside the last fence if allowed."""
        if self.think_tags and self.think_tags[1] in text:
            text = text.rpartition(self.think_tags[1])[2]
        if self.allow_fence and self.mode in ("json", "xml"):
            blocks = [m for m in _FENCE.finditer(text) if m.group(2).strip().lower() in ("", self.mode)]
            if blocks:
                text = blocks[-1].group(3)
        return text.strip()

    def _json(self, text: str, record: dict[str, Any]) -> Verdict:
        validator, missing = self._validator, None
        if self.schema_field:
            raw = record.get(self.schema_field)
            if raw is not None:
                try:
                    validator = self._record_validator(raw)
                except _Reject as exc:
                    return Verdict(None, None, "bad_schema", None, {"message": str(exc)})
            elif validator is None:
                missing = self.schema_field
        if missing:
            return Verdict(None, None, "no_schema", None, {"message": f"record has no `{missing}`"})
        try:
            doc = parse_json(text)
        except _Reject as exc:
            return Verdict(0.0, False, "bad_json", None, {"message": str(exc)})
        if validator is not None:
            try:
                errors = list(validator.iter_errors(doc))
            except RecursionError:
                return Verdict(
                    0.0, False, "schema_mismatch", text, {"message": "schema: $: nested too deeply"}
                )
            except Exception as exc:  # an unresolvable $ref, a bad pattern in the schema, ...
                return Verdict(None, None, "bad_schema", text, {"message": f"schema: {exc}"})
            if errors:
                import jsonschema

                best = jsonschema.exceptions.best_match(errors)
                msg = _schema_error(best)
                if len(errors) > 1:
                    msg += f" (and {len(errors) - 1} more)"
                return Verdict(0.0, False, "schema_mismatch", text, {"message": msg})
        return Verdict(1.0, True, "correct", text)

    def _record_validator(self, raw: Any) -> Any:
        key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)

        def make() -> Any:
            import jsonschema

            schema = raw
            if isinstance(raw, str):
                try:
                    schema = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise _Reject(f"record's {self.schema_field} is not JSON: {exc.msg}") from None
            try:
                return _compile_schema(schema)
            except jsonschema.SchemaError as exc:
                raise _Reject(
                    f"record's {self.schema_field} is not a valid JSON Schema: {exc.message}"
                ) from None

        return self._validators.get_or(key, make)

    def _regex(self, text: str, record: dict[str, Any]) -> Verdict:
        pattern = self.pattern
        if self.pattern_field and record.get(self.pattern_field) is not None:
            raw = record[self.pattern_field]
            if not isinstance(raw, str):
                return Verdict(
                    None,
                    None,
                    "bad_pattern",
                    None,
                    {"message": f"record's {self.pattern_field} must be a string"},
                )
            try:
                pattern = self._patterns.get_or(raw, lambda: _native.FullMatch(raw))
            except ConfigError as exc:
                return Verdict(None, None, "bad_pattern", None, {"message": f"regex {raw!r}: {exc}"})
        if pattern is None:
            return Verdict(
                None, None, "no_pattern", None, {"message": f"record has no `{self.pattern_field}`"}
            )
        if not pattern.fullmatch(text):
            return Verdict(
                0.0,
                False,
                "no_match",
                None,
                {"message": f"regex: the response does not match {pattern.pattern!r} in full"},
            )
        return Verdict(1.0, True, "correct", text)

    def _xml(self, text: str) -> Verdict:
        try:
            check_xml(text)
        except _Reject as exc:
            return Verdict(0.0, False, "bad_xml", None, {"message": str(exc)})
        return Verdict(1.0, True, "correct", None)

    def check(self, response: str, record: dict[str, Any] | None = None) -> Verdict:
        """The verdict for one response (`record` supplies per-record patterns and schemas)."""
        text = response if isinstance(response, str) else ""
        record = record if isinstance(record, dict) else {}
        if self.mode == "r1":
            ok, reason, extracted = self._r1(text)
            return Verdict(1.0 if ok else 0.0, ok, reason, extracted)
        content = self._content(text)
        if self.mode == "json":
            return self._json(content, record)
        if self.mode == "regex":
            return self._regex(content, record)
        return self._xml(content)

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        return [self.check(it.response, it.record) for it in items]
