"""The `factual` verifier: normalisation, extraction from model output, exact match and token F1, golds
from the record or a knowledge base (JSONL, CSV, Parquet), and "no verdict" for a question the KB lacks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_fast.errors import ConfigError, DataError, GrpoError
from grpo_fast.verifiers import FactualVerifier, VerifyItem, build_verifier, get_verifier
from grpo_fast.verifiers.factual import extract_answer, normalize_answer, token_f1

# (case name, text a, text b, equal after normalisation)
NORMALISATION = [
    ("case", "PARIS", "paris", True),
    ("article-the", "The Beatles", "Beatles", True),
    ("article-a", "a dolphin", "Dolphin", True),
    ("article-inside-name-kept-apart", "Lord of the Rings", "Lord of Rings", True),
    ("punctuation-abbreviation", "U.S.A.", "USA", True),
    ("punctuation-apostrophe", "O'Brien", "OBrien", True),
    ("hyphen-splits-words", "Jean-Paul Sartre", "Jean Paul Sartre", True),
    ("whitespace", "  New   York\tCity ", "New York City", True),
    ("diacritics", "José Martí", "Jose Marti", True),
    ("diacritics-letters", "Søren Kierkegaard", "Soren Kierkegaard", True),
    ("nfkc-fullwidth", "ＡＢＣ", "abc", True),
    ("nfkc-ligature", "ﬁsh", "fish", True),
    ("sharp-s-casefold", "Straße", "strasse", True),
    ("number-word-hyphen", "twenty-one", "21", True),
    ("number-word-space", "twenty one", "21", True),
    ("number-word-hundred-and", "one hundred and five", "105", True),
    ("number-word-thousand", "two thousand and twenty", "2020", True),
    ("number-scale-with-digits", "1.5 million", "1,500,000", True),
    ("number-a-million", "a million", "1000000", True),
    ("thousands-separator", "1,000,000", "1000000", True),
    ("trailing-decimal-zeros", "3.50", "3.5", True),
    ("integer-point-zero", "7.0", "7", True),
    ("ordinal-word", "the first", "1st", True),
    ("ordinal-compound", "twenty-first century", "21st century", True),
    ("units-kept", "8 legs", "8", False),
    ("decimal-point-not-dropped", "3.5", "35", False),
    ("leading-zeros-are-a-code", "007", "7", False),
    ("different-number", "twenty-one", "12", False),
    ("negative-sign-kept", "-40", "40", False),
    ("unicode-minus", "−40", "-40", True),
    ("latex-text-wrapper", "\\text{Mount Everest}", "Mount Everest", True),
    ("different-names", "George Washington", "George Bush", False),
]


@pytest.mark.parametrize(
    ("a", "b", "equal"), [c[1:] for c in NORMALISATION], ids=[c[0] for c in NORMALISATION]
)
def test_normalisation(a, b, equal):
    assert (normalize_answer(a) == normalize_answer(b)) is equal


WORDS = st.sampled_from(
    [
        "one",
        "twenty",
        "first",
        "hundred",
        "and",
        "a",
        "an",
        "the",
        "million",
        "1,000",
        "3.50",
        "-",
        "U.S.",
        "José",
        "007",
        "$",
        "\\text{x}",
        "twenty-one",
        ".",
        "0",
        "-0",
        "0.0",
        ",",
        "1st",
        "ninetieth",
        "thousand",
        "'",
        "−",
        "²",
        "½",
        "5",
        "2.5",
        "Paris",
        "of",
    ]
)
PHRASES = st.lists(WORDS, max_size=8).map(" ".join) | st.text(max_size=30)


@settings(max_examples=2000, derandomize=True, deadline=None)
@given(PHRASES)
def test_normalisation_is_idempotent_on_any_text(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once
    extract_answer(text)  # never raises


@settings(max_examples=500, derandomize=True, deadline=None)
@given(
    st.lists(WORDS, min_size=1, max_size=5).map(" ".join),
    st.lists(WORDS, min_size=1, max_size=5).map(" ".join),
)
def test_exact_match_is_symmetric(a, b):
    """Gold and answer swapped give the same verdict (boxed, so extraction takes them whole)."""
    v = FactualVerifier()
    ab = v.verify_batch(items(f"\\boxed{{{b}}}", answer=a))[0]
    ba = v.verify_batch(items(f"\\boxed{{{a}}}", answer=b))[0]
    if ab.score is not None and ba.score is not None:  # both golds have words
        assert ab.correct == ba.correct
    else:
        assert {ab.reason, ba.reason} & {"no_gold"}


def test_normalisation_is_idempotent():
    for _, a, b, _ in NORMALISATION:
        for text in (a, b):
            once = normalize_answer(text)
            assert normalize_answer(once) == once, text


@pytest.mark.parametrize(
    ("pred", "gold", "f1"),
    [
        ("Barack Obama", "Barack Obama", 1.0),
        ("Obama", "Barack Obama", 2 / 3),
        ("President Barack Obama", "Barack Obama", 0.8),
        ("George Bush", "George Washington", 0.5),
        ("", "Paris", 0.0),
        ("Paris", "London", 0.0),
    ],
)
def test_token_f1_is_squads(pred, gold, f1):
    assert token_f1(pred.lower().split(), gold.lower().split()) == pytest.approx(f1)
    # Symmetric: precision and recall swap places.
    assert token_f1(gold.lower().split(), pred.lower().split()) == pytest.approx(f1)


# (case name, response, expected extracted answer, source)
EXTRACTION = [
    (
        "boxed",
        "The capital of Australia is not Sydney. So the answer is \\boxed{Canberra}.",
        "Canberra",
        "boxed",
    ),
    ("boxed-text", "Thus $\\boxed{\\text{Jupiter}}$", "\\text{Jupiter}", "boxed"),
    ("last-box-wins", "First guess \\boxed{Lyon}, but actually \\boxed{Paris}.", "Paris", "boxed"),
    (
        "answer-tag",
        "<think>Who wrote it... Orwell.</think>\n<answer>George Orwell</answer>",
        "George Orwell",
        "answer_tag",
    ),
    (
        "final-answer-line",
        "Let me recall the novel.\nIt was published in 1949.\n\nFinal answer: George Orwell",
        "George Orwell",
        "marker",
    ),
    ("the-answer-is-sentence", "The answer is Mount Everest. It is 8,849 m tall.", "Mount Everest", "marker"),
    ("markdown-bold-marker", "**Answer:** *Leonardo da Vinci*", "Leonardo da Vinci", "marker"),
    ("answer-on-next-line", "Final Answer:\nMarie Curie", "Marie Curie", "marker"),
    (
        "after-think-only",
        "<think>Maybe it is Rome? \\boxed{Rome}</think>\nThe capital of Italy is Rome.",
        "The capital of Italy is Rome",
        "last_sentence",
    ),
    ("bare-short-answer", "Canberra", "Canberra", "last_sentence"),
    (
        "last-line-last-sentence",
        "Rivers matter.\nThe longest river is debated. It is the Nile.",
        "It is the Nile",
        "last_sentence",
    ),
    ("quoted", 'Answer: "Hamlet".', "Hamlet", "marker"),
]


@pytest.mark.parametrize(
    ("response", "text", "source"), [c[1:] for c in EXTRACTION], ids=[c[0] for c in EXTRACTION]
)
def test_extraction(response, text, source):
    found = extract_answer(response)
    assert found is not None and (found.text, found.source) == (text, source)


def test_extraction_of_nothing():
    assert extract_answer("") is None and extract_answer("   \n ") is None and extract_answer(None) is None


def test_unclosed_boxes_are_linear():
    # A degenerate policy repeating `\boxed{`: one pass pairs the braces (no rescan per box).
    found = extract_answer("\\boxed{" * 200_000 + "Paris")
    assert found is not None and found.source == "last_sentence"


def items(*responses, **record):
    return [VerifyItem("Q?", r, dict(record)) for r in responses]


# (case name, gold (the record's answer), response, correct)
EXACT = [
    ("boxed-exact", "Canberra", "The capital is \\boxed{Canberra}.", True),
    ("case-and-article", "The Nile", "Final answer: the nile", True),
    ("number-word-vs-digits", "21", "The answer is twenty-one.", True),
    ("digits-vs-number-word-gold", "twenty-one", "\\boxed{21}", True),
    (
        "alias-list",
        ["USA", "United States", "United States of America"],
        "<answer>United States</answer>",
        True,
    ),
    ("diacritics", "Antonín Dvořák", "Answer: Antonin Dvorak", True),
    ("sentence-copula-tail", "Paris", "The capital of France is Paris.", True),
    ("sentence-copula-head", "Paris", "Paris is the capital of France.", True),
    ("negated-sentence-is-not-the-answer", "Paris", "Paris is not the capital of Germany.", False),
    ("wrong-answer", "Canberra", "\\boxed{Sydney}", False),
    ("hedged-list-is-wrong", "Canberra", "The answer is Canberra or Sydney.", False),
    ("partial-name-is-not-exact", "Barack Obama", "\\boxed{Obama}", False),
    ("numeric-gold", 1969, "Apollo 11 landed in \\boxed{1969}.", True),
    ("numeric-gold-wrong", 1969, "\\boxed{1968}", False),
    ("thousands-separator", "8849", "Final answer: 8,849", True),
    ("r1-layout", "Au", "<think>Gold is aurum, so Au.</think>\n\n**Final Answer:** Au", True),
    ("ordinal", "1st", "He finished \\boxed{first}", True),
    (
        "cot-markdown-heading",
        "Pacific Ocean",
        "Let's compare the oceans by area.\n\n1. The Atlantic covers about 106 million km².\n"
        "2. The Pacific covers about 165 million km².\n\nThe Pacific is clearly larger.\n\n"
        "**Final Answer**\n\nThe Pacific Ocean",
        True,
    ),
    (
        "simpleqa-style",
        "1889",
        "The Eiffel Tower was completed in 1889, in time for the World's Fair.\n\nAnswer: 1889",
        True,
    ),
    (
        "r1-corrects-itself",
        "Ottawa",
        "<think>Toronto is the largest city... but the capital is Ottawa.</think>\n"
        "The capital of Canada is \\boxed{Ottawa}.",
        True,
    ),
    ("closing-courtesy-skipped", "Ottawa", "The capital of Canada is Ottawa.\nI hope this helps!", True),
    ("wrong-in-prose", "Ottawa", "The capital of Canada is Toronto.\n\nLet me know if you need more.", False),
]


@pytest.mark.parametrize(("gold", "response", "correct"), [c[1:] for c in EXACT], ids=[c[0] for c in EXACT])
def test_exact_match(gold, response, correct):
    v = get_verifier("factual").verify_batch(items(response, answer=gold))[0]
    assert v.correct is correct and v.score == (1.0 if correct else 0.0)
    assert v.reason == ("correct" if correct else "wrong")


def test_aliases_field_and_gold_reported():
    v = FactualVerifier().verify_batch(
        items("\\boxed{JFK}", answer="John F. Kennedy", aliases=["JFK", "Kennedy"])
    )[0]
    assert v.correct and v.details["gold"] == "JFK" and v.details["source"] == "boxed"
    other = FactualVerifier(answer_field="target", aliases_field="also")
    assert other.verify_batch(items("\\boxed{NYC}", target="New York City", also="NYC"))[0].correct


def test_f1_scoring_and_threshold():
    v = FactualVerifier(metric="f1")
    out = v.verify_batch(
        items("\\boxed{Obama}", "\\boxed{Barack Obama}", "\\boxed{George Bush}", answer="Barack Obama")
    )
    assert [o.score for o in out] == pytest.approx([2 / 3, 1.0, 0.0])
    # The default threshold 0.8 does not accept a surname alone; 0.6 does.
    assert [o.correct for o in out] == [False, True, False]
    loose = FactualVerifier(metric="f1", threshold=0.6).verify_batch(
        items("\\boxed{Obama}", answer="Barack Obama")
    )
    assert loose[0].correct and loose[0].details["f1"] == pytest.approx(2 / 3, abs=1e-6)
    # Best alias wins; the sentence fallback offers its verb's sides.
    v2 = FactualVerifier(metric="f1").verify_batch(
        items("The president at the time was Barack Obama.", answer=["Obama", "Barack Obama"])
    )[0]
    assert v2.score == 1.0 and v2.correct


def test_missing_gold_and_missing_answer():
    out = FactualVerifier().verify_batch(items("\\boxed{x}") + items("", answer="Paris"))
    assert (out[0].score, out[0].correct, out[0].reason) == (None, None, "no_gold")
    assert (out[1].score, out[1].correct, out[1].reason) == (0.0, False, "no_answer")
    bad = FactualVerifier().verify_batch(items("\\boxed{x}", answer={"not": "a string"}))[0]
    assert bad.score is None and bad.reason == "error" and "answer" in bad.details["message"]


@pytest.mark.parametrize(
    ("option", "value", "hint"), [("metric", "exactt", "'exact'"), ("kb_key", "qestion", "'question'")]
)
def test_bad_options_say_what_was_meant(tmp_path, option, value, hint):
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(ConfigError, match=f"did you mean {hint}"):
        FactualVerifier(kb=str(kb), **{option: value})
    with pytest.raises(ConfigError, match="threshold"):
        FactualVerifier(threshold=0)


# --- knowledge bases -------------------------------------------------------------------------------

KB_ROWS = [
    {"question": "What is the capital of Australia?", "answer": "Canberra"},
    {
        "question": "Who wrote Nineteen Eighty-Four?",
        "answer": "George Orwell",
        "aliases": ["Eric Arthur Blair"],
    },
    {"question": "How many legs does a spider have?", "answer": 8},
]


def kb_items():
    return [
        VerifyItem("what is the capital of australia ?", "\\boxed{Canberra}", {}),
        VerifyItem("Who wrote Nineteen Eighty-Four?", "<answer>Eric Arthur Blair</answer>", {}),
        VerifyItem("ignored", "The answer is eight.", {"question": "How many legs does a spider have?"}),
        VerifyItem("Who painted the Mona Lisa?", "\\boxed{Leonardo da Vinci}", {}),
        VerifyItem("What is the capital of Australia?", "\\boxed{Sydney}", {}),
    ]


def check_kb_verdicts(out):
    assert [o.correct for o in out] == [True, True, True, None, False]
    assert out[3].score is None and out[3].reason == "not_in_kb"


def test_kb_jsonl(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text("\n".join(json.dumps(r) for r in KB_ROWS) + "\n\n")
    check_kb_verdicts(FactualVerifier(kb=str(kb)).verify_batch(kb_items()))


def test_kb_csv_with_alias_cells(tmp_path):
    kb = tmp_path / "kb.csv"
    kb.write_text(
        "question,answer,aliases\n"
        "What is the capital of Australia?,Canberra,\n"
        'Who wrote Nineteen Eighty-Four?,George Orwell,"[""Eric Arthur Blair""]"\n'
        "How many legs does a spider have?,8,eight|VIII\n"
    )
    v = FactualVerifier(kb=str(kb))
    check_kb_verdicts(v.verify_batch(kb_items()))
    assert v.kb.lookup("How many legs does a spider have?") == ["8", "eight", "VIII"]


def test_kb_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    kb = tmp_path / "kb.parquet"
    table = pa.table(
        {
            "question": [r["question"] for r in KB_ROWS],
            "answer": [str(r["answer"]) for r in KB_ROWS],
            "aliases": [r.get("aliases", []) for r in KB_ROWS],
        }
    )
    pq.write_table(table, kb)
    check_kb_verdicts(FactualVerifier(kb=str(kb)).verify_batch(kb_items()))


def test_kb_by_id(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"id": "q1", "answer": "Canberra"}\n{"id": 7, "answer": ["Orwell", "George Orwell"]}\n')
    v = FactualVerifier(kb=str(kb))
    assert v.kb.key == "id" and v.required_fields() == ["id"]
    out = v.verify_batch(
        [
            VerifyItem("p", "\\boxed{Canberra}", {"id": "q1"}),
            VerifyItem("p", "\\boxed{Orwell}", {"id": 7}),
            VerifyItem("p", "\\boxed{x}", {"id": "q9"}),
            VerifyItem("p", "\\boxed{x}", {}),
        ]
    )
    assert [o.reason for o in out] == ["correct", "correct", "not_in_kb", "not_in_kb"]


@pytest.mark.parametrize(
    ("name", "content", "line", "field"),
    [
        ("kb.jsonl", '{"question": "a", "answer": "b"}\n{"question": "c"}\n', 2, "answer"),
        ("kb.jsonl", '{"question": "a", "answer": "b"}\n\n{"question": "c", "answer": "d"\n', 3, None),
        ("kb.jsonl", '{"question": "a", "answer": "b"}\n{"answer": "d"}\n', 2, "question"),
        ("kb.jsonl", '{"question": "a", "answer": "b"}\n{"question": "a", "answer": "z"}\n', 2, "answer"),
        ("kb.jsonl", '{"question": "a", "answer": true}\n', 1, "answer"),
        ("kb.jsonl", '{"question": "a", "answer": "b", "aliases": [1, {"x": 2}]}\n', 1, "aliases[1]"),
        ("kb.jsonl", '["question", "answer"]\n', 1, None),
        ("kb.csv", "question,answer\nq1,a1\nq2,\n", 3, "answer"),
        ("kb.csv", "question,answer,aliases\nq1,a1,[broken\n", 2, "aliases"),
        ("kb.csv", "question,answer\nq1,a1,extra\n", 2, None),
    ],
)
def test_bad_kb_names_file_line_and_field(tmp_path, name, content, line, field):
    kb = tmp_path / name
    kb.write_text(content)
    with pytest.raises(DataError) as err:
        FactualVerifier(kb=str(kb))
    assert (err.value.file, err.value.line, err.value.field) == (str(kb), line, field)


def test_kb_repeated_question_merges_aliases(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"question": "Q", "answer": "NYC"}\n{"question": "q ", "answer": ["nyc", "New York"]}\n')
    assert FactualVerifier(kb=str(kb)).kb.lookup("Q") == ["NYC", "nyc", "New York"]


def test_kb_missing_or_unknown_type(tmp_path):
    with pytest.raises(GrpoError, match="not found"):
        FactualVerifier(kb=str(tmp_path / "nope.jsonl"))
    (tmp_path / "kb.txt").write_text("x")
    with pytest.raises(ConfigError, match="unknown file type"):
        FactualVerifier(kb=str(tmp_path / "kb.txt"))


def test_through_the_registry_with_part_options(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text("\n".join(json.dumps(r) for r in KB_ROWS))
    with build_verifier("factual", part_options={"factual": {"kb": str(kb)}}, timeout=3.0) as v:
        check_kb_verdicts(v.verify_batch(kb_items()))
