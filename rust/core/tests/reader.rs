//! The reader against real files: every kind of bad input the foundation issue lists, both
//! error policies, compression, flat grouping and round trips.
use std::io::Write;

use grpo_core::{write_advantages, ErrorPolicy, GroupReader, Method, ReadOptions, RecordWriter};
use serde_json::Value;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn good(i: usize) -> String {
    format!(
        r#"{{"prompt":"q{i}","id":{i},"responses":[{{"text":"a","score":1}},{{"text":"b","score":0}}]}}"#
    )
}

fn strict_err(path: &str) -> String {
    match GroupReader::open(path, ReadOptions::default()).and_then(|r| r.read_all()) {
        Ok(_) => panic!("expected an error for {path}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn each_bad_line_is_named_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            r#"{"prompt":"p","responses":[{"text":"a","score":"1.0"}]}"#,
            ":2: responses[0].score: expected number, got string",
        ),
        (
            r#"{"prompt":"p","responses":[{"text":"a","score":2}]}"#,
            ":2: responses[0].score: score 2 is outside [0, 1]",
        ),
        (
            r#"{"prompt":"p","responses":[{"text":"a","score":-0.5}]}"#,
            ":2: responses[0].score: score -0.5 is outside",
        ),
        (
            r#"{"prompt":"p","responses":[{"text":"a","score":NaN}]}"#,
            ":2: invalid JSON at column",
        ),
        (
            r#"{"prompt":"p","responses":[{"text":"a","score":-Infinity}]}"#,
            "NaN/Infinity are not valid",
        ),
        (
            r#"["not","an","object"]"#,
            ":2: expected a JSON object, got array",
        ),
        (
            r#"{"responses":[{"text":"a"}]}"#,
            ":2: prompt: missing required field",
        ),
        (
            r#"{"prompt":"p","responses":"a"}"#,
            ":2: responses: expected array, got string",
        ),
        (
            r#"{"prompt":"p","responses":[]}"#,
            ":2: responses: empty group",
        ),
    ];
    for (i, (bad, expect)) in cases.iter().enumerate() {
        let body = format!("{}\n{bad}\n{}\n", good(1), good(3));
        let path = write(&dir, &format!("bad{i}.jsonl"), body.as_bytes());
        let msg = strict_err(&path);
        assert!(msg.starts_with(&path), "{msg}");
        assert!(
            msg.contains(expect),
            "case {i}: got {msg:?}, want {expect:?}"
        );
    }
}

#[test]
fn invalid_utf8_and_truncated_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = good(1).into_bytes();
    body.extend_from_slice(b"\n{\"prompt\":\"\xff\xfe\",\"responses\":[{\"text\":\"a\"}]}\n");
    let path = write(&dir, "utf8.jsonl", &body);
    assert!(strict_err(&path).contains(":2: invalid UTF-8"));

    let body = format!("{}\n{}", good(1), &good(2)[..30]);
    let path = write(&dir, "trunc.jsonl", body.as_bytes());
    assert!(strict_err(&path).contains(":2: truncated JSON"));
}

#[test]
fn report_policy_keeps_going_and_writes_every_reject() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}\n[1]\n{}\n{{\"prompt\":\"p\",\"responses\":[]}}\n{}\n",
        good(1),
        good(2),
        good(3)
    );
    let path = write(&dir, "mixed.jsonl", body.as_bytes());
    let rejects = dir
        .path()
        .join("rejects.jsonl")
        .to_str()
        .unwrap()
        .to_string();
    let opts = ReadOptions {
        policy: ErrorPolicy::Report,
        rejects_path: Some(rejects.clone()),
        ..Default::default()
    };
    let (batch, report) = GroupReader::open(&path, opts).unwrap().read_all().unwrap();
    assert_eq!(batch.columns.num_groups(), 3);
    assert_eq!(report.rejected, 2);
    assert_eq!(report.records, 3);
    let lines: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["raw"], "[1]");
    assert_eq!(lines[1]["line"], 4);
    assert_eq!(lines[1]["field"], "responses");
}

#[test]
fn report_policy_needs_a_rejects_file() {
    let opts = ReadOptions {
        policy: ErrorPolicy::Report,
        ..Default::default()
    };
    assert!(GroupReader::open("whatever.jsonl", opts).is_err());
}

#[test]
fn empty_file_crlf_bom_and_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "empty.jsonl", b"");
    let (batch, report) = GroupReader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(batch.columns.num_groups(), 0);
    assert_eq!(report.lines, 0);

    let body = format!("\u{feff}{}\r\n\r\n{}\r\n", good(1), good(2));
    let path = write(&dir, "crlf.jsonl", body.as_bytes());
    let (batch, report) = GroupReader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(batch.columns.num_groups(), 2);
    assert_eq!(batch.columns.lines, vec![1, 3]);
    assert_eq!(report.blank_lines, 1);
}

#[test]
fn fifty_megabyte_line_reads_whole() {
    let dir = tempfile::tempdir().unwrap();
    let text = "x".repeat(50 << 20);
    let body = format!(
        "{}\n{{\"prompt\":\"big\",\"responses\":[{{\"text\":\"{text}\",\"score\":0.5}}]}}\n{}\n",
        good(1),
        good(3)
    );
    let path = write(&dir, "big.jsonl", body.as_bytes());
    let opts = ReadOptions {
        chunk_bytes: 1 << 20,
        ..Default::default()
    };
    let (batch, _) = GroupReader::open(&path, opts).unwrap().read_all().unwrap();
    assert_eq!(batch.columns.num_groups(), 3);
    assert_eq!(batch.columns.text_bytes[2], 50 << 20);
    assert_eq!(batch.columns.lines, vec![1, 2, 3]);
}

#[test]
fn gzip_and_zstd_read_and_truncated_gzip_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..2000).map(|i| good(i) + "\n").collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let path = write(&dir, "a.jsonl.gz", &gz);
    let (batch, _) = GroupReader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(batch.columns.num_groups(), 2000);

    let zst = zstd::encode_all(body.as_bytes(), 3).unwrap();
    let path = write(&dir, "a.jsonl.zst", &zst);
    let (batch, _) = GroupReader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(batch.columns.num_groups(), 2000);

    let path = write(&dir, "cut.jsonl.gz", &gz[..gz.len() / 2]);
    let msg = strict_err(&path);
    assert!(
        msg.contains("cut.jsonl.gz") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn small_batches_split_on_group_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..100).map(|i| good(i) + "\n").collect();
    let path = write(&dir, "many.jsonl", body.as_bytes());
    let opts = ReadOptions {
        batch_responses: 7,
        chunk_bytes: 256,
        ..Default::default()
    };
    let batches: Vec<_> = GroupReader::open(&path, opts)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert!(batches.len() > 10);
    let groups: usize = batches.iter().map(|b| b.columns.num_groups()).sum();
    assert_eq!(groups, 100);
    let all_lines: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.columns.lines.clone())
        .collect();
    assert_eq!(all_lines, (1..=100).collect::<Vec<u64>>());
    for b in &batches {
        assert_eq!(
            *b.columns.offsets.last().unwrap() as usize,
            b.columns.num_responses()
        );
    }
}

#[test]
fn flat_records_are_grouped_and_written_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let body = [
        r#"{"prompt_id":"a","prompt":"P1","completion":"x","reward":1,"seed":1}"#,
        r#"{"prompt_id":"b","prompt":"P2","completion":"y","reward":0}"#,
        r#"{"prompt_id":"a","prompt":"P1","completion":"z","reward":0}"#,
    ]
    .join("\n");
    let path = write(&dir, "flat.jsonl", body.as_bytes());
    let out = dir.path().join("out.jsonl").to_str().unwrap().to_string();
    let (report, summary) =
        write_advantages(&path, &out, Method::DrGrpo, 0.0, ReadOptions::default()).unwrap();
    assert_eq!(report.flat_records, 3);
    assert_eq!(summary.groups, 2);
    let recs: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs[0]["prompt_id"], "a");
    assert_eq!(recs[0]["prompt"], "P1");
    assert_eq!(recs[0]["responses"][0]["text"], "x");
    assert_eq!(recs[0]["responses"][0]["seed"], 1);
    assert_eq!(recs[0]["responses"][0]["advantage"], 0.5);
    assert_eq!(recs[0]["responses"][1]["advantage"], -0.5);
    assert_eq!(recs[1]["responses"].as_array().unwrap().len(), 1);
}

#[test]
fn round_trip_keeps_every_field_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"zeta":1,"prompt":"p \"q\" \u00e9","responses":[{"text":"a","score":0.25,"reasoning":"r","execution_output":"o","correct":false,"extra":{"k":[1,2.5,null]}}],"answer":"\\frac{1}{2}","tests":[{"input":"1","output":"2"}],"id":"x-1"}"#,
        r#"{"prompt":"p2","responses":[{"text":"b"}],"meta":{"nested":{"deep":[true,false]}},"big":12345678901234567}"#,
    ];
    let path = write(&dir, "rt.jsonl", lines.join("\n").as_bytes());
    let opts = ReadOptions {
        keep_records: true,
        ..Default::default()
    };
    let (batch, _) = GroupReader::open(&path, opts).unwrap().read_all().unwrap();
    let out = dir
        .path()
        .join("rt.out.jsonl.zst")
        .to_str()
        .unwrap()
        .to_string();
    let mut w = RecordWriter::create(&out).unwrap();
    for r in batch.records.unwrap() {
        w.write_value(&r).unwrap();
    }
    w.finish().unwrap();
    let back = zstd::decode_all(std::fs::File::open(&out).unwrap()).unwrap();
    let back = String::from_utf8(back).unwrap();
    for (orig, got) in lines.iter().zip(back.lines()) {
        let a: Value = serde_json::from_str(orig).unwrap();
        let b: Value = serde_json::from_str(got).unwrap();
        assert_eq!(a, b);
        let ka: Vec<&String> = a.as_object().unwrap().keys().collect();
        let kb: Vec<&String> = b.as_object().unwrap().keys().collect();
        assert_eq!(ka, kb, "key order preserved");
    }
}

#[test]
fn flat_line_with_a_conflicting_prompt_is_rejected_with_its_raw_text() {
    let dir = tempfile::tempdir().unwrap();
    let body = [
        r#"{"prompt_id":"a","prompt":"P1","completion":"x","reward":1}"#,
        r#"{"prompt_id":"a","prompt":"OTHER","completion":"y","reward":0}"#,
    ]
    .join("\n");
    let path = write(&dir, "conflict.jsonl", body.as_bytes());
    let rejects = dir.path().join("rej.jsonl").to_str().unwrap().to_string();
    let opts = ReadOptions {
        policy: ErrorPolicy::Report,
        rejects_path: Some(rejects.clone()),
        ..Default::default()
    };
    let (batch, report) = GroupReader::open(&path, opts).unwrap().read_all().unwrap();
    assert_eq!(batch.columns.num_responses(), 1);
    assert_eq!(report.rejected, 1);
    let rej: Value =
        serde_json::from_str(std::fs::read_to_string(&rejects).unwrap().trim()).unwrap();
    assert_eq!(rej["line"], 2);
    assert_eq!(rej["field"], "prompt");
    assert!(rej["raw"].as_str().unwrap().contains("OTHER"));
}

#[test]
fn mapped_and_streamed_reads_agree_at_any_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("\u{feff}");
    for i in 0..300 {
        body.push_str(&good(i));
        body.push_str(if i % 7 == 0 { "\r\n\n" } else { "\n" });
    }
    body.push_str(&good(999)); // no final newline
    let path = write(&dir, "m.jsonl", body.as_bytes());
    let read = |mmap: bool, chunk_bytes: usize| {
        let opts = ReadOptions {
            mmap,
            chunk_bytes,
            batch_responses: 50,
            ..Default::default()
        };
        GroupReader::open(&path, opts).unwrap().read_all().unwrap()
    };
    let (reference, ref_report) = read(false, 1 << 20);
    assert_eq!(reference.columns.num_groups(), 301);
    for chunk_bytes in [1, 7, 100, 333, 4096, 1 << 20] {
        let (b, r) = read(true, chunk_bytes);
        assert_eq!(b.columns, reference.columns, "chunk {chunk_bytes}");
        assert_eq!(r, ref_report, "chunk {chunk_bytes}");
    }
}

#[test]
fn lines_of_every_shape_keep_their_numbers_and_raw_text() {
    let dir = tempfile::tempdir().unwrap();
    let body = [
        format!("{}  \r", good(1)),
        r#"{"prompt":"p","#.to_string(),
        "   ".to_string(),
        r#"{"prompt":"p","responses":[{"text":"a","score":2}]}"#.to_string(),
        format!(" {}", good(5)),
        r#"{"prompt":"f","completion":"c","score":1}"#.to_string(),
        "{\"prompt\":\"f\",\"completion\":\"d\",\"score\":0}\r".to_string(),
        format!("{}x", good(8)),
        good(9),
    ]
    .join("\n");
    let path = write(&dir, "shapes.jsonl", body.as_bytes());
    for mmap in [true, false] {
        for chunk_bytes in [1, 16, 1 << 20] {
            let rejects = dir.path().join("r.jsonl").to_str().unwrap().to_string();
            let opts = ReadOptions {
                policy: ErrorPolicy::Report,
                rejects_path: Some(rejects.clone()),
                mmap,
                chunk_bytes,
                ..Default::default()
            };
            let (batch, report) = GroupReader::open(&path, opts).unwrap().read_all().unwrap();
            let at = format!("mmap {mmap} chunk {chunk_bytes}");
            assert_eq!(batch.columns.lines, vec![1, 5, 9, 6], "{at}");
            assert_eq!(
                (report.lines, report.blank_lines, report.records),
                (9, 1, 3),
                "{at}"
            );
            assert_eq!((report.flat_records, report.rejected), (2, 3), "{at}");
            let rows: Vec<Value> = std::fs::read_to_string(&rejects)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let got: Vec<(u64, String)> = rows
                .iter()
                .map(|r| {
                    (
                        r["line"].as_u64().unwrap(),
                        r["raw"].as_str().unwrap().into(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                vec![
                    (2, r#"{"prompt":"p","#.to_string()),
                    (
                        4,
                        r#"{"prompt":"p","responses":[{"text":"a","score":2}]}"#.into()
                    ),
                    (8, format!("{}x", good(8))),
                ],
                "{at}"
            );
        }
    }
}

#[test]
fn reading_from_inside_a_rayon_pool_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..500).map(|i| good(i) + "\n").collect();
    let path = write(&dir, "pool.jsonl", body.as_bytes());
    let read = move || {
        let opts = ReadOptions {
            chunk_bytes: 256,
            ..Default::default()
        };
        let (batch, report) = GroupReader::open(&path, opts).unwrap().read_all().unwrap();
        (batch.columns.num_groups(), report.lines)
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    assert_eq!(one.install(read.clone()), (500, 500));
    // On a thread of the pool that runs the parse jobs themselves.
    let (tx, rx) = std::sync::mpsc::channel();
    rayon::spawn(move || tx.send(read()).unwrap());
    assert_eq!(rx.recv().unwrap(), (500, 500));
}
