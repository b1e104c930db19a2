//! `-m u32` (`libxt_u32.c`, `xt_u32.c`): tests on 32-bit words read at computed offsets of
//! the packet, counted from the start of its IP header.
//!
//! `--u32 "0>>22&0x3C@12>>26&0x3C@0=4:0x1000&&…"`: up to 10 tests joined by `&&`, each a
//! location (a number, then up to 9 operators `&`, `<<`, `>>`, `@` each with a number) and
//! up to 10 values or `FROM:TO` ranges joined by `,`. The location starts with the
//! big-endian word at its first number; `@N` moves the base forward by the current value
//! and reads the word at base + N. A test holds when the value lies in one of the ranges; a
//! read past the end of the packet, or a base that overflows, fails the whole match before
//! negation (`u32_match_it`). Numbers are C `strtoul` numbers (decimal, `0x` hex, `0`
//! octal); iptables-save prints every number in hex.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use std::fmt::Write as _;

/// `XT_U32_MAXSIZE`: the most tests, numbers per location and values per test.
const MAXSIZE: usize = 10;

/// The operator before a location's number (`enum xt_u32_ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    And,
    Shl,
    Shr,
    At,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::And => "&",
            Op::Shl => "<<",
            Op::Shr => ">>",
            Op::At => "@",
        }
    }
}

/// One `location = values` test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct U32Test {
    /// The offset of the first word read.
    pub start: u32,
    /// The operators applied in order.
    pub ops: Vec<(Op, u32)>,
    /// Inclusive ranges; the test holds when the value lies in one.
    pub values: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct U32 {
    pub inv: bool,
    pub tests: Vec<U32Test>,
}

/// A number as `xtables_strtoui(s, &end, &n, 0, UINT32_MAX)` reads it (leading white space
/// and a sign allowed, base from the prefix); returns it and the bytes consumed.
fn number(s: &[u8]) -> Option<(u32, usize)> {
    let mut i = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let neg = match s.get(i) {
        Some(b'+') => {
            i += 1;
            false
        }
        Some(b'-') => {
            i += 1;
            true
        }
        _ => false,
    };
    let (radix, digits_at) = match (s.get(i), s.get(i + 1)) {
        (Some(b'0'), Some(b'x' | b'X')) if s.get(i + 2).is_some_and(u8::is_ascii_hexdigit) => (16, i + 2),
        (Some(b'0'), _) => (8, i),
        _ => (10, i),
    };
    let len = s[digits_at..]
        .iter()
        .take_while(|b| char::from(**b).is_digit(radix))
        .count();
    if len == 0 {
        return None;
    }
    let text = std::str::from_utf8(&s[digits_at..digits_at + len]).ok()?;
    let v = u64::from_str_radix(text, radix).ok()?;
    // strtoull negates in unsigned arithmetic: only -0 stays in range.
    let v = if neg { 0u64.wrapping_sub(v) } else { v };
    Some((u32::try_from(v).ok()?, digits_at + len))
}

/// Parses a `--u32` argument as `u32_parse` does; errors name the character offset.
fn parse(arg: &str) -> Result<Vec<U32Test>, String> {
    let s = arg.as_bytes();
    let mut i = 0;
    let mut tests = Vec::new();
    let mut cur = U32Test {
        start: 0,
        ops: Vec::new(),
        values: Vec::new(),
    };
    let mut nnums = 0usize;
    let mut in_values = false;
    let num = |i: &mut usize| -> Result<u32, String> {
        let (v, n) = number(&s[*i..]).ok_or(format!("u32: at char {}: not a number or out of range", *i))?;
        *i += n;
        Ok(v)
    };
    loop {
        while s.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let Some(&b) = s.get(i) else {
            if !in_values {
                return Err("u32: abrupt end of input after location specifier".into());
            }
            if cur.values.is_empty() {
                return Err("u32: test ended with no value specified".into());
            }
            tests.push(cur);
            if tests.len() > MAXSIZE {
                return Err(format!("u32: at char {i}: too many \"&&\"s"));
            }
            return Ok(tests);
        };
        if !in_values {
            if b == b'=' {
                if nnums == 0 {
                    return Err(format!("u32: at char {i}: location spec missing"));
                }
                i += 1;
                in_values = true;
                continue;
            }
            let op = if nnums == 0 {
                None
            } else {
                let op = match b {
                    b'&' => Op::And,
                    b'<' | b'>' => {
                        i += 1;
                        if s.get(i) != Some(&b) {
                            let c = char::from(b);
                            return Err(format!("u32: at char {i}: a second '{c}' was expected"));
                        }
                        if b == b'<' {
                            Op::Shl
                        } else {
                            Op::Shr
                        }
                    }
                    b'@' => Op::At,
                    _ => return Err(format!("u32: at char {i}: operator expected")),
                };
                i += 1;
                Some(op)
            };
            let n = num(&mut i)?;
            match op {
                None => cur.start = n,
                Some(op) => cur.ops.push((op, n)),
            }
            nnums += 1;
            if nnums > MAXSIZE {
                return Err(format!("u32: at char {i}: too many operators"));
            }
        } else if b == b'&' {
            i += 1;
            if s.get(i) != Some(&b'&') {
                return Err(format!("u32: at char {i}: a second '&' was expected"));
            }
            if cur.values.is_empty() {
                return Err(format!("u32: at char {i}: value spec missing"));
            }
            tests.push(std::mem::replace(
                &mut cur,
                U32Test {
                    start: 0,
                    ops: Vec::new(),
                    values: Vec::new(),
                },
            ));
            if tests.len() > MAXSIZE {
                return Err(format!("u32: at char {i}: too many \"&&\"s"));
            }
            i += 1;
            in_values = false;
            nnums = 0;
        } else {
            if !cur.values.is_empty() {
                if b != b',' {
                    return Err(format!("u32: at char {i}: expected \",\" or \"&&\""));
                }
                i += 1;
            }
            let lo = num(&mut i)?;
            while s.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            let hi = if s.get(i) == Some(&b':') {
                i += 1;
                num(&mut i)?
            } else {
                lo
            };
            cur.values.push((lo, hi));
            if cur.values.len() > MAXSIZE {
                return Err(format!("u32: at char {i}: too many \",\"s"));
            }
        }
    }
}

/// The big-endian word at `at` of `buf`, if four bytes are there.
fn word(buf: &[u8], at: u32) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `u32_match_it`: whether every test holds.
fn holds(tests: &[U32Test], buf: &[u8]) -> bool {
    tests.iter().all(|t| {
        let Some(mut val) = word(buf, t.start) else {
            return false;
        };
        let mut at = 0u32;
        for &(op, n) in &t.ops {
            match op {
                Op::And => val &= n,
                // The kernel shifts a u32 by the number as the CPU does (x86 masks it to 5 bits).
                Op::Shl => val = val.wrapping_shl(n),
                Op::Shr => val = val.wrapping_shr(n),
                Op::At => {
                    let Some(base) = at.checked_add(val) else { return false };
                    at = base;
                    match at.checked_add(n).and_then(|p| word(buf, p)) {
                        Some(v) => val = v,
                        None => return false,
                    }
                }
            }
        }
        t.values.iter().any(|&(lo, hi)| lo <= val && val <= hi)
    })
}

impl MatchExt for U32 {
    type Builder = Option<U32>;
    type Compiled = U32;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["u32"];

    fn option(b: &mut Option<U32>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "u32" {
            return Ok(false);
        }
        c.once(b, "--u32")?;
        let v = c.value_inv("--u32", &mut inv)?;
        match parse(&v) {
            Ok(tests) => *b = Some(U32 { inv, tests }),
            Err(e) => return c.err_value(e),
        }
        Ok(true)
    }

    fn finish(b: Option<U32>, _: RuleProto) -> Result<U32, String> {
        b.ok_or_else(|| "u32: --u32 is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --u32 \"", bang(self.inv));
        for (k, t) in self.tests.iter().enumerate() {
            if k > 0 {
                out.push_str("&&");
            }
            let _ = write!(out, "{:#x}", t.start);
            for &(op, n) in &t.ops {
                let _ = write!(out, "{}{n:#x}", op.as_str());
            }
            out.push('=');
            for (j, &(lo, hi)) in t.values.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                if lo == hi {
                    let _ = write!(out, "{lo:#x}");
                } else {
                    let _ = write!(out, "{lo:#x}:{hi:#x}");
                }
            }
        }
        out.push('"');
    }

    fn compile(&self, _: &CompileEnv) -> U32 {
        self.clone()
    }

    fn test(m: &U32, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        holds(&m.tests, p.buf) != m.inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(arg: &str) -> String {
        let m = U32 {
            inv: false,
            tests: parse(arg).expect(arg),
        };
        let mut s = String::new();
        m.save(&mut s);
        s
    }

    #[test]
    fn parses_and_prints_in_hex_as_iptables_does() {
        assert_eq!(saved("0x0=0x0&&0x0=0x1"), " --u32 \"0x0=0x0&&0x0=0x1\"");
        assert_eq!(
            saved(" 0 >> 22 & 0x3C @ 12 >> 26 & 0x3C @ 0 = 4:0x1000 , 010 "),
            " --u32 \"0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0=0x4:0x1000,0x8\""
        );
        assert_eq!(saved("6 & 0xFF = 6"), " --u32 \"0x6&0xff=0x6\"");
        assert_eq!(saved("+0=-0"), " --u32 \"0x0=0x0\"");
    }

    #[test]
    fn refuses_what_libxt_u32_refuses() {
        for (bad, why) in [
            ("", "abrupt end"),
            ("0", "abrupt end"),
            ("0=", "no value"),
            ("=1", "location spec missing"),
            ("0<1=1", "second '<'"),
            ("0>1=1", "second '>'"),
            ("0 1=1", "operator expected"),
            ("0=1&1=1", "second '&'"),
            ("0=&&1=1", "value spec missing"),
            ("0=1 2", "expected \",\" or \"&&\""),
            ("0=0x100000000", "out of range"),
            ("0=-1", "out of range"),
            ("x=1", "not a number"),
            ("0&1&2&3&4&5&6&7&8&9&10=1", "too many operators"),
            ("0=1,2,3,4,5,6,7,8,9,10,11", "too many \",\"s"),
            (
                "0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0",
                "too many \"&&\"s",
            ),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        // The most of everything is accepted.
        parse("0&1&2&3&4&5&6&7&8&9=1,2,3,4,5,6,7,8,9,10").expect("ten numbers, ten values");
        parse("0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0&&0=0").expect("ten tests");
    }

    #[test]
    fn reads_words_as_xt_u32_does() {
        // IPv4, IHL 5, TCP, then a TCP header whose destination port is 80.
        let mut pkt = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        pkt.extend_from_slice(&[
            0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        let t = |arg: &str| holds(&parse(arg).expect(arg), &pkt);
        assert!(t("0>>28=4"), "version 4");
        assert!(t("6&0xFF=6"), "protocol TCP");
        assert!(t("6&0xFF=1,6,17"));
        assert!(!t("6&0xFF=17"));
        assert!(
            t("0>>22&0x3C@0&0xFFFF=80"),
            "the destination port behind the header length"
        );
        assert!(t("0>>22&0x3C@0>>16=12345"), "the source port");
        assert!(t("0>>28=4&&6&0xFF=6"));
        assert!(!t("0>>28=4&&6&0xFF=17"));
        assert!(t("36=0:0xffffffff"), "the last whole word");
        assert!(!t("37=0:0xffffffff"), "a word past the end fails");
        assert!(!t("0>>22&0x3C@17=0:0xffffffff"), "an @ read past the end fails");
        assert!(!t("12@0=0:0xffffffff"), "a base beyond the packet fails");
        assert!(!t("0@0xffffffff=0:0xffffffff"), "an offset that wraps past 2^32 fails");
        assert!(t("0<<32=0x45000028"), "shifts count modulo 32 as on x86");
    }
}
