"""The `factual` verifier: is a short answer (a name, a date, a number) the gold one, after SQuAD-style
normalisation? Gold answers and their aliases come from the record or from a knowledge-base file."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grpo_fast import _native
from grpo_fast.errors import ConfigError, DataError, GrpoIOError
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, check_choice, register_verifier

# ---------------------------------------------------------------------------------------------------
# normalisation

# Letters NFKD does not split into a base letter and a mark.
_LETTERS = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "ı": "i",
    }
)
_ARTICLES = {"a", "an", "the"}
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|emph|operatorname)\s*\{([^{}]*)\}")
# Thousands separators inside a number (`1,000,000`, `1 000`), taken out before commas become spaces.
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3})((?:[,\u202f\u00a0\u2009]\d{3})+)(?![\d,]\d)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ORDINAL_DIGITS = re.compile(r"(\d+)(?:st|nd|rd|th)")
# Punctuation that joins words (`Jean-Paul`, `AC/DC`) splits them; marks inside a word (`U.S.`,
# `O'Brien`) are deleted, so `USA` = `U.S.A.`.
_DELETED = {".", "'", "\u2019", "\u2018", "`"}


def _strip_diacritics(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    return "".join(c for c in text if not unicodedata.combining(c))


def _canonical_number(tok: str) -> str:
    if re.match(r"-?0\d", tok):
        return tok  # leading zeros are part of a code or a name (`007`), not a quantity
    neg = tok.startswith("-")
    body = tok[1:] if neg else tok
    if "." in body:
        whole, frac = body.split(".", 1)
        frac = frac.rstrip("0")
        body = f"{int(whole)}.{frac}" if frac else str(int(whole))
    else:
        body = str(int(body))
    return "-" + body if neg and body != "0" else body


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }".replace(" ", "")


def normalize_tokens(text: str, drop_articles: bool = True) -> list[str]:
    """The tokens of an answer after normalisation: unicode NFKC, diacritics removed, case folded,
    `\\text{}` and `$` unwrapped, thousands separators and number words to digits (`twenty-one` =
    `21`, `1,000` = `1000`, `3.50` = `3.5`, `first` = `1st`), punctuation removed, articles
    (a, an, the) dropped (SQuAD's rule), whitespace collapsed."""
    # Separators first: NFKC turns a no-break space into a plain one, which separates words.
    text = _THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), str(text))
    text = unicodedata.normalize("NFKC", text)
    for _ in range(3):  # nested wrappers (`\textbf{\text{x}}`), a bounded number of times
        text = _LATEX_WRAP.sub(r"\1", text)
    text = _strip_diacritics(text).casefold().replace("$", " ").replace("\\", " ").replace("\u2212", "-")
    chars: list[str] = []
    for k, c in enumerate(text):
        if c == "." and 0 < k < len(text) - 1 and text[k - 1].isdigit() and text[k + 1].isdigit():
            chars.append(".")  # a decimal point stays
        elif c == "-" and k + 1 < len(text) and text[k + 1].isdigit() and (k == 0 or text[k - 1].isspace()):
            chars.append("-")  # a minus sign stays
        elif c in _DELETED:
            continue
        elif c.isalnum() or c.isspace():
            chars.append(c)
        else:
            chars.append(" ")
    tokens = "".join(chars).split()
    if drop_articles:
        # `the` before number words, so that a normalised answer normalises to itself ("one the
        # million"); `a` and `an` after them, since `a` before a scale word is a number (`a million`).
        tokens = [t for t in tokens if t != "the"]
    # Number words to digits (`twenty one` -> `21`, `one hundred and five` -> `105`, `2.5 million`
    # -> `2500000`, `a million` -> `1000000`, `twenty first` -> `21st`): the number-word table and
    # grammar of the math verifier (rust/math/src/words.rs), read here with ordinals and without
    # fractions.
    tokens = _native.number_words(tokens)
    if drop_articles:
        tokens = [t for t in tokens if t not in _ARTICLES]
    norm = []
    for tok in tokens:
        if _NUMBER.fullmatch(tok):
            tok = _canonical_number(tok)
        elif m := _ORDINAL_DIGITS.fullmatch(tok):
            tok = _ordinal(int(m.group(1)))
        norm.append(tok)
    return norm


def normalize_answer(text: str) -> str:
    """`normalize_tokens` joined by single spaces: what exact match compares."""
    return " ".join(normalize_tokens(text))


def _gold_tokens(text: str) -> list[str]:
    # A gold that is only articles ("The The") would normalise to nothing and match an empty answer.
    return normalize_tokens(text) or normalize_tokens(text, drop_articles=False)


def token_f1(prediction: Sequence[str], gold: Sequence[str]) -> float:
    """SQuAD's token F1: the harmonic mean of precision and recall of the shared tokens (as
    multisets); 1.0 for two empty answers, 0.0 when only one is empty."""
    if not prediction or not gold:
        return float(list(prediction) == list(gold))
    same = sum((Counter(prediction) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(prediction), same / len(gold)
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------------------------------
# extraction

_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S | re.I)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MARKER = re.compile(r"(?:final\s+answer|the\s+answer|short\s+answer|answer)\s*(?:is\s*:?|:)\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[*])")
_COPULA = re.compile(r"\s(?:is|was|are|were|'s|are called|is called|was called)\s", re.I)
_NEGATION = re.compile(r"\b(?:not|never|no|n't|neither|nor)\b|n't", re.I)
_FILLER = re.compile(
    r"^\W*(?:i hope (?:this|that) helps|hope (?:this|that) helps|let me know|feel free|good luck|happy to help)",
    re.I,
)
_MARKDOWN = re.compile(r"[*_`#>]+")


def _balanced_boxes(text: str) -> list[str]:
    """The contents of every `\\boxed{...}` with balanced braces, in order. One pass to pair the
    braces, so a response of a thousand unclosed boxes costs linear time, not quadratic."""
    match: dict[int, int] = {}
    stack: list[int] = []
    for k, c in enumerate(text):
        if c == "{":
            stack.append(k)
        elif c == "}" and stack:
            match[stack.pop()] = k
    out = []
    for m in _BOXED.finditer(text):
        start = m.end() - 1
        if start in match:
            out.append(text[start + 1 : match[start]])
    return out


def _clean(answer: str) -> str:
    answer = _MARKDOWN.sub("", answer)
    prev = None
    while prev != answer:  # quotes and a full stop in either order: `"Hamlet".`, `'Hamlet.'`
        prev = answer
        answer = answer.strip(" \t\n\"'“”‘’").rstrip(".;,!")
    return answer


@dataclass
class Extracted:
    """The answer read from a response: `text` (what is reported), `source` (where it was found),
    and `candidates` (the spans that may be compared: the text itself and, for an unmarked last
    sentence, the two sides of its verb, so "The capital of France is Paris." offers `Paris`)."""

    text: str
    source: str
    candidates: list[str]


def extract_answer(response: str) -> Extracted | None:
    """The final answer of a response, or None. After the last `</think>` (the whole response when
    that part is empty), in order: the `answer` of a response that is one JSON object (```json
    fences allowed); the last `<answer>...</answer>`; the last balanced `\\boxed{}`;
    the text after the last "final answer:" / "the answer is" / "answer:" up to the end of its
    sentence; the last non-empty line (its last sentence when it has several)."""
    if not isinstance(response, str):
        return None
    _, sep, tail = response.rpartition("</think>")
    for part in (tail, response) if sep and tail.strip() else (response,):
        found = _extract(part)
        if found is not None:
            return found
    return None


def _json_answer(text: str) -> str | None:
    """The `answer` of a response that is one JSON object (structured output), fenced or not."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").strip()
        if body[:4].lower() == "json":
            body = body[4:]
    body = body.strip()
    if not (body.startswith("{") and body.endswith("}")) or len(body) > 100_000:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = doc.get("answer") if isinstance(doc, dict) else None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def _extract(text: str) -> Extracted | None:
    from_json = _json_answer(text)
    if from_json is not None and _clean(from_json):
        ans = _clean(from_json)
        return Extracted(ans, "json", [ans])
    tags = _ANSWER_TAG.findall(text)
    if tags and tags[-1].strip():
        inner = tags[-1]
        boxes = _balanced_boxes(inner)
        ans = _clean(boxes[-1] if boxes else inner)
        return Extracted(ans, "answer_tag", [ans]) if ans else None
    boxes = _balanced_boxes(text)
    if boxes and _clean(boxes[-1]):
        ans = _clean(boxes[-1])
        return Extracted(ans, "boxed", [ans])
    markers = list(_MARKER.finditer(text))
    if markers:
        rest = text[markers[-1].end() :].split("\n", 1)[0]
        rest = _SENTENCE_END.split(rest.strip(), 1)[0] if rest.strip() else ""
        ans = _clean(rest)
        if ans:
            return Extracted(ans, "marker", [ans])
    lines = [ln for ln in (x.strip() for x in text.splitlines()) if _clean(ln)]
    while len(lines) > 1 and _FILLER.search(lines[-1]):
        lines.pop()  # a closing courtesy is not the answer
    if not lines:
        return None
    last = _SENTENCE_END.split(lines[-1])[-1]
    ans = _clean(last.lstrip("-*• "))
    if not ans:
        return None
    candidates = [ans]
    spans = _COPULA.split(" " + ans + " ")
    # "Paris is not the answer" must not offer `Paris`.
    if len(spans) >= 2 and not _NEGATION.search(ans):
        candidates += [c for c in (spans[-1].strip(), spans[0].strip()) if c]
    return Extracted(ans, "last_sentence", candidates)


# ---------------------------------------------------------------------------------------------------
# knowledge base


def _question_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    return " ".join(text.split()).rstrip(" ?.")


def _as_aliases(value: Any, file: str, line: int | None, field: str) -> list[str]:
    """A gold answer cell as a list of alias strings: a string, a number, or a list of them (a CSV
    cell may hold a JSON list or `a|b|c`)."""
    if isinstance(value, bool) or value is None:
        raise DataError(
            f"{field} must be a string, a number or a list of them, not {json.dumps(value)}",
            file=file,
            line=line,
            field=field,
        )
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple)):
        out = []
        for k, v in enumerate(value):
            out += _as_aliases(v, file, line, f"{field}[{k}]")
        return out
    raise DataError(
        f"{field} must be a string, a number or a list of them, not {type(value).__name__}",
        file=file,
        line=line,
        field=field,
    )


class KnowledgeBase:
    """Gold answers by question (normalised for case and spacing) or by id, read from JSONL, CSV or
    Parquet. Each row has `question` or `id`, `answer` (a string, a number or a list) and optional
    `aliases` (a list; in CSV a JSON list or `a|b`). A repeated key adds its aliases; a repeated key
    with a different answer is an error, as is a row without a key or an answer."""

    def __init__(
        self, path: str, key: str = "auto", answer_column: str = "answer", aliases_column: str = "aliases"
    ):
        self.path = str(path)
        self.key = check_choice(key, ("auto", "question", "id"), "kb_key")
        self.answer_column = answer_column
        self.aliases_column = aliases_column
        self.answers: dict[str, list[str]] = {}
        self._first_line: dict[str, int | None] = {}
        rows = list(self._rows())
        if not rows:
            raise DataError("the knowledge base has no rows", file=self.path)
        if self.key == "auto":
            first = rows[0][1]
            self.key = "id" if "id" in first else "question"
        for line, row in rows:
            self._add(line, row)

    def _rows(self):
        if not os.path.isfile(self.path):
            raise GrpoIOError(f"knowledge base not found: {self.path}", file=self.path)
        low = self.path.lower()
        if low.endswith((".jsonl", ".json", ".ndjson", ".jsonl.gz")):
            yield from self._jsonl()
        elif low.endswith((".csv", ".tsv")):
            yield from self._csv("\t" if low.endswith(".tsv") else ",")
        elif low.endswith(".parquet"):
            yield from self._parquet()
        else:
            raise ConfigError(
                f"knowledge base {self.path}: unknown file type (use .jsonl, .csv, .tsv or .parquet)",
                file=self.path,
            )

    def _jsonl(self):
        opener = gzip.open if self.path.lower().endswith(".gz") else open
        with opener(self.path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"invalid JSON: {exc.msg} at column {exc.colno}", file=self.path, line=line_no
                    ) from None
                if not isinstance(row, dict):
                    raise DataError(
                        f"a row must be a JSON object, not {type(row).__name__}", file=self.path, line=line_no
                    )
                yield line_no, row

    def _csv(self, delimiter: str):
        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            if not reader.fieldnames:
                raise DataError("the CSV file has no header row", file=self.path, line=1)
            for row in reader:
                extra = row.pop(None, None)
                if extra:
                    raise DataError(
                        f"{len(extra)} more cells than header columns", file=self.path, line=reader.line_num
                    )
                cells = {k: v for k, v in row.items() if v is not None and v != ""}
                aliases = cells.get(self.aliases_column)
                if aliases is not None:
                    text = aliases.strip()
                    if text.startswith("["):
                        try:
                            cells[self.aliases_column] = json.loads(text)
                        except json.JSONDecodeError as exc:
                            raise DataError(
                                f"aliases cell is not a JSON list: {exc.msg}",
                                file=self.path,
                                line=reader.line_num,
                                field=self.aliases_column,
                            ) from None
                    else:
                        cells[self.aliases_column] = [a.strip() for a in text.split("|") if a.strip()]
                yield reader.line_num, cells

    def _parquet(self):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(
                f"reading {self.path} needs pyarrow (pip install pyarrow)", file=self.path
            ) from None
        try:
            table = pq.read_table(self.path)
        except Exception as exc:
            raise GrpoIOError(f"cannot read Parquet file: {exc}", file=self.path) from None
        # Rows are numbered from 1 and reported as the line.
        for k, row in enumerate(table.to_pylist(), 1):
            yield k, {c: v for c, v in row.items() if v is not None}

    def _add(self, line: int, row: dict[str, Any]) -> None:
        keycol = self.key
        if keycol not in row:
            raise DataError(f"row has no `{keycol}`", file=self.path, line=line, field=keycol)
        raw_key = row[keycol]
        if isinstance(raw_key, bool) or not isinstance(raw_key, (str, int)) or not str(raw_key).strip():
            raise DataError(
                f"`{keycol}` must be a non-empty string" + (" or an integer" if keycol == "id" else ""),
                file=self.path,
                line=line,
                field=keycol,
            )
        key = _question_key(raw_key) if keycol == "question" else str(raw_key)
        if self.answer_column not in row:
            raise DataError(
                f"row has no `{self.answer_column}`", file=self.path, line=line, field=self.answer_column
            )
        aliases = _as_aliases(row[self.answer_column], self.path, line, self.answer_column)
        if not aliases:
            raise DataError(
                f"`{self.answer_column}` is empty", file=self.path, line=line, field=self.answer_column
            )
        if self.aliases_column in row:
            aliases += _as_aliases(row[self.aliases_column], self.path, line, self.aliases_column)
        old = self.answers.get(key)
        if old is None:
            self.answers[key] = aliases
            self._first_line[key] = line
            return
        if not {normalize_answer(a) for a in aliases} & {normalize_answer(a) for a in old}:
            raise DataError(
                f"`{keycol}` {raw_key!r} appears again with a different answer (first on line "
                f"{self._first_line[key]})",
                file=self.path,
                line=line,
                field=self.answer_column,
            )
        old += [a for a in aliases if a not in old]

    def lookup(self, key: Any) -> list[str] | None:
        if key is None or isinstance(key, bool):
            return None
        return self.answers.get(_question_key(key) if self.key == "question" else str(key))

    def __len__(self) -> int:
        return len(self.answers)


# ---------------------------------------------------------------------------------------------------
# the verifier


@register_verifier("factual")
class FactualVerifier(Verifier):
    """Scores a short factual answer against the gold answer and its aliases.

    answer_field: the record field with the gold: a string, a number or a list of aliases.
    aliases_field: an optional record field with more aliases (a list or a string).
    kb: a knowledge-base file (JSONL, CSV/TSV or Parquet) to take the gold from instead; a record
        whose question (or id) it lacks gets no verdict (score None, reason `not_in_kb`).
    kb_key: how records find their row: `question` (the record's `question_field`, else its
        prompt, compared without case and spacing), `id` (the record's `id_field`), or `auto` (`id`
        when the file has an `id` column).
    metric: `exact` (score 1 when the normalised answer equals a normalised alias) or `f1` (score
        the SQuAD token F1 against the best alias; correct when it reaches `threshold`).
    threshold: the F1 at which an answer counts as correct (metric `f1`).
    """

    name = "factual"

    def __init__(
        self,
        answer_field: str = "answer",
        aliases_field: str = "aliases",
        kb: str | None = None,
        kb_key: str = "auto",
        question_field: str = "question",
        id_field: str = "id",
        metric: str = "exact",
        threshold: float = 0.8,
    ):
        self.metric = check_choice(metric, ("exact", "f1"), "factual metric")
        if not 0.0 < float(threshold) <= 1.0:
            raise ConfigError(f"factual threshold must be in (0, 1], not {threshold!r}")
        self.threshold = float(threshold)
        self.answer_field = answer_field
        self.aliases_field = aliases_field
        self.question_field = question_field
        self.id_field = id_field
        self.kb = KnowledgeBase(kb, key=kb_key) if kb is not None else None

    def required_fields(self) -> list[str]:
        if self.kb is None:
            return [self.answer_field]
        return [self.id_field] if self.kb.key == "id" else []

    def _golds(self, item: VerifyItem) -> tuple[list[str] | None, str | None]:
        """(aliases, None) or (None, the reason there is no gold)."""
        rec = item.record if isinstance(item.record, dict) else {}
        if self.kb is not None:
            if self.kb.key == "id":
                key = rec.get(self.id_field)
            else:
                q = rec.get(self.question_field)
                key = q if isinstance(q, str) and q.strip() else item.prompt
            found = self.kb.lookup(key)
            return (found, None) if found else (None, "not_in_kb")
        if self.answer_field not in rec or rec[self.answer_field] is None:
            return None, "no_gold"
        try:
            golds = _as_aliases(rec[self.answer_field], "", None, self.answer_field)
            if self.aliases_field in rec and rec[self.aliases_field] is not None:
                golds += _as_aliases(rec[self.aliases_field], "", None, self.aliases_field)
        except DataError as exc:
            return None, exc.message
        return (golds, None) if golds else (None, "no_gold")

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        return [self._one(it) for it in items]

    def _one(self, item: VerifyItem) -> Verdict:
        golds, missing = self._golds(item)
        if golds is None:
            if missing in ("no_gold", "not_in_kb"):
                return Verdict(None, None, missing)
            return Verdict(None, None, "error", None, {"message": missing})
        # A gold of punctuation alone would equal any answer that normalises to nothing.
        gold_tokens = [(g, t) for g in golds if (t := _gold_tokens(g))]
        if not gold_tokens:
            return Verdict(
                None, None, "no_gold", None, {"message": f"gold {golds[0]!r} has no words or numbers"}
            )
        found = extract_answer(item.response)
        if found is None:
            return Verdict(0.0, False, "no_answer")
        best, best_gold = 0.0, gold_tokens[0][0]
        for cand in found.candidates:
            toks = normalize_tokens(cand)
            if not toks:
                continue
            for gold, gt in gold_tokens:
                s = float(toks == gt) if self.metric == "exact" else token_f1(toks, gt)
                if s > best:
                    best, best_gold = s, gold
            if best == 1.0:
                break
        correct = best >= self.threshold if self.metric == "f1" else best == 1.0
        details: dict[str, Any] = {"source": found.source, "gold": best_gold}
        if self.metric == "f1":
            details["f1"] = round(best, 6)
        return Verdict(best, correct, "correct" if correct else "wrong", found.text, details)
