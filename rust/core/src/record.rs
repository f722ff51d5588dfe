//! Rollout records and their validation.
//!
//! Two shapes are accepted, one JSON object per line:
//! - grouped: `{"prompt": str, "responses": [{"text": str, "score"?: num, "correct"?: bool}], ...}`
//! - flat: one completion per line, `{"prompt": str, "completion"|"response"|"text": str,
//!   "score"|"reward"?: num, "prompt_id"|"id"?: any, ...}`, grouped later by a key.
//!
//! Parsing has a fast path (`skim`: validating, unknown fields skipped, nothing built) for the columnar readers and
//! a `Value` path that keeps every field for round trips; when the fast path fails, the `Value`
//! path runs to name the exact field and problem.
use serde_json::{Map, Value};

use crate::batch::GroupColumns;
use crate::error::FieldError;
use crate::integers;
use crate::skim::{self, SkimmedLine, SkimmedResponse, MAX_NESTING};

/// What the caller allows for scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
}

impl Default for ScoreRange {
    fn default() -> Self {
        ScoreRange { min: 0.0, max: 1.0 }
    }
}

/// The per-response numbers the core works on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseStat {
    /// NaN when the response has no score yet (unverified, or `null`).
    pub score: f64,
    /// 1 correct, 0 incorrect, -1 unknown.
    pub correct: i8,
    /// Length of the response text in bytes.
    pub text_bytes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    pub prompt: String,
    /// Raw JSON of `id` when present (so `7` and `"7"` stay distinct).
    pub id: Option<String>,
    pub responses: Vec<ResponseStat>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlatView {
    /// The group key: the canonical JSON text of the grouping field (see `group_key_text`).
    pub key: String,
    /// The field the key came from; None when the prompt text is the key.
    pub key_field: Option<String>,
    pub prompt: String,
    pub response: ResponseStat,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LineView {
    Group(GroupView),
    Flat(FlatView),
}

/// Options that decide what a valid record is.
#[derive(Debug, Clone, Default)]
pub struct RecordRules {
    /// None: any finite score is accepted.
    pub score_range: Option<ScoreRange>,
    /// Field used to group flat records; default `prompt_id`, then `id`, then `prompt`.
    pub group_key: Option<String>,
}

const FLAT_TEXT_FIELDS: [&str; 3] = ["completion", "response", "text"];
const FLAT_SCORE_FIELDS: [&str; 2] = ["score", "reward"];

/// Parses one line into the numbers the core needs, skipping fields it does not use.
pub fn parse_view(line: &[u8], rules: &RecordRules) -> Result<LineView, FieldError> {
    if rules.group_key.is_none() {
        if let Ok(skimmed) = skim::skim_line(line) {
            if let Some(view) = skimmed_to_view(skimmed, rules)? {
                return Ok(view);
            }
        }
    }
    // Exact path: full parse, which also produces the precise error.
    let value = parse_value(line)?;
    view_of_value(&value, line, rules)
}

/// The one definition of a group key (and of the `ids` column): the canonical JSON text of the
/// raw value (`skim::canonical_value`): strings by their decoded text, numbers by their exact
/// value (`1`, `1.0` and `1e0` are one key, `-0` is `0`, integers beyond 64 bits keep every
/// digit), arrays and objects member by member in order. Both paths derive keys from the raw
/// bytes with this function, so they group alike whatever `serde_json` would round.
pub fn group_key_text(raw: &[u8]) -> String {
    group_key_cow(raw).into_owned()
}

/// `group_key_text`, borrowing the common cases (a string without escapes, or an integer other
/// than `-0`, is already canonical).
fn group_key_cow(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    let simple_string =
        raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' && !raw.contains(&b'\\');
    let simple_int = !raw.is_empty()
        && raw != b"-0"
        && raw
            .iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 0 && *c == b'-' && raw.len() > 1));
    if simple_string || simple_int {
        if let Ok(s) = std::str::from_utf8(raw) {
            return s.into();
        }
    }
    match skim::canonical_value(raw) {
        Some(s) => s.into(),
        None => String::from_utf8_lossy(raw),
    }
}

/// What `parse_into` did with a line.
#[derive(Debug)]
pub enum Parsed {
    /// A grouped record, already appended to the columns.
    Pushed,
    /// A record for the caller to place (flat records, and groups from the exact path).
    View(LineView),
}

/// Like `parse_view`, but a grouped record read by the fast path goes straight into `cols`
/// (line number `line`) without intermediate allocations. `scratch` is reused across calls.
pub fn parse_into(
    line: &[u8],
    rules: &RecordRules,
    cols: &mut GroupColumns,
    line_no: u64,
    scratch: &mut Vec<SkimmedResponse>,
) -> Result<Parsed, FieldError> {
    if rules.group_key.is_none() {
        if let Ok(skimmed) = skim::skim_line_with(line, std::mem::take(scratch)) {
            return finish_skimmed(skimmed, line, rules, cols, line_no, scratch);
        }
    }
    exact(line, rules)
}

/// `parse_into` for the line at the start of `data`, which may hold further lines: the skimmer
/// finds where the line ends, so it needs no separate scan for the newline. Returns the result
/// and the line's length including its `\n`; None when the skimmer cannot read the line (split
/// it off and use `parse_into`). A line longer than `max_line` bytes is an error (nothing is
/// added to `cols`).
pub fn parse_into_prefix(
    data: &[u8],
    rules: &RecordRules,
    cols: &mut GroupColumns,
    line_no: u64,
    scratch: &mut Vec<SkimmedResponse>,
    max_line: usize,
) -> Option<(Result<Parsed, FieldError>, usize)> {
    if rules.group_key.is_some() {
        return None;
    }
    let (mut skimmed, end) = skim::skim_prefix_with(data, std::mem::take(scratch)).ok()?;
    let line = strip_eol(&data[..end]);
    if line.len() > max_line {
        if let Some(mut list) = skimmed.responses.take() {
            list.clear();
            *scratch = list;
        }
        return Some((Err(line_too_long(line.len() as u64, max_line)), end));
    }
    Some((
        finish_skimmed(skimmed, line, rules, cols, line_no, scratch),
        end,
    ))
}

/// The error for a line over the length limit.
pub fn line_too_long(len: u64, max_line: usize) -> FieldError {
    FieldError::new(
        "",
        format!(
            "line is {len} bytes long, over the limit of {max_line} bytes (raise it with \
             --max-line-bytes / max_line_bytes=)"
        ),
    )
}

/// A line without its `\n` and one `\r` before it.
pub fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn finish_skimmed(
    mut skimmed: SkimmedLine,
    line: &[u8],
    rules: &RecordRules,
    cols: &mut GroupColumns,
    line_no: u64,
    scratch: &mut Vec<SkimmedResponse>,
) -> Result<Parsed, FieldError> {
    if skimmed.responses.is_some() {
        let pushed = skimmed_into(&skimmed, rules, cols, line_no);
        if let Some(mut list) = skimmed.responses.take() {
            list.clear();
            *scratch = list;
        }
        if pushed? {
            return Ok(Parsed::Pushed);
        }
    } else if let Some(view) = skimmed_to_view(skimmed, rules)? {
        return Ok(Parsed::View(view));
    }
    exact(line, rules)
}

/// The exact path: full parse, which also produces the precise error.
fn exact(line: &[u8], rules: &RecordRules) -> Result<Parsed, FieldError> {
    let value = parse_value(line)?;
    view_of_value(&value, line, rules).map(Parsed::View)
}

/// The grouped-record half of `skimmed_to_view`, writing into `cols`. `Ok(false)`: undecided
/// (nothing was added); on an error nothing was added either.
fn skimmed_into(
    sk: &SkimmedLine,
    rules: &RecordRules,
    cols: &mut GroupColumns,
    line_no: u64,
) -> Result<bool, FieldError> {
    let Some(responses) = sk.responses.as_ref() else {
        return Ok(false);
    };
    let Some(prompt) = sk.prompt else {
        return Err(FieldError::new("prompt", "missing required field"));
    };
    if responses.is_empty() {
        return Err(empty_group());
    }
    let mark = cols.num_responses();
    for (i, r) in responses.iter().enumerate() {
        let stat = r
            .text_len
            .ok_or_else(|| {
                FieldError::new(format!("responses[{i}].text"), "missing required field")
            })
            .and_then(|text_bytes| {
                Ok(ResponseStat {
                    score: check_score(r.score, rules, || format!("responses[{i}].score"))?,
                    correct: correct_code(r.correct),
                    text_bytes: text_bytes.min(u32::MAX as usize) as u32,
                })
            });
        match stat {
            Ok(stat) => cols.push_response(stat),
            Err(e) => {
                cols.truncate_responses(mark);
                return Err(e);
            }
        }
    }
    let id = sk.id.map(group_key_cow);
    if prompt.escaped {
        let Some(decoded) = prompt.decode() else {
            cols.truncate_responses(mark);
            return Ok(false);
        };
        cols.end_group(&decoded, id.as_deref(), line_no);
    } else {
        cols.end_group(prompt.as_str(), id.as_deref(), line_no);
    }
    Ok(true)
}

/// `Ok(None)`: the fast path cannot decide (shape is unusual); fall back to the Value path.
fn skimmed_to_view(sk: SkimmedLine, rules: &RecordRules) -> Result<Option<LineView>, FieldError> {
    if let Some(responses) = sk.responses {
        let Some(prompt) = sk.prompt else {
            return Err(FieldError::new("prompt", "missing required field"));
        };
        if responses.is_empty() {
            return Err(empty_group());
        }
        let mut stats = Vec::with_capacity(responses.len());
        for (i, r) in responses.into_iter().enumerate() {
            let text_bytes = r.text_len.ok_or_else(|| {
                FieldError::new(format!("responses[{i}].text"), "missing required field")
            })?;
            let score = check_score(r.score, rules, || format!("responses[{i}].score"))?;
            stats.push(ResponseStat {
                score,
                correct: correct_code(r.correct),
                text_bytes: text_bytes.min(u32::MAX as usize) as u32,
            });
        }
        let Some(prompt) = prompt.decode() else {
            return Ok(None);
        };
        return Ok(Some(LineView::Group(GroupView {
            prompt,
            id: sk.id.map(group_key_text),
            responses: stats,
        })));
    }
    // Flat records: ambiguous or incomplete ones get their error from the Value path.
    let texts = [sk.completion, sk.response, sk.text];
    if texts.iter().filter(|t| t.is_some()).count() != 1 || (sk.has_score_key && sk.has_reward_key)
    {
        return Ok(None);
    }
    let Some(prompt) = sk.prompt.and_then(|p| p.decode()) else {
        return Ok(None);
    };
    let text_len = texts.iter().find_map(|t| *t).unwrap_or(0);
    let (score_field, score) = if sk.has_reward_key {
        ("reward", sk.reward)
    } else {
        ("score", sk.score)
    };
    let score = check_score(score, rules, || score_field.to_string())?;
    let (key, key_field) = match (sk.prompt_id, sk.id) {
        (Some(k), _) => (group_key_text(k), Some("prompt_id")),
        (None, Some(k)) => (group_key_text(k), Some("id")),
        (None, None) => (Value::String(prompt.clone()).to_string(), None),
    };
    Ok(Some(LineView::Flat(FlatView {
        key,
        key_field: key_field.map(str::to_string),
        prompt,
        response: ResponseStat {
            score,
            correct: correct_code(sk.correct),
            text_bytes: text_len.min(u32::MAX as usize) as u32,
        },
    })))
}

fn empty_group() -> FieldError {
    FieldError::new(
        "responses",
        "empty group: a record needs at least one response",
    )
}

fn correct_code(c: Option<bool>) -> i8 {
    match c {
        Some(true) => 1,
        Some(false) => 0,
        None => -1,
    }
}

fn check_score(
    score: Option<f64>,
    rules: &RecordRules,
    field: impl Fn() -> String,
) -> Result<f64, FieldError> {
    let Some(s) = score else {
        return Ok(f64::NAN);
    };
    if !s.is_finite() {
        return Err(FieldError::new(
            field(),
            format!("score must be finite, got {s}"),
        ));
    }
    if let Some(range) = rules.score_range {
        if s < range.min || s > range.max {
            return Err(FieldError::new(
                field(),
                format!(
                    "score {s} is outside [{}, {}] (set a wider score range if this is intended)",
                    range.min, range.max
                ),
            ));
        }
    }
    Ok(s)
}

/// Parses a line as JSON, with messages that say what is wrong in words.
pub fn parse_value(line: &[u8]) -> Result<Value, FieldError> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Err(FieldError::new(
                "",
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            ))
        }
    };
    if integers::may_need_exact(line) {
        if let Some(v) = integers::parse_exact(line)? {
            return Ok(v);
        }
    }
    serde_json::from_str::<Value>(text).map_err(|e| json_error(text, &e))
}

fn json_error(text: &str, e: &serde_json::Error) -> FieldError {
    let col = e.column();
    // serde_json points just past the offending token; look around it for the tokens that
    // Python's json writes for non-finite floats, which JSON does not allow.
    let start = col.saturating_sub(10);
    let window = text
        .get(start..(col + 10).min(text.len()))
        .unwrap_or_default();
    if ["NaN", "Infinity"].iter().any(|t| window.contains(t)) {
        return FieldError::new(
            "",
            format!("invalid JSON at column {col}: NaN/Infinity are not valid JSON numbers (scores must be finite)"),
        );
    }
    if e.to_string().starts_with("recursion limit exceeded") {
        return FieldError::new(
            "",
            format!(
                "arrays and objects nested deeper than {MAX_NESTING} levels at column {col} \
                 (the limit; the record itself is level 1)"
            ),
        );
    }
    let what = match e.classify() {
        serde_json::error::Category::Eof => "truncated JSON (line ends early)".to_string(),
        _ => "invalid JSON".to_string(),
    };
    let msg = e.to_string();
    let detail = msg.split(" at line ").next().unwrap_or(&msg);
    FieldError::new("", format!("{what} at column {col}: {detail}"))
}

pub fn type_name(v: &Value) -> &'static str {
    if integers::as_big_int(v).is_some() {
        return "number";
    }
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(field: impl Into<String>, what: &str, got: &Value) -> FieldError {
    FieldError::new(field, format!("expected {what}, got {}", type_name(got)))
}

fn get_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<&'a str>, FieldError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(expected(path, "string", other)),
    }
}

fn get_score(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
    rules: &RecordRules,
) -> Result<f64, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(f64::NAN),
        Some(Value::Number(n)) => check_score(n.as_f64(), rules, || path.to_string()),
        Some(other) => match integers::as_big_int(other) {
            // Beyond 64 bits, but a score all the same (the range check decides).
            Some(digits) => check_score(digits.parse().ok(), rules, || path.to_string()),
            None => Err(expected(path, "number", other)),
        },
    }
}

fn get_correct(obj: &Map<String, Value>, path: &str) -> Result<i8, FieldError> {
    match obj.get("correct") {
        None | Some(Value::Null) => Ok(-1),
        Some(Value::Bool(b)) => Ok(i8::from(*b)),
        Some(other) => Err(expected(path, "boolean", other)),
    }
}

/// The group key of a top-level field of the record on `line` (parsed as `value`).
fn key_of(value: &Map<String, Value>, line: &[u8], field: &str) -> Option<String> {
    let v = value.get(field)?;
    // Strings and integers are exact in the value: their canonical text needs no second look at
    // the line. Floats (their spelling decides the exact value) and containers (duplicate keys)
    // are read from the raw text, as the fast path reads them.
    let exact = match v {
        Value::String(_) => Some(match integers::as_big_int(v) {
            Some(digits) => digits.to_string(),
            None => v.to_string(),
        }),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Bool(_) | Value::Null => Some(v.to_string()),
        _ => None,
    };
    if exact.is_some() {
        return exact;
    }
    Some(match skim::top_level_member(line, field) {
        Some(raw) => group_key_text(raw),
        // Not reached for a line serde_json read; the value's own text is the next best.
        None => v.to_string(),
    })
}

/// Validates a parsed record (`value`, read from `line`) and extracts its numbers; errors name
/// the field path. Keys and ids come from the raw line, as in the fast path.
pub fn view_of_value(
    value: &Value,
    line: &[u8],
    rules: &RecordRules,
) -> Result<LineView, FieldError> {
    let obj = match value {
        Value::Object(o) => o,
        other => return Err(expected("", "a JSON object", other)),
    };
    if let Some(responses) = obj.get("responses") {
        let prompt = get_str(obj, "prompt", "prompt")?
            .ok_or_else(|| FieldError::new("prompt", "missing required field"))?;
        let list = match responses {
            Value::Array(a) => a,
            other => return Err(expected("responses", "array", other)),
        };
        if list.is_empty() {
            return Err(empty_group());
        }
        let mut stats = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let r = match r {
                Value::Object(o) => o,
                other => return Err(expected(format!("responses[{i}]"), "object", other)),
            };
            let text = get_str(r, "text", &format!("responses[{i}].text"))?.ok_or_else(|| {
                FieldError::new(format!("responses[{i}].text"), "missing required field")
            })?;
            stats.push(ResponseStat {
                score: get_score(r, "score", &format!("responses[{i}].score"), rules)?,
                correct: get_correct(r, &format!("responses[{i}].correct"))?,
                text_bytes: text.len().min(u32::MAX as usize) as u32,
            });
        }
        return Ok(LineView::Group(GroupView {
            prompt: prompt.to_string(),
            id: key_of(obj, line, "id"),
            responses: stats,
        }));
    }
    let present: Vec<&str> = FLAT_TEXT_FIELDS
        .iter()
        .copied()
        .filter(|f| obj.contains_key(*f))
        .collect();
    let text_field = match present.as_slice() {
        [] => {
            return Err(FieldError::new(
                "",
                "not a rollout record: expected `responses` (grouped form) or one of `completion`, `response`, `text` (flat form)",
            ))
        }
        [one] => *one,
        many => {
            return Err(FieldError::new(
                many[1],
                format!("ambiguous flat record: both `{}` and `{}` present", many[0], many[1]),
            ))
        }
    };
    let text = get_str(obj, text_field, text_field)?.unwrap_or_default();
    if obj.contains_key("score") && obj.contains_key("reward") {
        return Err(FieldError::new(
            "reward",
            "ambiguous flat record: both `score` and `reward` present",
        ));
    }
    let score_field = FLAT_SCORE_FIELDS
        .iter()
        .copied()
        .find(|f| obj.contains_key(*f))
        .unwrap_or("score");
    let prompt = get_str(obj, "prompt", "prompt")?
        .ok_or_else(|| FieldError::new("prompt", "missing required field"))?;
    let (key, key_field) = match &rules.group_key {
        Some(k) => (
            key_of(obj, line, k)
                .ok_or_else(|| FieldError::new(k.clone(), "missing group key field"))?,
            Some(k.clone()),
        ),
        None => match ["prompt_id", "id"]
            .into_iter()
            .find_map(|f| Some((key_of(obj, line, f)?, f)))
        {
            Some((key, f)) => (key, Some(f.to_string())),
            None => (Value::String(prompt.to_string()).to_string(), None),
        },
    };
    Ok(LineView::Flat(FlatView {
        key,
        key_field,
        prompt: prompt.to_string(),
        response: ResponseStat {
            score: get_score(obj, score_field, score_field, rules)?,
            correct: get_correct(obj, "correct")?,
            text_bytes: text.len().min(u32::MAX as usize) as u32,
        },
    }))
}

/// Turns a flat record into the response object of a grouped record: the text field becomes
/// `text`, `reward` becomes `score`, and the group-level fields move to the group.
pub fn flat_to_response(
    mut obj: Map<String, Value>,
    key_field: Option<&str>,
) -> (Map<String, Value>, Option<Value>, Option<Value>) {
    let prompt = obj.remove("prompt");
    let key = match key_field {
        Some(k) if k != "prompt" => obj.remove(k),
        Some(_) => None,
        None => obj.remove("prompt_id").or_else(|| obj.remove("id")),
    };
    let mut resp = Map::with_capacity(obj.len());
    for (k, v) in obj {
        let k = match k.as_str() {
            "completion" | "response" => "text".to_string(),
            "reward" => "score".to_string(),
            _ => k,
        };
        resp.insert(k, v);
    }
    (resp, prompt, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RecordRules {
        RecordRules {
            score_range: Some(ScoreRange::default()),
            group_key: None,
        }
    }

    fn err(line: &str) -> FieldError {
        parse_view(line.as_bytes(), &rules()).unwrap_err()
    }

    #[test]
    fn grouped_record_reads_scores_and_verdicts() {
        let v = parse_view(
            br#"{"prompt":"p","extra":{"a":[1,2]},"responses":[{"text":"ab","score":1,"correct":true},{"text":"c"}]}"#,
            &rules(),
        )
        .unwrap();
        let LineView::Group(g) = v else { panic!() };
        assert_eq!(g.prompt, "p");
        assert_eq!(g.responses[0].score, 1.0);
        assert_eq!(g.responses[0].correct, 1);
        assert_eq!(g.responses[0].text_bytes, 2);
        assert!(g.responses[1].score.is_nan());
        assert_eq!(g.responses[1].correct, -1);
    }

    #[test]
    fn parse_into_agrees_with_parse_view() {
        let lines = [
            r#"{"prompt":"p","id":7,"responses":[{"text":"ab","score":1,"correct":true},{"text":"c"}]}"#,
            r#"{"prompt":"esc\"aped \u00e9","id":"x","responses":[{"text":"a","score":0.5}]}"#,
            r#"{"prompt":"p","responses":[{"text":"a","score":0.5},{"text":"b","score":2}]}"#,
            r#"{"prompt":"p","responses":[{"text":"a"},{"score":1}]}"#,
            r#"{"responses":[{"text":"a"}]}"#,
            r#"{"prompt":"p","responses":[]}"#,
            r#"{"prompt":"p","responses":[{"text":"a","score":"1"}]}"#,
            r#"{"prompt":"p","completion":"c","score":1}"#,
            r#"{"prompt":"p","id":{"b":1, "a":2},"responses":[{"text":"a"}]}"#,
        ];
        let mut cols = GroupColumns::new();
        let mut expect = GroupColumns::new();
        let mut scratch = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            let n = n as u64 + 1;
            let view = parse_view(line.as_bytes(), &rules());
            let got = parse_into(line.as_bytes(), &rules(), &mut cols, n, &mut scratch);
            match (view, got) {
                (Ok(LineView::Group(g)), Ok(Parsed::Pushed)) => {
                    expect.push_group(g.prompt, g.id, n, &g.responses)
                }
                (Ok(v), Ok(Parsed::View(w))) => assert_eq!(v, w, "{line}"),
                (Err(a), Err(b)) => assert_eq!(a, b, "{line}"),
                (a, b) => panic!("{line}: {a:?} vs {b:?}"),
            }
            assert_eq!(format!("{cols:?}"), format!("{expect:?}"), "{line}"); // NaN != NaN
        }
        assert_eq!(cols.num_groups(), 3);
        assert_eq!(cols.prompts.get(1), Some("esc\"aped \u{e9}"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"prompt":"p","responses":[{"text":"a","score":"1.0"}]}"#,
                "responses[0].score",
                "expected number, got string",
            ),
            (
                r#"{"prompt":"p","responses":[{"text":"a"},{"text":"b","score":2}]}"#,
                "responses[1].score",
                "outside [0, 1]",
            ),
            (
                r#"{"prompt":"p","responses":[{"text":"a","score":-0.5}]}"#,
                "responses[0].score",
                "outside",
            ),
            (
                r#"{"prompt":"p","responses":[]}"#,
                "responses",
                "empty group",
            ),
            (
                r#"{"prompt":"p","responses":{}}"#,
                "responses",
                "expected array, got object",
            ),
            (r#"{"responses":[{"text":"a"}]}"#, "prompt", "missing"),
            (
                r#"{"prompt":3,"responses":[{"text":"a"}]}"#,
                "prompt",
                "expected string, got number",
            ),
            (
                r#"{"prompt":"p","responses":[{"score":1}]}"#,
                "responses[0].text",
                "missing",
            ),
            (
                r#"{"prompt":"p","responses":[{"text":"a","correct":"yes"}]}"#,
                "responses[0].correct",
                "expected boolean",
            ),
            (r#"[1,2]"#, "", "expected a JSON object, got array"),
            (
                r#"{"prompt":"p","responses":[{"text":"a","score":NaN}]}"#,
                "",
                "NaN/Infinity",
            ),
            (
                r#"{"prompt":"p","responses":[{"text":"a","score":Infinity}]}"#,
                "",
                "NaN/Infinity",
            ),
            (
                r#"{"prompt":"p","responses":[{"text":"a""#,
                "",
                "truncated JSON",
            ),
            (r#"{"prompt":"p"}"#, "", "not a rollout record"),
            (
                r#"{"prompt":"p","completion":"a","text":"b"}"#,
                "text",
                "ambiguous",
            ),
        ];
        for (line, field, msg) in cases {
            let e = err(line);
            assert_eq!(e.field, field, "{line}: {e:?}");
            assert!(e.message.contains(msg), "{line}: {e:?}");
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn record() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let response = (
            ".*",
            proptest::option::of(0.0f64..=1.0),
            proptest::option::of(any::<bool>()),
            json_value(),
        )
            .prop_map(|(text, score, correct, extra)| {
                let mut m = Map::new();
                m.insert("extra".into(), extra);
                m.insert("text".into(), Value::String(text));
                if let Some(s) = score {
                    m.insert("score".into(), Value::from(s));
                }
                if let Some(c) = correct {
                    m.insert("correct".into(), Value::Bool(c));
                }
                Value::Object(m)
            });
        (
            ".*",
            proptest::collection::vec(response, 1..5),
            json_value(),
            json_value(),
        )
            .prop_map(|(p, rs, id, meta)| {
                let mut m = Map::new();
                m.insert("meta".into(), meta);
                m.insert("prompt".into(), Value::String(p));
                m.insert("id".into(), id);
                m.insert("responses".into(), Value::Array(rs));
                Value::Object(m)
            })
    }

    proptest::proptest! {
        #[test]
        fn skimmer_and_exact_path_agree(rec in record()) {
            let line = serde_json::to_vec(&rec).unwrap();
            let sk = skim::skim_line(&line).ok().and_then(|s| skimmed_to_view(s, &rules()).ok().flatten());
            let exact = view_of_value(&rec, &line, &rules()).unwrap();
            let Some(sk) = sk else {
                // The one valid input it leaves to the exact path: a string that starts with an
                // escaped NUL (it could be a reserved marker, see `integers`).
                proptest::prop_assert!(line.windows(7).any(|w| w == b"\"\\u0000"), "skimmer gave up on valid JSON");
                return Ok(());
            };
            let (LineView::Group(a), LineView::Group(b)) = (sk, exact) else {
                panic!("not a group")
            };
            proptest::prop_assert_eq!(a.prompt, b.prompt);
            proptest::prop_assert_eq!(a.id, b.id);
            proptest::prop_assert_eq!(a.responses.len(), b.responses.len());
            for (x, y) in a.responses.iter().zip(&b.responses) {
                proptest::prop_assert_eq!(x.text_bytes, y.text_bytes);
                proptest::prop_assert_eq!(x.correct, y.correct);
                proptest::prop_assert!(x.score == y.score || (x.score.is_nan() && y.score.is_nan()));
            }
        }

        #[test]
        fn skimmer_is_never_more_lenient_than_serde(rec in record(), at in 0usize..10_000, byte in proptest::prelude::any::<u8>()) {
            let mut line = serde_json::to_vec(&rec).unwrap();
            let at = at % line.len();
            line[at] = byte;
            if skim::skim_line(&line).is_ok() {
                proptest::prop_assert!(serde_json::from_slice::<Value>(&line).is_ok(), "{}", String::from_utf8_lossy(&line));
            }
        }
    }

    #[test]
    fn invalid_utf8_is_reported() {
        let e = parse_view(b"{\"prompt\":\"\xff\"}", &rules()).unwrap_err();
        assert!(e.message.contains("invalid UTF-8"), "{e:?}");
    }

    #[test]
    fn wider_score_range_on_request() {
        let r = RecordRules {
            score_range: None,
            group_key: None,
        };
        let v = parse_view(
            br#"{"prompt":"p","responses":[{"text":"a","score":-3.5}]}"#,
            &r,
        )
        .unwrap();
        let LineView::Group(g) = v else { panic!() };
        assert_eq!(g.responses[0].score, -3.5);
    }

    #[test]
    fn flat_record_groups_by_prompt_id_then_id_then_prompt() {
        let v = parse_view(
            br#"{"prompt":"p","prompt_id":7,"completion":"x","reward":0.5}"#,
            &rules(),
        )
        .unwrap();
        let LineView::Flat(f) = v else { panic!() };
        assert_eq!(f.key, "7");
        assert_eq!(f.response.score, 0.5);
        let v = parse_view(br#"{"prompt":"p","response":"x"}"#, &rules()).unwrap();
        let LineView::Flat(f) = v else { panic!() };
        assert_eq!(f.key, "\"p\"");
    }

    #[test]
    fn fast_and_value_paths_agree() {
        let lines = [
            r#"{"prompt":"p\n\"q\"","id":"a","responses":[{"text":"x\u00e9","score":0.25,"correct":false}]}"#,
            r#"{"prompt":"p","prompt_id":"k","text":"x","score":null}"#,
        ];
        for line in lines {
            let fast = parse_view(line.as_bytes(), &rules()).unwrap();
            let slow = view_of_value(
                &parse_value(line.as_bytes()).unwrap(),
                line.as_bytes(),
                &rules(),
            )
            .unwrap();
            match (&fast, &slow) {
                (LineView::Group(a), LineView::Group(b)) => {
                    assert_eq!(a.prompt, b.prompt);
                    assert_eq!(a.id, b.id);
                    assert_eq!(a.responses[0].correct, b.responses[0].correct);
                    assert_eq!(a.responses[0].text_bytes, b.responses[0].text_bytes);
                }
                (LineView::Flat(a), LineView::Flat(b)) => {
                    assert_eq!(a.key, b.key);
                    assert!(a.response.score.is_nan() && b.response.score.is_nan());
                }
                _ => panic!("{fast:?} vs {slow:?}"),
            }
        }
    }
}
