//! Single-process throughput of the reader stages on a file: `cargo run --release -p grpo-core
//! --example read_throughput -- FILE`. Used to see where reading time goes.
use std::time::Instant;

use grpo_core::record::{parse_view, RecordRules};
use grpo_core::{GroupReader, ReadOptions};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: read_throughput FILE");
    let data = std::fs::read(&path).expect("read file");
    let mb = data.len() as f64 / (1 << 20) as f64;
    let t = Instant::now();
    let lines = memchr::memchr_iter(b'\n', &data).count();
    report("split lines (memchr)", mb, t);
    let t = Instant::now();
    let ok = std::str::from_utf8(&data).is_ok();
    report("utf-8 validation", mb, t);
    let rules = RecordRules::default();
    let mut n = 0usize;
    for _ in 0..3 {
        let t = Instant::now();
        n = memchr::memchr_iter(b'\n', &data)
            .scan(0, |start, end| {
                let line = &data[*start..end];
                *start = end + 1;
                Some(line)
            })
            .filter(|l| !l.is_empty() && parse_view(l, &rules).is_ok())
            .count();
        report("parse_view, 1 thread", mb, t);
    }
    for _ in 0..3 {
        let t = Instant::now();
        let mut cols = grpo_core::GroupColumns::new();
        let mut scratch = Vec::new();
        let mut rest = &data[..];
        let mut line = 0;
        while !rest.is_empty() {
            line += 1;
            let Some((_, len)) = grpo_core::record::parse_into_prefix(
                rest,
                &rules,
                &mut cols,
                line,
                &mut scratch,
                grpo_core::lines::DEFAULT_MAX_LINE_BYTES,
            ) else {
                break;
            };
            rest = &rest[len..];
            if cols.num_responses() > 1 << 16 {
                cols = grpo_core::GroupColumns::new();
            }
        }
        report("parse_into_prefix, 1 thread", mb, t);
    }
    let t = Instant::now();
    let input = grpo_core::source::open_input(&path).unwrap();
    let mut chunker = grpo_core::lines::Chunker::new(input.reader);
    let mut chunks = 0;
    while let Some(_c) = chunker.next_chunk().unwrap() {
        chunks += 1;
    }
    report("chunker only", mb, t);
    let t = Instant::now();
    let rules2 = RecordRules::default();
    let input = grpo_core::source::open_input(&path).unwrap();
    let mut chunker = grpo_core::lines::Chunker::new(input.reader);
    let mut all = Vec::new();
    while let Some(c) = chunker.next_chunk().unwrap() {
        all.push(c);
    }
    report("chunker collect", mb, t);
    let t = Instant::now();
    use rayon::prelude::*;
    let n2: usize = all
        .par_iter()
        .map(|c| {
            grpo_core::lines::chunk_lines(c)
                .filter(|(_, l)| parse_view(l, &rules2).is_ok())
                .count()
        })
        .sum();
    report("rayon parse of chunks", mb, t);
    println!("chunks {chunks} parsed {n2}");
    let t = Instant::now();
    let (batch, _) = GroupReader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap();
    report("GroupReader, all threads", mb, t);
    println!(
        "lines {lines} utf8 {ok} parsed {n} responses {}",
        batch.columns.num_responses()
    );
}

fn report(what: &str, mb: f64, t: Instant) {
    let s = t.elapsed().as_secs_f64();
    println!("{what:28} {:8.1} MB/s", mb / s);
}
