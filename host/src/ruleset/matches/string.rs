//! `-m string` (`libxt_string.c`, `xt_string.c`): a byte pattern (at most 128 bytes) found in
//! the packet between `--from` and `--to`, byte offsets from the start of the IP header.
//! `--algo bm` (Boyer–Moore) and `kmp` (Knuth–Morris–Pratt) are two ways to search; they find
//! the same thing, and both are kept as written.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

/// `XT_STRING_MAX_PATTERN_SIZE`.
const MAX_PATTERN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringMatch {
    pub inv: bool,
    pub pattern: Vec<u8>,
    /// `bm` or `kmp`.
    pub algo: String,
    pub from: u16,
    pub to: u16,
    pub icase: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    pattern: Option<(bool, Vec<u8>)>,
    algo: Option<String>,
    from: Option<u16>,
    to: Option<u16>,
    icase: bool,
}

/// `--hex-string`: text with `|0a 0d|` hex runs (`parse_hex_string`).
fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut hex = false;
    let mut digits = String::new();
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '|' => {
                if hex && !digits.is_empty() {
                    return None;
                }
                hex = !hex;
            }
            '\\' if !hex => out.push(chars.next()? as u8),
            c if hex => {
                if c == ' ' {
                    continue;
                }
                digits.push(c);
                if digits.len() == 2 {
                    out.push(u8::from_str_radix(&digits, 16).ok()?);
                    digits.clear();
                }
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    (!hex).then_some(out)
}

impl MatchExt for StringMatch {
    type Builder = Builder;
    type Compiled = StringMatch;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["from", "to", "algo", "string", "hex-string", "icase"];

    fn option(b: &mut Builder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        match opt {
            "string" | "hex-string" => {
                c.once(&b.pattern, "--string/--hex-string")?;
                let v = c.raw_value(&name)?;
                let v = if v == "!" {
                    inv = true;
                    c.raw_value(&name)?
                } else {
                    v
                };
                let p = if opt == "string" {
                    v.into_bytes()
                } else {
                    parse_hex(&v).map_or_else(|| c.err_value(format!("string: bad --hex-string `{v}'")), Ok)?
                };
                if p.is_empty() || p.len() > MAX_PATTERN {
                    return c.err_value(format!("string: the pattern must be 1 to {MAX_PATTERN} bytes"));
                }
                b.pattern = Some((inv, p));
            }
            "algo" => {
                c.once(&b.algo, "--algo")?;
                let v = c.value("--algo")?;
                if v != "bm" && v != "kmp" {
                    return c.err_value(format!("string: unknown --algo `{v}' (bm or kmp)"));
                }
                b.algo = Some(v);
            }
            "from" | "to" => {
                let slot = if opt == "from" { &mut b.from } else { &mut b.to };
                c.once(slot, &name)?;
                let v = c.value(&name)?;
                *slot = Some(
                    parse_uint(&v, 0, 65535).map_or_else(|| c.err_value(format!("string: bad {name} `{v}'")), Ok)?
                        as u16,
                );
            }
            "icase" => b.icase = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, _: RuleProto) -> Result<StringMatch, String> {
        let (inv, pattern) = b.pattern.ok_or("string: --string or --hex-string is required")?;
        let algo = b.algo.ok_or("string: --algo is required")?;
        let (from, to) = (b.from.unwrap_or(0), b.to.unwrap_or(u16::MAX));
        if from > to {
            return Err("string: --from is after --to".into());
        }
        Ok(StringMatch {
            inv,
            pattern,
            algo,
            from,
            to,
            icase: b.icase,
        })
    }

    fn save(&self, out: &mut String) {
        let printable = self.pattern.iter().all(|b| (0x20..0x7f).contains(b));
        if printable {
            let _ = write!(out, "{} --string \"", bang(self.inv));
            for &b in &self.pattern {
                if b == b'"' || b == b'\\' {
                    out.push('\\');
                }
                out.push(b as char);
            }
            out.push('"');
        } else {
            let _ = write!(out, "{} --hex-string \"|", bang(self.inv));
            for b in &self.pattern {
                let _ = write!(out, "{b:02x}");
            }
            out.push_str("|\"");
        }
        let _ = write!(out, " --algo {}", self.algo);
        if self.from != 0 {
            let _ = write!(out, " --from {}", self.from);
        }
        if self.to != u16::MAX {
            let _ = write!(out, " --to {}", self.to);
        }
        if self.icase {
            out.push_str(" --icase");
        }
    }

    fn compile(&self, _: &CompileEnv) -> StringMatch {
        let mut s = self.clone();
        if s.icase {
            s.pattern.make_ascii_lowercase();
        }
        s
    }

    fn test(s: &StringMatch, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let end = usize::from(s.to).min(p.buf.len());
        let start = usize::from(s.from);
        let hay = p.buf.get(start..end.max(start)).unwrap_or(&[]);
        let n = s.pattern.len();
        let found = hay.len() >= n
            && hay.windows(n).any(|w| {
                if s.icase {
                    w.iter().zip(&s.pattern).all(|(a, b)| a.to_ascii_lowercase() == *b)
                } else {
                    w == s.pattern.as_slice()
                }
            });
        found != s.inv
    }
}
