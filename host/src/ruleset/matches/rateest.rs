//! `-m rateest` (`libxt_rateest.c`, `xt_rateest.c`): compares the rates of `RATEEST`
//! estimators ([`crate::eval::rateest`]) — one estimator against given rates ("absolute"), or
//! two against each other ("relative"); with `--rateest-delta` each side is first taken as
//! what its given rate exceeds the estimate by (`bps1 >= rate ? bps1 - rate : 0`, as
//! `xt_rateest_mt` computes it). Rates are bytes per second (iptables reads bits: a plain
//! number, or with tc's units, `kbit`, `KiBps`…) and packets per second; `--rateest-bps` and
//! `--rateest-pps` both given must both hold. The estimators must exist: a `RATEEST` rule of
//! the ruleset names them (the kernel refuses the rule with ENOENT otherwise).

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::rateest::RateEst;
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::targets::rateest::cut_name;
use crate::ruleset::value::strtoul;
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    None,
    Lt,
    Gt,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateEstMatch {
    pub name1: String,
    /// Relative mode: the second estimator.
    pub name2: Option<String>,
    pub delta: bool,
    pub bps: bool,
    pub pps: bool,
    /// Bytes per second.
    pub bps1: u32,
    pub bps2: u32,
    pub pps1: u32,
    pub pps2: u32,
    pub mode: Mode,
    pub invert: bool,
}

/// Options seen, by `rateest_parse`'s option number (each at most once).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    m: RateEstMatch,
    seen: u16,
}

#[derive(Debug)]
pub struct Compiled {
    m: RateEstMatch,
    est1: Option<Arc<RateEst>>,
    est2: Option<Arc<RateEst>>,
}

/// tc's rate units (`rateest_get_rate`'s table, matched ignoring case) in bits.
const UNITS: &[(&str, f64)] = &[
    ("bit", 1.),
    ("Kibit", 1024.),
    ("kbit", 1000.),
    ("mibit", 1024. * 1024.),
    ("mbit", 1_000_000.),
    ("gibit", 1024. * 1024. * 1024.),
    ("gbit", 1_000_000_000.),
    ("tibit", 1024. * 1024. * 1024. * 1024.),
    ("tbit", 1_000_000_000_000.),
    ("Bps", 8.),
    ("KiBps", 8. * 1024.),
    ("KBps", 8000.),
    ("MiBps", 8. * 1024. * 1024.),
    ("MBps", 8_000_000.),
    ("GiBps", 8. * 1024. * 1024. * 1024.),
    ("GBps", 8_000_000_000.),
    ("TiBps", 8. * 1024. * 1024. * 1024. * 1024.),
    ("TBps", 8_000_000_000_000.),
];

/// `rateest_get_rate`: bytes per second.
fn get_rate(s: &str) -> Option<u32> {
    let (v, rest) = crate::ruleset::value::strtod(s)?;
    if rest.is_empty() {
        return Some((v / 8.) as u32);
    }
    let (_, scale) = UNITS.iter().find(|(n, _)| n.eq_ignore_ascii_case(rest))?;
    Some((v * scale / 8.) as u32)
}

/// `rateest_print_rate`.
fn print_rate(out: &mut String, rate: u32) {
    let bits = f64::from(rate) * 8.;
    if bits >= 1e9 {
        let _ = write!(out, " {:.0}Mbit", bits / 1e6);
    } else if bits >= 1e6 {
        let _ = write!(out, " {:.0}Kbit", bits / 1e3);
    } else {
        let _ = write!(out, " {bits:.0}bit");
    }
}

impl RateEstMatch {
    fn print_mode(&self, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(match self.mode {
            Mode::Lt => " --rateest-lt",
            Mode::Gt => " --rateest-gt",
            Mode::Eq | Mode::None => " --rateest-eq",
        });
    }
}

impl MatchExt for RateEstMatch {
    type Builder = Builder;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "rateest1",
        "rateest",
        "rateest2",
        "rateest-bps1",
        "rateest-pps1",
        "rateest-bps2",
        "rateest-pps2",
        "rateest-bps",
        "rateest-pps",
        "rateest-delta",
        "rateest-lt",
        "rateest-gt",
        "rateest-eq",
    ];

    fn option(b: &mut Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        // The option number as rateest_parse has it (aliases share one).
        let (bit, shown) = match opt {
            "rateest1" | "rateest" => (0, "rateest1"),
            "rateest2" => (1, "rateest2"),
            "rateest-bps1" => (2, "rateest-bps1"),
            "rateest-pps1" => (3, "rateest-pps1"),
            "rateest-bps2" | "rateest-bps" => (4, "rateest-bps2"),
            "rateest-pps2" | "rateest-pps" => (5, "rateest-pps2"),
            "rateest-delta" => (6, "rateest-delta"),
            "rateest-lt" => (7, ""),
            "rateest-gt" => (8, ""),
            "rateest-eq" => (9, ""),
            _ => return Ok(false),
        };
        if inv && bit < 7 {
            let what = match bit {
                0 | 1 => "rateest",
                2 | 4 => "rateest-bps",
                3 | 5 => "rateest-pps",
                _ => "rateest-delta",
            };
            return c.err(format!("rateest: {what} can't be inverted"));
        }
        if b.seen & (1 << bit) != 0 {
            return c.err(if bit >= 7 {
                "rateest: can't specify lt/gt/eq twice".to_string()
            } else {
                format!("rateest: can't specify --{shown} twice")
            });
        }
        b.seen |= 1 << bit;
        let m = &mut b.m;
        // A rate is optional: it is the next word unless that starts with `-` or `!`.
        let optional = |c: &mut Cursor| -> Option<String> {
            let w = c.peek()?;
            if w.starts_with('-') || w.starts_with('!') {
                return None;
            }
            c.next_word().map(str::to_string)
        };
        match bit {
            0 => {
                m.name1 = cut_name(c.value("--rateest1")?);
            }
            1 => m.name2 = Some(cut_name(c.value("--rateest2")?)),
            2 | 4 => {
                m.bps = true;
                if let Some(v) = optional(c) {
                    let Some(r) = get_rate(&v) else {
                        return c.err_value(format!("rateest: could not parse rate `{v}'"));
                    };
                    *(if bit == 2 { &mut m.bps1 } else { &mut m.bps2 }) = r;
                }
            }
            3 | 5 => {
                m.pps = true;
                if let Some(v) = optional(c) {
                    let Some((n, "")) = strtoul(&v) else {
                        return c.err_value(format!("rateest: could not parse pps `{v}'"));
                    };
                    *(if bit == 3 { &mut m.pps1 } else { &mut m.pps2 }) = n;
                }
            }
            6 => m.delta = true,
            _ => {
                m.mode = [Mode::Lt, Mode::Gt, Mode::Eq][bit - 7];
                m.invert = inv;
            }
        }
        Ok(true)
    }

    fn finish(b: Builder, _: RuleProto) -> Result<RateEstMatch, String> {
        if b.seen == 0 {
            return Err("rateest match: you need to specify some flags".into());
        }
        let m = b.m;
        // What xt_rateest_mt_checkentry refuses (with EINVAL).
        if !m.bps && !m.pps {
            return Err("rateest: neither bps nor pps compared (the kernel refuses the rule)".into());
        }
        if m.mode == Mode::None {
            return Err(
                "rateest: one of --rateest-lt, --rateest-gt, --rateest-eq is needed (the kernel refuses the rule)"
                    .into(),
            );
        }
        Ok(m)
    }

    fn save(&self, out: &mut String) {
        let m = self;
        if m.delta {
            out.push_str(" --rateest-delta");
        }
        let rel = m.name2.is_some();
        let _ = write!(out, " --rateest{} {}", if rel { "1" } else { "" }, m.name1);
        if m.bps {
            if m.delta {
                out.push_str(" --rateest-bps1");
                print_rate(out, m.bps1);
            }
            m.print_mode(out);
            out.push_str(if m.delta { " --rateest-bps2" } else { " --rateest-bps" });
            if m.delta || !rel {
                print_rate(out, m.bps2);
            }
        }
        if m.pps {
            if m.delta {
                let _ = write!(out, " --rateest-pps1 {}", m.pps1);
            }
            m.print_mode(out);
            out.push_str(if m.delta { " --rateest-pps2" } else { " --rateest-pps" });
            if m.delta || !rel {
                let _ = write!(out, " {}", m.pps2);
            }
        }
        if let Some(n) = &m.name2 {
            let _ = write!(out, " --rateest2 {n}");
        }
    }

    fn compile(&self, env: &CompileEnv) -> Compiled {
        Compiled {
            est1: env.shared.rateest.get(&self.name1),
            est2: self.name2.as_deref().and_then(|n| env.shared.rateest.get(n)),
            m: self.clone(),
        }
    }

    fn test(c: &Compiled, _: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        let m = &c.m;
        // Validation guarantees the estimators; were one missing, the rule matches nothing.
        let Some(e1) = &c.est1 else { return false };
        let side = |(bps, pps): (u32, u32), b: u32, p: u32| {
            if m.delta {
                (b.saturating_sub(bps), p.saturating_sub(pps))
            } else {
                (bps, pps)
            }
        };
        let (bps1, pps1) = side(e1.read(cx.now), m.bps1, m.pps1);
        let (bps2, pps2) = match (&m.name2, &c.est2) {
            (None, _) => (m.bps2, m.pps2),
            (Some(_), Some(e2)) => side(e2.read(cx.now), m.bps2, m.pps2),
            (Some(_), None) => return false,
        };
        let cmp = |a: u32, b: u32| match m.mode {
            Mode::Lt => a < b,
            Mode::Gt => a > b,
            Mode::Eq | Mode::None => a == b,
        };
        let mut ret = true;
        if m.bps {
            ret &= cmp(bps1, bps2);
        }
        if m.pps {
            ret &= cmp(pps1, pps2);
        }
        ret != m.invert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_and_print_as_iptables_does() {
        for (given, saved) in [
            ("10kbit", " 10000bit"),
            ("1mbit", " 1000Kbit"),
            ("1500", " 1496bit"),
            ("1kbps", " 8000bit"),
            ("1.5Mbit", " 1500Kbit"),
            ("10gbit", " 10000Mbit"),
            ("100KiBps", " 819200bit"),
            ("0", " 0bit"),
        ] {
            let mut out = String::new();
            print_rate(&mut out, get_rate(given).unwrap());
            assert_eq!(out, saved, "{given}");
        }
        assert_eq!(get_rate("5xyz"), None);
    }
}
