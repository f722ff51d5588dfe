//! Structured logs: one JSON object per line on stderr (journald and `jq` read them as is).

use serde_json::{Map, Value};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences info-level lines (warnings and errors are always written).
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

fn emit(level: &str, msg: &str, fields: &[(&str, Value)]) {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut m = Map::new();
    m.insert("ts".into(), Value::from((ts * 1000.0).round() / 1000.0));
    m.insert("level".into(), level.into());
    m.insert("msg".into(), msg.into());
    for (k, v) in fields {
        m.insert((*k).into(), v.clone());
    }
    let mut line = Value::Object(m).to_string();
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn info(msg: &str, fields: &[(&str, Value)]) {
    if !QUIET.load(Ordering::Relaxed) {
        emit("info", msg, fields);
    }
}

pub fn warn(msg: &str, fields: &[(&str, Value)]) {
    emit("warn", msg, fields);
}

pub fn error(msg: &str, fields: &[(&str, Value)]) {
    emit("error", msg, fields);
}
