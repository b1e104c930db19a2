//! `-m statistic` (`libxt_statistic.c`, `xt_statistic.c`): a random draw or every nth packet.
//! Both are side effects: the draw consumes the random stream, nth advances a counter shared
//! by every packet that reaches the match.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatisticMode {
    /// Probability in units of 2^-31, as the kernel stores it.
    Random { probability: u32 },
    /// Every `every`-th packet, counter starting at `packet`.
    Nth { every: u32, packet: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statistic {
    pub inv: bool,
    pub mode: StatisticMode,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    inv: bool,
    mode: Option<String>,
    probability: Option<u32>,
    every: Option<u32>,
    packet: Option<u32>,
}

/// The compiled match: nth's counter is the match's own state.
#[derive(Debug)]
pub enum Compiled {
    Random { probability: u32, inv: bool },
    Nth { last: u32, count: AtomicU32, inv: bool },
}

impl MatchExt for Statistic {
    type Builder = Builder;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &["mode", "probability", "every", "packet"];

    fn option(b: &mut Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let name = name.as_str();
        if inv {
            b.inv = true;
        }
        match opt {
            "mode" => {
                let v = c.value(name)?;
                if v != "random" && v != "nth" {
                    return c.err_value(format!("statistic: bad mode `{v}'"));
                }
                b.mode = Some(v);
            }
            "probability" => {
                let v = c.value_inv(name, &mut b.inv)?;
                let p: f64 = v.parse().ok().filter(|p: &f64| (0.0..=1.0).contains(p)).map_or_else(
                    || c.err_value(format!("statistic: --probability `{v}' is not between 0 and 1")),
                    Ok,
                )?;
                b.probability = Some((p * 2147483648.0).round() as u32);
            }
            "every" => {
                let v = c.value_inv(name, &mut b.inv)?;
                let n = parse_uint(&v, 1, u32::MAX.into())
                    .map_or_else(|| c.err_value(format!("statistic: bad --every `{v}'")), Ok)?;
                b.every = Some(n as u32);
            }
            "packet" => {
                let v = c.value_inv(name, &mut b.inv)?;
                let n = parse_uint(&v, 0, u32::MAX.into())
                    .map_or_else(|| c.err_value(format!("statistic: bad --packet `{v}'")), Ok)?;
                b.packet = Some(n as u32);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, _: RuleProto) -> Result<Statistic, String> {
        let mode = match b.mode.as_deref() {
            None => return Err("statistic: --mode is required".into()),
            Some("random") => {
                if b.every.is_some() || b.packet.is_some() {
                    return Err("statistic: --every and --packet can only be used in nth mode".into());
                }
                StatisticMode::Random {
                    probability: b.probability.ok_or("statistic: random mode needs --probability")?,
                }
            }
            _ => {
                if b.probability.is_some() {
                    return Err("statistic: --probability can only be used in random mode".into());
                }
                // libxt_statistic's option table: `--every` and `--packet` each name the
                // other in `.also`, so iptables takes neither alone (the man page's "default 0"
                // notwithstanding).
                let (every, packet) = match (b.every, b.packet) {
                    (Some(e), Some(p)) => (e, p),
                    (Some(_), None) => return Err("statistic: option \"--every\" also requires \"--packet\"".into()),
                    (None, Some(_)) => return Err("statistic: option \"--packet\" also requires \"--every\"".into()),
                    (None, None) => {
                        return Err("statistic: --every and --packet must be specified when using nth mode".into())
                    }
                };
                if packet >= every {
                    return Err("statistic: --packet p must be 0 <= p <= n-1".into());
                }
                StatisticMode::Nth { every, packet }
            }
        };
        Ok(Statistic { inv: b.inv, mode })
    }

    fn save(&self, out: &mut String) {
        match self.mode {
            StatisticMode::Random { probability } => {
                let p = f64::from(probability) / 2147483648.0;
                let _ = write!(out, " --mode random{} --probability {p:.11}", bang(self.inv));
            }
            StatisticMode::Nth { every, packet } => {
                // `print_match` with the "--" prefix prints the packet even when it is 0
                // (checked against the kernel's iptables-save 1.8.9).
                let _ = write!(out, " --mode nth{} --every {every} --packet {packet}", bang(self.inv));
            }
        }
    }

    fn compile(&self, _: &CompileEnv) -> Compiled {
        match self.mode {
            StatisticMode::Random { probability } => Compiled::Random {
                probability,
                inv: self.inv,
            },
            // The kernel's master->count starts at (every-1) - packet.
            StatisticMode::Nth { every, packet } => Compiled::Nth {
                last: every - 1,
                count: AtomicU32::new(every - 1 - packet),
                inv: self.inv,
            },
        }
    }

    fn test(c: &Compiled, _: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        match c {
            Compiled::Random { probability, inv } => cx.rng.chance(*probability) != *inv,
            Compiled::Nth { last, count, inv } => {
                let last = *last;
                let prev = count
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                        Some(if c >= last { 0 } else { c + 1 })
                    })
                    .unwrap_or(0);
                (prev >= last) != *inv
            }
        }
    }
}
