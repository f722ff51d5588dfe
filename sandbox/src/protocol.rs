//! The zygote protocol's message kinds: the one letter that says what a frame on a slot's control
//! socket is. The daemon (`zygote.rs`, `engine.rs`, `compiled.rs`), the zygote's Python
//! (`zygote.py`) and its native half (`zygote_native.c`) all speak it; this table is the one
//! place the letters are chosen. The other two declare them under the same names (`ZP_HELLO`
//! and so on: a `#define` in C, an `ord(...)` constant in Python) and spell no letter anywhere
//! else; the tests below hold both files to this table.
//!
//! A frame from the daemon is `u32 length, u8 kind, u32 budget_ms`, then `length` bytes; one from
//! the zygote is `u32 length, u8 kind`, then the bytes. All integers little-endian.

/// Daemon to zygote, once at start: the slot's configuration (JSON).
pub const HELLO: u8 = b'H';
/// A plain Python run, served by the native half alone: limits and stdin's length as u64s,
/// stdin, then the source (`engine.rs` `run_payload`).
pub const RUN: u8 = b'Q';
/// A Python tests request, served by the native half: units, ms per unit, output cap, units
/// per process as u32s, then the request as JSON.
pub const TESTS: u8 = b'U';
/// A Python run with files, served by a harness process (JSON).
pub const RUN_WITH_FILES: u8 = b'R';
/// A request in a compiled language (or JavaScript), served by a harness process (JSON).
pub const COMPILED: u8 = b'C';
/// Assertion-style test code to parse into checks, by a harness process (JSON).
pub const PARSE: u8 = b'P';
/// Mid-request: stop at the unit that runs now (all-or-nothing scoring).
pub const STOP: u8 = b'S';
/// Zygote to daemon, after `HELLO`: ready (its pid and Python version).
pub const READY: u8 = b'h';
/// One unit's outcome, streamed as it ends: meta JSON, then raw stdout, stderr and result.
pub const UNIT: u8 = b'o';
/// The request's report (JSON), or why the slot broke (`harness_error`).
pub const REPORT: u8 = b'r';
/// The request is over: how its process ended and whether it was killed at its budget.
pub const DONE: u8 = b'd';

/// Who sends a frame kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Daemon,
    Zygote,
}

/// Every frame kind: the name the other sides declare it by (after `ZP_`), its letter, and who
/// sends it.
pub const FRAMES: [(&str, u8, Sender); 11] = [
    ("HELLO", HELLO, Sender::Daemon),
    ("RUN", RUN, Sender::Daemon),
    ("TESTS", TESTS, Sender::Daemon),
    ("RUN_WITH_FILES", RUN_WITH_FILES, Sender::Daemon),
    ("COMPILED", COMPILED, Sender::Daemon),
    ("PARSE", PARSE, Sender::Daemon),
    ("STOP", STOP, Sender::Daemon),
    ("READY", READY, Sender::Zygote),
    ("UNIT", UNIT, Sender::Zygote),
    ("REPORT", REPORT, Sender::Zygote),
    ("DONE", DONE, Sender::Zygote),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const NATIVE: &str = include_str!("zygote_native.c");
    const PYTHON: &str = include_str!("zygote.py");

    fn table() -> BTreeMap<String, char> {
        FRAMES
            .iter()
            .map(|(n, k, _)| (n.to_string(), *k as char))
            .collect()
    }

    /// The single character between the first pair of `quote`s in `s`.
    fn quoted_letter(s: &str, quote: char) -> Option<char> {
        let mut parts = s.split(quote);
        parts.next()?;
        let inner = parts.next()?;
        let mut chars = inner.chars();
        let c = chars.next()?;
        chars.next().is_none().then_some(c)
    }

    /// `#define ZP_NAME 'x'` lines.
    fn declared_in_c(src: &str) -> BTreeMap<String, char> {
        src.lines()
            .filter_map(|l| l.trim().strip_prefix("#define ZP_"))
            .map(|rest| {
                let (name, value) = rest.split_once(char::is_whitespace).expect("a value");
                let letter = quoted_letter(value, '\'').expect("a char literal");
                (name.to_string(), letter)
            })
            .collect()
    }

    /// `ZP_NAME = ord("x")` lines.
    fn declared_in_python(src: &str) -> BTreeMap<String, char> {
        src.lines()
            .filter_map(|l| l.strip_prefix("ZP_"))
            .map(|rest| {
                let (name, value) = rest.split_once(" = ").expect("an assignment");
                let value = value.split('#').next().unwrap_or_default().trim();
                let inner = value
                    .strip_prefix("ord(")
                    .and_then(|v| v.strip_suffix(')'))
                    .expect("ord(...)");
                (
                    name.to_string(),
                    quoted_letter(inner, '"').expect("a letter"),
                )
            })
            .collect()
    }

    /// C without its comments (a letter in a comment names a kind; it is not one).
    fn without_c_comments(src: &str) -> String {
        let mut out = String::new();
        let mut rest = src;
        while let Some(i) = rest.find("/*") {
            out.push_str(&rest[..i]);
            rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn letters_are_distinct_within_each_direction() {
        for from in [Sender::Daemon, Sender::Zygote] {
            let mut seen: Vec<u8> = FRAMES.iter().filter(|f| f.2 == from).map(|f| f.1).collect();
            let n = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), n, "{from:?} reuses a letter");
        }
    }

    #[test]
    fn the_native_half_declares_this_table() {
        assert_eq!(declared_in_c(NATIVE), table());
    }

    #[test]
    fn the_python_half_declares_this_table() {
        assert_eq!(declared_in_python(PYTHON), table());
    }

    #[test]
    fn the_native_half_spells_no_letter_outside_its_declarations() {
        let code = without_c_comments(NATIVE);
        for (n, line) in code.lines().enumerate() {
            if line.trim().starts_with("#define ZP_") {
                continue;
            }
            let b = line.as_bytes();
            let stray = b
                .windows(3)
                .any(|w| w[0] == b'\'' && w[1].is_ascii_alphabetic() && w[2] == b'\'');
            assert!(
                !stray,
                "zygote_native.c (comments removed) line {}: {line}",
                n + 1
            );
        }
    }

    #[test]
    fn the_python_half_spells_no_letter_outside_its_declarations() {
        for (n, line) in PYTHON.lines().enumerate() {
            if line.starts_with("ZP_") {
                continue;
            }
            let code = line.split('#').next().unwrap_or_default();
            let stray = ["ord(\"", "ord('", "b\"", "b'"].iter().any(|open| {
                code.match_indices(open).any(|(i, _)| {
                    let after = &code[i + open.len()..];
                    let mut cs = after.chars();
                    let (c, q) = (cs.next(), cs.next());
                    c.is_some_and(|c| c.is_ascii_alphabetic()) && matches!(q, Some('"' | '\''))
                })
            });
            assert!(!stray, "zygote.py line {}: {line}", n + 1);
        }
    }

    #[test]
    fn the_daemon_spells_no_letter_outside_this_table() {
        let files = [
            ("engine.rs", include_str!("engine.rs")),
            ("compiled.rs", include_str!("compiled.rs")),
            ("zygote.rs", include_str!("zygote.rs")),
        ];
        for (file, src) in files {
            for (n, line) in src.lines().enumerate() {
                let b = line.as_bytes();
                let stray = b.windows(4).any(|w| {
                    w[0] == b'b' && w[1] == b'\'' && w[2].is_ascii_alphabetic() && w[3] == b'\''
                });
                assert!(!stray, "{file} line {}: {line}", n + 1);
            }
        }
    }
}
