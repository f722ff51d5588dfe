//! The reader's limits and its two paths: line length, nesting, group keys, integers beyond 64
//! bits, rejects entries, large scores, and outputs that are put in place whole or not at all.
use grpo_core::lines::{Chunker, KEPT_LINE_BYTES};
use grpo_core::skim::MAX_NESTING;
use grpo_core::{write_advantages, ErrorPolicy, GroupReader, Method, ReadOptions, RecordWriter};
use proptest::prelude::*;
use serde_json::Value;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn path_in(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_str().unwrap().to_string()
}

fn good(i: usize) -> String {
    format!(
        r#"{{"prompt":"q{i}","id":{i},"responses":[{{"text":"a","score":1}},{{"text":"b","score":0}}]}}"#
    )
}

/// Groups as the reader sees them, comparable across paths: (line, prompt, id, scores).
type Groups = Vec<(u64, String, Option<String>, Vec<String>)>;

fn groups_of(path: &str, keep_records: bool, opts: &ReadOptions) -> Result<(Groups, u64), String> {
    let opts = ReadOptions {
        keep_records,
        ..opts.clone()
    };
    let (batch, report) = GroupReader::open(path, opts)
        .and_then(|r| r.read_all())
        .map_err(|e| e.to_string())?;
    let c = &batch.columns;
    let groups = (0..c.num_groups())
        .map(|g| {
            let scores = c.scores[c.offsets[g] as usize..c.offsets[g + 1] as usize]
                .iter()
                .map(|s| format!("{s:?}"))
                .collect();
            (
                c.lines[g],
                c.prompts.get(g).unwrap_or_default().to_string(),
                c.ids.get(g).map(str::to_string),
                scores,
            )
        })
        .collect();
    Ok((groups, report.rejected))
}

/// Reads `path` through the columnar (fast) and the records path and checks they agree.
fn both_paths(path: &str, opts: &ReadOptions) -> Result<(Groups, u64), String> {
    let fast = groups_of(path, false, opts);
    let records = groups_of(path, true, opts);
    assert_eq!(fast, records, "the two paths disagree on {path}");
    fast
}

fn report_opts(dir: &tempfile::TempDir) -> ReadOptions {
    ReadOptions {
        policy: ErrorPolicy::Report,
        rejects_path: Some(path_in(dir, "rejects.jsonl")),
        ..Default::default()
    }
}

fn rejects(dir: &tempfile::TempDir) -> Vec<Value> {
    std::fs::read_to_string(dir.path().join("rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn serde_json_refuses_exactly_what_the_nesting_limit_refuses() {
    // The limit is one definition only if serde_json's own recursion limit sits exactly there.
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(serde_json::from_str::<Value>(&nest(MAX_NESTING)).is_ok());
    assert!(serde_json::from_str::<Value>(&nest(MAX_NESTING + 1)).is_err());
}

#[test]
fn nesting_at_and_past_the_limit_is_judged_alike_by_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // Unknown fields at the record level (level 2 and down) and inside a response (level 4).
    for (extra_levels, place) in [(1usize, "record"), (3, "response")] {
        for n in [
            MAX_NESTING - extra_levels - 1,
            MAX_NESTING - extra_levels,
            MAX_NESTING - extra_levels + 1,
        ] {
            let line = if place == "record" {
                format!(
                    r#"{{"prompt":"p","junk":{},"responses":[{{"text":"a","score":1}}]}}"#,
                    nest(n)
                )
            } else {
                format!(
                    r#"{{"prompt":"p","responses":[{{"text":"a","score":1,"junk":{}}}]}}"#,
                    nest(n)
                )
            };
            let body = format!("{}\n{line}\n{}\n", good(1), good(3));
            let path = write(&dir, &format!("nest-{place}-{n}.jsonl"), body.as_bytes());
            let (groups, rejected) = both_paths(&path, &report_opts(&dir)).unwrap();
            let deepest = n + extra_levels;
            let fits = deepest <= MAX_NESTING;
            assert_eq!(groups.len(), if fits { 3 } else { 2 }, "{place} {n}");
            assert_eq!(rejected, u64::from(!fits), "{place} {n}");
            if !fits {
                let last = rejects(&dir).pop().unwrap();
                assert!(
                    last["error"]
                        .as_str()
                        .unwrap()
                        .contains("nested deeper than 127"),
                    "{last}"
                );
            }
        }
    }
}

#[test]
fn a_line_past_the_limit_is_rejected_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 10_000usize;
    let long_text = "y".repeat(3 * limit);
    let long = format!(r#"{{"prompt":"p","responses":[{{"text":"{long_text}"}}]}}"#);
    let at_limit = format!(
        r#"{{"prompt":"p","responses":[{{"text":"{}"}}]}}"#,
        "z".repeat(limit - 40)
    );
    assert_eq!(at_limit.len(), limit);
    let body = format!("{}\n{long}\r\n{at_limit}\n{}\n", good(1), good(4));
    let plain = write(&dir, "long.jsonl", body.as_bytes());
    let zst = write(
        &dir,
        "long.jsonl.zst",
        &zstd::encode_all(body.as_bytes(), 3).unwrap(),
    );
    // Chunks smaller and larger than the limit, mapped and streamed.
    for chunk_bytes in [512, 4096, 1 << 20] {
        for path in [&plain, &zst] {
            let opts = ReadOptions {
                chunk_bytes,
                max_line_bytes: limit,
                ..report_opts(&dir)
            };
            let (groups, rejected) = both_paths(path, &opts).unwrap();
            assert_eq!(rejected, 1, "{path} {chunk_bytes}");
            assert_eq!(groups.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 3, 4]);
            let r = rejects(&dir).pop().unwrap();
            assert_eq!(r["line"], 2);
            // Shorter than what a rejects entry keeps: kept whole.
            assert!(
                r["raw"] == long.as_str(),
                "raw is not the line ({path} {chunk_bytes})"
            );
            assert!(r["error"]
                .as_str()
                .unwrap()
                .contains(&format!("line is {} bytes long", long.len())));
        }
    }
    // Strict: the error names the line.
    let opts = ReadOptions {
        max_line_bytes: limit,
        ..Default::default()
    };
    let err = GroupReader::open(&zst, opts)
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("{zst}:2: line is")),
        "{err}"
    );
}

#[test]
fn an_endless_line_costs_bounded_memory_in_the_chunker() {
    // 200 MB of zeros without a newline, then a record: the chunker holds the limit, not the line.
    struct Zeros(u64);
    impl std::io::Read for Zeros {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(0);
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let total = 200u64 << 20;
    let tail: &[u8] = b"\n{\"prompt\":\"p\"}\n";
    let mut chunker =
        Chunker::with_limits(std::io::Read::chain(Zeros(total), tail), 1 << 20, 4 << 20);
    let first = chunker.next_chunk().unwrap().unwrap();
    assert_eq!(first.oversized, Some(total));
    assert_eq!(first.data().len(), KEPT_LINE_BYTES);
    let held = match &first.bytes {
        grpo_core::lines::ChunkBytes::Owned { buf, .. } => buf.capacity(),
        grpo_core::lines::ChunkBytes::Mapped(..) => unreachable!("a stream is not mapped"),
    };
    assert!(held < 16 << 20, "held {held} bytes");
    let second = chunker.next_chunk().unwrap().unwrap();
    assert_eq!(second.data(), b"{\"prompt\":\"p\"}\n");
    assert!(chunker.next_chunk().unwrap().is_none());
}

#[test]
fn rejects_keep_a_capped_prefix_and_invalid_utf8_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = good(1).into_bytes();
    // Invalid JSON, then invalid UTF-8 (its bytes must come back exactly).
    let big = format!("{{\"prompt\": {}", "\u{e9}".repeat(KEPT_LINE_BYTES));
    body.extend_from_slice(format!("\n{big}\n").as_bytes());
    let bad_utf8: &[u8] = b"{\"prompt\":\"\xff\xfe caf\xc3\xa9\",\"responses\":[{\"text\":\"a\"}]}";
    body.extend_from_slice(bad_utf8);
    body.extend_from_slice(b"\n");
    let path = write(&dir, "r.jsonl", &body);
    let (_, rejected) = both_paths(&path, &report_opts(&dir)).unwrap();
    assert_eq!(rejected, 2);
    let r = rejects(&dir);
    // Cut at a character boundary, so the kept text is still text.
    let raw = r[0]["raw"].as_str().unwrap();
    assert!(raw.len() <= KEPT_LINE_BYTES && raw.len() > KEPT_LINE_BYTES - 4);
    assert!(big.starts_with(raw));
    assert_eq!(r[0]["raw_truncated"], true);
    assert_eq!(r[0]["raw_bytes"], big.len());
    assert!(r[0].get("raw_base64").is_none());
    assert_eq!(r[1]["raw_base64"], base64(bad_utf8));
    assert_eq!(r[1]["raw"], String::from_utf8_lossy(bad_utf8).as_ref());
    assert!(r[1].get("raw_truncated").is_none());
}

/// Plain base64, written out here so the test does not share the reader's encoder.
fn base64(bytes: &[u8]) -> String {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = String::new();
    for b in bytes {
        bits.push_str(&format!("{b:08b}"));
    }
    let pad_bits = (6 - bits.len() % 6) % 6;
    bits.push_str(&"0".repeat(pad_bits));
    let mut out: String = bits
        .as_bytes()
        .chunks(6)
        .map(|c| table[usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()] as char)
        .collect();
    let pad = (4 - out.len() % 4) % 4;
    out.push_str(&"=".repeat(pad));
    out
}

#[test]
fn group_keys_are_json_values_compared_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // (key as written, the group it belongs to)
    let keys: &[(&str, usize)] = &[
        ("0", 0),
        ("-0", 0),
        ("0.0", 0),
        ("-0e5", 0),
        ("1", 1),
        ("1.0", 1),
        ("1e0", 1),
        ("10e-1", 1),
        ("18446744073709551616", 2),
        ("18446744073709551617", 3),
        ("1.8446744073709551616e19", 2),
        ("-9223372036854775809", 4),
        ("-9223372036854775810", 5),
        ("123456789012345678901234567890", 6),
        ("123456789012345678901234567891", 7),
        ("\"a\"", 8),
        ("\"\\u0061\"", 8),
        ("\"a\\/b\"", 9),
        ("\"a/b\"", 9),
        ("[1, 2.0]", 10),
        ("[1,2]", 10),
        ("{\"k\": \"\\u00e9\"}", 11),
        ("{\"k\":\"\u{e9}\"}", 11),
        ("0.1", 12),
        ("1e-1", 12),
        ("1e300", 13),
        ("1E+300", 13),
    ];
    let body: String = keys
        .iter()
        .map(|(k, g)| format!("{{\"prompt_id\":{k},\"prompt\":\"p{g}\",\"completion\":\"c\"}}\n"))
        .collect();
    let path = write(&dir, "keys.jsonl", body.as_bytes());
    let (groups, rejected) = both_paths(&path, &ReadOptions::default()).unwrap();
    assert_eq!(rejected, 0);
    let expect: Vec<usize> = {
        let mut seen = Vec::new();
        for (_, g) in keys {
            if !seen.contains(g) {
                seen.push(*g);
            }
        }
        seen
    };
    assert_eq!(
        groups.iter().map(|g| g.1.clone()).collect::<Vec<_>>(),
        expect.iter().map(|g| format!("p{g}")).collect::<Vec<_>>()
    );
    let ids: Vec<&str> = groups.iter().map(|g| g.2.as_deref().unwrap()).collect();
    assert_eq!(ids[2], "18446744073709551616");
    assert_eq!(ids[6], "123456789012345678901234567890");
    // An escaped field name is the same field (and the last of duplicates counts, as serde_json).
    let body = concat!(
        "{\"prompt\\u005fid\":7,\"prompt\":\"x\",\"completion\":\"c\"}\n",
        "{\"prompt_id\":7,\"prompt\":\"x\",\"completion\":\"c\"}\n",
        "{\"prompt_id\":1,\"prompt_id\":7,\"prompt\":\"x\",\"completion\":\"c\"}\n",
    );
    let path = write(&dir, "fields.jsonl", body.as_bytes());
    let (groups, _) = both_paths(&path, &ReadOptions::default()).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].3.len(), 3);
}

fn key_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (-3i64..3).prop_map(|i| i.to_string()),
        Just("-0".to_string()),
        Just("0.0".to_string()),
        Just("1.0".to_string()),
        Just("1e0".to_string()),
        Just("10e-1".to_string()),
        Just("-0.0e3".to_string()),
        Just("18446744073709551616".to_string()),
        Just("18446744073709551617".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("1.8446744073709551616E19".to_string()),
        (0u64..4).prop_map(|i| format!("1844674407370955161{i}")),
        Just("\"a\"".to_string()),
        Just("\"\\u0061\"".to_string()),
        Just("\"a b\"".to_string()),
        Just("\"a\\u0020b\"".to_string()),
        Just("\"\u{e9}\"".to_string()),
        Just("\"\\u00e9\"".to_string()),
        Just("\"1\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3)
                .prop_map(|v| format!("[{}]", v.join(" , "))),
            proptest::collection::vec(inner, 0..3).prop_map(|v| {
                let members: Vec<String> = v
                    .iter()
                    .enumerate()
                    .map(|(i, x)| format!("\"k{i}\":{x}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The fast and the records path group any file alike: same groups, same order, same ids.
    #[test]
    fn both_paths_group_flat_files_alike(
        lines in proptest::collection::vec((key_text(), 0usize..3, any::<bool>(), 0u8..4), 1..24),
        chunk_bytes in prop_oneof![Just(64usize), Just(1 << 20)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let body: String = lines
            .iter()
            .map(|(key, p, use_id, score)| {
                let field = if *use_id { "id" } else { "prompt_id" };
                format!(
                    "{{\"{field}\": {key}, \"prompt\":\"p{p}\",\"completion\":\"c\",\"score\":{}}}\n",
                    f64::from(*score) / 4.0
                )
            })
            .collect();
        let path = write(&dir, "flat.jsonl", body.as_bytes());
        let opts = ReadOptions { chunk_bytes, ..report_opts(&dir) };
        let fast = groups_of(&path, false, &opts);
        let records = groups_of(&path, true, &opts);
        prop_assert_eq!(fast, records);
    }
}

#[test]
fn integers_beyond_64_bits_are_written_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let body = concat!(
        r#"{"prompt":"p","id":123456789012345678901234567890,"meta":{"seed":-98765432109876543210,"x":[18446744073709551616,1.5,7]},"responses":[{"text":"a","score":1,"tok":99999999999999999999999},{"text":"b","score":0}]}"#,
        "\n",
        r#"{"prompt_id":18446744073709551617,"prompt":"q","completion":"c","reward":1}"#,
        "\n",
        r#"{"prompt_id":18446744073709551617,"prompt":"q","completion":"d","reward":0}"#,
        "\n",
    );
    let input = write(&dir, "big.jsonl", body.as_bytes());
    let output = path_in(&dir, "out.jsonl");
    write_advantages(
        &input,
        &output,
        Method::DrGrpo,
        1e-4,
        ReadOptions::default(),
    )
    .unwrap();
    let out = std::fs::read_to_string(&output).unwrap();
    for digits in [
        "\"id\":123456789012345678901234567890,",
        "\"seed\":-98765432109876543210,",
        "[18446744073709551616,1.5,7]",
        "\"tok\":99999999999999999999999,",
        "\"prompt_id\":18446744073709551617,",
    ] {
        assert!(out.contains(digits), "{digits} not in {out}");
    }
    // A score beyond 64 bits is still a number (and out of the default range).
    let body = r#"{"prompt":"p","responses":[{"text":"a","score":100000000000000000000}]}"#;
    let path = write(&dir, "score.jsonl", body.as_bytes());
    let err = both_paths(&path, &ReadOptions::default()).unwrap_err();
    assert!(
        err.contains("score 100000000000000000000 is outside [0, 1]"),
        "{err}"
    );
    // A string that would read back as a marker is refused, never turned into a number.
    let body = r#"{"prompt":"p","x":"\u0000grpo-fast:integer:5","responses":[{"text":"a"}]}"#;
    let path = write(&dir, "marker.jsonl", body.as_bytes());
    let err = both_paths(&path, &ReadOptions::default()).unwrap_err();
    assert!(err.contains("reserved"), "{err}");
    // Any other string starting with an escaped NUL is an ordinary string on both paths.
    let body = r#"{"prompt":"\u0000p","x":"\u0000","responses":[{"text":"a"}]}"#;
    let path = write(&dir, "nul.jsonl", body.as_bytes());
    assert_eq!(
        both_paths(&path, &ReadOptions::default()).unwrap().0[0].1,
        "\0p"
    );
}

#[test]
fn advantages_of_huge_scores_are_the_scaled_ones() {
    use grpo_core::advantage::compute;
    let unit = [1.0, 0.0, 0.0, 1.0, 0.25];
    let offsets = [0i64, 5];
    for m in Method::ALL {
        let small = compute(&unit, &offsets, m, 0.0).unwrap().values;
        for scale in [1e160f64, -1e160, 1e300, 2f64.powi(1000), 1e-9] {
            let big: Vec<f64> = unit.iter().map(|s| s * scale).collect();
            let adv = compute(&big, &offsets, m, 0.0).unwrap().values;
            for (a, b) in adv.iter().zip(&small) {
                // grpo and batch_std are scale-free; dr_grpo and rloo scale with the scores.
                let want = match m {
                    Method::Grpo | Method::BatchStd => b * scale.signum(),
                    _ => b * scale,
                };
                assert!(a.is_finite(), "{m:?} {scale}: {adv:?}");
                assert!(
                    (a - want).abs() <= 1e-12 * want.abs().max(1e-300),
                    "{m:?} {scale}: {a} vs {want}"
                );
            }
        }
    }
    // Beyond f64: a clear error, not an infinite or NaN advantage.
    let err = compute(&[1.7e308, -1.7e308], &[0, 2], Method::Rloo, 0.0).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
    let mut far = vec![-1.7e308; 99];
    far.push(1.7e308);
    let err = compute(&far, &[0, 100], Method::DrGrpo, 0.0).unwrap_err();
    assert!(err.to_string().contains("response 99"), "{err}");
}

#[test]
fn moments_of_huge_values_stay_finite() {
    let mut m = grpo_core::stats::Moments::default();
    for x in [1e160, -1e160, 1e160, -1e160] {
        m.push(x);
    }
    assert!((m.mean_or_nan()).abs() < 1e150);
    assert!((m.std() / 1e160 - 1.0).abs() < 1e-12, "{}", m.std());
}

#[test]
fn a_failed_write_leaves_the_target_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..1000).map(|i| good(i) + "\n").collect::<String>() + "{broken\n";
    let input = write(&dir, "in.jsonl", body.as_bytes());
    let output = write(&dir, "out.jsonl", b"precious\n");
    let err =
        write_advantages(&input, &output, Method::Grpo, 1e-4, ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains(":1001:"), "{err}");
    assert_eq!(std::fs::read(&output).unwrap(), b"precious\n");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "a temporary file was left behind: {names:?}"
    );
    // A writer dropped without `finish` writes nothing either.
    let mut w = RecordWriter::create(&output).unwrap();
    w.write_value(&serde_json::json!({"a": 1})).unwrap();
    drop(w);
    assert_eq!(std::fs::read(&output).unwrap(), b"precious\n");
}

#[test]
fn the_output_may_be_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..5000).map(|i| good(i) + "\n").collect();
    let path = write(&dir, "x.jsonl", body.as_bytes());
    for _ in 0..3 {
        write_advantages(&path, &path, Method::DrGrpo, 1e-4, ReadOptions::default()).unwrap();
    }
    let out = std::fs::read_to_string(&path).unwrap();
    assert_eq!(out.lines().count(), 5000);
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["responses"][0]["advantage"], 0.5);
    assert_eq!(first["id"], 0);
}

#[cfg(unix)]
#[test]
fn symlinks_and_devices_are_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(&dir, "in.jsonl", (good(1) + "\n").as_bytes());
    let real = write(&dir, "real.jsonl", b"old\n");
    let link = path_in(&dir, "link.jsonl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    write_advantages(&input, &link, Method::Grpo, 1e-4, ReadOptions::default()).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("advantage"));
    // A device is written in place, never replaced.
    use std::os::unix::fs::FileTypeExt;
    write_advantages(
        &input,
        "/dev/null",
        Method::Grpo,
        1e-4,
        ReadOptions::default(),
    )
    .unwrap();
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn rejects_may_not_be_the_input_or_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(&dir, "in.jsonl", (good(1) + "\n").as_bytes());
    let opts = ReadOptions {
        policy: ErrorPolicy::Report,
        rejects_path: Some(input.clone()),
        ..Default::default()
    };
    let err = GroupReader::open(&input, opts.clone()).err().unwrap();
    assert!(err.to_string().contains("is the input file"), "{err}");
    let out = path_in(&dir, "out.jsonl");
    let opts = ReadOptions {
        rejects_path: Some(out.clone()),
        ..opts
    };
    let err = write_advantages(&input, &out, Method::Grpo, 1e-4, opts).unwrap_err();
    assert!(err.to_string().contains("is the output file"), "{err}");
    assert_eq!(std::fs::read(&input).unwrap(), (good(1) + "\n").as_bytes());
}

#[test]
fn gzip_output_is_complete_after_finish() {
    let dir = tempfile::tempdir().unwrap();
    let out = path_in(&dir, "o.jsonl.gz");
    let mut w = RecordWriter::create(&out).unwrap();
    w.write_value(&serde_json::json!({"prompt": "p", "responses": [{"text": "t"}]}))
        .unwrap();
    assert!(
        !std::path::Path::new(&out).exists(),
        "visible before finish"
    );
    w.finish().unwrap();
    let mut d = flate2::read::MultiGzDecoder::new(std::fs::File::open(&out).unwrap());
    let mut s = String::new();
    std::io::Read::read_to_string(&mut d, &mut s).unwrap();
    assert_eq!(s.lines().count(), 1);
}
