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
    let t = Instant::now();
    let mut n = 0usize;
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if parse_view(line, &rules).is_ok() {
            n += 1;
        }
    }
    report("parse_view, 1 thread", mb, t);
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
