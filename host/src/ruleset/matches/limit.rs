//! `-m limit` (`libxt_limit.c`, `xt_limit.c`): a token bucket per rule. Taking a token is a
//! side effect.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::state::Bucket;
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

/// A token bucket: `avg` is the refill period per token in 1/10000 s (`XT_LIMIT_SCALE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub avg: u32,
    pub burst: u32,
}

pub const LIMIT_SCALE: u32 = 10_000;

impl Default for Limit {
    fn default() -> Self {
        // 3/hour, burst 5: iptables' defaults.
        Limit {
            avg: LIMIT_SCALE * 3600 / 3,
            burst: 5,
        }
    }
}

impl MatchExt for Limit {
    type Builder = Limit;
    type Compiled = Bucket;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &["limit", "limit-burst"];

    fn option(l: &mut Limit, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        match opt {
            "limit" => {
                c.no_invert(inv, &name)?;
                let v = c.value(&name)?;
                l.avg = parse_rate(&v).map_or_else(|| c.err_value(format!("bad rate `{v}'")), Ok)?;
            }
            "limit-burst" => {
                c.no_invert(inv, &name)?;
                let v = c.value(&name)?;
                l.burst = parse_uint(&v, 0, 10_000)
                    .map_or_else(|| c.err_value(format!("bad --limit-burst `{v}'")), Ok)?
                    as u32;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(l: Limit, _: RuleProto) -> Result<Limit, String> {
        Ok(l)
    }

    fn save(&self, out: &mut String) {
        out.push_str(" --limit ");
        print_rate(out, self.avg);
        if self.burst != 5 {
            let _ = write!(out, " --limit-burst {}", self.burst);
        }
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        out.push_str(" limit: avg ");
        print_rate(out, self.avg);
        let _ = write!(out, " burst {}", self.burst);
        true
    }

    fn compile(&self, _: &CompileEnv) -> Bucket {
        Bucket::new(self)
    }

    fn test(b: &Bucket, _: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        b.take(cx.now)
    }
}

/// `N/UNIT` with UNIT a prefix of second, minute, hour or day; the result is the period per
/// packet in 1/10000 s, as `xt_rateinfo.avg`.
pub fn parse_rate(v: &str) -> Option<u32> {
    let (n, mult) = match v.split_once('/') {
        None => (v, 1u64),
        Some((n, unit)) => {
            let unit = unit.to_ascii_lowercase();
            let is = |full: &str| !unit.is_empty() && full.starts_with(&unit);
            let mult = if is("second") {
                1
            } else if is("minute") {
                60
            } else if is("hour") {
                3600
            } else if is("day") {
                86400
            } else {
                return None;
            };
            (n, mult)
        }
    };
    let r = parse_uint(n, 1, u32::MAX.into())?;
    let avg = u64::from(LIMIT_SCALE) * mult / r;
    (avg != 0).then_some(avg.min(u32::MAX.into()) as u32)
}

/// `print_rate`: the largest unit that represents the period without losing much.
fn print_rate(out: &mut String, period: u32) {
    let units: [(&str, u32); 4] = [
        ("day", LIMIT_SCALE * 24 * 60 * 60),
        ("hour", LIMIT_SCALE * 60 * 60),
        ("min", LIMIT_SCALE * 60),
        ("sec", LIMIT_SCALE),
    ];
    if period == 0 {
        out.push_str("inf");
        return;
    }
    let mut i = 1;
    while i < units.len() {
        let m = units[i].1;
        if period > m || m / period < m % period {
            break;
        }
        i += 1;
    }
    let _ = write!(out, "{}/{}", units[i - 1].1 / period, units[i - 1].0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_print_like_iptables() {
        let p = |s: &str| {
            let mut o = String::new();
            print_rate(&mut o, parse_rate(s).unwrap());
            o
        };
        assert_eq!(p("1/sec"), "1/sec");
        assert_eq!(p("1/min"), "1/min");
        assert_eq!(p("1000/hour"), "1000/hour");
        assert_eq!(p("1000/day"), "1000/day");
        assert_eq!(p("12/min"), "12/min");
        assert_eq!(p("60/min"), "1/sec");
        assert!(parse_rate("1/fortnight").is_none());
        assert!(parse_rate("0/sec").is_none());
    }
}
