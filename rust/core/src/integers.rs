//! Integers beyond 64 bits, kept exactly through a read/write round trip.
//!
//! `serde_json::Value` holds integers as i64 or u64 and turns larger ones into f64, losing
//! digits. Its `arbitrary_precision` feature would keep them, but Cargo turns a feature on for
//! every crate of the build that links serde_json (and it changes how numbers deserialize
//! there), so it is not switched on. Instead a line holding such an integer is parsed with each
//! one replaced by a marker string, `"\u0000grpo-fast:integer:<digits>"`; the writer turns the
//! marker back into the bare digits and the Python conversion into an `int`. No input can pass
//! a marker off as its own string: one that starts with it is refused where records come in
//! (here for files, in the bindings for Python objects).
use serde_json::Value;

use crate::error::FieldError;
use crate::skim::{self, Token};

/// The start of a marker string (NUL cannot be typed by accident: JSON must escape it).
pub const MARKER: &str = "\u{0}grpo-fast:integer:";
/// How `serde_json` writes the start of a marker string.
const MARKER_JSON: &[u8] = b"\"\\u0000grpo-fast:integer:";

/// The marker value standing for the integer `digits` (`-`? then digits).
pub fn marker(digits: &str) -> Value {
    Value::String(format!("{MARKER}{digits}"))
}

/// The digits when `v` is a marker.
pub fn as_big_int(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => s.strip_prefix(MARKER),
        _ => None,
    }
}

/// A string a user may not store, since it would read back as an integer.
pub fn is_reserved(s: &str) -> bool {
    s.starts_with(MARKER)
}

/// The message for a reserved string.
pub fn reserved_message() -> String {
    "strings starting with \\u0000grpo-fast:integer: are reserved (they stand for integers \
     beyond 64 bits)"
        .to_string()
}

/// Whether an integer token (`-`? digits) fits serde_json's i64/u64.
fn fits_64(token: &[u8]) -> bool {
    match token.split_first() {
        Some((b'-', digits)) => {
            digits.len() < 19 || (digits.len() == 19 && digits <= b"9223372036854775808".as_slice())
        }
        _ => token.len() < 20 || (token.len() == 20 && token <= b"18446744073709551615".as_slice()),
    }
}

/// A cheap filter run on every line: false means the line holds no integer beyond 64 bits and
/// no string that could be a marker, so plain `serde_json` reads it exactly. An integer beyond
/// 64 bits has at least 19 digits, so some 8-byte word of the line is all digits; a marker
/// string starts with an escaped NUL.
pub fn may_need_exact(line: &[u8]) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let all_digits = |w: u64| w & HIGH == THREES && w.wrapping_add(SIXES) & HIGH == THREES;
    let words = line.chunks_exact(8);
    for w in words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        if all_digits(u64::from_le_bytes(b)) {
            return true;
        }
    }
    memchr::memmem::find(line, b"\\u0000").is_some()
}

/// Parses `line` keeping integers beyond 64 bits as markers. `Ok(None)`: nothing to keep (or
/// not valid JSON): parse it plainly, which also names any error.
pub fn parse_exact(line: &[u8]) -> Result<Option<Value>, FieldError> {
    let mut big: Vec<std::ops::Range<usize>> = Vec::new();
    let mut reserved = false;
    let walked = skim::walk_tokens(line, &mut |t| {
        match t {
            Token::Number(r) => {
                let text = &line[r.clone()];
                let integer = !text.iter().any(|&c| matches!(c, b'.' | b'e' | b'E'));
                if integer && !fits_64(text) {
                    big.push(r);
                }
            }
            Token::Str(raw) => {
                if raw.starts_with(b"\\u0000")
                    && skim::decode_str(raw, true).is_some_and(|s| is_reserved(&s))
                {
                    reserved = true;
                }
            }
        }
        Ok(())
    });
    if walked.is_err() {
        return Ok(None);
    }
    if reserved {
        return Err(FieldError::new("", reserved_message()));
    }
    if big.is_empty() {
        return Ok(None);
    }
    let mut text = Vec::with_capacity(line.len() + big.len() * MARKER_JSON.len());
    let mut at = 0;
    for r in big {
        text.extend_from_slice(&line[at..r.start]);
        text.extend_from_slice(MARKER_JSON);
        text.extend_from_slice(&line[r.clone()]);
        text.push(b'"');
        at = r.end;
    }
    text.extend_from_slice(&line[at..]);
    Ok(serde_json::from_slice(&text).ok())
}

/// Turns the markers in serialised JSON back into bare integers, in place.
pub fn restore(buf: &mut Vec<u8>) {
    let Some(first) = memchr::memmem::find(buf, MARKER_JSON) else {
        return;
    };
    let mut out = Vec::with_capacity(buf.len());
    out.extend_from_slice(&buf[..first]);
    let mut at = first;
    while let Some(found) = memchr::memmem::find(&buf[at..], MARKER_JSON) {
        let start = at + found;
        out.extend_from_slice(&buf[at..start]);
        let digits_start = start + MARKER_JSON.len();
        let len = buf[digits_start..]
            .iter()
            .position(|&c| c == b'"')
            .unwrap_or(buf.len() - digits_start);
        let digits = &buf[digits_start..digits_start + len];
        let valid = !digits.is_empty()
            && digits
                .iter()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || (i == 0 && *c == b'-' && digits.len() > 1));
        if valid {
            out.extend_from_slice(digits);
        } else {
            // Not a marker we made (cannot happen for checked input): leave the string as is.
            out.extend_from_slice(&buf[start..digits_start + len + 1]);
        }
        at = (digits_start + len + 1).min(buf.len());
    }
    out.extend_from_slice(&buf[at..]);
    *buf = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_bit_bounds() {
        for (t, fits) in [
            ("18446744073709551615", true),
            ("18446744073709551616", false),
            ("9999999999999999999", true),
            ("-9223372036854775808", true),
            ("-9223372036854775809", false),
            ("-10000000000000000000", false),
            ("123456789012345678901234567890", false),
        ] {
            assert_eq!(fits_64(t.as_bytes()), fits, "{t}");
            // serde_json agrees about what it keeps exactly.
            let v: Value = serde_json::from_str(t).unwrap();
            assert_eq!(v.is_i64() || v.is_u64(), fits, "{t}");
        }
    }

    #[test]
    fn filter_finds_every_long_digit_run() {
        for pad in 0..16 {
            let line = format!("{}{}", " ".repeat(pad), "1".repeat(19));
            assert!(may_need_exact(line.as_bytes()), "{pad}");
        }
        // Conservative: runs of 15 or more digits may pass the filter; short ones never do.
        assert!(!may_need_exact(br#"{"a":1234567,"bb":"x","c":[0.5,1e-7]}"#));
        assert!(may_need_exact(br#"{"a":"\u0000"}"#));
    }

    #[test]
    fn big_integers_survive_parse_and_write() {
        let line = br#"{"a":123456789012345678901234567890,"b":[-99999999999999999999,1.5],"c":"123456789012345678901234567890"}"#;
        let v = parse_exact(line).unwrap().unwrap();
        assert_eq!(as_big_int(&v["a"]), Some("123456789012345678901234567890"));
        assert_eq!(as_big_int(&v["b"][0]), Some("-99999999999999999999"));
        assert_eq!(v["c"], "123456789012345678901234567890");
        let mut out = serde_json::to_vec(&v).unwrap();
        restore(&mut out);
        assert_eq!(out, line.to_vec());
    }

    #[test]
    fn a_marker_in_the_input_is_refused() {
        let e = parse_exact(br#"{"a":"\u0000grpo-fast:integer:5"}"#).unwrap_err();
        assert!(e.message.contains("reserved"), "{e:?}");
        assert!(parse_exact(br#"{"a":"\u0000other"}"#).unwrap().is_none());
    }
}
