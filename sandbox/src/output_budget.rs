//! The program output one answer may carry, in total (`server.max_response_output_bytes`).
//!
//! Each stream of a run is capped already (`limits.max_output_bytes`), but a `/batch` of 4,096
//! items each writing 1 MiB would still answer with gigabytes (and a stream of control bytes
//! grows sixfold as JSON escapes). So the output of all items together is bounded too: the
//! strings that carry program output (`stdout`, `stderr`, each test's, fetched files) are cut by
//! water-filling, the largest first down to a common length, so small outputs stay whole. The
//! cut depends only on the whole answer, never on the order items finished in: an item is cut
//! on arrival to the level the items so far allow, and since the level only falls as items
//! arrive and every cut keeps a prefix, cutting again later gives what one cut at the end would
//! (the items' original sizes are kept to compute the level). Items already held are cut again
//! only when together they pass twice the budget (and once at the end), so a batch of many loud
//! items does not rescan everything held at each arrival: the daemon holds at most twice the
//! budget plus the items still running. A cut string ends with `…[truncated]` (a file's base64
//! is cut to whole groups and its `truncated` set) and the item gets `"truncated": true`.

use serde_json::Value;

/// What a cut text ends with (the engine's per-test cuts end the same way).
pub const MARK: &str = "…[truncated]";

/// Bytes `s` takes as a JSON string body, escapes included, as serde_json writes it.
pub fn json_cost(s: &str) -> usize {
    s.bytes().map(byte_cost).sum()
}

fn byte_cost(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0..=0x1f => 6,
        _ => 1,
    }
}

/// The largest `level` such that `sum(min(size, level)) <= cap` (`usize::MAX` when all fit).
pub fn water_level(sizes: &[usize], cap: usize) -> usize {
    if sizes.iter().sum::<usize>() <= cap {
        return usize::MAX;
    }
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    let mut left = cap;
    let mut n = sorted.len();
    for s in sorted {
        // Every remaining size is >= s: at level s they would take s * n.
        if s.saturating_mul(n) > left {
            return left / n;
        }
        left -= s;
        n -= 1;
    }
    usize::MAX
}

/// How a carried string is cut: text keeps a prefix and the mark; base64 keeps whole groups.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Text,
    Base64,
}

/// Visits the output strings of one answer in a fixed order.
fn visit(v: &mut Value, f: &mut dyn FnMut(&mut String, Kind, &mut bool)) {
    let mut no_flag = false;
    match v {
        Value::Object(map) => {
            let cut_flag = map.get("truncated").is_some_and(Value::is_boolean);
            let mut flag = false;
            for (k, child) in map.iter_mut() {
                match (k.as_str(), child) {
                    ("stdout" | "stderr", Value::String(s)) => f(s, Kind::Text, &mut no_flag),
                    ("b64", Value::String(s)) => f(s, Kind::Base64, &mut flag),
                    (_, c @ (Value::Object(_) | Value::Array(_))) => visit(c, f),
                    _ => {}
                }
            }
            if flag && cut_flag {
                map.insert("truncated".into(), Value::Bool(true));
            }
        }
        Value::Array(items) => {
            for c in items {
                visit(c, f);
            }
        }
        _ => {}
    }
}

/// The JSON cost of each output string of `v`, in visiting order.
pub fn costs(v: &mut Value) -> Vec<usize> {
    let mut out = Vec::new();
    visit(v, &mut |s, _, _| out.push(json_cost(s)));
    out
}

/// The longest prefix of `s` (on a character boundary) that costs at most `budget`.
fn prefix_within(s: &str, budget: usize) -> usize {
    let mut spent = 0;
    for (i, c) in s.char_indices() {
        let mut buf = [0u8; 4];
        let cost: usize = c.encode_utf8(&mut buf).bytes().map(byte_cost).sum();
        if spent + cost > budget {
            return i;
        }
        spent += cost;
    }
    s.len()
}

/// Cuts the output strings of `v`, whose original costs are `orig`, so that together they cost
/// at most `cap` (plus the mark on each cut text). Returns whether anything was cut.
pub fn cut(v: &mut Value, orig: &[usize], cap: usize) -> bool {
    let level = water_level(orig, cap);
    if level == usize::MAX {
        return false;
    }
    let mark = json_cost(MARK);
    let mut j = 0;
    let mut any = false;
    visit(v, &mut |s, kind, flag| {
        let o = orig.get(j).copied().unwrap_or(0);
        j += 1;
        // A text no longer than the mark would only grow by being cut.
        if o <= level || (kind == Kind::Text && o <= mark) {
            return;
        }
        any = true;
        match kind {
            Kind::Text => {
                // A string cut before holds a prefix of the original and the mark: cutting
                // that prefix again is cutting the original.
                if s.ends_with(MARK) && json_cost(s) < o {
                    s.truncate(s.len() - MARK.len());
                }
                let keep = prefix_within(s, level.saturating_sub(mark));
                s.truncate(keep);
                s.push_str(MARK);
            }
            Kind::Base64 => {
                let keep = s.len().min(level) / 4 * 4;
                s.truncate(keep);
                *flag = true;
            }
        }
    });
    if any {
        if let Value::Object(map) = v {
            map.insert("truncated".into(), Value::Bool(true));
        }
    }
    any
}

/// The answers of one request, bounded together to `cap` bytes of output as they arrive.
pub struct Budget {
    cap: usize,
    level: usize,
    /// Each answer as held now, with its strings' original costs and its cost as held.
    items: Vec<Option<(Value, Vec<usize>, usize)>>,
    totals: Vec<usize>,
    held: usize,
}

impl Budget {
    pub fn new(cap: usize, n: usize) -> Budget {
        Budget {
            cap,
            level: usize::MAX,
            items: (0..n).map(|_| None).collect(),
            totals: Vec::with_capacity(n),
            held: 0,
        }
    }

    /// Item `i`'s answer: kept, cut to the level the answers so far allow.
    pub fn add(&mut self, i: usize, mut v: Value) {
        let orig = costs(&mut v);
        self.totals.push(orig.iter().sum());
        self.level = self.level.min(water_level(&self.totals, self.cap));
        if self.level != usize::MAX {
            cut(&mut v, &orig, self.level);
        }
        let now = costs(&mut v).iter().sum();
        self.held += now;
        if let Some(slot) = self.items.get_mut(i) {
            *slot = Some((v, orig, now));
        }
        if self.held > self.cap.saturating_mul(2) {
            self.recut();
        }
    }

    /// Cuts every answer held to the current level.
    fn recut(&mut self) {
        if self.level == usize::MAX {
            return;
        }
        self.held = 0;
        for (v, orig, now) in self.items.iter_mut().flatten() {
            if *now > self.level {
                cut(v, orig, self.level);
                *now = costs(v).iter().sum();
            }
            self.held += *now;
        }
    }

    /// The answers in order (`null` for an item never added) and whether any was cut.
    pub fn finish(mut self) -> (Vec<Value>, bool) {
        self.recut();
        let cut = self.level != usize::MAX;
        let values = self
            .items
            .into_iter()
            .map(|x| x.map(|(v, _, _)| v).unwrap_or(Value::Null))
            .collect();
        (values, cut)
    }
}

/// One answer bounded on its own (`/run`, `/run_tests`).
pub fn bound_one(v: &mut Value, cap: usize) -> bool {
    let orig = costs(v);
    cut(v, &orig, cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(out: &str, err: &str) -> Value {
        json!({"status": "ok", "stdout": out, "stderr": err, "truncated": false})
    }

    fn total(values: &[Value]) -> usize {
        values
            .iter()
            .map(|v| costs(&mut v.clone()).iter().sum::<usize>())
            .sum()
    }

    #[test]
    fn json_cost_is_what_serde_json_writes() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "\n\t\r\u{8}\u{c}",
            "\u{0}\u{1f}\u{7f}",
            "é✓𝄞",
            "",
        ] {
            let written = serde_json::to_string(s).unwrap();
            assert_eq!(json_cost(s), written.len() - 2, "{s:?}");
        }
    }

    #[test]
    fn water_level_cases() {
        assert_eq!(water_level(&[1, 2, 3], 6), usize::MAX, "everything fits");
        assert_eq!(water_level(&[10, 10], 10), 5, "equal sizes share equally");
        assert_eq!(water_level(&[1, 100], 11), 10, "the small one stays whole");
        assert_eq!(water_level(&[0, 0, 50], 0), 0, "no budget at all");
        assert_eq!(water_level(&[], 0), usize::MAX, "nothing to bound");
    }

    #[test]
    fn small_outputs_stay_whole_and_large_ones_share_the_rest() {
        let mut b = Budget::new(1000, 3);
        b.add(0, run("tiny", ""));
        b.add(1, run(&"x".repeat(5000), ""));
        b.add(2, run(&"y".repeat(5000), &"z".repeat(10))); // 6 chars of mark... whole stderr
        let (values, was_cut) = b.finish();
        assert!(was_cut);
        assert_eq!(values[0]["stdout"], "tiny");
        assert_eq!(values[0]["truncated"], false);
        for v in &values[1..] {
            assert_eq!(v["truncated"], true);
            assert!(v["stdout"].as_str().unwrap().ends_with(MARK));
        }
        assert_eq!(
            values[2]["stderr"],
            "z".repeat(10),
            "a small stream of a cut item stays whole"
        );
        assert!(
            total(&values) <= 1000 + 2 * json_cost(MARK),
            "{}",
            total(&values)
        );
    }

    #[test]
    fn the_cut_does_not_depend_on_arrival_order() {
        let answers: Vec<Value> = (0..12)
            .map(|i| {
                run(
                    &format!("{i}\u{0}é").repeat(37 * i + 1),
                    &"e\n".repeat(11 * i),
                )
            })
            .collect();
        let mut reference = None;
        for order in [
            (0..12).collect::<Vec<_>>(),
            (0..12).rev().collect(),
            vec![5, 0, 11, 3, 7, 1, 9, 2, 10, 4, 8, 6],
        ] {
            let mut b = Budget::new(2500, 12);
            for &i in &order {
                b.add(i, answers[i].clone());
            }
            let (values, was_cut) = b.finish();
            assert!(was_cut);
            match &reference {
                None => reference = Some(values),
                Some(r) => assert_eq!(r, &values, "order {order:?}"),
            }
        }
    }

    #[test]
    fn escapes_count_against_the_budget() {
        let mut v = run(&"\u{0}".repeat(1000), "");
        assert!(bound_one(&mut v, 600));
        let written = serde_json::to_string(&v["stdout"]).unwrap().len() - 2;
        assert!(written <= 600, "{written}");
        assert!(written >= 600 - 6 - json_cost(MARK), "{written}");
    }

    #[test]
    fn test_outputs_and_fetched_files_are_cut_too() {
        let mut v = json!({
            "status": "ok", "passed": 0, "total": 2,
            "tests": [{"stdout": "a".repeat(4000), "stderr": "", "reason": "x".repeat(4000)},
                      {"stdout": "b".repeat(10), "stderr": "c".repeat(4000)}],
            "first_failure": {"stdout": "a".repeat(4000), "stderr": ""},
            "files": {"out.bin": {"b64": "QUJD".repeat(1000), "truncated": false},
                      "gone": {"error": "No such file or directory"}},
        });
        assert!(bound_one(&mut v, 2000));
        assert_eq!(v["truncated"], true);
        assert_eq!(
            v["tests"][0]["reason"].as_str().unwrap().len(),
            4000,
            "not program output"
        );
        assert_eq!(v["tests"][1]["stdout"], "b".repeat(10));
        let b64 = v["files"]["out.bin"]["b64"].as_str().unwrap();
        assert!(b64.len().is_multiple_of(4) && b64.len() < 4000);
        assert_eq!(v["files"]["out.bin"]["truncated"], true);
        assert!(total(&[v]) <= 2000 + 3 * json_cost(MARK));
    }

    #[test]
    fn many_loud_items_are_held_within_twice_the_budget() {
        let mut b = Budget::new(10_000, 500);
        for i in 0..500 {
            b.add(i, run(&"x".repeat(4000), ""));
            assert!(b.held <= 20_000 + 500 * json_cost(MARK), "{}", b.held);
        }
        let (values, _) = b.finish();
        assert!(total(&values) <= 10_000 + 500 * json_cost(MARK));
        assert_eq!(values[0], values[499], "all cut alike");
    }

    #[test]
    fn nothing_is_cut_within_the_budget() {
        let mut v = run("hello", "world");
        let before = v.clone();
        assert!(!bound_one(&mut v, 10));
        assert_eq!(v, before);
    }
}
