//! A validating JSON skimmer specialised for rollout records: it walks one line, keeps the few
//! fields the columnar reader needs and skips the rest without building anything. Strings —
//! most of a rollout file's bytes — are skipped a word at a time.
//!
//! It is no more lenient than `serde_json`: anything it does not fully understand (or any
//! invalid JSON) makes it give up, and the caller falls back to the `serde_json::Value` path,
//! which decides and names the error.

/// The fields of a rollout line that the columnar reader uses. Strings are raw slices of the
/// line (without quotes) plus whether they contain escapes.
#[derive(Debug, Default)]
pub struct SkimmedLine<'a> {
    pub prompt: Option<RawStr<'a>>,
    pub responses: Option<Vec<SkimmedResponse>>,
    pub id: Option<&'a [u8]>,
    pub prompt_id: Option<&'a [u8]>,
    /// Decoded byte lengths of the flat text fields.
    pub completion: Option<usize>,
    pub response: Option<usize>,
    pub text: Option<usize>,
    pub score: Option<f64>,
    pub reward: Option<f64>,
    pub correct: Option<bool>,
    /// The key appeared, even if with a null value (flat `score: null` is allowed).
    pub has_score_key: bool,
    pub has_reward_key: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SkimmedResponse {
    pub text_len: Option<usize>,
    pub score: Option<f64>,
    pub correct: Option<bool>,
}

#[derive(Debug, Clone, Copy)]
pub struct RawStr<'a> {
    /// Private: only `Cursor::string` makes these, which `as_str` relies on.
    raw: &'a [u8],
    pub escaped: bool,
    pub decoded_len: usize,
}

impl<'a> RawStr<'a> {
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The raw text as a `str`: skimming checked the UTF-8 of every string with a byte
    /// >= 0x80 (and pure ASCII is UTF-8), so no second check is needed.
    pub fn as_str(&self) -> &'a str {
        debug_assert!(std::str::from_utf8(self.raw).is_ok());
        // SAFETY: a `RawStr` is only made by `Cursor::string`, which returns it only for
        // valid UTF-8 (see there).
        unsafe { std::str::from_utf8_unchecked(self.raw) }
    }

    /// The string's value (its non-ASCII bytes were UTF-8 checked while skimming).
    pub fn decode(&self) -> Option<String> {
        if !self.escaped {
            return Some(self.as_str().to_string());
        }
        let mut quoted = Vec::with_capacity(self.raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(self.raw);
        quoted.push(b'"');
        serde_json::from_slice(&quoted).ok()
    }
}

/// Give up: not understood or not valid. Carries no detail; the Value path produces that.
pub struct GiveUp;

type R<T> = Result<T, GiveUp>;

/// How deeply arrays and objects may nest in a line; the record object itself is level one.
/// One definition for every path: `serde_json` (the exact path) refuses deeper input with its
/// recursion limit, so the skimmer gives up at the same depth and the exact path names the
/// error (a test pins serde_json's limit to this value); records written from Python are held
/// to it too.
pub const MAX_NESTING: usize = 127;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
    /// A string starting with an escaped NUL was seen: it might be a reserved marker
    /// (`integers::MARKER`), which only the exact path can judge.
    nul_string: bool,
}

impl<'a> Cursor<'a> {
    #[inline]
    /// JSON whitespace except `\n`: a line never holds one, and leaving it out keeps the
    /// cursor inside its line when it skims the rest of a chunk (`skim_prefix_with`).
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> R<u8> {
        self.b.get(self.i).copied().ok_or(GiveUp)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    fn literal(&mut self, lit: &[u8]) -> R<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// A string at the cursor (which is on the opening quote).
    fn string(&mut self) -> R<RawStr<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        let mut non_ascii = false;
        let mut decoded_len = 0usize;
        loop {
            // Jump to the next byte that needs attention: a quote, a backslash or a control
            // character (which JSON forbids raw inside strings).
            let rest = &self.b[self.i..];
            let (skip, high) = find_special(rest);
            let skip = skip.ok_or(GiveUp)?;
            non_ascii |= high;
            decoded_len += skip;
            self.i += skip;
            match self.b[self.i] {
                b'"' => {
                    let raw = &self.b[start..self.i];
                    // Bytes >= 0x80 can only stand inside strings (the grammar rejects them
                    // elsewhere), so checking those strings validates the whole line.
                    if non_ascii && std::str::from_utf8(raw).is_err() {
                        return Err(GiveUp);
                    }
                    self.i += 1;
                    return Ok(RawStr {
                        raw,
                        escaped,
                        decoded_len,
                    });
                }
                b'\\' => {
                    escaped = true;
                    let esc = *self.b.get(self.i + 1).ok_or(GiveUp)?;
                    match esc {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                            decoded_len += 1;
                            self.i += 2;
                        }
                        b'u' => {
                            let cp = self.hex4(self.i + 2)?;
                            self.nul_string |= cp == 0 && self.i == start;
                            self.i += 6;
                            if (0xD800..0xDC00).contains(&cp) {
                                // A high surrogate must be followed by a low one.
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(GiveUp);
                                }
                                let lo = self.hex4(self.i + 2)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(GiveUp);
                                }
                                self.i += 6;
                                decoded_len += 4;
                            } else if (0xDC00..0xE000).contains(&cp) {
                                return Err(GiveUp);
                            } else {
                                decoded_len += match cp {
                                    0..=0x7F => 1,
                                    0x80..=0x7FF => 2,
                                    _ => 3,
                                };
                            }
                        }
                        _ => return Err(GiveUp),
                    }
                }
                _ => return Err(GiveUp), // raw control character
            }
        }
    }

    fn hex4(&self, at: usize) -> R<u32> {
        let h = self.b.get(at..at + 4).ok_or(GiveUp)?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16).ok_or(GiveUp)?;
        }
        Ok(v)
    }

    /// A number per the JSON grammar; returns its text.
    fn number(&mut self) -> R<&'a [u8]> {
        let start = self.i;
        if self.peek()? == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return Err(GiveUp),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(GiveUp);
            }
            self.digits();
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return Err(GiveUp);
            }
            self.digits();
        }
        Ok(&self.b[start..self.i])
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    /// Skips one value; `depth` is the level it has if it is an array or object.
    fn skip_value(&mut self, depth: usize) -> R<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.members(depth, true, |_, c| c.skip_value(depth + 1)),
            b'[' => self.elements(depth, |c| c.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            // serde_json rejects numbers that overflow f64 (1e400, very long integers).
            _ => self.number_checked().map(drop),
        }
    }

    /// A value that must be a number or null; the number as f64.
    fn opt_number(&mut self) -> R<Option<f64>> {
        self.ws();
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(None);
        }
        let text = self.number()?;
        if let Some(v) = short_decimal(text) {
            return Ok(Some(v));
        }
        // Safe: the grammar above admits only ASCII.
        let s = std::str::from_utf8(text).map_err(|_| GiveUp)?;
        let v: f64 = s.parse().map_err(|_| GiveUp)?;
        if !v.is_finite() {
            return Err(GiveUp); // overflow such as 1e400: serde_json rejects it too
        }
        Ok(Some(v))
    }

    fn opt_bool(&mut self) -> R<Option<bool>> {
        self.ws();
        match self.peek()? {
            b't' => self.literal(b"true").map(|_| Some(true)),
            b'f' => self.literal(b"false").map(|_| Some(false)),
            b'n' => self.literal(b"null").map(|_| None),
            _ => Err(GiveUp),
        }
    }

    /// The raw text of any value (for ids).
    fn raw_value(&mut self) -> R<&'a [u8]> {
        self.ws();
        let start = self.i;
        self.skip_value(2)?;
        Ok(&self.b[start..self.i])
    }

    fn string_value(&mut self) -> R<RawStr<'a>> {
        self.ws();
        self.string()
    }

    /// Iterates the members of an object, calling `f(key, cursor)` with the cursor before
    /// the value; `f` must consume the value. Keys are raw; with `escaped_keys` false an
    /// escaped key gives up (callers that match key names need the decoded form).
    fn members(
        &mut self,
        depth: usize,
        escaped_keys: bool,
        mut f: impl FnMut(&'a [u8], &mut Self) -> R<()>,
    ) -> R<()> {
        if depth > MAX_NESTING {
            return Err(GiveUp);
        }
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            if key.escaped && !escaped_keys {
                return Err(GiveUp);
            }
            self.ws();
            self.eat(b':')?;
            f(key.raw, self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// Iterates the elements of an array; `f` must consume each value.
    fn elements(&mut self, depth: usize, mut f: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        if depth > MAX_NESTING {
            return Err(GiveUp);
        }
        self.ws();
        self.eat(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            f(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(GiveUp),
            }
        }
    }

    fn response(&mut self) -> R<SkimmedResponse> {
        let mut r = SkimmedResponse::default();
        let mut seen = [false; 3];
        // Level 3: the record (1) holds `responses` (2), which holds the response objects.
        self.members(3, false, |key, c| {
            let slot = match key {
                b"text" => 0,
                b"score" => 1,
                b"correct" => 2,
                _ => return c.skip_value(4),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(GiveUp); // duplicate key: let serde_json decide
            }
            match slot {
                0 => r.text_len = Some(c.string_value()?.decoded_len),
                1 => r.score = c.opt_number()?,
                _ => r.correct = c.opt_bool()?,
            }
            Ok(())
        })?;
        Ok(r)
    }
}

/// The value of a number with at most 15 digits and no exponent (`1`, `0.5`, `-0.25`: what
/// scores look like), or None for anything else. Exact, as `str::parse` is: the digits as an
/// integer (< 2^53) and the power of ten (<= 1e15) are both exact doubles, and one IEEE
/// division of exact operands is correctly rounded.
#[inline]
fn short_decimal(text: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.len() > 16 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut count = 0;
    let mut scale = 0;
    for (k, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                count += 1;
            }
            b'.' => scale = digits.len() - k - 1,
            _ => return None, // an exponent
        }
    }
    if count > 15 {
        return None;
    }
    let v = mantissa as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// Finds the first `"`, `\` or byte < 0x20 in `s`, and says whether any byte >= 0x80 was
/// passed over on the way (such strings get a UTF-8 check; pure ASCII needs none). 32 bytes
/// at a time with AVX2 where the CPU has it, else sixteen with SSE2 (baseline on x86_64),
/// eight at a time with SWAR elsewhere.
#[inline]
fn find_special(s: &[u8]) -> (Option<usize>, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if s.len() >= 48 {
            // Keys and short values end within 16 bytes: look there inline first, and only
            // then call the wide scan for the rest.
            let (hit, high) = sse2_block(s);
            if hit != 0 {
                let at = hit.trailing_zeros();
                return (Some(at as usize), high & ((1u32 << at) - 1) != 0);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                let (pos, rest_high) = unsafe { find_special_avx2(&s[16..]) };
                return (pos.map(|p| p + 16), high != 0 || rest_high);
            }
        }
        find_special_sse2(s)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        find_special_swar(s)
    }
}

/// The first 16 bytes of `s` (at least 16 long): bit masks of the bytes that need attention
/// and of the bytes >= 0x80.
#[cfg(target_arch = "x86_64")]
#[inline]
fn sse2_block(s: &[u8]) -> (u32, u32) {
    use std::arch::x86_64::*;
    assert!(s.len() >= 16);
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads s[..16] (checked above).
    unsafe {
        let v = _mm_loadu_si128(s.as_ptr() as *const __m128i);
        let ctrl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
        let hit = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            ),
            ctrl,
        );
        (_mm_movemask_epi8(hit) as u32, _mm_movemask_epi8(v) as u32)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn find_special_sse2(s: &[u8]) -> (Option<usize>, bool) {
    use std::arch::x86_64::*;
    let mut i = 0;
    // SAFETY: SSE2 is part of the x86_64 baseline; loads are unaligned and stay within `s`.
    let high = unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let bslash = _mm_set1_epi8(b'\\' as i8);
        let ctrl_max = _mm_set1_epi8(0x1F);
        let mut seen = _mm_setzero_si128();
        while i + 16 <= s.len() {
            let v = _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i);
            // Unsigned v <= 0x1F  <=>  min(v, 0x1F) == v.
            let ctrl = _mm_cmpeq_epi8(_mm_min_epu8(v, ctrl_max), v);
            let hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                ctrl,
            );
            let mask = _mm_movemask_epi8(hit) as u32;
            if mask != 0 {
                let at = mask.trailing_zeros();
                // High bits of the bytes before the hit only.
                let before = (_mm_movemask_epi8(v) as u32) & ((1u32 << at) - 1);
                let high = _mm_movemask_epi8(seen) != 0 || before != 0;
                return (Some(i + at as usize), high);
            }
            seen = _mm_or_si128(seen, v);
            i += 16;
        }
        _mm_movemask_epi8(seen) != 0
    };
    let (pos, tail_high) = find_special_swar(&s[i..]);
    (pos.map(|p| i + p), high || tail_high)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn find_special_avx2(s: &[u8]) -> (Option<usize>, bool) {
    use std::arch::x86_64::*;
    let mut i = 0;
    // SAFETY: loads are unaligned and stay within `s`; AVX2 is enabled for this function.
    let high = unsafe {
        let quote = _mm256_set1_epi8(b'"' as i8);
        let bslash = _mm256_set1_epi8(b'\\' as i8);
        let ctrl_max = _mm256_set1_epi8(0x1F);
        let mut seen = _mm256_setzero_si256();
        while i + 32 <= s.len() {
            let v = _mm256_loadu_si256(s.as_ptr().add(i) as *const __m256i);
            // Unsigned v <= 0x1F  <=>  min(v, 0x1F) == v.
            let ctrl = _mm256_cmpeq_epi8(_mm256_min_epu8(v, ctrl_max), v);
            let hit = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, bslash)),
                ctrl,
            );
            let mask = _mm256_movemask_epi8(hit) as u32;
            if mask != 0 {
                let at = mask.trailing_zeros();
                // High bits of the bytes before the hit only (`at` < 32).
                let before = (_mm256_movemask_epi8(v) as u32) & ((1u32 << at) - 1);
                let high = _mm256_movemask_epi8(seen) != 0 || before != 0;
                return (Some(i + at as usize), high);
            }
            seen = _mm256_or_si256(seen, v);
            i += 32;
        }
        _mm256_movemask_epi8(seen) != 0
    };
    let (pos, tail_high) = find_special_sse2(&s[i..]);
    (pos.map(|p| i + p), high || tail_high)
}

#[inline]
fn find_special_swar(s: &[u8]) -> (Option<usize>, bool) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    let mut high = false;
    while i + 8 <= s.len() {
        let Ok(bytes) = s[i..i + 8].try_into() else {
            break;
        };
        let w = u64::from_le_bytes(bytes);
        let quote = w ^ (LO * b'"' as u64);
        let bslash = w ^ (LO * b'\\' as u64);
        // Classic "has zero byte" / "has byte less than n" tests.
        let z = |x: u64| x.wrapping_sub(LO) & !x & HI;
        let ctrl = w.wrapping_sub(LO * 0x20) & !w & HI;
        let hit = z(quote) | z(bslash) | ctrl;
        if hit != 0 {
            // The lowest flagged byte is exact for these tests (borrows only move upward).
            let at = (hit.trailing_zeros() / 8) as usize;
            let before = s[i..i + at].iter().any(|&c| c >= 0x80);
            return (Some(i + at), high || before);
        }
        high |= w & HI != 0;
        i += 8;
    }
    for (k, &c) in s[i..].iter().enumerate() {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return (Some(i + k), high);
        }
        high |= c >= 0x80;
    }
    (None, high)
}

/// A scalar token met by `Cursor::walk`: a number (its byte range in the line) or a string or
/// object key (its raw bytes between the quotes).
pub enum Token<'a> {
    Number(std::ops::Range<usize>),
    Str(&'a [u8]),
}

impl<'a> Cursor<'a> {
    /// Walks one value of any shape (level `depth` if it is an array or object), calling `f` on
    /// every number, string and key in order.
    fn walk(&mut self, depth: usize, f: &mut dyn FnMut(Token<'a>) -> R<()>) -> R<()> {
        self.ws();
        match self.peek()? {
            b'"' => {
                let s = self.string()?;
                f(Token::Str(s.raw))
            }
            b'{' => self.members(depth, true, |key, c| {
                f(Token::Str(key))?;
                c.walk(depth + 1, f)
            }),
            b'[' => self.elements(depth, |c| c.walk(depth + 1, f)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => {
                let start = self.i;
                self.number_checked()?;
                f(Token::Number(start..self.i))
            }
        }
    }

    /// A number that `serde_json` also accepts (it refuses ones that overflow f64).
    fn number_checked(&mut self) -> R<&'a [u8]> {
        let text = self.number()?;
        if text.len() > 300 || text.iter().any(|&c| c == b'e' || c == b'E') {
            let s = std::str::from_utf8(text).map_err(|_| GiveUp)?;
            if !s.parse::<f64>().map_err(|_| GiveUp)?.is_finite() {
                return Err(GiveUp);
            }
        }
        Ok(text)
    }

    /// Writes the canonical text of the value at the cursor (see `canonical_value`).
    fn canonical(&mut self, depth: usize, out: &mut String) -> R<()> {
        self.ws();
        match self.peek()? {
            b'"' => {
                let s = self.string()?;
                push_canonical_str(s.raw, s.escaped, out)
            }
            b'{' => {
                out.push('{');
                let mut first = true;
                self.members(depth, true, |key, c| {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    push_canonical_str(key, key.contains(&b'\\'), out)?;
                    out.push(':');
                    c.canonical(depth + 1, out)
                })?;
                out.push('}');
                Ok(())
            }
            b'[' => {
                out.push('[');
                let mut first = true;
                self.elements(depth, |c| {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    c.canonical(depth + 1, out)
                })?;
                out.push(']');
                Ok(())
            }
            b't' => self.literal(b"true").map(|_| out.push_str("true")),
            b'f' => self.literal(b"false").map(|_| out.push_str("false")),
            b'n' => self.literal(b"null").map(|_| out.push_str("null")),
            _ => {
                let text = self.number_checked()?;
                canonical_number(text, out);
                Ok(())
            }
        }
    }
}

/// The value of a JSON string from its raw bytes (between the quotes).
pub fn decode_str(raw: &[u8], escaped: bool) -> Option<String> {
    if !escaped {
        return std::str::from_utf8(raw).ok().map(str::to_string);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).ok()
}

/// A string as `serde_json` writes it: decoded, then quoted with its minimal escapes. A raw
/// string without escapes is already in that form (JSON forbids raw quotes and control bytes).
fn push_canonical_str(raw: &[u8], escaped: bool, out: &mut String) -> R<()> {
    if !escaped {
        out.push('"');
        out.push_str(std::str::from_utf8(raw).map_err(|_| GiveUp)?);
        out.push('"');
        return Ok(());
    }
    let decoded = decode_str(raw, true).ok_or(GiveUp)?;
    out.push_str(&serde_json::Value::String(decoded).to_string());
    Ok(())
}

/// Numbers by their exact decimal value, so `1`, `1.0`, `1e0` and `10e-1` are one key, `-0` is
/// `0`, and integers beyond 64 bits keep every digit (no rounding through f64). Integers are
/// written as digits, other values with up to 40 places as decimals, the rest as `DIGITSeEXP`.
fn canonical_number(text: &[u8], out: &mut String) {
    let (neg, rest) = match text.split_first() {
        Some((b'-', r)) => (true, r),
        _ => (false, text),
    };
    let mant_end = rest
        .iter()
        .position(|&c| c == b'e' || c == b'E')
        .unwrap_or(rest.len());
    let (mantissa, exp_text) = rest.split_at(mant_end);
    // The grammar was checked: the exponent is [eE][+-]?digits. Clamp it: beyond 10^15 no key
    // can be told apart by f64 anyway and the arithmetic below must not overflow.
    let mut exp: i64 = 0;
    if let Some((_, e)) = exp_text.split_first() {
        let (eneg, edigits) = match e.split_first() {
            Some((b'-', d)) => (true, d),
            Some((b'+', d)) => (false, d),
            _ => (false, e),
        };
        for &d in edigits {
            exp = (exp * 10 + i64::from(d - b'0')).min(1_000_000_000_000_000);
        }
        if eneg {
            exp = -exp;
        }
    }
    let mut digits: Vec<u8> = Vec::with_capacity(mantissa.len());
    for &c in mantissa {
        if c == b'.' {
            continue;
        }
        digits.push(c);
    }
    if let Some(dot) = mantissa.iter().position(|&c| c == b'.') {
        exp -= (mantissa.len() - dot - 1) as i64;
    }
    let lead = digits.iter().take_while(|&&c| c == b'0').count();
    digits.drain(..lead);
    let trail = digits.iter().rev().take_while(|&&c| c == b'0').count();
    digits.truncate(digits.len() - trail);
    exp += trail as i64;
    if digits.is_empty() {
        out.push('0');
        return;
    }
    if neg {
        out.push('-');
    }
    // Safe: the digits are ASCII.
    let d = std::str::from_utf8(&digits).unwrap_or("0");
    const PLACES: i64 = 40;
    if (0..=PLACES).contains(&exp) {
        out.push_str(d);
        out.push_str(&"0".repeat(exp as usize));
    } else if (-PLACES..0).contains(&exp) {
        let point = d.len() as i64 + exp;
        if point > 0 {
            out.push_str(&d[..point as usize]);
            out.push('.');
            out.push_str(&d[point as usize..]);
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-point) as usize));
            out.push_str(d);
        }
    } else {
        out.push_str(d);
        out.push('e');
        out.push_str(&exp.to_string());
    }
}

/// The canonical text of one JSON value: no whitespace, strings as `serde_json` writes them,
/// numbers by exact value (`canonical_number`), members and elements in their order. Two
/// values have the same canonical text exactly when they are the same group key. None when
/// `raw` is not one valid JSON value.
pub fn canonical_value(raw: &[u8]) -> Option<String> {
    let mut c = Cursor {
        b: raw,
        i: 0,
        nul_string: false,
    };
    let mut out = String::with_capacity(raw.len());
    c.canonical(2, &mut out).ok()?;
    c.ws();
    (c.i == raw.len()).then_some(out)
}

/// The raw text of the top-level member `field` of the object on `line` (keys compared by
/// their decoded value; of duplicates the last, as `serde_json` keeps it). None when absent or
/// when the line is not a valid object.
pub fn top_level_member<'a>(line: &'a [u8], field: &str) -> Option<&'a [u8]> {
    let mut c = Cursor {
        b: line,
        i: 0,
        nul_string: false,
    };
    let b = line;
    let mut found = None;
    c.members(1, true, |key, c| {
        let matches = if key.contains(&b'\\') {
            decode_str(key, true).is_some_and(|k| k == field)
        } else {
            key == field.as_bytes()
        };
        c.ws();
        let start = c.i;
        c.skip_value(2)?;
        if matches {
            found = Some(&b[start..c.i]);
        }
        Ok(())
    })
    .ok()?;
    found
}

/// Calls `f` on every number, string and key of the JSON value on `line`, in order. Err when
/// the line is not valid JSON (or nests deeper than `MAX_NESTING`).
pub fn walk_tokens<'a>(line: &'a [u8], f: &mut dyn FnMut(Token<'a>) -> R<()>) -> R<()> {
    let mut c = Cursor {
        b: line,
        i: 0,
        nul_string: false,
    };
    c.walk(1, f)?;
    c.ws();
    if c.i != line.len() {
        return Err(GiveUp);
    }
    Ok(())
}

/// Skims one line; invalid UTF-8 makes it give up like any other invalid input.
/// `Err` means "use the exact path".
pub fn skim_line(line: &[u8]) -> R<SkimmedLine<'_>> {
    skim_line_with(line, Vec::new())
}

/// `skim_line`, collecting responses into `list` (cleared first; pass back the `responses` of
/// an earlier line to save an allocation per line).
pub fn skim_line_with(line: &[u8], list: Vec<SkimmedResponse>) -> R<SkimmedLine<'_>> {
    let (out, end) = skim_object(line, list)?;
    if end != line.len() {
        return Err(GiveUp); // trailing bytes after the object
    }
    Ok(out)
}

/// Skims the line at the start of `data` (which may hold further lines) without looking for
/// its end first: returns the fields and the length of the line including its `\n` (all of
/// `data` for a last line without one). The line must be an object, then JSON whitespace.
pub fn skim_prefix_with(data: &[u8], list: Vec<SkimmedResponse>) -> R<(SkimmedLine<'_>, usize)> {
    let (out, end) = skim_object(data, list)?;
    match data.get(end) {
        None => Ok((out, end)),
        Some(b'\n') => Ok((out, end + 1)),
        Some(_) => Err(GiveUp), // trailing bytes after the object
    }
}

/// One object at the start of `b`, then whitespace other than `\n`; returns where that ends.
fn skim_object(b: &[u8], mut list: Vec<SkimmedResponse>) -> R<(SkimmedLine<'_>, usize)> {
    list.clear();
    let mut list = Some(list);
    let mut c = Cursor {
        b,
        i: 0,
        nul_string: false,
    };
    let mut out = SkimmedLine::default();
    let mut seen = [false; 11];
    c.members(1, false, |key, c| {
        let slot = match key {
            b"prompt" => 0,
            b"responses" => 1,
            b"id" => 2,
            b"prompt_id" => 3,
            b"completion" => 4,
            b"response" => 5,
            b"text" => 6,
            b"score" => 7,
            b"reward" => 8,
            b"correct" => 9,
            _ => return c.skip_value(2),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(GiveUp);
        }
        match slot {
            0 => out.prompt = Some(c.string_value()?),
            1 => {
                let mut list = list.take().unwrap_or_default();
                if list.capacity() == 0 {
                    list.reserve(16);
                }
                c.elements(2, |c| {
                    list.push(c.response()?);
                    Ok(())
                })?;
                out.responses = Some(list);
            }
            2 => out.id = Some(c.raw_value()?),
            3 => out.prompt_id = Some(c.raw_value()?),
            4 => out.completion = Some(c.string_value()?.decoded_len),
            5 => out.response = Some(c.string_value()?.decoded_len),
            6 => out.text = Some(c.string_value()?.decoded_len),
            7 => {
                out.has_score_key = true;
                out.score = c.opt_number()?;
            }
            8 => {
                out.has_reward_key = true;
                out.reward = c.opt_number()?;
            }
            _ => out.correct = c.opt_bool()?,
        }
        Ok(())
    })?;
    if c.nul_string {
        return Err(GiveUp);
    }
    c.ws();
    Ok((out, c.i))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn find_special_agrees_with_a_plain_scan(s in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::Just(b'"'),
                proptest::prelude::Just(b'\\'),
                0u8..=255,
                b'a'..=b'z',
                b'a'..=b'z',
                b'a'..=b'z',
            ],
            0..160,
        )) {
            let plain = s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            let high = s[..plain.unwrap_or(s.len())].iter().any(|&c| c >= 0x80);
            let (pos, seen) = find_special(&s);
            proptest::prop_assert_eq!(pos, plain);
            // Conservative: may report high bytes past the hit, never miss one before it.
            proptest::prop_assert!(seen || !high);
            let (pos, seen) = find_special_sse2(&s);
            proptest::prop_assert_eq!(pos, plain);
            // Conservative: may report high bytes past the hit, never miss one before it.
            proptest::prop_assert!(seen || !high);
            let (pos, seen) = find_special_swar(&s);
            proptest::prop_assert_eq!(pos, plain);
            proptest::prop_assert_eq!(seen, high);
        }
    }

    proptest::proptest! {
        #[test]
        fn short_decimals_parse_like_std(
            int in 0u64..1_000_000_000_000_000,
            frac_digits in 0usize..16,
            neg: bool,
        ) {
            let digits = int.to_string();
            let text = if frac_digits == 0 || frac_digits >= digits.len() {
                digits.clone()
            } else {
                let (a, b) = digits.split_at(digits.len() - frac_digits);
                format!("{a}.{b}")
            };
            let text = if neg { format!("-{text}") } else { text };
            let want: f64 = text.parse().unwrap();
            if let Some(got) = short_decimal(text.as_bytes()) {
                proptest::prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", text);
            }
        }
    }

    #[test]
    fn short_decimal_cases() {
        for t in [
            "0",
            "1",
            "1.0",
            "0.5",
            "-0.0",
            "0.1",
            "0.3",
            "123456789012345",
            "0.00000000000001",
            "9.99999999999999",
        ] {
            let want: f64 = t.parse().unwrap();
            assert_eq!(
                short_decimal(t.as_bytes()).unwrap().to_bits(),
                want.to_bits(),
                "{t}"
            );
        }
        for t in ["1e5", "1234567890123456", "0.1234567890123456"] {
            assert!(short_decimal(t.as_bytes()).is_none(), "{t}");
        }
    }

    #[test]
    fn gives_up_on_invalid_json() {
        let bad = [
            r#"{"prompt":"a",}"#,
            r#"{"prompt":"a"} x"#,
            r#"{"prompt":01}"#,
            r#"{"prompt":"\x"}"#,
            r#"{"a":[1,2,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            "{\"a\":\"tab\tinside\"}",
        ];
        for b in bad {
            assert!(skim_line(b.as_bytes()).is_err(), "{b}");
            assert!(serde_json::from_str::<serde_json::Value>(b).is_err(), "{b}");
        }
    }

    #[test]
    fn gives_up_on_invalid_utf8_inside_any_string() {
        let lines: [&[u8]; 3] = [
            b"{\"prompt\":\"ok \xff\",\"responses\":[{\"text\":\"a\"}]}",
            b"{\"skipped\":\"long enough to take the vector path \xc3\x28 here\",\"prompt\":\"p\"}",
            b"{\"prompt\":\"p\",\"responses\":[{\"text\":\"\xe2\x82\"}]}",
        ];
        for line in lines {
            assert!(
                skim_line(line).is_err(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let ok = "{\"prompt\":\"caf\u{e9} \u{1F600} long enough for sixteen bytes\",\"responses\":[{\"text\":\"\u{4e2d}\"}]}";
        let s = skim_line(ok.as_bytes()).ok().unwrap();
        assert_eq!(s.responses.unwrap()[0].text_len, Some(3));
    }

    #[test]
    fn reads_the_fields_it_keeps() {
        let line = br#"{"x":{"y":[1,{"z":null}]},"prompt":"p\"q","responses":[{"text":"a\u00e9","score":1e0,"correct":true,"k":[]},{"text":""}],"id":"a-1"}"#;
        let s = skim_line(line).ok().unwrap();
        assert_eq!(s.prompt.unwrap().decode().unwrap(), "p\"q");
        let r = s.responses.unwrap();
        assert_eq!(
            (r[0].text_len, r[0].score, r[0].correct),
            (Some(3), Some(1.0), Some(true))
        );
        assert_eq!(r[1].text_len, Some(0));
        assert_eq!(s.id.unwrap(), br#""a-1""#);
    }
}
