//! A small parser for the scalar LaTeX expressions answers are made of (numbers, `\frac`,
//! `\sqrt`, powers, `\pi`, `e`, single-letter variables, a few functions) and two evaluators:
//! exact rationals, and floating point at sample points for everything irrational or symbolic.
//! Anything outside this grammar fails to parse, which sends the item to the symbolic path.

use num_bigint::BigInt;
use num_complex::Complex64 as C64;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Exact powers and factorials are refused beyond these sizes (`10^{10^{10}}` must not be
/// computed); the item then goes to the symbolic path, which runs under a hard deadline.
/// Rational arithmetic reduces by a gcd after every step, which is superlinear in the size:
/// 32 kbit (about 10,000 digits: enough for `\frac{1}{2006!}`) keeps every step well under a
/// millisecond.
const MAX_RESULT_BITS: u64 = 1 << 15;
const MAX_FACTORIAL: u64 = 3000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Ln,
    Exp,
    Asin,
    Acos,
    Atan,
    Acot,
    Sinh,
    Cosh,
    Tanh,
    Abs,
    Floor,
    Ceil,
}

impl Func {
    /// `\sin^{-1}` is `\arcsin`.
    fn inverse(self) -> Option<Func> {
        Some(match self {
            Func::Sin => Func::Asin,
            Func::Cos => Func::Acos,
            Func::Tan => Func::Atan,
            Func::Cot => Func::Acot,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(BigRational),
    Var(String),
    Pi,
    E,
    /// The imaginary unit.
    I,
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Root(Box<Expr>, Box<Expr>),
    Fact(Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>),
    /// `\log_{base} arg`.
    Log(Box<Expr>, Box<Expr>),
    Gcd(Vec<Expr>),
    Lcm(Vec<Expr>),
}

/// A parsed expression plus what the comparison needs to know about how it was written.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub expr: Expr,
    /// It contains a decimal literal such as `1.414`: compared with the float tolerance.
    pub has_decimal: bool,
    /// The most digits after a decimal point in any literal (`0.166667` has 6).
    pub decimals: usize,
    /// Variable names, sorted and deduplicated.
    pub vars: Vec<String>,
}

pub(crate) const GREEK: [&str; 22] = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "phi",
    "varphi",
    "omega",
];

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    has_decimal: bool,
    decimals: usize,
    vars: Vec<String>,
    depth: usize,
}

/// Deeply nested input must not overflow the stack.
const MAX_DEPTH: usize = 200;

fn b(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.s[self.pos..]
    }

    /// The command name at the cursor (`\frac` -> "frac"), without consuming it.
    fn command(&self) -> Option<&'a str> {
        let r = self.rest();
        if r.first() != Some(&b'\\') {
            return None;
        }
        let n = r[1..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        if n == 0 {
            return None;
        }
        std::str::from_utf8(&r[1..1 + n]).ok()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_command(&mut self, name: &str) -> bool {
        self.skip_spaces();
        if self.command() == Some(name) {
            self.pos += 1 + name.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn expr(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut lhs = self.term()?;
        loop {
            if self.eat(b'+') {
                lhs = Expr::Add(b(lhs), b(self.term()?));
            } else if self.eat(b'-') {
                lhs = Expr::Sub(b(lhs), b(self.term()?));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Some(lhs)
    }

    fn term(&mut self) -> Option<Expr> {
        let mut lhs = self.unary()?;
        loop {
            self.skip_spaces();
            if self.eat(b'*') || self.eat_command("cdot") || self.eat_command("times") {
                lhs = Expr::Mul(b(lhs), b(self.unary()?));
            } else if self.eat(b'/') || self.eat_command("div") {
                lhs = Expr::Div(b(lhs), b(self.unary()?));
            } else if self.starts_atom() {
                // Implicit multiplication: `2x`, `2\sqrt{3}`, `(x-1)(x+1)`; an integer directly
                // followed by a proper numeric fraction is a mixed number (`3\frac{1}{2}`).
                let rhs = self.power()?;
                lhs = match (&lhs, &rhs) {
                    (Expr::Num(w), Expr::Div(n, d)) if is_mixed(w, n, d) => {
                        Expr::Add(b(lhs), b(rhs))
                    }
                    _ => Expr::Mul(b(lhs), b(rhs)),
                };
            } else {
                break;
            }
        }
        Some(lhs)
    }

    fn starts_atom(&self) -> bool {
        match self.peek() {
            Some(c) if c.is_ascii_alphanumeric() || c == b'(' || c == b'{' || c == b'.' => true,
            Some(b'\\') => {
                // Operators and closing delimiters do not start a factor.
                matches!(self.command(), Some(name) if !matches!(name, "cdot" | "times" | "div" | "rfloor" | "rceil"))
            }
            _ => false,
        }
    }

    fn unary(&mut self) -> Option<Expr> {
        self.enter()?;
        let out = if self.eat(b'-') {
            Expr::Neg(b(self.unary()?))
        } else if self.eat(b'+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Some(out)
    }

    fn power(&mut self) -> Option<Expr> {
        let base = self.postfix()?;
        if self.eat(b'^') {
            let exp = self.exponent()?;
            // `x^2!` is unusual; `2^{3}!` too. Factorials bind to the atom only.
            return Some(Expr::Pow(b(base), b(exp)));
        }
        Some(base)
    }

    /// `^{...}`, `^2`, `^x`, `^\pi`, `^-1`. Unbraced digits are all taken: TeX would typeset
    /// `2^10` as `2^1 0`, but writers of answers mean 1024.
    fn exponent(&mut self) -> Option<Expr> {
        self.skip_spaces();
        match self.peek()? {
            b'{' => self.atom(),
            b'-' => {
                self.pos += 1;
                Some(Expr::Neg(b(self.exponent()?)))
            }
            c if c.is_ascii_digit() => {
                let start = self.pos;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.pos]).ok()?;
                Some(Expr::Num(BigRational::from_integer(digits.parse().ok()?)))
            }
            _ => self.atom(),
        }
    }

    fn postfix(&mut self) -> Option<Expr> {
        let mut e = self.atom()?;
        while self.eat(b'!') {
            e = Expr::Fact(b(e));
        }
        Some(e)
    }

    /// A `{...}` group (the braces are LaTeX grouping, not sets).
    fn group(&mut self) -> Option<Expr> {
        if !self.eat(b'{') {
            return None;
        }
        let e = self.expr()?;
        self.eat(b'}').then_some(e)
    }

    fn atom(&mut self) -> Option<Expr> {
        self.enter()?;
        self.skip_spaces();
        let c = self.peek()?;
        let out = match c {
            b'0'..=b'9' | b'.' => self.number()?,
            b'(' => {
                self.pos += 1;
                let e = self.expr()?;
                if !self.eat(b')') {
                    return None;
                }
                e
            }
            b'{' => self.group()?,
            b'|' => {
                self.pos += 1;
                let e = self.expr()?;
                if !self.eat(b'|') {
                    return None;
                }
                Expr::Call(Func::Abs, b(e))
            }
            b'\\' => self.command_atom()?,
            b'e' => {
                self.pos += 1;
                Expr::E
            }
            // In answers `i` is the imaginary unit.
            b'i' => {
                self.pos += 1;
                Expr::I
            }
            c if c.is_ascii_alphabetic() => {
                self.pos += 1;
                let name = self.subscript((c as char).to_string())?;
                self.var(name)
            }
            _ => return None,
        };
        self.depth -= 1;
        Some(out)
    }

    /// `x_1`, `a_{n}`: the subscript is part of the variable name.
    fn subscript(&mut self, mut name: String) -> Option<String> {
        if self.peek() == Some(b'_') {
            self.pos += 1;
            match self.peek()? {
                b'{' => {
                    let inner = std::str::from_utf8(&self.s[self.pos + 1..]).ok()?;
                    let close = crate::extract::matching_brace(inner)?;
                    name.push('_');
                    name.push_str(&inner[..close]);
                    self.pos += close + 2;
                }
                c if c.is_ascii_alphanumeric() => {
                    name.push('_');
                    name.push(c as char);
                    self.pos += 1;
                }
                _ => return None,
            }
        }
        Some(name)
    }

    fn var(&mut self, name: String) -> Expr {
        if !self.vars.contains(&name) {
            self.vars.push(name.clone());
        }
        Expr::Var(name)
    }

    fn number(&mut self) -> Option<Expr> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let int_part = &self.s[start..self.pos];
        let mut frac_part: &[u8] = &[];
        if self.peek() == Some(b'.') && self.s.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
            let fs = self.pos;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
            frac_part = &self.s[fs..self.pos];
            self.has_decimal = true;
            self.decimals = self.decimals.max(frac_part.len());
        } else if int_part.is_empty() {
            return None;
        }
        let digits: String = int_part
            .iter()
            .chain(frac_part)
            .map(|&c| c as char)
            .collect();
        let mantissa: BigInt = if digits.is_empty() {
            BigInt::zero()
        } else {
            digits.parse().ok()?
        };
        let mut value = BigRational::new(mantissa, BigInt::from(10u8).pow(frac_part.len() as u32));
        // A repeating block: `0.\overline{3}` = 1/3, `1.2\overline{45}`.
        if self.rest().starts_with(b".\\overline{") {
            self.pos += 1;
        }
        if self.rest().starts_with(b"\\overline{") {
            let start = self.pos + 10;
            let len = self.s[start..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if len == 0 || len > 50 || self.s.get(start + len) != Some(&b'}') {
                return None;
            }
            let block: BigInt = std::str::from_utf8(&self.s[start..start + len])
                .ok()?
                .parse()
                .ok()?;
            let scale = BigInt::from(10u8).pow(frac_part.len() as u32);
            let period = BigInt::from(10u8).pow(len as u32) - 1u8;
            value += BigRational::new(block, scale * period);
            self.pos = start + len + 1;
            return Some(Expr::Num(value));
        }
        // Scientific notation written as `1.5e3` / `2E-4` (only directly after a number).
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.pos;
            self.pos += 1;
            let neg = if self.peek() == Some(b'-') {
                self.pos += 1;
                true
            } else {
                if self.peek() == Some(b'+') {
                    self.pos += 1;
                }
                false
            };
            let es = self.pos;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
            let exp: Option<i64> = std::str::from_utf8(&self.s[es..self.pos])
                .ok()
                .and_then(|t| t.parse().ok());
            match exp {
                Some(k) if k.unsigned_abs() <= 400 => {
                    let scale =
                        BigRational::from_integer(BigInt::from(10u8).pow(k.unsigned_abs() as u32));
                    value = if neg { value / scale } else { value * scale };
                }
                _ => self.pos = save,
            }
        }
        Some(Expr::Num(value))
    }

    fn command_atom(&mut self) -> Option<Expr> {
        let name = self.command()?;
        self.pos += 1 + name.len();
        match name {
            "frac" => {
                let n = self.group()?;
                let d = self.group()?;
                Some(Expr::Div(b(n), b(d)))
            }
            "binom" => {
                let n = self.group()?;
                let k = self.group()?;
                Some(Expr::Binom(b(n), b(k)))
            }
            "sqrt" => {
                let index = if self.eat(b'[') {
                    let e = self.expr()?;
                    if !self.eat(b']') {
                        return None;
                    }
                    e
                } else {
                    Expr::Num(BigRational::from_integer(BigInt::from(2)))
                };
                let arg = self.group()?;
                Some(Expr::Root(b(arg), b(index)))
            }
            "pi" => Some(Expr::Pi),
            "lfloor" => self.delimited(Func::Floor, "rfloor"),
            "lceil" => self.delimited(Func::Ceil, "rceil"),
            "gcd" | "lcm" => self.integer_function(name),
            "operatorname" => {
                let inner = std::str::from_utf8(self.rest()).ok()?.strip_prefix('{')?;
                let close = inner.find('}')?;
                let op = &inner[..close];
                self.pos += close + 2;
                match op {
                    "gcd" | "lcm" => self.integer_function(op),
                    _ => None,
                }
            }
            // `\log_2 8`, `\log_{10}(x)`, `\log_2 8x` (the argument read as `\sin 2x`'s); plain
            // `\log` is the common logarithm, as latex2sympy (the symbolic path) and math-verify
            // read it: `\log 100` = 2.
            "log" => {
                let base = if self.peek() == Some(b'_') {
                    self.pos += 1;
                    self.exponent()?
                } else {
                    Expr::Num(BigRational::from_integer(BigInt::from(10)))
                };
                self.skip_spaces();
                if self.peek() == Some(b'^') {
                    return None;
                }
                let arg = self.function_argument()?;
                Some(Expr::Log(b(base), b(arg)))
            }
            "left" | "right" => self.atom(),
            _ if GREEK.contains(&name) => {
                let n = self.subscript(name.to_string())?;
                Some(self.var(n))
            }
            _ => {
                let f = match name {
                    "sin" => Func::Sin,
                    "cos" => Func::Cos,
                    "tan" => Func::Tan,
                    "sec" => Func::Sec,
                    "csc" => Func::Csc,
                    "cot" => Func::Cot,
                    "ln" => Func::Ln,
                    "sinh" => Func::Sinh,
                    "cosh" => Func::Cosh,
                    "tanh" => Func::Tanh,
                    "exp" => Func::Exp,
                    "arcsin" => Func::Asin,
                    "arccos" => Func::Acos,
                    "arctan" => Func::Atan,
                    _ => return None,
                };
                // `\sin^2 x` is `(\sin x)^2`; `\sin^{-1} x` is `\arcsin x`.
                self.skip_spaces();
                let mut power = None;
                if self.peek() == Some(b'^') {
                    self.pos += 1;
                    let e = self.exponent()?;
                    let k = exact(&e).and_then(|k| int_of(&k))?;
                    match k {
                        -1 => {
                            let inv = f.inverse()?;
                            let arg = self.function_argument()?;
                            return Some(Expr::Call(inv, b(arg)));
                        }
                        1..=8 => power = Some(e),
                        _ => return None,
                    }
                }
                let arg = self.function_argument()?;
                let call = Expr::Call(f, b(arg));
                Some(match power {
                    Some(e) => Expr::Pow(b(call), b(e)),
                    None => call,
                })
            }
        }
    }

    /// The argument of `\sin`, `\ln`, ...: a bracketed group, or, written without brackets, the
    /// product of plain factors that follows (`\sin 2x` is sin(2x), `\tan 3\theta` is tan(3θ),
    /// as every textbook reads them). The product stops at an operator, a bracket or another
    /// function, so `\sin x \cos x` is sin(x)·cos(x) and `\sin x (1 + x)` is sin(x)·(1 + x).
    fn function_argument(&mut self) -> Option<Expr> {
        self.skip_spaces();
        // A bracketed argument is the argument; a power or a factorial after it applies to the
        // value of the function: `\sin(x)^2` is (sin x)², as sympy reads it.
        if matches!(self.peek(), Some(b'(' | b'{' | b'|')) || self.command() == Some("left") {
            return self.atom();
        }
        let mut arg = self.power()?;
        loop {
            self.skip_spaces();
            let plain = match self.peek() {
                Some(c) if c.is_ascii_alphanumeric() => true,
                Some(b'\\') => self
                    .command()
                    .is_some_and(|n| n == "pi" || GREEK.contains(&n)),
                _ => false,
            };
            if !plain {
                return Some(arg);
            }
            arg = Expr::Mul(b(arg), b(self.power()?));
        }
    }

    /// `\lfloor x \rfloor`, `\lceil x \rceil`: the argument up to the closing command.
    fn delimited(&mut self, f: Func, close: &str) -> Option<Expr> {
        let e = self.expr()?;
        self.eat_command(close).then(|| Expr::Call(f, b(e)))
    }

    /// `\operatorname{lcm}(4, 6)`, `\gcd(4, 6)`: integer functions of an argument list.
    fn integer_function(&mut self, name: &str) -> Option<Expr> {
        if !self.eat(b'(') {
            return None;
        }
        let mut args = vec![self.expr()?];
        while self.eat(b',') {
            args.push(self.expr()?);
        }
        if !self.eat(b')') || args.len() > 16 {
            return None;
        }
        Some(match name {
            "gcd" => Expr::Gcd(args),
            "lcm" => Expr::Lcm(args),
            _ => return None,
        })
    }
}

/// Functions whose argument may be written without brackets (`\sin 2x`). The hyperbolic and
/// reciprocal ones the evaluator lacks are read by the same rule, for the symbolic path.
const BRACKETLESS_FUNCTIONS: [&str; 19] = [
    "sin", "cos", "tan", "sec", "csc", "cot", "sinh", "cosh", "tanh", "coth", "sech", "csch",
    "arcsin", "arccos", "arctan", "arccot", "ln", "log", "exp",
];

/// `s` with the argument of every function written without brackets put in brackets, read by
/// this parser's rule (see `function_argument`): `\sin 2x` -> `\sin(2x)`, `\sin^2 x` ->
/// `\sin^2(x)`, `\sin x\cos x` -> `\sin(x)\cos(x)`, `\sin x (1+x)` -> `\sin(x)(1+x)`,
/// `\sin{x}y` -> `\sin(x)y`, `\log_2 8x` -> `\log_2(8x)`. The normaliser applies it, so the
/// symbolic path (latex2sympy, which reads `\sin x \cdot \cos x` as sin(x cos x)) reads what
/// the fast path reads. A function whose argument this grammar cannot read is left as written.
/// Linear in `s` apart from re-reading arguments that hold further functions (bounded by the
/// parser's depth limit).
pub fn bracket_function_arguments(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') || s.len() > 2000 {
        return s.into();
    }
    let b = s.as_bytes();
    // (position, text inserted there, bytes replaced).
    let mut edits: Vec<(usize, &str, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let n = b[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let name = &s[i + 1..i + 1 + n];
        let after = i + 1 + n;
        if n == 0 || !BRACKETLESS_FUNCTIONS.contains(&name) {
            i = after.max(i + 2);
            continue;
        }
        let mut p = Parser {
            s: b,
            pos: after,
            has_decimal: false,
            decimals: 0,
            vars: Vec::new(),
            depth: 0,
        };
        // `\log_2`, `\log_{10}`: the base; `\sin^2`, `\sin^{-1}`: the power.
        let scripts_ok = (|| {
            if name == "log" && p.peek() == Some(b'_') {
                p.pos += 1;
                p.exponent()?;
            }
            let before_spaces = p.pos;
            p.skip_spaces();
            if p.peek() == Some(b'^') {
                p.pos += 1;
                p.exponent()?;
            } else {
                p.pos = before_spaces;
            }
            Some(())
        })();
        // The spaces before the argument go: `\sin x` -> `\sin(x)`.
        let name_end = p.pos;
        p.skip_spaces();
        let start = p.pos;
        let bracketed = |c: u8| c == b'(' || c == b'|' || c == b'{';
        match (scripts_ok, p.peek()) {
            // `\sin{x}y`: a braced argument is the argument, as `\sin(x)y`.
            (Some(()), Some(b'{')) if p.group().is_some() => {
                edits.push((name_end, "(", start + 1 - name_end));
                edits.push((p.pos - 1, ")", 1));
            }
            (Some(()), Some(c))
                if !bracketed(c)
                    && p.command() != Some("left")
                    && p.function_argument().is_some() =>
            {
                let mut end = p.pos;
                while end > start && b[end - 1] == b' ' {
                    end -= 1;
                }
                if end > start {
                    edits.push((name_end, "(", start - name_end));
                    edits.push((end, ")", 0));
                }
            }
            _ => {}
        }
        i = after;
    }
    if edits.is_empty() {
        return s.into();
    }
    // At one position, insertions before a replacement: an inner function's `)` goes before the
    // `}` an outer one turns into `)` (`\sin{\cos x}`).
    edits.sort_by_key(|e| (e.0, e.2));
    let mut out = String::with_capacity(s.len() + edits.len());
    let mut at = 0;
    for (pos, text, replaced) in edits {
        if pos < at {
            continue;
        }
        out.push_str(&s[at..pos]);
        out.push_str(text);
        at = pos + replaced;
    }
    out.push_str(&s[at..]);
    out.into()
}

fn is_mixed(whole: &BigRational, n: &Expr, d: &Expr) -> bool {
    match (n, d) {
        (Expr::Num(n), Expr::Num(d)) => {
            whole.is_integer()
                && n.is_integer()
                && d.is_integer()
                && n.is_positive()
                && n < d
                && !whole.is_negative()
        }
        _ => false,
    }
}

/// Parse a normalised scalar expression; None when it is outside the fast-path grammar.
pub fn parse(s: &str) -> Option<Parsed> {
    if s.is_empty() || s.len() > 2000 {
        return None;
    }
    let mut p = Parser {
        s: s.as_bytes(),
        pos: 0,
        has_decimal: false,
        decimals: 0,
        vars: Vec::new(),
        depth: 0,
    };
    let expr = p.expr()?;
    p.skip_spaces();
    if p.pos != s.len() {
        return None;
    }
    let mut vars = p.vars;
    vars.sort();
    Some(Parsed {
        expr,
        has_decimal: p.has_decimal,
        decimals: p.decimals,
        vars,
    })
}

fn bits(x: &BigRational) -> u64 {
    x.numer().bits() + x.denom().bits()
}

fn int_of(x: &BigRational) -> Option<i64> {
    if x.is_integer() {
        x.to_integer().to_i64()
    } else {
        None
    }
}

/// Exact n-th root of a non-negative rational, when it is rational.
fn exact_root(x: &BigRational, n: u32) -> Option<BigRational> {
    if x.is_negative() {
        if n % 2 == 1 {
            return exact_root(&-x, n).map(|r| -r);
        }
        return None;
    }
    let rn = x.numer().nth_root(n);
    let rd = x.denom().nth_root(n);
    (rn.pow(n) == *x.numer() && rd.pow(n) == *x.denom()).then(|| BigRational::new(rn, rd))
}

/// `log_b(a)` when it is rational: `a = b^(p/q)` with small p, q (`\log_4 8` = 3/2).
fn exact_log(b: &BigRational, a: &BigRational) -> Option<BigRational> {
    let one = BigRational::from_integer(BigInt::from(1));
    if !b.is_positive() || !a.is_positive() || *b == one || bits(b) > 256 || bits(a) > 4096 {
        return None;
    }
    if *a == one {
        return Some(BigRational::zero());
    }
    for q in 1..=6u32 {
        let Some(root) = exact_root(b, q) else {
            continue;
        };
        if root == one {
            continue;
        }
        // a = root^p for some integer p (negative when a < 1 < root or vice versa).
        let (base, target, sign) = if (root > one) == (*a > one) {
            (root, a.clone(), 1i64)
        } else {
            (root, a.recip(), -1)
        };
        let mut acc = base.clone();
        for p in 1..=4096i64 {
            if acc == target {
                return Some(BigRational::new(BigInt::from(sign * p), BigInt::from(q)));
            }
            if bits(&acc) > bits(&target) + 8 {
                break;
            }
            acc *= &base;
        }
    }
    None
}

/// The exact rational value, or None when the expression is irrational, symbolic, undefined,
/// or too big to compute.
pub fn exact(e: &Expr) -> Option<BigRational> {
    // Every intermediate result is bounded too: a product of many large powers must not grow
    // without limit (this path has no deadline).
    exact_unbounded(e).filter(|v| bits(v) <= 2 * MAX_RESULT_BITS)
}

fn exact_unbounded(e: &Expr) -> Option<BigRational> {
    Some(match e {
        Expr::Num(v) => v.clone(),
        Expr::Neg(a) => -exact(a)?,
        Expr::Add(a, c) => exact(a)? + exact(c)?,
        Expr::Sub(a, c) => exact(a)? - exact(c)?,
        Expr::Mul(a, c) => exact(a)? * exact(c)?,
        Expr::Div(a, c) => {
            let d = exact(c)?;
            if d.is_zero() {
                return None;
            }
            exact(a)? / d
        }
        Expr::Pow(a, c) => {
            let base = exact(a)?;
            let k = exact(c)?;
            if let Some(k) = int_of(&k) {
                if base.is_zero() && k < 0 {
                    return None;
                }
                let magnitude = k.unsigned_abs();
                if bits(&base).max(1).saturating_mul(magnitude) > MAX_RESULT_BITS {
                    return None;
                }
                let p = num_traits::pow(base, magnitude as usize);
                if k < 0 {
                    p.recip()
                } else {
                    p
                }
            } else {
                // A rational exponent p/q: exact when the q-th root is.
                let q = k.denom().to_u32().filter(|&q| q <= 64)?;
                let pnum = k.numer().to_i64()?;
                let root = exact_root(&base, q)?;
                if pnum.unsigned_abs() > 10_000 || root.is_zero() && pnum < 0 {
                    return None;
                }
                let p = num_traits::pow(root, pnum.unsigned_abs() as usize);
                if pnum < 0 {
                    p.recip()
                } else {
                    p
                }
            }
        }
        Expr::Root(a, n) => {
            let n = int_of(&exact(n)?)?;
            if !(1..=64).contains(&n) {
                return None;
            }
            exact_root(&exact(a)?, n as u32)?
        }
        Expr::Fact(a) => {
            let n = int_of(&exact(a)?)?;
            if n < 0 || n as u64 > MAX_FACTORIAL {
                return None;
            }
            let mut acc = BigInt::one();
            for i in 2..=n {
                acc *= i;
            }
            BigRational::from_integer(acc)
        }
        Expr::Binom(n, k) => {
            let n = int_of(&exact(n)?)?;
            let k = int_of(&exact(k)?)?;
            if n < 0 || n as u64 > 20_000 {
                return None;
            }
            if k < 0 || k > n {
                return Some(BigRational::zero());
            }
            let k = k.min(n - k);
            let mut acc = BigInt::one();
            for i in 0..k {
                acc = acc * (n - i) / (i + 1);
            }
            BigRational::from_integer(acc)
        }
        Expr::Log(base, arg) => exact_log(&exact(base)?, &exact(arg)?)?,
        Expr::Call(Func::Abs, a) => exact(a)?.abs(),
        Expr::Call(Func::Floor, a) => exact(a)?.floor(),
        Expr::Call(Func::Ceil, a) => exact(a)?.ceil(),
        Expr::Gcd(args) | Expr::Lcm(args) => {
            let mut acc: Option<BigInt> = None;
            for a in args {
                let v = exact(a)?;
                if !v.is_integer() {
                    return None;
                }
                let v = v.to_integer();
                acc = Some(match acc {
                    None => v.abs(),
                    Some(x) if matches!(e, Expr::Gcd(_)) => num_integer::Integer::gcd(&x, &v),
                    Some(x) => num_integer::Integer::lcm(&x, &v),
                });
            }
            BigRational::from_integer(acc?)
        }
        Expr::Var(_) | Expr::Pi | Expr::E | Expr::I | Expr::Call(..) => return None,
    })
}

/// `log10 |value|` as an interval, for values floating point cannot hold (`10^{10^{10^{10}}}`,
/// `100000000!`, `2^{2^{30}}`): enough to tell such a number from a small one without computing
/// it. An infinite end means "beyond any f64". None when the size is unknown: variables, a
/// sum whose terms may cancel, zero.
pub fn log10_bounds(e: &Expr) -> Option<(f64, f64)> {
    log10_depth(e, 0)
}

/// Rounding slack of a log10 computed in f64.
fn tight(l: f64) -> (f64, f64) {
    let slack = 1e-12 * l.abs().max(1.0);
    (l - slack, l + slack)
}

fn finite_value(e: &Expr) -> Option<C64> {
    let v = eval(e, &|_| f64::NAN);
    (v.re.is_finite() && v.im.is_finite()).then_some(v)
}

/// log10 of a big rational without converting it to f64 (which overflows past 1e308).
fn log10_rational(q: &BigRational) -> Option<f64> {
    fn log10_int(n: &BigInt) -> f64 {
        let bits = n.bits();
        let shift = bits.saturating_sub(60);
        let top = (n.abs() >> shift).to_f64().unwrap_or(f64::NAN);
        top.log10() + shift as f64 * std::f64::consts::LOG10_2
    }
    (!q.is_zero()).then(|| log10_int(q.numer()) - log10_int(q.denom()))
}

/// The sign of a real value when it follows from the form alone.
fn sign_of(e: &Expr) -> Option<i8> {
    Some(match e {
        Expr::Num(q) if q.is_positive() => 1,
        Expr::Num(q) if q.is_negative() => -1,
        Expr::Pi | Expr::E | Expr::Fact(_) => 1,
        Expr::Neg(a) => -sign_of(a)?,
        Expr::Mul(a, c) | Expr::Div(a, c) => sign_of(a)? * sign_of(c)?,
        Expr::Pow(a, _) | Expr::Root(a, _) if sign_of(a)? > 0 => 1,
        Expr::Add(a, c) if sign_of(a)? == sign_of(c)? => sign_of(a)?,
        _ => return None,
    })
}

/// The real value as an interval, through its magnitude when it is too large for f64.
fn value_bounds(e: &Expr, depth: usize) -> Option<(f64, f64)> {
    if let Some(v) = finite_value(e) {
        if v.im != 0.0 {
            return None;
        }
        let slack = v.re.abs() * 1e-12;
        return Some((v.re - slack, v.re + slack));
    }
    let sign = sign_of(e)?;
    let (lo, hi) = log10_depth(e, depth + 1)?;
    let (a, b) = (10f64.powf(lo), 10f64.powf(hi));
    Some(if sign > 0 { (a, b) } else { (-b, -a) })
}

/// `log10(n!)` for real n >= 1 by Stirling's series (monotonic, exact to ~1e-12 for large n;
/// small n are evaluated directly before this is reached).
fn log10_factorial(n: f64) -> f64 {
    if n.is_infinite() {
        return f64::INFINITY;
    }
    let ln = n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n * n * n);
    ln / std::f64::consts::LN_10
}

fn interval_product(a: (f64, f64), b: (f64, f64)) -> Option<(f64, f64)> {
    let p = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
    if p.iter().any(|x| x.is_nan()) {
        return None;
    }
    Some((
        p.iter().copied().fold(f64::INFINITY, f64::min),
        p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    ))
}

fn valid_interval(i: (f64, f64)) -> Option<(f64, f64)> {
    (!i.0.is_nan() && !i.1.is_nan() && i.0 <= i.1).then_some(i)
}

fn log10_depth(e: &Expr, depth: usize) -> Option<(f64, f64)> {
    if depth > MAX_DEPTH {
        return None;
    }
    if let Some(v) = finite_value(e) {
        return (v.norm() > 0.0).then(|| tight(v.norm().log10()));
    }
    let next = depth + 1;
    let out = match e {
        Expr::Num(q) => tight(log10_rational(q)?),
        Expr::Neg(a) => log10_depth(a, next)?,
        Expr::Mul(a, c) => {
            let (x, y) = (log10_depth(a, next)?, log10_depth(c, next)?);
            (x.0 + y.0, x.1 + y.1)
        }
        Expr::Div(a, c) => {
            let (x, y) = (log10_depth(a, next)?, log10_depth(c, next)?);
            (x.0 - y.1, x.1 - y.0)
        }
        // |a^c| = |a|^c for a real exponent c.
        Expr::Pow(a, c) => interval_product(log10_depth(a, next)?, value_bounds(c, next)?)?,
        Expr::Root(a, n) => {
            let n = int_of(&exact(n)?)?;
            if n <= 0 {
                return None;
            }
            let x = log10_depth(a, next)?;
            (x.0 / n as f64, x.1 / n as f64)
        }
        Expr::Fact(a) => {
            let (lo, hi) = value_bounds(a, next)?;
            if lo < 1.0 {
                return None;
            }
            (log10_factorial(lo) - 1e-9, log10_factorial(hi) + 1e-9)
        }
        // A sum is as large as its dominant term when the other is 10x smaller or less.
        Expr::Add(a, c) | Expr::Sub(a, c) => {
            let (x, y) = (log10_depth(a, next)?, log10_depth(c, next)?);
            let (small, big) = if x.1 < y.0 { (x, y) } else { (y, x) };
            let gap = big.0 - small.1;
            if gap.is_nan() || gap < 1.0 {
                return None;
            }
            let rel = 10f64.powf(-gap);
            (big.0 + (1.0 - rel).log10(), big.1 + (1.0 + rel).log10())
        }
        _ => return None,
    };
    valid_interval(out)
}

/// A power of a rational with an exact integer exponent too large to expand, as (base, exponent)
/// with the base reduced to one that is not itself a perfect power: `2^{2^{30}}` and
/// `4^{2^{29}}` give the same pair. Equal pairs are equal values, different pairs different
/// ones (unique factorisation).
pub fn big_power(e: &Expr) -> Option<(BigRational, BigInt)> {
    let Expr::Pow(a, c) = e else {
        return None;
    };
    let mut base = exact(a)?;
    let k = exact(c)?;
    if !k.is_integer() || !base.is_positive() || base.is_one() {
        return None;
    }
    let mut k = k.to_integer();
    'reduce: loop {
        for m in (2..=64u32).rev() {
            if let Some(root) = exact_root(&base, m) {
                if !root.is_one() {
                    base = root;
                    k *= m;
                    continue 'reduce;
                }
            }
        }
        break;
    }
    Some((base, k))
}

/// Two values too large for floating point: decided by their signs, their exact power forms,
/// or disjoint magnitude bounds; None when none of these tells.
pub fn compare_huge(g: &Expr, r: &Expr) -> Option<bool> {
    if let (Some(a), Some(b)) = (big_power(g), big_power(r)) {
        return Some(a == b);
    }
    if let (Expr::Fact(a), Expr::Fact(b)) = (g, r) {
        if let (Some(x), Some(y)) = (exact(a), exact(b)) {
            return Some(x == y);
        }
    }
    // A sign from the form alone means a value that is not zero.
    let zero = |e: &Expr| exact(e).is_some_and(|v| v.is_zero());
    if (zero(g) && sign_of(r).is_some()) || (zero(r) && sign_of(g).is_some()) {
        return Some(false);
    }
    if let (Some(x), Some(y)) = (sign_of(g), sign_of(r)) {
        if x != y {
            return Some(false);
        }
    }
    let (a, b) = (log10_bounds(g)?, log10_bounds(r)?);
    let scale = [a.0, a.1, b.0, b.1]
        .iter()
        .filter(|x| x.is_finite())
        .fold(1.0f64, |m, x| m.max(x.abs()));
    let slack = 1e-9 * scale;
    (a.1 + slack < b.0 || b.1 + slack < a.0).then_some(false)
}

/// Values beyond this are unreliable in f64 (and `1/2004!` underflows to 0): the point is
/// skipped rather than trusted.
const FLOAT_LIMIT: f64 = 1e250;

fn nan() -> C64 {
    C64::new(f64::NAN, f64::NAN)
}

fn guard(z: C64) -> C64 {
    let m = z.norm();
    if !m.is_finite() || m > FLOAT_LIMIT || (m != 0.0 && m < 1.0 / FLOAT_LIMIT) {
        nan()
    } else {
        // Rounding noise in a part that should be zero (e^{i pi}) must not look like a value.
        let re = if z.re.abs() < m * 1e-13 { 0.0 } else { z.re };
        let im = if z.im.abs() < m * 1e-13 { 0.0 } else { z.im };
        C64::new(re, im)
    }
}

fn real(x: f64) -> C64 {
    C64::new(x, 0.0)
}

fn factorial(n: C64) -> C64 {
    if n.im != 0.0 || n.re < 0.0 || n.re.fract() != 0.0 || n.re > 170.0 {
        return nan();
    }
    real((2..=n.re as u64).fold(1.0, |acc, i| acc * i as f64))
}

fn is_real_int(z: C64) -> Option<i64> {
    (z.im == 0.0 && z.re.fract() == 0.0 && z.re.abs() < 1e15).then_some(z.re as i64)
}

/// Value at a sample point (variables bound by `value_of`), over the complex numbers; NaN when
/// undefined or out of range. Odd roots of negative reals are the real roots, as in answers.
pub fn eval(e: &Expr, value_of: &dyn Fn(&str) -> f64) -> C64 {
    let r = match e {
        Expr::Num(v) => real(v.to_f64().unwrap_or(f64::NAN)),
        Expr::Var(name) => real(value_of(name)),
        Expr::Pi => real(std::f64::consts::PI),
        Expr::E => real(std::f64::consts::E),
        Expr::I => C64::new(0.0, 1.0),
        Expr::Neg(a) => -eval(a, value_of),
        Expr::Add(a, c) => eval(a, value_of) + eval(c, value_of),
        Expr::Sub(a, c) => eval(a, value_of) - eval(c, value_of),
        Expr::Mul(a, c) => eval(a, value_of) * eval(c, value_of),
        Expr::Div(a, c) => {
            let d = eval(c, value_of);
            if d.norm() == 0.0 {
                nan()
            } else {
                eval(a, value_of) / d
            }
        }
        Expr::Pow(a, c) => {
            let base = eval(a, value_of);
            let k = eval(c, value_of);
            match is_real_int(k) {
                Some(n) if n.unsigned_abs() <= 4096 => base.powi(n as i32),
                _ if base.im == 0.0 && base.re > 0.0 && k.im == 0.0 => real(base.re.powf(k.re)),
                _ if base.norm() == 0.0 => {
                    if k.re > 0.0 {
                        real(0.0)
                    } else {
                        nan()
                    }
                }
                _ => base.powc(k),
            }
        }
        Expr::Root(a, n) => {
            let x = eval(a, value_of);
            let n = eval(n, value_of);
            match is_real_int(n) {
                Some(2) => x.sqrt(),
                Some(k) if k > 0 && k % 2 == 1 && x.im == 0.0 => {
                    real(x.re.signum() * x.re.abs().powf(1.0 / k as f64))
                }
                Some(k) if k > 0 => x.powf(1.0 / k as f64),
                _ => nan(),
            }
        }
        Expr::Fact(a) => factorial(eval(a, value_of)),
        Expr::Gcd(_) | Expr::Lcm(_) => match exact(e) {
            Some(v) => real(v.to_f64().unwrap_or(f64::NAN)),
            None => nan(),
        },
        Expr::Log(base, arg) => {
            let (bv, av) = (eval(base, value_of), eval(arg, value_of));
            if bv.norm() == 0.0 || av.norm() == 0.0 || bv == real(1.0) {
                nan()
            } else {
                av.ln() / bv.ln()
            }
        }
        Expr::Binom(n, k) => {
            let (n, k) = (eval(n, value_of), eval(k, value_of));
            factorial(n) / (factorial(k) * factorial(n - k))
        }
        Expr::Call(f, a) => {
            let x = eval(a, value_of);
            match f {
                Func::Sin => x.sin(),
                Func::Cos => x.cos(),
                Func::Tan => x.tan(),
                Func::Sec => x.cos().inv(),
                Func::Csc => x.sin().inv(),
                Func::Cot => x.tan().inv(),
                Func::Ln => {
                    if x.norm() == 0.0 {
                        nan()
                    } else {
                        x.ln()
                    }
                }
                Func::Exp => x.exp(),
                Func::Asin => x.asin(),
                Func::Acos => x.acos(),
                Func::Atan => x.atan(),
                Func::Acot => x.inv().atan(),
                Func::Sinh => x.sinh(),
                Func::Cosh => x.cosh(),
                Func::Tanh => x.tanh(),
                Func::Abs => real(x.norm()),
                Func::Floor if x.im == 0.0 => real(x.re.floor()),
                Func::Ceil if x.im == 0.0 => real(x.re.ceil()),
                Func::Floor | Func::Ceil => nan(),
            }
        }
    };
    guard(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Option<BigRational> {
        parse(s).and_then(|p| exact(&p.expr))
    }

    fn q(n: i64, d: i64) -> Option<BigRational> {
        Some(BigRational::new(n.into(), d.into()))
    }

    #[test]
    fn exact_values() {
        assert_eq!(ex("\\frac{1}{2}"), q(1, 2));
        assert_eq!(ex("3\\frac{1}{2}"), q(7, 2));
        assert_eq!(ex("2\\frac{\\sqrt{4}}{2}"), q(2, 1));
        assert_eq!(ex("-\\frac{3}{4}"), q(-3, 4));
        assert_eq!(ex("0.25"), q(1, 4));
        assert_eq!(ex(".5"), q(1, 2));
        assert_eq!(ex("1.5e3"), q(1500, 1));
        assert_eq!(ex("2.5\\times10^{-3}"), q(1, 400));
        assert_eq!(ex("2^{10}"), q(1024, 1));
        assert_eq!(ex("2^10"), q(1024, 1));
        assert_eq!(ex("\\sqrt{16}"), q(4, 1));
        assert_eq!(ex("\\sqrt[3]{-8}"), q(-2, 1));
        assert_eq!(ex("8^{\\frac{2}{3}}"), q(4, 1));
        assert_eq!(ex("5!"), q(120, 1));
        assert_eq!(ex("|-3|"), q(3, 1));
        assert_eq!(ex("\\lfloor \\frac{7}{2} \\rfloor"), q(3, 1));
        assert_eq!(ex("\\lceil -\\frac{7}{2} \\rceil"), q(-3, 1));
        assert_eq!(ex("\\operatorname{lcm}(4,6)+1"), q(13, 1));
        assert_eq!(ex("\\gcd(12, 18)"), q(6, 1));
        assert_eq!(ex("\\log_2 8"), q(3, 1));
        assert_eq!(ex("\\log_{4} 8"), q(3, 2));
        assert_eq!(ex("\\log_{2}\\frac{1}{8}"), q(-3, 1));
        assert_eq!(ex("\\log_{10} 1"), q(0, 1));
        assert_eq!(ex("\\log_{3} 5"), None);
        assert_eq!(ex("0.\\overline{3}"), q(1, 3));
        assert_eq!(ex("1.2\\overline{45}"), q(137, 110));
        assert_eq!(ex("\\binom{5}{2}"), q(10, 1));
        assert_eq!(ex("\\sqrt{2}"), None);
        assert_eq!(ex("10^{10^{10}}"), None);
        assert_eq!(ex("\\frac{1}{0}"), None);
        let huge_product = vec!["10^{100000}"; 120].join("\\cdot");
        assert_eq!(ex(&huge_product), None);
        assert!(ex("\\frac{1}{2004!}").is_some());
    }

    #[test]
    fn function_arguments_made_explicit() {
        let cases = [
            ("\\sin x", "\\sin(x)"),
            ("\\sin2x", "\\sin(2x)"),
            ("\\tan3\\theta", "\\tan(3\\theta)"),
            ("\\sin^2 x", "\\sin^2(x)"),
            ("\\sin^{-1}x", "\\sin^{-1}(x)"),
            ("\\sin x\\cos x", "\\sin(x)\\cos(x)"),
            ("\\sin x\\cdot\\cos x", "\\sin(x)\\cdot\\cos(x)"),
            ("\\sin x(1+x)", "\\sin(x)(1+x)"),
            ("\\sin x/2", "\\sin(x)/2"),
            ("\\sin{x}y", "\\sin(x)y"),
            ("\\sin\\cos x", "\\sin(\\cos(x))"),
            ("\\sin{\\cos x}", "\\sin(\\cos(x))"),
            ("\\sin\\frac{\\pi}{6}x", "\\sin(\\frac{\\pi}{6}x)"),
            ("\\frac{\\sin x}{x}", "\\frac{\\sin(x)}{x}"),
            ("\\ln x^2", "\\ln(x^2)"),
            ("\\log_2 8x", "\\log_2(8x)"),
            ("\\log_{10}100", "\\log_{10}(100)"),
            ("\\log x", "\\log(x)"),
            ("\\cosh2x+\\sinh x", "\\cosh(2x)+\\sinh(x)"),
            ("\\sin x!", "\\sin(x!)"),
            ("\\sin{x}^2", "\\sin(x)^2"),
            // Already bracketed, or not read by this grammar: as written.
            ("\\sin(2x)", "\\sin(2x)"),
            ("\\sin|x|", "\\sin|x|"),
            ("\\sin", "\\sin"),
            ("\\sin\\mathbf{v}", "\\sin\\mathbf{v}"),
            ("\\frac{1}{2}", "\\frac{1}{2}"),
            ("\\sinh", "\\sinh"),
        ];
        for (s, want) in cases {
            assert_eq!(bracket_function_arguments(s), want, "{s}");
            // What the parser reads does not change.
            if let (Some(a), Some(b)) = (parse(s), parse(want)) {
                assert_eq!(a.expr, b.expr, "{s}");
            }
        }
        // Bounded on hostile input.
        let deep = "\\sin".repeat(1000) + "x";
        assert!(bracket_function_arguments(&deep).len() >= deep.len());
    }

    #[test]
    fn common_logarithm_and_hyperbolic_functions() {
        assert_eq!(ex("\\log 100"), q(2, 1));
        assert_eq!(ex("\\log 1000x"), None);
        let e = |s: &str| eval(&parse(s).unwrap().expr, &|_| 0.7);
        assert!((e("\\cosh 2x") - e("\\cosh^2 x + \\sinh^2 x")).norm() < 1e-12);
        assert!((e("\\tanh x") - e("\\frac{\\sinh x}{\\cosh x}")).norm() < 1e-12);
        assert!((e("\\log_2 8x") - e("3 + \\log_2 x")).norm() < 1e-12);
        assert!((e("\\sin(x)^2") - e("\\sin^2 x")).norm() < 1e-12);
    }

    #[test]
    fn grammar_limits() {
        assert!(parse("x^2-1").is_some());
        assert!(parse("(x-1)(x+1)").is_some());
        assert!(parse("2\\pi r").is_some());
        assert!(parse("3+4i").is_some());
        assert!(parse("\\log_2 8").is_some());
        assert!(parse("1,2").is_none());
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&deep).is_none());
    }
}
