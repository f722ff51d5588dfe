"""The `format` verifier: JSON, JSON Schema (per run and per record), regex full match, XML well-formedness
(no DTDs, so no entity expansion), and the R1 reasoning layout, each failure with a readable message."""

from __future__ import annotations

import json
import time

import pytest

from grpo_fast.errors import ConfigError
from grpo_fast.verifiers import FormatVerifier, VerifyItem, build_verifier

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


def check(v: FormatVerifier, response: str, **record):
    return v.verify_batch([VerifyItem("p", response, dict(record))])[0]


# (case name, response, reason, message or None)
JSON_CASES = [
    ("object", '{"name": "Ada", "age": 36}', "correct", None),
    ("array", "[1, 2, 3]", "correct", None),
    ("surrounding-whitespace", '\n  {"a": 1}\n', "correct", None),
    (
        "fenced-with-prose",
        'Here is the record:\n```json\n{"name": "Ada"}\n```\nAnything else?',
        "correct",
        None,
    ),
    ("untagged-fence", '```\n{"a": 1}\n```', "correct", None),
    (
        "last-fence-counts",
        '```json\n{"a": 1}\n```\nFixed:\n```json\n{"a": 1,}\n```',
        "bad_json",
        None,  # the wording of a trailing-comma error depends on the Python version
    ),
    ("after-reasoning", '<think>The user wants JSON.</think>\n{"ok": true}', "correct", None),
    ("missing-comma", '{"a": 1 "b": 2}', "bad_json", "JSON: expecting ',' delimiter at line 1 col 9"),
    (
        "single-quotes",
        "{'a': 1}",
        "bad_json",
        "JSON: expecting property name enclosed in double quotes at line 1 col 2",
    ),
    ("prose-around-unfenced", 'Sure! {"a": 1}', "bad_json", "JSON: expecting value at line 1 col 1"),
    ("trailing-text", '{"a": 1} Hope this helps', "bad_json", "JSON: extra data at line 1 col 10"),
    ("nan-is-not-json", '{"x": NaN}', "bad_json", "JSON: NaN is not valid JSON"),
    ("empty", "   ", "bad_json", "JSON: the response is empty"),
    ("truncated", '{"name": "Ada", "tags": ["a", "b"', "bad_json", None),
    ("deeply-nested", "[" * 50_000 + "]" * 50_000, "bad_json", "JSON: nested too deeply"),
]


@pytest.mark.parametrize(
    ("response", "reason", "message"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES]
)
def test_json(response, reason, message):
    v = check(FormatVerifier(mode="json"), response)
    assert (
        v.reason == reason
        and v.score == (1.0 if reason == "correct" else 0.0)
        and v.correct is (reason == "correct")
    )
    if message:
        assert v.details["message"] == message
    elif reason != "correct":
        assert v.details["message"].startswith("JSON: ")


def test_fence_can_be_refused():
    v = FormatVerifier(mode="json", allow_fence=False)
    assert check(v, '```json\n{"a": 1}\n```').reason == "bad_json"
    assert check(v, '{"a": 1}').correct


SCHEMA_CASES = [
    ("valid", '{"name": "Ada", "age": 36}', "correct", None),
    (
        "valid-all-fields",
        '{"name": "Ada", "age": 36, "email": "ada@example.org", "tags": ["math"]}',
        "correct",
        None,
    ),
    (
        "wrong-type",
        '{"name": "Ada", "age": "x"}',
        "schema_mismatch",
        "schema: $.age: 'x' is not of type 'integer'",
    ),
    ("missing-required", '{"name": "Ada"}', "schema_mismatch", "schema: $: 'age' is a required property"),
    (
        "below-minimum",
        '{"name": "Ada", "age": -1}',
        "schema_mismatch",
        "schema: $.age: -1 is less than the minimum of 0",
    ),
    (
        "nested-item",
        '{"name": "Ada", "age": 3, "tags": ["ok", 5]}',
        "schema_mismatch",
        "schema: $.tags[1]: 5 is not of type 'string'",
    ),
    ("extra-property", '{"name": "Ada", "age": 3, "x": 1}', "schema_mismatch", None),
    (
        "format-checked",
        '{"name": "Ada", "age": 3, "email": "not-an-email"}',
        "schema_mismatch",
        "schema: $.email: 'not-an-email' is not a 'email'",
    ),
    ("several-errors-counted", '{"age": "x"}', "schema_mismatch", None),
    ("not-json-at-all", "name: Ada", "bad_json", None),
]


@pytest.mark.parametrize(
    ("response", "reason", "message"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_schema(response, reason, message):
    v = check(FormatVerifier(schema=PERSON), response)
    assert v.reason == reason and v.correct is (reason == "correct")
    if message:
        assert v.details["message"] == message


def test_schema_sources(tmp_path):
    path = tmp_path / "person.schema.json"
    path.write_text(json.dumps(PERSON))
    yml = tmp_path / "person.schema.yaml"
    yml.write_text("type: object\nrequired: [name]\n")
    for schema in (PERSON, json.dumps(PERSON), str(path)):
        assert FormatVerifier(schema=schema).mode == "json"
        assert check(FormatVerifier(schema=schema), '{"name": "A", "age": 1}').correct
    assert not check(FormatVerifier(schema=str(yml)), "{}").correct
    with pytest.raises(ConfigError, match="not found"):
        FormatVerifier(schema=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="invalid JSON Schema"):
        FormatVerifier(schema={"type": "no-such-type"})
    with pytest.raises(ConfigError, match="not JSON"):
        FormatVerifier(schema="{broken")


def test_remote_references_are_not_fetched(monkeypatch):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    v = check(FormatVerifier(schema={"$ref": "https://example.org/person.json"}), '{"a": 1}')
    assert (v.score, v.reason) == (
        None,
        "bad_schema",
    ) and "Unresolvable: https://example.org/person.json" in (v.details["message"])
    # References inside the schema resolve.
    local = {
        "$defs": {"pos": {"type": "integer", "minimum": 0}},
        "properties": {"n": {"$ref": "#/$defs/pos"}},
    }
    assert check(FormatVerifier(schema=local), '{"n": -1}').details["message"] == (
        "schema: $.n: -1 is less than the minimum of 0"
    )


def test_schema_per_record():
    v = FormatVerifier(schema_field="schema")
    assert v.mode == "json" and v.required_fields() == ["schema"]
    int_list = {"type": "array", "items": {"type": "integer"}}
    out = v.verify_batch(
        [
            VerifyItem("p", "[1, 2]", {"schema": int_list}),
            VerifyItem("p", '["a"]', {"schema": json.dumps(int_list)}),
            VerifyItem("p", '{"name": "A", "age": 1}', {"schema": PERSON}),
            VerifyItem("p", "[1]", {}),
            VerifyItem("p", "[1]", {"schema": {"type": 12}}),
            VerifyItem("p", "[1]", {"schema": "{nope"}),
        ]
    )
    assert [o.reason for o in out] == [
        "correct",
        "schema_mismatch",
        "correct",
        "no_schema",
        "bad_schema",
        "bad_schema",
    ]
    # No verdict (not a silent 0) when the schema itself is missing or broken.
    assert [o.score for o in out[3:]] == [None, None, None]
    # A run schema covers records without one of their own.
    both = FormatVerifier(schema=PERSON, schema_field="schema")
    assert both.required_fields() == []
    assert check(both, '{"name": "A", "age": 1}').correct and check(both, "[1]", schema=int_list).correct


REGEX_CASES = [
    ("email", "ada.lovelace@example.org", True),
    ("email-trailing-newline", "ada@example.org\n", True),
    ("email-after-reasoning", "<think>Format as an address.</think>\nada@example.org", True),
    ("email-in-a-sentence", "You can reach her at ada@example.org.", False),
    ("two-emails", "ada@example.org bob@example.org", False),
    ("no-tld", "ada@localhost", False),
]


@pytest.mark.parametrize(("response", "ok"), [c[1:] for c in REGEX_CASES], ids=[c[0] for c in REGEX_CASES])
def test_regex_full_match(response, ok):
    v = check(FormatVerifier(pattern=EMAIL), response)
    assert v.correct is ok and v.reason == ("correct" if ok else "no_match")
    if not ok:
        assert v.details["message"].startswith("regex: the response does not match")


def test_regex_per_record_and_errors():
    v = FormatVerifier(pattern_field="pattern")
    assert v.mode == "regex"
    out = v.verify_batch(
        [
            VerifyItem("p", "2024-05-01", {"pattern": r"\d{4}-\d{2}-\d{2}"}),
            VerifyItem("p", "May 1st", {"pattern": r"\d{4}-\d{2}-\d{2}"}),
            VerifyItem("p", "x", {"pattern": "("}),
            VerifyItem("p", "x", {}),
        ]
    )
    assert [o.reason for o in out] == ["correct", "no_match", "bad_pattern", "no_pattern"]
    assert out[2].score is None and out[3].score is None
    with pytest.raises(ConfigError, match="bad format pattern"):
        FormatVerifier(pattern="(")
    with pytest.raises(ConfigError, match="needs a pattern"):
        FormatVerifier(mode="regex")


@pytest.mark.parametrize("pattern", [r"(a+)+", r"(a|a)*", r"(a|aa)+", r"(\w+\s?)+"])
def test_regex_cannot_be_made_to_backtrack(pattern):
    """Patterns that send a backtracking engine (Python's `re`) into exponential time on a near miss
    (`(a+)+` on 40 a's then a b: about 2^40 steps) are decided in one linear pass."""
    v = FormatVerifier(pattern=pattern)
    near_miss = "a" * 40 + "!"
    out = v.verify_batch([VerifyItem("p", near_miss, {}), VerifyItem("p", "a" * 40, {})])
    assert [o.reason for o in out] == ["no_match", "correct"]


def test_regex_without_a_linear_time_form_is_refused_up_front():
    for pattern, what in [(r"(?=\d)\w+", "look-around"), (r"(a)\1", "backreferences")]:
        with pytest.raises(ConfigError, match="linear-time engine") as info:
            FormatVerifier(pattern=pattern)
        assert pattern in str(info.value) and what in str(info.value)


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<lolz>&lol9;</lolz>"
)
XML_CASES = [
    ("well-formed", '<?xml version="1.0"?>\n<order id="7"><item qty="2">pen</item></order>', "correct", None),
    ("self-closing-root", "<done/>", "correct", None),
    ("fenced", "Here you go:\n```xml\n<a><b>1</b></a>\n```", "correct", None),
    ("predefined-entities-fine", "<a>&lt;b&gt; &amp; &#169;</a>", "correct", None),
    ("mismatched-tag", "<a><b></a>", "bad_xml", "XML: mismatched tag at line 1 col 9"),
    ("unclosed", "<a><b></b>", "bad_xml", None),
    ("two-roots", "<a/><b/>", "bad_xml", "XML: junk after document element at line 1 col 5"),
    ("plain-text", "just words", "bad_xml", "XML: syntax error at line 1 col 1"),
    ("undefined-entity", "<a>&nbsp;</a>", "bad_xml", "XML: undefined entity at line 1 col 4"),
    (
        "billion-laughs",
        BILLION_LAUGHS,
        "bad_xml",
        "XML: document type declarations (<!DOCTYPE>) are not allowed",
    ),
    (
        "external-entity",
        '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
        "bad_xml",
        "XML: document type declarations (<!DOCTYPE>) are not allowed",
    ),
]


@pytest.mark.parametrize(
    ("response", "reason", "message"), [c[1:] for c in XML_CASES], ids=[c[0] for c in XML_CASES]
)
def test_xml(response, reason, message):
    start = time.perf_counter()
    v = check(FormatVerifier(mode="xml"), response)
    assert time.perf_counter() - start < 5  # refused before any expansion (a bound, not a timing)
    assert v.reason == reason and v.correct is (reason == "correct")
    if message:
        assert v.details["message"] == message


R1 = [
    ("layout", "<think>2 + 2 = 4</think>\nSo \\boxed{4}.", "correct"),
    ("leading-space", "  <think>x</think> \\boxed{1}", "correct"),
    ("no-think", "So \\boxed{4}.", "no_think"),
    ("empty-think", "<think>  </think> \\boxed{4}", "empty_think"),
    ("two-thinks", "<think>a</think><think>b</think> \\boxed{4}", "no_think"),
    ("unclosed-think", "<think>I keep thinking \\boxed{4}", "no_think"),
    ("no-box", "<think>a</think> The answer is 4.", "no_answer"),
]


@pytest.mark.parametrize(("response", "reason"), [c[1:] for c in R1], ids=[c[0] for c in R1])
def test_r1_layout_as_before(response, reason):
    assert check(FormatVerifier(), response).reason == reason
    assert FormatVerifier().mode == "r1"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "jsn"}, "did you mean 'json'"),
        ({"mode": "xml", "pattern": "x"}, "pattern is for format mode regex"),
        ({"mode": "regex", "pattern": "x", "schema": {}}, "schema is for format mode json"),
        ({"answer_source": "boxd"}, "did you mean 'boxed'"),
        ({"think_tags": ("<think>",)}, "think_tags"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FormatVerifier(**kwargs)


def test_cli_flags_reach_the_format_verifier(tmp_path):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(PERSON))
    with build_verifier("format", part_options={"format": {"schema": str(schema)}}) as v:
        assert (
            v.verify_batch([VerifyItem("p", '{"name": "A", "age": "1"}', {})])[0].reason == "schema_mismatch"
        )
    with pytest.raises(ConfigError, match="options of the format verifier"):
        build_verifier("math", part_options={"format": {"pattern": EMAIL}})
